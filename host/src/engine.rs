//! The one wasmtime engine every instance shares, and how it is configured.

use anyhow::Result;
use once_cell::sync::OnceCell;
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine};

/// Wasm stack a guest call may use. Worker threads get `WORKER_STACK` of native stack, which
/// must exceed this plus the host frames below and above the guest.
pub const MAX_WASM_STACK: usize = 1 << 20;
/// Native stack of a plugin worker thread.
pub const WORKER_STACK: usize = 8 << 20;

static ENGINE: OnceCell<Engine> = OnceCell::new();

/// The shared engine, created on first use. It owns no thread and no signal handler, so it can
/// outlive every instance (and survive the agent's hot reloads) at no cost.
pub fn engine() -> Result<&'static Engine> {
    let engine = ENGINE.get_or_try_init(|| Engine::new(&config()).context("failed to create the wasm engine"))?;
    Ok(engine)
}

fn config() -> Config {
    let mut config = Config::new();
    // The agent owns SIGSEGV/SIGFPE and re-installs its handlers with signal() on every
    // SIGHUP, so traps must not depend on signals: bounds and divisors are checked in code.
    config.signals_based_traps(false);
    // SAFETY: these are documented Cranelift settings; the two Spectre mitigations rely on a
    // fault at address 0 and must be off when signals-based traps are (Config docs).
    unsafe {
        config.cranelift_flag_set("enable_heap_access_spectre_mitigation", "false");
        config.cranelift_flag_set("enable_table_access_spectre_mitigation", "false");
    }
    config.max_wasm_stack(MAX_WASM_STACK);
    config
}
