//! Test guest `wit-0-2-0`: a guest built against the frozen `out-wasm:output@0.2.0` (from
//! `wit/v0.2.0`, with wit-bindgen directly: the SDK follows the newest version), proving the host
//! still loads guests of that version unchanged, numbered metrics included.
//!
//! Contract:
//! - Keys: `label` (required). Prefers the `msgpack` event format; accepts logs and metrics.
//! - init declares the counter `v020_flushes` (label `tag`) with 0.2.0's numbered `metrics`,
//!   then logs `v0.2.0 init instance=<name> label=<label> format=<msgpack|json-lines|otlp-json>`
//!   at info.
//! - flush adds 1 to `v020_flushes` for the chunk's tag, logs `v0.2.0 flush tag=<tag>
//!   type=<logs|metrics|traces> time_left=<some|none> bytes=<chunk length>` at info, then answers
//!   `retry` for tag `retry`, `error` for tag `error`, and ok otherwise. It never traps.
//! - exit logs `v0.2.0 exit flushes=<n>` at info.

wit_bindgen::generate!({
    path: "../../../wit/v0.2.0",
    world: "output-plugin",
});

use std::cell::Cell;

use exports::out_wasm::output::output::Guest;
use out_wasm::output::logging::{Level, log};
use out_wasm::output::metrics::{self, MetricKind, MetricSpec};
use out_wasm::output::types::{ConfigKey, EventFormat, EventType, EventTypes, FlushContext, FlushError, InitContext};

thread_local! {
    static FLUSHES: Cell<u64> = const { Cell::new(0) };
    static COUNTER: Cell<Option<u32>> = const { Cell::new(None) };
}

struct V020;

impl Guest for V020 {
    fn config_schema() -> Vec<ConfigKey> {
        vec![ConfigKey {
            name: "label".into(),
            description: "a name for this guest".into(),
            default_value: None,
            required: true,
        }]
    }

    fn preferred_event_format() -> EventFormat {
        EventFormat::Msgpack
    }

    fn accepted_event_types() -> EventTypes {
        EventTypes::LOGS | EventTypes::METRICS
    }

    fn init(ctx: InitContext) -> Result<(), String> {
        let counter = metrics::declare(&MetricSpec {
            name: "v020_flushes".into(),
            help: "flushes of the 0.2.0 test guest".into(),
            kind: MetricKind::Counter,
            label_names: vec!["tag".into()],
            buckets: vec![],
        })?;
        COUNTER.set(Some(counter));
        let label = ctx.config.iter().find(|entry| entry.key == "label").map_or("", |entry| entry.value.as_str());
        let format = match ctx.event_format {
            EventFormat::Msgpack => "msgpack",
            EventFormat::JsonLines => "json-lines",
            EventFormat::OtlpJson => "otlp-json",
        };
        log(Level::Info, &format!("v0.2.0 init instance={} label={label} format={format}", ctx.instance));
        Ok(())
    }

    fn flush(ctx: FlushContext, chunk: Vec<u8>) -> Result<(), FlushError> {
        FLUSHES.set(FLUSHES.get() + 1);
        if let Some(counter) = COUNTER.get() {
            // A refusal costs the metric only.
            let _ = metrics::add(counter, std::slice::from_ref(&ctx.tag), 1.0);
        }
        let kind = match ctx.event_type {
            EventType::Logs => "logs",
            EventType::Metrics => "metrics",
            EventType::Traces => "traces",
        };
        let time_left = if ctx.time_left.is_some() { "some" } else { "none" };
        log(
            Level::Info,
            &format!("v0.2.0 flush tag={} type={kind} time_left={time_left} bytes={}", ctx.tag, chunk.len()),
        );
        match ctx.tag.as_str() {
            "retry" => Err(FlushError::Retry("asked to retry".into())),
            "error" => Err(FlushError::Error("asked to fail".into())),
            _ => Ok(()),
        }
    }

    fn exit() {
        log(Level::Info, &format!("v0.2.0 exit flushes={}", FLUSHES.get()));
    }
}

export!(V020);
