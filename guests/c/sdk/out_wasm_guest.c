/*
 * The glue between an owg_output and the bindings wit-bindgen generates for the
 * http-output-plugin world (out-wasm:output@0.3.0): the exports, config, logging and metrics.
 * The records are events.c's, the HTTP client http.c's.
 *
 * wit-bindgen's conventions: an export's arguments are the callee's to free; its results are
 * malloc'd here and freed by the generated post-return functions; an import's arguments stay
 * the caller's, its results are malloc'd for the caller.
 */
#include "out_wasm_guest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

extern const owg_output owg_exported_output;

struct owg_call owg_current_call;

static void *checked(void *p) {
    if (!p) abort(); /* out of guest memory: a trap, as in any language */
    return p;
}

char *owg_string_dup(const http_output_plugin_string_t *s) {
    char *out = checked(malloc(s->len + 1));
    memcpy(out, s->ptr, s->len);
    out[s->len] = 0;
    return out;
}

/* A malloc'd WIT string with the text of s, for a result. */
static http_output_plugin_string_t result_string(const char *s) {
    http_output_plugin_string_t out;
    http_output_plugin_string_dup(&out, s);
    return out;
}

/* A WIT string borrowing s, for an import's argument. */
static http_output_plugin_string_t borrow(const char *s) {
    http_output_plugin_string_t out = { (uint8_t *)s, s ? strlen(s) : 0 };
    return out;
}

/* A message of the guest's (or the default) as a result string; takes the message. */
static http_output_plugin_string_t result_message(char *message, const char *otherwise) {
    if (!message) message = checked(strdup(otherwise));
    http_output_plugin_string_t out = { (uint8_t *)message, strlen(message) };
    return out;
}

static uint64_t now(void) { return wasi_clocks_monotonic_clock_now(); }

static void set_deadline(const uint64_t *time_left) {
    owg_current_call.has_deadline = time_left != NULL;
    /* The host measured the time left when it made the call; from here on it shrinks with
     * the guest's own clock. */
    if (time_left) owg_current_call.deadline = now() + *time_left;
}

/* ---- Config ------------------------------------------------------------------------------ */

const char *owg_config_get(const owg_config *config, const char *key) {
    for (size_t i = 0; i < config->len; i++)
        if (!strcmp(config->keys[i], key)) return config->values[i];
    return NULL;
}

char *owg_config_lookup(const char *key) {
    http_output_plugin_string_t k = borrow(key), value;
    if (!out_wasm_output_config_get(&k, &value)) return NULL;
    char *out = owg_string_dup(&value);
    http_output_plugin_string_free(&value);
    return out;
}

/* An owg_config of NUL-terminated copies of entries; free with config_free. */
static owg_config config_of(const out_wasm_output_types_config_entry_t *entries, size_t n) {
    char **keys = checked(calloc(n + 1, sizeof *keys)), **values = checked(calloc(n + 1, sizeof *values));
    for (size_t i = 0; i < n; i++) {
        keys[i] = owg_string_dup(&entries[i].key);
        values[i] = owg_string_dup(&entries[i].value);
    }
    owg_config config = { n, (const char *const *)keys, (const char *const *)values };
    return config;
}

static void config_free(owg_config *config) {
    for (size_t i = 0; i < config->len; i++) {
        free((char *)config->keys[i]);
        free((char *)config->values[i]);
    }
    free((void *)config->keys);
    free((void *)config->values);
}

const owg_config_key OWG_JSON_LINES_KEYS[OWG_JSON_LINES_KEY_COUNT] = { OWG_JSON_LINES_KEY_ENTRIES };

/* 1 for on/true/yes, 0 for off/false/no (any case), -1 otherwise: the agent's booleans. */
static int switch_value(const char *value) {
    if (!strcasecmp(value, "on") || !strcasecmp(value, "true") || !strcasecmp(value, "yes")) return 1;
    if (!strcasecmp(value, "off") || !strcasecmp(value, "false") || !strcasecmp(value, "no")) return 0;
    return -1;
}

