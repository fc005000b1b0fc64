//! What a chunk holds, and the formats the host renders chunks in for guests.
//!
//! The log rendering is the agent's own JSON lines, with the same code the Rust guest SDK
//! uses, so a chunk reads the same whether a guest decodes it or the host does it for the guest.

use anyhow::Result;
use out_wasm_guest::{Events, JsonLines};

use crate::bindings::{EventFormat, EventType};

/// The kind of events in `chunk`, by its content. The agent never says: a logs chunk is
/// records (msgpack arrays), a metrics chunk cmetrics contexts (maps whose first key is
/// `meta`), a traces chunk ctraces contexts (maps whose first key is `resourceSpans`).
/// Anything else is taken for logs, whose decoder then names what is wrong with it.
pub fn event_type(chunk: &[u8]) -> EventType {
    const TRACES_KEY: &[u8] = b"resourceSpans";
    let Some((&first, rest)) = chunk.split_first() else {
        return EventType::Logs;
    };
    let rest = match first {
        0x80..=0x8f => rest,
        0xde => rest.get(2..).unwrap_or_default(),
        0xdf => rest.get(4..).unwrap_or_default(),
        _ => return EventType::Logs,
    };
    // The first key is a short string: a fixstr, or str8 from encoders that prefer it.
    let key = match rest.split_first() {
        Some((&marker @ 0xa0..=0xbf, key)) => key.get(..usize::from(marker & 0x1f)),
        Some((&0xd9, key)) => key.split_first().and_then(|(&len, key)| key.get(..usize::from(len))),
        _ => None,
    };
    if key == Some(TRACES_KEY) { EventType::Traces } else { EventType::Metrics }
}

/// The bytes a guest gets for `chunk` in `format`: `None` when that is the chunk itself.
pub fn render(format: EventFormat, event_type: EventType, chunk: &[u8]) -> Result<Option<Vec<u8>>> {
    match (format, event_type) {
        (EventFormat::Msgpack, _) => Ok(None),
        (EventFormat::JsonLines, EventType::Logs) => json_lines(chunk).map(Some),
        (EventFormat::JsonLines | EventFormat::OtlpJson, _) => {
            anyhow::bail!("OTLP JSON rendering of {} is not available yet", event_type.name())
        }
    }
}

/// Renders every record of `chunk` as one line, exactly as the agent's `stdout` output prints
/// it with `format json_lines` and its default keys (metadata under `__internal__`, as the agent prints it).
pub fn json_lines(chunk: &[u8]) -> Result<Vec<u8>> {
    let format = JsonLines::agent_default();
    // JSON is rarely more than twice the msgpack it came from; one allocation most of the time.
    let mut out = Vec::with_capacity(chunk.len() * 2);
    for event in Events::new(chunk) {
        format.write(&mut out, &event?);
    }
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
}
