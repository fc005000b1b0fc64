//! `out-wasm:output@0.1.0`, the first published version, adapted to the newest.
//!
//! A 0.1.0 guest accepts logs only, gets `flush(tag, chunk)` with no context, knows the
//! `msgpack` and `json-lines` formats, and imports no metrics. Its `logging` is the same as the
//! newest's, so the host serves it with the same code (`sandbox::logging`).

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "output-plugin",
    exports: { default: async },
});

pub use self::out_wasm::output::{logging, types};
use crate::bindings as latest;

impl From<types::ConfigKey> for latest::ConfigKey {
    fn from(key: types::ConfigKey) -> Self {
        latest::ConfigKey {
            name: key.name,
            description: key.description,
            default_value: key.default_value,
            required: key.required,
        }
    }
}

impl From<types::EventFormat> for latest::EventFormat {
    fn from(format: types::EventFormat) -> Self {
        match format {
            types::EventFormat::Msgpack => latest::EventFormat::Msgpack,
            types::EventFormat::JsonLines => latest::EventFormat::JsonLines(latest::JsonOptions::agent_default()),
        }
    }
}

impl From<types::FlushError> for latest::FlushError {
    fn from(err: types::FlushError) -> Self {
        match err {
            types::FlushError::Retry(reason) => latest::FlushError::Retry(reason),
            types::FlushError::Error(reason) => latest::FlushError::Error(reason),
        }
    }
}

/// The 0.1.0 form of an event format, if it has one (`otlp-json` came with 0.2.0, the options
/// of `json-lines` with 0.3.0).
pub fn event_format(format: &latest::EventFormat) -> Option<types::EventFormat> {
    match format {
        latest::EventFormat::Msgpack => Some(types::EventFormat::Msgpack),
        latest::EventFormat::JsonLines(options) if options.is_agent_default() => Some(types::EventFormat::JsonLines),
        latest::EventFormat::JsonLines(_) | latest::EventFormat::OtlpJson => None,
    }
}

/// The 0.1.0 init context: the same fields less the event types (always logs).
pub fn init_context(ctx: &latest::InitContext) -> anyhow::Result<types::InitContext> {
    let Some(event_format) = event_format(&ctx.event_format) else {
        anyhow::bail!(
            "event format {:?} needs a guest built against a later out-wasm:output than this one's 0.1.0 \
             (otlp_json: 0.2.0, JSON lines with other options than the agent's defaults: 0.3.0)",
            ctx.event_format
        );
    };
    Ok(types::InitContext {
        instance: ctx.instance.clone(),
        guest_path: ctx.guest_path.clone(),
        guest_digest: ctx.guest_digest.clone(),
        config: ctx
            .config
            .iter()
            .map(|entry| types::ConfigEntry { key: entry.key.clone(), value: entry.value.clone() })
            .collect(),
        event_format,
    })
}
