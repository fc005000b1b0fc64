//! Which agent the loader plays. The Fluent Bit lines differ, for a proxy plugin, in the size of
//! the structs they hand it and in the functions their executable exports, which is how a plugin
//! tells them apart (`host/src/agent/profile.rs`). The loader allocates each struct at the
//! played agent's size against an inaccessible page (`csrc/proxy.c`), so a plugin that writes a
//! field that agent does not have faults on that write.

use std::ffi::c_int;

use anyhow::{Result, bail};

/// A Fluent Bit release (line) the loader can stand in for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentVersion {
    V2_2,
    V3_2,
    /// The last 4.2 release before the definition grew `event_type`.
    V4_2_2,
    /// The first with `event_type`, before any function that proves it.
    V4_2_3,
    /// 4.2.4 to 4.2.8.
    V4_2,
    V5_0,
    /// 5.1.1 on (`config_map` in the definition).
    V5_1,
}

/// The symbols the played agent exports beyond the cmetrics calls and `flb_output_name`: which
/// build of `csrc/agent_symbols.c` is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exports {
    /// No marker of a newer agent (2.x to 4.2.3).
    Base,
    /// `flb_ml_stream_group_add_metadata` (4.2.4 on).
    Line4_2,
    /// ... and `cmt_exp_histogram_create` (5.0 on).
    Line5,
}

/// `struct loader_agent_layout` of `csrc/loader_agent.h`.
#[repr(C)]
pub(crate) struct RawLayout {
    def_size: usize,
    def_zeroed: c_int,
    api_entries: c_int,
}

impl AgentVersion {
    /// Every agent, oldest first.
    pub const ALL: [AgentVersion; 7] = [
        AgentVersion::V2_2,
        AgentVersion::V3_2,
        AgentVersion::V4_2_2,
        AgentVersion::V4_2_3,
        AgentVersion::V4_2,
        AgentVersion::V5_0,
        AgentVersion::V5_1,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentVersion::V2_2 => "2.2",
            AgentVersion::V3_2 => "3.2",
            AgentVersion::V4_2_2 => "4.2.2",
            AgentVersion::V4_2_3 => "4.2.3",
            AgentVersion::V4_2 => "4.2",
            AgentVersion::V5_0 => "5.0",
            AgentVersion::V5_1 => "5.1",
        }
    }

    pub fn parse(text: &str) -> Result<Self> {
        match Self::ALL.into_iter().find(|v| v.as_str() == text.trim()) {
            Some(version) => Ok(version),
            None => {
                let known: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                bail!("unknown agent version {text:?} (one of {})", known.join(", "))
            }
        }
    }

    /// `sizeof(struct flb_plugin_proxy_def)` of this agent.
    pub fn def_size(self) -> usize {
        match self {
            AgentVersion::V2_2 | AgentVersion::V3_2 | AgentVersion::V4_2_2 => 32,
            AgentVersion::V4_2_3 | AgentVersion::V4_2 | AgentVersion::V5_0 => 40,
            AgentVersion::V5_1 => 48,
        }
    }

    /// Whether the agent reads `event_type` from the definition (else it routes logs only).
    pub fn reads_event_type(self) -> bool {
        self.def_size() >= 40
    }

    pub fn exports(self) -> Exports {
        match self {
            AgentVersion::V2_2 | AgentVersion::V3_2 | AgentVersion::V4_2_2 | AgentVersion::V4_2_3 => Exports::Base,
            AgentVersion::V4_2 => Exports::Line4_2,
            AgentVersion::V5_0 | AgentVersion::V5_1 => Exports::Line5,
        }
    }

    pub(crate) fn layout(self) -> RawLayout {
        RawLayout {
            def_size: self.def_size(),
            // flb_calloc from 4.2.3 on, flb_malloc before.
            def_zeroed: c_int::from(self.reads_event_type()),
            // The custom-plugin calls came with 4.1.
            api_entries: match self {
                AgentVersion::V2_2 | AgentVersion::V3_2 => 7,
                _ => 9,
            },
        }
    }
}

impl Default for AgentVersion {
    /// The agent the project is developed against.
    fn default() -> Self {
        AgentVersion::V5_1
    }
}

impl std::fmt::Display for AgentVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fluent Bit {}", self.as_str())
    }
}
