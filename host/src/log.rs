//! Log levels, and the sink through which a guest instance's log lines leave the sandbox.
//!
//! A leaf module: every part of the sandbox that writes log lines (the `logging` interface, a
//! stdout or stderr routed to the log, the network policy's refusals, refused guest metrics)
//! writes them to the instance's [`LogSink`], and whoever drives the instance decides where
//! they go: the worker relays them to the agent thread waiting on the current call, `out-wasm
//! check` keeps them for the author.

use std::ffi::c_int;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

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

/// Bytes of log lines one guest call may write, beside the line budget: a thousand lines of the
/// longest kind would be 4 MiB.
pub const LOG_BYTES_PER_CALL: usize = 256 << 10;

/// The longest log line a guest writes, in bytes; a longer one is cut, and says so.
pub const MAX_LINE_BYTES: usize = 4 << 10;

/// Bytes one guest call may write to stdout or stderr when they are the agent's own (`wasm_stdout
/// agent`, the default): room for a large chunk printed as text, bounded all the same.
pub const STDIO_BYTES_PER_CALL: usize = 16 << 20;

/// Where the lines of a guest instance end up.
pub trait Lines: Send + Sync {
    /// Hands one line on. Dropped without a word when no one waits for it any more (the call
    /// was abandoned and its instance is being discarded).
    fn line(&self, level: Level, text: String);
}

/// What a guest call has spent of its text budgets, and what it wrote past them.
#[derive(Default)]
struct Spent {
    lines: AtomicU32,
    bytes: AtomicUsize,
    stdio: AtomicUsize,
    dropped: AtomicU64,
    dropped_stdio: AtomicU64,
}

/// What one call wrote past its budgets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Log lines (and stdout/stderr lines routed to the log) refused.
    pub lines: u64,
    /// Bytes the guest wrote to the agent's stdout or stderr past their budget.
    pub stdio_bytes: u64,
}

/// The log sink of one guest instance, and the text it may still write in the current call.
#[derive(Clone)]
pub struct LogSink {
    out: Arc<dyn Lines>,
    spent: Arc<Spent>,
}

impl LogSink {
    pub fn new(out: Arc<dyn Lines>) -> Self {
        Self { out, spent: Arc::default() }
    }

    /// Starts a call: the instance gets its full budgets again.
    pub fn begin_call(&self) {
        let spent = &self.spent;
        spent.lines.store(0, Ordering::Relaxed);
        spent.bytes.store(0, Ordering::Relaxed);
        spent.stdio.store(0, Ordering::Relaxed);
        spent.dropped.store(0, Ordering::Relaxed);
        spent.dropped_stdio.store(0, Ordering::Relaxed);
    }

    /// What the current call wrote past its budgets.
    pub fn dropped(&self) -> Dropped {
        Dropped {
            lines: self.spent.dropped.load(Ordering::Relaxed),
            stdio_bytes: self.spent.dropped_stdio.load(Ordering::Relaxed),
        }
    }

    /// Writes a line of the guest's (or about what the guest did) within the call's budgets,
    /// made one printable line ([`one_line`]); past a budget the line is counted and dropped.
    pub fn write(&self, level: Level, text: String) {
        let text = one_line(&text, MAX_LINE_BYTES);
        let spent = &self.spent;
        let line = spent
            .lines
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < LOG_LINES_PER_CALL).then_some(n + 1));
        let bytes = line.is_ok()
            && spent
                .bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    n.checked_add(text.len()).filter(|total| *total <= LOG_BYTES_PER_CALL)
                })
                .is_ok();
        if bytes {
            self.out.line(level, text);
        } else {
            spent.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes `len` bytes of the call's stdout/stderr budget: false (and counted) past it.
    pub fn take_stdio(&self, len: usize) -> bool {
        let took = self
            .spent
            .stdio
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                n.checked_add(len).filter(|total| *total <= STDIO_BYTES_PER_CALL)
            })
            .is_ok();
        if !took {
            self.spent.dropped_stdio.fetch_add(len as u64, Ordering::Relaxed);
        }
        took
    }

    /// Writes a line of the host's own outside the budget: one the host already rate-limits.
    pub fn write_always(&self, level: Level, text: String) {
        self.out.line(level, text);
    }
}

/// `text` as one printable line of at most `max` bytes (plus the mark of a cut): control
/// characters, line breaks and escape sequences included, are written as `\n`, `\u{1b}`..., so
/// no guest text can end a line of the agent's log and start one that passes for the agent's,
/// or drive the operator's terminal.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    let mut cut = None;
    for (at, c) in text.char_indices() {
        if out.len() >= max {
            cut = Some(at);
            break;
        }
        escape_into(&mut out, c);
    }
    if let Some(at) = cut {
        out.push_str(&format!(" [... {} more bytes cut]", text.len() - at));
    }
    out
}

/// Appends `c`, escaped if it is a control character (tab excepted) or a line or paragraph
/// separator.
pub fn escape_into(out: &mut String, c: char) {
    match c {
        '\t' => out.push(c),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => out.push_str(&c.escape_unicode().to_string()),
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Kept(Mutex<Vec<String>>);

    impl Lines for Kept {
        fn line(&self, _: Level, text: String) {
            self.0.lock().unwrap().push(text);
        }
    }

    #[test]
    fn guest_text_stays_one_printable_line() {
        let fake = "ok\n[2026/12/07 10:00:00] [error] [engine] \u{1b}[31mcaught signal\r";
        assert_eq!(
            one_line(fake, 1000),
            "ok\\n[2026/12/07 10:00:00] [error] [engine] \\u{1b}[31mcaught signal\\r",
            "a line break and an escape sequence are written out, not obeyed"
        );
        let long = "é".repeat(3000);
        let cut = one_line(&long, MAX_LINE_BYTES);
        assert!(cut.starts_with("éé") && cut.ends_with("more bytes cut]"), "{}", &cut[cut.len() - 40..]);
        assert!(cut.len() < MAX_LINE_BYTES + 40, "cut near the limit, on a character boundary");
    }

    #[test]
    fn a_call_has_a_budget_of_lines_and_of_bytes() {
        let kept = Arc::new(Kept::default());
        let sink = LogSink::new(kept.clone());
        for _ in 0..LOG_LINES_PER_CALL + 5 {
            sink.write(Level::Info, "x".into());
        }
        assert_eq!(kept.0.lock().unwrap().len(), LOG_LINES_PER_CALL as usize);
        assert_eq!(sink.dropped().lines, 5);
        sink.begin_call();
        kept.0.lock().unwrap().clear();
        let big = "y".repeat(1 << 20);
        for _ in 0..100 {
            sink.write(Level::Info, big.clone());
        }
        let written: usize = kept.0.lock().unwrap().iter().map(String::len).sum();
        assert!(written <= LOG_BYTES_PER_CALL, "{written} bytes written in one call");
        assert!(sink.dropped().lines > 30, "the rest were dropped: {:?}", sink.dropped());
        assert!(sink.take_stdio(STDIO_BYTES_PER_CALL) && !sink.take_stdio(1), "stdout has its own budget");
        assert_eq!(sink.dropped().stdio_bytes, 1);
    }
}
