//! `out-wasm:output@0.2.0`, adapted to the newest.
//!
//! A 0.2.0 guest has what 0.3.0 has but the config lookup, the idle call, the delivery id, the
//! options of `json-lines` (it gets the agent's defaults) and metrics as resources (its
//! `metrics` interface numbers them). Its `logging` is the same as the newest's, so the host
//! serves it with the same code (`sandbox::logging`), and its `metrics` with the same registry
//! (`sandbox::metrics`).

wasmtime::component::bindgen!({
    path: "../wit/v0.2.0",
    world: "output-plugin",
    exports: { default: async },
});

pub use self::out_wasm::output::{logging, metrics, types};
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
            types::EventFormat::OtlpJson => latest::EventFormat::OtlpJson,
        }
    }
}

impl From<types::EventTypes> for latest::EventTypes {
    fn from(types: types::EventTypes) -> Self {
        let mut set = latest::EventTypes::empty();
        for (old, new) in [
            (types::EventTypes::LOGS, latest::EventTypes::LOGS),
            (types::EventTypes::METRICS, latest::EventTypes::METRICS),
            (types::EventTypes::TRACES, latest::EventTypes::TRACES),
        ] {
            if types.contains(old) {
                set |= new;
            }
        }
        set
    }
}

fn event_types(set: latest::EventTypes) -> types::EventTypes {
    let mut old = types::EventTypes::empty();
    for (new, flag) in [
        (latest::EventTypes::LOGS, types::EventTypes::LOGS),
        (latest::EventTypes::METRICS, types::EventTypes::METRICS),
        (latest::EventTypes::TRACES, types::EventTypes::TRACES),
    ] {
        if set.contains(new) {
            old |= flag;
        }
    }
    old
}

fn event_type(event_type: latest::EventType) -> types::EventType {
    match event_type {
        latest::EventType::Logs => types::EventType::Logs,
        latest::EventType::Metrics => types::EventType::Metrics,
        latest::EventType::Traces => types::EventType::Traces,
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

/// The 0.2.0 form of an event format, if it has one: `json-lines` only with the agent's
/// default options (their choice came with 0.3.0).
pub fn event_format(format: &latest::EventFormat) -> Option<types::EventFormat> {
    match format {
        latest::EventFormat::Msgpack => Some(types::EventFormat::Msgpack),
        latest::EventFormat::JsonLines(options) if options.is_agent_default() => Some(types::EventFormat::JsonLines),
        latest::EventFormat::JsonLines(_) => None,
        latest::EventFormat::OtlpJson => Some(types::EventFormat::OtlpJson),
    }
}

/// The 0.2.0 init context: the same fields, the format without options.
pub fn init_context(ctx: &latest::InitContext) -> anyhow::Result<types::InitContext> {
    let Some(event_format) = event_format(&ctx.event_format) else {
        anyhow::bail!(
            "JSON lines with other options than the agent's defaults need a guest built against \
             out-wasm:output@0.3.0 or later; this one is 0.2.0"
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
        event_types: event_types(ctx.event_types),
    })
}

/// The 0.2.0 flush context: without the delivery.
pub fn flush_context(ctx: &latest::FlushContext) -> types::FlushContext {
    types::FlushContext { tag: ctx.tag.clone(), event_type: event_type(ctx.event_type), time_left: ctx.time_left }
}
