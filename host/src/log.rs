//! Log levels and the per-instance logger that prefixes lines like the agent's own plugins.

use std::ffi::c_int;

use crate::agent::Agent;

/// The agent's log levels, least verbose first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Error,
        Level::Warn,
        Level::Info,
        Level::Debug,
        Level::Trace,
    ];

    /// The agent's numeric value (`FLB_LOG_ERROR` = 1 ... `FLB_LOG_TRACE` = 5).
    pub fn as_flb(self) -> c_int {
        self as c_int + 1
    }
}

/// Logs on behalf of one output instance: `[output:wasm:wasm.0] message`.
#[derive(Clone)]
pub struct Logger {
    agent: Agent,
    prefix: String,
    max: Level,
}

impl Logger {
    pub fn new(agent: Agent, instance: &str) -> Self {
        Self {
            agent,
            prefix: format!("[output:wasm:{instance}] "),
            max: agent.max_level(),
        }
    }

    /// The most verbose level the instance logs at.
    pub fn max_level(&self) -> Level {
        self.max
    }

    pub fn log(&self, level: Level, message: &str) {
        if level <= self.max {
            self.agent
                .print(level, &format!("{}{message}", self.prefix));
        }
    }

    pub fn error(&self, message: &str) {
        self.log(Level::Error, message)
    }

    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message)
    }

    pub fn info(&self, message: &str) {
        self.log(Level::Info, message)
    }

    pub fn debug(&self, message: &str) {
        self.log(Level::Debug, message)
    }
}
