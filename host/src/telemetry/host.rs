//! The host's own metrics of one output instance, `fluentbit_wasm_*` with the instance's
//! `name` label first, in the agent's cmetrics context of the instance (see `docs/metrics.md`).
//!
//! Every metric and series is created at init, on the agent's engine thread, so that the hooks
//! may update them from any thread (`agent::cmetrics` explains why). The series of a digest a
//! swap installed is created by [`HostMetrics::sync`], which the flush path calls on the agent's
//! threads; the guests' own metrics are exported by [`crate::telemetry::guest`].
//!
//! Without the agent's cmetrics (an older agent, a loader without them) every hook does nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Result;

use crate::agent::cmetrics::{Context, Kind, Metric, Series};
use crate::agent::handle::Agent;
use crate::agent::logger::Logger;
use crate::bindings::EventType;
use crate::runtime::fault::FaultKind;
use crate::sandbox::descriptors::{Descriptors, Kind as DescriptorKind};
use crate::sandbox::destinations::{Outcome, Stats};
use crate::sandbox::metrics::{GuestMetrics, MetricSink};
use crate::telemetry::guest::GuestExport;

/// The metrics a worker thread feeds: the guests' (through `metrics`) and the host's.
#[derive(Clone)]
pub struct Meters {
    pub guest: Arc<GuestMetrics>,
    pub host: Arc<HostMetrics>,
}

/// How a flush handed to the plugin ended, as `fluentbit_wasm_flushes_total` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushResult {
    /// The guest answered `ok`.
    Ok,
    /// The guest answered `retry`.
    Retry,
    /// The guest answered `error`.
    Error,
    /// The guest call faulted, or no guest instance could be started for it.
    Fault,
    /// Not handed to a guest: the instance is backing off after repeated faults.
    Held,
    /// Not handed to a guest: an event type the guest does not accept (answered ok).
    Skipped,
}

impl FlushResult {
    const ALL: [FlushResult; 6] = [
        FlushResult::Ok,
        FlushResult::Retry,
        FlushResult::Error,
        FlushResult::Fault,
        FlushResult::Held,
        FlushResult::Skipped,
    ];

    fn as_str(self) -> &'static str {
        match self {
            FlushResult::Ok => "ok",
            FlushResult::Retry => "retry",
            FlushResult::Error => "error",
            FlushResult::Fault => "fault",
            FlushResult::Held => "held",
            FlushResult::Skipped => "skipped",
        }
    }
}

/// Upper bounds of `fluentbit_wasm_flush_duration_seconds`: a flush costs from microseconds
/// (a no-op guest) to the flush timeout (10 s by default).
const FLUSH_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The host metrics of one output instance; every method is a no-op when metrics are off.
#[derive(Default)]
pub struct HostMetrics {
    inner: Option<Inner>,
}

struct Inner {
    name: String,
    flushes: Vec<Series>,
    duration: Series,
    faults: Vec<Series>,
    starts: Series,
    flush_path_starts: Series,
    recycles: Series,
    idle_calls: Series,
    /// `new`, `reused`.
    http_connections: Vec<Series>,
    /// By [`DescriptorKind`].
    descriptor_refusals: Vec<Series>,
    destinations: DestinationMetrics,
    descriptors: Series,
    stalls: Series,
    swaps_done: Series,
    swaps_failed: Series,
    /// By [`FlushResult`]: the flushes a canary handled.
    canary_flushes: Vec<Series>,
    /// `started`, `promoted`, `rolled_back`.
    canary_rollouts: Vec<Series>,
    canary_active: Series,
    instances: Series,
    memory: Series,
    log_dropped: Series,
    records: Series,
    bytes: Series,
    component: Mutex<Component>,
    guests: Arc<GuestExport>,
}

/// `fluentbit_wasm_http_destination_requests_total{destination, result}` and
/// `..._seconds_total{destination}`: the metrics made at init, the series as destinations are
/// first asked (at most `sandbox::destinations::MAX_DESTINATIONS` and `other`).
struct DestinationMetrics {
    requests: Arc<Metric>,
    seconds: Arc<Metric>,
    /// By destination: its requests by [`Outcome::RESULTS`], and its seconds.
    series: Mutex<std::collections::HashMap<String, (Vec<Series>, Series)>>,
}

impl DestinationMetrics {
    fn series_of(&self, name: &str, destination: &str) -> Result<(Vec<Series>, Series)> {
        let requests = Outcome::RESULTS
            .iter()
            .map(|result| self.requests.series(&[name, destination, result]))
            .collect::<Result<Vec<_>>>()?;
        Ok((requests, self.seconds.series(&[name, destination])?))
    }
}

