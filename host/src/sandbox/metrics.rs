//! Metrics a guest declares (WIT `metrics`): the sandbox side.
//!
//! One registry per output instance, shared by all its guest instances and versions, so a
//! metric outlives the instance that declared it. Every declaration and update is checked
//! here against names and caps before anything reaches the agent: a guest cannot grow the
//! agent's memory without bound through its metrics.
//!
//! Two faces on the same registry: 0.3.0's resources (`counter`, `gauge`, `histogram`, whose
//! handles are the registry's metric numbers) and 0.2.0's numbered metrics.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use wasmtime::component::{HasSelf, Linker, Resource};

use crate::bindings::metrics::{self, Counter, Gauge, Histogram, MetricInfo};
use crate::bindings::v0_2_0;
use crate::log::{Level, LogSink};

/// What a metric measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// A metric's description, whichever WIT version declared it.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSpec {
    pub name: String,
    pub help: String,
    pub kind: MetricKind,
    pub label_names: Vec<String>,
    /// A histogram's upper bounds (empty: the agent's defaults).
    pub buckets: Vec<f64>,
}

impl MetricSpec {
    fn of(kind: MetricKind, info: MetricInfo, buckets: Vec<f64>) -> Self {
        Self { name: info.name, help: info.help, kind, label_names: info.label_names, buckets }
    }
}

impl From<v0_2_0::metrics::MetricSpec> for MetricSpec {
    fn from(spec: v0_2_0::metrics::MetricSpec) -> Self {
        let kind = match spec.kind {
            v0_2_0::metrics::MetricKind::Counter => MetricKind::Counter,
            v0_2_0::metrics::MetricKind::Gauge => MetricKind::Gauge,
            v0_2_0::metrics::MetricKind::Histogram => MetricKind::Histogram,
        };
        Self { name: spec.name, help: spec.help, kind, label_names: spec.label_names, buckets: spec.buckets }
    }
}

/// Longest metric or label name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Most label names one metric may have.
pub const MAX_LABELS: usize = 8;
/// Most buckets one histogram may have.
pub const MAX_BUCKETS: usize = 32;
/// Refusals are logged at most this often per output instance.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The operator's caps (`wasm_metrics_max`, `wasm_metrics_max_series`,
/// `wasm_metrics_max_label_len`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricLimits {
    /// Metrics one output instance's guests may declare.
    pub max_metrics: usize,
    /// Series (distinct label values) over all of them.
    pub max_series: usize,
    /// Bytes of one label value.
    pub max_label_len: usize,
}

/// An update a guest asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Update {
    Add(f64),
    Set(f64),
    Observe(f64),
}

/// A declared metric.
#[derive(Debug)]
pub struct Declared {
    pub spec: MetricSpec,
    series: HashSet<Vec<String>>,
}

/// Where accepted declarations and updates go (the agent's cmetrics), if anywhere.
pub trait MetricSink: Send + Sync {
    /// A new metric, numbered `id`.
    fn declare(&self, id: u32, spec: &MetricSpec) -> Result<()>;
    /// An accepted update of metric `id` for the series with `labels`.
    fn update(&self, id: u32, labels: &[String], update: Update);
    /// A declaration or update was refused.
    fn refused(&self) {}
}

#[derive(Default)]
struct MetricTable {
    metrics: Vec<Declared>,
    by_name: HashMap<String, u32>,
    series: usize,
    refused: u64,
    last_warned: Option<Instant>,
}

/// The guest metrics of one output instance.
pub struct GuestMetrics {
    limits: MetricLimits,
    sink: Option<Box<dyn MetricSink>>,
    registry: Mutex<MetricTable>,
}

