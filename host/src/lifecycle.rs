//! The lifecycle of an `[OUTPUT] Name wasm` section: the output instance and its flush path
//! ([`output`]), the state its threads share ([`state`]), the guest versions it has loaded
//! ([`version`]), how a version's keys and event format are settled ([`plan`]), the watcher
//! that swaps a new version in ([`watch`]), the warm spares ([`spares`]), the worker threads
//! that run guest instances ([`worker`]), the hand-off between an agent thread and a worker
//! ([`handoff`]), the delivery ids of chunks ([`delivery`]), and canary rollouts, where a new
//! version serves beside the current one until it is judged ([`canary`]), and the flight
//! recorder of failed flushes ([`recorder`]).
//!
//! # Glossary
//!
//! One noun per concept, in code, logs and docs:
//!
//! - **output**: one `[OUTPUT] Name wasm` section of the agent's configuration, and what the
//!   plugin makes of it ([`output::OutputInstance`], the agent's `remote_context`); named by
//!   the agent (`alias`, or `wasm.N`), which the WIT's `init-context.instance` carries.
//! - **guest**: the component an output's `wasm_path` names, written by a plugin author.
//! - **guest version**: one content of the guest, by digest ([`version::GuestVersion`]); a
//!   **swap** makes a new one the output's current version.
//! - **guest image**: a version compiled and linked, shared by every output of the process
//!   with that digest (`runtime::image::GuestImage`).
//! - **guest instance**: one instantiation of a version, with its own memory
//!   (`runtime::instance::GuestInstance`); `init` once, then flushes, `idle` calls, `exit`.
//! - **worker**: the plugin thread that owns one guest instance and makes its calls
//!   ([`worker::Worker`]).
//! - **spare**: a worker whose instance was started and initialised ahead of need
//!   ([`spares`]).
//! - **answer**: what a guest's flush returned (ok, retry, error); a **fault** (a trap, a
//!   deadline, the memory cap) is not an answer, and discards the instance.
//! - **delivery**: which chunk a flush is and which attempt at it ([`delivery`]).
//!
//! # The map
//!
//! A guest's life, from the section to the wasm call. Each arrow is ownership (`Arc` where
//! several hold it); the thread that runs each piece is on the right.
//!
//! ```text
//! agent's remote_context
//!  └─ OutputInstance (output.rs) ........ flush path: any agent thread; init/exit: main thread
//!      ├─ Watcher (watch.rs) ............ its own thread: sees a new file, prepares, swaps
//!      ├─ Spares (spares.rs) ............ its own thread: starts instances ahead of need
//!      └─ Arc<OutputState> (state.rs) ... what those three threads share
//!          └─ current: Arc<GuestVersion> (version.rs), one per guest file content
//!              ├─ Arc<GuestImage> (runtime/image.rs): the component compiled and linked,
//!              │    its `Compiled` shared by every output of the process with that digest
//!              └─ idle Workers + one spare (worker.rs) ...... a plugin thread each (8 MiB)
//!                  └─ GuestInstance (runtime/instance.rs): store + instance, driven only
//!                       by its worker's thread, one typed `Call` at a time
//! ```
//!
//! A flush takes a worker out of the current version's pool (or the spare, or starts one),
//! hands it the chunk through [`handoff`] (the agent thread waits, relaying the guest's log
//! lines) and gives it back to the version it came from: a swap replaces `current`, and the
//! old version's workers are exited as their flushes finish.

pub mod canary;
pub mod delivery;
pub mod handoff;
pub mod output;
pub mod plan;
pub mod recorder;
pub mod spares;
pub mod state;
pub mod version;
pub mod watch;
pub mod worker;
