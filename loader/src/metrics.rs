//! The agent's metrics, as far as a plugin meets them: the cmetrics functions Fluent Bit
//! exports, reported by `csrc/agent_symbols.c` to the sink here, which keeps what a cmetrics
//! context would (metrics, series, values) and refuses what cmetrics refuses.
//!
//! [`load_agent_symbols`] makes the process look like Fluent Bit 5.1 to the plugin's
//! `dlsym(RTLD_DEFAULT, ...)` ([`load_agent_symbols_of`], like another agent line):
//! `flb_output_name` and cmetrics are then found, and every instance initialised afterwards
//! gets a context. Without it the loader plays an agent that exports neither. Once loaded, the
//! symbols stay for the process's life (as in the agent), so a process plays one agent line.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fmt::Write;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use anyhow::{Result, anyhow};

use crate::agent::{AgentVersion, Exports};

/// What a metric measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// The value of one series.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(f64),
    /// Cumulative bucket counts (one per upper bound, then +Inf), the sum and the count.
    Histogram {
        buckets: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

/// One metric as a cmetrics context holds it.
#[derive(Clone, Debug)]
pub struct Metric {
    /// The instance (its `flb_output_name`) whose context holds it.
    pub instance: String,
    pub kind: Kind,
    /// `ns_subsystem_name`, as cmetrics joins them.
    pub name: String,
    pub help: String,
    pub label_keys: Vec<String>,
    /// A histogram's upper bounds.
    pub buckets: Vec<f64>,
    pub series: BTreeMap<Vec<String>, Value>,
}

#[derive(Default)]
struct Recorder {
    /// Instance name per context handle (handle = index + 1).
    contexts: Vec<String>,
    /// Metrics by handle (index + 1).
    metrics: Vec<Metric>,
    /// Calls cmetrics accepts but that break its or Prometheus's rules, for tests to assert on.
    misuse: Vec<String>,
    /// Calls cmetrics refuses (returns NULL or -1).
    refused: Vec<String>,
}

fn registry() -> MutexGuard<'static, Recorder> {
    static REGISTRY: OnceLock<Mutex<Recorder>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner)
}

/// `struct loader_cmt_call` of `csrc/loader_agent.h`.
#[repr(C)]
struct RawCall {
    op: c_int,
    target: *mut c_void,
    ns: *const c_char,
    subsystem: *const c_char,
    name: *const c_char,
    help: *const c_char,
    label_count: c_int,
    labels: *mut *mut c_char,
    value: f64,
    timestamp: u64,
    buckets: *const f64,
    bucket_values: *const u64,
    bucket_count: usize,
    count: u64,
}

const COUNTER_CREATE: c_int = 1;
const GAUGE_CREATE: c_int = 2;
const HISTOGRAM_CREATE: c_int = 3;
const COUNTER_INC: c_int = 4;
const COUNTER_ADD: c_int = 5;
const COUNTER_SET: c_int = 6;
const GAUGE_SET: c_int = 7;
const GAUGE_INC: c_int = 8;
const GAUGE_ADD: c_int = 9;
const GAUGE_SUB: c_int = 10;
const HISTOGRAM_OBSERVE: c_int = 11;
const HISTOGRAM_SET: c_int = 12;

unsafe extern "C" {
    fn loader_agent_symbols_load(
        path: *const c_char,
        sink: extern "C" fn(*const RawCall) -> isize,
        err: *mut c_char,
        errlen: usize,
    ) -> c_int;
}

/// The builds of `csrc/agent_symbols.c`, one per agent line, embedded so that the loader (and
/// `out-wasm`, which links it) works wherever it is copied.
fn library(exports: Exports) -> &'static [u8] {
    match exports {
        Exports::Base => include_bytes!(concat!(env!("OUT_DIR"), "/libloader_agent_symbols_0.so")),
        Exports::Line4_2 => include_bytes!(concat!(env!("OUT_DIR"), "/libloader_agent_symbols_42.so")),
        Exports::Line5 => include_bytes!(concat!(env!("OUT_DIR"), "/libloader_agent_symbols_5.so")),
    }
}

