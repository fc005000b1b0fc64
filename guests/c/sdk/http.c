/*
 * owg_http_send: one HTTP exchange over wasi:http/outgoing-handler (the host's client: kept-alive
 * connections, TLS with the host's roots and wasm_tls_ca_file, every request judged by
 * wasm_allow_net), waiting with wasi:io/poll against one timer, so that the whole exchange
 * (sending the body, the answer, its body) ends by the deadline: a slow endpoint is an answer the
 * guest can give (a retry), never a flush the host has to stop.
 *
 * Resources are dropped children first (pollables, then streams, then bodies, then the response
 * and its future): the host refuses to drop a resource that still has children.
 */
#include "out_wasm_guest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define MILLISECOND 1000000ull
/* What owg_http_send keeps of an answer's body when the request does not say. */
#define DEFAULT_MAX_RESPONSE_BODY (1u << 20)
/* The most a single write or read moves: wasi streams take and give at most what they can. */
#define PIECE 65536u

static void *checked(void *p) {
    if (!p) abort(); /* out of guest memory: a trap, as in any language */
    return p;
}

static owg_http_result fail(char **message, owg_http_result result, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static owg_http_result fail(char **message, owg_http_result result, const char *format, ...) {
    if (!message) return result;
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(NULL, 0, format, ap);
    va_end(ap);
    size_t size = n > 0 ? (size_t)n + 1 : 1;
    *message = checked(malloc(size));
    va_start(ap, format);
    vsnprintf(*message, size, format, ap);
    va_end(ap);
    return result;
}

/* ---- URLs -------------------------------------------------------------------------------- */

typedef struct url {
    bool https;
    const char *authority;
    size_t authority_len;
    const char *path; /* the path and query, NUL-terminated; "" for "/" */
} url;

static bool parse_url(const char *text, url *out, char **message) {
    const char *rest;
    if (!strncasecmp(text, "http://", 7)) {
        out->https = false;
        rest = text + 7;
    } else if (!strncasecmp(text, "https://", 8)) {
        out->https = true;
        rest = text + 8;
    } else {
        fail(message, OWG_HTTP_INVALID, "invalid url \"%s\": expected http:// or https://", text);
        return false;
    }
    out->authority = rest;
    out->authority_len = strcspn(rest, "/?#");
    if (out->authority_len == 0) {
        fail(message, OWG_HTTP_INVALID, "invalid url \"%s\": no host", text);
        return false;
    }
    out->path = rest + out->authority_len;
    return true;
}

owg_status owg_http_check_url(const char *text, char **message) {
    url u;
    return parse_url(text, &u, message) ? OWG_OK : OWG_ERROR;
}

/* ---- Error codes ------------------------------------------------------------------------- */

/* The WIT names of wasi:http's error-code cases, in their order. */
static const char *const ERROR_CODES[] = {
    "DNS-timeout", "DNS-error", "destination-not-found", "destination-unavailable", "destination-IP-prohibited",
    "destination-IP-unroutable", "connection-refused", "connection-terminated", "connection-timeout",
    "connection-read-timeout", "connection-write-timeout", "connection-limit-reached", "TLS-protocol-error",
    "TLS-certificate-error", "TLS-alert-received", "HTTP-request-denied", "HTTP-request-length-required",
    "HTTP-request-body-size", "HTTP-request-method-invalid", "HTTP-request-URI-invalid", "HTTP-request-URI-too-long",
    "HTTP-request-header-section-size", "HTTP-request-header-size", "HTTP-request-trailer-section-size",
    "HTTP-request-trailer-size", "HTTP-response-incomplete", "HTTP-response-header-section-size",
    "HTTP-response-header-size", "HTTP-response-body-size", "HTTP-response-trailer-section-size",
    "HTTP-response-trailer-size", "HTTP-response-transfer-coding", "HTTP-response-content-coding",
    "HTTP-response-timeout", "HTTP-upgrade-failed", "HTTP-protocol-error", "loop-detected", "configuration-error",
    "internal-error",
};

/* The outcome for a failed exchange: its kind, and a message naming the error code (with the
 * text it carries, if any). Frees the code. */
static owg_http_result transport(wasi_http_types_error_code_t *code, const url *u, const char *when, char **message) {
    owg_http_result result;
    const char *name = code->tag < sizeof ERROR_CODES / sizeof ERROR_CODES[0] ? ERROR_CODES[code->tag] : "unknown";
    const http_output_plugin_option_string_t *detail = NULL;
    switch (code->tag) {
    case WASI_HTTP_TYPES_ERROR_CODE_HTTP_REQUEST_DENIED:
        result = fail(message, OWG_HTTP_DENIED, "the host denied the request to %.*s: grant it with wasm_allow_net",
                      (int)u->authority_len, u->authority);
        wasi_http_types_error_code_free(code);
        return result;
    case WASI_HTTP_TYPES_ERROR_CODE_DNS_TIMEOUT:
    case WASI_HTTP_TYPES_ERROR_CODE_CONNECTION_TIMEOUT:
    case WASI_HTTP_TYPES_ERROR_CODE_CONNECTION_READ_TIMEOUT:
    case WASI_HTTP_TYPES_ERROR_CODE_CONNECTION_WRITE_TIMEOUT:
    case WASI_HTTP_TYPES_ERROR_CODE_HTTP_RESPONSE_TIMEOUT:
        result = OWG_HTTP_TIMEOUT;
        break;
    case WASI_HTTP_TYPES_ERROR_CODE_DNS_ERROR:
        detail = &code->val.dns_error.rcode;
        result = OWG_HTTP_FAILED;
        break;
    case WASI_HTTP_TYPES_ERROR_CODE_TLS_ALERT_RECEIVED:
        detail = &code->val.tls_alert_received.alert_message;
        result = OWG_HTTP_FAILED;
        break;
    case WASI_HTTP_TYPES_ERROR_CODE_INTERNAL_ERROR:
        detail = &code->val.internal_error;
        result = OWG_HTTP_FAILED;
        break;
    default:
        result = OWG_HTTP_FAILED;
    }
    if (detail && detail->is_some)
        fail(message, result, "request failed: %s (%.*s)%s", name, (int)detail->val.len, (const char *)detail->val.ptr,
             when);
    else
        fail(message, result, "request failed: %s%s", name, when);
    wasi_http_types_error_code_free(code);
    return result;
}

/* The outcome for a failed stream operation; drops the stream error. */
static owg_http_result stream_failed(wasi_io_streams_stream_error_t *err, const url *u, const char *when,
                                     char **message) {
    if (err->tag == WASI_IO_STREAMS_STREAM_ERROR_CLOSED)
        return fail(message, OWG_HTTP_FAILED, "request failed: the connection closed%s", when);
    wasi_io_error_own_error_t io = err->val.last_operation_failed;
    wasi_http_types_error_code_t code;
    owg_http_result result;
    if (wasi_http_types_http_error_code(wasi_io_error_borrow_error(io), &code)) {
        result = transport(&code, u, when, message);
    } else {
        http_output_plugin_string_t text;
        wasi_io_error_method_error_to_debug_string(wasi_io_error_borrow_error(io), &text);
        result = fail(message, OWG_HTTP_FAILED, "request failed: %.*s%s", (int)text.len, (const char *)text.ptr, when);
        http_output_plugin_string_free(&text);
    }
    wasi_io_error_error_drop_own(io);
    return result;
}

/* ---- Waiting ----------------------------------------------------------------------------- */

/* The deadline of one exchange, as a timer to poll with; no timer without a deadline. */
typedef struct timer {
    bool set;
    bool from_call; /* the budget is the call's deadline less a margin, not the request's timeout */
    uint64_t budget; /* nanoseconds, for messages */
    wasi_io_poll_own_pollable_t pollable;
} timer;

/* Waits until `pollable` is ready (true) or the timer fires first (false); drops `pollable`. */
static bool wait(wasi_io_poll_own_pollable_t pollable, const timer *t) {
    bool ready = true;
    if (t->set) {
        wasi_io_poll_borrow_pollable_t both[2] = { wasi_io_poll_borrow_pollable(pollable),
                                                  wasi_io_poll_borrow_pollable(t->pollable) };
        wasi_io_poll_list_borrow_pollable_t list = { both, 2 };
        http_output_plugin_list_u32_t which;
        wasi_io_poll_poll(&list, &which);
        ready = false;
        for (size_t i = 0; i < which.len; i++) ready |= which.ptr[i] == 0;
        http_output_plugin_list_u32_free(&which);
    } else {
        wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(pollable));
    }
    wasi_io_poll_pollable_drop_own(pollable);
    return ready;
}

