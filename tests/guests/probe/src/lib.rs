//! Test guest `probe`: reports everything it sees through the agent's log, and misbehaves on
//! request, so tests can check both sides of the boundary.
//!
//! Contract:
//! - Keys: `label` (required), `greeting` (default `hello`), `mode` (default `ok`; `retry` or
//!   `error` make every flush answer so), `gate_dir` (optional: the guest path of a directory
//!   the test grants read-write, see `tests/guests/sync.rs`), `fail_init` (optional: init fails
//!   with this text).
//! - init logs `probe init instance=<name> label=<label> digest=<first 12 hex>
//!   hostname=<host> config=<k=v;...>` at info, then fails with `fail_init` if set.
//! - flush logs, at info, one `probe event #<n> tag=<tag> ts=<secs>.<nanos 9 digits>
//!   meta=<json> body=<json>` per record, where n counts this instance's flushes from 1, then
//!   `probe flushed #<n> records=<count>`.
//!   A malformed chunk fails the flush with FLB_ERROR and the SDK's decode error (which names
//!   the byte offset). A record whose body has `"probe": "trap"` makes the flush panic (a trap)
//!   after logging the records before it. With `gate_dir` set, every flush first creates the
//!   mark `<gate_dir>/entered.<n>` and waits at the gate `<gate_dir>/open` before it reads the
//!   chunk (a gate never opened fails the flush with FLB_ERROR after 3 minutes). Otherwise the
//!   flush answers per `mode`.
//! - exit logs `probe exit flushes=<n>` at info.
//! - 0.2.0: `accept` (default `logs`) is the comma-separated event types it accepts, read from
//!   the environment variable `PROBE_ACCEPT` when granted (`accepted-event-types` runs before
//!   the config is known). Each flush first logs `probe context #<n> type=<logs|metrics|traces>
//!   time_left=<some|none> bytes=<chunk length>`; a metrics or traces chunk is not decoded.
//!   With `metrics on`, init declares the counter `probe_records` (label `tag`) and flush adds
//!   the number of records per tag; `metric_tag` (optional) replaces the tag as the label
//!   value, and a refused update fails the flush with FLB_ERROR and the host's reason.
//! - 0.3.0: each flush also logs `probe delivery #<n> id=<delivery id> attempt=<attempt>`.
//!   `lookup` (optional) names keys, comma-separated, that init reads with the config lookup
//!   (declared or not), logging `probe lookup <key>=<value>` (`<key> unset` when unset).
//!   `idle` (optional): `on` makes every idle call log `probe idle #<k> budget_ms=<budget>`,
//!   leave the mark `idle.<n>` in `gate_dir` when set, and ask to be called again; `trap`
//!   makes the first idle call panic after its mark. Without `idle`, the SDK's default: no
//!   idle calls after the first.

#[path = "../../sync.rs"]
mod sync;

use out_wasm_guest::metrics::Counter;
use std::time::Duration;

use out_wasm_guest::{
    Chunk, ConfigKey, EventType, EventTypes, FlushError, InitContext, Output, Value, export_output, info, lookup,
};

struct Probe {
    mode: String,
    gate_dir: Option<String>,
    idle: Option<String>,
    idles: u64,
    flushes: u64,
    records: Option<Counter>,
    metric_tag: Option<String>,
}

fn accepted() -> EventTypes {
    let list = std::env::var("PROBE_ACCEPT").unwrap_or_else(|_| "logs".to_owned());
    list.split(',').fold(EventTypes::empty(), |set, name| match name.trim() {
        "logs" => set | EventTypes::LOGS,
        "metrics" => set | EventTypes::METRICS,
        "traces" => set | EventTypes::TRACES,
        _ => set,
    })
}

