//! A plugin-owned thread that owns one guest instance and serves calls to it one at a time.
//!
//! Guest code never runs on the agent's threads: a flush arrives on an agent coroutine with a
//! 64 KiB stack and no guard page, so the agent thread hands the call to a worker (which has
//! `WORKER_STACK` of stack) and blocks until the worker answers, relaying the guest's log lines
//! to the agent's log meanwhile, on the agent's thread, in order.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::agent::logger::Logger;
use crate::bindings::{EventFormat, EventType, FlushContext, FlushError, InitContext};
use crate::config::Limits;
use crate::log::{LOG_LINES_PER_CALL, Level, Lines, LogSink};
use crate::runtime::engine::WORKER_STACK;
use crate::runtime::fault::Fault;
use crate::runtime::image::GuestImage;
use crate::runtime::instance::{GuestInstance, Schema};
use crate::sandbox::Capabilities;
use crate::sandbox::metrics::GuestMetrics;
use crate::telemetry::host::{HostMetrics, Meters};

/// A chunk borrowed from the agent for the duration of one flush call.
pub struct ChunkRef {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the bytes are only read, and only while the agent thread that lent them is blocked in
// `Worker::call` waiting for the answer to the request that carries them (see `ChunkRef::new`).
unsafe impl Send for ChunkRef {}

impl ChunkRef {
    /// # Safety
    /// `chunk` must stay valid until `Worker::call` with the request carrying this value
    /// returns. `call` only returns after the worker answered or its thread ended, and the
    /// worker never touches a request's chunk after answering it.
    pub unsafe fn new(chunk: &[u8]) -> Self {
        Self { ptr: chunk.as_ptr(), len: chunk.len() }
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: `new`'s contract keeps the lender blocked while the worker reads.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A call into the guest.
pub enum Request {
    Schema,
    Init(InitContext),
    /// `format` is the instance's event format: with `JsonLines` the worker renders the chunk
    /// before the guest sees it.
    Flush {
        tag: String,
        event_type: EventType,
        chunk: ChunkRef,
        format: EventFormat,
    },
    Exit,
}

/// What the guest answered (its own success or reported error).
#[derive(Debug)]
pub enum Response {
    Ready,
    Schema(Schema),
    Init(Result<(), String>),
    Flush(Result<(), FlushError>),
    Exited,
}

/// Sent by the worker to the agent thread that waits on the current request.
pub enum Event {
    Log(Level, String),
    Done(Result<Response, Fault>),
}

// The guest's lines go to the agent thread waiting on the current call, between that call's
// answers, so they are written in order and on an agent thread.
impl Lines for Sender<Event> {
    fn line(&self, level: Level, text: String) {
        // The receiver is gone only when the waiting call was abandoned; nothing to do then.
        let _ = self.send(Event::Log(level, text));
    }
}

/// Handle to a worker thread and its guest instance.
pub struct Worker {
    id: u64,
    probe: Arc<Probe>,
    requests: Sender<Request>,
    events: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

/// What the worker thread reports beside its answers.
struct Probe {
    /// Set after a call left the guest's memory near its cap: the instance is recycled
    /// between flushes instead of trapping inside one.
    worn: AtomicUsize,
    host: Arc<HostMetrics>,
}

impl Worker {
    /// Starts a worker thread and instantiates the guest on it. Returns once the instance
    /// exists; guest logs are written through `logger` meanwhile.
    pub fn spawn(
        id: u64,
        image: Arc<GuestImage>,
        runtime: tokio::runtime::Handle,
        limits: Limits,
        capabilities: Arc<Capabilities>,
        meters: Meters,
        logger: &Logger,
    ) -> Result<Self> {
        let (requests, request_rx) = mpsc::channel();
        let (event_tx, events) = mpsc::channel();
        let Meters { guest: metrics, host } = meters;
        let probe = Arc::new(Probe { worn: AtomicUsize::new(0), host });
        let max_level = logger.max_level();
        let thread = std::thread::Builder::new()
            .name(format!("out-wasm-{id}"))
            .stack_size(WORKER_STACK)
            .spawn({
                let probe = probe.clone();
                move || {
                    let instance = Instance { image: &image, max_level, limits, capabilities: &capabilities, metrics };
                    serve(instance, &runtime, &request_rx, &event_tx, &probe)
                }
            })
            .context("failed to start a worker thread")?;
        let mut worker = Self { id, probe, requests, events, thread: Some(thread) };
        match worker.wait(logger) {
            Ok(_) => Ok(worker),
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
    pub fn worn(&self) -> Option<usize> {
        Some(self.probe.worn.load(Ordering::Acquire)).filter(|size| *size > 0)
    }

    /// Sends one request and blocks until the guest answered or faulted.
    pub fn call(&mut self, request: Request, logger: &Logger) -> Result<Response, Fault> {
        self.call_meanwhile(request, logger, || {})
    }

    /// As [`Worker::call`], running `meanwhile` on the calling thread while the guest works.
    pub fn call_meanwhile(
        &mut self,
        request: Request,
        logger: &Logger,
        meanwhile: impl FnOnce(),
    ) -> Result<Response, Fault> {
        if self.requests.send(request).is_err() {
            return Err(Fault::host("the worker thread is gone"));
        }
        meanwhile();
        self.wait(logger)
    }

    fn wait(&mut self, logger: &Logger) -> Result<Response, Fault> {
        let outcome = loop {
            match crate::lifecycle::handoff::recv(&self.events) {
                Ok(Event::Log(level, message)) => logger.log(level, &message),
                Ok(Event::Done(outcome)) => break outcome,
                Err(_) => break Err(Fault::host("the worker thread ended without answering")),
            }
        };
        if let Err(fault) = &outcome {
            self.probe.host.faulted(fault.kind());
        }
        outcome
    }

    /// Stops the thread (after its current request) and waits for it to end.
    pub fn join(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // Closing the request channel ends the worker's loop.
        let (closed, _) = mpsc::channel();
        self.requests = closed;
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

/// The worker thread's body: instantiate, then serve requests until the channel closes, the
/// guest exits, or the instance is poisoned by a fault.
///
/// Every guest call runs under a deadline. Running wasm yields at each epoch tick and a call
/// waiting in a host function is a pending future, so the deadline stops both; the stopped
/// call's instance is discarded.
/// What a worker's guest instance is made of.
struct Instance<'a> {
    image: &'a GuestImage,
    max_level: Level,
    limits: Limits,
    capabilities: &'a Capabilities,
    metrics: Arc<GuestMetrics>,
}

fn serve(
    instance: Instance<'_>,
    runtime: &tokio::runtime::Handle,
    requests: &Receiver<Request>,
    events: &Sender<Event>,
    probe: &Probe,
) {
    let Instance { image, max_level, limits, capabilities, metrics } = instance;
    // WASI's host side is built on tokio; give it this instance's runtime instead of letting it
    // start a global one whose threads would outlive the instance.
    let _runtime = runtime.enter();
    let instantiate = GuestInstance::instantiate(
        image,
        max_level,
        LogSink::new(Arc::new(events.clone())),
        limits.memory,
        limits.deadlines,
        capabilities,
        metrics,
    );
    let instance = catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async { tokio::time::timeout(limits.init_timeout, instantiate).await })
    }));
    let mut instance = match instance {
        Ok(Ok(Ok(instance))) => instance,
        Ok(Ok(Err(err))) => {
            let _ = events.send(Event::Done(Err(Fault::host(format!("{err:#}")))));
            return;
        }
        Ok(Err(_elapsed)) => {
            let fault = Fault::deadline("instantiation", limits.init_timeout, "wasm_init_timeout");
            let _ = events.send(Event::Done(Err(fault)));
            return;
        }
        Err(_) => {
            let _ = events.send(Event::Done(Err(Fault::host("the host panicked while instantiating"))));
            return;
        }
    };
    probe.host.instance_started();
    // Linear memory this instance has reported to the metrics (it never shrinks).
    let mut reported = instance.memory().0;
    probe.host.memory_grew(reported);
    let _ = events.send(Event::Done(Ok(Response::Ready)));

    while let Ok(request) = crate::lifecycle::handoff::recv(requests) {
        let exiting = matches!(request, Request::Exit);
        let (call, limit, key) = match request {
            Request::Schema => ("config-schema", limits.init_timeout, "wasm_init_timeout"),
            Request::Init(_) => ("init", limits.init_timeout, "wasm_init_timeout"),
            Request::Flush { .. } => ("flush", limits.flush_timeout, "wasm_flush_timeout"),
            Request::Exit => ("exit", limits.flush_timeout, "wasm_flush_timeout"),
        };
        instance.begin_call();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(async {
                if !limits.deadlines {
                    return handle(&mut instance, request, None).await;
                }
                let deadline = Instant::now() + limit;
                match tokio::time::timeout(limit, handle(&mut instance, request, Some(deadline))).await {
                    Ok(outcome) => outcome,
                    Err(_elapsed) => Err(Fault::deadline(call, limit, key)),
                }
            })
        }))
        .unwrap_or_else(|_| Err(Fault::host("the host panicked during the guest call")));
        let dropped = instance.dropped_log_lines();
        if dropped > 0 {
            let line = format!(
                "guest wrote {dropped} more log lines in one {call} call; dropped (at most {LOG_LINES_PER_CALL} a call)"
            );
            let _ = events.send(Event::Log(Level::Warn, line));
            probe.host.log_lines_dropped(dropped);
        }
        let poisoned = outcome.is_err();
        let (size, cap) = instance.memory();
        if size as f64 > cap as f64 * RECYCLE_AT {
            probe.worn.store(size, Ordering::Release);
        }
        probe.host.memory_grew(size.saturating_sub(reported));
        reported = size;
        if events.send(Event::Done(outcome)).is_err() || poisoned || exiting {
            break;
        }
    }
    probe.host.instance_ended(reported);
}

