//! Test guest `bad-schema`.
//!
//! Contract: declares the key `Match`, which the agent consumes itself and never passes to a
//! plugin. The host must refuse the instance at init, naming the key; `init` and `flush` are
//! never reached (they would succeed).

use out_wasm_guest::{Chunk, ConfigKey, FlushError, InitContext, Output, export_output};

struct BadSchema;

impl Output for BadSchema {
    fn config_schema() -> Vec<ConfigKey> {
        vec![ConfigKey::optional("Match", "a key the agent keeps for itself")]
    }

    fn init(_ctx: InitContext) -> Result<Self, String> {
        Ok(BadSchema)
    }

    fn flush(&mut self, _chunk: Chunk<'_>) -> Result<(), FlushError> {
        Ok(())
    }
}

export_output!(BadSchema);
