/*
 * The records of a chunk, over msgpack-c: the library the agent itself encodes and decodes
 * chunks with, so values arrive as the agent sees them (map entries in order with repeated keys,
 * strings as bytes, extension values as type and payload). What msgpack-c does not know is the
 * agent's record layout, which this file adds as guests/rust's event decoder (format/src/
 * event.rs) reads it: [[timestamp, metadata], body] or [timestamp, body], EventTime timestamps,
 * and the group markers of OpenTelemetry records.
 *
 * No bindings here: the file builds natively too, for guests/c/test.
 */
#include "out_wasm_guest.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The metadata of a record in the old [timestamp, body] layout. */
static const msgpack_object EMPTY_MAP = { .type = MSGPACK_OBJECT_MAP, .via.map = { 0, NULL } };

static void zone_init(msgpack_zone *zone) {
    /* Out of guest memory: a trap, as in any language. */
    if (!msgpack_zone_init(zone, MSGPACK_ZONE_CHUNK_SIZE)) abort();
}

owg_events owg_events_of(const owg_chunk *chunk) {
    owg_events events = { .data = (const char *)chunk->data, .len = chunk->len };
    zone_init(&events.record_zone);
    zone_init(&events.group_zone);
    events.zones = true;
    return events;
}

void owg_events_free(owg_events *events) {
    if (events->zones) {
        msgpack_zone_destroy(&events->record_zone);
        msgpack_zone_destroy(&events->group_zone);
        events->zones = false;
    }
    events->done = true;
    events->group_attributes = events->group_metadata = NULL;
}

static int failed(owg_events *events, owg_error *err, size_t offset, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
static int failed(owg_events *events, owg_error *err, size_t offset, const char *format, ...) {
    char reason[160];
    va_list ap;
    va_start(ap, format);
    vsnprintf(reason, sizeof reason, format, ap);
    va_end(ap);
    err->offset = offset;
    snprintf(err->message, sizeof err->message, "malformed chunk at byte offset %zu: %s", offset, reason);
    owg_events_free(events);
    return -1;
}

static const char *kind_name(const msgpack_object *value) {
    switch (value->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "an integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "a float";
    case MSGPACK_OBJECT_STR: return "a string";
    case MSGPACK_OBJECT_BIN: return "a binary";
    case MSGPACK_OBJECT_ARRAY: return "an array";
    case MSGPACK_OBJECT_MAP: return "a map";
    case MSGPACK_OBJECT_EXT: return "an extension";
    }
    return "an unknown value";
}

static uint32_t be32(const char *p) {
    const uint8_t *b = (const uint8_t *)p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static bool is_event_time(const msgpack_object *value) {
    return value->type == MSGPACK_OBJECT_EXT && value->via.ext.type == 0 && value->via.ext.size == 8;
}

/* Float seconds, truncated to nanoseconds like the agent (and the Rust decoder) does. */
static owg_timestamp from_seconds(double seconds) {
    double whole = trunc(seconds);
    int64_t nanos = (int64_t)((seconds - whole) * 1e9);
    /* Saturating, as Rust's `as i64` is: a float beyond the range is not undefined here. */
    int64_t secs = whole >= 9223372036854775807.0 ? INT64_MAX : whole <= -9223372036854775808.0 ? INT64_MIN : (int64_t)whole;
    if (nanos < 0) {
        secs -= 1;
        nanos += 1000000000;
    }
    owg_timestamp ts = { secs, (uint32_t)(nanos < 0 ? 0 : nanos > 999999999 ? 999999999 : nanos) };
    return ts;
}

bool owg_timestamp_of(const msgpack_object *value, owg_timestamp *ts) {
    switch (value->type) {
    case MSGPACK_OBJECT_EXT:
        if (!is_event_time(value) || be32(value->via.ext.ptr + 4) >= 1000000000u) return false;
        ts->seconds = be32(value->via.ext.ptr);
        ts->nanoseconds = be32(value->via.ext.ptr + 4);
        return true;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        ts->seconds = value->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)value->via.u64;
        ts->nanoseconds = 0;
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        ts->seconds = value->via.i64;
        ts->nanoseconds = 0;
        return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(value->via.f64)) return false;
        *ts = from_seconds(value->via.f64);
        return true;
    default:
        return false;
    }
}

enum stamp { STAMP_TIME, STAMP_GROUP_START, STAMP_GROUP_END, STAMP_INVALID };