owg_status owg_json_options_from_config(owg_json_options *options, const owg_config *config, char **message) {
    static const struct { const char *name; owg_date_format format; } formats[] = {
        { "double", OWG_DATE_DOUBLE },   { "java_sql_timestamp", OWG_DATE_JAVA_SQL_TIMESTAMP },
        { "iso8601", OWG_DATE_ISO8601 }, { "epoch", OWG_DATE_EPOCH },
        { "epoch_ms", OWG_DATE_EPOCH_MS },
    };
    const char *date_key = owg_config_get(config, "json_date_key");
    if (!date_key) date_key = "date";
    /* Like the agent: a boolean-looking "false" disables the key, anything else names it. */
    options->date_key = switch_value(date_key) == 0 ? NULL : date_key;

    const char *date_format = owg_config_get(config, "json_date_format");
    options->date_format = OWG_DATE_DOUBLE;
    if (date_format) {
        size_t i = 0, n = sizeof formats / sizeof formats[0];
        while (i < n && strcasecmp(date_format, formats[i].name)) i++;
        if (i == n)
            return owg_fail(message, OWG_ERROR,
                            "invalid value \"%s\" for key 'json_date_format': unknown date format \"%s\" "
                            "(double, java_sql_timestamp, iso8601, epoch, epoch_ms)",
                            date_format, date_format);
        options->date_format = formats[i].format;
    }

    const char *escape = owg_config_get(config, "escape_unicode");
    int on = escape ? switch_value(escape) : 1;
    if (on < 0)
        return owg_fail(message, OWG_ERROR, "invalid value \"%s\" for key 'escape_unicode': expected on or off",
                        escape);
    options->escape_unicode = on;
    return OWG_OK;
}

/* ---- Errors and logging ------------------------------------------------------------------ */

owg_status owg_fail(char **message, owg_status status, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(NULL, 0, format, ap);
    va_end(ap);
    size_t size = n > 0 ? (size_t)n + 1 : 1;
    *message = checked(malloc(size));
    va_start(ap, format);
    vsnprintf(*message, size, format, ap);
    va_end(ap);
    return status;
}

static int max_level = -1;

bool owg_log_enabled(owg_level level) {
    /* Constant for the life of the instance: asked once. */
    if (max_level < 0) max_level = out_wasm_output_logging_max_level();
    return (int)level <= max_level;
}

void owg_log(owg_level level, const char *format, ...) {
    if (!owg_log_enabled(level)) return;
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(NULL, 0, format, ap);
    va_end(ap);
    if (n < 0) return;
    char *line = checked(malloc((size_t)n + 1));
    va_start(ap, format);
    vsnprintf(line, (size_t)n + 1, format, ap);
    va_end(ap);
    http_output_plugin_string_t message = { (uint8_t *)line, (size_t)n };
    out_wasm_output_logging_log((out_wasm_output_logging_level_t)level, &message);
    free(line);
}

/* ---- The exports ------------------------------------------------------------------------- */

void exports_out_wasm_output_output_config_schema(exports_out_wasm_output_output_list_config_key_t *ret) {
    const owg_output *o = &owg_exported_output;
    ret->len = o->key_count;
    ret->ptr = o->key_count ? checked(calloc(o->key_count, sizeof *ret->ptr)) : NULL;
    for (size_t i = 0; i < o->key_count; i++) {
        const owg_config_key *key = &o->keys[i];
        ret->ptr[i].name = result_string(key->name);
        ret->ptr[i].description = result_string(key->description ? key->description : "");
        ret->ptr[i].default_value.is_some = key->default_value != NULL;
        if (key->default_value) ret->ptr[i].default_value.val = result_string(key->default_value);
        ret->ptr[i].required = key->required;
    }
}

bool exports_out_wasm_output_output_preferred_event_format(exports_out_wasm_output_output_list_config_entry_t *entries,
                                                           exports_out_wasm_output_output_event_format_t *ret,
                                                           http_output_plugin_string_t *err) {
    owg_event_format format = { .kind = OWG_FORMAT_MSGPACK };
    owg_status status = OWG_OK;
    char *message = NULL;
    if (owg_exported_output.preferred_event_format) {
        owg_config config = config_of(entries->ptr, entries->len);
        status = owg_exported_output.preferred_event_format(&config, &format, &message);
        if (status == OWG_OK) {
            ret->tag = (uint8_t)format.kind;
            if (format.kind == OWG_FORMAT_JSON_LINES) {
                /* Copied while the config the date key may point into is alive. */
                out_wasm_output_types_json_options_t *json = &ret->val.json_lines;
                json->date_key.is_some = format.json.date_key != NULL;
                if (format.json.date_key) json->date_key.val = result_string(format.json.date_key);
                json->date_format = (out_wasm_output_types_date_format_t)format.json.date_format;
                json->escape_unicode = format.json.escape_unicode;
            }
        }
        config_free(&config);
    } else {
        ret->tag = OUT_WASM_OUTPUT_TYPES_EVENT_FORMAT_MSGPACK;
    }
    exports_out_wasm_output_output_list_config_entry_free(entries);
    if (status == OWG_OK) {
        free(message);
        return true;
    }
    *err = result_message(message, "the guest refused its configuration");
    return false;
}

exports_out_wasm_output_output_event_types_t exports_out_wasm_output_output_accepted_event_types(void) {
    owg_event_types types = owg_exported_output.accepted_event_types;
    return (exports_out_wasm_output_output_event_types_t)(types ? types : OWG_EVENT_TYPES_LOGS);
}