static owg_http_result timed_out(const timer *t, const char *when, char **message) {
    return fail(message, OWG_HTTP_TIMEOUT, "request failed: no answer within %llu ms%s (%s)",
                (unsigned long long)(t->budget / MILLISECOND), when,
                t->from_call ? "the call's deadline less a margin" : "the request's timeout");
}

/* How long an exchange may take: the request's timeout, within the current call's time left
 * less a margin (a tenth of it, at least 50 ms) for answering the host. False: no limit. */
static bool budget_of(const owg_http_request *request, timer *t) {
    bool limited = request->timeout > 0;
    uint64_t *budget = &t->budget;
    *budget = request->timeout;
    if (owg_current_call.has_deadline) {
        uint64_t now = wasi_clocks_monotonic_clock_now();
        uint64_t left = owg_current_call.deadline > now ? owg_current_call.deadline - now : 0;
        uint64_t margin = left / 10 > 50 * MILLISECOND ? left / 10 : 50 * MILLISECOND;
        uint64_t call = left > margin ? left - margin : 0;
        if (!limited || call < *budget) {
            *budget = call;
            t->from_call = true;
        }
        limited = true;
    }
    return limited;
}

/* ---- The exchange ------------------------------------------------------------------------ */

static void method_of(const char *name, wasi_http_types_method_t *method) {
    static const char *const names[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH" };
    for (uint8_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!strcmp(name, names[i])) {
            method->tag = i;
            return;
        }
    }
    method->tag = WASI_HTTP_TYPES_METHOD_OTHER;
    method->val.other.ptr = (uint8_t *)name;
    method->val.other.len = strlen(name);
}