/// `fluentbit_wasm_component_info`: 1 for the digest being served, 0 for earlier ones.
struct Component {
    metric: Arc<Metric>,
    current: Option<Series>,
    /// Installed by a swap on the watcher thread, published by the next `sync`.
    pending: Option<String>,
}

/// "Running without metrics" is said once per process, not once per instance.
static NO_METRICS_SAID: AtomicBool = AtomicBool::new(false);

impl HostMetrics {
    /// Creates the instance's metrics in the agent's context. Call on the agent's thread
    /// (init). Without the agent's cmetrics, says so once (info) and returns a no-op.
    pub fn new(agent: &Agent, name: &str, memory_limit: usize, logger: &Logger) -> Self {
        let ctx = match agent.cmetrics() {
            Ok(ctx) => ctx,
            Err(why) => {
                if !NO_METRICS_SAID.swap(true, Ordering::Relaxed) {
                    logger.info(&format!("running without metrics: {why}"));
                }
                return Self::default();
            }
        };
        match Inner::create(ctx, name, memory_limit, logger) {
            Ok(inner) => Self { inner: Some(inner) },
            Err(err) => {
                logger.warn(&format!("running without metrics: failed to create them: {err:#}"));
                Self::default()
            }
        }
    }

    /// A flush the agent handed to the plugin ended; `elapsed` is how long the agent waited
    /// (not observed for held flushes, which run no guest).
    pub fn flushed(&self, result: FlushResult, elapsed: Duration) {
        let Some(inner) = &self.inner else { return };
        inner.flushes[result as usize].inc();
        if !matches!(result, FlushResult::Held | FlushResult::Skipped) {
            inner.duration.observe(elapsed.as_secs_f64());
        }
    }

    /// A guest call (any: instantiation, config-schema, init, flush, exit) faulted.
    pub fn faulted(&self, kind: FaultKind) {
        if let Some(inner) = &self.inner {
            inner.faults[kind as usize].inc();
        }
    }

    /// An instance's `idle` call returned (a fault is counted by [`HostMetrics::faulted`] too).
    pub fn idled(&self) {
        if let Some(inner) = &self.inner {
            inner.idle_calls.inc();
        }
    }

    /// A guest instance was instantiated.
    pub fn instance_started(&self) {
        if let Some(inner) = &self.inner {
            inner.starts.inc();
            inner.instances.add(1.0);
        }
    }

    /// A guest instance's thread ended; `memory` is the linear memory it had.
    pub fn instance_ended(&self, memory: usize) {
        if let Some(inner) = &self.inner {
            inner.instances.add(-1.0);
            inner.memory.add(-(memory as f64));
        }
    }

    /// A guest instance's linear memory grew by `bytes`.
    pub fn memory_grew(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        if let Some(inner) = &self.inner {
            inner.memory.add(bytes as f64);
        }
    }

    /// An instance was retired for its memory size (`RECYCLE_AT`).
    pub fn recycled(&self) {
        if let Some(inner) = &self.inner {
            inner.recycles.inc();
        }
    }

    /// Log lines a guest wrote past its budget.
    pub fn log_lines_dropped(&self, lines: u64) {
        if let Some(inner) = &self.inner {
            inner.log_dropped.add(lines as f64);
        }
    }

    /// A chunk went to a guest's flush. Log records are counted (a pass over the chunk);
    /// a metrics or traces chunk counts its bytes only.
    pub fn chunk_handed(&self, event_type: EventType, chunk: &[u8]) {
        if let Some(inner) = &self.inner {
            if event_type == EventType::Logs {
                inner.records.add(crate::chunk::records::count(chunk) as f64);
            }
            inner.bytes.add(chunk.len() as f64);
        }
    }

    /// A flush found no idle instance and no warm spare, and started one itself.
    pub fn started_on_flush_path(&self) {
        if let Some(inner) = &self.inner {
            inner.flush_path_starts.inc();
        }
    }

    /// A flush held the agent's engine thread past the stall threshold.
    pub fn stalled(&self) {
        if let Some(inner) = &self.inner {
            inner.stalls.inc();
        }
    }

    /// Where the guests' own metrics go: the agent's context, when metrics are on.
    pub fn guest_sink(&self) -> Option<Box<dyn MetricSink>> {
        let inner = self.inner.as_ref()?;
        Some(Box::new(inner.guests.clone()))
    }

    /// A swap installed the version with `digest`. Any thread; published by `sync`.
    pub fn swapped(&self, digest: &str) {
        if let Some(inner) = &self.inner {
            inner.swaps_done.inc();
            inner.component().pending = Some(digest.to_owned());
        }
    }

    /// A new guest file failed to swap in.
    pub fn swap_failed(&self) {
        if let Some(inner) = &self.inner {
            inner.swaps_failed.inc();
        }
    }

