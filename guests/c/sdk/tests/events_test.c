/*
 * The SDK's record decoder (events.c over msgpack-c), natively: guests/c/test builds and runs
 * it. Chunks are made with msgpack-c's packer, as the agent makes them, and with hand-written
 * bytes where a chunk must be malformed in a precise way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "out_wasm_guest.h"

static int passed, failed_checks;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            passed++;                                                                \
        } else {                                                                     \
            failed_checks++;                                                         \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, __func__, #cond); \
        }                                                                            \
    } while (0)

/* A chunk being written with msgpack-c's packer. */
typedef struct chunk {
    msgpack_sbuffer buffer;
    msgpack_packer pk;
} chunk;

static void chunk_init(chunk *c) {
    msgpack_sbuffer_init(&c->buffer);
    msgpack_packer_init(&c->pk, &c->buffer, msgpack_sbuffer_write);
}

static owg_chunk view(const chunk *c) {
    owg_chunk out = { .tag = "t", .data = (const uint8_t *)c->buffer.data, .len = c->buffer.size };
    return out;
}

static void str(chunk *c, const char *s) {
    msgpack_pack_str(&c->pk, strlen(s));
    msgpack_pack_str_body(&c->pk, s, strlen(s));
}

static void event_time(chunk *c, uint32_t seconds, uint32_t nanoseconds) {
    char payload[8] = {
        (char)(seconds >> 24), (char)(seconds >> 16), (char)(seconds >> 8), (char)seconds,
        (char)(nanoseconds >> 24), (char)(nanoseconds >> 16), (char)(nanoseconds >> 8), (char)nanoseconds,
    };
    msgpack_pack_ext(&c->pk, 8, 0);
    msgpack_pack_ext_body(&c->pk, payload, 8);
}

/* [[EventTime(seconds, nanoseconds), {}], {key: value}] */
static void record(chunk *c, uint32_t seconds, uint32_t nanoseconds, const char *key, int64_t value) {
    msgpack_pack_array(&c->pk, 2);
    msgpack_pack_array(&c->pk, 2);
    event_time(c, seconds, nanoseconds);
    msgpack_pack_map(&c->pk, 0);
    msgpack_pack_map(&c->pk, 1);
    str(c, key);
    msgpack_pack_int64(&c->pk, value);
}

static bool is_str(const msgpack_object *o, const char *s) {
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) && !memcmp(o->via.str.ptr, s, o->via.str.size);
}

static bool is_int(const msgpack_object *o, int64_t v) {
    if (!o) return false;
    if (v >= 0) return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 == (uint64_t)v;
    return o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 == v;
}

/* Decodes all of data: the number of records, and in *result 0 or -1 (*err set). */
static int decode(const uint8_t *data, size_t len, owg_error *err, int *result) {
    owg_chunk c = { .tag = "t", .data = data, .len = len };
    owg_events it = owg_events_of(&c);
    owg_event e;
    int n = 0, more;
    while ((more = owg_events_next(&it, &e, err)) > 0) n++;
    *result = more;
    owg_events_free(&it); /* after the end: harmless */
    return n;
}

static void current_layout_with_metadata(void) {
    chunk c;
    chunk_init(&c);
    msgpack_pack_array(&c.pk, 2);
    msgpack_pack_array(&c.pk, 2);
    event_time(&c, 1700000000, 500000000);
    msgpack_pack_map(&c.pk, 1);
    str(&c, "m");
    msgpack_pack_int(&c.pk, 1);
    msgpack_pack_map(&c.pk, 1);
    str(&c, "k");
    str(&c, "v");
    owg_chunk chunk = view(&c);
    owg_events it = owg_events_of(&chunk);
    owg_event e;
    owg_error err;
    CHECK(owg_events_next(&it, &e, &err) == 1);
    CHECK(e.timestamp.seconds == 1700000000 && e.timestamp.nanoseconds == 500000000);
    CHECK(e.metadata->type == MSGPACK_OBJECT_MAP && e.metadata->via.map.size == 1);
    CHECK(is_int(owg_map_get(e.metadata, "m"), 1));
    CHECK(is_str(owg_map_get(e.body, "k"), "v"));
    /* Nothing is copied: the string is in the chunk. */
    const msgpack_object *v = owg_map_get(e.body, "k");
    CHECK(v->via.str.ptr >= c.buffer.data && v->via.str.ptr < c.buffer.data + c.buffer.size);
    CHECK(e.group_attributes == NULL && e.group_metadata == NULL);
    CHECK(owg_events_next(&it, &e, &err) == 0);
    CHECK(owg_events_next(&it, &e, &err) == 0);
    msgpack_sbuffer_destroy(&c.buffer);
}

