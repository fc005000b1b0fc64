//! The plugin as the agent sees it, the top of the crate: the symbols the agent calls
//! ([`ffi`], the only `extern "C"` code) and the live instances they act on ([`registry`]).

pub mod ffi;
pub mod registry;