bool exports_out_wasm_output_output_init(exports_out_wasm_output_output_init_context_t *ctx,
                                         http_output_plugin_string_t *err) {
    bool ok = true;
    if (owg_exported_output.init) {
        char *instance = owg_string_dup(&ctx->instance), *path = owg_string_dup(&ctx->guest_path),
             *digest = owg_string_dup(&ctx->guest_digest), *date_key = NULL,
             *hostname = owg_string_dup(&ctx->hostname);
        owg_init_context c = {
            .instance = instance,
            .guest_path = path,
            .guest_digest = digest,
            .event_format = { .kind = (owg_event_format_kind)ctx->event_format.tag },
            .event_types = ctx->event_types,
            .config = config_of(ctx->config.ptr, ctx->config.len),
            .hostname = hostname,
        };
        if (ctx->event_format.tag == OUT_WASM_OUTPUT_TYPES_EVENT_FORMAT_JSON_LINES) {
            const out_wasm_output_types_json_options_t *json = &ctx->event_format.val.json_lines;
            if (json->date_key.is_some) date_key = owg_string_dup(&json->date_key.val);
            c.event_format.json.date_key = date_key;
            c.event_format.json.date_format = (owg_date_format)json->date_format;
            c.event_format.json.escape_unicode = json->escape_unicode;
        }
        char *message = NULL;
        if (owg_exported_output.init(&c, &message) != OWG_OK) {
            ok = false;
            *err = result_message(message, "init failed");
        } else {
            free(message);
        }
        config_free(&c.config);
        free(instance);
        free(path);
        free(digest);
        free(date_key);
        free(hostname);
    }
    exports_out_wasm_output_output_init_context_free(ctx);
    return ok;
}

bool owg_chunk_time_left(const owg_chunk *chunk, uint64_t *nanoseconds) {
    if (!chunk->has_deadline) return false;
    uint64_t t = now();
    *nanoseconds = chunk->deadline > t ? chunk->deadline - t : 0;
    return true;
}

bool exports_out_wasm_output_output_flush(exports_out_wasm_output_output_flush_context_t *ctx,
                                          http_output_plugin_list_u8_t *chunk,
                                          exports_out_wasm_output_output_flush_error_t *err) {
    set_deadline(ctx->time_left.is_some ? &ctx->time_left.val : NULL);
    char *tag = owg_string_dup(&ctx->tag), *id = owg_string_dup(&ctx->delivery.id);
    owg_chunk c = {
        .tag = tag,
        .data = chunk->ptr,
        .len = chunk->len,
        .event_type = (owg_event_type)ctx->event_type,
        .delivery = { id, ctx->delivery.attempt },
        .has_deadline = owg_current_call.has_deadline,
        .deadline = owg_current_call.deadline,
    };
    char *message = NULL;
    owg_status status = owg_exported_output.flush(&c, &message);
    owg_current_call.has_deadline = false;
    free(tag);
    free(id);
    exports_out_wasm_output_output_flush_context_free(ctx);
    http_output_plugin_list_u8_free(chunk);
    if (status == OWG_OK) {
        free(message);
        return true;
    }
    err->tag = status == OWG_RETRY ? OUT_WASM_OUTPUT_TYPES_FLUSH_ERROR_RETRY : OUT_WASM_OUTPUT_TYPES_FLUSH_ERROR_ERROR;
    /* retry and error carry the same payload type, at the same place. */
    err->val.retry = result_message(message, status == OWG_RETRY ? "retry" : "error");
    return false;
}

bool exports_out_wasm_output_output_idle(exports_out_wasm_output_output_duration_t budget,
                                         exports_out_wasm_output_output_duration_t *ret) {
    if (!owg_exported_output.idle) return false;
    /* Idle work should end within its budget: that is its deadline for the SDK's requests. */
    set_deadline(&budget);
    bool again = owg_exported_output.idle(budget, ret);
    owg_current_call.has_deadline = false;
    return again;
}

void exports_out_wasm_output_output_exit(exports_out_wasm_output_output_duration_t *maybe_time_left) {
    if (!owg_exported_output.exit) return;
    set_deadline(maybe_time_left);
    owg_exported_output.exit(maybe_time_left);
    owg_current_call.has_deadline = false;
}

/* ---- Metrics ---------------------------------------------------------------------------- */

/* A list borrowing strings; free its array (only) after the call. */
static http_output_plugin_list_string_t borrow_all(const char *const *strings, size_t n) {
    http_output_plugin_list_string_t list = { NULL, n };
    if (n) {
        list.ptr = checked(malloc(n * sizeof *list.ptr));
        for (size_t i = 0; i < n; i++) list.ptr[i] = borrow(strings[i]);
    }
    return list;
}

/* 0, or -1 with the host's reason moved into *error (or dropped). */
static int refused(bool ok, http_output_plugin_string_t *reason, char **error) {
    if (ok) return 0;
    if (error) *error = owg_string_dup(reason);
    http_output_plugin_string_free(reason);
    return -1;
}

