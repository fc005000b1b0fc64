//! A safe face on the agent's cmetrics context of one output instance.
//!
//! Every metric this plugin publishes is named `fluentbit_wasm_<name>`, lives in the context
//! the agent made for the output instance (`output_get_cmt_instance`), and is exported by the
//! agent with its own per-output metrics.
//!
//! Thread safety, as cmetrics provides it: updating a series takes the metric's map lock and
//! changes the value atomically, so any thread may update; creating a metric links it into the
//! context's lists without a lock, so metrics are only created on the agent's threads, during
//! the agent's calls (the agent's own threads create theirs the same way).

use std::ffi::{CString, c_char, c_int, c_void};
use std::ptr::NonNull;
use std::sync::Arc;

use anyhow::{Result, bail};

use crate::agent::symbols::Cmetrics;

/// Namespace and subsystem of every metric: `fluentbit_wasm_...`.
const NAMESPACE: &std::ffi::CStr = c"fluentbit";
const SUBSYSTEM: &std::ffi::CStr = c"wasm";
/// Upper bounds of cmetrics' default buckets (`cmt_histogram_buckets_default_create`):
/// 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10.
pub const DEFAULT_BUCKET_BOUNDS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const DEFAULT_BUCKETS: usize = DEFAULT_BUCKET_BOUNDS.len();

/// The agent's cmetrics context of one output instance.
#[derive(Clone, Copy)]
pub struct Context {
    fns: Cmetrics,
    ptr: NonNull<c_void>,
}

// SAFETY: the context is the agent's `ins->cmt`, alive from before FLBPluginInit until after
// the instance's exit call, which joins every plugin thread; cmetrics makes series updates
// thread-safe, and metrics are only created on agent threads (module docs).
unsafe impl Send for Context {}
// SAFETY: as above.
unsafe impl Sync for Context {}

/// What a metric measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric (all its series) in a context.
pub struct Metric {
    ctx: Context,
    kind: Kind,
    ptr: NonNull<c_void>,
    labels: usize,
    /// A histogram's number of upper bounds (without +Inf).
    bounds: usize,
}

// SAFETY: see `Context`.
unsafe impl Send for Metric {}
// SAFETY: see `Context`.
unsafe impl Sync for Metric {}

fn c_string(what: &str, s: &str) -> Result<CString> {
    match CString::new(s) {
        Ok(s) => Ok(s),
        Err(_) => bail!("{what} {s:?} contains a NUL byte"),
    }
}

impl Context {
    /// # Safety
    /// `ptr` must be the cmetrics context the agent made for the output instance, and outlive
    /// every value made from this one; `fns` must be the agent's own cmetrics functions.
    pub unsafe fn new(fns: Cmetrics, ptr: NonNull<c_void>) -> Self {
        Self { fns, ptr }
    }

    /// Nanoseconds since the epoch, by the agent's clock.
    fn now(&self) -> u64 {
        // SAFETY: `cfl_time_now` takes no argument and only reads the clock.
        unsafe { (self.fns.time_now)() }
    }

    /// Creates `fluentbit_wasm_<name>`. Call on an agent thread (module docs). `buckets` are
    /// a histogram's upper bounds (`None`: the agent's defaults).
    pub fn create(
        &self,
        kind: Kind,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: Option<&[f64]>,
    ) -> Result<Arc<Metric>> {
        let name = c_string("metric name", name)?;
        let help = c_string("metric help", help)?;
        let keys = labels.iter().map(|l| c_string("label name", l)).collect::<Result<Vec<_>>>()?;
        let mut key_ptrs: Vec<*mut c_char> = keys.iter().map(|k| k.as_ptr().cast_mut()).collect();
        let count = c_int::try_from(key_ptrs.len())?;
        let (ns, subsystem) = (NAMESPACE.as_ptr().cast_mut(), SUBSYSTEM.as_ptr().cast_mut());
        let (name_ptr, help_ptr, keys_ptr) =
            (name.as_ptr().cast_mut(), help.as_ptr().cast_mut(), key_ptrs.as_mut_ptr());
        let ptr = match kind {
            // SAFETY: NUL-terminated strings and an array of `count` of them, all alive for the
            // call; cmetrics copies what it keeps. `self.ptr` is the agent's context.
            Kind::Counter => unsafe {
                (self.fns.counter_create)(self.ptr.as_ptr(), ns, subsystem, name_ptr, help_ptr, count, keys_ptr)
            },
            // SAFETY: as above.
            Kind::Gauge => unsafe {
                (self.fns.gauge_create)(self.ptr.as_ptr(), ns, subsystem, name_ptr, help_ptr, count, keys_ptr)
            },
            Kind::Histogram => {
                let buckets = match buckets {
                    Some(bounds) => {
                        let mut bounds = bounds.to_vec();
                        // SAFETY: `bounds` holds `len` doubles for the call; they are copied.
                        unsafe { (self.fns.buckets_create_size)(bounds.as_mut_ptr(), bounds.len()) }
                    }
                    // SAFETY: no arguments.
                    None => unsafe { (self.fns.buckets_default_create)() },
                };
                if buckets.is_null() {
                    bail!("failed to create the buckets of metric '{}'", name.to_string_lossy());
                }
                // SAFETY: as for counters; the histogram takes ownership of `buckets`.
                unsafe {
                    (self.fns.histogram_create)(
                        self.ptr.as_ptr(),
                        ns,
                        subsystem,
                        name_ptr,
                        help_ptr,
                        buckets,
                        count,
                        keys_ptr,
                    )
                }
            }
        };
        let Some(ptr) = NonNull::new(ptr) else {
            bail!("the agent refused to create metric 'fluentbit_wasm_{}'", name.to_string_lossy());
        };
        let bounds = match kind {
            Kind::Histogram => buckets.map_or(DEFAULT_BUCKETS, <[f64]>::len),
            _ => 0,
        };
        Ok(Arc::new(Metric { ctx: *self, kind, ptr, labels: labels.len(), bounds }))
    }
}

