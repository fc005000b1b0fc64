//! The host-side `json-lines` event format: a chunk rendered as the agent's own JSON lines.
//!
//! The rendering is the format crate's, which the Rust guest SDK re-exports, so a chunk reads the same
//! whether a guest decodes it or the host does it for the guest.

use out_wasm_format::{DecodeError, Events, JsonLines};

/// Renders every record of `chunk` as one line, exactly as the agent's `stdout` output prints
/// it with `format json_lines` and its default keys (metadata under `__internal__`, as the agent prints it).
pub fn json_lines(chunk: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let format = JsonLines::agent_default();
    // JSON is rarely more than twice the msgpack it came from; one allocation most of the time.
    let mut out = Vec::with_capacity(chunk.len() * 2);
    for event in Events::new(chunk) {
        format.write(&mut out, &event?);
    }
    Ok(out)
}
