//! Test guest `noop`: the cheapest possible output, so benchmarks see the host's own cost.
//!
//! Contract:
//! - No keys; init always succeeds.
//! - flush answers ok without reading the chunk (the host has still copied it into guest
//!   memory, as the component model requires); it never fails.
//! - exit does nothing.

use out_wasm_guest::{Chunk, FlushError, InitContext, Output, export_output};

struct Noop;

impl Output for Noop {
    fn init(_ctx: InitContext) -> Result<Self, String> {
        Ok(Noop)
    }

    fn flush(&mut self, _chunk: Chunk<'_>) -> Result<(), FlushError> {
        Ok(())
    }
}

export_output!(Noop);