impl GuestMetrics {
    pub fn new(limits: MetricLimits, sink: Option<Box<dyn MetricSink>>) -> Self {
        Self { limits, sink, registry: Mutex::default() }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, MetricTable> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Declares `spec`, or finds the metric already declared with the same spec.
    pub fn declare(&self, spec: MetricSpec) -> Result<u32> {
        check_spec(&spec)?;
        let mut registry = self.registry();
        if let Some(&id) = registry.by_name.get(&spec.name) {
            let existing = &registry.metrics[id as usize].spec;
            ensure!(
                same_shape(existing, &spec),
                "metric '{}' is already declared with another kind, labels or buckets",
                spec.name
            );
            return Ok(id);
        }
        ensure!(
            registry.metrics.len() < self.limits.max_metrics,
            "metric '{}' refused: this output already has {} metrics (wasm_metrics_max)",
            spec.name,
            self.limits.max_metrics
        );
        let id = u32::try_from(registry.metrics.len()).expect("at most max_metrics");
        if let Some(sink) = &self.sink {
            sink.declare(id, &spec)?;
        }
        registry.by_name.insert(spec.name.clone(), id);
        registry.metrics.push(Declared { spec, series: HashSet::new() });
        Ok(id)
    }

    /// Applies one update; an error says what was refused.
    pub fn update(&self, id: u32, labels: Vec<String>, update: Update) -> Result<()> {
        let mut registry = self.registry();
        let registry = &mut *registry;
        let Some(metric) = registry.metrics.get_mut(id as usize) else {
            bail!("metric {id} was never declared");
        };
        let spec = &metric.spec;
        match (spec.kind, update) {
            (MetricKind::Counter, Update::Add(value)) => {
                ensure!(value >= 0.0, "counter '{}' can only go up; add({value}) refused", spec.name)
            }
            (MetricKind::Gauge, Update::Add(_) | Update::Set(_)) | (MetricKind::Histogram, Update::Observe(_)) => {}
            (kind, update) => bail!("{update:?} does not apply to {kind:?} '{}'", spec.name),
        }
        ensure!(
            labels.len() == spec.label_names.len(),
            "metric '{}' has {} labels, the update gave {} values",
            spec.name,
            spec.label_names.len(),
            labels.len()
        );
        if let Some(value) = labels.iter().find(|value| value.len() > self.limits.max_label_len) {
            bail!(
                "label value of {} bytes on metric '{}' refused: longer than {} (wasm_metrics_max_label_len)",
                value.len(),
                spec.name,
                self.limits.max_label_len
            );
        }
        if !metric.series.contains(&labels) {
            ensure!(
                registry.series < self.limits.max_series,
                "new series of metric '{}' refused: this output already has {} series (wasm_metrics_max_series)",
                spec.name,
                self.limits.max_series
            );
            registry.series += 1;
            metric.series.insert(labels.clone());
        }
        if let Some(sink) = &self.sink {
            sink.update(id, &labels, update);
        }
        Ok(())
    }

    /// Counts a refusal; returns the line to log at warn, at most once per
    /// `REFUSAL_LOG_INTERVAL`, with the count of the refusals not logged since.
    pub fn refused(&self, reason: &str) -> Option<String> {
        if let Some(sink) = &self.sink {
            sink.refused();
        }
        let mut registry = self.registry();
        registry.refused += 1;
        let now = Instant::now();
        if registry.last_warned.is_some_and(|at| now.duration_since(at) < REFUSAL_LOG_INTERVAL) {
            return None;
        }
        let earlier = registry.refused - 1;
        registry.refused = 0;
        registry.last_warned = Some(now);
        Some(if earlier > 0 {
            format!("guest metric refused: {reason} ({earlier} more refused since the last report)")
        } else {
            format!("guest metric refused: {reason}")
        })
    }

    /// How many series exist, over all metrics.
    #[cfg(test)]
    pub fn series(&self) -> usize {
        self.registry().series
    }
}

/// A guest instance's side of `metrics`: the output instance's registry, and where refusals
/// are logged.
pub struct Metrics {
    registry: Arc<GuestMetrics>,
    log: LogSink,
}

impl Metrics {
    pub fn new(registry: Arc<GuestMetrics>, log: LogSink) -> Self {
        Self { registry, log }
    }

    /// A refused call: counted, logged at warn now and then, and the reason handed back.
    fn refused(&self, err: anyhow::Error) -> String {
        let reason = format!("{err:#}");
        if let Some(line) = self.registry.refused(&reason) {
            // Rate-limited by the registry already, so outside the call's log budget.
            self.log.write_always(Level::Warn, line);
        }
        reason
    }

    fn update(&self, metric: u32, labels: Vec<String>, update: Update) -> Result<(), String> {
        self.registry.update(metric, labels, update).map_err(|err| self.refused(err))
    }
}

/// Links `metrics` of every version that has it (0.2.0 on); `get` finds an instance's
/// [`Metrics`].
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> &mut Metrics) -> Result<()> {
    metrics::add_to_linker::<T, HasSelf<Metrics>>(linker, get)?;
    v0_2_0::metrics::add_to_linker::<T, HasSelf<Metrics>>(linker, get)?;
    Ok(())
}

