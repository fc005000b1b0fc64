//! The host-side `json-lines` event format: a chunk rendered as the agent's own JSON lines.
//!
//! The rendering is the Rust guest SDK's, compiled into the host, so a chunk reads the same
//! whether a guest decodes it or the host does it for the guest.

use out_wasm_guest::{DecodeError, JsonLines};

/// Renders every record of `chunk` as one line, exactly as the agent's `stdout` output prints
/// it with `format json_lines` and its default keys (metadata under `__internal__`, as the agent prints it).
/// `out` is cleared first and reused from flush to flush: a fresh multi-megabyte buffer each
/// time costs the allocator and page faults more than the rendering saves.
pub fn json_lines(out: &mut Vec<u8>, chunk: &[u8]) -> Result<(), DecodeError> {
    out.clear();
    // JSON is rarely more than twice the msgpack it came from; one allocation most of the time.
    out.reserve(chunk.len() * 2);
    JsonLines::agent_default().write_chunk(out, chunk)?;
    Ok(())
}
