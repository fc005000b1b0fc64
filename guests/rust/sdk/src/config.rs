//! Declaring configuration keys, and reading the values the host resolved.

use std::str::FromStr;

use crate::bindings::out_wasm::output::types as wit;

/// One key this guest accepts in its `[OUTPUT]` section.
#[derive(Clone, Debug)]
pub struct ConfigKey {
    name: String,
    description: String,
    default: Option<String>,
    required: bool,
}

impl ConfigKey {
    /// A key the operator may leave out.
    pub fn optional(name: &str, description: &str) -> Self {
        Self { name: name.into(), description: description.into(), default: None, required: false }
    }

    /// A key the operator must set: the agent refuses to start without it.
    pub fn required(name: &str, description: &str) -> Self {
        Self { required: true, ..Self::optional(name, description) }
    }

    /// The value used when the operator sets none.
    pub fn default(mut self, value: &str) -> Self {
        self.default = Some(value.into());
        self
    }
}

impl From<ConfigKey> for wit::ConfigKey {
    fn from(key: ConfigKey) -> Self {
        Self { name: key.name, description: key.description, default_value: key.default, required: key.required }
    }
}

/// The resolved values of the declared keys.
#[derive(Clone, Debug, Default)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// The value of `key` (as declared; matched case-insensitively), if it has one.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }

    /// The value of `key` parsed as `T`; an error names the key and the value.
    pub fn parse<T: FromStr>(&self, key: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        self.get(key)
            .map(|value| value.parse().map_err(|err| format!("invalid value {value:?} for key '{key}': {err}")))
            .transpose()
    }

    /// Every key with a value, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
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
}

pub use wit::{EventFormat, EventType, EventTypes};

impl From<wit::InitContext> for InitContext {
    fn from(ctx: wit::InitContext) -> Self {
        Self {
            instance: ctx.instance,
            guest_path: ctx.guest_path,
            guest_digest: ctx.guest_digest,
            config: Config { entries: ctx.config.into_iter().map(|e| (e.key, e.value)).collect() },
            event_format: ctx.event_format,
            event_types: ctx.event_types,
        }
    }
}