static void old_layouts_and_number_timestamps(void) {
    chunk c;
    chunk_init(&c);
    /* [1700000000, {"k":1}], [1700000000.25, {}], [-1.5, {}], [2^64-1, {}], [-3, "not a map"] */
    msgpack_pack_array(&c.pk, 2);
    msgpack_pack_uint32(&c.pk, 1700000000);
    msgpack_pack_map(&c.pk, 1);
    str(&c, "k");
    msgpack_pack_int(&c.pk, 1);
    msgpack_pack_array(&c.pk, 2);
    msgpack_pack_double(&c.pk, 1700000000.25);
    msgpack_pack_map(&c.pk, 0);
    msgpack_pack_array(&c.pk, 2);
    msgpack_pack_float(&c.pk, -1.5f);
    msgpack_pack_map(&c.pk, 0);
    msgpack_pack_array(&c.pk, 2);
    msgpack_pack_uint64(&c.pk, UINT64_MAX);
    msgpack_pack_map(&c.pk, 0);
    msgpack_pack_array(&c.pk, 2);
    msgpack_pack_int(&c.pk, -3);
    str(&c, "not a map");
    owg_chunk chunk = view(&c);
    owg_events it = owg_events_of(&chunk);
    owg_event e;
    owg_error err;
    /* Each record's objects live until the next call: checked one record at a time. */
    CHECK(owg_events_next(&it, &e, &err) == 1);
    CHECK(e.timestamp.seconds == 1700000000 && e.timestamp.nanoseconds == 0);
    CHECK(e.metadata->type == MSGPACK_OBJECT_MAP && e.metadata->via.map.size == 0);
    CHECK(is_int(owg_map_get(e.body, "k"), 1));
    CHECK(owg_events_next(&it, &e, &err) == 1);
    CHECK(e.timestamp.seconds == 1700000000 && e.timestamp.nanoseconds == 250000000);
    CHECK(owg_events_next(&it, &e, &err) == 1);
    CHECK(e.timestamp.seconds == -2 && e.timestamp.nanoseconds == 500000000);
    CHECK(owg_events_next(&it, &e, &err) == 1);
    CHECK(e.timestamp.seconds == INT64_MAX && e.timestamp.nanoseconds == 0);
    CHECK(owg_events_next(&it, &e, &err) == 1);
    CHECK(e.timestamp.seconds == -3 && is_str(e.body, "not a map"));
    CHECK(owg_events_next(&it, &e, &err) == 0);
    msgpack_sbuffer_destroy(&c.buffer);
}

static void values_are_kept_as_the_agent_wrote_them(void) {
    chunk c;
    chunk_init(&c);
    msgpack_pack_array(&c.pk, 2);
    msgpack_pack_array(&c.pk, 2);
    event_time(&c, 1, 0);
    msgpack_pack_map(&c.pk, 0);
    msgpack_pack_map(&c.pk, 6);
    str(&c, "a");
    msgpack_pack_int(&c.pk, 1);
    str(&c, "a");
    msgpack_pack_int(&c.pk, 2);
    str(&c, "bad");
    msgpack_pack_str(&c.pk, 3);
    msgpack_pack_str_body(&c.pk, "\xff\xfe!", 3);
    str(&c, "ext");
    msgpack_pack_ext(&c.pk, 2, 5);
    msgpack_pack_ext_body(&c.pk, "\x01\x02", 2);
    str(&c, "time");
    event_time(&c, 1700000000, 123456789);
    str(&c, "f32");
    msgpack_pack_float(&c.pk, 0.5f);
    owg_chunk chunk = view(&c);
    owg_events it = owg_events_of(&chunk);
    owg_event e;
    owg_error err;
    CHECK(owg_events_next(&it, &e, &err) == 1);
    /* Repeated keys stay, in order; owg_map_get finds the last. */
    CHECK(e.body->via.map.size == 6);
    CHECK(is_str(&e.body->via.map.ptr[0].key, "a") && is_str(&e.body->via.map.ptr[1].key, "a"));
    CHECK(is_int(owg_map_get(e.body, "a"), 2));
    CHECK(owg_map_get(e.body, "missing") == NULL && owg_map_get(owg_map_get(e.body, "a"), "a") == NULL);
    /* Invalid UTF-8 is kept as bytes. */
    const msgpack_object *bad = owg_map_get(e.body, "bad");
    CHECK(bad->type == MSGPACK_OBJECT_STR && bad->via.str.size == 3 && !memcmp(bad->via.str.ptr, "\xff\xfe!", 3));
    const msgpack_object *ext = owg_map_get(e.body, "ext");
    CHECK(ext->type == MSGPACK_OBJECT_EXT && ext->via.ext.type == 5 && ext->via.ext.size == 2 &&
          !memcmp(ext->via.ext.ptr, "\x01\x02", 2));
    owg_timestamp ts;
    CHECK(!owg_timestamp_of(ext, &ts));
    CHECK(owg_timestamp_of(owg_map_get(e.body, "time"), &ts) && ts.seconds == 1700000000 &&
          ts.nanoseconds == 123456789);
    const msgpack_object *f = owg_map_get(e.body, "f32");
    CHECK(f->type == MSGPACK_OBJECT_FLOAT32 && f->via.f64 == 0.5);
    CHECK(owg_events_next(&it, &e, &err) == 0);
    msgpack_sbuffer_destroy(&c.buffer);
}

