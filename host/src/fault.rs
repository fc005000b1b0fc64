//! A guest call that did not return: a trap, or the host failing to make the call.
//!
//! Kept apart from what a guest *reports* (`flush-error`, an init error string): a fault means
//! the guest instance is poisoned and must be discarded.

use std::fmt;

use wasmtime::{Trap, WasmBacktrace};

/// Why a guest call did not return normally.
#[derive(Debug)]
pub struct Fault {
    /// The trap, if the guest trapped (rather than the host failing around the call).
    pub trap: Option<Trap>,
    /// The call ran past its deadline and was stopped.
    pub deadline: bool,
    /// One-line description, without the backtrace.
    pub message: String,
    /// The guest's wasm backtrace, one frame a line, when wasmtime captured one.
    pub backtrace: Option<String>,
}

impl Fault {
    /// Classifies the error of a failed guest call.
    pub fn from_call(err: wasmtime::Error) -> Self {
        let trap = err.downcast_ref::<Trap>().copied();
        let backtrace = err
            .downcast_ref::<WasmBacktrace>()
            .map(|bt| bt.to_string().trim_end().to_owned())
            .filter(|bt| !bt.is_empty());
        let message = match trap {
            Some(trap) => format!("guest trapped: {trap}"),
            // A host-raised trap (the memory cap): its own message, the backtrace kept apart.
            None => format!("guest trapped: {}", anyhow::Error::from(err).root_cause()),
        };
        Self { trap, deadline: false, message, backtrace }
    }

    /// A call stopped at its deadline (`key` is the setting that sets it).
    pub fn deadline(call: &str, limit: std::time::Duration, key: &str) -> Self {
        Self {
            trap: None,
            deadline: true,
            message: format!("guest exceeded its {call} deadline of {} ms ({key}) and was stopped", limit.as_millis()),
            backtrace: None,
        }
    }

    /// A fault of the host's own making (the worker thread died, instantiation failed...).
    pub fn host(message: impl Into<String>) -> Self {
        Self { trap: None, deadline: false, message: message.into(), backtrace: None }
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