impl Output for Probe {
    fn config_schema() -> Vec<ConfigKey> {
        vec![
            ConfigKey::required("label", "a name for this probe"),
            ConfigKey::optional("greeting", "a key with a default").default("hello"),
            ConfigKey::optional("mode", "ok, retry or error").default("ok"),
            ConfigKey::optional("gate_dir", "a granted directory: every flush waits at its gate"),
            ConfigKey::optional("fail_init", "init fails with this text"),
            ConfigKey::optional("metrics", "on: count records in a guest metric").default("off"),
            ConfigKey::optional("metric_tag", "label value to count under instead of the tag"),
            ConfigKey::optional("lookup", "keys init reads with the config lookup, comma-separated"),
            ConfigKey::optional("idle", "on: log idle calls and ask for more; trap: panic in the first"),
        ]
    }

    fn accepted_event_types() -> EventTypes {
        accepted()
    }

    fn init(ctx: InitContext) -> Result<Self, String> {
        let config: Vec<String> = ctx.config.iter().map(|(k, v)| format!("{k}={v}")).collect();
        info!(
            "probe init instance={} label={} digest={} hostname={} config={}",
            ctx.instance,
            ctx.config.get("label").unwrap_or_default(),
            &ctx.guest_digest[..12],
            ctx.hostname,
            config.join(";")
        );
        for key in ctx.config.get("lookup").unwrap_or_default().split(',').map(str::trim).filter(|k| !k.is_empty()) {
            match lookup(key) {
                Some(value) => info!("probe lookup {key}={value}"),
                None => info!("probe lookup {key} unset"),
            }
        }
        if let Some(reason) = ctx.config.get("fail_init") {
            return Err(reason.to_owned());
        }
        let records = match ctx.config.get("metrics") {
            Some("on") => Some(Counter::declare("probe_records", "records the probe saw", &["tag"])?),
            _ => None,
        };
        Ok(Probe {
            mode: ctx.config.get("mode").unwrap_or("ok").to_owned(),
            gate_dir: ctx.config.get("gate_dir").map(str::to_owned),
            idle: ctx.config.get("idle").map(str::to_owned),
            idles: 0,
            flushes: 0,
            records,
            metric_tag: ctx.config.get("metric_tag").map(str::to_owned),
        })
    }

    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
        self.flushes += 1;
        let n = self.flushes;
        let event_type = match chunk.event_type() {
            EventType::Logs => "logs",
            EventType::Metrics => "metrics",
            EventType::Traces => "traces",
        };
        let time_left = if chunk.time_left().is_some() { "some" } else { "none" };
        info!("probe context #{n} type={event_type} time_left={time_left} bytes={}", chunk.bytes().len());
        if let Some(delivery) = chunk.delivery() {
            info!("probe delivery #{n} id={} attempt={}", delivery.id, delivery.attempt);
        }
        if chunk.event_type() != EventType::Logs {
            return Ok(());
        }
        if let Some(dir) = &self.gate_dir {
            sync::mark(dir, "entered").and_then(|_| sync::wait_at_gate(dir)).map_err(FlushError::Error)?;
        }
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
        info!("probe flushed #{n} records={records}");
        if let Some(counter) = &self.records {
            let tag = self.metric_tag.as_deref().unwrap_or(chunk.tag());
            counter.add(&[tag], records as f64).map_err(FlushError::Error)?;
        }
        match self.mode.as_str() {
            "retry" => Err(FlushError::Retry("probe was asked to retry".into())),
            "error" => Err(FlushError::Error("probe was asked to fail".into())),
            _ => Ok(()),
        }
    }

    fn idle(&mut self, budget: Duration) -> Option<Duration> {
        let mode = self.idle.as_deref()?;
        self.idles += 1;
        info!("probe idle #{} budget_ms={}", self.idles, budget.as_millis());
        if let Some(dir) = &self.gate_dir {
            // A failed mark is the test's to notice: it waits for marks.
            let _ = sync::mark(dir, "idle");
        }
        if mode == "trap" {
            panic!("probe was asked to trap in idle");
        }
        // As soon as the host allows (it keeps wasm_idle_interval between calls).
        Some(Duration::ZERO)
    }

    fn exit(&mut self) {
        info!("probe exit flushes={}", self.flushes);
    }
}

export_output!(Probe);
