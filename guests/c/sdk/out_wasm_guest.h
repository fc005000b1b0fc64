/*
 * out_wasm guest SDK for C.
 *
 * Write a Fluent Bit output plugin in C, build it into a WebAssembly component with
 * guests/c/build (Debian's clang + wasi-libc, bindings from wit-bindgen, the WASI preview1
 * adapter), and point an `[OUTPUT] Name wasm` section's wasm_path at it:
 *
 *     #include "out_wasm_guest.h"
 *
 *     static owg_status flush(const owg_chunk *chunk, char **message) {
 *         owg_events events = owg_events_of(chunk);
 *         owg_event event;
 *         owg_error err;
 *         int more;
 *         while ((more = owg_events_next(&events, &event, &err)) > 0) {
 *             owg_log_info("a record of %s at %lld", chunk->tag, (long long) event.timestamp.seconds);
 *         }
 *         return more < 0 ? owg_fail(message, OWG_ERROR, "%s", err.message) : OWG_OK;
 *     }
 *
 *     OWG_EXPORT_OUTPUT((owg_output) { .flush = flush });
 *
 * Values are borrowed views into the chunk: nothing is copied, and they live as long as the
 * chunk, which is until flush returns. Every call runs on one thread, one call at a time.
 */
#ifndef OUT_WASM_GUEST_H
#define OUT_WASM_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Values ---------------------------------------------------------------------------- */

typedef enum owg_kind {
    OWG_NIL,
    OWG_BOOL,
    OWG_INT,   /* a negative integer: .i */
    OWG_UINT,  /* a non-negative integer: .u */
    OWG_FLOAT, /* float 32 (widened) or 64: .f */
    OWG_STR,   /* .bytes: UTF-8 by convention, not validated */
    OWG_BIN,   /* .bytes */
    OWG_ARRAY, /* .items: iterate with owg_array_next */
    OWG_MAP,   /* .items: iterate with owg_map_next */
    OWG_EXT,   /* .ext */
} owg_kind;

/* One msgpack value, borrowed from the chunk. */
typedef struct owg_value {
    owg_kind kind;
    union {
        bool b;
        int64_t i;
        uint64_t u;
        double f;
        struct { const uint8_t *ptr; size_t len; } bytes;
        /* Arrays: count items; maps: count entries (2 * count values). */
        struct { const uint8_t *ptr; const uint8_t *end; uint32_t count; } items;
        struct { int8_t type; const uint8_t *ptr; size_t len; } ext;
    } as;
} owg_value;

/* Walks an array or a map: set up with owg_items_of, then call the _next function. */
typedef struct owg_items {
    const uint8_t *pos;
    const uint8_t *end;
    uint32_t left;
} owg_items;

owg_items owg_items_of(const owg_value *container);
/* The next item of an array: true until the end. */
bool owg_array_next(owg_items *items, owg_value *item);
/* The next entry of a map: true until the end. */
bool owg_map_next(owg_items *items, owg_value *key, owg_value *value);
/* The value under string key `key` of a map (the last one if the key repeats). */
bool owg_map_get(const owg_value *map, const char *key, owg_value *value);

/* ---- Records --------------------------------------------------------------------------- */

/* When a record happened. */
typedef struct owg_timestamp {
    int64_t seconds;
    uint32_t nanoseconds; /* below 1e9 */
} owg_timestamp;

/* One record. metadata is an empty map for the old [ts, body] layout. */
typedef struct owg_event {
    owg_timestamp timestamp;
    owg_value metadata;
    owg_value body;
    /* The attributes of the OpenTelemetry group the record belongs to, if has_group. */
    bool has_group;
    owg_value group_attributes;
} owg_event;

/* A malformed chunk: where decoding stopped and why; message is the whole sentence. */
typedef struct owg_error {
    size_t offset;
    char message[200];
} owg_error;

/* The kind of events in a chunk. */
typedef enum owg_event_type {
    OWG_EVENT_LOGS,    /* log records: owg_events_of decodes them */
    OWG_EVENT_METRICS, /* cmetrics contexts (msgpack), or OTLP JSON */
    OWG_EVENT_TRACES,  /* ctraces contexts (msgpack), or OTLP JSON */
} owg_event_type;

/* A set of event types: OWG_EVENT_TYPES_* or'ed together. */
typedef unsigned owg_event_types;
#define OWG_EVENT_TYPES_LOGS (1u << OWG_EVENT_LOGS)
#define OWG_EVENT_TYPES_METRICS (1u << OWG_EVENT_METRICS)
#define OWG_EVENT_TYPES_TRACES (1u << OWG_EVENT_TRACES)

