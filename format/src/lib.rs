//! The agent's event format, shared by both sides of the sandbox: a borrowing msgpack reader,
//! the records of a logs chunk and their JSON rendering exactly as the agent does it, the
//! cmetrics and ctraces contexts of metrics and traces chunks, and every kind rendered as an
//! OTLP/JSON export request.
//!
//! The host uses it to render chunks for guests (`json-lines`, `otlp-json`); the Rust guest SDK
//! re-exports it for guests that decode chunks themselves. It depends on `rmp` only, and on
//! nothing of either side's WebAssembly bindings.

pub mod cmetrics;
mod config;
pub mod ctraces;
mod date;
mod document;
mod error;
mod event;
mod event_type;
mod json;
mod json_lines;
mod msgpack;
pub mod otlp;
#[cfg(test)]
mod test_chunks;
mod value;

pub use crate::config::{AGENT_KEY_FAMILIES, AGENT_KEYS, Config, ConfigKey, is_agent_key};
pub use crate::date::DateFormat;
pub use crate::error::DecodeError;
pub use crate::event::{Event, Events, Timestamp};
pub use crate::event_type::{EventType, event_type};
pub use crate::json::line::write_json_line;
pub use crate::json_lines::JsonLines;
pub use crate::value::Value;