impl Metric {
    /// The series with these label values (one per label name, in order).
    pub fn series(self: &Arc<Self>, values: &[&str]) -> Result<Series> {
        if values.len() != self.labels {
            bail!("{} label values for {} label names", values.len(), self.labels);
        }
        let values = values.iter().map(|v| c_string("label value", v)).collect::<Result<Box<[_]>>>()?;
        let ptrs = values.iter().map(|v| v.as_ptr().cast_mut()).collect();
        Ok(Series { metric: self.clone(), _values: values, ptrs })
    }
}

/// One series of a metric: its label values, ready to pass to cmetrics.
///
/// cmetrics creates a series at its first update; updates of an existing one are safe from
/// any thread (module docs).
pub struct Series {
    metric: Arc<Metric>,
    /// Owns the strings `ptrs` points into (their heap buffers never move).
    _values: Box<[CString]>,
    ptrs: Box<[*mut c_char]>,
}

// SAFETY: the pointers point into `_values`, owned by the series and never changed; cmetrics
// only reads them. See `Context` for the metric itself.
unsafe impl Send for Series {}
// SAFETY: as above.
unsafe impl Sync for Series {}

impl Series {
    fn with_value(&self, f: crate::agent::symbols::ValueFn, value: f64) {
        let ctx = &self.metric.ctx;
        let count = self.ptrs.len() as c_int;
        // SAFETY: `f` is one of the agent's update functions for this metric's kind; the
        // metric and the label array (of `count` NUL-terminated strings) outlive the call,
        // and cmetrics does not write through `char **`.
        // A failed update (cmetrics out of memory) leaves the value as it was: metrics are
        // best effort and never fail a flush.
        let _ = unsafe { f(self.metric.ptr.as_ptr(), ctx.now(), value, count, self.ptrs.as_ptr().cast_mut()) };
    }

    /// Adds `value` (a counter's must be >= 0; a gauge's may be negative).
    pub fn add(&self, value: f64) {
        let fns = &self.metric.ctx.fns;
        match self.metric.kind {
            Kind::Counter => self.with_value(fns.counter_add, value),
            Kind::Gauge if value < 0.0 => self.with_value(fns.gauge_sub, -value),
            Kind::Gauge => self.with_value(fns.gauge_add, value),
            Kind::Histogram => {}
        }
    }

    /// Adds one.
    pub fn inc(&self) {
        let fns = &self.metric.ctx.fns;
        let inc = match self.metric.kind {
            Kind::Counter => fns.counter_inc,
            Kind::Gauge => fns.gauge_inc,
            Kind::Histogram => return,
        };
        let count = self.ptrs.len() as c_int;
        // SAFETY: as in `with_value`.
        let _ = unsafe { inc(self.metric.ptr.as_ptr(), self.metric.ctx.now(), count, self.ptrs.as_ptr().cast_mut()) };
    }

    /// Sets the value (a counter's may only grow).
    pub fn set(&self, value: f64) {
        let fns = &self.metric.ctx.fns;
        match self.metric.kind {
            Kind::Counter => self.with_value(fns.counter_set, value),
            Kind::Gauge => self.with_value(fns.gauge_set, value),
            Kind::Histogram => {}
        }
    }

    /// Sets a histogram's cumulative bucket counts (one per upper bound, then +Inf), sum and
    /// count; `buckets` must have one more entry than the histogram has bounds.
    pub fn set_histogram(&self, buckets: &mut [u64], sum: f64, count: u64) {
        if self.metric.kind != Kind::Histogram || buckets.len() != self.metric.bounds + 1 {
            return;
        }
        let ctx = &self.metric.ctx;
        let labels = self.ptrs.len() as c_int;
        // SAFETY: `buckets` holds the bound count + 1 entries cmetrics reads; labels as in
        // `with_value`.
        let _ = unsafe {
            (ctx.fns.histogram_set)(
                self.metric.ptr.as_ptr(),
                ctx.now(),
                buckets.as_mut_ptr(),
                sum,
                count,
                labels,
                self.ptrs.as_ptr().cast_mut(),
            )
        };
    }

    /// Records one observation of a histogram.
    pub fn observe(&self, value: f64) {
        if self.metric.kind == Kind::Histogram {
            self.with_value(self.metric.ctx.fns.histogram_observe, value);
        }
    }
}
