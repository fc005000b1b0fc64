//! The instance's configuration: the host's own `wasm_*` keys and the keys a guest declares.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::agent::handle::Agent;
use crate::bindings::{ConfigEntry, ConfigKey, EventFormat, JsonOptions};
use crate::sandbox::config::{HOST_KEY_PREFIX, is_reserved};
use crate::sandbox::metrics::MetricLimits;

/// Default of `wasm_watch_interval`.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// The host's own keys of one `[OUTPUT] Name wasm` section.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// `wasm_path`: the guest component file, or an `oci://` reference (required).
    pub wasm_path: PathBuf,
    /// The `wasm_oci_*` keys, when `wasm_path` is an `oci://` reference.
    pub oci: Option<OciConfig>,
    /// `wasm_watch` (default on): replace the guest when the file's content changes.
    pub watch: bool,
    /// `wasm_watch_interval` (default 2s): how often the file is checked.
    pub watch_interval: Duration,
    /// `wasm_warm_spare` (default `auto`): keep one guest instance started and initialised
    /// ahead of need, so no flush waits for an instance to start.
    pub warm_spare: WarmSpare,
    /// `wasm_cache_dir` (default `$XDG_CACHE_HOME/out_wasm` or `~/.cache/out_wasm`; `off`
    /// disables): where compiled components are kept.
    pub cache_dir: Option<PathBuf>,
    pub limits: Limits,
    /// `wasm_on_trap` (default `retry`): what the agent is told when a guest faults in flush.
    pub on_fault: OnFault,
    /// `wasm_event_format` (default: the guest's choice): `msgpack`, `json_lines` or `otlp_json`.
    pub event_format: Option<FormatKey>,
    /// `wasm_allow_*`, `wasm_stdout`, `wasm_stderr`: what the guest may reach.
    pub capabilities: std::sync::Arc<crate::sandbox::Capabilities>,
    /// `wasm_metrics_max`, `wasm_metrics_max_series`, `wasm_metrics_max_label_len`: how much
    /// the guests may publish.
    pub metric_limits: MetricLimits,
    /// `wasm_http_keepalive` (default 15s; `off`): how long the output keeps an idle HTTP
    /// connection of its guests open for their next request. `None`: a connection per request.
    pub http_keepalive: Option<Duration>,
    /// `wasm_max_descriptors` (default 64): the files, sockets and HTTP connections the output's
    /// guests may hold at once (see [`crate::sandbox::descriptors`]).
    pub max_descriptors: usize,
    /// `wasm_canary` (default `off`) and `wasm_canary_window`: a new version serves beside the
    /// current one on a share of the flushes before it replaces it (see
    /// [`crate::lifecycle::canary`]).
    pub canary: Option<CanaryConfig>,
    /// `wasm_record DIR` (default off), `wasm_record_max_bytes`, `wasm_record_max_files`: the
    /// flight recorder of failed flushes (see [`crate::lifecycle::recorder`]).
    pub record: Option<RecordConfig>,
}

/// How much of the traffic a new version gets while it is a canary (`wasm_canary`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanaryShare {
    /// `N%`: that share of the flushes, spread evenly (every flush whose running count falls in
    /// the share).
    Percent(u8),
    /// `one`: one guest instance of the new version beside the serving ones: one flush in
    /// (1 + the most flushes seen running at once), never two at a time.
    One,
}

/// `wasm_canary` and `wasm_canary_window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CanaryConfig {
    pub share: CanaryShare,
    /// The canary is judged after it handled this many flushes...
    pub window_flushes: u64,
    /// ...and this long after it started, whichever comes last.
    pub window_time: Duration,
}

/// Default of `wasm_canary_window`: enough flushes for a rate to mean something, long enough
/// for a periodic failure (a token that expires, a batch job's burst) to show.
pub const DEFAULT_CANARY_WINDOW: (u64, Duration) = (100, Duration::from_secs(60));

/// `wasm_record DIR` and its bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordConfig {
    /// The recorder's directory; each output writes in a subdirectory named after it.
    pub dir: PathBuf,
    /// `wasm_record_max_bytes` (default 64M): the recordings of one output, at most; the
    /// oldest go first.
    pub max_bytes: u64,
    /// `wasm_record_max_files` (default 100): the recordings of one output, at most.
    pub max_files: usize,
}

