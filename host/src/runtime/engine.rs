//! The one wasmtime engine every instance shares, and how it is configured.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use once_cell::sync::OnceCell;
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, ProfilingStrategy};

/// Wasm stack a guest call may use. Worker threads get `WORKER_STACK` of native stack, which
/// must exceed this plus the host frames below and above the guest.
pub const MAX_WASM_STACK: usize = 1 << 20;
/// Native stack of a plugin worker thread.
pub const WORKER_STACK: usize = 8 << 20;

static ENGINE: OnceCell<Engine> = OnceCell::new();
static ENGINE_WITHOUT_DEADLINES: OnceCell<Engine> = OnceCell::new();

/// The shared engine, created on first use. It owns no thread and no signal handler, so it can
/// outlive every instance (and survive the agent's hot reloads) at no cost; the epoch ticker
/// runs only while instances live.
pub fn engine() -> Result<&'static Engine> {
    let engine = ENGINE.get_or_try_init(|| new_engine(true))?;
    Ok(engine)
}

/// The engine for instances with `wasm_deadlines off`: compiled code without the epoch checks
/// that let a deadline stop a guest. Faster, and a stuck guest then blocks its flush forever.
pub fn engine_for(deadlines: bool) -> Result<&'static Engine> {
    if deadlines {
        return engine();
    }
    let engine = ENGINE_WITHOUT_DEADLINES.get_or_try_init(|| new_engine(false))?;
    Ok(engine)
}

fn new_engine(deadlines: bool) -> Result<Engine> {
    let mut config = config(deadlines);
    config.profiler(profiler(std::env::var(PROFILE_VAR).ok().as_deref())?);
    Ok(Engine::new(&config).context("failed to create the wasm engine")?)
}

/// The opt-in profiling switch, read once when the engine is built.
pub const PROFILE_VAR: &str = "OUT_WASM_PROFILE";

/// `perfmap` writes `/tmp/perf-<pid>.map`, so `perf report` names guest functions;
/// `jitdump` writes a jitdump file for `perf inject --jit` (only when wasmtime is built with
/// its `profiling` feature, which this crate leaves off). Unset or empty: no profiler.
fn profiler(value: Option<&str>) -> Result<ProfilingStrategy> {
    match value.unwrap_or("") {
        "" | "none" => Ok(ProfilingStrategy::None),
        "perfmap" => Ok(ProfilingStrategy::PerfMap),
        "jitdump" => Ok(ProfilingStrategy::JitDump),
        other => {
            anyhow::bail!("failed to create the wasm engine: {PROFILE_VAR}={other:?} is not perfmap, jitdump or none")
        }
    }
}

fn config(deadlines: bool) -> Config {
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
    // Deadlines: running wasm yields to the host at every epoch tick, where the call's
    // timeout can end it.
    config.epoch_interruption(deadlines);
    config
}

/// How often the epoch advances: the granularity of guest deadlines.
pub const TICK: Duration = Duration::from_millis(10);

struct Ticker {
    users: usize,
    thread: Option<(Sender<()>, JoinHandle<()>)>,
}

static TICKER: Mutex<Ticker> = Mutex::new(Ticker { users: 0, thread: None });

/// Keeps the epoch ticking while held: one thread for the whole process, started by the first
/// live instance and stopped (joined) when the last one exits.
pub struct TickerGuard(());

impl TickerGuard {
    pub fn acquire() -> Result<Self> {
        let engine = engine()?.clone();
        let mut ticker = TICKER.lock().unwrap_or_else(PoisonError::into_inner);
        if ticker.thread.is_none() {
            let (stop, stopped) = mpsc::channel::<()>();
            let thread = std::thread::Builder::new()
                .name("out-wasm-epoch".into())
                .spawn(move || {
                    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                        engine.increment_epoch();
                    }
                })
                .map_err(|err| anyhow::anyhow!("failed to start the epoch thread: {err}"))?;
            ticker.thread = Some((stop, thread));
        }
        ticker.users += 1;
        Ok(Self(()))
    }
}

impl Drop for TickerGuard {
    fn drop(&mut self) {
        let mut ticker = TICKER.lock().unwrap_or_else(PoisonError::into_inner);
        ticker.users -= 1;
        if ticker.users == 0
            && let Some((stop, thread)) = ticker.thread.take()
        {
            drop(stop);
            let _ = thread.join();
        }
    }
}
