//! A plugin-owned thread that owns one guest instance and runs calls on it one at a time, and
//! between them the guest's `idle`, when the guest asked for it.
//!
//! Guest code never runs on the agent's threads: a flush arrives on an agent coroutine with a
//! 64 KiB stack and no guard page, so the agent thread hands the call to a worker (which has
//! `WORKER_STACK` of stack) and blocks until the worker answers, relaying the guest's log lines
//! to the agent's log meanwhile, on the agent's thread, in order. A call is typed: the caller
//! says what to do with the instance ([`Call`]) and gets what that returns, or the fault.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::agent::logger::Logger;
use crate::config::Limits;
use crate::log::{Dropped, LOG_BYTES_PER_CALL, LOG_LINES_PER_CALL, Level, Lines, LogSink, STDIO_BYTES_PER_CALL};
use crate::runtime::engine::WORKER_STACK;
use crate::runtime::fault::Fault;
use crate::runtime::image::GuestImage;
use crate::runtime::instance::{GuestInstance, Sandbox};
use crate::sandbox::Capabilities;
use crate::sandbox::config::ConfigLookup;
use crate::sandbox::connections::Connections;
use crate::sandbox::http::Exchange;
use crate::sandbox::metrics::GuestMetrics;
use crate::telemetry::host::{HostMetrics, Meters};

/// A chunk borrowed from the agent for the duration of one flush call.
pub struct ChunkRef {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the bytes are only read, and only while the agent thread that lent them is blocked in
// `Worker::call` waiting for the answer to the call that carries them (see `ChunkRef::new`).
unsafe impl Send for ChunkRef {}

impl ChunkRef {
    /// # Safety
    /// `chunk` must stay valid until `Worker::call` with the call carrying this value returns.
    /// `call` only returns after the worker answered or its thread ended, and the worker never
    /// touches a call's chunk after answering it.
    pub unsafe fn new(chunk: &[u8]) -> Self {
        Self { ptr: chunk.as_ptr(), len: chunk.len() }
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `new`'s contract keeps the lender blocked while the worker reads.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Which of the instance's limits a call runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Setting up: `config-schema`, the preferences, `init` (`wasm_init_timeout`).
    Setup,
    /// Serving: `flush`, `exit` (`wasm_flush_timeout`).
    Serve,
    /// Background work: `idle` (`wasm_idle_budget` and [`IDLE_MARGIN`]).
    Idle,
}

/// The future of a call on an instance: the guest's answer, or the fault that ended it.
pub type GuestFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Fault>> + 'a>>;

/// What a call does with the instance, given when it will be stopped (if deadlines are on).
type Body<T> = Box<dyn for<'a> FnOnce(&'a mut GuestInstance, Option<Instant>) -> GuestFuture<'a, T> + Send>;

/// One call into the guest: its name (for a fault), its limit, and what it does.
pub struct Call<T> {
    name: &'static str,
    phase: Phase,
    /// After this call returns, the instance is ready for `idle` calls (it was initialised).
    arms_idle: bool,
    body: Body<T>,
}

impl<T: Send + 'static> Call<T> {
    pub fn new(
        name: &'static str,
        phase: Phase,
        body: impl for<'a> FnOnce(&'a mut GuestInstance, Option<Instant>) -> GuestFuture<'a, T> + Send + 'static,
    ) -> Self {
        Self { name, phase, arms_idle: false, body: Box::new(body) }
    }

    /// The call that initialises the instance: `idle` calls may follow it.
    pub fn initialising(mut self) -> Self {
        self.arms_idle = true;
        self
    }
}

/// A call with its answer sent back on a channel of its own: what the worker thread runs.
struct Job {
    name: &'static str,
    phase: Phase,
    arms_idle: bool,
    run: Body<()>,
}

/// Sent by the worker to the agent thread that waits on the current call.
enum Event {
    Log(Level, String),
    Done(Result<(), Fault>),
}

/// Where an instance's lines go: to the agent thread waiting on the current call, between that
/// call's answers, so they are written in order and on an agent thread; during an `idle` call,
/// which no agent thread waits on, to the deferred logger, written by the next call the agent
/// makes on the output.
struct WorkerLines {
    events: Sender<Event>,
    idle: AtomicBool,
    deferred: Logger,
}

impl Lines for WorkerLines {
    fn line(&self, level: Level, text: String) {
        if self.idle.load(Ordering::Acquire) {
            self.deferred.log(level, &text);
        } else {
            // The receiver is gone only when the waiting call was abandoned; nothing to do then.
            let _ = self.events.send(Event::Log(level, text));
        }
    }
}

