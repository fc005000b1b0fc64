/*
 * The functions Fluent Bit's executable exports (it is linked with --export-dynamic) that
 * out_wasm looks up with dlsym(RTLD_DEFAULT, ...): flb_output_name, cfl_time_now and the
 * cmetrics calls it uses, with Fluent Bit 5.1.1's signatures (the same in every cmetrics
 * since the one Fluent Bit 2.2 bundles), and the markers of newer agents (at the end).
 *
 * The loader dlopen()s this library with RTLD_GLOBAL to play an agent that has them; without
 * it the loader plays an older agent. Each cmetrics call is reported to the loader's sink,
 * which keeps the metrics and applies cmetrics' rules (label counts, counters that only grow);
 * the handles returned are the sink's, opaque to the plugin as cmetrics' pointers are.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loader_agent.h"

#define EXPORT __attribute__((visibility("default")))

struct cmt_histogram_buckets {
    size_t count;
    double *upper_bounds;
};

static loader_cmt_sink sink;

EXPORT void loader_agent_set_sink(loader_cmt_sink s)
{
    sink = s;
}

static intptr_t report(struct loader_cmt_call *call)
{
    if (!sink) {
        return 0;
    }
    return sink(call);
}

EXPORT const char *flb_output_name(void *ins)
{
    return ((struct loader_output_instance *) ins)->name;
}

EXPORT uint64_t cfl_time_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static void *create(int op, void *cmt, char *ns, char *subsystem, char *name, char *help,
                    struct cmt_histogram_buckets *buckets, int label_count, char **label_keys)
{
    struct loader_cmt_call call = {
        .op = op, .target = cmt, .ns = ns, .subsystem = subsystem, .name = name, .help = help,
        .label_count = label_count, .labels = label_keys,
    };

    if (buckets) {
        call.buckets = buckets->upper_bounds;
        call.bucket_count = buckets->count;
    }
    return (void *) report(&call);
}

EXPORT void *cmt_counter_create(void *cmt, char *ns, char *subsystem, char *name, char *help,
                                int label_count, char **label_keys)
{
    return create(LOADER_CMT_COUNTER_CREATE, cmt, ns, subsystem, name, help, NULL,
                  label_count, label_keys);
}

EXPORT void *cmt_gauge_create(void *cmt, char *ns, char *subsystem, char *name, char *help,
                              int label_count, char **label_keys)
{
    return create(LOADER_CMT_GAUGE_CREATE, cmt, ns, subsystem, name, help, NULL,
                  label_count, label_keys);
}

EXPORT struct cmt_histogram_buckets *cmt_histogram_buckets_create_size(double *bkts, size_t count)
{
    struct cmt_histogram_buckets *buckets;

    if (count < 1) {
        return NULL;
    }
    buckets = calloc(1, sizeof(*buckets));
    buckets->count = count;
    buckets->upper_bounds = calloc(count, sizeof(double));
    memcpy(buckets->upper_bounds, bkts, count * sizeof(double));
    return buckets;
}

EXPORT struct cmt_histogram_buckets *cmt_histogram_buckets_default_create(void)
{
    /* cmetrics' defaults */
    double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0};

    return cmt_histogram_buckets_create_size(bounds, sizeof(bounds) / sizeof(bounds[0]));
}

/* The histogram owns its buckets, as in cmetrics; the sink copied them. */
EXPORT void *cmt_histogram_create(void *cmt, char *ns, char *subsystem, char *name, char *help,
                                  struct cmt_histogram_buckets *buckets,
                                  int label_count, char **label_keys)
{
    void *h;

    h = create(LOADER_CMT_HISTOGRAM_CREATE, cmt, ns, subsystem, name, help,
               buckets ? buckets : cmt_histogram_buckets_default_create(), label_count, label_keys);
    if (buckets) {
        free(buckets->upper_bounds);
        free(buckets);
    }
    return h;
}

static int update(int op, void *metric, uint64_t ts, double val, int labels_count, char **label_vals)
{
    struct loader_cmt_call call = {
        .op = op, .target = metric, .value = val, .timestamp = ts,
        .label_count = labels_count, .labels = label_vals,
    };

    return (int) report(&call);
}

EXPORT int cmt_counter_inc(void *counter, uint64_t ts, int labels_count, char **label_vals)
{
    return update(LOADER_CMT_COUNTER_INC, counter, ts, 1, labels_count, label_vals);
}

EXPORT int cmt_counter_add(void *counter, uint64_t ts, double val, int labels_count, char **label_vals)
{
    return update(LOADER_CMT_COUNTER_ADD, counter, ts, val, labels_count, label_vals);
}

EXPORT int cmt_counter_set(void *counter, uint64_t ts, double val, int labels_count, char **label_vals)
{
    return update(LOADER_CMT_COUNTER_SET, counter, ts, val, labels_count, label_vals);
}

EXPORT int cmt_gauge_set(void *gauge, uint64_t ts, double val, int labels_count, char **label_vals)
{
    return update(LOADER_CMT_GAUGE_SET, gauge, ts, val, labels_count, label_vals);
}

EXPORT int cmt_gauge_inc(void *gauge, uint64_t ts, int labels_count, char **label_vals)
{
    return update(LOADER_CMT_GAUGE_INC, gauge, ts, 1, labels_count, label_vals);
}

EXPORT int cmt_gauge_add(void *gauge, uint64_t ts, double val, int labels_count, char **label_vals)
{
    return update(LOADER_CMT_GAUGE_ADD, gauge, ts, val, labels_count, label_vals);
}

EXPORT int cmt_gauge_sub(void *gauge, uint64_t ts, double val, int labels_count, char **label_vals)
{
    return update(LOADER_CMT_GAUGE_SUB, gauge, ts, val, labels_count, label_vals);
}

/* cmetrics reads one count per bound and +Inf without a size; the sink knows the size. */
EXPORT int cmt_histogram_set_default(void *histogram, uint64_t ts, uint64_t *bucket_defaults, double sum,
                                     uint64_t count, int labels_count, char **label_vals)
{
    struct loader_cmt_call call = {
        .op = LOADER_CMT_HISTOGRAM_SET, .target = histogram, .value = sum, .timestamp = ts,
        .label_count = labels_count, .labels = label_vals, .bucket_values = bucket_defaults,
        .count = count,
    };

    return (int) report(&call);
}

EXPORT int cmt_histogram_observe(void *histogram, uint64_t ts, double val, int labels_count,
                                 char **label_vals)
{
    return update(LOADER_CMT_HISTOGRAM_OBSERVE, histogram, ts, val, labels_count, label_vals);
}

/*
 * Functions that only newer agents define, which out_wasm looks up to tell which proxy
 * definition the agent allocated (host/src/agent/profile.rs): a build of this library per
 * agent line the loader plays, LOADER_AGENT_LINE being 5 (Fluent Bit 5.0 on), 42 (4.2.4 to
 * 4.2.x) or 0 (older, neither). The plugin only looks them up; called, they do nothing.
 */
#if LOADER_AGENT_LINE == 5
EXPORT void *cmt_exp_histogram_create(void *cmt, char *ns, char *subsystem, char *name, char *help,
                                      int label_count, char **label_keys)
{
    (void) cmt, (void) ns, (void) subsystem, (void) name, (void) help;
    (void) label_count, (void) label_keys;
    return NULL;
}
#endif
#if LOADER_AGENT_LINE == 5 || LOADER_AGENT_LINE == 42
EXPORT int flb_ml_stream_group_add_metadata(void *group, void *metadata)
{
    (void) group, (void) metadata;
    return -1;
}
#endif
