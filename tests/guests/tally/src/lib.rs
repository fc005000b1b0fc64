//! Test guests `tally` and `tally-v2` (the same source under two crate names, so two different
//! components): they mark everything they log with their version, for hot-swap tests.
//!
//! Contract:
//! - The version is the crate name: `tally` or `tally-v2`.
//! - Keys: `sleep_ms` (default `0`: how long a flush takes when a record has `"slow": true`).
//!   `tally-v2` also requires `note`, so swapping to it fails where `note` is not set.
//! - init logs `tally <version> init digest=<first 12 hex>` at info.
//! - flush logs `tally <version> seq=<seq>` at info for every record (its body's `seq`), after
//!   sleeping `sleep_ms` if any record is slow, and answers ok; a malformed chunk fails it.
//! - exit logs `tally <version> exit flushes=<n>` at info.

use std::time::Duration;

use out_wasm_guest::{Chunk, ConfigKey, FlushError, InitContext, Output, Value, export_output, info};

const VERSION: &str = env!("CARGO_PKG_NAME");

struct Tally {
    sleep: Duration,
    flushes: u64,
}

impl Output for Tally {
    fn config_schema() -> Vec<ConfigKey> {
        let mut keys = vec![ConfigKey::optional("sleep_ms", "how long a slow flush takes").default("0")];
        if VERSION == "tally-v2" {
            keys.push(ConfigKey::required("note", "a key only version 2 needs"));
        }
        keys
    }

    fn init(ctx: InitContext) -> Result<Self, String> {
        info!("tally {VERSION} init digest={}", &ctx.guest_digest[..12]);
        Ok(Tally { sleep: Duration::from_millis(ctx.config.parse("sleep_ms")?.unwrap_or(0)), flushes: 0 })
    }

    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
        self.flushes += 1;
        let mut seqs = Vec::new();
        let mut slow = false;
        for event in chunk.events() {
            let event = event?;
            slow |= event.body.get("slow") == Some(&Value::Bool(true));
            match event.body.get("seq") {
                Some(Value::UInt(seq)) => seqs.push(*seq),
                other => return Err(FlushError::Error(format!("record without a seq: {other:?}"))),
            }
        }
        if slow {
            std::thread::sleep(self.sleep);
        }
        for seq in seqs {
            info!("tally {VERSION} seq={seq}");
        }
        Ok(())
    }

    fn exit(&mut self) {
        info!("tally {VERSION} exit flushes={}", self.flushes);
    }
}

export_output!(Tally);
