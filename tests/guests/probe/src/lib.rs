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
//! - 0.2.0: `accept` (default `logs`) is the comma-separated event types it accepts, read from
//!   the environment variable `PROBE_ACCEPT` when granted (`accepted-event-types` runs before
//!   the config is known). Each flush first logs `probe context #<n> type=<logs|metrics|traces>
//!   time_left=<some|none> bytes=<chunk length>`; a metrics or traces chunk is not decoded.
//!   With `metrics on`, init declares the counter `probe_records` (label `tag`) and flush adds
//!   the number of records per tag; `metric_tag` (optional) replaces the tag as the label
//!   value, and a refused update fails the flush with FLB_ERROR and the host's reason.

use std::time::Duration;

use out_wasm_guest::metrics::Counter;
use out_wasm_guest::{
    Chunk, ConfigKey, EventType, EventTypes, FlushError, InitContext, Output, Value, export_output, info,
};

struct Probe {
    mode: String,
    sleep: Duration,
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
            ConfigKey::optional("sleep_ms", "time each flush takes").default("0"),
            ConfigKey::optional("fail_init", "init fails with this text"),
            ConfigKey::optional("metrics", "on: count records in a guest metric").default("off"),
            ConfigKey::optional("metric_tag", "label value to count under instead of the tag"),
        ]
    }

    fn accepted_event_types() -> EventTypes {
        accepted()
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
        let records = match ctx.config.get("metrics") {
            Some("on") => Some(Counter::declare("probe_records", "records the probe saw", &["tag"])?),
            _ => None,
        };
        Ok(Probe {
            mode: ctx.config.get("mode").unwrap_or("ok").to_owned(),
            sleep: Duration::from_millis(ctx.config.parse("sleep_ms")?.unwrap_or(0)),
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
        if chunk.event_type() != EventType::Logs {
            return Ok(());
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
        std::thread::sleep(self.sleep);
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

    fn exit(&mut self) {
        info!("probe exit flushes={}", self.flushes);
    }
}

export_output!(Probe);
