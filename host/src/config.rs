//! The instance's configuration: the host's own `wasm_*` keys (each declared once, in
//! [`keys`]) and the keys a guest declares.

pub mod keys;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::agent::handle::Agent;
use crate::bindings::{ConfigEntry, ConfigKey, EventFormat, JsonOptions};
use crate::sandbox::Capabilities;
use crate::sandbox::client_cert::ClientCert;
use crate::sandbox::config::is_reserved;
use crate::sandbox::metrics::MetricLimits;
use crate::sandbox::network::{self, NetGrant};
use crate::sandbox::proxy::HttpProxy;
use crate::sandbox::tls::TlsTrust;
use keys::PREFIX as HOST_KEY_PREFIX;

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
        use crate::runtime::oci::{OciRef, Reach, Verify, is_reference};
        if !is_reference(path) {
            if let Some(key) = keys::OCI_KEYS.iter().find(|key| lookup(key.name()).is_some()) {
                bail!(
                    "key '{}' applies to a guest pulled from a registry (wasm_path oci://...), not to a file",
                    key.name()
                );
            }
            return Ok(None);
        }
        let reference = OciRef::parse(path).context("invalid value for key 'wasm_path'")?;
        let verify = keys::OCI_VERIFY.value(lookup)?;
        if verify == Verify::Digest && reference.follows() {
            bail!(
                "wasm_oci_verify digest takes a pinned reference only: write wasm_path \
                 oci://REGISTRY/REPOSITORY@sha256:DIGEST (or give a cosign public key to follow a tag)"
            );
        }
        let reach = Reach {
            insecure_http: keys::OCI_INSECURE_HTTP.value(lookup)?,
            pull_timeout: keys::OCI_PULL_TIMEOUT.value(lookup)?,
        };
        Ok(Some(Self {
            reference,
            verify,
            poll_interval: keys::OCI_POLL_INTERVAL.value(lookup)?,
            auth_file: keys::OCI_AUTH_FILE.get(lookup)?,
            reach,
        }))
    }
}

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
    /// The keys' defaults ([`keys`]).
    fn default() -> Self {
        Self::from_lookup(&|_| None).expect("every default is a value its key takes (tested in keys)")
    }
}

impl Limits {
    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self> {
        let limits = Self {
            memory: keys::MEMORY_LIMIT.value(lookup)?,
            flush_timeout: keys::FLUSH_TIMEOUT.value(lookup)?,
            init_timeout: keys::INIT_TIMEOUT.value(lookup)?,
            deadlines: keys::DEADLINES.value(lookup)?,
            idle_interval: keys::IDLE_INTERVAL.value(lookup)?,
            idle_budget: keys::IDLE_BUDGET.value(lookup)?,
        };
        if limits.idle_budget > limits.flush_timeout {
            bail!(
                "wasm_idle_budget ({} ms) must not exceed wasm_flush_timeout ({} ms): a flush that arrives during \
                 an idle call waits for it",
                limits.idle_budget.as_millis(),
                limits.flush_timeout.as_millis()
            );
        }
        Ok(limits)
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

    /// The host's keys of a section, as `lookup` answers for each; a `wasm_*` key one edit
    /// from a real one (the agent lists no keys to a plugin: it is asked for each) is refused.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let misspelt = keys::misspellings().into_iter().filter(|name| lookup(name).is_some()).collect::<Vec<_>>();
        keys::refuse_unknown(misspelt.iter().map(String::as_str))?;
        let path = keys::PATH.value(&lookup)?;
        let oci = OciConfig::from_lookup(&path.to_string_lossy(), &lookup)?;
        let metric_limits = metric_limits(&lookup)?;
        Ok(Self {
            wasm_path: path,
            oci,
            watch: keys::WATCH.value(&lookup)?,
            watch_interval: keys::WATCH_INTERVAL.value(&lookup)?,
            warm_spare: keys::WARM_SPARE.value(&lookup)?,
            cache_dir: match keys::CACHE_DIR.get(&lookup)? {
                Some(chosen) => chosen,
                None => crate::runtime::cache::CompileCache::default_dir(),
            },
            limits: Limits::from_lookup(&lookup)?,
            on_fault: keys::ON_TRAP.value(&lookup)?,
            event_format: keys::EVENT_FORMAT.get(&lookup)?,
            capabilities: std::sync::Arc::new(capabilities(&lookup)?),
            metric_limits,
            http_keepalive: keys::HTTP_KEEPALIVE.value(&lookup)?,
            max_descriptors: keys::MAX_DESCRIPTORS.value(&lookup)?,
            canary: canary(&lookup)?,
            record: record(&lookup)?,
        })
    }
}

