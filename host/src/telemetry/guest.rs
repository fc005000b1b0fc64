//! The guests' own metrics on the agent's endpoint: each metric the registry
//! ([`crate::sandbox::metrics`]) accepted becomes `fluentbit_wasm_guest_<name>` (counters get
//! `_total` unless the name has it) in the output instance's cmetrics context, with the
//! instance's `name` label before the guest's labels.
//!
//! Metrics belong to the output instance: a guest instance that starts later (after a fault,
//! a recycle, a hot swap) and declares the same metric gets the same id from the registry, so
//! its updates continue the same series.
//!
//! Where a metric is created matters. cmetrics links a new metric into the context before it
//! initialises it, and the agent's engine thread reads the context every second to export it,
//! so a metric is only created on the engine thread: at the end of the output's init (every
//! metric the first guest instance declared in its `init`), and after each flush that runs on
//! the engine thread (`workers 0`). Until then its updates are kept here and replayed when it
//! is created. Once created, updates go straight to cmetrics from any thread, as the agent's
//! own do. With `workers` > 0 a metric first declared after init is never created; the host
//! says so once per metric.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::Result;

use crate::agent::cmetrics::{Context, DEFAULT_BUCKET_BOUNDS, Kind, Metric, Series};
use crate::agent::logger::Logger;
use crate::sandbox::metrics::{MetricKind, MetricSpec};
use crate::sandbox::metrics::{MetricSink, Update};

/// The export of one output instance's guest metrics.
pub struct GuestExport {
    ctx: Context,
    name: String,
    logger: Logger,
    /// By registry id.
    families: Mutex<Vec<Family>>,
    refused: Series,
    series: Series,
}

enum Family {
    /// Declared, not created in the agent's context yet; updates are kept.
    Pending {
        spec: MetricSpec,
        values: HashMap<Vec<String>, Value>,
        warned: bool,
    },
    Created {
        metric: Arc<Metric>,
        series: HashMap<Vec<String>, Arc<Series>>,
    },
    /// The agent refused to create it (said once, at warn).
    Failed,
}

