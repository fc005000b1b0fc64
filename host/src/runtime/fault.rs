//! A guest call that did not return: a trap, or the host failing to make the call.
//!
//! Kept apart from what a guest *reports* (`flush-error`, an init error string): a fault means
//! the guest instance is poisoned and must be discarded.

use std::fmt;

use wasmtime::component::ResourceTableError;
use wasmtime::{Trap, WasmBacktrace};

/// Why a guest call did not return normally.
#[derive(Debug)]
pub struct Fault {
    /// The trap, if the guest trapped (rather than the host failing around the call).
    pub trap: Option<Trap>,
    /// The call ran past its deadline and was stopped.
    pub deadline: bool,
    /// The guest grew its memory past its cap.
    pub memory: bool,
    /// One-line description, without the backtrace.
    pub message: String,
    /// The guest's wasm backtrace, one frame a line, when wasmtime captured one.
    pub backtrace: Option<String>,
    /// Which export faulted, when one host call made several (planning a version).
    pub during: Option<&'static str>,
}

/// What kind of fault it was, as the host's metrics count them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The guest trapped (panic, `unreachable`, out-of-bounds access, stack overflow...).
    Trap,
    /// The call ran past `wasm_flush_timeout` / `wasm_init_timeout`.
    Deadline,
    /// The guest grew its memory past `wasm_memory_limit`, or held more host-side handles than
    /// its cap.
    Memory,
    /// The host failed around the call (instantiation, a worker thread gone).
    Host,
}

impl FaultKind {
    pub const ALL: [FaultKind; 4] = [FaultKind::Trap, FaultKind::Deadline, FaultKind::Memory, FaultKind::Host];

    /// The `kind` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Trap => "trap",
            FaultKind::Deadline => "deadline",
            FaultKind::Memory => "memory",
            FaultKind::Host => "host",
        }
    }
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        if self.deadline {
            FaultKind::Deadline
        } else if self.memory {
            FaultKind::Memory
        } else if self.trap.is_some() {
            FaultKind::Trap
        } else {
            FaultKind::Host
        }
    }

    /// Classifies the error of a failed guest call.
    pub fn from_call(err: wasmtime::Error) -> Self {
        let trap = err.downcast_ref::<Trap>().copied();
        let memory = err.downcast_ref::<crate::sandbox::memory::MemoryLimitExceeded>().is_some();
        let handles = err.chain().any(|cause| cause.downcast_ref::<ResourceTableError>().is_some());
        let backtrace = err
            .downcast_ref::<WasmBacktrace>()
            .map(|bt| bt.to_string().trim_end().to_owned())
            .filter(|bt| !bt.is_empty());
        let exit = err.downcast_ref::<wasmtime_wasi::I32Exit>().map(|exit| exit.0);
        let message = match (trap, exit) {
            _ if handles => format!(
                "guest exceeded its handle limit: it holds {} host resources at once (files, sockets, streams, \
                 pollables, HTTP requests and header fields it has not dropped)",
                crate::sandbox::memory::HostSideCaps::HANDLES
            ),
            (Some(trap), _) => format!("guest trapped: {trap}"),
            // `exit` in the guest (Go's os.Exit and log.Fatal, C's exit): what it printed before
            // is in the log already.
            (None, Some(status)) => {
                format!("guest exited with status {status} (an exit call, such as os.Exit or log.Fatal)")
            }
            // A host-raised trap (the memory cap): its own message, the backtrace kept apart.
            (None, None) => format!("guest trapped: {}", anyhow::Error::from(err).root_cause()),
        };
        Self { trap, deadline: false, memory: memory || handles, message, backtrace, during: None }
    }

    /// The same fault, said to have happened in the export `call`.
    pub fn during(mut self, call: &'static str) -> Self {
        self.during = Some(call);
        self
    }

    /// A call stopped at its deadline (`key` is the setting that sets it).
    pub fn deadline(call: &str, limit: std::time::Duration, key: &str) -> Self {
        Self {
            trap: None,
            deadline: true,
            memory: false,
            message: format!("guest exceeded its {call} deadline of {} ms ({key}) and was stopped", limit.as_millis()),
            backtrace: None,
            during: None,
        }
    }

    /// A fault of the host's own making (the worker thread died, instantiation failed...).
    pub fn host(message: impl Into<String>) -> Self {
        Self { trap: None, deadline: false, memory: false, message: message.into(), backtrace: None, during: None }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(backtrace) = &self.backtrace {
            write!(f, "\n{backtrace}")?;
        }
        Ok(())
    }
}
