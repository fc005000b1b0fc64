//! What a chunk holds, and the formats the host renders chunks in for guests.
//!
//! The renderings are the format crate's (`out-wasm-format`, which the Rust guest SDK
//! re-exports), so a chunk reads the same whether a guest decodes it or the host does it for
//! the guest.

use anyhow::Result;
use out_wasm_format::{DateFormat, JsonLines, otlp};

use crate::bindings::{self, EventFormat, EventType, JsonOptions};

/// The kind of events in `chunk`, by its content. The agent never says: a logs chunk is
/// records (msgpack arrays), a metrics chunk cmetrics contexts (maps whose first key is
/// `meta`), a traces chunk ctraces contexts (maps whose first key is `resourceSpans`).
/// Anything else is taken for logs, whose decoder then names what is wrong with it.
pub fn event_type(chunk: &[u8]) -> EventType {
    match out_wasm_format::event_type(chunk) {
        out_wasm_format::EventType::Logs => EventType::Logs,
        out_wasm_format::EventType::Metrics => EventType::Metrics,
        out_wasm_format::EventType::Traces => EventType::Traces,
    }
}

/// The bytes a guest gets for `chunk` in `format`: `None` when that is the chunk itself.
pub fn render(format: &EventFormat, event_type: EventType, chunk: &[u8]) -> Result<Option<Vec<u8>>> {
    match (format, event_type) {
        (EventFormat::Msgpack, _) => Ok(None),
        (EventFormat::JsonLines(options), EventType::Logs) => json_lines(&json_format(options), chunk).map(Some),
        (EventFormat::OtlpJson, _) => otlp_json(event_type, chunk).map(Some),
        // The agent has no JSON-lines form of metrics and traces: the WIT promises their OTLP/JSON
        // request as one line.
        (EventFormat::JsonLines(_), _) => {
            let mut line = otlp_json(event_type, chunk)?;
            line.push(b'\n');
            Ok(Some(line))
        }
    }
}

/// `chunk` as one OTLP/JSON export request of its kind.
pub fn otlp_json(event_type: EventType, chunk: &[u8]) -> Result<Vec<u8>> {
    let kind = match event_type {
        EventType::Logs => out_wasm_format::EventType::Logs,
        EventType::Metrics => out_wasm_format::EventType::Metrics,
        EventType::Traces => out_wasm_format::EventType::Traces,
    };
    // OTLP/JSON is rarely more than twice the msgpack it came from.
    let mut out = Vec::with_capacity(chunk.len() * 2);
    otlp::render(kind, chunk, &mut out)?;
    Ok(out)
}

/// The format crate's rendering for the WIT's JSON options: one renderer for every guest.
pub fn json_format(options: &JsonOptions) -> JsonLines {
    JsonLines {
        date_key: options.date_key.clone(),
        date_format: match options.date_format {
            bindings::DateFormat::Double => DateFormat::Double,
            bindings::DateFormat::Epoch => DateFormat::Epoch,
            bindings::DateFormat::EpochMs => DateFormat::EpochMs,
            bindings::DateFormat::Iso8601 => DateFormat::Iso8601,
            bindings::DateFormat::JavaSqlTimestamp => DateFormat::JavaSqlTimestamp,
        },
        escape_unicode: options.escape_unicode,
    }
}

/// Renders every record of `chunk` as one line, exactly as the agent's `stdout` output prints
/// it with `format json_lines` and `format`'s keys (metadata under `__internal__`, as the agent
/// prints it).
pub fn json_lines(format: &JsonLines, chunk: &[u8]) -> Result<Vec<u8>> {
    // JSON is rarely more than twice the msgpack it came from; one allocation most of the time.
    let mut out = Vec::with_capacity(chunk.len() * 2);
    format.write_chunk(&mut out, chunk)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_told_apart_by_content() {
        let cases: [(&[u8], EventType); 7] = [
            (b"", EventType::Logs),
            (b"\x92\x92\xd7\x00\0\0\0\0\0\0\0\0\x80\x80", EventType::Logs),
            (b"\x82\xa4meta\x80\xa7metrics\x90", EventType::Metrics),
            (b"\x81\xadresourceSpans\x90", EventType::Traces),
            (b"\x81\xd9\x0dresourceSpans\x90", EventType::Traces),
            (b"\xde\x00\x01\xadresourceSpans\x90", EventType::Traces),
            (b"\xc1garbage", EventType::Logs),
        ];
        for (chunk, expected) in cases {
            assert_eq!(event_type(chunk), expected, "chunk {chunk:02x?}");
        }
    }

    #[test]
    fn metrics_and_traces_render_as_otlp_json_and_as_one_json_line() {
        let traces: &[u8] = include_bytes!("../../../format/tests/data/v1_traces.msgpack");
        let metrics: &[u8] = include_bytes!("../../../format/tests/data/node_exporter_metrics.msgpack");
        for (chunk, kind, root) in
            [(traces, EventType::Traces, "resourceSpans"), (metrics, EventType::Metrics, "resourceMetrics")]
        {
            assert_eq!(event_type(chunk), kind);
            let otlp = render(&EventFormat::OtlpJson, kind, chunk).unwrap().expect("a rendering");
            assert!(otlp.starts_with(format!("{{\"{root}\":[").as_bytes()), "{}", String::from_utf8_lossy(&otlp));
            let json = EventFormat::JsonLines(JsonOptions::agent_default());
            let line = render(&json, kind, chunk).unwrap().expect("a rendering");
            assert_eq!(line, [otlp.as_slice(), b"\n"].concat(), "json-lines of {kind:?}: the OTLP request as one line");
            assert_eq!(render(&EventFormat::Msgpack, kind, chunk).unwrap(), None, "msgpack is the chunk itself");
        }
        assert!(render(&EventFormat::OtlpJson, EventType::Metrics, b"\x81\xa4meta\x80").is_err(), "a malformed chunk");
    }
}