/* One flushed chunk. tag is NUL-terminated; data is in the instance's event format: msgpack,
 * JSON lines (OWG_FORMAT_JSON_LINES) or OTLP JSON (OWG_FORMAT_OTLP_JSON). */
typedef struct owg_chunk {
    const char *tag;
    const uint8_t *data;
    size_t len;
    owg_event_type event_type; /* one of the instance's accepted types */
    /* When the host stops this flush (and the chunk comes back), in CLOCK_MONOTONIC
     * nanoseconds; has_deadline is false when the operator turned deadlines off. */
    bool has_deadline;
    uint64_t deadline;
} owg_chunk;

/* How long this flush may still run, in nanoseconds (0 once past): a guest that waits on the
 * network gives up a little earlier and answers OWG_RETRY. False when there is no deadline. */
bool owg_chunk_time_left(const owg_chunk *chunk, uint64_t *nanoseconds);

/* Iterates the records of a chunk. */
typedef struct owg_events {
    const uint8_t *start;
    const uint8_t *pos;
    const uint8_t *end;
    bool failed;
    bool has_group;
    owg_value group;
} owg_events;

owg_events owg_events_of(const owg_chunk *chunk);
/* 1 and *event set: a record; 0: the end; -1 and *err set: a malformed chunk (then the end). */
int owg_events_next(owg_events *events, owg_event *event, owg_error *err);

/* ---- JSON, as the agent writes it -------------------------------------------------------- */

/* A growable byte buffer; free it with owg_buf_free. */
typedef struct owg_buf {
    char *data;
    size_t len;
    size_t cap;
} owg_buf;

void owg_buf_free(owg_buf *buf);

/* Appends value as JSON rendered like the agent's msgpack2json; escape_unicode mirrors the
 * agent's json.escape_unicode (on by default: non-ASCII as \uXXXX). */
void owg_write_json(owg_buf *out, const owg_value *value, bool escape_unicode);

typedef enum owg_date_format {
    OWG_DATE_DOUBLE,
    OWG_DATE_JAVA_SQL_TIMESTAMP,
    OWG_DATE_ISO8601,
    OWG_DATE_EPOCH,
    OWG_DATE_EPOCH_MS,
} owg_date_format;

/* The agent's json_lines format: json_date_key (has_date_key false for "off"),
 * json_date_format and escape_unicode. */
typedef struct owg_json_lines {
    bool has_date_key;
    char date_key[128];
    owg_date_format date_format;
    bool escape_unicode;
} owg_json_lines;

/* The agent's defaults: what the host renders for OWG_FORMAT_JSON_LINES. */
bool owg_json_lines_is_default(const owg_json_lines *format);
/* Appends event as one line, newline included. */
void owg_json_lines_write(const owg_json_lines *format, owg_buf *out, const owg_event *event);

/* ---- The guest -------------------------------------------------------------------------- */

/* What flush receives: the chunk as the agent delivered it, JSON lines rendered by the host, or
 * the chunk as one OTLP/JSON export request rendered by the host. */
typedef enum owg_event_format {
    OWG_FORMAT_MSGPACK = 0,
    OWG_FORMAT_JSON_LINES = 1,
    OWG_FORMAT_OTLP_JSON = 2,
} owg_event_format;

typedef struct owg_config_key {
    const char *name;
    const char *description;
    const char *default_value; /* NULL: none */
    bool required;
} owg_config_key;

typedef struct owg_init_context {
    const char *instance;     /* wasm.<n> */
    const char *guest_path;
    const char *guest_digest; /* sha256 of the component, hex */
    owg_event_format event_format;
    owg_event_types event_types; /* what flushes can carry: the guest's accepted types */
    size_t config_len;
    const char *const *config_keys;   /* resolved keys, defaults applied */
    const char *const *config_values;
} owg_init_context;

/* The value of key, or NULL when it is not set. */
const char *owg_config_get(const owg_init_context *ctx, const char *key);

typedef enum owg_status { OWG_OK, OWG_RETRY, OWG_ERROR } owg_status;