/* The request's headers as fields, with a content-length for a body unless the guest gave one. */
static bool headers_of(const owg_http_request *request, const char *method, wasi_http_types_own_fields_t *fields,
                       char **message) {
    size_t n = request->header_count;
    bool has_length = false;
    for (size_t i = 0; i < n; i++) has_length |= !strcasecmp(request->headers[i].name, "content-length");
    bool needs_length = !has_length && (request->body_len > 0 || !strcmp(method, "POST") || !strcmp(method, "PUT") ||
                                        !strcmp(method, "PATCH"));
    wasi_http_types_tuple2_field_name_field_value_t *entries = checked(calloc(n + 1, sizeof *entries));
    for (size_t i = 0; i < n; i++) {
        entries[i].f0 = (http_output_plugin_string_t){ (uint8_t *)request->headers[i].name,
                                                       strlen(request->headers[i].name) };
        entries[i].f1 = (wasi_http_types_field_value_t){ (uint8_t *)request->headers[i].value,
                                                         strlen(request->headers[i].value) };
    }
    char length[24];
    if (needs_length) {
        snprintf(length, sizeof length, "%zu", request->body_len);
        entries[n].f0 = (http_output_plugin_string_t){ (uint8_t *)"content-length", 14 };
        entries[n].f1 = (wasi_http_types_field_value_t){ (uint8_t *)length, strlen(length) };
    }
    wasi_http_types_list_tuple2_field_name_field_value_t list = { entries, n + needs_length };
    wasi_http_types_header_error_t err;
    bool ok = wasi_http_types_static_fields_from_list(&list, fields, &err);
    free(entries);
    if (!ok) {
        static const char *const reasons[] = { "invalid syntax", "forbidden", "immutable" };
        fail(message, OWG_HTTP_INVALID, "invalid request headers: %s (the host refuses one of them)",
             err.tag < 3 ? reasons[err.tag] : "refused");
    }
    return ok;
}