static void group_start(chunk *c, bool integer_marker, const char *attribute) {
    msgpack_pack_array(&c->pk, 2);
    msgpack_pack_array(&c->pk, 2);
    if (integer_marker) msgpack_pack_int(&c->pk, -1);
    else event_time(c, 0xffffffffu, 0);
    msgpack_pack_map(&c->pk, 1);
    str(c, "schema");
    str(c, "otlp");
    msgpack_pack_map(&c->pk, 1);
    str(c, "g");
    str(c, attribute);
}

static void group_end(chunk *c, bool integer_marker) {
    msgpack_pack_array(&c->pk, 2);
    msgpack_pack_array(&c->pk, 2);
    if (integer_marker) msgpack_pack_int(&c->pk, -2);
    else event_time(c, 0xfffffffeu, 0);
    msgpack_pack_map(&c->pk, 0);
    msgpack_pack_map(&c->pk, 0);
}

static void groups_are_attached_and_their_markers_skipped(void) {
    for (int integer_marker = 0; integer_marker < 2; integer_marker++) {
        chunk c;
        chunk_init(&c);
        /* Many groups and records: the zones are reused and swapped over and over. */
        for (int i = 0; i < 300; i++) {
            char attribute[16];
            snprintf(attribute, sizeof attribute, "g%d", i);
            group_start(&c, integer_marker, attribute);
            record(&c, 1, 0, "in", i);
            record(&c, 2, 0, "in", i);
            group_end(&c, integer_marker);
            record(&c, 3, 0, "out", i);
        }
        owg_chunk chunk = view(&c);
        owg_events it = owg_events_of(&chunk);
        owg_event e;
        owg_error err;
        int n = 0, grouped = 0, outside = 0, more;
        while ((more = owg_events_next(&it, &e, &err)) > 0) {
            int i = n / 3;
            char attribute[16];
            snprintf(attribute, sizeof attribute, "g%d", i);
            if (n % 3 < 2) {
                grouped += e.group_attributes && is_str(owg_map_get(e.group_attributes, "g"), attribute) &&
                           is_str(owg_map_get(e.group_metadata, "schema"), "otlp") && is_int(owg_map_get(e.body, "in"), i);
            } else {
                outside += !e.group_attributes && !e.group_metadata && is_int(owg_map_get(e.body, "out"), i);
            }
            n++;
        }
        CHECK(more == 0);
        CHECK(n == 900 && grouped == 600 && outside == 300);
        msgpack_sbuffer_destroy(&c.buffer);
    }
}

/* The error a chunk of these bytes gives, after `records` good records. */
static void malformed(const char *bytes, size_t len, int records, size_t offset, const char *message) {
    owg_error err;
    int result;
    int n = decode((const uint8_t *)bytes, len, &err, &result);
    CHECK(n == records && result == -1);
    if (result == -1) {
        CHECK(err.offset == offset);
        if (strcmp(err.message, message) != 0) {
            failed_checks++;
            fprintf(stderr, "malformed: expected \"%s\", got \"%s\"\n", message, err.message);
        } else {
            passed++;
        }
    }
}

#define BYTES(s) s, sizeof s - 1

