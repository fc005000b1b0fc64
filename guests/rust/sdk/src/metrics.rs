//! Metrics on the agent's own endpoint: declare once (in `init`), update in `flush`.
//!
//! ```ignore
//! use out_wasm_guest::metrics::Counter;
//!
//! let sent = Counter::declare("records_sent", "records delivered to the endpoint", &["status"])?;
//! sent.add(&["ok"], 256.0);
//! ```
//!
//! The host exports each as `fluentbit_wasm_guest_<name>` with the output's `name` label first.
//! A metric belongs to the output instance: every guest instance that declares the same name
//! and shape shares it, and its values survive faults, recycles and hot swaps. Updates the host
//! refuses (a cap reached, a label value too long) return the reason; most guests ignore it,
//! since the host already counts and logs refusals.

use crate::bindings::out_wasm::output::metrics as wit;
pub use crate::bindings::out_wasm::output::metrics::MetricKind;

fn declare(name: &str, help: &str, kind: MetricKind, labels: &[&str], buckets: &[f64]) -> Result<u32, String> {
    wit::declare(&wit::MetricSpec {
        name: name.to_owned(),
        help: help.to_owned(),
        kind,
        label_names: labels.iter().map(|label| (*label).to_owned()).collect(),
        buckets: buckets.to_vec(),
    })
}

fn values(labels: &[&str]) -> Vec<String> {
    labels.iter().map(|value| (*value).to_owned()).collect()
}

/// A value that only goes up; exported with `_total` appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter(u32);

impl Counter {
    /// Declares the counter `name` with these label names (or finds it, if declared before).
    pub fn declare(name: &str, help: &str, labels: &[&str]) -> Result<Self, String> {
        declare(name, help, MetricKind::Counter, labels, &[]).map(Self)
    }

    /// Adds `value` (>= 0) to the series with these label values.
    pub fn add(&self, labels: &[&str], value: f64) -> Result<(), String> {
        wit::add(self.0, &values(labels), value)
    }

    /// Adds one.
    pub fn inc(&self, labels: &[&str]) -> Result<(), String> {
        self.add(labels, 1.0)
    }
}

/// A value that goes up and down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gauge(u32);

impl Gauge {
    /// Declares the gauge `name` with these label names (or finds it, if declared before).
    pub fn declare(name: &str, help: &str, labels: &[&str]) -> Result<Self, String> {
        declare(name, help, MetricKind::Gauge, labels, &[]).map(Self)
    }

    /// Sets the series with these label values to `value`.
    pub fn set(&self, labels: &[&str], value: f64) -> Result<(), String> {
        wit::set(self.0, &values(labels), value)
    }

    /// Adds `value` (of either sign) to the series with these label values.
    pub fn add(&self, labels: &[&str], value: f64) -> Result<(), String> {
        wit::add(self.0, &values(labels), value)
    }
}

/// A distribution of observations in buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Histogram(u32);

impl Histogram {
    /// Declares the histogram `name` with these label names and bucket upper bounds (strictly
    /// increasing; empty for the agent's defaults).
    pub fn declare(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> Result<Self, String> {
        declare(name, help, MetricKind::Histogram, labels, buckets).map(Self)
    }

    /// Records one observation in the series with these label values.
    pub fn observe(&self, labels: &[&str], value: f64) -> Result<(), String> {
        wit::observe(self.0, &values(labels), value)
    }
}