/* Waits until the stream takes bytes (true, with *room set) or fails or times out (false, with
 * *result set): check-write answers 0 while the stream is full, and after a flush until the
 * flush is done. */
static bool writable(wasi_io_streams_borrow_output_stream_t out, uint64_t *room, const timer *t, const url *u,
                     owg_http_result *result, char **message) {
    for (;;) {
        wasi_io_streams_stream_error_t err;
        if (!wasi_io_streams_method_output_stream_check_write(out, room, &err)) {
            *result = stream_failed(&err, u, " while sending the request", message);
            return false;
        }
        if (*room > 0) return true;
        if (!wait(wasi_io_streams_method_output_stream_subscribe(out), t)) {
            *result = timed_out(t, " while sending the request", message);
            return false;
        }
    }
}

/* Writes body to the request's stream and waits for it to be flushed, within the timer.
 * OWG_HTTP_OK when sent. */
static owg_http_result send_body(wasi_io_streams_own_output_stream_t stream, const uint8_t *body, size_t len,
                                 const timer *t, const url *u, char **message) {
    wasi_io_streams_borrow_output_stream_t out = wasi_io_streams_borrow_output_stream(stream);
    wasi_io_streams_stream_error_t err;
    owg_http_result result = OWG_HTTP_OK;
    uint64_t room;
    while (len > 0) {
        if (!writable(out, &room, t, u, &result, message)) return result;
        size_t n = len < room ? len : (size_t)room;
        if (n > PIECE) n = PIECE;
        http_output_plugin_list_u8_t piece = { (uint8_t *)body, n };
        if (!wasi_io_streams_method_output_stream_write(out, &piece, &err))
            return stream_failed(&err, u, " while sending the request", message);
        body += n;
        len -= n;
    }
    if (!wasi_io_streams_method_output_stream_flush(out, &err))
        return stream_failed(&err, u, " while sending the request", message);
    writable(out, &room, t, u, &result, message);
    return result;
}

/* Reads the answer's body into response, within the timer. */
static owg_http_result read_body(wasi_http_types_borrow_incoming_response_t incoming, size_t max,
                                 owg_http_response *response, const timer *t, const url *u, char **message) {
    wasi_http_types_own_incoming_body_t body;
    if (!wasi_http_types_method_incoming_response_consume(incoming, &body)) return OWG_HTTP_OK;
    wasi_http_types_own_input_stream_t stream;
    owg_http_result result = OWG_HTTP_OK;
    if (wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(body), &stream)) {
        wasi_io_streams_borrow_input_stream_t in = wasi_io_streams_borrow_input_stream(stream);
        size_t cap = 0;
        for (;;) {
            http_output_plugin_list_u8_t piece;
            wasi_io_streams_stream_error_t err;
            if (!wasi_io_streams_method_input_stream_read(in, PIECE, &piece, &err)) {
                if (err.tag != WASI_IO_STREAMS_STREAM_ERROR_CLOSED)
                    result = stream_failed(&err, u, " while reading the answer", message);
                break; /* closed: the whole body is in */
            }
            if (piece.len == 0) {
                http_output_plugin_list_u8_free(&piece);
                if (!wait(wasi_io_streams_method_input_stream_subscribe(in), t)) {
                    result = timed_out(t, " while reading the answer", message);
                    break;
                }
                continue;
            }
            size_t keep = max - response->body_len < piece.len ? max - response->body_len : piece.len;
            if (response->body_len + keep + 1 > cap) {
                cap = (response->body_len + keep + 1) * 2;
                if (cap > max + 1) cap = max + 1;
                response->body = checked(realloc(response->body, cap));
            }
            memcpy(response->body + response->body_len, piece.ptr, keep);
            response->body_len += keep;
            response->body[response->body_len] = 0;
            http_output_plugin_list_u8_free(&piece);
            if (keep < piece.len) {
                /* The rest is not kept: stop reading, the connection is not reused. */
                response->truncated = true;
                break;
            }
        }
        wasi_io_streams_input_stream_drop_own(stream);
    }
    wasi_http_types_future_trailers_drop_own(wasi_http_types_static_incoming_body_finish(body));
    return result;
}

