//! The agent's log, as one output instance writes it: `[output:wasm:wasm.0] message`, from
//! the agent's threads directly and from the plugin's own threads through a bounded outbox.
//!
//! Every line carries the instance, and every message is made printable here, whoever wrote it
//! (a guest's log line, its retry reason, a trap's message): a line break starts a new line
//! that carries the instance again, other control characters are written out, so nothing a
//! guest says passes for a line of the agent's own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::agent::handle::Agent;
use crate::log::{LOG_BYTES_PER_CALL, LOG_LINES_PER_CALL, Level, escape_into};

/// The longest message written, in bytes (a trap's backtrace fits); the rest is cut, and said.
const MAX_MESSAGE_BYTES: usize = 64 << 10;

/// Lines logged on plugin threads, waiting for an agent thread to write them. Bounded as one
/// guest call's log is: a guest writing in `idle`, with no flush to drain them, cannot make
/// the host keep more.
#[derive(Default)]
struct Outbox {
    pending: AtomicBool,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    lines: Vec<(Level, String)>,
    bytes: usize,
    dropped: u64,
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
        let queue = std::mem::take(&mut *self.outbox.queue.lock().unwrap_or_else(PoisonError::into_inner));
        for (level, line) in queue.lines {
            self.agent.print(level, &line);
        }
        if queue.dropped > 0 {
            self.agent.print(
                Level::Warn,
                &format!(
                    "{}{} log lines written between the agent's calls were dropped (at most {LOG_LINES_PER_CALL} \
                     lines and {} KiB wait for the next call)",
                    self.prefix,
                    queue.dropped,
                    LOG_BYTES_PER_CALL >> 10
                ),
            );
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
        for line in printable_lines(message) {
            let line = format!("{}{line}", self.prefix);
            if self.deferred {
                let mut queue = self.outbox.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.lines.len() < LOG_LINES_PER_CALL as usize && queue.bytes + line.len() <= LOG_BYTES_PER_CALL {
                    queue.bytes += line.len();
                    queue.lines.push((level, line));
                } else {
                    queue.dropped += 1;
                }
                self.outbox.pending.store(true, Ordering::Release);
            } else {
                self.agent.print(level, &line);
            }
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

/// `message` cut to [`MAX_MESSAGE_BYTES`] and split at its line breaks, each line with its
/// control characters written out.
fn printable_lines(message: &str) -> Vec<String> {
    let (kept, cut) = match message.char_indices().find(|(at, _)| *at >= MAX_MESSAGE_BYTES) {
        Some((at, _)) => (&message[..at], message.len() - at),
        None => (message, 0),
    };
    let mut lines: Vec<String> = kept
        .split('\n')
        .map(|line| {
            let mut out = String::with_capacity(line.len());
            line.chars().for_each(|c| escape_into(&mut out, c));
            out
        })
        .collect();
    if cut > 0 {
        lines.push(format!("[... {cut} more bytes of this message cut]"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_a_message_is_printable_and_its_own() {
        let lines = printable_lines("retry: busy\n[2026/12/07 10:00:00] [error] [engine] \u{1b}[2Jgone\r");
        assert_eq!(lines, ["retry: busy", "[2026/12/07 10:00:00] [error] [engine] \\u{1b}[2Jgone\\r"]);
        let lines = printable_lines(&"z".repeat(MAX_MESSAGE_BYTES + 10));
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], "[... 10 more bytes of this message cut]");
    }
}
