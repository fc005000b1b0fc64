//! `wasm_stdout`, `wasm_stderr`: where a guest's stdout and stderr go. `agent` (the default)
//! is the agent's own stdout / stderr, within a byte budget per call
//! ([`crate::log::STDIO_BYTES_PER_CALL`]) and with control characters written out (a guest
//! cannot drive the terminal); on stderr, where the agent writes its log, each line carries the
//! instance's name, so none passes for the agent's. `log` makes each text line a line of the
//! agent's log (stdout at info, stderr at warn, within the guest's log budget), `off` discards
//! them.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

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
    /// A value of `wasm_stdout` or `wasm_stderr`.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "agent" => Some(Stdio::Agent),
            "log" => Some(Stdio::Log),
            "off" => Some(Stdio::Off),
            _ => None,
        }
    }
}

/// Connects the guest's stdout and stderr as configured; `log` streams write to `log`, and
/// `agent` streams spend its budget. `instance` is the output's name, which guest lines on the
/// agent's stderr carry.
pub fn apply(builder: &mut WasiCtxBuilder, stdout: Stdio, stderr: Stdio, log: &LogSink, instance: &str) {
    match stdout {
        Stdio::Agent => drop(builder.stdout(AgentStream { fd: Fd::Stdout, prefix: None, log: log.clone() })),
        Stdio::Log => drop(builder.stdout(LogStream { level: Level::Info, prefix: "stdout: ", log: log.clone() })),
        Stdio::Off => {}
    }
    let prefix: Arc<str> = format!("[out_wasm:{instance}] ").into();
    match stderr {
        Stdio::Agent => drop(builder.stderr(AgentStream { fd: Fd::Stderr, prefix: Some(prefix), log: log.clone() })),
        Stdio::Log => drop(builder.stderr(LogStream { level: Level::Warn, prefix: "stderr: ", log: log.clone() })),
        Stdio::Off => {}
    }
}

#[derive(Clone, Copy)]
enum Fd {
    Stdout,
    Stderr,
}

/// `wasm_stdout agent` / `wasm_stderr agent`: the agent's own stream, written as the guest
/// writes it but within the call's budget, control characters written out, and on stderr each
/// line starting with the instance's name.
#[derive(Clone)]
struct AgentStream {
    fd: Fd,
    prefix: Option<Arc<str>>,
    log: LogSink,
}

impl IsTerminal for AgentStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for AgentStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(AgentWriter { stream: self.clone(), at_line_start: true })
    }
}

struct AgentWriter {
    stream: AgentStream,
    /// The next byte starts a line (and so takes the prefix).
    at_line_start: bool,
}

impl AgentWriter {
    /// `buf` made printable: line breaks and tabs kept, other control bytes written out, the
    /// prefix before each line. Bytes that are not UTF-8 pass as they are (a guest may print
    /// another encoding), except the control bytes.
    fn render(&mut self, buf: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(buf.len() + 16);
        for &byte in buf {
            if self.at_line_start
                && let Some(prefix) = &self.stream.prefix
            {
                out.extend_from_slice(prefix.as_bytes());
            }
            self.at_line_start = byte == b'\n';
            if escaped(byte) {
                out.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
            } else {
                out.push(byte);
            }
        }
        out
    }
}

/// Whether `byte` is written out as `\xNN` on the agent's streams: a control byte but a line
/// break or a tab.
fn escaped(byte: u8) -> bool {
    matches!(byte, 0..=0x08 | 0x0b..=0x1f | 0x7f)
}

impl AsyncWrite for AgentWriter {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // Past the budget the bytes are taken and dropped (counted, and said after the call):
        // failing the write would make some guests retry it forever.
        if !self.stream.log.take_stdio(buf.len()) {
            return Poll::Ready(Ok(buf.len()));
        }
        // Most writes are plain text for stdout: those are written as they are.
        let plain = self.stream.prefix.is_none() && !buf.iter().any(|&byte| escaped(byte));
        let rendered;
        let out = if plain {
            buf
        } else {
            rendered = self.render(buf);
            &rendered
        };
        // The agent's own streams, written whole and at once as WASI's inherited ones are.
        let written = match self.stream.fd {
            Fd::Stdout => io::stdout().lock().write_all(out),
            Fd::Stderr => io::stderr().lock().write_all(out),
        };
        Poll::Ready(written.map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = match self.stream.fd {
            Fd::Stdout => io::stdout().flush(),
            Fd::Stderr => io::stderr().flush(),
        };
        Poll::Ready(flushed)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
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
