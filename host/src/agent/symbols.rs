//! Functions of the agent's own executable that this plugin looks up by name.
//!
//! The proxy ABI's API table has no metrics calls and no instance name, but Fluent Bit is
//! linked with `--export-dynamic`: its cmetrics functions and `flb_output_name` are in the
//! process's dynamic symbol table, and `dlsym(RTLD_DEFAULT, ...)` finds them. An agent that
//! does not export one of them (an older build, or a loader) gets no metrics, or the plugin's
//! own instance names; nothing else changes.
//!
//! The pointer types mirror the C declarations of Fluent Bit 5.1.1
//! (`lib/cmetrics/include/cmetrics/cmt_{counter,gauge,histogram}.h`, `lib/cfl/include/cfl/cfl_time.h`,
//! `src/flb_output.c`). cmetrics takes `char *` and `char **` for strings it only reads.

use std::ffi::{CStr, c_char, c_int, c_void};

/// `cmt_counter_create` and `cmt_gauge_create`: (cmt, ns, subsystem, name, help, label_count, label_keys).
pub type CreateFn = unsafe extern "C" fn(
    cmt: *mut c_void,
    ns: *mut c_char,
    subsystem: *mut c_char,
    name: *mut c_char,
    help: *mut c_char,
    label_count: c_int,
    label_keys: *mut *mut c_char,
) -> *mut c_void;

/// `cmt_histogram_create`: as [`CreateFn`] with the buckets, which the histogram then owns.
pub type HistogramCreateFn = unsafe extern "C" fn(
    cmt: *mut c_void,
    ns: *mut c_char,
    subsystem: *mut c_char,
    name: *mut c_char,
    help: *mut c_char,
    buckets: *mut c_void,
    label_count: c_int,
    label_keys: *mut *mut c_char,
) -> *mut c_void;

/// `cmt_counter_inc`, `cmt_gauge_inc`: (metric, timestamp, labels_count, label_vals).
pub type IncFn =
    unsafe extern "C" fn(metric: *mut c_void, ts: u64, labels_count: c_int, vals: *mut *mut c_char) -> c_int;

/// `cmt_counter_add/set`, `cmt_gauge_set/add/sub`, `cmt_histogram_observe`:
/// (metric, timestamp, value, labels_count, label_vals).
pub type ValueFn = unsafe extern "C" fn(
    metric: *mut c_void,
    ts: u64,
    value: f64,
    labels_count: c_int,
    vals: *mut *mut c_char,
) -> c_int;

/// `cmt_histogram_set_default`: (histogram, timestamp, bucket counts (cumulative, one per
/// bound and +Inf), sum, count, labels_count, label_vals).
pub type HistogramSetFn = unsafe extern "C" fn(
    histogram: *mut c_void,
    ts: u64,
    buckets: *mut u64,
    sum: f64,
    count: u64,
    labels_count: c_int,
    vals: *mut *mut c_char,
) -> c_int;

/// `cmt_histogram_buckets_create_size`: copies `count` upper bounds.
pub type BucketsCreateFn = unsafe extern "C" fn(bounds: *mut f64, count: usize) -> *mut c_void;

/// `cmt_histogram_buckets_default_create`.
pub type BucketsDefaultFn = unsafe extern "C" fn() -> *mut c_void;

/// `cfl_time_now`: nanoseconds since the epoch, the timestamp cmetrics updates carry.
pub type TimeNowFn = unsafe extern "C" fn() -> u64;

/// `flb_output_name`: the instance's `alias`, or `<plugin>.<id>`; owned by the instance.
pub type OutputNameFn = unsafe extern "C" fn(o_ins: *mut c_void) -> *const c_char;

/// The cmetrics functions the plugin uses; all or nothing.
#[derive(Clone, Copy, Debug)]
pub struct Cmetrics {
    pub counter_create: CreateFn,
    pub counter_inc: IncFn,
    pub counter_add: ValueFn,
    pub counter_set: ValueFn,
    pub gauge_create: CreateFn,
    pub gauge_set: ValueFn,
    pub gauge_inc: IncFn,
    pub gauge_add: ValueFn,
    pub gauge_sub: ValueFn,
    pub histogram_create: HistogramCreateFn,
    pub histogram_observe: ValueFn,
    pub histogram_set: HistogramSetFn,
    pub buckets_create_size: BucketsCreateFn,
    pub buckets_default_create: BucketsDefaultFn,
    pub time_now: TimeNowFn,
}

/// What the process exports, looked up once per instance init.
#[derive(Clone, Copy, Debug)]
pub struct AgentSymbols {
    pub cmetrics: Result<Cmetrics, &'static str>,
    pub output_name: Option<OutputNameFn>,
}

/// The address of `name` in the process's global scope, or NULL.
fn lookup(name: &CStr) -> *mut c_void {
    // SAFETY: `name` is NUL-terminated; RTLD_DEFAULT searches the objects already loaded
    // with global scope (the executable first) and runs no code.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

macro_rules! resolve {
    ($name:literal as $ty:ty) => {{
        let ptr = lookup($name);
        if ptr.is_null() {
            return Err($name.to_str().expect("ASCII symbol name"));
        }
        // SAFETY: the agent defines this symbol as a function with the C signature `$ty`
        // mirrors (Fluent Bit 5.1.1's headers, see the module docs).
        unsafe { std::mem::transmute::<*mut c_void, $ty>(ptr) }
    }};
}

impl Cmetrics {
    /// Every function, or the name of the first one the process does not export.
    fn resolve() -> Result<Self, &'static str> {
        Ok(Self {
            counter_create: resolve!(c"cmt_counter_create" as CreateFn),
            counter_inc: resolve!(c"cmt_counter_inc" as IncFn),
            counter_add: resolve!(c"cmt_counter_add" as ValueFn),
            counter_set: resolve!(c"cmt_counter_set" as ValueFn),
            gauge_create: resolve!(c"cmt_gauge_create" as CreateFn),
            gauge_set: resolve!(c"cmt_gauge_set" as ValueFn),
            gauge_inc: resolve!(c"cmt_gauge_inc" as IncFn),
            gauge_add: resolve!(c"cmt_gauge_add" as ValueFn),
            gauge_sub: resolve!(c"cmt_gauge_sub" as ValueFn),
            histogram_create: resolve!(c"cmt_histogram_create" as HistogramCreateFn),
            histogram_observe: resolve!(c"cmt_histogram_observe" as ValueFn),
            histogram_set: resolve!(c"cmt_histogram_set_default" as HistogramSetFn),
            buckets_create_size: resolve!(c"cmt_histogram_buckets_create_size" as BucketsCreateFn),
            buckets_default_create: resolve!(c"cmt_histogram_buckets_default_create" as BucketsDefaultFn),
            time_now: resolve!(c"cfl_time_now" as TimeNowFn),
        })
    }
}

impl AgentSymbols {
    pub fn resolve() -> Self {
        let output_name = (|| Ok::<_, &'static str>(resolve!(c"flb_output_name" as OutputNameFn)))().ok();
        Self { cmetrics: Cmetrics::resolve(), output_name }
    }
}