/* What a record's timestamp says it is; STAMP_INVALID with the reason in `reason`. */
static enum stamp classify(const msgpack_object *ts, owg_timestamp *time, char *reason, size_t size) {
    /* The agent marks group boundaries with EventTime seconds 2^32-1 / 2^32-2 (or the integers
     * -1 / -2) and zero nanoseconds. */
    if (is_event_time(ts) && be32(ts->via.ext.ptr + 4) == 0) {
        uint32_t seconds = be32(ts->via.ext.ptr);
        if (seconds == 0xffffffffu) return STAMP_GROUP_START;
        if (seconds == 0xfffffffeu) return STAMP_GROUP_END;
    }
    if (ts->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && ts->via.i64 == -1) return STAMP_GROUP_START;
    if (ts->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && ts->via.i64 == -2) return STAMP_GROUP_END;
    if (owg_timestamp_of(ts, time)) return STAMP_TIME;
    if (is_event_time(ts))
        snprintf(reason, size, "EventTime has %u nanoseconds", be32(ts->via.ext.ptr + 4));
    else if (ts->type == MSGPACK_OBJECT_EXT)
        snprintf(reason, size, "timestamp is extension type %d of %u bytes, not EventTime", ts->via.ext.type,
                 ts->via.ext.size);
    else
        snprintf(reason, size, "timestamp is %s, not a time", kind_name(ts));
    return STAMP_INVALID;
}

int owg_events_next(owg_events *events, owg_event *event, owg_error *err) {
    while (!events->done && events->offset < events->len) {
        size_t start = events->offset;
        msgpack_zone_clear(&events->record_zone);
        msgpack_object record;
        switch (msgpack_unpack(events->data, events->len, &events->offset, &events->record_zone, &record)) {
        case MSGPACK_UNPACK_SUCCESS:
        case MSGPACK_UNPACK_EXTRA_BYTES:
            break;
        case MSGPACK_UNPACK_CONTINUE:
            return failed(events, err, start, "truncated: the record there ends past the chunk's %zu bytes",
                          events->len);
        case MSGPACK_UNPACK_PARSE_ERROR:
            return failed(events, err, start, "the record there is not msgpack (reserved marker 0xc1)");
        default:
            /* msgpack-c's only other answer: its nesting limit (MSGPACK_EMBED_STACK_SIZE, set
             * by guests/c/build to the Rust decoder's 256 levels below the record) or an
             * allocation it could not make. */
            return failed(events, err, start, "the record there nests deeper than 256 levels or does not fit in memory");
        }
        if (record.type != MSGPACK_OBJECT_ARRAY) return failed(events, err, start, "record is not an array");
        if (record.via.array.size != 2)
            return failed(events, err, start, "record is an array of %u, not 2", record.via.array.size);
        /* [[timestamp, metadata], body] (current agents) or [timestamp, body] (older). */
        const msgpack_object *head = &record.via.array.ptr[0], *ts = head, *metadata = &EMPTY_MAP;
        if (head->type == MSGPACK_OBJECT_ARRAY) {
            if (head->via.array.size != 2)
                return failed(events, err, start, "record header is an array of %u, not 2", head->via.array.size);
            ts = &head->via.array.ptr[0];
            metadata = &head->via.array.ptr[1];
        }
        const msgpack_object *body = &record.via.array.ptr[1];
        char reason[120];
        switch (classify(ts, &event->timestamp, reason, sizeof reason)) {
        case STAMP_INVALID:
            return failed(events, err, start, "%s", reason);
        case STAMP_GROUP_START: {
            /* The marker's objects outlive the records of its group: its zone becomes the
             * group's, and the group's old one serves the next record. */
            msgpack_zone previous = events->group_zone;
            msgpack_zone_clear(&previous);
            events->group_zone = events->record_zone;
            events->record_zone = previous;
            events->group_attributes = body;
            events->group_metadata = metadata;
            break;
        }
        case STAMP_GROUP_END:
            events->group_attributes = events->group_metadata = NULL;
            break;
        case STAMP_TIME:
            event->metadata = metadata;
            event->body = body;
            event->group_attributes = events->group_attributes;
            event->group_metadata = events->group_metadata;
            return 1;
        }
    }
    owg_events_free(events);
    return 0;
}

const msgpack_object *owg_map_get(const msgpack_object *map, const char *key) {
    if (map->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t len = strlen(key);
    for (uint32_t i = map->via.map.size; i-- > 0;) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len && memcmp(k->via.str.ptr, key, len) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}
