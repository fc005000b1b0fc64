//! `wasm_stdout`, `wasm_stderr`: where a guest's stdout and stderr go. `agent` (the default)
//! is the agent's own stdout / stderr, `log` makes each text line a line of the agent's log
//! (stdout at info, stderr at warn, within the guest's log budget), `off` discards them.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{Result, bail};
use tokio::io::AsyncWrite;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::log::{Level, LogSink};

/// Lines longer than this are cut into several log lines.
const MAX_LINE: usize = 16 * 1024;

/// Where a guest's stdout or stderr goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stdio {
    /// The agent's own stdout / stderr.
    #[default]
    Agent,
    /// Lines to the agent's log.
    Log,
    /// Nowhere.
    Off,
}

impl Stdio {
    /// The value of `key` (`wasm_stdout` or `wasm_stderr`).
    pub fn parse(key: &str, value: Option<String>) -> Result<Self> {
        match value.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(Stdio::Agent),
            Some(v) if v == "agent" => Ok(Stdio::Agent),
            Some(v) if v == "log" => Ok(Stdio::Log),
            Some(v) if v == "off" => Ok(Stdio::Off),
            Some(v) => bail!("invalid value {v:?} for key '{key}' (agent, log, off)"),
        }
    }
}

/// Connects the guest's stdout and stderr as configured; `log` streams write to `log`.
pub fn apply(builder: &mut WasiCtxBuilder, stdout: Stdio, stderr: Stdio, log: &LogSink) {
    match stdout {
        Stdio::Agent => drop(builder.inherit_stdout()),
        Stdio::Log => drop(builder.stdout(LogStream { level: Level::Info, prefix: "stdout: ", log: log.clone() })),
        Stdio::Off => {}
    }
    match stderr {
        Stdio::Agent => drop(builder.inherit_stderr()),
        Stdio::Log => drop(builder.stderr(LogStream { level: Level::Warn, prefix: "stderr: ", log: log.clone() })),
        Stdio::Off => {}
    }
}

/// `wasm_stdout log` / `wasm_stderr log`: text lines become log lines at `level`.
#[derive(Clone)]
struct LogStream {
    level: Level,
    prefix: &'static str,
    log: LogSink,
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
        let text = format!("{}{}", self.stream.prefix, String::from_utf8_lossy(line));
        self.stream.log.write(self.stream.level, text);
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