/// Handle to a worker thread and its guest instance.
pub struct Worker {
    id: u64,
    reports: Arc<WorkerReports>,
    jobs: Sender<Job>,
    events: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

/// What the worker thread reports beside its answers.
struct WorkerReports {
    /// Set after a call left the guest's memory near its cap: the instance is recycled
    /// between flushes instead of trapping inside one.
    memory_near_cap: AtomicUsize,
    /// Cleared when the instance faulted outside a call (in `idle`): it takes no more calls.
    alive: AtomicBool,
    /// The instance's linear memory after its last call.
    memory: AtomicUsize,
    /// The HTTP requests of its last call (for the flight recorder).
    exchanges: Mutex<Vec<Exchange>>,
    host: Arc<HostMetrics>,
}

/// What a worker's guest instance is made of.
pub struct Recipe {
    pub image: Arc<GuestImage>,
    /// The output's name, which the guest's lines on the agent's stderr carry.
    pub output: String,
    pub limits: Limits,
    pub capabilities: Arc<Capabilities>,
    pub meters: Meters,
    pub config: ConfigLookup,
    pub connections: Arc<Connections>,
}

impl Worker {
    /// Starts a worker thread and instantiates the guest on it. Returns once the instance
    /// exists; guest logs are written through `logger` meanwhile.
    pub fn spawn(id: u64, recipe: Recipe, runtime: tokio::runtime::Handle, logger: &Logger) -> Result<Self> {
        let (jobs, job_rx) = mpsc::channel();
        let (event_tx, events) = mpsc::channel();
        let Meters { guest: metrics, host } = recipe.meters.clone();
        let reports = Arc::new(WorkerReports {
            memory_near_cap: AtomicUsize::new(0),
            alive: AtomicBool::new(true),
            memory: AtomicUsize::new(0),
            exchanges: Mutex::default(),
            host,
        });
        let lines =
            Arc::new(WorkerLines { events: event_tx, idle: AtomicBool::new(false), deferred: logger.deferred() });
        let max_level = logger.max_level();
        let thread = std::thread::Builder::new()
            .name(format!("out-wasm-{id}"))
            .stack_size(WORKER_STACK)
            .spawn({
                let reports = reports.clone();
                move || serve(id, &recipe, metrics, max_level, &runtime, &job_rx, &lines, &reports)
            })
            .context("failed to start a worker thread")?;
        let mut worker = Self { id, reports, jobs, events, thread: Some(thread) };
        match worker.wait(logger) {
            Ok(()) => Ok(worker),
            Err(fault) => {
                worker.join();
                Err(anyhow::anyhow!("{fault}")).context("failed to instantiate the guest")
            }
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// The guest's memory size in bytes if its last call left it above `RECYCLE_AT` of its
    /// cap; such an instance should not take another flush.
    pub fn memory_near_cap(&self) -> Option<usize> {
        Some(self.reports.memory_near_cap.load(Ordering::Acquire)).filter(|size| *size > 0)
    }

    /// The instance's linear memory, in bytes, after its last call.
    pub fn memory(&self) -> usize {
        self.reports.memory.load(Ordering::Acquire)
    }

    /// False once the instance faulted between calls (in `idle`): it must be discarded.
    pub fn is_alive(&self) -> bool {
        self.reports.alive.load(Ordering::Acquire)
    }

    /// The HTTP requests the instance's last call made.
    pub fn take_exchanges(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.reports.exchanges.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Makes one call and blocks until the guest answered or faulted.
    pub fn call<T: Send + 'static>(&mut self, call: Call<T>, logger: &Logger) -> Result<T, Fault> {
        self.call_recorded(call, logger, || {}, None)
    }

    /// As [`Worker::call`], running `meanwhile` on the calling thread while the guest works, and
    /// keeping a copy of the guest's lines in `kept` (for the flight recorder).
    pub fn call_recorded<T: Send + 'static>(
        &mut self,
        call: Call<T>,
        logger: &Logger,
        meanwhile: impl FnOnce(),
        kept: Option<&mut Vec<(Level, String)>>,
    ) -> Result<T, Fault> {
        let (answer, answered) = mpsc::sync_channel(1);
        let body = call.body;
        let job = Job {
            name: call.name,
            phase: call.phase,
            arms_idle: call.arms_idle,
            run: Box::new(move |instance, deadline| {
                Box::pin(async move {
                    let value = body(instance, deadline).await?;
                    // The waiting side is gone only when it was abandoned.
                    let _ = answer.send(value);
                    Ok(())
                })
            }),
        };
        if self.jobs.send(job).is_err() {
            return Err(Fault::host("the worker thread is gone"));
        }
        meanwhile();
        self.wait_keeping(logger, kept)?;
        answered.try_recv().map_err(|_| Fault::host("the guest call returned no answer"))
    }

    fn wait(&mut self, logger: &Logger) -> Result<(), Fault> {
        self.wait_keeping(logger, None)
    }

    fn wait_keeping(&mut self, logger: &Logger, mut kept: Option<&mut Vec<(Level, String)>>) -> Result<(), Fault> {
        let outcome = loop {
            match crate::lifecycle::handoff::recv(&self.events) {
                Ok(Event::Log(level, message)) => {
                    logger.log(level, &message);
                    if let Some(kept) = kept.as_deref_mut() {
                        kept.push((level, message));
                    }
                }
                Ok(Event::Done(outcome)) => break outcome,
                Err(_) => break Err(Fault::host("the worker thread ended without answering")),
            }
        };
        // An instance that died in `idle` was counted then; the call it never took is no fault.
        if let Err(fault) = &outcome
            && self.is_alive()
        {
            self.reports.host.faulted(fault.kind());
        }
        outcome
    }

    /// Stops the thread (after its current call) and waits for it to end.
    pub fn join(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // Closing the job channel ends the worker's loop.
        let (closed, _) = mpsc::channel();
        self.jobs = closed;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Share of `wasm_memory_limit` above which an instance is recycled after its call. Wasm
/// memory never shrinks, so a guest that leaks (some toolchains' bindings leak each call's
/// arguments) would otherwise trap in the middle of a flush once it reaches the cap.
pub const RECYCLE_AT: f64 = 0.75;

/// Runs `future` under `limit` if deadlines are on; past it, the fault names the call and key.
async fn within<'a, T>(
    limits: &Limits,
    name: &'static str,
    phase: Phase,
    future: impl FnOnce(Option<Instant>) -> GuestFuture<'a, T>,
) -> Result<T, Fault> {
    let (limit, key) = match phase {
        Phase::Setup => (limits.init_timeout, "wasm_init_timeout"),
        Phase::Serve => (limits.flush_timeout, "wasm_flush_timeout"),
        Phase::Idle => (limits.idle_budget + IDLE_MARGIN, "wasm_idle_budget"),
    };
    if !limits.deadlines {
        return future(None).await;
    }
    let deadline = Instant::now() + limit;
    match tokio::time::timeout(limit, future(Some(deadline))).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => Err(Fault::deadline(name, limit, key)),
    }
}

/// The worker thread's body: instantiate, then run calls until the channel closes, the guest
/// exits, or the instance is poisoned by a fault; between calls, `idle` when it is due.
///
/// Every guest call runs under a deadline. Running wasm yields at each epoch tick and a call
/// waiting in a host function is a pending future, so the deadline stops both; the stopped
/// call's instance is discarded.
#[allow(clippy::too_many_arguments)]
fn serve(
    id: u64,
    recipe: &Recipe,
    metrics: Arc<GuestMetrics>,
    max_level: Level,
    runtime: &tokio::runtime::Handle,
    jobs: &Receiver<Job>,
    lines: &Arc<WorkerLines>,
    reports: &WorkerReports,
) {
    let Recipe { image, output, limits, capabilities, config, connections, .. } = recipe;
    let done = |outcome: Result<(), Fault>| lines.events.send(Event::Done(outcome)).is_ok();
    // WASI's host side is built on tokio; give it this instance's runtime instead of letting it
    // start a global one whose threads would outlive the instance.
    let _runtime = runtime.enter();
    let sandbox = Sandbox {
        max_level,
        output,
        log: LogSink::new(lines.clone()),
        memory_limit: limits.memory,
        deadlines: limits.deadlines,
        capabilities,
        metrics,
        config: config.clone(),
        connections: connections.clone(),
    };
    let instantiate = GuestInstance::instantiate(image, sandbox);
    let instance = catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async { tokio::time::timeout(limits.init_timeout, instantiate).await })
    }));
    let mut instance = match instance {
        Ok(Ok(Ok(instance))) => instance,
        Ok(Ok(Err(err))) => {
            done(Err(Fault::host(format!("{err:#}"))));
            return;
        }
        Ok(Err(_elapsed)) => {
            done(Err(Fault::deadline("instantiation", limits.init_timeout, "wasm_init_timeout")));
            return;
        }
        Err(_) => {
            done(Err(Fault::host("the host panicked while instantiating")));
            return;
        }
    };
    reports.host.instance_started();
    // Linear memory this instance has reported to the metrics (it never shrinks).
    let mut reported = instance.memory().0;
    reports.host.memory_grew(reported);
    reports.memory.store(reported, Ordering::Release);
    done(Ok(()));

    // When the next `idle` call is due; `None`: not until after the next call.
    let mut idle_at: Option<Instant> = None;
    let mut initialised = false;
    loop {
        let job = match idle_at {
            Some(at) => match recv_until(jobs, at) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    lines.idle.store(true, Ordering::Release);
                    let next = idle(&mut instance, runtime, limits, lines, reports);
                    lines.idle.store(false, Ordering::Release);
                    match next {
                        Ok(next) => idle_at = next.map(|after| Instant::now() + after.max(limits.idle_interval)),
                        Err(fault) => {
                            reports.host.faulted(fault.kind());
                            reports.alive.store(false, Ordering::Release);
                            lines.deferred.error(&format!(
                                "guest '{}' instance #{id} faulted in idle and is discarded: {fault}",
                                image.path().display()
                            ));
                            break;
                        }
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match crate::lifecycle::handoff::recv(jobs) {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        let Job { name, phase, arms_idle, run } = job;
        instance.begin_call();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(within(limits, name, phase, |deadline| run(&mut instance, deadline)))
        }))
        .unwrap_or_else(|_| Err(Fault::host("the host panicked during the guest call")));
        report_dropped(&instance, name, lines, reports);
        *reports.exchanges.lock().unwrap_or_else(PoisonError::into_inner) = instance.take_exchanges();
        let poisoned = outcome.is_err();
        let (size, cap) = instance.memory();
        if size as f64 > cap as f64 * RECYCLE_AT {
            reports.memory_near_cap.store(size, Ordering::Release);
        }
        reports.host.memory_grew(size.saturating_sub(reported));
        reports.memory.store(size, Ordering::Release);
        reported = size;
        initialised |= arms_idle && !poisoned;
        if !done(outcome) || poisoned || name == "exit" {
            break;
        }
        // Background work gets its time once the instance has been left alone for a while.
        if initialised && instance.has_idle() {
            idle_at = Some(Instant::now() + limits.idle_interval);
        }
    }
    reports.host.instance_ended(reported);
}

