/*
 * stdout: every record as one JSON line on the agent's stdout, byte for byte like the agent's
 * built-in stdout output with format json_lines (the C twin of guests/rust/stdout).
 *
 * Keys (the built-in output's, with its defaults):
 * - json_date_key ("date"): key of the record time; false/off/no leaves it out.
 * - json_date_format ("double"): double, epoch, epoch_ms, iso8601 or java_sql_timestamp.
 * - escape_unicode ("on"): the agent's [SERVICE] json.escape_unicode; on writes non-ASCII as
 *   \uXXXX like the agent does by default, off keeps UTF-8 as is.
 *
 * The host renders the lines with these keys (the guest asks for JSON lines with them) and this
 * guest writes them through; it has no renderer of its own, so wasm_event_format msgpack or
 * otlp_json is refused.
 *
 * It also counts the records it prints per tag, as the guest metric
 * fluentbit_wasm_guest_records_printed_total{name="<output>",tag="<tag>"}.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "out_wasm_guest.h"

static owg_counter printed;

static owg_status preferred_event_format(const owg_config *config, owg_event_format *format, char **message) {
    format->kind = OWG_FORMAT_JSON_LINES;
    return owg_json_options_from_config(&format->json, config, message);
}

static owg_status init(const owg_init_context *ctx, char **message) {
    if (ctx->event_format.kind != OWG_FORMAT_JSON_LINES)
        return owg_fail(message, OWG_ERROR,
                        "this guest prints the JSON lines the host renders: remove wasm_event_format "
                        "(or set it to json_lines)");
    if (owg_counter_declare(&printed, "records_printed", "records written to stdout", (const char *[]){ "tag" }, 1,
                            message) != 0)
        return OWG_ERROR;
    return OWG_OK;
}

static owg_status flush(const owg_chunk *chunk, char **message) {
    const char *data = (const char *)chunk->data;
    size_t len = chunk->len, records = 0;
    /* JSON escapes newlines inside values: each one ends a record. */
    for (const char *p = data; (p = memchr(p, '\n', len - (size_t)(p - data))) != NULL; p++) records++;
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

OWG_EXPORT_OUTPUT((owg_output){
    .keys = OWG_JSON_LINES_KEYS,
    .key_count = OWG_JSON_LINES_KEY_COUNT,
    .preferred_event_format = preferred_event_format,
    .init = init,
    .flush = flush,
});