static out_wasm_output_metrics_metric_info_t info_of(const char *name, const char *help, const char *const *labels,
                                                     size_t label_count) {
    out_wasm_output_metrics_metric_info_t info = {
        .name = borrow(name),
        .help = borrow(help ? help : ""),
        .label_names = borrow_all(labels, label_count),
    };
    return info;
}

int owg_counter_declare(owg_counter *counter, const char *name, const char *help, const char *const *labels,
                        size_t label_count, char **error) {
    out_wasm_output_metrics_metric_info_t info = info_of(name, help, labels, label_count);
    out_wasm_output_metrics_own_counter_t own;
    http_output_plugin_string_t reason;
    bool ok = out_wasm_output_metrics_static_counter_declare(&info, &own, &reason);
    free(info.label_names.ptr);
    if (ok) counter->handle = own.__handle;
    return refused(ok, &reason, error);
}

int owg_counter_add(owg_counter counter, const char *const *values, size_t value_count, double value, char **error) {
    http_output_plugin_list_string_t list = borrow_all(values, value_count);
    http_output_plugin_string_t reason;
    bool ok = out_wasm_output_metrics_method_counter_add((out_wasm_output_metrics_borrow_counter_t){ counter.handle },
                                                         &list, value, &reason);
    free(list.ptr);
    return refused(ok, &reason, error);
}

int owg_counter_inc(owg_counter counter, const char *const *values, size_t value_count, char **error) {
    return owg_counter_add(counter, values, value_count, 1.0, error);
}

void owg_counter_drop(owg_counter counter) {
    out_wasm_output_metrics_counter_drop_own((out_wasm_output_metrics_own_counter_t){ counter.handle });
}

int owg_gauge_declare(owg_gauge *gauge, const char *name, const char *help, const char *const *labels,
                      size_t label_count, char **error) {
    out_wasm_output_metrics_metric_info_t info = info_of(name, help, labels, label_count);
    out_wasm_output_metrics_own_gauge_t own;
    http_output_plugin_string_t reason;
    bool ok = out_wasm_output_metrics_static_gauge_declare(&info, &own, &reason);
    free(info.label_names.ptr);
    if (ok) gauge->handle = own.__handle;
    return refused(ok, &reason, error);
}

int owg_gauge_set(owg_gauge gauge, const char *const *values, size_t value_count, double value, char **error) {
    http_output_plugin_list_string_t list = borrow_all(values, value_count);
    http_output_plugin_string_t reason;
    bool ok = out_wasm_output_metrics_method_gauge_set((out_wasm_output_metrics_borrow_gauge_t){ gauge.handle }, &list,
                                                       value, &reason);
    free(list.ptr);
    return refused(ok, &reason, error);
}

int owg_gauge_add(owg_gauge gauge, const char *const *values, size_t value_count, double value, char **error) {
    http_output_plugin_list_string_t list = borrow_all(values, value_count);
    http_output_plugin_string_t reason;
    bool ok = out_wasm_output_metrics_method_gauge_add((out_wasm_output_metrics_borrow_gauge_t){ gauge.handle }, &list,
                                                       value, &reason);
    free(list.ptr);
    return refused(ok, &reason, error);
}

void owg_gauge_drop(owg_gauge gauge) {
    out_wasm_output_metrics_gauge_drop_own((out_wasm_output_metrics_own_gauge_t){ gauge.handle });
}

int owg_histogram_declare(owg_histogram *histogram, const char *name, const char *help, const char *const *labels,
                          size_t label_count, const double *buckets, size_t bucket_count, char **error) {
    out_wasm_output_metrics_metric_info_t info = info_of(name, help, labels, label_count);
    http_output_plugin_list_f64_t bounds = { (double *)buckets, bucket_count };
    out_wasm_output_metrics_own_histogram_t own;
    http_output_plugin_string_t reason;
    bool ok = out_wasm_output_metrics_static_histogram_declare(&info, &bounds, &own, &reason);
    free(info.label_names.ptr);
    if (ok) histogram->handle = own.__handle;
    return refused(ok, &reason, error);
}

int owg_histogram_observe(owg_histogram histogram, const char *const *values, size_t value_count, double value,
                          char **error) {
    http_output_plugin_list_string_t list = borrow_all(values, value_count);
    http_output_plugin_string_t reason;
    bool ok = out_wasm_output_metrics_method_histogram_observe(
        (out_wasm_output_metrics_borrow_histogram_t){ histogram.handle }, &list, value, &reason);
    free(list.ptr);
    return refused(ok, &reason, error);
}

void owg_histogram_drop(owg_histogram histogram) {
    out_wasm_output_metrics_histogram_drop_own((out_wasm_output_metrics_own_histogram_t){ histogram.handle });
}