/// Says what the call `name` wrote past its text budgets (to the waiting agent thread, or the
/// deferred log during `idle`), and counts it.
fn report_dropped(instance: &GuestInstance, name: &str, lines: &WorkerLines, reports: &WorkerReports) {
    let Dropped { lines: dropped, stdio_bytes } = instance.dropped_text();
    if dropped > 0 {
        lines.line(
            Level::Warn,
            format!(
                "guest wrote {dropped} more log lines in one {name} call; dropped (at most {LOG_LINES_PER_CALL} \
                 lines and {} KiB a call)",
                LOG_BYTES_PER_CALL >> 10
            ),
        );
        reports.host.log_lines_dropped(dropped);
    }
    if stdio_bytes > 0 {
        lines.line(
            Level::Warn,
            format!(
                "guest wrote {stdio_bytes} more bytes to stdout or stderr in one {name} call; dropped (at most {} \
                 MiB a call)",
                STDIO_BYTES_PER_CALL >> 20
            ),
        );
    }
}

/// How long past `wasm_idle_budget` an `idle` call may run before it is stopped: room for a
/// collection, a host call in flight when the budget ends, or a loaded machine (a stopped call
/// discards the instance and whatever its goroutines held), well under a flush's deadline. With
/// the defaults a guest that spins in `idle` gets at most 300 ms of every 1.3 s.
pub const IDLE_MARGIN: Duration = Duration::from_millis(250);

/// One `idle` call, with the idle budget, stopped at the budget plus [`IDLE_MARGIN`].
fn idle(
    instance: &mut GuestInstance,
    runtime: &tokio::runtime::Handle,
    limits: &Limits,
    lines: &WorkerLines,
    reports: &WorkerReports,
) -> Result<Option<Duration>, Fault> {
    instance.begin_call();
    let budget = limits.idle_budget;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(within(limits, "idle", Phase::Idle, |_| Box::pin(instance.idle(budget))))
    }))
    .unwrap_or_else(|_| Err(Fault::host("the host panicked during the guest's idle call")));
    report_dropped(instance, "idle", lines, reports);
    reports.host.idled();
    outcome
}

/// `rx.recv()` until `at`, polling briefly first like [`crate::lifecycle::handoff::recv`].
fn recv_until<T>(rx: &Receiver<T>, at: Instant) -> Result<T, RecvTimeoutError> {
    match rx.try_recv() {
        Ok(value) => Ok(value),
        Err(mpsc::TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
        Err(mpsc::TryRecvError::Empty) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
    }
}
