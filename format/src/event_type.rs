//! The three kinds of events the agent routes to outputs, told apart by a chunk's content.

use rmp::Marker;

use crate::msgpack::Reader;
use crate::value::Value;

/// The kind of events a chunk holds; one chunk always holds exactly one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Log records, each an array (`[[timestamp, metadata], body]` or `[timestamp, body]`).
    Logs,
    /// One or more concatenated cmetrics contexts (maps with `meta` and `metrics`).
    Metrics,
    /// One or more concatenated ctraces contexts (maps with `resourceSpans`).
    Traces,
}

/// What `chunk` holds, from its first bytes: a logs chunk starts with an array (records), a
/// traces chunk with a map whose first key is `resourceSpans`, a metrics chunk with any other
/// map (cmetrics writes `meta` first). The agent delivers no type with a chunk, and flushes no
/// empty metrics or traces chunk, so an empty chunk is logs. Only the first key is read: the
/// decoders of each kind check the rest.
pub fn event_type(chunk: &[u8]) -> EventType {
    let reader = Reader::new(chunk);
    let map = matches!(reader.peek_marker(), Some(Marker::FixMap(_) | Marker::Map16 | Marker::Map32));
    if !map {
        return EventType::Logs;
    }
    // Skip the map header, then read the first key alone.
    let header = match chunk[0] {
        0xde => 3,
        0xdf => 5,
        _ => 1,
    };
    let mut keys = Reader::new(chunk.get(header..).unwrap_or_default());
    match keys.value() {
        Ok(Value::Str(b"resourceSpans")) => EventType::Traces,
        _ => EventType::Metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_three_kinds_apart_by_their_first_bytes() {
        assert_eq!(event_type(b""), EventType::Logs, "an empty chunk");
        assert_eq!(event_type(b"\x92\x01\x80"), EventType::Logs, "a record");
        assert_eq!(event_type(b"\x81\xadresourceSpans\x90"), EventType::Traces);
        assert_eq!(event_type(b"\x82\xa4meta\x80\xa7metrics\x90"), EventType::Metrics);
        assert_eq!(event_type(b"\xde\x00\x01\xadresourceSpans\x90"), EventType::Traces, "map16 header");
        assert_eq!(event_type(b"\x81"), EventType::Metrics, "a truncated map is left to the decoder");
    }
}
