//! A stand-in for Fluent Bit that drives an external output plugin (`out_wasm.so`) through the
//! agent's own C ABI: the same symbols, structs and call order (see `csrc/proxy.c`), flushes on
//! 64 KiB-stack threads like the agent's coroutines, properties hidden or shown like the core
//! does, and the plugin's log lines captured per call.

pub mod agent;
pub mod agent_config;
pub mod chunks;
pub mod metrics;
pub mod proxy;
pub mod run;

pub use agent::AgentVersion;
pub use agent_config::{AgentConfig, Section, tag_matches};
pub use chunks::{Layout, Time, TimeEncoding};
pub use proxy::{LoadedOutput, LogLine, Logged, OpenOptions, Plugin, Properties, echo_logs, still_loaded};
pub use run::{RunOptions, run};

/// The agent's flush answers.
pub const FLB_ERROR: i32 = 0;
pub const FLB_OK: i32 = 1;
pub const FLB_RETRY: i32 = 2;

/// Name of a flush answer, for messages.
pub fn status_name(status: i32) -> &'static str {
    match status {
        FLB_ERROR => "FLB_ERROR",
        FLB_OK => "FLB_OK",
        FLB_RETRY => "FLB_RETRY",
        _ => "unknown (treated as FLB_ERROR)",
    }
}