/// Default of `wasm_record_max_bytes`.
pub const DEFAULT_RECORD_MAX_BYTES: u64 = 64 << 20;
/// Default of `wasm_record_max_files`.
pub const DEFAULT_RECORD_MAX_FILES: usize = 100;

/// Default of `wasm_oci_poll_interval`.
pub const DEFAULT_OCI_POLL_INTERVAL: Duration = Duration::from_secs(60);

/// How a guest is pulled from a registry (`wasm_path oci://...`).
#[derive(Clone, Debug)]
pub struct OciConfig {
    /// The reference: a tag (followed) or a digest (pinned).
    pub reference: crate::runtime::oci::OciRef,
    /// `wasm_oci_verify` (default `off`): `digest` (a pinned reference only) or a cosign
    /// public key file.
    pub verify: crate::runtime::oci::Verify,
    /// `wasm_oci_poll_interval` (default 60s): how often a followed tag is resolved.
    pub poll_interval: Duration,
    /// `wasm_oci_auth_file` (default `~/.docker/config.json` if it exists): the registry
    /// credentials.
    pub auth_file: Option<PathBuf>,
    /// `wasm_oci_insecure_http` (default `off`): plain HTTP to a registry not on loopback;
    /// `wasm_oci_pull_timeout` (default 60s): how long one pull may take in all.
    pub reach: crate::runtime::oci::Reach,
}

impl OciConfig {
    fn from_lookup(path: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        use crate::runtime::oci::{OciRef, Verify, is_reference};
        if !is_reference(path) {
            for key in [
                "wasm_oci_verify",
                "wasm_oci_poll_interval",
                "wasm_oci_auth_file",
                "wasm_oci_insecure_http",
                "wasm_oci_pull_timeout",
            ] {
                if lookup(key).is_some() {
                    bail!("key '{key}' applies to a guest pulled from a registry (wasm_path oci://...), not to a file");
                }
            }
            return Ok(None);
        }
        let reference = OciRef::parse(path).context("invalid value for key 'wasm_path'")?;
        let verify = match lookup("wasm_oci_verify") {
            None => Verify::Off,
            Some(v) if v.trim().eq_ignore_ascii_case("off") => Verify::Off,
            Some(v) if v.trim().eq_ignore_ascii_case("digest") => {
                if reference.follows() {
                    bail!(
                        "wasm_oci_verify digest takes a pinned reference only: write wasm_path \
                         oci://REGISTRY/REPOSITORY@sha256:DIGEST (or give a cosign public key to follow a tag)"
                    );
                }
                Verify::Digest
            }
            Some(v) if v.trim().is_empty() => {
                bail!("invalid empty value for key 'wasm_oci_verify' (off, digest, or a public key file)")
            }
            Some(v) => Verify::Key(PathBuf::from(v.trim())),
        };
        let poll_interval = match lookup("wasm_oci_poll_interval") {
            None => DEFAULT_OCI_POLL_INTERVAL,
            Some(value) => parse_duration(&value)
                .filter(|d| !d.is_zero())
                .with_context(|| format!("invalid value {value:?} for key 'wasm_oci_poll_interval' (e.g. 60s, 5m)"))?,
        };
        let auth_file =
            lookup("wasm_oci_auth_file").map(|v| PathBuf::from(v.trim())).filter(|p| !p.as_os_str().is_empty());
        let insecure_http = match lookup("wasm_oci_insecure_http") {
            None => false,
            Some(value) => parse_switch(&value)
                .with_context(|| format!("invalid value {value:?} for key 'wasm_oci_insecure_http' (on, off)"))?,
        };
        let pull_timeout = match lookup("wasm_oci_pull_timeout") {
            None => crate::runtime::oci::DEFAULT_PULL_TIMEOUT,
            Some(value) => parse_duration(&value)
                .filter(|d| !d.is_zero())
                .with_context(|| format!("invalid value {value:?} for key 'wasm_oci_pull_timeout' (e.g. 60s, 5m)"))?,
        };
        let reach = crate::runtime::oci::Reach { insecure_http, pull_timeout };
        Ok(Some(Self { reference, verify, poll_interval, auth_file, reach }))
    }
}

/// Default of `wasm_http_keepalive`: below the idle timeouts of common servers and load
/// balancers (nginx 75 s, AWS ALB 60 s), far above the agent's flush interval.
pub const DEFAULT_HTTP_KEEPALIVE: Duration = Duration::from_secs(15);

