//! A guest's stdout or stderr routed into the agent's log, one log line per text line.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::log::Level;
use crate::worker::Event;

/// Lines longer than this are cut into several log lines.
const MAX_LINE: usize = 16 * 1024;

/// The log lines one guest call may still write, shared by the logging interface and the
/// streams routed to the log; the rest are counted and reported once per call.
#[derive(Clone, Default)]
pub struct LogBudget {
    left: Arc<AtomicU32>,
    dropped: Arc<AtomicU64>,
}

impl LogBudget {
    pub fn reset(&self, lines: u32) {
        self.left.store(lines, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
    }

    /// Takes one line from the budget; false (and counted) when it is spent.
    pub fn take(&self) -> bool {
        let took = self.left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok();
        if !took {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        took
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// `wasm_stdout log` / `wasm_stderr log`: text lines become log lines at `level`.
#[derive(Clone)]
pub struct LogStream {
    level: Level,
    prefix: &'static str,
    events: Sender<Event>,
    budget: LogBudget,
}

impl LogStream {
    pub fn new(level: Level, prefix: &'static str, events: Sender<Event>, budget: LogBudget) -> Self {
        Self { level, prefix, events, budget }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter { stream: self.clone(), partial: Vec::new() })
    }
}

struct LineWriter {
    stream: LogStream,
    partial: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        if self.stream.budget.take() {
            let text = format!("{}{}", self.stream.prefix, String::from_utf8_lossy(line));
            // Gone only when the call was abandoned (the instance is being discarded).
            let _ = self.stream.events.send(Event::Log(self.stream.level, text));
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.emit(&line[..line.len() - 1]);
        }
        while self.partial.len() >= MAX_LINE {
            let line: Vec<u8> = self.partial.drain(..MAX_LINE).collect();
            self.emit(&line);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.emit(&line);
        }
        Poll::Ready(Ok(()))
    }
}
