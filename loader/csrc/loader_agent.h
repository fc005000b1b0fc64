/*
 * What the loader's C core and its agent-symbols library share.
 */
#ifndef LOADER_AGENT_H
#define LOADER_AGENT_H

#include <stddef.h>
#include <stdint.h>

/*
 * The `o_ins` handle the loader passes to the plugin (the agent passes its
 * `struct flb_output_instance *`, opaque to plugins). The Rust side owns it and
 * keeps its own fields after these.
 */
struct loader_output_instance {
    /* What flb_output_name() returns: the `alias`, or `<plugin>.<global index>`. */
    const char *name;
    /* What output_get_cmt_instance() returns; NULL when the loader plays an agent
     * without metrics. */
    void *cmt;
};

/*
 * The layouts of the agent the loader plays (src/agent.rs): each struct the plugin gets is
 * allocated at exactly that agent's size, against an inaccessible page, so a write (or read)
 * past its end faults at once instead of corrupting memory unseen.
 */
struct loader_agent_layout {
    /* sizeof(struct flb_plugin_proxy_def): 32 (2.0 to 4.2.2), 40 (4.2.3 on), 48 (5.1.1 on). */
    size_t def_size;
    /* Whether the agent zeroes the definition (flb_calloc, 4.2.3 on) or not (flb_malloc). */
    int def_zeroed;
    /* Entries of struct flb_api: 7, or 9 from 4.1 on (the custom-plugin calls). */
    int api_entries;
};

/* One call of a cmetrics function, as the agent-symbols library reports it. */
enum loader_cmt_op {
    LOADER_CMT_COUNTER_CREATE = 1,
    LOADER_CMT_GAUGE_CREATE,
    LOADER_CMT_HISTOGRAM_CREATE,
    LOADER_CMT_COUNTER_INC,
    LOADER_CMT_COUNTER_ADD,
    LOADER_CMT_COUNTER_SET,
    LOADER_CMT_GAUGE_SET,
    LOADER_CMT_GAUGE_INC,
    LOADER_CMT_GAUGE_ADD,
    LOADER_CMT_GAUGE_SUB,
    LOADER_CMT_HISTOGRAM_OBSERVE,
    LOADER_CMT_HISTOGRAM_SET,
};

struct loader_cmt_call {
    int op;
    /* The context (creates) or the metric (updates). */
    void *target;
    const char *ns;
    const char *subsystem;
    const char *name;
    const char *help;
    /* Label keys (creates) or values (updates). */
    int label_count;
    char **labels;
    double value;
    uint64_t timestamp;
    /* A histogram's upper bounds (creates), or its cumulative bucket counts (sets: one per
     * bound, then +Inf; `value` is the sum). */
    const double *buckets;
    const uint64_t *bucket_values;
    size_t bucket_count;
    uint64_t count;
};

/* Records a call: returns the new metric's handle (creates; 0 refuses) or the cmetrics
 * return code (updates: 0, or -1). */
typedef intptr_t (*loader_cmt_sink)(const struct loader_cmt_call *call);

#endif
