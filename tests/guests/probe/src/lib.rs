//! Test guest `probe`: reports everything it sees through the agent's log, and misbehaves on
//! request, so tests can check both sides of the boundary.
//!
//! Contract:
//! - Keys: `label` (required), `greeting` (default `hello`), `mode` (default `ok`; `retry` or
//!   `error` make every flush answer so), `sleep_ms` (default `0`: time each flush takes),
//!   `fail_init` (optional: init fails with this text).
//! - init logs `probe init instance=<name> label=<label> digest=<first 12 hex> config=<k=v;...>`
//!   at info, then fails with `fail_init` if set.
//! - flush logs, at info, one `probe event #<n> tag=<tag> ts=<secs>.<nanos 9 digits>
//!   meta=<json> body=<json>` per record, where n counts this instance's flushes from 1, then
//!   `probe flushed #<n> records=<count>`.
//!   A malformed chunk fails the flush with FLB_ERROR and the SDK's decode error (which names
//!   the byte offset). A record whose body has `"probe": "trap"` makes the flush panic (a trap)
//!   after logging the records before it. Otherwise the flush answers per `mode`.
//! - exit logs `probe exit flushes=<n>` at info.

use std::time::Duration;

use out_wasm_guest::{Chunk, ConfigKey, FlushError, InitContext, Output, Value, export_output, info};

struct Probe {
    mode: String,
    sleep: Duration,
    flushes: u64,
}

impl Output for Probe {
    fn config_schema() -> Vec<ConfigKey> {
        vec![
            ConfigKey::required("label", "a name for this probe"),
            ConfigKey::optional("greeting", "a key with a default").default("hello"),
            ConfigKey::optional("mode", "ok, retry or error").default("ok"),
            ConfigKey::optional("sleep_ms", "time each flush takes").default("0"),
            ConfigKey::optional("fail_init", "init fails with this text"),
        ]
    }

    fn init(ctx: InitContext) -> Result<Self, String> {
        let config: Vec<String> = ctx.config.iter().map(|(k, v)| format!("{k}={v}")).collect();
        info!(
            "probe init instance={} label={} digest={} config={}",
            ctx.instance,
            ctx.config.get("label").unwrap_or_default(),
            &ctx.guest_digest[..12],
            config.join(";")
        );
        if let Some(reason) = ctx.config.get("fail_init") {
            return Err(reason.to_owned());
        }
        Ok(Probe {
            mode: ctx.config.get("mode").unwrap_or("ok").to_owned(),
            sleep: Duration::from_millis(ctx.config.parse("sleep_ms")?.unwrap_or(0)),
            flushes: 0,
        })
    }

    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
        self.flushes += 1;
        let n = self.flushes;
        let mut records = 0;
        for event in chunk.events() {
            let event = event?;
            if event.body.get("probe").and_then(Value::as_str) == Some("trap") {
                panic!("probe was asked to trap");
            }
            info!(
                "probe event #{n} tag={} ts={}.{:09} meta={} body={}",
                chunk.tag(),
                event.timestamp.seconds,
                event.timestamp.nanoseconds,
                event.metadata.to_json(),
                event.body.to_json()
            );
            records += 1;
        }
        std::thread::sleep(self.sleep);
        info!("probe flushed #{n} records={records}");
        match self.mode.as_str() {
            "retry" => Err(FlushError::Retry("probe was asked to retry".into())),
            "error" => Err(FlushError::Error("probe was asked to fail".into())),
            _ => Ok(()),
        }
    }

    fn exit(&mut self) {
        info!("probe exit flushes={}", self.flushes);
    }
}

export_output!(Probe);