/// When an output keeps a warm spare (`wasm_warm_spare`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarmSpare {
    /// From init on.
    On,
    /// Never: an instance needed beyond the first starts on the flush path.
    Off,
    /// From init on for a small guest (its first instance has at most
    /// [`SMALL_GUEST`] of linear memory after init); for a larger one, from the first flush
    /// that needs a second instance (a fault, a recycle, concurrency) on. A spare costs a whole
    /// instance: an interpreter's tens of MiB are kept only for outputs that show they need it.
    Auto,
}

/// The linear memory below which `wasm_warm_spare auto` keeps a spare from init: what a Rust or
/// C guest has (1 to 2 MiB), not what an interpreter has (tens of MiB).
pub const SMALL_GUEST: usize = 4 << 20;

/// The operator's `wasm_event_format`: a format without its options, which come from the
/// guest's preference (see [`FormatKey::resolve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatKey {
    Msgpack,
    JsonLines,
    OtlpJson,
}

impl FormatKey {
    /// The format an instance gets: the operator's choice if any, with the guest's JSON options
    /// when the guest preferred JSON lines too (else the agent's defaults); the guest's
    /// preference otherwise.
    pub fn resolve(choice: Option<FormatKey>, preferred: EventFormat) -> EventFormat {
        match (choice, preferred) {
            (None, preferred) => preferred,
            (Some(FormatKey::Msgpack), _) => EventFormat::Msgpack,
            (Some(FormatKey::OtlpJson), _) => EventFormat::OtlpJson,
            (Some(FormatKey::JsonLines), EventFormat::JsonLines(options)) => EventFormat::JsonLines(options),
            (Some(FormatKey::JsonLines), _) => EventFormat::JsonLines(JsonOptions::agent_default()),
        }
    }
}

/// What a guest instance may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `wasm_memory_limit` (default 128M): bytes of all of a guest instance's linear memories and
    /// tables together (`sandbox::memory`).
    pub memory: usize,
    /// `wasm_flush_timeout` (default 10s): how long one flush (or exit) may run.
    pub flush_timeout: Duration,
    /// `wasm_init_timeout` (default 30s): how long instantiation, config-schema and init may run.
    pub init_timeout: Duration,
    /// `wasm_deadlines` (default on): enforce the two timeouts. `off` compiles the guest
    /// without the checks deadlines need, for speed; a stuck guest then blocks its flush.
    pub deadlines: bool,
    /// `wasm_idle_interval` (default 1s): how long an instance that asked for `idle` calls
    /// waits without a call before it gets one, and the least time between two.
    pub idle_interval: Duration,
    /// `wasm_idle_budget` (default 50ms): how long one `idle` call should take at most (a flush
    /// that arrives meanwhile waits for it).
    pub idle_budget: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory: 128 << 20,
            flush_timeout: Duration::from_secs(10),
            init_timeout: Duration::from_secs(30),
            deadlines: true,
            idle_interval: Duration::from_secs(1),
            idle_budget: Duration::from_millis(50),
        }
    }
}

/// The answer to the agent for a chunk whose flush faulted (trap, deadline, memory cap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFault {
    /// FLB_RETRY: the chunk is kept and flushed again (by a fresh instance).
    Retry,
    /// FLB_ERROR: the chunk is dropped.
    Error,
}