static void malformed_chunks_say_where_and_why(void) {
    /* A good record ([1, {}], 3 bytes) first, then the bad one at offset 3. */
    malformed(BYTES("\x92\x01\x80\x81\xa1k\xa1v"), 1, 3, "malformed chunk at byte offset 3: record is not an array");
    malformed(BYTES("\x92\x01\x80\x93\x01\x80\x80"), 1, 3, "malformed chunk at byte offset 3: record is an array of 3, not 2");
    malformed(BYTES("\x92\x93\x01\x80\x80\x80"), 0, 0,
              "malformed chunk at byte offset 0: record header is an array of 3, not 2");
    malformed(BYTES("\x92\xa1x\x80"), 0, 0, "malformed chunk at byte offset 0: timestamp is a string, not a time");
    malformed(BYTES("\x92\xc0\x80"), 0, 0, "malformed chunk at byte offset 0: timestamp is nil, not a time");
    malformed(BYTES("\x92\xd7\x00\x00\x00\x00\x01\x3b\x9a\xca\x00\x80"), 0, 0,
              "malformed chunk at byte offset 0: EventTime has 1000000000 nanoseconds");
    malformed(BYTES("\x92\xd7\x01\x00\x00\x00\x01\x00\x00\x00\x00\x80"), 0, 0,
              "malformed chunk at byte offset 0: timestamp is extension type 1 of 8 bytes, not EventTime");
    malformed(BYTES("\x92\x01\x80\x92\x01\x81\xa1k"), 1, 3,
              "malformed chunk at byte offset 3: truncated: the record there ends past the chunk's 8 bytes");
    malformed(BYTES("\x92\x01\xc1"), 0, 0,
              "malformed chunk at byte offset 0: the record there is not msgpack (reserved marker 0xc1)");
    /* A map that claims more entries than the chunk has bytes is truncated, not a fault. */
    malformed(BYTES("\x92\x01\xdf\x00\x01\x00\x00"), 0, 0,
              "malformed chunk at byte offset 0: truncated: the record there ends past the chunk's 7 bytes");
}

/* A record whose body is `levels` arrays nested in each other around a 1. */
static void nesting(int levels, bool ok) {
    chunk c;
    chunk_init(&c);
    msgpack_pack_array(&c.pk, 2);
    msgpack_pack_int(&c.pk, 1);
    for (int i = 0; i < levels; i++) msgpack_pack_array(&c.pk, 1);
    msgpack_pack_int(&c.pk, 1);
    owg_error err;
    int result;
    int n = decode((const uint8_t *)c.buffer.data, c.buffer.size, &err, &result);
    if (ok) {
        CHECK(n == 1 && result == 0);
    } else {
        CHECK(n == 0 && result == -1 &&
              !strcmp(err.message, "malformed chunk at byte offset 0: the record there nests deeper than 256 levels "
                                   "or does not fit in memory"));
    }
    msgpack_sbuffer_destroy(&c.buffer);
}

static void nesting_is_bounded_like_the_hosts_decoder(void) {
    /* The host's decoder takes a body whose innermost value is 256 levels down, not 257. */
    nesting(256, true);
    nesting(257, false);
}

static void an_empty_chunk_has_no_records(void) {
    owg_error err;
    int result;
    CHECK(decode((const uint8_t *)"", 0, &err, &result) == 0 && result == 0);
}

static void stopping_early_frees_the_iterator(void) {
    chunk c;
    chunk_init(&c);
    record(&c, 1, 0, "a", 1);
    record(&c, 2, 0, "a", 2);
    owg_chunk chunk = view(&c);
    owg_events it = owg_events_of(&chunk);
    owg_event e;
    owg_error err;
    CHECK(owg_events_next(&it, &e, &err) == 1);
    owg_events_free(&it);
    owg_events_free(&it);
    CHECK(owg_events_next(&it, &e, &err) == 0);
    msgpack_sbuffer_destroy(&c.buffer);
}

int main(void) {
    current_layout_with_metadata();
    old_layouts_and_number_timestamps();
    values_are_kept_as_the_agent_wrote_them();
    groups_are_attached_and_their_markers_skipped();
    malformed_chunks_say_where_and_why();
    nesting_is_bounded_like_the_hosts_decoder();
    an_empty_chunk_has_no_records();
    stopping_early_frees_the_iterator();
    printf("%d passed, %d failed\n", passed, failed_checks);
    return failed_checks ? 1 : 0;
}