/// A series' value while its metric waits to be created.
enum Value {
    Scalar(f64),
    /// Cumulative bucket counts (one per bound, then +Inf), as cmetrics keeps them.
    Histogram {
        buckets: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

impl GuestExport {
    /// Creates the export's own bookkeeping metrics. Call on the engine thread (init).
    pub fn new(ctx: Context, name: &str, logger: &Logger) -> Result<Self> {
        let counter = ctx.create(
            Kind::Counter,
            "metrics_refused_total",
            "Guest metric declarations and updates the host refused (invalid, or past a wasm_metrics_* cap).",
            &["name"],
            None,
        )?;
        let gauge = ctx.create(
            Kind::Gauge,
            "metrics_series",
            "Series of guest metrics this output holds (capped by wasm_metrics_max_series).",
            &["name"],
            None,
        )?;
        let (refused, series) = (counter.series(&[name])?, gauge.series(&[name])?);
        refused.set(0.0);
        series.set(0.0);
        Ok(Self { ctx, name: name.to_owned(), logger: logger.clone(), families: Mutex::default(), refused, series })
    }

    fn families(&self) -> MutexGuard<'_, Vec<Family>> {
        self.families.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates the metrics declared since the last call, if `on_engine`; otherwise says once
    /// per metric why it is not exported yet. Call on an agent thread.
    pub fn sync(&self, on_engine: bool) {
        let mut families = self.families();
        for family in families.iter_mut() {
            let Family::Pending { spec, values, warned } = family else { continue };
            if !on_engine {
                if !*warned {
                    *warned = true;
                    self.logger.warn(&format!(
                        "guest metric '{}' is not on the agent's metrics endpoint: it was first declared after the \
                         output started, and with `workers` > 0 no flush runs on the agent's engine thread, the only \
                         one where metrics can be added; declare every metric in init",
                        spec.name
                    ));
                }
                continue;
            }
            *family = match self.create(spec, std::mem::take(values)) {
                Ok(created) => created,
                Err(err) => {
                    self.logger.warn(&format!("failed to export guest metric '{}': {err:#}", spec.name));
                    Family::Failed
                }
            };
        }
    }

    fn create(&self, spec: &MetricSpec, values: HashMap<Vec<String>, Value>) -> Result<Family> {
        let (kind, suffix) = match spec.kind {
            MetricKind::Counter if !spec.name.ends_with("_total") => (Kind::Counter, "_total"),
            MetricKind::Counter => (Kind::Counter, ""),
            MetricKind::Gauge => (Kind::Gauge, ""),
            MetricKind::Histogram => (Kind::Histogram, ""),
        };
        let name = format!("guest_{}{suffix}", spec.name);
        // cmetrics refuses an empty help; the guest's text is data, never a format.
        let help = match spec.help.trim() {
            "" => format!("Guest metric {}.", spec.name),
            help => help.replace(['\0', '\n'], " "),
        };
        let labels: Vec<&str> = std::iter::once("name").chain(spec.label_names.iter().map(String::as_str)).collect();
        let buckets = (kind == Kind::Histogram && !spec.buckets.is_empty()).then_some(&spec.buckets[..]);
        let metric = self.ctx.create(kind, &name, &help, &labels, buckets)?;
        let mut series = HashMap::with_capacity(values.len());
        for (labels, value) in values {
            let handle = self.series_of(&metric, &labels)?;
            match value {
                Value::Scalar(v) => handle.set(v),
                Value::Histogram { mut buckets, sum, count } => handle.set_histogram(&mut buckets, sum, count),
            }
            series.insert(labels, Arc::new(handle));
        }
        Ok(Family::Created { metric, series })
    }

    fn series_of(&self, metric: &Arc<Metric>, labels: &[String]) -> Result<Series> {
        // A NUL is valid in a WIT string but not in a C one.
        let values: Vec<String> =
            std::iter::once(self.name.clone()).chain(labels.iter().map(|v| v.replace('\0', "\\0"))).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        metric.series(&values)
    }
}

impl Value {
    fn new(spec: &MetricSpec) -> Self {
        match spec.kind {
            MetricKind::Histogram => {
                let bounds = if spec.buckets.is_empty() { DEFAULT_BUCKET_BOUNDS.len() } else { spec.buckets.len() };
                Value::Histogram { buckets: vec![0; bounds + 1], sum: 0.0, count: 0 }
            }
            MetricKind::Counter | MetricKind::Gauge => Value::Scalar(0.0),
        }
    }

    fn apply(&mut self, spec: &MetricSpec, update: Update) {
        match (self, update) {
            (Value::Scalar(x), Update::Add(v)) => *x += v,
            (Value::Scalar(x), Update::Set(v)) => *x = v,
            (Value::Histogram { buckets, sum, count }, Update::Observe(v)) => {
                let bounds = if spec.buckets.is_empty() { &DEFAULT_BUCKET_BOUNDS[..] } else { &spec.buckets[..] };
                // Cumulative, as cmetrics counts: every bucket whose bound is >= v, and +Inf.
                for (bucket, bound) in buckets.iter_mut().zip(bounds.iter().chain([f64::INFINITY].iter())) {
                    if v <= *bound {
                        *bucket += 1;
                    }
                }
                *sum += v;
                *count += 1;
            }
            // The registry only passes updates that fit the kind.
            _ => {}
        }
    }
}

impl MetricSink for Arc<GuestExport> {
    fn declare(&self, id: u32, spec: &MetricSpec) -> Result<()> {
        let mut families = self.families();
        // The registry numbers metrics 0, 1, 2... in declaration order, as they arrive here.
        while families.len() < id as usize {
            families.push(Family::Failed);
        }
        families.push(Family::Pending { spec: spec.clone(), values: HashMap::new(), warned: false });
        Ok(())
    }

    fn update(&self, id: u32, labels: &[String], update: Update) {
        let mut families = self.families();
        let series = match families.get_mut(id as usize) {
            Some(Family::Pending { spec, values, .. }) => {
                if !values.contains_key(labels) {
                    values.insert(labels.to_vec(), Value::new(spec));
                    self.series.inc();
                }
                if let Some(value) = values.get_mut(labels) {
                    value.apply(spec, update);
                }
                return;
            }
            Some(Family::Created { metric, series }) => match series.get(labels) {
                Some(handle) => handle.clone(),
                None => {
                    let Ok(handle) = self.series_of(metric, labels) else { return };
                    let handle = Arc::new(handle);
                    series.insert(labels.to_vec(), handle.clone());
                    self.series.inc();
                    handle
                }
            },
            Some(Family::Failed) | None => return,
        };
        drop(families);
        match update {
            Update::Add(v) => series.add(v),
            Update::Set(v) => series.set(v),
            Update::Observe(v) => series.observe(v),
        }
    }

    fn refused(&self) {
        self.refused.inc();
    }
}
