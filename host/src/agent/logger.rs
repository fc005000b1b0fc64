//! The agent's log, as one output instance writes it: `[output:wasm:wasm.0] message`, from
//! the agent's threads directly and from the plugin's own threads through an outbox.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::agent::handle::Agent;
use crate::log::Level;

/// Lines logged on plugin threads, waiting for an agent thread to write them.
#[derive(Default)]
struct Outbox {
    pending: AtomicBool,
    lines: Mutex<Vec<(Level, String)>>,
}

/// Logs on behalf of one output instance: `[output:wasm:wasm.0] message`.
///
/// The agent's log is only written on the agent's own threads (from any other thread it would
/// bypass the agent's log file and go to stderr). A logger made with [`Logger::deferred`], for
/// the plugin's own threads, queues its lines instead; [`Logger::drain`] writes them, in order,
/// on the next call the agent makes.
#[derive(Clone)]
pub struct Logger {
    agent: Agent,
    prefix: String,
    max: Level,
    outbox: Arc<Outbox>,
    deferred: bool,
}

impl Logger {
    pub fn new(agent: Agent, instance: &str) -> Self {
        Self {
            agent,
            prefix: format!("[output:wasm:{instance}] "),
            max: agent.max_level(),
            outbox: Arc::default(),
            deferred: false,
        }
    }

    /// The same logger for use on a plugin thread: lines wait for [`Logger::drain`].
    pub fn deferred(&self) -> Self {
        Self { deferred: true, ..self.clone() }
    }

    /// Writes the lines queued by deferred loggers. Call on agent threads only.
    pub fn drain(&self) {
        if !self.outbox.pending.swap(false, Ordering::AcqRel) {
            return;
        }
        let lines = std::mem::take(&mut *self.outbox.lines.lock().unwrap_or_else(PoisonError::into_inner));
        for (level, line) in lines {
            self.agent.print(level, &line);
        }
    }

    /// The most verbose level the instance logs at.
    pub fn max_level(&self) -> Level {
        self.max
    }

    pub fn log(&self, level: Level, message: &str) {
        if level > self.max {
            return;
        }
        let line = format!("{}{message}", self.prefix);
        if self.deferred {
            self.outbox.lines.lock().unwrap_or_else(PoisonError::into_inner).push((level, line));
            self.outbox.pending.store(true, Ordering::Release);
        } else {
            self.agent.print(level, &line);
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