/// The embedded library as a file the dynamic loader can open: an anonymous memory file,
/// never closed (the library stays loaded for the process's life). Made with the memfd crate,
/// which makes the system call itself: glibc's `memfd_create` is from 2.27, above the release
/// binaries' glibc floor (`scripts/platforms.sh`).
fn memory_file(bytes: &[u8]) -> Result<String, String> {
    let file = memfd::MemfdOptions::default()
        .create("out-wasm-agent-symbols")
        .map_err(|err| format!("memfd_create failed: {err}"))?
        .into_file();
    std::io::Write::write_all(&mut &file, bytes)
        .map_err(|err| format!("writing the agent-symbols library failed: {err}"))?;
    Ok(format!("/proc/self/fd/{}", std::os::fd::IntoRawFd::into_raw_fd(file)))
}

static LOADED: OnceLock<(Exports, Result<(), String>)> = OnceLock::new();

/// Loads the exported symbols of Fluent Bit 5.1 into the process (see [`load_agent_symbols_of`]).
pub fn load_agent_symbols() -> Result<()> {
    load_agent_symbols_of(AgentVersion::V5_1)
}

/// Loads the symbols `agent` exports into the process, once; later calls only report how the
/// first went, and refuse another agent line (a loaded library cannot be taken back).
pub fn load_agent_symbols_of(agent: AgentVersion) -> Result<()> {
    let exports = agent.exports();
    let (loaded, outcome) = LOADED.get_or_init(|| {
        let load = || -> Result<(), String> {
            let path = CString::new(memory_file(library(exports))?).expect("a path without NUL");
            let mut err = [0 as c_char; 512];
            // SAFETY: a valid path and error buffer for the call; `sink` lives for the process.
            let ret = unsafe { loader_agent_symbols_load(path.as_ptr(), sink, err.as_mut_ptr(), err.len()) };
            if ret == 0 {
                Ok(())
            } else {
                // SAFETY: the C side NUL-terminates `err`.
                Err(unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned())
            }
        };
        (exports, load())
    });
    outcome.clone().map_err(|err| anyhow!("failed to load the agent's symbols: {err}"))?;
    if *loaded != exports {
        anyhow::bail!("this process already plays an agent exporting {loaded:?}; {agent} exports {exports:?}");
    }
    Ok(())
}

/// Whether [`load_agent_symbols`] succeeded in this process.
pub fn agent_symbols_loaded() -> bool {
    LOADED.get().is_some_and(|(_, outcome)| outcome.is_ok())
}

/// A new cmetrics context for the instance named `instance`, as the agent makes one per
/// output instance before its init; NULL if the agent's symbols are not loaded.
pub fn new_context(instance: &str) -> *mut c_void {
    if !agent_symbols_loaded() {
        return std::ptr::null_mut();
    }
    let mut registry = registry();
    registry.contexts.push(instance.to_owned());
    registry.contexts.len() as *mut c_void
}

