/*
 * stdout: every record as one JSON line on the agent's stdout, byte for byte like the agent's
 * built-in stdout output with format json_lines (the C twin of guests/rust/stdout).
 *
 * Keys (the built-in output's, with its defaults): json_date_key ("date"; "off" leaves it
 * out), json_date_format (double, epoch, epoch_ms, iso8601, java_sql_timestamp) and
 * escape_unicode ("on").
 *
 * With wasm_event_format json_lines the host renders the lines (with the keys' defaults) and
 * this guest writes them through; other key values then need msgpack, and init says so.
 * otlp_json is refused.
 *
 * It also counts the records it prints per tag, as the guest metric
 * fluentbit_wasm_guest_records_printed_total{name="<output>",tag="<tag>"}.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "out_wasm_guest.h"

static owg_json_lines format;
/* False when the host delivers ready-made JSON lines. */
static bool render;
static owg_buf lines;
static owg_counter printed;

static owg_status init(const owg_init_context *ctx, char **message) {
    if (owg_json_lines_from_config(&format, ctx, message) != 0) return OWG_ERROR;
    if (ctx->event_format == OWG_FORMAT_OTLP_JSON)
        return owg_fail(message, OWG_ERROR,
                        "this guest prints the agent's JSON lines: use wasm_event_format msgpack or json_lines");
    render = ctx->event_format == OWG_FORMAT_MSGPACK;
    if (!render && !owg_json_lines_is_default(&format))
        return owg_fail(message, OWG_ERROR,
                        "json_date_key, json_date_format and escape_unicode other than their defaults need "
                        "wasm_event_format msgpack: the host renders json_lines with the defaults");
    if (owg_counter_declare(&printed, "records_printed", "records written to stdout", (const char *[]){ "tag" }, 1,
                            message) != 0)
        return OWG_ERROR;
    return OWG_OK;
}

static owg_status flush(const owg_chunk *chunk, char **message) {
    const char *data = (const char *)chunk->data;
    size_t len = chunk->len;
    size_t records = 0;
    if (render) {
        owg_events events = owg_events_of(chunk);
        owg_event event;
        owg_error err;
        int more;
        lines.len = 0;
        while ((more = owg_events_next(&events, &event, &err)) > 0) {
            owg_json_lines_write(&format, &lines, &event);
            records++;
        }
        if (more < 0) return owg_fail(message, OWG_ERROR, "%s", err.message);
        data = lines.data;
        len = lines.len;
    } else {
        /* JSON escapes newlines inside values: each one ends a record. */
        for (const char *p = data; (p = memchr(p, '\n', len - (size_t)(p - data))) != NULL; p++) records++;
    }
    /* One write per chunk, as the agent does, so lines of concurrent flushes never interleave
     * (a write may still be partial: WASI streams take 64 KiB at a time). */
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return owg_fail(message, OWG_RETRY, "failed to write to stdout: %s", strerror(errno));
        }
        data += n;
        len -= (size_t)n;
    }
    /* A refused update (more tags than the operator's wasm_metrics_max_series) loses a count,
     * not records: the host already logs it. */
    if (records > 0) owg_counter_add(printed, &chunk->tag, 1, (double)records, NULL);
    return OWG_OK;
}

static void finish(void) { owg_buf_free(&lines); }

OWG_EXPORT_OUTPUT((owg_output){
    .keys = OWG_JSON_LINES_KEYS,
    .key_count = 3,
    .init = init,
    .flush = flush,
    .exit = finish,
});
