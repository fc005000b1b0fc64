//! One `[OUTPUT] Name wasm` section: its current guest version, its worker pool and its
//! watcher.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::agent::handle::Agent;
use crate::agent::logger::Logger;
use crate::agent::profile::AgentProfile;
use crate::bindings::{Delivery, EventFormat, EventType, EventTypes, FlushContext, FlushError, WitVersion};
use crate::config::{HostConfig, OnFault, SMALL_GUEST, WarmSpare};
use crate::lifecycle::canary::{Concurrency, Decision, Verdict};
use crate::lifecycle::delivery::Deliveries;
use crate::lifecycle::recorder::{Flight, Recorder};
use crate::lifecycle::spares::Spares;
use crate::lifecycle::state::{OutputState, short};
use crate::lifecycle::version::GuestVersion;
use crate::lifecycle::watch::{FileStamp, Watcher};
use crate::lifecycle::worker::{Call, ChunkRef, Phase, Worker};
use crate::runtime::cache::CompileCache;
use crate::runtime::engine::TickerGuard;
use crate::runtime::fault::Fault;
use crate::sandbox::metrics::GuestMetrics;
use crate::telemetry::host::{FlushResult, HostMetrics};

/// How a flush ended, in the agent's terms; mapped to its status codes in `ffi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushStatus {
    Ok,
    Retry,
    Error,
}

/// The plugin's state for one output instance, owned by the agent's `remote_context`.
///
/// Guest instances live on workers. A flush takes an idle worker of the current version, or
/// starts a new one when all are busy, so an instance with `workers N` in the agent ends up
/// with N guest instances that flush concurrently. A worker whose guest faulted is discarded
/// and the next flush starts a fresh one. With watching on, a watcher thread replaces the
/// version when the guest file's content changes.
pub struct OutputInstance {
    shared: Arc<OutputState>,
    watcher: Option<Watcher>,
    spares: Option<Spares>,
    /// Flushes that found neither an idle instance nor a spare and started one themselves.
    fallbacks: AtomicU64,
    /// The thread that ran init: the agent's engine thread. A flush on it (`workers 0`) holds
    /// up every input, timer and output of the agent while the guest runs.
    engine_thread: libc::pthread_t,
    stalls: Mutex<StallState>,
    faults: Mutex<FaultState>,
    /// Event types whose chunks were answered without a guest call, logged once each.
    skipped: Mutex<EventTypes>,
    /// The attempts at each chunk, for the delivery ids of 0.3.0 guests.
    deliveries: Deliveries,
    /// Flushes running at once, for `wasm_canary one`.
    concurrency: Concurrency,
    /// The flight recorder (`wasm_record`).
    recorder: Option<Recorder>,
    /// Drives WASI's host-side I/O for this instance's guests; shut down in `exit`.
    runtime: Option<tokio::runtime::Runtime>,
    /// Keeps the epoch (the clock of guest deadlines) ticking while the instance lives.
    _ticker: Option<TickerGuard>,
}

/// A guest that faults again and again must not become a hot loop of instance starts and
/// log lines: after the second fault in a row new instances wait, longer each time, and fault
/// lines are written at most once per `FAULT_LOG_INTERVAL`.
#[derive(Default)]
struct FaultState {
    consecutive: u32,
    hold_until: Option<Instant>,
    last_logged: Option<Instant>,
    suppressed: u64,
}

/// How long a flush may hold the agent's engine thread before the host says so.
pub const STALL_THRESHOLD: Duration = Duration::from_millis(100);
/// Stall warnings are written at most this often per output instance.
const STALL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Flushes that held the engine thread too long since the last warning.
#[derive(Default)]
struct StallState {
    last_logged: Option<Instant>,
    since: u64,
    longest: Duration,
}

