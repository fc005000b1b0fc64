//! Test guests `tally` and `tally-v2` (the same source under two crate names, so two different
//! components): they mark everything they log with their version, for hot-swap tests.
//!
//! Contract:
//! - The version is the package name without `out-wasm-test-`: `tally` or `tally-v2`.
//! - Keys: `gate_dir` (optional: the guest path of a directory the test grants read-write, see
//!   `tests/guests/sync.rs`), `api_token` (optional, unused: a key named like a credential). `tally-v2` also requires `note`, so swapping to it fails where
//!   `note` is not set.
//! - init logs `tally <version> init digest=<first 12 hex>` at info.
//! - flush logs `tally <version> seq=<seq>` at info for every record (its body's `seq`) and
//!   answers ok; a malformed chunk, or a record without a `seq`, fails it. If a record has
//!   `"gate": true` and `gate_dir` is set, the flush first creates the mark
//!   `<gate_dir>/entered.<n>` and waits at the gate `<gate_dir>/open` (a gate never opened fails
//!   the flush after 3 minutes).
//! - A record whose body has `"fail": "<version>"` makes that version (only) answer error for its
//!   whole chunk, after logging `tally <version> refused seq=<seq>` for every record of the chunk;
//!   `"trap": "<version>"` makes that version panic (a trap) before it logs anything. Other
//!   versions deliver such records as any other: tests make one version bad and keep the other
//!   good with the same records (canary rollouts, the flight recorder's replays).
//! - exit logs `tally <version> exit flushes=<n>` at info.

#[path = "../../sync.rs"]
mod sync;

use out_wasm_guest::{Chunk, ConfigKey, FlushError, InitContext, Output, Value, export_output, info};

/// The package name without the workspace's prefix: `tally` or `tally-v2`.
fn version() -> &'static str {
    env!("CARGO_PKG_NAME").trim_start_matches("out-wasm-test-")
}

struct Tally {
    gate_dir: Option<String>,
    flushes: u64,
}

impl Output for Tally {
    fn config_schema() -> Vec<ConfigKey> {
        let mut keys = vec![
            ConfigKey::optional("gate_dir", "a granted directory: gated records wait at its gate"),
            ConfigKey::optional("api_token", "unused; named like a credential, which the flight recorder leaves out"),
        ];
        if version() == "tally-v2" {
            keys.push(ConfigKey::required("note", "a key only version 2 needs"));
        }
        keys
    }

    fn init(ctx: InitContext) -> Result<Self, String> {
        info!("tally {} init digest={}", version(), &ctx.guest_digest[..12]);
        Ok(Tally { gate_dir: ctx.config.get("gate_dir").map(str::to_owned), flushes: 0 })
    }

    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
        self.flushes += 1;
        let mut seqs = Vec::new();
        let mut gated = false;
        let (mut fail, mut trap) = (false, false);
        let mine = |value: Option<&Value>| matches!(value, Some(Value::Str(v)) if *v == version().as_bytes());
        for event in chunk.events() {
            let event = event?;
            gated |= event.body.get("gate") == Some(&Value::Bool(true));
            fail |= mine(event.body.get("fail"));
            trap |= mine(event.body.get("trap"));
            match event.body.get("seq") {
                Some(Value::UInt(seq)) => seqs.push(*seq),
                other => return Err(FlushError::Error(format!("record without a seq: {other:?}"))),
            }
        }
        if trap {
            panic!("tally {} was told to trap", version());
        }
        if fail {
            for seq in &seqs {
                info!("tally {} refused seq={seq}", version());
            }
            return Err(FlushError::Error(format!("tally {} refuses this chunk", version())));
        }
        if let (true, Some(dir)) = (gated, &self.gate_dir) {
            sync::mark(dir, "entered").and_then(|_| sync::wait_at_gate(dir)).map_err(FlushError::Error)?;
        }
        for seq in seqs {
            info!("tally {} seq={seq}", version());
        }
        Ok(())
    }

    fn exit(&mut self) {
        info!("tally {} exit flushes={}", version(), self.flushes);
    }
}

export_output!(Tally);
