//! The agent boundary: everything that touches Fluent Bit's side of the process. The symbols
//! the agent calls ([`ffi`], the only `extern "C"` code), the ABI's layouts ([`abi`]), the
//! agent's handle on one output instance ([`handle`]) and the functions of the agent found by
//! name ([`symbols`], [`cmetrics`]), the agent's log ([`logger`]), and the live instances
//! ([`registry`]).

pub mod abi;
pub mod cmetrics;
pub mod ffi;
pub mod handle;
pub mod logger;
pub mod profile;
pub mod registry;
pub mod symbols;
