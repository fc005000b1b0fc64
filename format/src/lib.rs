//! The agent's event format, shared by both sides of the sandbox: a borrowing msgpack reader,
//! the records of a logs chunk, and their JSON rendering exactly as the agent does it.
//!
//! The host uses it to render chunks for guests (`json-lines`); the Rust guest SDK re-exports it
//! for guests that decode chunks themselves. It depends on `rmp` only, and on nothing of either
//! side's WebAssembly bindings.

mod config;
mod event;
mod json_lines;
mod msgpack;
mod value;

pub use crate::config::{Config, ConfigKey};
pub use crate::event::{DecodeError, Event, Events, Timestamp};
pub use crate::json_lines::JsonLines;
pub use crate::value::{DateFormat, Value, write_json_line};
