//! Which agent loaded the plugin, as far as the proxy ABI goes, found out without touching
//! anything that agent might not have.
//!
//! The agent never tells a plugin its version, and the structs it hands over carry no size.
//! `struct flb_plugin_proxy_def`, which Register fills, grew twice, and the agent allocates
//! exactly its own size of it (`flb_plugin_proxy_create` in `src/flb_plugin_proxy.c`):
//!
//! | Fluent Bit | fields | size on 64-bit |
//! | --- | --- | --- |
//! | 2.0 to 4.2.2 | type, proxy, flags, name, description | 32 bytes, `flb_malloc` (not zeroed) |
//! | 4.2.3 to 5.1.0 | ... + `event_type` | 40 bytes, `flb_calloc` |
//! | 5.1.1 on | ... + `config_map` | 48 bytes, `flb_calloc` |
//!
//! Writing `event_type` into a 32-byte definition corrupts the agent's heap. What tells the
//! versions apart without undefined behaviour is the agent's own dynamic symbol table: its
//! executable is linked with `ENABLE_EXPORTS` (`--export-dynamic`) since 2.0, so every function
//! it defines resolves with `dlsym(RTLD_DEFAULT, ...)`, and a function introduced after the
//! field proves the field. Neither 4.2.3 nor 5.1.1 introduced a function, so the markers are the
//! first functions added after each change on its release line (read from the sources of every
//! tag from 1.9 to 5.1.1, checked with `nm -D` on builds of 2.2, 3.2, 4.2, 5.0 and 5.1):
//!
//! - `cmt_exp_histogram_create`: cmetrics 2, bundled since Fluent Bit 5.0.0, in no 4.x;
//! - `flb_ml_stream_group_add_metadata`: new in 4.2.4, kept in every 5.x.
//!
//! An agent with neither (2.x to 4.2.3, or one that exports nothing: a build without
//! `ENABLE_EXPORTS`, a loader) is taken for the oldest supported one: `event_type` is left
//! alone and the agent routes logs only, which it also does for a definition without the field.
//! `config_map` is never written: every agent that has it zeroes the definition, and NULL (no
//! schema) is what the plugin needs. The rest of what the plugin touches is the same on every
//! supported agent: the first seven entries of `struct flb_api` (2.0 on), `struct
//! flbgo_output_plugin` and `struct flb_plugin_proxy_context` (unchanged since 1.x),
//! `flb_output_name` (2.0 on), and the cmetrics calls of [`crate::agent::symbols`], whose
//! declarations are identical in every cmetrics the agents bundle (0.6 in 2.2 to 2.2 in 5.1).

use std::ffi::CStr;

/// A function whose presence proves the definition has `event_type`, and the agents it names.
struct Marker {
    symbol: &'static CStr,
    agents: &'static str,
}

const EVENT_TYPE_MARKERS: [Marker; 2] = [
    Marker { symbol: c"cmt_exp_histogram_create", agents: "Fluent Bit 5.0 or later" },
    Marker { symbol: c"flb_ml_stream_group_add_metadata", agents: "Fluent Bit 4.2.4 or later" },
];

/// The layout of the proxy definition the agent allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyDef {
    /// type, proxy, flags, name, description: the agent routes logs only.
    Base,
    /// ... and `event_type`: the plugin chooses the event types the agent routes to it.
    EventType,
}

/// What the agent that loaded the plugin gives, as detected at Register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentProfile {
    pub proxy_def: ProxyDef,
    /// The agents the evidence names, for the log.
    agents: &'static str,
}

impl AgentProfile {
    /// The profile of the agent this process runs. Runs no code of the agent.
    pub fn detect() -> Self {
        Self::from_exports(|symbol| {
            // SAFETY: `symbol` is NUL-terminated; RTLD_DEFAULT searches the objects already
            // loaded with global scope (the executable first) and runs none of their code.
            !unsafe { libc::dlsym(libc::RTLD_DEFAULT, symbol.as_ptr()) }.is_null()
        })
    }

    /// The profile an agent exporting the symbols `exports` answers true for would get.
    fn from_exports(exports: impl Fn(&CStr) -> bool) -> Self {
        match EVENT_TYPE_MARKERS.iter().find(|marker| exports(marker.symbol)) {
            Some(marker) => Self { proxy_def: ProxyDef::EventType, agents: marker.agents },
            None => Self {
                proxy_def: ProxyDef::Base,
                agents: "Fluent Bit 2.2 to 4.2.3, or an agent that does not export its functions",
            },
        }
    }

    /// Whether the plugin may set the event types it takes (`def->event_type`).
    pub fn has_event_types(&self) -> bool {
        self.proxy_def == ProxyDef::EventType
    }

    /// The one line an instance logs at init: the plugin's version, the agent detected, and
    /// what that agent cannot give.
    pub fn describe(&self) -> String {
        let version = env!("CARGO_PKG_VERSION");
        match self.proxy_def {
            ProxyDef::EventType => format!(
                "out_wasm {version} on {}: the proxy ABI with event types; guests receive logs, metrics and traces",
                self.agents
            ),
            ProxyDef::Base => format!(
                "out_wasm {version} on {}: the proxy ABI without event types; guests receive logs only (the agent \
                 routes no metrics or traces to external plugins before Fluent Bit 4.2.4 and 5.0)",
                self.agents
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_only_with_a_marker_and_the_oldest_layout_otherwise() {
        let none = AgentProfile::from_exports(|_| false);
        assert_eq!(none.proxy_def, ProxyDef::Base, "no evidence: the oldest supported agent");
        assert!(none.describe().contains("logs only"), "{}", none.describe());
        for marker in EVENT_TYPE_MARKERS {
            let profile = AgentProfile::from_exports(|symbol| symbol == marker.symbol);
            assert!(profile.has_event_types(), "{:?} proves event_type", marker.symbol);
            assert!(profile.describe().contains(marker.agents), "{}", profile.describe());
        }
        let unrelated = AgentProfile::from_exports(|symbol| symbol == c"flb_output_name");
        assert_eq!(unrelated.proxy_def, ProxyDef::Base, "a symbol every agent has proves nothing");
    }
}