static void headers_into(wasi_http_types_borrow_incoming_response_t incoming, owg_http_response *response) {
    wasi_http_types_own_headers_t fields = wasi_http_types_method_incoming_response_headers(incoming);
    wasi_http_types_list_tuple2_field_name_field_value_t entries;
    wasi_http_types_method_fields_entries(wasi_http_types_borrow_fields(fields), &entries);
    response->header_count = entries.len;
    response->headers = entries.len ? checked(calloc(entries.len, sizeof *response->headers)) : NULL;
    for (size_t i = 0; i < entries.len; i++) {
        response->headers[i].name = owg_string_dup(&entries.ptr[i].f0);
        http_output_plugin_string_t value = { entries.ptr[i].f1.ptr, entries.ptr[i].f1.len };
        response->headers[i].value = owg_string_dup(&value);
    }
    wasi_http_types_list_tuple2_field_name_field_value_free(&entries);
    wasi_http_types_fields_drop_own(fields);
}

/* result, with the message in *from moved to *message (or dropped). */
static owg_http_result pass_on(owg_http_result result, char **from, char **message) {
    if (message) *message = *from;
    else free(*from);
    *from = NULL;
    return result;
}

owg_http_result owg_http_send(const owg_http_request *request, owg_http_response *response, char **message) {
    memset(response, 0, sizeof *response);
    if (message) *message = NULL;
    url u;
    if (!parse_url(request->url, &u, message)) return OWG_HTTP_INVALID;
    const char *method_name = request->method ? request->method : "GET";
    wasi_http_types_method_t method;
    method_of(method_name, &method);

    timer t = { 0 };
    t.set = budget_of(request, &t);
    if (t.set && t.budget == 0)
        return fail(message, OWG_HTTP_TIMEOUT, "request failed: no time left for a request (the deadline less a margin)");

    wasi_http_types_own_fields_t fields;
    if (!headers_of(request, method_name, &fields, message)) return OWG_HTTP_INVALID;
    wasi_http_types_own_outgoing_request_t outgoing = wasi_http_types_constructor_outgoing_request(fields);
    wasi_http_types_borrow_outgoing_request_t req = wasi_http_types_borrow_outgoing_request(outgoing);
    wasi_http_types_scheme_t scheme = { .tag = u.https ? WASI_HTTP_TYPES_SCHEME_HTTPS : WASI_HTTP_TYPES_SCHEME_HTTP };
    http_output_plugin_string_t authority = { (uint8_t *)u.authority, u.authority_len };
    /* The path and query, "/" when the url has none (a query alone gets its "/"). */
    size_t path_len = strcspn(u.path, "#");
    char *path = checked(malloc(path_len + 2));
    size_t slash = path_len == 0 || u.path[0] != '/';
    path[0] = '/';
    memcpy(path + slash, u.path, path_len);
    path[slash + path_len] = 0;
    http_output_plugin_string_t path_with_query = { (uint8_t *)path, slash + path_len };
    bool set = wasi_http_types_method_outgoing_request_set_method(req, &method) &&
               wasi_http_types_method_outgoing_request_set_scheme(req, &scheme) &&
               wasi_http_types_method_outgoing_request_set_authority(req, &authority) &&
               wasi_http_types_method_outgoing_request_set_path_with_query(req, &path_with_query);
    free(path);
    wasi_http_types_own_outgoing_body_t body;
    if (!set || !wasi_http_types_method_outgoing_request_body(req, &body)) {
        wasi_http_types_outgoing_request_drop_own(outgoing);
        return fail(message, OWG_HTTP_INVALID, "the host refused the request's method or url (%s %s)", method_name,
                    request->url);
    }
    wasi_http_types_own_output_stream_t stream;
    bool has_stream = wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &stream);

    /* The host's client gives up by itself too: its connect and first-byte timeouts are the
     * budget (a host that refuses them still meets the timer). */
    wasi_http_types_own_request_options_t options = { 0 };
    if (t.set) {
        options = wasi_http_types_constructor_request_options();
        wasi_http_types_borrow_request_options_t o = wasi_http_types_borrow_request_options(options);
        wasi_http_types_method_request_options_set_connect_timeout(o, &t.budget);
        wasi_http_types_method_request_options_set_first_byte_timeout(o, &t.budget);
        wasi_http_types_method_request_options_set_between_bytes_timeout(o, &t.budget);
        t.pollable = wasi_clocks_monotonic_clock_subscribe_duration(t.budget);
    }
    wasi_http_types_own_future_incoming_response_t future;
    wasi_http_types_error_code_t code;
    if (!wasi_http_outgoing_handler_handle(outgoing, t.set ? &options : NULL, &future, &code)) {
        if (has_stream) wasi_io_streams_output_stream_drop_own(stream);
        wasi_http_types_outgoing_body_drop_own(body);
        if (t.set) wasi_io_poll_pollable_drop_own(t.pollable);
        return transport(&code, &u, "", message);
    }

    /* A request the host refuses fails its body stream too, and the answer says why: the
     * answer is awaited even when sending failed, and it wins. */
    char *send_error = NULL;
    owg_http_result sent = OWG_HTTP_OK;
    if (has_stream) {
        sent = send_body(stream, request->body, request->body_len, &t, &u, &send_error);
        wasi_io_streams_output_stream_drop_own(stream);
    }
    if (sent == OWG_HTTP_OK) {
        if (!wasi_http_types_static_outgoing_body_finish(body, NULL, &code))
            sent = transport(&code, &u, " while sending the request", &send_error);
    } else {
        wasi_http_types_outgoing_body_drop_own(body);
    }

    owg_http_result result;
    wasi_http_types_borrow_future_incoming_response_t pending = wasi_http_types_borrow_future_incoming_response(future);
    wasi_http_types_result_result_own_incoming_response_error_code_void_t answer;
    if (sent == OWG_HTTP_TIMEOUT) {
        result = pass_on(sent, &send_error, message);
    } else if (!wait(wasi_http_types_method_future_incoming_response_subscribe(pending), &t)) {
        result = timed_out(&t, "", message);
    } else if (!wasi_http_types_method_future_incoming_response_get(pending, &answer) || answer.is_err) {
        /* No answer: what went wrong while sending, if anything did, says why. */
        result = sent != OWG_HTTP_OK ? pass_on(sent, &send_error, message)
                                     : fail(message, OWG_HTTP_FAILED, "request failed: no answer");
    } else if (answer.val.ok.is_err) {
        result = transport(&answer.val.ok.val.err, &u, "", message);
    } else {
        /* An answer is the endpoint's word, even when sending failed: it may answer (and close)
         * before it has read the whole body, or as the last bytes leave. */
        wasi_http_types_own_incoming_response_t incoming = answer.val.ok.val.ok;
        wasi_http_types_borrow_incoming_response_t in = wasi_http_types_borrow_incoming_response(incoming);
        response->status = wasi_http_types_method_incoming_response_status(in);
        headers_into(in, response);
        size_t max = request->max_response_body ? request->max_response_body : DEFAULT_MAX_RESPONSE_BODY;
        result = read_body(in, max, response, &t, &u, message);
        wasi_http_types_incoming_response_drop_own(incoming);
        if (result != OWG_HTTP_OK) owg_http_response_free(response);
    }
    free(send_error);
    wasi_http_types_future_incoming_response_drop_own(future);
    if (t.set) wasi_io_poll_pollable_drop_own(t.pollable);
    return result;
}

const owg_http_header *owg_http_response_header(const owg_http_response *response, const char *name) {
    for (size_t i = 0; i < response->header_count; i++)
        if (!strcasecmp(response->headers[i].name, name)) return &response->headers[i];
    return NULL;
}

void owg_http_response_free(owg_http_response *response) {
    for (size_t i = 0; i < response->header_count; i++) {
        free((char *)response->headers[i].name);
        free((char *)response->headers[i].value);
    }
    free(response->headers);
    free(response->body);
    memset(response, 0, sizeof *response);
}
