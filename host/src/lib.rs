//! `out_wasm.so`: a Fluent Bit output plugin that runs output plugins written as WebAssembly
//! components, sandboxed.
//!
//! The agent loads this library through its external-plugin ("Go proxy") ABI; every symbol it
//! calls is in [`plugin::ffi`]. Each `[OUTPUT] Name wasm` section becomes a
//! [`lifecycle::output::OutputInstance`] that runs the component named by `wasm_path` on
//! plugin-owned worker threads.
//!
//! The crate is laid out by concern, and its modules depend on each other without cycles
//! (`host/tests/layout.rs` holds it and prints the layers): [`plugin`] (the symbols the agent
//! calls) on top of [`lifecycle`] (an output over time), on top of [`config`], [`telemetry`]
//! and [`runtime`] (wasmtime), on top of [`sandbox`] (what a guest may reach), on top of the
//! leaves: [`agent`] (the agent as a dependency: its ABI, handle, log and functions), [`chunk`],
//! [`log`] (levels and the log sink) and [`bindings`] (the WIT). Only [`inspect`] is public, for
//! `out-wasm check`; everything else is the plugin's own.
//!
//! # Invariants
//!
//! * **Context ownership.** `FLBPluginInit` boxes an `OutputInstance` and stores the raw
//!   pointer in the agent's `remote_context`; the agent owns that pointer until it hands it to
//!   `FLBPluginExitCtx`, which takes the box back and drops it. The [`plugin::registry`] tracks
//!   live pointers so a stray or repeated exit is refused instead of freeing twice.
//! * **Threads.** Init, exit and unregister run on the agent's main thread. Flushes run on any
//!   agent thread (its event loop, or its output workers), concurrently when `workers` > 1, on
//!   coroutine stacks of 64 KiB with no guard page: the flush path does no deep recursion and
//!   no large stack frames, and hands the guest call to a worker thread with an 8 MiB stack.
//!   The agent's log is only written on the agent's threads: lines from the plugin's own threads
//!   (the watcher, the warm-spare thread) are queued and written by the next call the agent makes.
//!   Property lookups also happen on the watcher thread during a hot swap: they only read the
//!   instance's property list, which the agent never changes after init and frees only after the
//!   exit call, which joins the watcher first.
//! * **Lifetimes.** The chunk and tag are borrowed for one flush call; the agent thread stays
//!   blocked until the worker has answered, so the worker reads the chunk in place without a
//!   copy. The API table and instance handle live until the instance's exit call.
//! * **Unload.** The library is linked with `-z nodelete`: the agent's dlclose() (on shutdown
//!   and on every hot reload) leaves it mapped, and a later dlopen() runs Register again on the
//!   same globals, so no state may be one-shot. Every thread the plugin starts (guest workers,
//!   the watcher, the warm-spare thread, the per-instance I/O runtime, the epoch ticker with
//!   the last instance) is
//!   joined in the instance's exit call, so after the last exit no plugin code runs, with two
//!   exceptions that no code can interrupt: a thread of the I/O runtime's blocking pool that is
//!   still inside a system call `lifecycle::output::RUNTIME_SHUTDOWN` after exit began (a name lookup
//!   waiting on an unresponsive resolver, a file call in a granted directory on a hung mount)
//!   is left to end when that call returns (at most `lifecycle::output::BLOCKING_THREADS` per instance);
//!   it then only frees what it owns, and `-z nodelete` keeps its code mapped. And a guest
//!   worker blocked writing to the agent's stdout or stderr (`wasm_stdout agent`, a pipe no
//!   one reads) holds its exit until the write completes; `wasm_stdout log` or `off` avoids
//!   it. The wasm engine is shared and owns no thread.
//! * **Signals and panics.** Wasmtime's signal-based traps are off (the agent re-installs its
//!   own SIGSEGV/SIGFPE handlers on every SIGHUP); every export runs under `catch_unwind`, and
//!   the library never exits or aborts the process.
//! * **Memory.** The plugin's own large blocks (1 MiB and more: chunk buffers, renderings) are
//!   mapped and unmapped directly ([`allocator`]), so freeing one returns its pages and never
//!   moves glibc's mmap threshold, which would leave tens of MiB with every agent thread that
//!   once handled a large chunk. The agent's allocations are untouched.

mod agent;
mod allocator;
mod bindings;
mod chunk;
mod config;
mod lifecycle;
mod log;
mod plugin;
mod runtime;
mod sandbox;
mod telemetry;

pub mod inspect;

/// The budgets of a guest's text, for the tests that hold a hostile guest to them.
pub use log::{LOG_BYTES_PER_CALL, LOG_LINES_PER_CALL, MAX_LINE_BYTES, STDIO_BYTES_PER_CALL};

#[global_allocator]
static ALLOCATOR: allocator::PluginAllocator = allocator::PluginAllocator;