    /// A new version went on trial beside the serving one (`wasm_canary`).
    pub fn canary_started(&self) {
        if let Some(inner) = &self.inner {
            inner.canary_rollouts[0].inc();
            inner.canary_active.set(1.0);
        }
    }

    /// A flush the canary handled ended.
    pub fn canary_flushed(&self, result: FlushResult) {
        if let Some(inner) = &self.inner {
            inner.canary_flushes[result as usize].inc();
        }
    }

    /// The canary was judged: promoted, or rolled back.
    pub fn canary_ended(&self, promoted: bool) {
        if let Some(inner) = &self.inner {
            inner.canary_rollouts[if promoted { 1 } else { 2 }].inc();
            inner.canary_active.set(0.0);
        }
    }

    /// Sets the digest being served. Call on an agent thread: it may create a series.
    pub fn serving(&self, digest: &str) {
        if let Some(inner) = &self.inner {
            inner.serve(digest);
        }
    }

    /// The output's HTTP connections so far: made, and requests sent on a kept-alive one.
    pub fn http_connections(&self, (opened, reused): (u64, u64)) {
        if let Some(inner) = &self.inner {
            inner.http_connections[0].set(opened as f64);
            inner.http_connections[1].set(reused as f64);
        }
    }

    /// What the output's guests asked of each HTTP destination so far. Call on an agent thread:
    /// it may create series.
    pub fn http_destinations(&self, destinations: &[(String, Stats)]) {
        let Some(inner) = &self.inner else { return };
        let metrics = &inner.destinations;
        let mut series = metrics.series.lock().unwrap_or_else(PoisonError::into_inner);
        for (destination, stats) in destinations {
            if !series.contains_key(destination) {
                let Ok(made) = metrics.series_of(&inner.name, destination) else { continue };
                series.insert(destination.clone(), made);
            }
            let (requests, seconds) = &series[destination];
            for (series, count) in requests.iter().zip(stats.requests) {
                series.set(count as f64);
            }
            seconds.set(stats.seconds);
        }
    }

    /// The descriptors the output's guests hold now, and the refusals at its cap so far.
    pub fn descriptors(&self, descriptors: &Descriptors) {
        if let Some(inner) = &self.inner {
            inner.descriptors.set(descriptors.live() as f64);
            for (series, refused) in inner.descriptor_refusals.iter().zip(descriptors.refusals()) {
                series.set(refused as f64);
            }
        }
    }

    /// Publishes what plugin threads left for an agent thread. Call on an agent thread;
    /// `on_engine`: the agent's engine thread, the only one where new metrics may be created.
    pub fn sync(&self, on_engine: bool) {
        let Some(inner) = &self.inner else { return };
        let pending = inner.component().pending.take();
        if let Some(digest) = pending {
            inner.serve(&digest);
        }
        inner.guests.sync(on_engine);
    }
}