impl HostConfig {
    pub fn read(agent: &Agent) -> Result<Self> {
        Self::from_lookup(|key| agent.property(key))
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let Some(path) = lookup("wasm_path").filter(|p| !p.trim().is_empty()) else {
            bail!("required key 'wasm_path' (the guest component file) is not set");
        };
        let oci = OciConfig::from_lookup(&path, &lookup)?;
        let watch = match lookup("wasm_watch") {
            None => true,
            Some(value) => parse_switch(&value)
                .with_context(|| format!("invalid value {value:?} for key 'wasm_watch' (on, off)"))?,
        };
        let watch_interval = match lookup("wasm_watch_interval") {
            None => DEFAULT_WATCH_INTERVAL,
            Some(value) => parse_duration(&value)
                .filter(|d| !d.is_zero())
                .with_context(|| format!("invalid value {value:?} for key 'wasm_watch_interval' (e.g. 2s, 500ms)"))?,
        };
        let warm_spare = match lookup("wasm_warm_spare") {
            None => WarmSpare::Auto,
            Some(value) if value.trim().eq_ignore_ascii_case("auto") => WarmSpare::Auto,
            Some(value) => match parse_switch(&value) {
                Some(true) => WarmSpare::On,
                Some(false) => WarmSpare::Off,
                None => bail!("invalid value {value:?} for key 'wasm_warm_spare' (auto, on, off)"),
            },
        };
        let cache_dir = match lookup("wasm_cache_dir") {
            Some(value) if value.trim().eq_ignore_ascii_case("off") => None,
            Some(value) => Some(PathBuf::from(value.trim())),
            None => crate::runtime::cache::CompileCache::default_dir(),
        };
        let defaults = Limits::default();
        let duration = |key: &str, default: Duration| -> Result<Duration> {
            match lookup(key) {
                None => Ok(default),
                Some(value) => parse_duration(&value)
                    .filter(|d| !d.is_zero())
                    .with_context(|| format!("invalid value {value:?} for key '{key}' (e.g. 10s, 500ms)")),
            }
        };
        let memory = match lookup("wasm_memory_limit") {
            None => defaults.memory,
            Some(value) => parse_size(&value).filter(|n| *n >= 1 << 16).with_context(|| {
                format!("invalid value {value:?} for key 'wasm_memory_limit' (e.g. 64M, 1G; at least 64K)")
            })?,
        };
        let limits = Limits {
            memory,
            flush_timeout: duration("wasm_flush_timeout", defaults.flush_timeout)?,
            init_timeout: duration("wasm_init_timeout", defaults.init_timeout)?,
            deadlines: match lookup("wasm_deadlines") {
                None => true,
                Some(value) => parse_switch(&value)
                    .with_context(|| format!("invalid value {value:?} for key 'wasm_deadlines' (on, off)"))?,
            },
            idle_interval: duration("wasm_idle_interval", defaults.idle_interval)?,
            idle_budget: duration("wasm_idle_budget", defaults.idle_budget)?,
        };
        if limits.idle_budget > limits.flush_timeout {
            bail!(
                "wasm_idle_budget ({} ms) must not exceed wasm_flush_timeout ({} ms): a flush that arrives during \
                 an idle call waits for it",
                limits.idle_budget.as_millis(),
                limits.flush_timeout.as_millis()
            );
        }
        let on_fault = match lookup("wasm_on_trap").map(|v| v.trim().to_ascii_lowercase()) {
            None => OnFault::Retry,
            Some(v) if v == "retry" => OnFault::Retry,
            Some(v) if v == "error" => OnFault::Error,
            Some(v) => bail!("invalid value {v:?} for key 'wasm_on_trap' (retry, error)"),
        };
        let event_format = match lookup("wasm_event_format").map(|v| v.trim().to_ascii_lowercase()) {
            None => None,
            Some(v) if v == "msgpack" => Some(FormatKey::Msgpack),
            Some(v) if v == "json_lines" || v == "json-lines" => Some(FormatKey::JsonLines),
            Some(v) if v == "otlp_json" || v == "otlp-json" => Some(FormatKey::OtlpJson),
            Some(v) => bail!("invalid value {v:?} for key 'wasm_event_format' (msgpack, json_lines, otlp_json)"),
        };
        let capabilities = std::sync::Arc::new(crate::sandbox::Capabilities::from_lookup(&lookup)?);
        let count = |key: &str, default: usize| -> Result<usize> {
            match lookup(key) {
                None => Ok(default),
                Some(value) => value
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .with_context(|| format!("invalid value {value:?} for key '{key}' (a positive number)")),
            }
        };
        let metric_defaults = MetricLimits::default();
        let metric_limits = MetricLimits {
            max_metrics: count("wasm_metrics_max", metric_defaults.max_metrics)?,
            max_series: count("wasm_metrics_max_series", metric_defaults.max_series)?,
            max_label_len: count("wasm_metrics_max_label_len", metric_defaults.max_label_len)?,
        };
        let http_keepalive = match lookup("wasm_http_keepalive") {
            None => Some(DEFAULT_HTTP_KEEPALIVE),
            Some(value) if parse_switch(&value) == Some(false) => None,
            Some(value) => Some(parse_duration(&value).filter(|d| !d.is_zero()).with_context(|| {
                format!("invalid value {value:?} for key 'wasm_http_keepalive' (e.g. 15s, or off)")
            })?),
        };
        let max_descriptors = count("wasm_max_descriptors", crate::sandbox::descriptors::DEFAULT_MAX_DESCRIPTORS)?;
        Ok(Self {
            wasm_path: PathBuf::from(path.trim()),
            oci,
            watch,
            watch_interval,
            warm_spare,
            cache_dir,
            limits,
            on_fault,
            event_format,
            capabilities,
            metric_limits,
            http_keepalive,
            max_descriptors,
            canary: canary_keys(&lookup)?,
            record: record_keys(&lookup)?,
        })
    }
}

