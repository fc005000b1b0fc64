//! The lifecycle of an `[OUTPUT] Name wasm` section: the output instance and its flush path
//! ([`output`]), the state its threads share ([`shared`]), the guest versions it has loaded
//! ([`version`]), the watcher that swaps a new version in ([`watch`]), the warm spares
//! ([`spares`]), the worker threads that run guest instances ([`worker`]), and the hand-off
//! between an agent thread and a worker ([`handoff`]).

pub mod delivery;
pub mod handoff;
pub mod output;
pub mod plan;
pub mod shared;
pub mod spares;
pub mod version;
pub mod watch;
pub mod worker;
