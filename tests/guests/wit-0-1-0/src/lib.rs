//! Test guest `wit-0-1-0`: a guest built against the frozen `out-wasm:output@0.1.0` (from
//! `wit/v0.1.0`, with wit-bindgen directly: the SDK follows the newest version), proving the host
//! still loads guests of the first published version unchanged.
//!
//! Contract:
//! - Keys: `label` (required). Prefers the `msgpack` event format.
//! - init logs `v0.1.0 init instance=<name> label=<label> format=<msgpack|json-lines>` at info.
//! - flush logs `v0.1.0 flush tag=<tag> bytes=<chunk length>` at info, then answers `retry`
//!   for tag `retry`, `error` for tag `error`, and ok otherwise. It never traps.
//! - exit logs `v0.1.0 exit flushes=<n>` at info.

wit_bindgen::generate!({
    path: "../../../wit/v0.1.0",
    world: "output-plugin",
});

use std::cell::Cell;

use exports::out_wasm::output::output::Guest;
use out_wasm::output::logging::{Level, log};
use out_wasm::output::types::{ConfigKey, EventFormat, FlushError, InitContext};

thread_local! {
    static FLUSHES: Cell<u64> = const { Cell::new(0) };
}

struct V010;

impl Guest for V010 {
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

    fn init(ctx: InitContext) -> Result<(), String> {
        let label = ctx.config.iter().find(|entry| entry.key == "label").map_or("", |entry| entry.value.as_str());
        let format = match ctx.event_format {
            EventFormat::Msgpack => "msgpack",
            EventFormat::JsonLines => "json-lines",
        };
        log(Level::Info, &format!("v0.1.0 init instance={} label={label} format={format}", ctx.instance));
        Ok(())
    }

    fn flush(tag: String, chunk: Vec<u8>) -> Result<(), FlushError> {
        FLUSHES.set(FLUSHES.get() + 1);
        log(Level::Info, &format!("v0.1.0 flush tag={tag} bytes={}", chunk.len()));
        match tag.as_str() {
            "retry" => Err(FlushError::Retry("asked to retry".into())),
            "error" => Err(FlushError::Error("asked to fail".into())),
            _ => Ok(()),
        }
    }

    fn exit() {
        log(Level::Info, &format!("v0.1.0 exit flushes={}", FLUSHES.get()));
    }
}

export!(V010);
