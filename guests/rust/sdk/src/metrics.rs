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

fn info(name: &str, help: &str, labels: &[&str]) -> wit::MetricInfo {
    wit::MetricInfo {
        name: name.to_owned(),
        help: help.to_owned(),
        label_names: labels.iter().map(|label| (*label).to_owned()).collect(),
    }
}

fn values(labels: &[&str]) -> Vec<String> {
    labels.iter().map(|value| (*value).to_owned()).collect()
}

/// A value that only goes up; exported with `_total` appended.
#[derive(Debug)]
pub struct Counter(wit::Counter);

impl Counter {
    /// Declares the counter `name` with these label names (or finds it, if declared before).
    pub fn declare(name: &str, help: &str, labels: &[&str]) -> Result<Self, String> {
        wit::Counter::declare(&info(name, help, labels)).map(Self)
    }

    /// Adds `value` (>= 0) to the series with these label values.
    pub fn add(&self, labels: &[&str], value: f64) -> Result<(), String> {
        self.0.add(&values(labels), value)
    }

    /// Adds one.
    pub fn inc(&self, labels: &[&str]) -> Result<(), String> {
        self.add(labels, 1.0)
    }
}

/// A value that goes up and down.
#[derive(Debug)]
pub struct Gauge(wit::Gauge);

impl Gauge {
    /// Declares the gauge `name` with these label names (or finds it, if declared before).
    pub fn declare(name: &str, help: &str, labels: &[&str]) -> Result<Self, String> {
        wit::Gauge::declare(&info(name, help, labels)).map(Self)
    }

    /// Sets the series with these label values to `value`.
    pub fn set(&self, labels: &[&str], value: f64) -> Result<(), String> {
        self.0.set(&values(labels), value)
    }

    /// Adds `value` (of either sign) to the series with these label values.
    pub fn add(&self, labels: &[&str], value: f64) -> Result<(), String> {
        self.0.add(&values(labels), value)
    }
}

/// A distribution of observations in buckets.
#[derive(Debug)]
pub struct Histogram(wit::Histogram);

impl Histogram {
    /// Declares the histogram `name` with these label names and bucket upper bounds (strictly
    /// increasing; empty for the agent's defaults).
    pub fn declare(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> Result<Self, String> {
        wit::Histogram::declare(&info(name, help, labels), buckets).map(Self)
    }

    /// Records one observation in the series with these label values.
    pub fn observe(&self, labels: &[&str], value: f64) -> Result<(), String> {
        self.0.observe(&values(labels), value)
    }
}