/* Sets *message to a malloc'd printf-formatted text and returns status: for flush and init. */
owg_status owg_fail(char **message, owg_status status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* The json_lines keys with the agent's defaults, for a guest's config schema. */
extern const owg_config_key OWG_JSON_LINES_KEYS[3];
/* json_lines from the resolved config: 0, or -1 with *error set (malloc'd) naming the bad key. */
int owg_json_lines_from_config(owg_json_lines *format, const owg_init_context *ctx, char **error);

/* What a guest provides. Only flush is required; a NULL member has the default. */
typedef struct owg_output {
    const owg_config_key *keys; /* default: none */
    size_t key_count;
    owg_event_format preferred_format; /* default: OWG_FORMAT_MSGPACK */
    /* Chunks of other types never reach flush. Default (0): OWG_EVENT_TYPES_LOGS. */
    owg_event_types accepted_event_types;
    /* Called once per instance before the first flush; declare metrics here. Return OWG_OK, or
     * OWG_ERROR with *message set (owg_fail) to refuse to start. Default: OWG_OK. */
    owg_status (*init)(const owg_init_context *ctx, char **message);
    /* Called once per chunk, with its tag, event type and deadline. OWG_RETRY and OWG_ERROR set
     * *message (owg_fail). */
    owg_status (*flush)(const owg_chunk *chunk, char **message);
    /* The last call on this instance. Default: nothing. */
    void (*exit)(void);
} owg_output;

/* Exports `output` (an owg_output expression) as this component's guest. Use once. */
#define OWG_EXPORT_OUTPUT(...) const owg_output owg_exported_output = __VA_ARGS__

/* ---- Logging ---------------------------------------------------------------------------- */

typedef enum owg_level { OWG_LOG_ERROR, OWG_LOG_WARN, OWG_LOG_INFO, OWG_LOG_DEBUG, OWG_LOG_TRACE } owg_level;

/* Whether a line at level would be written (the instance's log_level). */
bool owg_log_enabled(owg_level level);
/* A printf-formatted line into the agent's log. */
void owg_log(owg_level level, const char *format, ...) __attribute__((format(printf, 2, 3)));

#define owg_log_error(...) owg_log(OWG_LOG_ERROR, __VA_ARGS__)
#define owg_log_warn(...) owg_log(OWG_LOG_WARN, __VA_ARGS__)
#define owg_log_info(...) owg_log(OWG_LOG_INFO, __VA_ARGS__)
#define owg_log_debug(...) owg_log(OWG_LOG_DEBUG, __VA_ARGS__)
#define owg_log_trace(...) owg_log(OWG_LOG_TRACE, __VA_ARGS__)

/* ---- Metrics ---------------------------------------------------------------------------- */

/*
 * Metrics on the agent's own endpoint, exported as fluentbit_wasm_guest_<name> with the
 * output's `name` label first. Declare once (in init), update in flush:
 *
 *     static owg_counter sent;
 *     if (owg_counter_declare(&sent, "records_sent", "records delivered", (const char *[]){ "status" }, 1,
 *                             message) != 0)
 *         return OWG_ERROR;
 *     ...
 *     owg_counter_add(sent, (const char *[]){ "ok" }, 1, 256, NULL);
 *
 * A metric belongs to the output instance: every guest instance that declares the same name and
 * shape shares it, and its values survive faults, recycles and hot swaps. Labels and label values
 * are given as an array and its length, values in the order of the declared labels.
 *
 * Each function returns 0, or -1 with *error set (malloc'd) to what the host refused: a bad name,
 * a cap reached, a label value too long. error may be NULL: the host already counts and logs
 * refused updates, so most guests ignore them.
 */
typedef struct owg_counter { uint32_t id; } owg_counter;     /* only goes up; exported with _total */
typedef struct owg_gauge { uint32_t id; } owg_gauge;         /* goes up and down */
typedef struct owg_histogram { uint32_t id; } owg_histogram; /* observations in buckets */

int owg_counter_declare(owg_counter *counter, const char *name, const char *help, const char *const *labels,
                        size_t label_count, char **error);
/* Adds value (>= 0) to the series with these label values. */
int owg_counter_add(owg_counter counter, const char *const *values, size_t value_count, double value, char **error);
/* Adds one. */
int owg_counter_inc(owg_counter counter, const char *const *values, size_t value_count, char **error);

int owg_gauge_declare(owg_gauge *gauge, const char *name, const char *help, const char *const *labels,
                      size_t label_count, char **error);
int owg_gauge_set(owg_gauge gauge, const char *const *values, size_t value_count, double value, char **error);
/* Adds value (of either sign). */
int owg_gauge_add(owg_gauge gauge, const char *const *values, size_t value_count, double value, char **error);

/* buckets: upper bounds, strictly increasing; bucket_count 0 takes the agent's defaults. */
int owg_histogram_declare(owg_histogram *histogram, const char *name, const char *help, const char *const *labels,
                          size_t label_count, const double *buckets, size_t bucket_count, char **error);
int owg_histogram_observe(owg_histogram histogram, const char *const *values, size_t value_count, double value,
                          char **error);

#ifdef __cplusplus
}
#endif

#endif