/// # Safety
/// `ptr` is NULL or a NUL-terminated string.
unsafe fn text(ptr: *const c_char) -> Option<String> {
    // SAFETY: caller's contract.
    (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
}

/// # Safety
/// `labels` points to `count` NUL-terminated strings (or is NULL with `count` 0).
unsafe fn strings(labels: *mut *mut c_char, count: c_int) -> Option<Vec<String>> {
    let count = usize::try_from(count).ok()?;
    if count == 0 {
        return Some(Vec::new());
    }
    if labels.is_null() {
        return None;
    }
    // SAFETY: caller's contract.
    let ptrs = unsafe { std::slice::from_raw_parts(labels, count) };
    // SAFETY: each is NULL or a NUL-terminated string.
    ptrs.iter().map(|p| unsafe { text(*p) }).collect()
}

extern "C" fn sink(call: *const RawCall) -> isize {
    // A panic must not unwind into C.
    std::panic::catch_unwind(|| {
        // SAFETY: the C side passes a call struct valid for this call, with strings and
        // arrays as `loader_agent.h` describes.
        let call = unsafe { &*call };
        let mut registry = registry();
        match call.op {
            COUNTER_CREATE | GAUGE_CREATE | HISTOGRAM_CREATE => registry.create(call),
            _ => registry.update(call),
        }
    })
    .unwrap_or(-1)
}

impl Recorder {
    fn create(&mut self, call: &RawCall) -> isize {
        let kind = match call.op {
            COUNTER_CREATE => Kind::Counter,
            GAUGE_CREATE => Kind::Gauge,
            _ => Kind::Histogram,
        };
        // SAFETY: see `sink`.
        let (ns, subsystem, name, help) =
            unsafe { (text(call.ns), text(call.subsystem), text(call.name), text(call.help)) };
        // SAFETY: see `sink`.
        let keys = unsafe { strings(call.labels, call.label_count) };
        let instance = (call.target as usize).checked_sub(1).and_then(|i| self.contexts.get(i)).cloned();
        let (Some(instance), Some(ns), Some(subsystem), Some(name), Some(help), Some(keys)) =
            (instance, ns, subsystem, name, help, keys)
        else {
            self.refused.push(format!("create of {kind:?} with a NULL argument or unknown context"));
            return 0;
        };
        // cmetrics refuses an empty name or help.
        if name.is_empty() || help.is_empty() {
            self.refused.push(format!("create of '{name}': empty name or help"));
            return 0;
        }
        let buckets = if kind == Kind::Histogram {
            if call.buckets.is_null() || call.bucket_count == 0 {
                self.refused.push(format!("histogram '{name}' without buckets"));
                return 0;
            }
            // SAFETY: `bucket_count` doubles, see `sink`.
            let bounds = unsafe { std::slice::from_raw_parts(call.buckets, call.bucket_count) }.to_vec();
            if bounds.windows(2).any(|w| w[0] > w[1]) {
                self.refused.push(format!("histogram '{name}': buckets out of order {bounds:?}"));
                return 0;
            }
            bounds
        } else {
            Vec::new()
        };
        let full = [ns, subsystem, name].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("_");
        self.metrics.push(Metric {
            instance,
            kind,
            name: full,
            help,
            label_keys: keys,
            buckets,
            series: BTreeMap::new(),
        });
        self.metrics.len() as isize
    }

    fn update(&mut self, call: &RawCall) -> isize {
        let Some(index) = (call.target as usize).checked_sub(1).filter(|i| *i < self.metrics.len()) else {
            self.refused.push(format!("update (op {}) of an unknown metric {:?}", call.op, call.target));
            return -1;
        };
        // SAFETY: see `sink`.
        let Some(labels) = (unsafe { strings(call.labels, call.label_count) }) else {
            self.refused.push("update with a NULL label value".to_owned());
            return -1;
        };
        let metric = &mut self.metrics[index];
        // cmetrics: no labels (the static series) or exactly one value per key.
        if !labels.is_empty() && labels.len() != metric.label_keys.len() {
            let line =
                format!("update of '{}' with {} label values for {:?}", metric.name, labels.len(), metric.label_keys);
            self.refused.push(line);
            return -1;
        }
        let expected = match call.op {
            COUNTER_INC | COUNTER_ADD | COUNTER_SET => Kind::Counter,
            GAUGE_SET | GAUGE_INC | GAUGE_ADD | GAUGE_SUB => Kind::Gauge,
            _ => Kind::Histogram,
        };
        if expected != metric.kind {
            let line = format!("{expected:?} update (op {}) of {:?} '{}'", call.op, metric.kind, metric.name);
            self.misuse.push(line);
            return -1;
        }
        let bounds = metric.buckets.clone();
        let name = metric.name.clone();
        let value = metric.series.entry(labels.clone()).or_insert_with(|| match expected {
            Kind::Histogram => Value::Histogram { buckets: vec![0; bounds.len() + 1], sum: 0.0, count: 0 },
            _ => Value::Scalar(0.0),
        });
        let v = call.value;
        match (call.op, value) {
            (COUNTER_INC | GAUGE_INC, Value::Scalar(x)) => *x += 1.0,
            (COUNTER_ADD, Value::Scalar(x)) => {
                if v < 0.0 {
                    self.misuse.push(format!("counter '{name}' {labels:?} decreased by {v}"));
                }
                *x += v;
            }
            (GAUGE_ADD, Value::Scalar(x)) => *x += v,
            (GAUGE_SUB, Value::Scalar(x)) => *x -= v,
            (COUNTER_SET, Value::Scalar(x)) => {
                // cmetrics: a counter is never set below its value.
                if *x > v {
                    self.refused.push(format!("counter '{name}' {labels:?} set from {x} down to {v}"));
                    return -1;
                }
                *x = v;
            }
            (GAUGE_SET, Value::Scalar(x)) => *x = v,
            (HISTOGRAM_OBSERVE, Value::Histogram { buckets, sum, count }) => {
                for (bucket, bound) in buckets.iter_mut().zip(bounds.iter().chain([f64::INFINITY].iter())) {
                    if v <= *bound {
                        *bucket += 1;
                    }
                }
                *sum += v;
                *count += 1;
            }
            (HISTOGRAM_SET, Value::Histogram { buckets, sum, count }) => {
                if call.bucket_values.is_null() {
                    self.refused.push(format!("histogram '{name}' set without bucket counts"));
                    return -1;
                }
                // SAFETY: cmetrics reads one count per bound and +Inf, as many as `buckets`.
                let values = unsafe { std::slice::from_raw_parts(call.bucket_values, buckets.len()) };
                buckets.copy_from_slice(values);
                *sum = v;
                *count = call.count;
            }
            _ => return -1,
        }
        0
    }
}

/// What the agent's contexts hold now.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub metrics: Vec<Metric>,
    /// Calls cmetrics accepts but that break its rules or Prometheus's (wrong kind, a counter
    /// going down).
    pub misuse: Vec<String>,
    /// Calls cmetrics would refuse.
    pub refused: Vec<String>,
}

