/*
 * http: POSTs each chunk's records as one JSON array to an endpoint, over the host's outbound
 * HTTP (owg_http_send, wasi:http); the C twin of guests/rust/http. The endpoint's host:port must
 * be granted with wasm_allow_net.
 *
 * Keys:
 * - url (required): http://host:port/path or https://...
 * - json_date_key ("date"), json_date_format ("double"), escape_unicode ("on"): as for the
 *   stdout guest.
 *
 * Answers: 2xx is delivered; 5xx, 408, 429 and failures to connect or to get an answer in time
 * are retried (the agent flushes the chunk again later); other 4xx drop the chunk (the endpoint
 * refuses it and would again), as does a request the host denies (no grant). One request per
 * chunk, so a retried chunk is sent whole and once more; nothing is split across requests that
 * could half-succeed. Each request carries the chunk's delivery id as its Idempotency-Key
 * header: the same on every delivery of the chunk, so an endpoint that honours the header
 * stores a retried chunk once.
 *
 * The host renders the records as JSON lines with the three keys (the guest asks for that
 * format); the body is those lines joined as one array. With wasm_event_format msgpack or
 * otlp_json the guest refuses to start: it has no renderer of its own.
 *
 * The request ends by the flush's deadline less a margin (the SDK's bound): an endpoint too slow
 * to answer in time is a clean retry, not a deadline fault that discards the instance. Delivery
 * is at least once: a request the endpoint took but answered too late is sent again with the
 * retried chunk.
 */
#include <stdlib.h>
#include <string.h>

#include "out_wasm_guest.h"

static const owg_config_key keys[] = {
    { "url", "where to POST: http://host:port/path or https://...", NULL, true },
    OWG_JSON_LINES_KEY_ENTRIES,
};

static char *url;
/* The request body, reused from flush to flush. */
static char *body;
static size_t body_cap;

static owg_status preferred_event_format(const owg_config *config, owg_event_format *format, char **message) {
    format->kind = OWG_FORMAT_JSON_LINES;
    return owg_json_options_from_config(&format->json, config, message);
}

static owg_status init(const owg_init_context *ctx, char **message) {
    if (ctx->event_format.kind != OWG_FORMAT_JSON_LINES)
        return owg_fail(message, OWG_ERROR,
                        "this guest posts the JSON lines the host renders: remove wasm_event_format "
                        "(or set it to json_lines)");
    const char *configured = owg_config_get(&ctx->config, "url");
    if (owg_http_check_url(configured ? configured : "", message) != OWG_OK) return OWG_ERROR;
    url = strdup(configured);
    return url ? OWG_OK : owg_fail(message, OWG_ERROR, "out of memory");
}

/* The chunk's lines (one JSON object and a newline each) as one array: "[line,line,...]". */
static size_t join(const char *lines, size_t len, size_t *records) {
    if (len + 2 > body_cap) {
        body_cap = len + 2;
        body = realloc(body, body_cap);
        if (!body) abort(); /* out of guest memory: a trap */
    }
    size_t n = 0;
    *records = 0;
    body[n++] = '[';
    for (const char *line = lines, *end = lines + len; line < end;) {
        const char *newline = memchr(line, '\n', (size_t)(end - line));
        size_t line_len = (size_t)((newline ? newline : end) - line);
        if (line_len > 0) {
            if (*records > 0) body[n++] = ',';
            memcpy(body + n, line, line_len);
            n += line_len;
            ++*records;
        }
        line += line_len + 1;
    }
    body[n++] = ']';
    return n;
}

static owg_status flush(const owg_chunk *chunk, char **message) {
    size_t records;
    size_t len = join((const char *)chunk->data, chunk->len, &records);
    owg_http_header headers[] = {
        { "content-type", "application/json" },
        { "idempotency-key", chunk->delivery.id },
    };
    owg_http_request request = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .header_count = 2,
        .body = body,
        .body_len = len,
    };
    owg_http_response response;
    switch (owg_http_send(&request, &response, message)) {
    case OWG_HTTP_OK:
        break;
    case OWG_HTTP_TIMEOUT:
    case OWG_HTTP_FAILED:
        return OWG_RETRY; /* *message: "request failed: ..." */
    case OWG_HTTP_DENIED:
    case OWG_HTTP_INVALID:
    default:
        return OWG_ERROR; /* *message names wasm_allow_net, or what is wrong with the request */
    }
    unsigned status = response.status;
    owg_http_response_free(&response);
    if (status >= 200 && status <= 299) {
        owg_log_debug("posted %zu records: %u", records, status);
        return OWG_OK;
    }
    if (status == 408 || status == 429 || (status >= 500 && status <= 599))
        return owg_fail(message, OWG_RETRY, "the endpoint answered %u", status);
    return owg_fail(message, OWG_ERROR, "the endpoint refused the records: %u", status);
}

static void finish(const uint64_t *time_left) {
    (void)time_left;
    free(url);
    free(body);
    url = body = NULL;
    body_cap = 0;
}

OWG_EXPORT_OUTPUT((owg_output){
    .keys = keys,
    .key_count = sizeof keys / sizeof keys[0],
    .preferred_event_format = preferred_event_format,
    .init = init,
    .flush = flush,
    .exit = finish,
});
