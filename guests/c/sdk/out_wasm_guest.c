/*
 * The C guest SDK: the chunk decoder and the agent's JSON rendering, ported from the Rust SDK
 * (guests/rust/sdk/src: msgpack.rs, event.rs, value.rs), and the glue between an owg_output
 * and the bindings wit-bindgen generates for the output-plugin world.
 */
#include "out_wasm_guest.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "output_plugin.h"

/* Nesting deeper than this is refused: a hostile chunk must not exhaust the guest's stack. */
#define MAX_DEPTH 256

/* ---- Buffer ----------------------------------------------------------------------------- */

static void buf_reserve(owg_buf *b, size_t more) {
    if (b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) abort(); /* out of guest memory: a trap, as in any language */
    b->data = data;
    b->cap = cap;
}

static void buf_put(owg_buf *b, const void *p, size_t n) {
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_byte(owg_buf *b, char c) {
    buf_reserve(b, 1);
    b->data[b->len++] = c;
}

static void buf_str(owg_buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static void buf_printf(owg_buf *b, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(owg_buf *b, const char *format, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(tmp, sizeof tmp, format, ap);
    va_end(ap);
    if (n > 0) buf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

void owg_buf_free(owg_buf *buf) {
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

/* ---- Decoding --------------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *start;
    const uint8_t *pos;
    const uint8_t *end;
    owg_error *err;
} reader;

static bool fail(reader *r, const uint8_t *at, const char *format, ...) __attribute__((format(printf, 3, 4)));
static bool fail(reader *r, const uint8_t *at, const char *format, ...) {
    char reason[160];
    va_list ap;
    va_start(ap, format);
    vsnprintf(reason, sizeof reason, format, ap);
    va_end(ap);
    r->err->offset = (size_t)(at - r->start);
    snprintf(r->err->message, sizeof r->err->message, "malformed chunk at byte offset %zu: %s", r->err->offset, reason);
    return false;
}

static bool need(reader *r, size_t n, const char *what) {
    if ((size_t)(r->end - r->pos) < n)
        return fail(r, r->pos, "truncated: %s needs %zu bytes, %zu left", what, n, (size_t)(r->end - r->pos));
    return true;
}

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static bool fixed(reader *r, int n, const char *what, uint64_t *out) {
    if (!need(r, (size_t)n, what)) return false;
    *out = be(r->pos, n);
    r->pos += n;
    return true;
}

static bool value_at(reader *r, owg_value *v, int depth);

static bool skip_items(reader *r, uint32_t n, int depth) {
    owg_value ignored;
    for (uint32_t i = 0; i < n; i++)
        if (!value_at(r, &ignored, depth + 1)) return false;
    return true;
}

static bool container(reader *r, owg_value *v, owg_kind kind, uint64_t count, int depth, const uint8_t *at) {
    uint64_t values = kind == OWG_MAP ? count * 2 : count;
    size_t left = (size_t)(r->end - r->pos);
    /* Every value takes at least one byte: a count beyond the rest of the chunk is a lie. */
    if (values > left)
        return fail(r, at, "truncated: %s of %llu entries, only %zu bytes left", kind == OWG_MAP ? "map" : "array",
                    (unsigned long long)count, left);
    v->kind = kind;
    v->as.items.ptr = r->pos;
    v->as.items.count = (uint32_t)count;
    if (!skip_items(r, (uint32_t)values, depth)) return false;
    v->as.items.end = r->pos;
    return true;
}

static bool bytes_of(reader *r, owg_value *v, owg_kind kind, uint64_t n, const char *what) {
    if (!need(r, (size_t)n, what)) return false;
    v->kind = kind;
    v->as.bytes.ptr = r->pos;
    v->as.bytes.len = (size_t)n;
    r->pos += n;
    return true;
}

static bool ext_of(reader *r, owg_value *v, uint64_t n) {
    uint64_t type;
    if (!fixed(r, 1, "an extension type", &type)) return false;
    if (!need(r, (size_t)n, "an extension payload")) return false;
    v->kind = OWG_EXT;
    v->as.ext.type = (int8_t)(uint8_t)type;
    v->as.ext.ptr = r->pos;
    v->as.ext.len = (size_t)n;
    r->pos += n;
    return true;
}

static bool value_at(reader *r, owg_value *v, int depth) {
    const uint8_t *at = r->pos;
    uint64_t n;
    if (depth > MAX_DEPTH) return fail(r, at, "nesting deeper than %d levels", MAX_DEPTH);
    if (!need(r, 1, "a marker")) return false;
    uint8_t b = *r->pos++;
    if (b <= 0x7f) { v->kind = OWG_UINT; v->as.u = b; return true; }
    if (b >= 0xe0) { v->kind = OWG_INT; v->as.i = (int8_t)b; return true; }
    if (b >= 0xa0 && b <= 0xbf) return bytes_of(r, v, OWG_STR, b & 0x1f, "a string");
    if (b >= 0x80 && b <= 0x8f) return container(r, v, OWG_MAP, b & 0x0f, depth, at);
    if (b >= 0x90 && b <= 0x9f) return container(r, v, OWG_ARRAY, b & 0x0f, depth, at);
    switch (b) {
    case 0xc0: v->kind = OWG_NIL; return true;
    case 0xc2: v->kind = OWG_BOOL; v->as.b = false; return true;
    case 0xc3: v->kind = OWG_BOOL; v->as.b = true; return true;
    case 0xcc: v->kind = OWG_UINT; return fixed(r, 1, "a u8", &v->as.u);
    case 0xcd: v->kind = OWG_UINT; return fixed(r, 2, "a u16", &v->as.u);
    case 0xce: v->kind = OWG_UINT; return fixed(r, 4, "a u32", &v->as.u);
    case 0xcf: v->kind = OWG_UINT; return fixed(r, 8, "a u64", &v->as.u);
    case 0xd0: if (!fixed(r, 1, "an i8", &n)) return false; v->kind = OWG_INT; v->as.i = (int8_t)n; return true;
    case 0xd1: if (!fixed(r, 2, "an i16", &n)) return false; v->kind = OWG_INT; v->as.i = (int16_t)n; return true;
    case 0xd2: if (!fixed(r, 4, "an i32", &n)) return false; v->kind = OWG_INT; v->as.i = (int32_t)n; return true;
    case 0xd3: if (!fixed(r, 8, "an i64", &n)) return false; v->kind = OWG_INT; v->as.i = (int64_t)n; return true;
    case 0xca: {
        if (!fixed(r, 4, "a f32", &n)) return false;
        uint32_t bits = (uint32_t)n;
        float f;
        memcpy(&f, &bits, 4);
        v->kind = OWG_FLOAT;
        v->as.f = f;
        return true;
    }
    case 0xcb: {
        if (!fixed(r, 8, "a f64", &n)) return false;
        v->kind = OWG_FLOAT;
        memcpy(&v->as.f, &n, 8);
        return true;
    }
    case 0xd9: return fixed(r, 1, "a string length", &n) && bytes_of(r, v, OWG_STR, n, "a string");
    case 0xda: return fixed(r, 2, "a string length", &n) && bytes_of(r, v, OWG_STR, n, "a string");
    case 0xdb: return fixed(r, 4, "a string length", &n) && bytes_of(r, v, OWG_STR, n, "a string");
    case 0xc4: return fixed(r, 1, "a binary length", &n) && bytes_of(r, v, OWG_BIN, n, "a binary");
    case 0xc5: return fixed(r, 2, "a binary length", &n) && bytes_of(r, v, OWG_BIN, n, "a binary");
    case 0xc6: return fixed(r, 4, "a binary length", &n) && bytes_of(r, v, OWG_BIN, n, "a binary");
    case 0xdc: return fixed(r, 2, "an array length", &n) && container(r, v, OWG_ARRAY, n, depth, at);
    case 0xdd: return fixed(r, 4, "an array length", &n) && container(r, v, OWG_ARRAY, n, depth, at);
    case 0xde: return fixed(r, 2, "a map length", &n) && container(r, v, OWG_MAP, n, depth, at);
    case 0xdf: return fixed(r, 4, "a map length", &n) && container(r, v, OWG_MAP, n, depth, at);
    case 0xd4: return ext_of(r, v, 1);
    case 0xd5: return ext_of(r, v, 2);
    case 0xd6: return ext_of(r, v, 4);
    case 0xd7: return ext_of(r, v, 8);
    case 0xd8: return ext_of(r, v, 16);
    case 0xc7: return fixed(r, 1, "an extension length", &n) && ext_of(r, v, n);
    case 0xc8: return fixed(r, 2, "an extension length", &n) && ext_of(r, v, n);
    case 0xc9: return fixed(r, 4, "an extension length", &n) && ext_of(r, v, n);
    default: return fail(r, at, "reserved msgpack marker 0xc1");
    }
}

/* Re-reads a value already validated by the decoder: cannot fail. */
static void reread(const uint8_t **pos, const uint8_t *end, owg_value *v) {
    owg_error ignored;
    reader r = { *pos, *pos, end, &ignored };
    value_at(&r, v, 0);
    *pos = r.pos;
}

owg_items owg_items_of(const owg_value *container) {
    owg_items items = { container->as.items.ptr, container->as.items.end, container->as.items.count };
    return items;
}

bool owg_array_next(owg_items *items, owg_value *item) {
    if (items->left == 0) return false;
    items->left--;
    reread(&items->pos, items->end, item);
    return true;
}

bool owg_map_next(owg_items *items, owg_value *key, owg_value *value) {
    if (items->left == 0) return false;
    items->left--;
    reread(&items->pos, items->end, key);
    reread(&items->pos, items->end, value);
    return true;
}

static bool str_is(const owg_value *v, const uint8_t *p, size_t n) {
    return v->kind == OWG_STR && v->as.bytes.len == n && memcmp(v->as.bytes.ptr, p, n) == 0;
}

bool owg_map_get(const owg_value *map, const char *key, owg_value *value) {
    if (map->kind != OWG_MAP) return false;
    owg_items items = owg_items_of(map);
    owg_value k, v;
    bool found = false;
    while (owg_map_next(&items, &k, &v)) {
        if (str_is(&k, (const uint8_t *)key, strlen(key))) {
            *value = v;
            found = true;
        }
    }
    return found;
}

owg_events owg_events_of(const owg_chunk *chunk) {
    owg_events events = { chunk->data, chunk->data, chunk->data + chunk->len, false, false, { 0 } };
    return events;
}

enum stamp { STAMP_TIME, STAMP_GROUP_START, STAMP_GROUP_END };

static const char *kind_name(owg_kind kind) {
    static const char *names[] = { "nil", "a boolean", "an integer", "an integer", "a float",
                                   "a string", "a binary", "an array", "a map", "an extension" };
    return names[kind];
}

static bool read_timestamp(reader *r, enum stamp *stamp, owg_timestamp *ts) {
    const uint8_t *at = r->pos;
    owg_value v;
    if (!value_at(r, &v, 0)) return false;
    *stamp = STAMP_TIME;
    ts->nanoseconds = 0;
    switch (v.kind) {
    case OWG_EXT:
        if (v.as.ext.type == 0 && v.as.ext.len == 8) {
            uint32_t seconds = (uint32_t)be(v.as.ext.ptr, 4), nanos = (uint32_t)be(v.as.ext.ptr + 4, 4);
            /* The agent marks group boundaries with EventTime seconds 2^32-1 / 2^32-2. */
            if (nanos == 0 && seconds == 0xffffffffu) { *stamp = STAMP_GROUP_START; return true; }
            if (nanos == 0 && seconds == 0xfffffffeu) { *stamp = STAMP_GROUP_END; return true; }
            if (nanos >= 1000000000u) return fail(r, at, "EventTime has %u nanoseconds", nanos);
            ts->seconds = seconds;
            ts->nanoseconds = nanos;
            return true;
        }
        return fail(r, at, "timestamp is extension type %d of %zu bytes, not EventTime", v.as.ext.type, v.as.ext.len);
    case OWG_UINT:
        ts->seconds = v.as.u > INT64_MAX ? INT64_MAX : (int64_t)v.as.u;
        return true;
    case OWG_INT:
        if (v.as.i == -1) *stamp = STAMP_GROUP_START;
        else if (v.as.i == -2) *stamp = STAMP_GROUP_END;
        ts->seconds = v.as.i;
        return true;
    case OWG_FLOAT:
        if (isfinite(v.as.f)) {
            double whole = trunc(v.as.f);
            int64_t nanos = (int64_t)((v.as.f - whole) * 1e9);
            int64_t seconds = (int64_t)whole;
            if (nanos < 0) { seconds -= 1; nanos += 1000000000; }
            ts->seconds = seconds;
            ts->nanoseconds = (uint32_t)(nanos < 0 ? 0 : nanos > 999999999 ? 999999999 : nanos);
            return true;
        }
        /* fallthrough */
    default:
        return fail(r, at, "timestamp is %s, not a time", kind_name(v.kind));
    }
}

static bool is_array_marker(uint8_t b) { return (b >= 0x90 && b <= 0x9f) || b == 0xdc || b == 0xdd; }

static bool array_header(reader *r, uint64_t *len) {
    uint8_t b = *r->pos;
    if (b >= 0x90 && b <= 0x9f) { r->pos++; *len = b & 0x0f; return true; }
    r->pos++;
    return fixed(r, b == 0xdc ? 2 : 4, "an array length", len);
}

static const uint8_t EMPTY_MAP[] = { 0x80 };

int owg_events_next(owg_events *events, owg_event *event, owg_error *err) {
    if (events->failed) return 0;
    reader r = { events->start, events->pos, events->end, err };
    while (r.pos < r.end) {
        const uint8_t *start = r.pos;
        uint64_t n;
        enum stamp stamp;
        if (!is_array_marker(*r.pos)) { fail(&r, start, "record is not an array"); goto failed; }
        if (!array_header(&r, &n)) goto failed;
        if (n != 2) { fail(&r, start, "record is an array of %llu, not 2", (unsigned long long)n); goto failed; }
        const uint8_t *header_at = r.pos;
        if (r.pos < r.end && is_array_marker(*r.pos)) {
            if (!array_header(&r, &n)) goto failed;
            if (n != 2) { fail(&r, header_at, "record header is an array of %llu, not 2", (unsigned long long)n); goto failed; }
            if (!read_timestamp(&r, &stamp, &event->timestamp) || !value_at(&r, &event->metadata, 0)) goto failed;
        } else {
            if (!read_timestamp(&r, &stamp, &event->timestamp)) goto failed;
            event->metadata.kind = OWG_MAP;
            event->metadata.as.items.ptr = EMPTY_MAP + 1;
            event->metadata.as.items.end = EMPTY_MAP + 1;
            event->metadata.as.items.count = 0;
        }
        if (!value_at(&r, &event->body, 0)) goto failed;
        events->pos = r.pos;
        if (stamp == STAMP_GROUP_START) {
            events->has_group = true;
            events->group = event->body;
        } else if (stamp == STAMP_GROUP_END) {
            events->has_group = false;
        } else {
            event->has_group = events->has_group;
            event->group_attributes = events->group;
            return 1;
        }
    }
    events->pos = r.pos;
    return 0;
failed:
    events->failed = true;
    return -1;
}

/* ---- JSON ------------------------------------------------------------------------------- */

static void write_float(owg_buf *out, double f) {
    /* "%.1f" for integral values in long long range, else "%.16g", as the agent. */
    if (isfinite(f) && trunc(f) == f && f >= -9223372036854775808.0 && f < 9223372036854775808.0)
        buf_printf(out, "%.1f", f);
    else
        buf_printf(out, "%.16g", f);
}

static const char *ascii_escape(uint8_t c) {
    static const char *control[32] = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f",
        "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
        "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    };
    if (c < 0x20) return control[c];
    if (c == '"') return "\\\"";
    if (c == '\\') return "\\\\";
    if (c == 0x7f) return "\\u007f";
    return NULL;
}

static size_t utf8_len(uint8_t lead) {
    if (lead <= 0xbf) return 1;
    if (lead <= 0xdf) return 2;
    if (lead <= 0xef) return 3;
    if (lead <= 0xf7) return 4;
    if (lead <= 0xfb) return 5;
    return 6;
}

/* flb_utf8_decode over `announced` bytes: the length taken, and *cp when valid. */
static size_t decode_prefix(const uint8_t *s, size_t announced, bool *valid, uint32_t *cp) {
    uint8_t lead = s[0];
    uint32_t pending;
    *valid = false;
    if ((lead & 0xe0) == 0xc0) { *cp = lead & 0x1f; pending = 1; }
    else if ((lead & 0xf0) == 0xe0) { *cp = lead & 0x0f; pending = 2; }
    else if ((lead & 0xf8) == 0xf0) { *cp = lead & 0x07; pending = 3; }
    else return 1;
    for (size_t n = 1; n < announced; n++) {
        if ((s[n] & 0xc0) != 0x80) return n;
        *cp = (*cp << 6) | (s[n] & 0x3f);
        if (--pending == 0) {
            if ((*cp >= 0xd800 && *cp <= 0xdfff) || *cp > 0x10ffff) return n;
            *valid = true;
            return n + 1;
        }
    }
    return announced;
}

/* flb_utf8_validate_char: the length of the valid UTF-8 sequence at s, or 0. */
static size_t validate_char(const uint8_t *s, size_t left) {
    uint8_t c = s[0];
    int has_second = left > 1;
    uint8_t second = has_second ? s[1] : 0;
    size_t n;
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) {
        if (c < 0xc2) return 0;
        n = 2;
    } else if ((c & 0xf0) == 0xe0) {
        if ((c == 0xe0 && has_second && second < 0xa0) || (c == 0xed && has_second && second >= 0xa0)) return 0;
        n = 3;
    } else if ((c & 0xf8) == 0xf0) {
        if ((c == 0xf0 && has_second && second < 0x90) || c > 0xf4 || (c == 0xf4 && has_second && second > 0x8f)) return 0;
        n = 4;
    } else {
        return 0;
    }
    if (left < n) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return n;
}

/* flb_utils_write_str. */
static void write_str(owg_buf *out, const uint8_t *s, size_t len, bool escape_unicode) {
    size_t i = 0;
    buf_byte(out, '"');
    while (i < len) {
        size_t run = 0;
        while (i + run < len && s[i + run] < 0x80 && !ascii_escape(s[i + run])) run++;
        buf_put(out, s + i, run);
        i += run;
        if (i >= len) break;
        uint8_t c = s[i];
        const char *escape = ascii_escape(c);
        if (escape) {
            buf_str(out, escape);
            i++;
        } else if (escape_unicode) {
            size_t announced = utf8_len(c);
            if (i + announced > len) { i++; continue; }
            bool valid;
            uint32_t cp = 0;
            size_t taken = decode_prefix(s + i, announced, &valid, &cp);
            if (valid) {
                if (cp > 0xffff)
                    buf_printf(out, "\\u%04x\\u%04x", 0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
                else
                    buf_printf(out, "\\u%04x", cp);
            } else {
                /* Each byte of an invalid sequence becomes U+E0XX (XX the byte), as UTF-8. */
                for (size_t k = 0; k < taken; k++) {
                    uint8_t byte = s[i + k];
                    char stand_in[3] = { (char)0xee, (char)(0x80 | (byte >> 6)), (char)(0x80 | (byte & 0x3f)) };
                    buf_put(out, stand_in, 3);
                }
            }
            i += taken;
        } else {
            size_t n = validate_char(s + i, len - i);
            if (n == 0) {
                buf_str(out, "\xef\xbf\xbd");
                i++;
            } else {
                buf_put(out, s + i, n);
                i += n;
            }
        }
    }
    buf_byte(out, '"');
}

/* A map's entries as given (a flat key/value list), leaving out an entry whose string key
 * appears again later: the last one wins, in its own position, as the agent does. */
typedef struct entry {
    owg_value key;
    owg_value value;
} entry;

static void write_internal(owg_buf *out, const owg_event *event, bool escape_unicode);

/* `internal`, if below n, is the entry whose value is __internal__'s, built from `event`. */
static void write_entries(owg_buf *out, const entry *entries, size_t n, bool escape_unicode, size_t internal,
                          const owg_event *event) {
    bool written = false;
    buf_byte(out, '{');
    for (size_t i = 0; i < n; i++) {
        const owg_value *k = &entries[i].key;
        if (k->kind == OWG_STR) {
            bool later = false;
            for (size_t j = i + 1; j < n && !later; j++) later = str_is(&entries[j].key, k->as.bytes.ptr, k->as.bytes.len);
            if (later) continue;
        }
        if (written) buf_byte(out, ',');
        owg_write_json(out, k, escape_unicode);
        buf_byte(out, ':');
        if (i == internal) write_internal(out, event, escape_unicode);
        else owg_write_json(out, &entries[i].value, escape_unicode);
        written = true;
    }
    buf_byte(out, '}');
}

static entry *collect(const owg_value *map, size_t extra, size_t *n) {
    entry *entries = malloc((map->as.items.count + extra + 1) * sizeof *entries);
    if (!entries) abort();
    owg_items items = owg_items_of(map);
    *n = 0;
    while (owg_map_next(&items, &entries[*n + extra].key, &entries[*n + extra].value)) (*n)++;
    return entries;
}

void owg_write_json(owg_buf *out, const owg_value *v, bool escape_unicode) {
    switch (v->kind) {
    case OWG_NIL: buf_str(out, "null"); break;
    case OWG_BOOL: buf_str(out, v->as.b ? "true" : "false"); break;
    case OWG_INT: buf_printf(out, "%lld", (long long)v->as.i); break;
    case OWG_UINT: buf_printf(out, "%llu", (unsigned long long)v->as.u); break;
    case OWG_FLOAT: write_float(out, v->as.f); break;
    case OWG_STR:
    case OWG_BIN: write_str(out, v->as.bytes.ptr, v->as.bytes.len, escape_unicode); break;
    case OWG_EXT:
        buf_byte(out, '"');
        /* The agent prints each byte as a *signed* char with "\\x%02x". */
        for (size_t i = 0; i < v->as.ext.len; i++) buf_printf(out, "\\x%02x", (unsigned)(int)(int8_t)v->as.ext.ptr[i]);
        buf_byte(out, '"');
        break;
    case OWG_ARRAY: {
        owg_items items = owg_items_of(v);
        owg_value item;
        bool first = true;
        buf_byte(out, '[');
        while (owg_array_next(&items, &item)) {
            if (!first) buf_byte(out, ',');
            owg_write_json(out, &item, escape_unicode);
            first = false;
        }
        buf_byte(out, ']');
        break;
    }
    case OWG_MAP: {
        size_t n;
        entry *entries = collect(v, 0, &n);
        write_entries(out, entries, n, escape_unicode, SIZE_MAX, NULL);
        free(entries);
        break;
    }
    }
}

/* ---- json_lines ------------------------------------------------------------------------- */

const owg_config_key OWG_JSON_LINES_KEYS[3] = {
    { "json_date_key", "key of the record time; off to leave it out", "date", false },
    { "json_date_format", "double, epoch, epoch_ms, iso8601 or java_sql_timestamp", "double", false },
    { "escape_unicode", "on: write non-ASCII as \\uXXXX like the agent; off: keep UTF-8", "on", false },
};

static int switch_value(const char *v) {
    if (!strcasecmp(v, "on") || !strcasecmp(v, "true") || !strcasecmp(v, "yes")) return 1;
    if (!strcasecmp(v, "off") || !strcasecmp(v, "false") || !strcasecmp(v, "no")) return 0;
    return -1;
}

int owg_json_lines_from_config(owg_json_lines *f, const owg_init_context *ctx, char **error) {
    static const char *formats[] = { "double", "java_sql_timestamp", "iso8601", "epoch", "epoch_ms" };
    const char *key = owg_config_get(ctx, "json_date_key");
    const char *format = owg_config_get(ctx, "json_date_format");
    const char *escape = owg_config_get(ctx, "escape_unicode");
    if (!key) key = "date";
    if (!format) format = "double";
    if (!escape) escape = "on";
    /* Like the agent: a boolean-looking "false" disables the key, anything else names it. */
    f->has_date_key = switch_value(key) != 0;
    snprintf(f->date_key, sizeof f->date_key, "%s", key);
    f->date_format = (owg_date_format)-1;
    for (int i = 0; i < 5; i++)
        if (!strcasecmp(format, formats[i])) f->date_format = (owg_date_format)i;
    if ((int)f->date_format < 0) {
        owg_fail(error, OWG_ERROR,
                 "invalid value \"%s\" for key 'json_date_format': unknown date format \"%s\" "
                 "(double, java_sql_timestamp, iso8601, epoch, epoch_ms)", format, format);
        return -1;
    }
    int on = switch_value(escape);
    if (on < 0) {
        owg_fail(error, OWG_ERROR, "invalid value \"%s\" for key 'escape_unicode': expected on or off", escape);
        return -1;
    }
    f->escape_unicode = on;
    return 0;
}

bool owg_json_lines_is_default(const owg_json_lines *f) {
    return f->has_date_key && !strcmp(f->date_key, "date") && f->date_format == OWG_DATE_DOUBLE && f->escape_unicode;
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

static owg_value str_value(const char *s, size_t len) {
    owg_value v;
    v.kind = OWG_STR;
    v.as.bytes.ptr = (const uint8_t *)s;
    v.as.bytes.len = len;
    return v;
}

/* The date of ts as a value; text formats are written into `text`, which must outlive it. */
static owg_value date_value(const owg_json_lines *f, owg_timestamp ts, owg_buf *text) {
    owg_value v;
    switch (f->date_format) {
    case OWG_DATE_DOUBLE:
        v.kind = OWG_FLOAT;
        v.as.f = (double)ts.seconds + (double)ts.nanoseconds / 1e9;
        return v;
    case OWG_DATE_EPOCH:
        v.kind = OWG_UINT;
        v.as.u = (uint64_t)ts.seconds;
        return v;
    case OWG_DATE_EPOCH_MS:
        v.kind = OWG_UINT;
        v.as.u = (uint64_t)ts.seconds * 1000u + ts.nanoseconds / 1000000u;
        return v;
    default: {
        /* UTC calendar fields (Howard Hinnant's civil_from_days). */
        int64_t days = floor_div(ts.seconds, 86400), secs = ts.seconds - days * 86400;
        int64_t z = days + 719468, era = floor_div(z, 146097), doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
        int64_t day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
        int64_t year = yoe + era * 400 + (month <= 2);
        bool iso = f->date_format == OWG_DATE_ISO8601;
        buf_printf(text, "%04lld-%02lld-%02lld%c%02lld:%02lld:%02lld.%06u%s", (long long)year, (long long)month,
                   (long long)day, iso ? 'T' : ' ', (long long)(secs / 3600), (long long)(secs / 60 % 60),
                   (long long)(secs % 60), ts.nanoseconds / 1000, iso ? "Z" : "");
        return str_value(text->data, text->len);
    }
    }
}

void owg_json_lines_write(const owg_json_lines *f, owg_buf *out, const owg_event *event) {
    /* The line is one map: the date, __internal__, then the body's entries, with the agent's
     * rule for repeated keys applied across all of them. The body's entries are collected
     * after two free slots for the others. */
    owg_buf date_text = { 0 };
    size_t n = 0;
    entry *entries;
    if (event->body.kind == OWG_MAP) {
        entries = collect(&event->body, 2, &n);
    } else {
        entries = malloc(3 * sizeof *entries);
        if (!entries) abort();
        entries[2].key = str_value("log", 3);
        entries[2].value = event->body;
        n = 1;
    }
    bool has_metadata = event->metadata.kind == OWG_MAP && event->metadata.as.items.count > 0;
    bool has_group = event->has_group && event->group_attributes.kind == OWG_MAP && event->group_attributes.as.items.count > 0;
    size_t first = 2, internal = SIZE_MAX;
    if (has_metadata || has_group) {
        first--;
        internal = first;
        entries[first].key = str_value("__internal__", 12);
    }
    if (f->has_date_key) {
        first--;
        entries[first].key = str_value(f->date_key, strlen(f->date_key));
        entries[first].value = date_value(f, event->timestamp, &date_text);
    }
    n += 2 - first;
    entry *all = entries + first;
    if (internal != SIZE_MAX) internal -= first;

    write_entries(out, all, n, f->escape_unicode, internal, event);
    buf_byte(out, '\n');
    free(entries);
    owg_buf_free(&date_text);
}

/* The only value of a line not in the chunk: {"group_attributes":..., "log_metadata":...}. */
static void write_internal(owg_buf *out, const owg_event *event, bool escape_unicode) {
    buf_byte(out, '{');
    if (event->has_group) {
        buf_str(out, "\"group_attributes\":");
        owg_write_json(out, &event->group_attributes, escape_unicode);
        buf_byte(out, ',');
    }
    buf_str(out, "\"log_metadata\":");
    owg_write_json(out, &event->metadata, escape_unicode);
    buf_byte(out, '}');
}

/* ---- Config, errors, logging ------------------------------------------------------------ */

const char *owg_config_get(const owg_init_context *ctx, const char *key) {
    for (size_t i = 0; i < ctx->config_len; i++)
        if (!strcmp(ctx->config_keys[i], key)) return ctx->config_values[i];
    return NULL;
}

owg_status owg_fail(char **message, owg_status status, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(NULL, 0, format, ap);
    va_end(ap);
    *message = malloc(n > 0 ? (size_t)n + 1 : 1);
    if (!*message) abort();
    va_start(ap, format);
    vsnprintf(*message, n > 0 ? (size_t)n + 1 : 1, format, ap);
    va_end(ap);
    return status;
}

static int max_level = -1;

bool owg_log_enabled(owg_level level) {
    if (max_level < 0) max_level = out_wasm_output_logging_max_level();
    return (int)level <= max_level;
}

void owg_log(owg_level level, const char *format, ...) {
    if (!owg_log_enabled(level)) return;
    owg_buf line = { 0 };
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(NULL, 0, format, ap);
    va_end(ap);
    if (n < 0) return;
    buf_reserve(&line, (size_t)n + 1);
    va_start(ap, format);
    vsnprintf(line.data, (size_t)n + 1, format, ap);
    va_end(ap);
    output_plugin_string_t message = { (uint8_t *)line.data, (size_t)n };
    out_wasm_output_logging_log((out_wasm_output_logging_level_t)level, &message);
    owg_buf_free(&line);
}

/* ---- The exports ------------------------------------------------------------------------- */

extern const owg_output owg_exported_output;

/* wit-bindgen's conventions: arguments are the callee's to free; results are malloc'd and
 * freed by the generated post-return functions. */
static output_plugin_string_t dup(const char *s) {
    output_plugin_string_t out;
    output_plugin_string_dup(&out, s);
    return out;
}

static char *nul_terminated(const output_plugin_string_t *s) {
    char *out = malloc(s->len + 1);
    if (!out) abort();
    memcpy(out, s->ptr, s->len);
    out[s->len] = 0;
    return out;
}

void exports_out_wasm_output_output_config_schema(exports_out_wasm_output_output_list_config_key_t *ret) {
    const owg_output *o = &owg_exported_output;
    ret->len = o->key_count;
    ret->ptr = o->key_count ? calloc(o->key_count, sizeof *ret->ptr) : NULL;
    if (o->key_count && !ret->ptr) abort();
    for (size_t i = 0; i < o->key_count; i++) {
        ret->ptr[i].name = dup(o->keys[i].name);
        ret->ptr[i].description = dup(o->keys[i].description ? o->keys[i].description : "");
        ret->ptr[i].default_value.is_some = o->keys[i].default_value != NULL;
        if (o->keys[i].default_value) ret->ptr[i].default_value.val = dup(o->keys[i].default_value);
        ret->ptr[i].required = o->keys[i].required;
    }
}

exports_out_wasm_output_output_event_format_t exports_out_wasm_output_output_preferred_event_format(void) {
    return (exports_out_wasm_output_output_event_format_t)owg_exported_output.preferred_format;
}

/* owg_event_types has the WIT flags' bit order (logs, metrics, traces). */
exports_out_wasm_output_output_event_types_t exports_out_wasm_output_output_accepted_event_types(void) {
    owg_event_types types = owg_exported_output.accepted_event_types;
    return (exports_out_wasm_output_output_event_types_t)(types ? types : OWG_EVENT_TYPES_LOGS);
}

bool exports_out_wasm_output_output_init(exports_out_wasm_output_output_init_context_t *ctx, output_plugin_string_t *err) {
    bool ok = true;
    if (owg_exported_output.init) {
        size_t n = ctx->config.len;
        char **keys = calloc(n + 1, sizeof *keys), **values = calloc(n + 1, sizeof *values);
        if (!keys || !values) abort();
        for (size_t i = 0; i < n; i++) {
            keys[i] = nul_terminated(&ctx->config.ptr[i].key);
            values[i] = nul_terminated(&ctx->config.ptr[i].value);
        }
        char *instance = nul_terminated(&ctx->instance), *path = nul_terminated(&ctx->guest_path),
             *digest = nul_terminated(&ctx->guest_digest);
        owg_init_context c = {
            .instance = instance,
            .guest_path = path,
            .guest_digest = digest,
            .event_format = (owg_event_format)ctx->event_format,
            .event_types = ctx->event_types,
            .config_len = n,
            .config_keys = (const char *const *)keys,
            .config_values = (const char *const *)values,
        };
        char *message = NULL;
        if (owg_exported_output.init(&c, &message) != OWG_OK) {
            ok = false;
            /* The message becomes the result's string, freed by post-return. */
            err->ptr = (uint8_t *)(message ? message : strdup("init failed"));
            err->len = strlen((char *)err->ptr);
        }
        for (size_t i = 0; i < n; i++) {
            free(keys[i]);
            free(values[i]);
        }
        free(keys);
        free(values);
        free(instance);
        free(path);
        free(digest);
    }
    exports_out_wasm_output_output_init_context_free(ctx);
    return ok;
}

static uint64_t monotonic_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

bool owg_chunk_time_left(const owg_chunk *chunk, uint64_t *nanoseconds) {
    if (!chunk->has_deadline) return false;
    uint64_t now = monotonic_now();
    *nanoseconds = chunk->deadline > now ? chunk->deadline - now : 0;
    return true;
}

bool exports_out_wasm_output_output_flush(exports_out_wasm_output_output_flush_context_t *ctx,
                                          output_plugin_list_u8_t *chunk,
                                          exports_out_wasm_output_output_flush_error_t *err) {
    char *tag_text = nul_terminated(&ctx->tag);
    owg_chunk c = { .tag = tag_text, .data = chunk->ptr, .len = chunk->len, .event_type = (owg_event_type)ctx->event_type };
    if (ctx->time_left.is_some) {
        /* The host measured the time left when it made the call; from here on it shrinks with
         * the guest's own clock. */
        c.has_deadline = true;
        c.deadline = monotonic_now() + ctx->time_left.val;
    }
    char *message = NULL;
    owg_status status = owg_exported_output.flush(&c, &message);
    free(tag_text);
    exports_out_wasm_output_output_flush_context_free(ctx);
    output_plugin_list_u8_free(chunk);
    if (status == OWG_OK) {
        free(message);
        return true;
    }
    err->tag = status == OWG_RETRY ? OUT_WASM_OUTPUT_TYPES_FLUSH_ERROR_RETRY : OUT_WASM_OUTPUT_TYPES_FLUSH_ERROR_ERROR;
    if (!message) message = strdup(status == OWG_RETRY ? "retry" : "error");
    err->val.retry.ptr = (uint8_t *)message;
    err->val.retry.len = strlen(message);
    return false;
}

void exports_out_wasm_output_output_exit(void) {
    if (owg_exported_output.exit) owg_exported_output.exit();
}

/* ---- Metrics ---------------------------------------------------------------------------- */

/* The import's arguments are only read by the host: they borrow the caller's strings. */
static output_plugin_string_t borrow(const char *s) {
    output_plugin_string_t out = { (uint8_t *)s, s ? strlen(s) : 0 };
    return out;
}

static output_plugin_list_string_t borrow_all(const char *const *strings, size_t n) {
    output_plugin_list_string_t list = { NULL, n };
    if (n) {
        list.ptr = malloc(n * sizeof *list.ptr);
        if (!list.ptr) abort();
        for (size_t i = 0; i < n; i++) list.ptr[i] = borrow(strings[i]);
    }
    return list;
}

/* 0, or -1 with the host's reason moved into *error (or dropped). */
static int refused(bool ok, output_plugin_string_t *reason, char **error) {
    if (ok) return 0;
    if (error) {
        *error = malloc(reason->len + 1);
        if (!*error) abort();
        memcpy(*error, reason->ptr, reason->len);
        (*error)[reason->len] = 0;
    }
    output_plugin_string_free(reason);
    return -1;
}

static int declare(uint32_t *id, const char *name, const char *help, out_wasm_output_metrics_metric_kind_t kind,
                   const char *const *labels, size_t label_count, const double *buckets, size_t bucket_count,
                   char **error) {
    out_wasm_output_metrics_metric_spec_t spec = {
        .name = borrow(name),
        .help = borrow(help ? help : ""),
        .kind = kind,
        .label_names = borrow_all(labels, label_count),
        .buckets = { (double *)buckets, bucket_count },
    };
    output_plugin_string_t reason;
    bool ok = out_wasm_output_metrics_declare(&spec, id, &reason);
    free(spec.label_names.ptr);
    return refused(ok, &reason, error);
}

typedef bool (*update_fn)(out_wasm_output_metrics_metric_t, output_plugin_list_string_t *, double,
                          output_plugin_string_t *);

static int update(update_fn fn, uint32_t id, const char *const *values, size_t value_count, double value,
                  char **error) {
    output_plugin_list_string_t list = borrow_all(values, value_count);
    output_plugin_string_t reason;
    bool ok = fn(id, &list, value, &reason);
    free(list.ptr);
    return refused(ok, &reason, error);
}

int owg_counter_declare(owg_counter *counter, const char *name, const char *help, const char *const *labels,
                        size_t label_count, char **error) {
    return declare(&counter->id, name, help, OUT_WASM_OUTPUT_METRICS_METRIC_KIND_COUNTER, labels, label_count, NULL, 0,
                   error);
}

int owg_counter_add(owg_counter counter, const char *const *values, size_t value_count, double value, char **error) {
    return update(out_wasm_output_metrics_add, counter.id, values, value_count, value, error);
}

int owg_counter_inc(owg_counter counter, const char *const *values, size_t value_count, char **error) {
    return owg_counter_add(counter, values, value_count, 1.0, error);
}

int owg_gauge_declare(owg_gauge *gauge, const char *name, const char *help, const char *const *labels,
                      size_t label_count, char **error) {
    return declare(&gauge->id, name, help, OUT_WASM_OUTPUT_METRICS_METRIC_KIND_GAUGE, labels, label_count, NULL, 0,
                   error);
}

int owg_gauge_set(owg_gauge gauge, const char *const *values, size_t value_count, double value, char **error) {
    return update(out_wasm_output_metrics_set, gauge.id, values, value_count, value, error);
}

int owg_gauge_add(owg_gauge gauge, const char *const *values, size_t value_count, double value, char **error) {
    return update(out_wasm_output_metrics_add, gauge.id, values, value_count, value, error);
}

int owg_histogram_declare(owg_histogram *histogram, const char *name, const char *help, const char *const *labels,
                          size_t label_count, const double *buckets, size_t bucket_count, char **error) {
    return declare(&histogram->id, name, help, OUT_WASM_OUTPUT_METRICS_METRIC_KIND_HISTOGRAM, labels, label_count,
                   buckets, bucket_count, error);
}

int owg_histogram_observe(owg_histogram histogram, const char *const *values, size_t value_count, double value,
                          char **error) {
    return update(out_wasm_output_metrics_observe, histogram.id, values, value_count, value, error);
}