/// `wasm_canary` (`off`, `N%`, `one`) and `wasm_canary_window` (`N flushes`, a duration, or
/// both: `200 flushes 5m`).
fn canary_keys(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<CanaryConfig>> {
    let share = match lookup("wasm_canary").map(|v| v.trim().to_ascii_lowercase()) {
        None => None,
        Some(v) if parse_switch(&v) == Some(false) => None,
        Some(v) if v == "one" || v == "one instance" || v == "1 instance" => Some(CanaryShare::One),
        Some(v) => match v.strip_suffix('%').and_then(|n| n.trim().parse::<u8>().ok()) {
            Some(n) if (1..=99).contains(&n) => Some(CanaryShare::Percent(n)),
            _ => bail!("invalid value {v:?} for key 'wasm_canary' (off, a share of flushes from 1% to 99%, or one)"),
        },
    };
    let window = lookup("wasm_canary_window");
    let Some(share) = share else {
        if window.is_some() {
            bail!("key 'wasm_canary_window' needs wasm_canary (a share of flushes such as 10%, or one)");
        }
        return Ok(None);
    };
    let (window_flushes, window_time) = match window {
        None => DEFAULT_CANARY_WINDOW,
        Some(value) => parse_window(&value).with_context(|| {
            format!("invalid value {value:?} for key 'wasm_canary_window' (e.g. 100 flushes 1m, 500, 30s)")
        })?,
    };
    Ok(Some(CanaryConfig { share, window_flushes, window_time }))
}

/// `200 flushes 5m`, `200`, `5m`, `200,5m`: a count of flushes (at least 1, default 100) and a
/// duration (default none beyond the flushes; a duration alone keeps the default count).
fn parse_window(value: &str) -> Option<(u64, Duration)> {
    let mut flushes = None;
    let mut time = None;
    let mut words = value.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()).peekable();
    while let Some(word) = words.next() {
        if let Ok(n) = word.parse::<u64>() {
            if flushes.replace(n).is_some() || n == 0 {
                return None;
            }
            words.next_if(|w| w.eq_ignore_ascii_case("flushes") || w.eq_ignore_ascii_case("flush"));
        } else if time.replace(parse_duration(word)?).is_some() {
            return None;
        }
    }
    if flushes.is_none() && time.is_none() {
        return None;
    }
    Some((flushes.unwrap_or(DEFAULT_CANARY_WINDOW.0), time.unwrap_or(Duration::ZERO)))
}

/// `wasm_record DIR`, `wasm_record_max_bytes`, `wasm_record_max_files`.
fn record_keys(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<RecordConfig>> {
    let dir = match lookup("wasm_record").map(|v| v.trim().to_owned()) {
        Some(v) if !v.is_empty() && parse_switch(&v) != Some(false) => PathBuf::from(v),
        _ => {
            for key in ["wasm_record_max_bytes", "wasm_record_max_files"] {
                if lookup(key).is_some() {
                    bail!("key '{key}' needs wasm_record (the recorder's directory)");
                }
            }
            return Ok(None);
        }
    };
    let max_bytes = match lookup("wasm_record_max_bytes") {
        None => DEFAULT_RECORD_MAX_BYTES,
        Some(value) => parse_size(&value).filter(|n| *n >= 1 << 16).map(|n| n as u64).with_context(|| {
            format!("invalid value {value:?} for key 'wasm_record_max_bytes' (e.g. 64M, 1G; at least 64K)")
        })?,
    };
    let max_files =
        match lookup("wasm_record_max_files") {
            None => DEFAULT_RECORD_MAX_FILES,
            Some(value) => value.trim().parse::<usize>().ok().filter(|n| *n > 0).with_context(|| {
                format!("invalid value {value:?} for key 'wasm_record_max_files' (a positive number)")
            })?,
        };
    Ok(Some(RecordConfig { dir, max_bytes, max_files }))
}

/// `64M`, `1G`, `512K`, or bytes: the agent's size spellings (powers of 1024).
fn parse_size(value: &str) -> Option<usize> {
    let value = value.trim().to_ascii_uppercase();
    let value = value.strip_suffix('B').unwrap_or(&value);
    let (number, shift) = match value.chars().last()? {
        'K' => (&value[..value.len() - 1], 10),
        'M' => (&value[..value.len() - 1], 20),
        'G' => (&value[..value.len() - 1], 30),
        _ => (value, 0),
    };
    let n: usize = number.trim().parse().ok()?;
    n.checked_mul(1 << shift)
}

/// The agent's boolean spellings.
fn parse_switch(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// `500ms`, `2s`, `1m`, `1h`, or plain (possibly fractional) seconds.
fn parse_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = value.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (value, 1.0)
    };
    let seconds: f64 = number.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds * scale))
}