/// Every metric of every context made so far.
pub fn snapshot() -> Snapshot {
    let registry = registry();
    Snapshot { metrics: registry.metrics.clone(), misuse: registry.misuse.clone(), refused: registry.refused.clone() }
}

impl Snapshot {
    /// The metrics of the instance named `instance`.
    pub fn of(&self, instance: &str) -> Snapshot {
        Snapshot {
            metrics: self.metrics.iter().filter(|m| m.instance == instance).cloned().collect(),
            misuse: self.misuse.clone(),
            refused: self.refused.clone(),
        }
    }

    /// The metric named `name` (full name), if exactly one context has it.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The value of a counter's or gauge's series.
    pub fn value(&self, name: &str, labels: &[&str]) -> Option<f64> {
        match self.metric(name)?.series.get(&owned(labels))? {
            Value::Scalar(v) => Some(*v),
            Value::Histogram { .. } => None,
        }
    }

    /// A histogram series' count and sum.
    pub fn histogram(&self, name: &str, labels: &[&str]) -> Option<(u64, f64)> {
        match self.metric(name)?.series.get(&owned(labels))? {
            Value::Histogram { count, sum, .. } => Some((*count, *sum)),
            Value::Scalar(_) => None,
        }
    }

    /// The Prometheus text exposition of every metric, as the agent's endpoint writes it
    /// (metrics of the same name from several instances under one `# HELP`/`# TYPE`).
    pub fn prometheus(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for metric in &self.metrics {
            if !names.contains(&metric.name.as_str()) {
                names.push(&metric.name);
            }
        }
        let mut out = String::new();
        for name in names {
            let family: Vec<&Metric> = self.metrics.iter().filter(|m| m.name == name).collect();
            let first = family[0];
            let _ = writeln!(out, "# HELP {name} {}", first.help);
            let _ = writeln!(out, "# TYPE {name} {}", first.kind.as_str());
            for metric in family {
                for (labels, value) in &metric.series {
                    let pairs = |extra: Option<(&str, String)>| {
                        let mut parts: Vec<String> = metric
                            .label_keys
                            .iter()
                            .zip(labels)
                            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                            .collect();
                        if let Some((k, v)) = extra {
                            parts.push(format!("{k}=\"{v}\""));
                        }
                        if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
                    };
                    match value {
                        Value::Scalar(v) => {
                            let _ = writeln!(out, "{name}{} {v}", pairs(None));
                        }
                        Value::Histogram { buckets, sum, count } => {
                            for (bound, n) in
                                metric.buckets.iter().map(|b| b.to_string()).chain(["+Inf".to_owned()]).zip(buckets)
                            {
                                let _ = writeln!(out, "{name}_bucket{} {n}", pairs(Some(("le", bound))));
                            }
                            let _ = writeln!(out, "{name}_sum{} {sum}", pairs(None));
                            let _ = writeln!(out, "{name}_count{} {count}", pairs(None));
                        }
                    }
                }
            }
        }
        out
    }
}

fn owned(labels: &[&str]) -> Vec<String> {
    labels.iter().map(|l| (*l).to_owned()).collect()
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