impl Metrics {
    /// Declares a metric of 0.3.0 and hands out its handle: the registry's number of it.
    fn declare_handle<R: 'static>(&mut self, spec: MetricSpec) -> Result<Resource<R>, String> {
        self.registry.declare(spec).map(Resource::new_own).map_err(|err| self.refused(err))
    }
}

impl metrics::Host for Metrics {}

impl metrics::HostCounter for Metrics {
    fn declare(&mut self, info: MetricInfo) -> Result<Resource<Counter>, String> {
        self.declare_handle(MetricSpec::of(MetricKind::Counter, info, Vec::new()))
    }

    fn add(&mut self, counter: Resource<Counter>, label_values: Vec<String>, value: f64) -> Result<(), String> {
        self.update(counter.rep(), label_values, Update::Add(value))
    }

    // A handle is only a number: dropping it leaves the metric (it is the output instance's).
    fn drop(&mut self, _counter: Resource<Counter>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl metrics::HostGauge for Metrics {
    fn declare(&mut self, info: MetricInfo) -> Result<Resource<Gauge>, String> {
        self.declare_handle(MetricSpec::of(MetricKind::Gauge, info, Vec::new()))
    }

    fn set(&mut self, gauge: Resource<Gauge>, label_values: Vec<String>, value: f64) -> Result<(), String> {
        self.update(gauge.rep(), label_values, Update::Set(value))
    }

    fn add(&mut self, gauge: Resource<Gauge>, label_values: Vec<String>, value: f64) -> Result<(), String> {
        self.update(gauge.rep(), label_values, Update::Add(value))
    }

    fn drop(&mut self, _gauge: Resource<Gauge>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl metrics::HostHistogram for Metrics {
    fn declare(&mut self, info: MetricInfo, buckets: Vec<f64>) -> Result<Resource<Histogram>, String> {
        self.declare_handle(MetricSpec::of(MetricKind::Histogram, info, buckets))
    }

    fn observe(&mut self, histogram: Resource<Histogram>, label_values: Vec<String>, value: f64) -> Result<(), String> {
        self.update(histogram.rep(), label_values, Update::Observe(value))
    }

    fn drop(&mut self, _histogram: Resource<Histogram>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl v0_2_0::metrics::Host for Metrics {
    fn declare(&mut self, spec: v0_2_0::metrics::MetricSpec) -> Result<u32, String> {
        self.registry.declare(spec.into()).map_err(|err| self.refused(err))
    }

    fn add(&mut self, metric: u32, label_values: Vec<String>, value: f64) -> Result<(), String> {
        self.update(metric, label_values, Update::Add(value))
    }

    fn set(&mut self, metric: u32, label_values: Vec<String>, value: f64) -> Result<(), String> {
        self.update(metric, label_values, Update::Set(value))
    }

    fn observe(&mut self, metric: u32, label_values: Vec<String>, value: f64) -> Result<(), String> {
        self.update(metric, label_values, Update::Observe(value))
    }
}

fn same_shape(a: &MetricSpec, b: &MetricSpec) -> bool {
    a.kind == b.kind && a.label_names == b.label_names && (a.kind != MetricKind::Histogram || a.buckets == b.buckets)
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, at most `MAX_NAME_LEN` bytes.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    ensure!(valid, "{what} {name:?} refused: it must match [a-zA-Z_][a-zA-Z0-9_]*");
    ensure!(name.len() <= MAX_NAME_LEN, "{what} {name:?} refused: longer than {MAX_NAME_LEN} bytes");
    Ok(())
}

fn check_spec(spec: &MetricSpec) -> Result<()> {
    check_name("metric name", &spec.name)?;
    ensure!(
        spec.label_names.len() <= MAX_LABELS,
        "metric '{}' refused: {} label names, at most {MAX_LABELS}",
        spec.name,
        spec.label_names.len()
    );
    let mut seen = HashSet::new();
    for label in &spec.label_names {
        check_name("label name", label)?;
        ensure!(label != "name", "label 'name' of metric '{}' refused: the host adds it", spec.name);
        ensure!(seen.insert(label), "metric '{}' refused: label '{label}' appears twice", spec.name);
    }
    if spec.kind == MetricKind::Histogram {
        ensure!(
            spec.buckets.len() <= MAX_BUCKETS,
            "histogram '{}' refused: {} buckets, at most {MAX_BUCKETS}",
            spec.name,
            spec.buckets.len()
        );
        ensure!(
            spec.buckets.iter().all(|b| b.is_finite()) && spec.buckets.windows(2).all(|w| w[0] < w[1]),
            "histogram '{}' refused: buckets must be finite and strictly increasing",
            spec.name
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, kind: MetricKind, labels: &[&str]) -> MetricSpec {
        MetricSpec {
            name: name.into(),
            help: "help".into(),
            kind,
            label_names: labels.iter().map(|l| (*l).to_owned()).collect(),
            buckets: vec![],
        }
    }

    #[test]
    fn a_name_declared_again_with_the_same_shape_is_the_same_metric() {
        let metrics = GuestMetrics::new(MetricLimits { max_metrics: 64, max_series: 1000, max_label_len: 128 }, None);
        let a = metrics.declare(spec("requests", MetricKind::Counter, &["code"])).unwrap();
        let b = metrics.declare(spec("requests", MetricKind::Counter, &["code"])).unwrap();
        assert_eq!(a, b, "expected the same id for the same spec");
        let err = metrics.declare(spec("requests", MetricKind::Gauge, &["code"])).unwrap_err();
        assert!(err.to_string().contains("already declared"), "{err}");
    }

    #[test]
    fn names_and_shapes_are_checked() {
        let metrics = GuestMetrics::new(MetricLimits { max_metrics: 64, max_series: 1000, max_label_len: 128 }, None);
        for (bad, expected) in [
            (spec("9lives", MetricKind::Counter, &[]), "must match"),
            (spec("a-b", MetricKind::Counter, &[]), "must match"),
            (spec(&"x".repeat(65), MetricKind::Counter, &[]), "longer than 64"),
            (spec("m", MetricKind::Counter, &["name"]), "the host adds it"),
            (spec("m", MetricKind::Counter, &["a", "a"]), "appears twice"),
            (spec("m", MetricKind::Counter, &["a", "b", "c", "d", "e", "f", "g", "h", "i"]), "at most 8"),
        ] {
            let err = metrics.declare(bad).unwrap_err().to_string();
            assert!(err.contains(expected), "expected '{expected}' in {err:?}");
        }
        let mut histogram = spec("h", MetricKind::Histogram, &[]);
        histogram.buckets = vec![1.0, 1.0];
        assert!(metrics.declare(histogram).unwrap_err().to_string().contains("strictly increasing"));
    }

    #[test]
    fn caps_refuse_metrics_series_and_long_labels() {
        let limits = MetricLimits { max_metrics: 2, max_series: 3, max_label_len: 4 };
        let metrics = GuestMetrics::new(limits, None);
        let c = metrics.declare(spec("c", MetricKind::Counter, &["k"])).unwrap();
        metrics.declare(spec("g", MetricKind::Gauge, &[])).unwrap();
        let err = metrics.declare(spec("third", MetricKind::Gauge, &[])).unwrap_err().to_string();
        assert!(err.contains("wasm_metrics_max"), "{err}");

        for value in ["a", "b", "c", "a", "b"] {
            metrics.update(c, vec![value.into()], Update::Add(1.0)).unwrap();
        }
        assert_eq!(metrics.series(), 3, "repeated label values reuse their series");
        let err = metrics.update(c, vec!["d".into()], Update::Add(1.0)).unwrap_err().to_string();
        assert!(err.contains("wasm_metrics_max_series"), "{err}");
        let err = metrics.update(c, vec!["toolong".into()], Update::Add(1.0)).unwrap_err().to_string();
        assert!(err.contains("wasm_metrics_max_label_len"), "{err}");
        assert_eq!(metrics.series(), 3);
    }

    #[test]
    fn updates_must_fit_the_kind() {
        let metrics = GuestMetrics::new(MetricLimits { max_metrics: 64, max_series: 1000, max_label_len: 128 }, None);
        let c = metrics.declare(spec("c", MetricKind::Counter, &[])).unwrap();
        assert!(metrics.update(c, vec![], Update::Add(-1.0)).unwrap_err().to_string().contains("only go up"));
        assert!(metrics.update(c, vec![], Update::Set(1.0)).is_err(), "set applies to gauges only");
        assert!(metrics.update(c, vec![], Update::Observe(1.0)).is_err(), "observe applies to histograms only");
        assert!(metrics.update(7, vec![], Update::Add(1.0)).is_err(), "an undeclared id is refused");
    }

    #[test]
    fn refusals_are_logged_at_most_once_per_interval() {
        let metrics = GuestMetrics::new(MetricLimits { max_metrics: 64, max_series: 1000, max_label_len: 128 }, None);
        assert!(metrics.refused("one").is_some());
        assert!(metrics.refused("two").is_none());
        assert!(metrics.refused("three").is_none());
    }
}