/// How much the guests may publish (`wasm_metrics_*`).
pub fn metric_limits(lookup: &impl Fn(&str) -> Option<String>) -> Result<MetricLimits> {
    Ok(MetricLimits {
        max_metrics: keys::METRICS_MAX.value(lookup)?,
        max_series: keys::METRICS_MAX_SERIES.value(lookup)?,
        max_label_len: keys::METRICS_MAX_LABEL_LEN.value(lookup)?,
    })
}

/// `wasm_canary` and `wasm_canary_window`, which needs it.
fn canary(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<CanaryConfig>> {
    let Some(share) = keys::CANARY.value(lookup)? else {
        if lookup(keys::CANARY_WINDOW.name).is_some() {
            bail!("key 'wasm_canary_window' needs wasm_canary (a share of flushes such as 10%, or one)");
        }
        return Ok(None);
    };
    let (window_flushes, window_time) = keys::CANARY_WINDOW.value(lookup)?;
    Ok(Some(CanaryConfig { share, window_flushes, window_time }))
}

/// `wasm_record DIR` and its bounds, which need it.
fn record(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<RecordConfig>> {
    let Some(dir) = keys::RECORD.get(lookup)?.flatten() else {
        for key in [keys::RECORD_MAX_BYTES.name, keys::RECORD_MAX_FILES.name] {
            if lookup(key).is_some() {
                bail!("key '{key}' needs wasm_record (the recorder's directory)");
            }
        }
        return Ok(None);
    };
    Ok(Some(RecordConfig {
        dir,
        max_bytes: keys::RECORD_MAX_BYTES.value(lookup)?,
        max_files: keys::RECORD_MAX_FILES.value(lookup)?,
    }))
}

/// What the section grants the guest (`wasm_allow_*`, `wasm_tls_*`, `wasm_stdout`,
/// `wasm_stderr`): nothing by default.
pub fn capabilities(lookup: &impl Fn(&str) -> Option<String>) -> Result<Capabilities> {
    let env = keys::ALLOW_ENV.get(lookup)?.unwrap_or_default();
    let net = keys::ALLOW_NET.get(lookup)?.unwrap_or_default();
    let mut tls = TlsTrust::load(keys::TLS_CA_FILE.get(lookup)?, keys::TLS_SYSTEM_ROOTS.value(lookup)?)?;
    if let Some(cert) = client_cert(lookup)? {
        tls = tls.with_client_cert(cert)?;
    }
    Ok(Capabilities {
        stdout: keys::STDOUT.value(lookup)?,
        stderr: keys::STDERR.value(lookup)?,
        tls,
        proxy: http_proxy(lookup, &net)?.map(Arc::new),
        dirs: keys::ALLOW_DIRS.get(lookup)?.unwrap_or_default(),
        env: crate::sandbox::env::grants(&env),
        net,
    })
}

/// `wasm_tls_crt_file` with `wasm_tls_key_file` (each needs the other) and the key's password.
fn client_cert(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<ClientCert>> {
    let passwd_file = keys::TLS_KEY_PASSWD_FILE.get(lookup)?;
    match (keys::TLS_CRT_FILE.get(lookup)?, keys::TLS_KEY_FILE.get(lookup)?) {
        (Some(crt), Some(key)) => ClientCert::load(crt, key, passwd_file.as_deref()).map(Some),
        (Some(_), None) => bail!("wasm_tls_crt_file needs wasm_tls_key_file (the certificate's private key)"),
        (None, Some(_)) => bail!("wasm_tls_key_file needs wasm_tls_crt_file (the certificate it is the key of)"),
        (None, None) if passwd_file.is_some() => {
            bail!("wasm_tls_key_passwd_file needs wasm_tls_key_file (the encrypted key it opens)")
        }
        (None, None) => Ok(None),
    }
}

/// `wasm_http_proxy`, granted by `net`, with `wasm_no_proxy` and its credentials.
fn http_proxy(lookup: &impl Fn(&str) -> Option<String>, net: &[NetGrant]) -> Result<Option<HttpProxy>> {
    let bypass = keys::NO_PROXY.get(lookup)?.unwrap_or_default();
    let auth_file = keys::HTTP_PROXY_AUTH_FILE.get(lookup)?;
    let Some((host, port)) = keys::HTTP_PROXY.get(lookup)? else {
        for key in [keys::NO_PROXY.name, keys::HTTP_PROXY_AUTH_FILE.name] {
            if lookup(key).is_some() {
                bail!("key '{key}' needs wasm_http_proxy (the proxy it is for)");
            }
        }
        return Ok(None);
    };
    if !network::grants_endpoint(net, &host, port) {
        let shown = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        bail!("the proxy {shown} (wasm_http_proxy) is not granted: add {shown} to wasm_allow_net");
    }
    HttpProxy::new((host, port), bypass, auth_file.as_deref()).map(Some)
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
        assert_eq!((tag.verify, tag.poll_interval, tag.auth_file), (Verify::Off, Duration::from_secs(60), None));
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
        assert_eq!(config.watch_interval, Duration::from_secs(2));
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
        assert_eq!(config.max_descriptors, 64);
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
        assert_eq!((canary.window_flushes, canary.window_time), (100, Duration::from_secs(60)));
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
        assert_eq!(window("30s").unwrap(), (100, Duration::from_secs(30)));
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
        assert_eq!((record.max_files, record.max_bytes), (5, 64 << 20));
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

    fn caps(pairs: &[(&str, &str)]) -> Result<Capabilities> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        capabilities(&|key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    #[test]
    fn nothing_is_granted_by_default() {
        use crate::sandbox::stdio::Stdio;
        let caps = caps(&[]).unwrap();
        assert!(caps.dirs.is_empty() && caps.env.is_empty() && caps.net.is_empty());
        assert_eq!((caps.stdout, caps.stderr), (Stdio::Agent, Stdio::Agent), "stdout and stderr are the agent's");
    }

    #[test]
    fn parses_grants_and_refuses_bad_ones() {
        use crate::sandbox::network::{GrantHost, NetGrant};
        use crate::sandbox::stdio::Stdio;
        let dir = std::env::temp_dir();
        let value = format!("{0}:/data, {0}:/out:rw", dir.display());
        let granted = caps(&[
            ("wasm_allow_dirs", &value),
            ("wasm_allow_env", "PATH, OUT_WASM_SURELY_UNSET"),
            ("wasm_allow_net", "127.0.0.1:8080, [::1]:*, Logs.Example.:443"),
            ("wasm_stdout", "off"),
        ])
        .unwrap();
        assert_eq!(granted.dirs.len(), 2);
        assert!(!granted.dirs[0].writable && granted.dirs[1].writable);
        assert_eq!(
            granted.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["PATH"],
            "unset variables are skipped"
        );
        assert_eq!(
            granted.net,
            [
                NetGrant { host: GrantHost::Ip("127.0.0.1".parse().unwrap()), port: Some(8080) },
                NetGrant { host: GrantHost::Ip("::1".parse().unwrap()), port: None },
                NetGrant { host: GrantHost::Name("logs.example".into()), port: Some(443) },
            ],
            "names are kept as written (lowercase), never resolved"
        );
        assert_eq!(granted.stdout, Stdio::Off);
        for (key, value, expected) in [
            ("wasm_allow_dirs", "/nonexistent/dir:/x", "does not exist"),
            ("wasm_allow_dirs", "/tmp", "host_dir:guest_dir"),
            ("wasm_allow_dirs", "/tmp:relative", "must be absolute"),
            ("wasm_allow_net", "127.0.0.1", "host:port"),
            ("wasm_allow_net", "127.0.0.1:http", "invalid port"),
            ("wasm_allow_net", ":80", "invalid host"),
            ("wasm_allow_net", "http://x:80", "invalid host"),
            ("wasm_stderr", "file", "agent, log, off"),
            ("wasm_tls_system_roots", "maybe", "(on, off)"),
        ] {
            let err = format!("{:#}", caps(&[(key, value)]).unwrap_err());
            assert!(err.contains(expected) && err.contains(key), "{key}={value}: expected {expected:?} in {err}");
        }
    }
}