impl StallState {
    /// Counts a stall of `held`; returns the line to log, or `None` while rate-limited.
    fn record(&mut self, held: Duration) -> Option<String> {
        self.since += 1;
        self.longest = self.longest.max(held);
        let now = Instant::now();
        if self.last_logged.is_some_and(|at| now.duration_since(at) < STALL_LOG_INTERVAL) {
            return None;
        }
        let (count, longest) = (std::mem::take(&mut self.since), std::mem::take(&mut self.longest));
        self.last_logged = Some(now);
        let more = if count > 1 {
            format!(" ({count} such flushes since the last report, the longest {} ms)", longest.as_millis())
        } else {
            String::new()
        };
        Some(format!(
            "a flush held the agent's engine thread for {} ms{more}: with `workers 0` (the default) flushes run \
             on the engine thread and every input, timer and output of the agent waits meanwhile; set `workers 1` \
             or more in this [OUTPUT] section (see docs/production.md)",
            held.as_millis()
        ))
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const FAULT_LOG_INTERVAL: Duration = Duration::from_secs(10);

impl FaultState {
    /// Counts a fault; returns the line to log, or `None` if it is suppressed.
    fn record(&mut self, line: String) -> Option<String> {
        self.consecutive += 1;
        if self.consecutive >= 2 {
            let factor = 1u32 << (self.consecutive - 2).min(16);
            self.hold_until = Some(Instant::now() + (FIRST_BACKOFF * factor).min(MAX_BACKOFF));
        }
        let now = Instant::now();
        if self.last_logged.is_some_and(|at| now.duration_since(at) < FAULT_LOG_INTERVAL) {
            self.suppressed += 1;
            return None;
        }
        self.last_logged = Some(now);
        let suppressed = std::mem::take(&mut self.suppressed);
        Some(if suppressed > 0 { format!("{line} ({suppressed} more faults since the last report)") } else { line })
    }

    fn holding(&self) -> Option<Duration> {
        self.hold_until.and_then(|until| until.checked_duration_since(Instant::now()))
    }

    fn recovered(&mut self) {
        self.consecutive = 0;
        self.hold_until = None;
    }
}

impl OutputInstance {
    /// Reads the host's keys, loads the guest, resolves the guest's declared keys and
    /// initialises one guest instance. Any failure refuses the instance.
    /// `profile` is the agent as Register found it: what it routes to the plugin.
    pub fn init(agent: &Agent, logger: Logger, name: &str, profile: AgentProfile) -> Result<Self> {
        let host = HostConfig::read(agent)?;
        // Opened first: a recorder directory that fails the trust rule refuses the instance
        // before anything is started.
        let recorder = match &host.record {
            Some(config) => {
                let agent = *agent;
                let recorder = Recorder::open(config, name, &move |key| agent.property(key))?;
                logger.info(&format!(
                    "recording failed flushes in {} (at most {} files, {} MiB)",
                    recorder.path().display(),
                    config.max_files,
                    config.max_bytes >> 20
                ));
                Some(recorder)
            }
            None => None,
        };
        let metric_limits = host.metric_limits;
        let cache = host.cache_dir.as_deref().and_then(|dir| match CompileCache::open(dir) {
            Ok(cache) => Some(cache),
            Err(err) => {
                logger.warn(&format!("compiling without a cache: {err:#}"));
                None
            }
        });
        // One worker drives every socket, timer and HTTP connection of the instance's guests:
        // that work is waiting, not computing. The blocking pool runs what WASI cannot do
        // asynchronously: file system calls in granted directories and name lookups (the
        // system resolver, for WASI lookups and HTTP by name). A guest call has at most one
        // such call in flight at a time, so BLOCKING_THREADS lets that many concurrent guest
        // instances (`workers`) do blocking I/O without waiting on each other; beyond it they
        // queue. It also bounds the threads a guest can keep busy, and the threads that may
        // still be inside a system call when the instance exits (see lib.rs: Unload).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(BLOCKING_THREADS)
            .thread_name("out-wasm-io")
            .enable_all()
            .build()
            .context("failed to start the I/O runtime")?;
        let ticker = if host.limits.deadlines { Some(TickerGuard::acquire()?) } else { None };
        // Stamped before reading, so a change racing with init is seen by the watcher.
        let stamp = FileStamp::of(&host.wasm_path);
        let host_metrics = Arc::new(HostMetrics::new(agent, name, host.limits.memory, &logger));
        let guest_metrics = GuestMetrics::new(metric_limits, host_metrics.guest_sink());
        let shared = Arc::new(OutputState::new(
            name,
            *agent,
            logger,
            host,
            cache,
            runtime.handle().clone(),
            Arc::new(guest_metrics),
            host_metrics,
        ));
        let version = shared.prepare(&shared.logger)?;
        shared.logger.info(&format!(
            "guest '{}' (sha256 {}) initialized, {}",
            shared.host.wasm_path.display(),
            short(version.digest()),
            version.image.provenance()
        ));
        shared.host_metrics.serving(version.digest());
        if !profile.has_event_types() && !version.init_ctx.event_types.contains(EventTypes::LOGS) {
            shared.logger.warn(&format!(
                "guest '{}' accepts no logs, and this agent routes only logs to external plugins: it will receive \
                 nothing (Fluent Bit 4.2.4 or 5.0 and later route metrics and traces too)",
                shared.host.wasm_path.display()
            ));
        }
        shared.install(version);
        let version = shared.current();
        let spare_now = match shared.host.warm_spare {
            WarmSpare::On => true,
            WarmSpare::Off => false,
            WarmSpare::Auto => version.first_memory().is_none_or(|bytes| bytes <= SMALL_GUEST),
        };
        let spares = if shared.host.warm_spare == WarmSpare::Off {
            None
        } else {
            if spare_now {
                // The first spare is made here, where the agent waits for init anyway, so that the
                // output runs with one from its first flush; later ones are made on the spares
                // thread.
                let spare = shared.start_instance(&version, &shared.logger).context("failed to start a warm spare")?;
                if let Err(spare) = version.offer_spare(spare) {
                    shared.exit_worker(spare, &shared.logger);
                }
            } else {
                shared.logger.debug(&format!(
                    "no warm spare yet: the guest's instance has {} MiB of linear memory (wasm_warm_spare auto keeps \
                     one from the start below {} MiB); the first flush that needs a second instance starts one, and \
                     a spare is kept from then on",
                    version.first_memory().unwrap_or_default() >> 20,
                    SMALL_GUEST >> 20
                ));
            }
            Some(Spares::start(shared.clone()).context("failed to start the warm-spare thread")?)
        };
        let watcher = if shared.host.watch {
            Some(Watcher::start(shared.clone(), stamp).context("failed to start the guest file watcher")?)
        } else {
            None
        };
        // Init runs on the agent's engine thread: metrics the first guest instance declared
        // are created here.
        shared.host_metrics.sync(true);
        Ok(Self {
            shared,
            watcher,
            spares,
            fallbacks: AtomicU64::new(0),
            // SAFETY: pthread_self has no preconditions.
            engine_thread: unsafe { libc::pthread_self() },
            stalls: Mutex::default(),
            faults: Mutex::default(),
            skipped: Mutex::new(EventTypes::empty()),
            deliveries: Deliveries::default(),
            concurrency: Concurrency::default(),
            recorder,
            runtime: Some(runtime),
            _ticker: ticker,
        })
    }

    /// An instance for one flush: an idle one, else the warm spare (and the next spare is asked
    /// for), else one started here, on the flush path (counted: the spare was not ready).
    fn checkout(&self, version: &Arc<GuestVersion>) -> Result<Worker> {
        // An idle instance whose background work faulted is discarded here (its fault was
        // logged by its worker).
        while let Some(worker) = version.take_idle() {
            if worker.is_alive() {
                return Ok(worker);
            }
            worker.join();
        }
        let spare = version.take_spare().filter(Worker::is_alive);
        if let Some(spares) = &self.spares {
            spares.replenish(version);
        }
        if let Some(worker) = spare {
            return Ok(worker);
        }
        let logger = &self.shared.logger;
        let worker = self.shared.start_instance(version, logger)?;
        let fallbacks = self.fallbacks.fetch_add(1, Ordering::Relaxed) + 1;
        self.shared.host_metrics.started_on_flush_path();
        let why = if self.spares.is_some() { "no warm spare was ready" } else { "wasm_warm_spare is off" };
        logger.debug(&format!(
            "started guest instance #{} on the flush path: {why} ({fallbacks} such starts so far)",
            worker.id()
        ));
        Ok(worker)
    }

    /// Returns a healthy worker to its version, or retires it if a swap replaced the version
    /// while it was flushing.
    fn checkin(&self, version: &GuestVersion, worker: Worker) {
        if let Some(size) = worker.memory_near_cap() {
            self.shared.logger.info(&format!(
                "guest instance #{} has grown to {} MiB of its {} MiB (wasm_memory_limit); recycled, a fresh \
                 instance takes the next flush",
                worker.id(),
                size >> 20,
                self.shared.host.limits.memory >> 20
            ));
            self.shared.host_metrics.recycled();
            self.shared.exit_worker(worker, &self.shared.logger);
            return;
        }
        if let Err(worker) = version.put_back(worker) {
            self.retire_worker(worker);
        }
    }

    /// Gives a worker of a retired version its exit call: on the watcher's thread when there is
    /// one (off the flush path), else here.
    fn retire_worker(&self, worker: Worker) {
        match &self.watcher {
            Some(watcher) => watcher.retire(worker),
            None => self.shared.exit_worker(worker, &self.shared.logger),
        }
    }

    /// Delivers one chunk to a guest instance of the current version, or of the canary when
    /// one is on trial and this flush is in its share.
    pub fn flush(&self, tag: &str, chunk: &[u8]) -> FlushStatus {
        let logger = &self.shared.logger;
        let started = Instant::now();
        logger.drain();
        let peak = self.concurrency.enter();
        let canary = self.shared.canary();
        let version = match &canary {
            Some(canary) if canary.take(peak) => canary.version.clone(),
            _ => self.shared.current(),
        };
        let (status, result) = self.flush_once(&version, tag, chunk);
        self.concurrency.leave();
        // SAFETY: pthread_self has no preconditions; pthread_equal compares two valid ids.
        let on_engine = unsafe { libc::pthread_equal(libc::pthread_self(), self.engine_thread) } != 0;
        let held = started.elapsed();
        let metrics = &self.shared.host_metrics;
        metrics.flushed(result, held);
        if let Some(canary) = canary {
            if Arc::ptr_eq(&version, &canary.version) {
                metrics.canary_flushed(result);
            }
            if let Some(decision) = canary.observe(&version, result, held) {
                self.conclude(decision);
            }
        }
        metrics.http_connections(self.shared.connections.counts());
        metrics.http_destinations(&self.shared.connections.destinations().snapshot());
        metrics.descriptors(self.shared.connections.descriptors());
        metrics.sync(on_engine);
        if on_engine && held > STALL_THRESHOLD {
            metrics.stalled();
            let line = self.stalls.lock().unwrap_or_else(PoisonError::into_inner).record(held);
            if let Some(line) = line {
                logger.warn(&line);
            }
        }
        logger.drain();
        status
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs a fault (rate-limited) and answers the agent as `wasm_on_trap` says.
    fn faulted(&self, line: String) -> FlushStatus {
        if let Some(line) = self.faults().record(line) {
            self.shared.logger.error(&line);
        }
        match self.shared.host.on_fault {
            OnFault::Retry => FlushStatus::Retry,
            OnFault::Error => FlushStatus::Error,
        }
    }

    /// Carries out a canary's verdict: the canary becomes the current version, or is retired
    /// (and refused by the watcher until the source changes). Flushes already running on the
    /// version that leaves finish there; its instances get their exit call off the flush path.
    fn conclude(&self, decision: Decision) {
        let Decision { canary, verdict, canary_outcomes, serving_outcomes } = decision;
        let logger = &self.shared.logger;
        let metrics = &self.shared.host_metrics;
        let path = self.shared.host.wasm_path.display();
        let (new, old) = (short(canary.version.digest()), short(canary.serving.digest()));
        let numbers = format!(
            "after {:.1} s; canary: {}; serving: {}",
            canary.started.elapsed().as_secs_f64(),
            canary_outcomes.summary(),
            serving_outcomes.summary()
        );
        match verdict {
            Verdict::Promote => {
                let previous = self.shared.install(canary.version.clone());
                self.shared.end_canary(&canary);
                metrics.swapped(canary.version.digest());
                metrics.canary_ended(true);
                logger.info(&format!("promoted canary guest '{path}': sha256 {old} -> {new} {numbers}"));
                for worker in previous.map(|previous| previous.retire()).unwrap_or_default() {
                    self.retire_worker(worker);
                }
            }
            Verdict::RollBack(why) => {
                self.shared.end_canary(&canary);
                metrics.canary_ended(false);
                logger.warn(&format!(
                    "rolled back canary guest '{path}' (sha256 {new}), still serving sha256 {old}: {why} {numbers}; \
                     sha256 {new} is refused until the guest changes again"
                ));
                for worker in canary.version.retire() {
                    self.retire_worker(worker);
                }
            }
            Verdict::Undecided => {}
        }
    }

    fn flush_once(&self, version: &Arc<GuestVersion>, tag: &str, chunk: &[u8]) -> (FlushStatus, FlushResult) {
        let logger = &self.shared.logger;
        // Backing off after repeated faults: no guest ran, so the chunk is always kept.
        if self.faults().holding().is_some() {
            return (FlushStatus::Retry, FlushResult::Held);
        }
        let path = &version.init_ctx.guest_path;
        let event_type = crate::chunk::render::event_type(chunk);
        if !version.init_ctx.event_types.contains(event_type.as_set()) {
            self.skip(event_type, tag);
            return (FlushStatus::Ok, FlushResult::Skipped);
        }
        let mut worker = match self.checkout(version) {
            Ok(worker) => worker,
            Err(err) => {
                if let Some(line) = self.faults().record(format!(
                    "failed to start an instance of guest '{path}', the chunk will be retried: {err:#}"
                )) {
                    logger.error(&line);
                }
                return (FlushStatus::Retry, FlushResult::Fault);
            }
        };
        let bytes = chunk;
        // 0.3.0 guests are told which delivery of which chunk this is; the bytes are hashed as
        // the agent delivered them.
        let delivery = (version.image.version() >= WitVersion::V0_3_0).then(|| self.deliveries.next(tag, chunk));
        let format = &version.init_ctx.event_format;
        // Counting the records for the metrics costs a pass over the chunk: the agent thread
        // makes it while the guest runs, instead of before.
        let metrics = &self.shared.host_metrics;
        // SAFETY: the agent's chunk is valid for this whole function, and `call_recorded`
        // returns only once the worker is done with the call.
        let call = unsafe { flush_call(tag, event_type, bytes, format, &delivery) };
        let started = Instant::now();
        // The guest's lines are kept for the flight recorder only when it is on.
        let mut kept = self.recorder.as_ref().map(|_| Vec::new());
        let mut outcome = worker.call_recorded(call, logger, || metrics.chunk_handed(event_type, bytes), kept.as_mut());
        // An idle instance whose background work faulted just before this call took it never
        // ran it: the chunk goes to another instance, once, instead of being retried by the agent.
        if outcome.is_err() && !worker.is_alive() {
            worker.join();
            worker = match self.checkout(version) {
                Ok(worker) => worker,
                Err(err) => {
                    logger.error(&format!(
                        "failed to start an instance of guest '{path}', the chunk will be retried: {err:#}"
                    ));
                    return (FlushStatus::Retry, FlushResult::Fault);
                }
            };
            // SAFETY: as above.
            let call = unsafe { flush_call(tag, event_type, bytes, format, &delivery) };
            outcome = worker.call_recorded(call, logger, || {}, kept.as_mut());
        }
        if let (Some(recorder), Some(kept)) = (&self.recorder, &kept) {
            let (result, message, fault) = match &outcome {
                Ok(Ok(())) => (FlushResult::Ok, None, None),
                Ok(Err(FlushError::Retry(message))) => (FlushResult::Retry, Some(message.as_str()), None),
                Ok(Err(FlushError::Error(message))) => (FlushResult::Error, Some(message.as_str()), None),
                Err(fault) => (FlushResult::Fault, None, Some(fault)),
            };
            if result != FlushResult::Ok {
                let http = worker.take_exchanges();
                let flight = Flight {
                    tag,
                    chunk,
                    result,
                    message,
                    fault,
                    logs: kept,
                    http: &http,
                    version,
                    delivery: delivery.as_ref(),
                    elapsed: started.elapsed(),
                };
                match recorder.record(&flight) {
                    Ok(name) => {
                        logger.debug(&format!("recorded the flush in {}", recorder.path().join(name).display()))
                    }
                    Err(err) => logger.warn(&format!("failed to record a flush (wasm_record): {err:#}")),
                }
            }
        }
        let status = match outcome {
            Ok(Ok(())) => (FlushStatus::Ok, FlushResult::Ok),
            Ok(Err(FlushError::Retry(message))) => {
                logger.warn(&format!("guest asked to retry the chunk of tag '{tag}': {message}"));
                (FlushStatus::Retry, FlushResult::Retry)
            }
            Ok(Err(FlushError::Error(message))) => {
                logger.error(&format!("guest failed the chunk of tag '{tag}', it is dropped: {message}"));
                (FlushStatus::Error, FlushResult::Error)
            }
            Err(fault) => {
                return (self.faulted(self.fault_line(path, worker.id(), tag, &fault)), FlushResult::Fault);
            }
        };
        self.faults().recovered();
        self.checkin(version, worker);
        status
    }

    /// A chunk of a type the guest does not take is delivered to nobody, as the agent's own
    /// outputs for other types do; said once per type so a routing mistake is visible.
    fn skip(&self, event_type: EventType, tag: &str) {
        let mut skipped = self.skipped.lock().unwrap_or_else(PoisonError::into_inner);
        if !skipped.contains(event_type.as_set()) {
            *skipped |= event_type.as_set();
            self.shared.logger.info(&format!(
                "the guest does not accept {} (accepted-event-types); chunks of {} such as tag '{tag}' are \
                 answered ok without calling it",
                event_type.name(),
                event_type.name()
            ));
        }
    }

    fn fault_line(&self, path: &str, instance: u64, tag: &str, fault: &Fault) -> String {
        let answer = match self.shared.host.on_fault {
            OnFault::Retry => "will be retried",
            OnFault::Error => "is dropped (wasm_on_trap error)",
        };
        format!(
            "guest '{path}' instance #{instance} faulted in flush and is discarded; the chunk of tag '{tag}' {answer}: {fault}"
        )
    }

    /// Stops the watcher, gives every guest instance its exit call, then stops the worker
    /// threads and the runtime. The agent calls this once, after the instance's last flush.
    pub fn exit(mut self) {
        let logger = self.shared.logger.clone();
        if let Some(watcher) = self.watcher.take() {
            watcher.stop();
        }
        if let Some(spares) = self.spares.take() {
            spares.stop();
        }
        logger.drain();
        // A canary still on trial is neither promoted nor refused: the next start serves
        // what the file or tag names then.
        if let Some(canary) = self.shared.canary() {
            canary.abandon();
            self.shared.end_canary(&canary);
            for worker in canary.version.retire() {
                self.shared.exit_worker(worker, &logger);
            }
        }
        for worker in self.shared.current().retire() {
            self.shared.exit_worker(worker, &logger);
        }
        self.shared.connections.close_all();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
        }
        logger.debug("exited");
        logger.drain();
    }
}

/// The flush call of one chunk: rendered for the instance's format on the worker, with the time
/// left when the guest is called.
///
/// # Safety
/// `chunk` must stay valid until `Worker::call` with the returned call has returned (the
/// worker reads it in place, see `ChunkRef`).
unsafe fn flush_call(
    tag: &str,
    event_type: EventType,
    chunk: &[u8],
    format: &EventFormat,
    delivery: &Option<Delivery>,
) -> Call<Result<(), FlushError>> {
    // SAFETY: the caller's contract is `ChunkRef::new`'s.
    let chunk = unsafe { ChunkRef::new(chunk) };
    let (tag, format, delivery) = (tag.to_owned(), format.clone(), delivery.clone());
    Call::new("flush", Phase::Serve, move |instance, deadline| {
        Box::pin(async move {
            let rendered;
            let bytes = match crate::chunk::render::render(&format, event_type, chunk.as_slice()) {
                Ok(Some(lines)) => {
                    rendered = lines;
                    &rendered[..]
                }
                Ok(None) => chunk.as_slice(),
                // The guest never sees a chunk the host cannot read; the agent drops it, as a
                // msgpack guest's decoder would have it do.
                Err(err) => return Ok(Err(FlushError::Error(format!("malformed chunk: {err:#}")))),
            };
            let time_left = deadline.map(|at| {
                let left = at.saturating_duration_since(Instant::now());
                u64::try_from(left.as_nanos()).unwrap_or(u64::MAX)
            });
            // Guests before 0.3.0 get no delivery (their flush context has none).
            let delivery = delivery.unwrap_or_else(|| Delivery { id: String::new(), attempt: 0 });
            let ctx = FlushContext { tag, event_type, time_left, delivery };
            instance.flush(&ctx, bytes).await
        })
    })
}

/// Threads of an instance's blocking pool (see `OutputInstance::init`).
pub const BLOCKING_THREADS: usize = 4;

/// How long exit waits for the I/O runtime's threads. Idle ones end at once; a blocking-pool
/// thread still inside a system call (a lookup waiting on the resolver, a file call on a hung
/// mount) cannot be interrupted, and is left to end when that call returns.
pub const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);