/// Checks the guest's declared keys and looks each one up with the agent (`lookup`), applying
/// defaults. Returns the resolved entries in declaration order.
pub fn resolve(schema: &[ConfigKey], lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<ConfigEntry>> {
    let mut seen: Vec<String> = Vec::with_capacity(schema.len());
    let mut entries = Vec::with_capacity(schema.len());
    for key in schema {
        let name = key.name.as_str();
        let folded = name.to_ascii_lowercase();
        if name.is_empty() || name.trim() != name || name.contains(char::is_whitespace) {
            bail!("guest declares an invalid key name {name:?}");
        }
        if is_reserved(name) {
            bail!("guest declares key '{name}', which the agent reserves for itself");
        }
        if folded.starts_with(HOST_KEY_PREFIX) {
            bail!("guest declares key '{name}'; keys starting with '{HOST_KEY_PREFIX}' belong to the host");
        }
        if seen.contains(&folded) {
            bail!("guest declares key '{name}' twice (keys are case-insensitive)");
        }
        seen.push(folded);

        let value = lookup(name).or_else(|| key.default_value.clone());
        match value {
            Some(value) => entries.push(ConfigEntry { key: name.to_owned(), value }),
            None if key.required => {
                bail!("required key '{name}' ({}) is not set", key.description)
            }
            None => {}
        }
    }
    Ok(entries)
}

/// As [`resolve`], leaving out required keys that have no value instead of refusing: what a
/// guest's preferences are asked with when no section is given (`out-wasm check`).
pub fn resolve_lenient(schema: &[ConfigKey], lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<ConfigEntry>> {
    let optional: Vec<ConfigKey> = schema.iter().map(|key| ConfigKey { required: false, ..key.clone() }).collect();
    resolve(&optional, lookup)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, default: Option<&str>, required: bool) -> ConfigKey {
        ConfigKey {
            name: name.into(),
            description: format!("the {name}"),
            default_value: default.map(Into::into),
            required,
        }
    }

    #[test]
    fn oci_keys_name_a_registry_artifact_and_how_it_is_checked() {
        use crate::runtime::oci::Verify;
        let with = |pairs: &'static [(&'static str, &'static str)]| {
            HostConfig::from_lookup(move |k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| (*v).to_owned()))
        };
        assert!(with(&[("wasm_path", "/g.wasm")]).unwrap().oci.is_none());
        let tag = with(&[("wasm_path", "oci://localhost:5000/guests/tally:v1")]).unwrap().oci.unwrap();
        assert!(tag.reference.follows());
        assert_eq!((tag.verify, tag.poll_interval, tag.auth_file), (Verify::Off, DEFAULT_OCI_POLL_INTERVAL, None));
        assert_eq!(tag.reach, crate::runtime::oci::Reach::default());
        assert!(!tag.reach.insecure_http);
        let keyed = with(&[
            ("wasm_path", "oci://localhost:5000/guests/tally:v1"),
            ("wasm_oci_verify", "/etc/cosign.pub"),
            ("wasm_oci_poll_interval", "5s"),
            ("wasm_oci_auth_file", "/etc/out_wasm/config.json"),
            ("wasm_oci_insecure_http", "on"),
            ("wasm_oci_pull_timeout", "2m"),
        ])
        .unwrap()
        .oci
        .unwrap();
        assert_eq!(keyed.verify, Verify::Key("/etc/cosign.pub".into()));
        assert_eq!(keyed.poll_interval, Duration::from_secs(5));
        assert_eq!(keyed.auth_file, Some("/etc/out_wasm/config.json".into()));
        assert!(keyed.reach.insecure_http);
        assert_eq!(keyed.reach.pull_timeout, Duration::from_secs(120));
        let pinned = format!("oci://localhost:5000/g@sha256:{}", "a".repeat(64));
        let pinned: &'static str = Box::leak(pinned.into_boxed_str());
        let digest = with(Box::leak(Box::new([("wasm_path", pinned), ("wasm_oci_verify", "digest")]))).unwrap();
        assert_eq!(digest.oci.unwrap().verify, Verify::Digest);
        for (pairs, why) in [
            (&[("wasm_path", "oci://localhost:5000/g:v1"), ("wasm_oci_verify", "digest")][..], "pinned reference only"),
            (&[("wasm_path", "oci://g:v1")][..], "names no registry"),
            (&[("wasm_path", "/g.wasm"), ("wasm_oci_verify", "digest")][..], "not to a file"),
            (
                &[("wasm_path", "oci://localhost:5000/g:v1"), ("wasm_oci_poll_interval", "0s")][..],
                "wasm_oci_poll_interval",
            ),
            (&[("wasm_path", "/g.wasm"), ("wasm_oci_insecure_http", "on")][..], "not to a file"),
            (
                &[("wasm_path", "oci://localhost:5000/g:v1"), ("wasm_oci_insecure_http", "maybe")][..],
                "wasm_oci_insecure_http",
            ),
            (
                &[("wasm_path", "oci://localhost:5000/g:v1"), ("wasm_oci_pull_timeout", "0s")][..],
                "wasm_oci_pull_timeout",
            ),
        ] {
            let pairs: &'static [(&'static str, &'static str)] = Box::leak(pairs.to_vec().into_boxed_slice());
            let err = format!("{:#}", with(pairs).unwrap_err());
            assert!(err.contains(why), "expected {why:?} in {err}");
        }
    }

    #[test]
    fn host_keys_have_documented_defaults_and_refuse_nonsense() {
        let config = HostConfig::from_lookup(|k| (k == "wasm_path").then(|| " /g.wasm ".to_owned())).unwrap();
        assert_eq!(config.wasm_path, PathBuf::from("/g.wasm"));
        assert!(config.watch, "watching is on by default");
        assert_eq!(config.watch_interval, DEFAULT_WATCH_INTERVAL);
        let set = |key: &'static str, value: &'static str| {
            HostConfig::from_lookup(move |k| match k {
                "wasm_path" => Some("/g.wasm".to_owned()),
                k if k == key => Some(value.to_owned()),
                _ => None,
            })
        };
        assert!(!set("wasm_watch", "off").unwrap().watch);
        assert_eq!(set("wasm_watch_interval", "250ms").unwrap().watch_interval, Duration::from_millis(250));
        assert_eq!(set("wasm_watch_interval", "1.5").unwrap().watch_interval, Duration::from_millis(1500));
        assert_eq!(set("wasm_cache_dir", "OFF").unwrap().cache_dir, None);
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.on_fault, OnFault::Retry);
        assert_eq!(set("wasm_memory_limit", "64M").unwrap().limits.memory, 64 << 20);
        assert_eq!(set("wasm_memory_limit", "1g").unwrap().limits.memory, 1 << 30);
        assert_eq!(set("wasm_flush_timeout", "250ms").unwrap().limits.flush_timeout, Duration::from_millis(250));
        assert_eq!(set("wasm_on_trap", "Error").unwrap().on_fault, OnFault::Error);
        assert_eq!(config.max_descriptors, crate::sandbox::descriptors::DEFAULT_MAX_DESCRIPTORS);
        assert_eq!(set("wasm_max_descriptors", "8").unwrap().max_descriptors, 8);
        for (key, value) in [
            ("wasm_watch", "maybe"),
            ("wasm_watch_interval", "soon"),
            ("wasm_watch_interval", "0s"),
            ("wasm_memory_limit", "lots"),
            ("wasm_memory_limit", "1K"),
            ("wasm_flush_timeout", "0"),
            ("wasm_on_trap", "ignore"),
            ("wasm_max_descriptors", "0"),
            ("wasm_max_descriptors", "many"),
        ] {
            let err = format!("{:#}", set(key, value).unwrap_err());
            assert!(err.contains(key), "{key}={value}: error names the key: {err}");
        }
    }

    #[test]
    fn canary_and_recorder_keys_are_off_by_default_and_parsed_in_their_own_terms() {
        let with = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .chain(&[("wasm_path", "/g.wasm")])
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            HostConfig::from_lookup(move |k| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()))
        };
        let plain = with(&[]).unwrap();
        assert_eq!((plain.canary, plain.record), (None, None));
        let canary = with(&[("wasm_canary", "10%")]).unwrap().canary.unwrap();
        assert_eq!(canary.share, CanaryShare::Percent(10));
        assert_eq!((canary.window_flushes, canary.window_time), DEFAULT_CANARY_WINDOW);
        assert_eq!(with(&[("wasm_canary", "One")]).unwrap().canary.unwrap().share, CanaryShare::One);
        assert_eq!(with(&[("wasm_canary", "off")]).unwrap().canary, None);
        let window = |value: &str| {
            with(&[("wasm_canary", "5%"), ("wasm_canary_window", value)]).map(|c| {
                let c = c.canary.unwrap();
                (c.window_flushes, c.window_time)
            })
        };
        assert_eq!(window("200 flushes 5m").unwrap(), (200, Duration::from_secs(300)));
        assert_eq!(window("50").unwrap(), (50, Duration::ZERO));
        assert_eq!(window("30s").unwrap(), (DEFAULT_CANARY_WINDOW.0, Duration::from_secs(30)));
        assert_eq!(window("20,2s").unwrap(), (20, Duration::from_secs(2)));
        for bad in ["", "0", "soon", "1 2", "1s 2s"] {
            assert!(window(bad).is_err(), "{bad:?}");
        }
        for bad in ["0%", "100%", "half", "10"] {
            assert!(with(&[("wasm_canary", bad)]).is_err(), "{bad:?}");
        }
        let err = with(&[("wasm_canary_window", "10")]).unwrap_err().to_string();
        assert!(err.contains("needs wasm_canary"), "{err}");

        let record = with(&[("wasm_record", "/var/lib/rec"), ("wasm_record_max_files", "5")]).unwrap().record.unwrap();
        assert_eq!(record.dir, PathBuf::from("/var/lib/rec"));
        assert_eq!((record.max_files, record.max_bytes), (5, DEFAULT_RECORD_MAX_BYTES));
        assert_eq!(with(&[("wasm_record", "off")]).unwrap().record, None);
        assert!(with(&[("wasm_record", "/r"), ("wasm_record_max_bytes", "1K")]).is_err());
        assert!(with(&[("wasm_record", "/r"), ("wasm_record_max_files", "0")]).is_err());
        assert!(with(&[("wasm_record_max_files", "5")]).unwrap_err().to_string().contains("needs wasm_record"));
    }

    #[test]
    fn applies_defaults_and_keeps_declaration_order() {
        let schema = [key("b", Some("2"), false), key("a", None, false), key("c", None, true)];
        let entries = resolve(&schema, |k| (k == "c").then(|| "3".to_owned())).unwrap();
        let pairs: Vec<_> = entries.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
        assert_eq!(pairs, [("b", "2"), ("c", "3")], "unset optional key without default is absent");
    }

    #[test]
    fn refuses_missing_required_key_naming_it() {
        let err = resolve(&[key("path", None, true)], |_| None).unwrap_err();
        assert_eq!(err.to_string(), "required key 'path' (the path) is not set");
    }

    #[test]
    fn refuses_reserved_host_and_duplicate_keys() {
        for (name, expected) in [
            ("Match", "reserves"),
            ("workers", "reserves"),
            ("tls.verify", "reserves"),
            ("wasm_path", "belong to the host"),
        ] {
            let err = resolve(&[key(name, None, false)], |_| None).unwrap_err().to_string();
            assert!(err.contains(expected), "key {name}: expected '{expected}' in {err:?}");
        }
        let err = resolve(&[key("a", None, false), key("A", None, false)], |_| None).unwrap_err();
        assert!(err.to_string().contains("twice"), "duplicate key accepted: {err}");
    }
}
