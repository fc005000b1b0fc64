//! Log levels, and the sink through which a guest instance's log lines leave the sandbox.
//!
//! A leaf module: every part of the sandbox that writes log lines (the `logging` interface, a
//! stdout or stderr routed to the log, the network policy's refusals, refused guest metrics)
//! writes them to the instance's [`LogSink`], and whoever drives the instance decides where
//! they go: the worker relays them to the agent thread waiting on the current call, `out-wasm
//! check` keeps them for the author.

use std::ffi::c_int;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

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
    pub const ALL: [Level; 5] = [Level::Error, Level::Warn, Level::Info, Level::Debug, Level::Trace];

    /// The agent's numeric value (`FLB_LOG_ERROR` = 1 ... `FLB_LOG_TRACE` = 5).
    pub fn as_flb(self) -> c_int {
        self as c_int + 1
    }
}

/// Log lines one guest call may write: a guest cannot flood the agent's log.
pub const LOG_LINES_PER_CALL: u32 = 1000;

/// Where the lines of a guest instance end up.
pub trait Lines: Send + Sync {
    /// Hands one line on. Dropped without a word when no one waits for it any more (the call
    /// was abandoned and its instance is being discarded).
    fn line(&self, level: Level, text: String);
}

/// The log sink of one guest instance, and the lines it may still write in the current call.
#[derive(Clone)]
pub struct LogSink {
    out: Arc<dyn Lines>,
    left: Arc<AtomicU32>,
    dropped: Arc<AtomicU64>,
}

impl LogSink {
    pub fn new(out: Arc<dyn Lines>) -> Self {
        Self { out, left: Arc::new(AtomicU32::new(LOG_LINES_PER_CALL)), dropped: Arc::default() }
    }

    /// Starts a call: the instance gets its full budget of lines again.
    pub fn begin_call(&self) {
        self.left.store(LOG_LINES_PER_CALL, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
    }

    /// Lines refused in the current call because its budget was spent.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes a line of the guest's (or about what the guest did) within the call's budget;
    /// past it, the line is counted and dropped.
    pub fn write(&self, level: Level, text: String) {
        let took = self.left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok();
        if took {
            self.out.line(level, text);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes a line of the host's own outside the budget: one the host already rate-limits.
    pub fn write_always(&self, level: Level, text: String) {
        self.out.line(level, text);
    }
}