impl Inner {
    fn create(ctx: Context, name: &str, memory_limit: usize, logger: &Logger) -> Result<Self> {
        let counter = |metric: &str, help: &str| -> Result<Series> {
            let series = ctx.create(Kind::Counter, metric, help, &["name"], None)?.series(&[name])?;
            series.set(0.0);
            Ok(series)
        };
        let gauge = |metric: &str, help: &str| -> Result<Series> {
            let series = ctx.create(Kind::Gauge, metric, help, &["name"], None)?.series(&[name])?;
            series.set(0.0);
            Ok(series)
        };
        let by = |metric: &str, help: &str, label: &str, values: &[&str]| -> Result<Vec<Series>> {
            let metric = ctx.create(Kind::Counter, metric, help, &["name", label], None)?;
            values
                .iter()
                .map(|value| {
                    let series = metric.series(&[name, value])?;
                    series.set(0.0);
                    Ok(series)
                })
                .collect()
        };
        let flushes = by(
            "flushes_total",
            "Flushes the agent handed to the plugin, by result (ok, retry, error: the guest's answer; fault: \
             the guest faulted or could not start; held: backing off after faults, and skipped: an event type \
             the guest does not take, no guest ran).",
            "result",
            &FlushResult::ALL.map(FlushResult::as_str),
        )?;
        let duration = ctx
            .create(
                Kind::Histogram,
                "flush_duration_seconds",
                "How long the agent waited for a flush of the guest, in seconds.",
                &["name"],
                Some(FLUSH_BUCKETS),
            )?
            .series(&[name])?;
        let faults = by(
            "faults_total",
            "Guest calls that did not return, by kind (trap, deadline, memory, host); the guest instance is \
             discarded.",
            "kind",
            &FaultKind::ALL.map(FaultKind::as_str),
        )?;
        let swaps = by(
            "swaps_total",
            "Hot swaps of the guest file, by result (done, failed: the previous version keeps serving).",
            "result",
            &["done", "failed"],
        )?;
        let [swaps_done, swaps_failed] = <[Series; 2]>::try_from(swaps).ok().expect("two results");
        let canary_flushes = by(
            "canary_flushes_total",
            "Flushes handed to a new version on trial (wasm_canary), by result (as flushes_total counts them).",
            "result",
            &FlushResult::ALL.map(FlushResult::as_str),
        )?;
        let canary_rollouts = by(
            "canary_rollouts_total",
            "New versions put on trial beside the serving one (started), and how their trials ended: promoted, or \
             rolled_back (worse than the serving version; refused until the guest changes again).",
            "outcome",
            &["started", "promoted", "rolled_back"],
        )?;
        let http_connections = by(
            "http_requests_total",
            "HTTP requests of the guests by connection: new (a connection made for it, TCP and TLS) or reused (on a \
             kept-alive one, wasm_http_keepalive).",
            "connection",
            &["new", "reused"],
        )?;
        let descriptor_refusals = by(
            "descriptor_refusals_total",
            "Files, sockets and HTTP connections the guests were refused because the output's guests held \
             wasm_max_descriptors already, by kind (file, socket, connection).",
            "kind",
            &DescriptorKind::ALL.map(DescriptorKind::as_str),
        )?;
        let destinations = DestinationMetrics {
            requests: ctx.create(
                Kind::Counter,
                "http_destination_requests_total",
                "HTTP requests of the guests by destination (scheme://host:port; past 32 destinations, other) and \
                 result (2xx, 3xx, 4xx, 5xx: the response's status; failed: no response; denied: refused by \
                 wasm_allow_net before any connection).",
                &["name", "destination", "result"],
                None,
            )?,
            seconds: ctx.create(
                Kind::Counter,
                "http_destination_seconds_total",
                "Seconds from the guests' HTTP requests to their responses' heads (or failures), by destination: \
                 divided by the requests, the mean latency of each.",
                &["name", "destination"],
                None,
            )?,
            series: Mutex::default(),
        };
        let limit = gauge("memory_limit_bytes", "Linear memory one guest instance may use (wasm_memory_limit).")?;
        limit.set(memory_limit as f64);
        let component = ctx.create(
            Kind::Gauge,
            "component_info",
            "The guest component being served (1) and the ones served before (0), by SHA-256 digest.",
            &["name", "digest"],
            None,
        )?;
        Ok(Self {
            name: name.to_owned(),
            flushes,
            duration,
            faults,
            starts: counter("instance_starts_total", "Guest instances started (instantiated).")?,
            flush_path_starts: counter(
                "instance_flush_path_starts_total",
                "Guest instances a flush had to start itself (no idle instance, no warm spare ready).",
            )?,
            stalls: counter(
                "engine_stalls_total",
                "Flushes that held the agent's engine thread for more than 100 ms (workers 0).",
            )?,
            http_connections,
            descriptor_refusals,
            destinations,
            descriptors: gauge(
                "descriptors",
                "Files, sockets and HTTP connections the output's guests hold open (at most wasm_max_descriptors).",
            )?,
            idle_calls: counter(
                "idle_calls_total",
                "Calls of the guest's idle export: time for its background work while no flush runs.",
            )?,
            recycles: counter(
                "instance_recycles_total",
                "Guest instances retired between flushes because their memory passed 3/4 of wasm_memory_limit.",
            )?,
            swaps_done,
            swaps_failed,
            canary_flushes,
            canary_rollouts,
            canary_active: gauge("canary_active", "1 while a new version is on trial beside the serving one.")?,
            instances: gauge("instances", "Live guest instances.")?,
            memory: gauge("memory_bytes", "Linear memory of all live guest instances, in bytes.")?,
            log_dropped: counter(
                "log_lines_dropped_total",
                "Guest log lines dropped because a call wrote more than its budget.",
            )?,
            records: counter("records_total", "Records handed to the guest's flush (retries count again).")?,
            bytes: counter("bytes_total", "Chunk bytes handed to the guest's flush, as the agent delivered them.")?,
            component: Mutex::new(Component { metric: component, current: None, pending: None }),
            guests: Arc::new(GuestExport::new(ctx, name, logger)?),
        })
    }

    fn component(&self) -> std::sync::MutexGuard<'_, Component> {
        self.component.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn serve(&self, digest: &str) {
        let mut component = self.component();
        let Ok(series) = component.metric.series(&[&self.name, digest]) else { return };
        if let Some(previous) = component.current.take() {
            previous.set(0.0);
        }
        series.set(1.0);
        component.current = Some(series);
    }
}