/// Makes one call. `deadline` is when the call will be stopped, if deadlines are on: a flush
/// tells the guest how long it has left once its chunk is ready.
async fn handle(instance: &mut GuestInstance, request: Request, deadline: Option<Instant>) -> Result<Response, Fault> {
    match request {
        Request::Schema => instance.schema().await.map(Response::Schema),
        Request::Init(ctx) => instance.init(&ctx).await.map(Response::Init),
        Request::Flush { tag, event_type, chunk, format } => {
            let rendered;
            let bytes = match crate::chunk::events::render(format, event_type, chunk.as_slice()) {
                Ok(Some(lines)) => {
                    rendered = lines;
                    &rendered[..]
                }
                Ok(None) => chunk.as_slice(),
                // The guest never sees a chunk the host cannot read; the agent drops it, as a
                // msgpack guest's decoder would have it do.
                Err(err) => return Ok(Response::Flush(Err(FlushError::Error(format!("malformed chunk: {err:#}"))))),
            };
            let time_left = deadline.map(|at| {
                let left = at.saturating_duration_since(Instant::now());
                u64::try_from(left.as_nanos()).unwrap_or(u64::MAX)
            });
            let ctx = FlushContext { tag, event_type, time_left };
            instance.flush(&ctx, bytes).await.map(Response::Flush)
        }
        Request::Exit => instance.exit().await.map(|()| Response::Exited),
    }
}
