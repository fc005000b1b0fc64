//! Declaring configuration keys, and reading the values the host resolved.

use crate::bindings::out_wasm::output::types as wit;

pub use out_wasm_format::{Config, ConfigKey};

impl From<ConfigKey> for wit::ConfigKey {
    fn from(key: ConfigKey) -> Self {
        let (name, description, default_value, required) = key.into_parts();
        Self { name, description, default_value, required }
    }
}

/// What a guest instance learns before its first flush.
#[derive(Clone, Debug)]
pub struct InitContext {
    /// The agent's name for the output instance: its `alias`, or e.g. `wasm.0`.
    pub instance: String,
    /// The configured `wasm_path`.
    pub guest_path: String,
    /// Lowercase hex SHA-256 of the running component file.
    pub guest_digest: String,
    pub config: Config,
    /// What every `flush` of this instance receives: msgpack as the agent delivered it, or JSON
    /// lines or OTLP JSON rendered by the host (see [`EventFormat`]).
    pub event_format: EventFormat,
    /// The event types this instance's flushes can carry (the guest's
    /// [`crate::Output::accepted_event_types`]).
    pub event_types: EventTypes,
    /// The agent's machine name, as `gethostname` gives it to a native plugin.
    pub hostname: String,
}

pub use wit::{EventFormat, EventType, EventTypes};

/// The value of any key of this instance's `[OUTPUT]` section, declared or not, as the agent
/// has it (`None` when unset, and for the host's `wasm_*` keys and the agent's own). Declared
/// keys with their defaults are in [`InitContext::config`]; this reads the rest, such as keys a
/// guest builds by name.
pub fn lookup(key: &str) -> Option<String> {
    crate::bindings::out_wasm::output::config::get(key)
}

impl EventFormat {
    /// JSON lines the host renders with `format`'s keys (the agent's `stdout` output's
    /// `json_date_key`, `json_date_format` and `escape_unicode`).
    pub fn json_lines(format: &out_wasm_format::JsonLines) -> Self {
        use out_wasm_format::DateFormat;
        EventFormat::JsonLines(wit::JsonOptions {
            date_key: format.date_key.clone(),
            date_format: match format.date_format {
                DateFormat::Double => wit::DateFormat::Double,
                DateFormat::Epoch => wit::DateFormat::Epoch,
                DateFormat::EpochMs => wit::DateFormat::EpochMs,
                DateFormat::Iso8601 => wit::DateFormat::Iso8601,
                DateFormat::JavaSqlTimestamp => wit::DateFormat::JavaSqlTimestamp,
            },
            escape_unicode: format.escape_unicode,
        })
    }
}

impl From<wit::InitContext> for InitContext {
    fn from(ctx: wit::InitContext) -> Self {
        Self {
            instance: ctx.instance,
            guest_path: ctx.guest_path,
            guest_digest: ctx.guest_digest,
            config: ctx.config.into_iter().map(|e| (e.key, e.value)).collect(),
            event_format: ctx.event_format,
            event_types: ctx.event_types,
            hostname: ctx.hostname,
        }
    }
}
