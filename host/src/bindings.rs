//! Host bindings generated from the WIT packages in `wit/`: the newest version here, each older
//! one the host still loads in a module of its own (`v0_2_0`, `v0_1_0`), with the conversions
//! that adapt it to the newest. The rest of the host only ever sees the newest version's types.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "output-plugin",
    // Guest calls are futures so that a deadline can stop them even while the guest waits in
    // a host call (a WASI sleep, a blocked write), not only while it computes.
    exports: { default: async },
    // The host compares formats and options (a guest's preference, the operator's choice).
    additional_derives: [PartialEq],
});

pub mod v0_1_0;
pub mod v0_2_0;

pub use self::out_wasm::output::types::{
    ConfigEntry, ConfigKey, DateFormat, Delivery, EventFormat, EventType, EventTypes, FlushContext, FlushError,
    InitContext, JsonOptions,
};
pub use self::out_wasm::output::{config, logging, metrics, types};

/// A version of the WIT package the host loads guests of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WitVersion {
    V0_1_0,
    V0_2_0,
    V0_3_0,
}

impl WitVersion {
    /// Every version the host loads, newest first: a component is bound to the newest it exports.
    pub const SUPPORTED: [WitVersion; 3] = [WitVersion::V0_3_0, WitVersion::V0_2_0, WitVersion::V0_1_0];

    pub fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1_0 => "0.1.0",
            WitVersion::V0_2_0 => "0.2.0",
            WitVersion::V0_3_0 => "0.3.0",
        }
    }

    /// The name of the `output` interface a guest of this version exports.
    pub fn output_export(self) -> String {
        format!("out-wasm:output/output@{}", self.as_str())
    }

    /// The world, as users see it in errors and in `out-wasm check`.
    pub fn world(self) -> String {
        format!("out-wasm:output/output-plugin@{}", self.as_str())
    }
}

impl std::fmt::Display for WitVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EventType {
    pub fn name(self) -> &'static str {
        match self {
            EventType::Logs => "logs",
            EventType::Metrics => "metrics",
            EventType::Traces => "traces",
        }
    }

    /// The set holding just this type.
    pub fn as_set(self) -> EventTypes {
        match self {
            EventType::Logs => EventTypes::LOGS,
            EventType::Metrics => EventTypes::METRICS,
            EventType::Traces => EventTypes::TRACES,
        }
    }
}

impl JsonOptions {
    /// The agent's own defaults (`date`, `double`, escaped): what 0.1.0 and 0.2.0 guests get.
    pub fn agent_default() -> Self {
        Self { date_key: Some("date".to_owned()), date_format: DateFormat::Double, escape_unicode: true }
    }

    pub fn is_agent_default(&self) -> bool {
        *self == Self::agent_default()
    }
}

impl EventFormat {
    /// The name operators write in `wasm_event_format`.
    pub fn key_name(&self) -> &'static str {
        match self {
            EventFormat::Msgpack => "msgpack",
            EventFormat::JsonLines(_) => "json_lines",
            EventFormat::OtlpJson => "otlp_json",
        }
    }
}
