//! The flight recorder (`wasm_record DIR`): every flush that ended in error, retry or a fault
//! is kept, with what the guest said about it, so that the chunks that failed can be looked at
//! and replayed (`out-wasm replay DIR`) after the fact.
//!
//! Each output writes in `DIR/<output name>/` (0700, the agent user's only: the files hold log
//! records; the path must pass the compile cache's trust rule, [`PrivateDir`]). A recording is
//! one JSON file (0600) named `<unix ms>-<seq>-<result>-<digest>.json` ([`Recording`]): the tag
//! and the chunk as the agent delivered it, the guest's answer or fault with its wasm
//! backtrace, its log lines during the flush, the HTTP requests it made (method, origin, status,
//! time; never bodies or headers), the version's digest, and the section's keys with secrets
//! left out. The component of each recorded version is kept once beside them
//! (`<sha256>.wasm`), so a replay runs exactly what failed. The recordings of an output are
//! bounded in count and bytes (`wasm_record_max_files`, `wasm_record_max_bytes`): the oldest go
//! first, and a component goes with its last recording.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::bindings::Delivery;
use crate::config::RecordConfig;
use crate::lifecycle::version::GuestVersion;
use crate::log::Level;
use crate::runtime::fault::Fault;
use crate::runtime::image;
use crate::runtime::private_dir::PrivateDir;
use crate::sandbox::http::Exchange;
use crate::telemetry::host::FlushResult;

/// The version of the recording format.
pub const FORMAT: u32 = 1;

/// Host keys a recording keeps: what decides how the guest runs and what it may reach. The
/// guest's file (`wasm_path`) is kept as a copy instead; registry, cache and recorder keys do not
/// change what a flush does.
const HOST_KEYS: &[&str] = &[
    "wasm_event_format",
    "wasm_memory_limit",
    "wasm_flush_timeout",
    "wasm_init_timeout",
    "wasm_deadlines",
    "wasm_on_trap",
    "wasm_allow_dirs",
    "wasm_allow_net",
    "wasm_allow_env",
    "wasm_stdout",
    "wasm_stderr",
    "wasm_tls_ca_file",
    "wasm_tls_system_roots",
    "wasm_http_keepalive",
    "wasm_max_descriptors",
    "wasm_metrics_max",
    "wasm_metrics_max_series",
    "wasm_metrics_max_label_len",
];

/// What a key's name says about its value: these hold credentials (an API key, a password, a
/// token), and a recording leaves their values out.
const SECRET_WORDS: &[&str] = &["pass", "secret", "token", "key", "auth", "credential", "cookie", "private"];

/// The value recorded in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// Whether the value of key `name` is left out of recordings.
pub fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| name.contains(word))
}

/// One recorded flush, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recording {
    pub format: u32,
    /// The agent's name of the output instance.
    pub output: String,
    pub recorded_at_ms: u64,
    pub tag: String,
    /// `error`, `retry` or `fault`.
    pub result: String,
    /// The guest's message with its answer, or the fault's one-line description.
    pub answer: String,
    /// With a fault: its kind (`trap`, `deadline`, `memory`, `host`) and the wasm backtrace.
    pub fault: Option<String>,
    pub backtrace: Option<String>,
    /// The guest's lines during the flush: `(level, text)`.
    pub logs: Vec<(String, String)>,
    pub http: Vec<RecordedExchange>,
    pub guest: RecordedGuest,
    /// The section's keys that decide the guest's run; secrets are [`REDACTED`].
    pub config: Vec<(String, String)>,
    pub delivery: Option<(String, u32)>,
    pub flush_ms: f64,
    /// The chunk, base64, exactly as the agent delivered it.
    pub chunk: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordedExchange {
    pub method: String,
    pub origin: String,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub ms: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordedGuest {
    /// `wasm_path` as configured.
    pub path: String,
    pub sha256: String,
    /// The file name of the kept copy of the component, beside the recording; `None` when the
    /// file had changed before it could be copied.
    pub component: Option<String>,
}

impl Recording {
    /// Reads a recording file.
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("failed to read recording {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("failed to parse recording {}", path.display()))
    }

    /// The chunk's bytes.
    pub fn chunk(&self) -> Result<Vec<u8>> {
        base64::engine::general_purpose::STANDARD.decode(&self.chunk).context("failed to decode the recorded chunk")
    }
}

/// What one failed flush left to record.
pub struct Flight<'a> {
    pub tag: &'a str,
    pub chunk: &'a [u8],
    pub result: FlushResult,
    /// The guest's message (error, retry), when it answered.
    pub message: Option<&'a str>,
    pub fault: Option<&'a Fault>,
    pub logs: &'a [(Level, String)],
    pub http: &'a [Exchange],
    pub version: &'a GuestVersion,
    pub delivery: Option<&'a Delivery>,
    pub elapsed: Duration,
}

/// The recorder of one output.
pub struct Recorder {
    dir: PrivateDir,
    config: RecordConfig,
    output: String,
    /// The host keys of the section, as set (secrets left out).
    host_keys: Vec<(String, String)>,
    state: Mutex<State>,
}

struct State {
    next: u64,
    /// Components kept in the directory, by digest.
    components: HashSet<String>,
}

impl Recorder {
    /// Opens (creating it 0700) `DIR/<output>`; `lookup` reads the section's keys.
    pub fn open(config: &RecordConfig, output: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let path = config.dir.join(sanitize(output));
        let dir = PrivateDir::create(&path).with_context(|| {
            format!("failed to open the flight recorder directory {} (wasm_record)", path.display())
        })?;
        let host_keys = HOST_KEYS
            .iter()
            .filter_map(|key| Some(((*key).to_owned(), lookup(key)?)))
            .map(|(key, value)| if is_secret(&key) { (key, REDACTED.to_owned()) } else { (key, value) })
            .collect();
        let components =
            list(&dir).into_iter().filter_map(|(name, _)| name.strip_suffix(".wasm").map(str::to_owned)).collect();
        Ok(Self {
            dir,
            config: config.clone(),
            output: output.to_owned(),
            host_keys,
            state: Mutex::new(State { next: 0, components }),
        })
    }

    /// The directory recordings go to.
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes one recording, then drops the oldest past the bounds; the file's name.
    pub fn record(&self, flight: &Flight<'_>) -> Result<String> {
        let digest = flight.version.digest();
        let component = self.keep_component(flight.version);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut config = self.host_keys.clone();
        for entry in &flight.version.init_ctx.config {
            let value = if is_secret(&entry.key) { REDACTED.to_owned() } else { entry.value.clone() };
            config.push((entry.key.clone(), value));
        }
        let result = match flight.result {
            FlushResult::Error => "error",
            FlushResult::Retry => "retry",
            _ => "fault",
        };
        let recording = Recording {
            format: FORMAT,
            output: self.output.clone(),
            recorded_at_ms: now.as_millis() as u64,
            tag: flight.tag.to_owned(),
            result: result.to_owned(),
            answer: match (flight.fault, flight.message) {
                (Some(fault), _) => fault.message.clone(),
                (None, Some(message)) => message.to_owned(),
                (None, None) => String::new(),
            },
            fault: flight.fault.map(|fault| fault.kind().as_str().to_owned()),
            backtrace: flight.fault.and_then(|fault| fault.backtrace.clone()),
            logs: flight.logs.iter().map(|(level, text)| (level_name(*level).to_owned(), text.clone())).collect(),
            http: flight
                .http
                .iter()
                .map(|exchange| RecordedExchange {
                    method: exchange.method.clone(),
                    origin: exchange.origin.clone(),
                    status: exchange.status.as_ref().ok().copied(),
                    error: exchange.status.as_ref().err().cloned(),
                    ms: exchange.elapsed.as_secs_f64() * 1e3,
                })
                .collect(),
            guest: RecordedGuest {
                path: flight.version.init_ctx.guest_path.clone(),
                sha256: digest.to_owned(),
                component,
            },
            config,
            delivery: flight.delivery.map(|d| (d.id.clone(), d.attempt)),
            flush_ms: flight.elapsed.as_secs_f64() * 1e3,
            chunk: base64::engine::general_purpose::STANDARD.encode(flight.chunk),
        };
        let seq = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.next += 1;
            state.next
        };
        let name = format!("{:013}-{seq:06}-{result}-{}.json", now.as_millis(), &digest[..12.min(digest.len())]);
        let bytes = serde_json::to_vec_pretty(&recording).context("failed to encode a recording")?;
        self.dir.write_atomically_with(&name, |file| Ok(file.write_all(&bytes)?))?;
        self.trim();
        Ok(name)
    }

    /// Copies the version's component beside the recordings, once; its file name.
    fn keep_component(&self, version: &GuestVersion) -> Option<String> {
        let digest = version.digest();
        let name = format!("{digest}.wasm");
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.components.contains(digest) {
            return Some(name);
        }
        // The file the version was loaded from, if it still holds that version (a hot swap may
        // have replaced it since; a pulled component is stored under its digest).
        let bytes = std::fs::read(version.image.path()).ok().filter(|bytes| image::digest(bytes) == digest)?;
        self.dir.create_once(&name, &bytes).ok()?;
        state.components.insert(digest.to_owned());
        Some(name)
    }

    /// Drops the oldest recordings past the bounds, and the components no recording is left for.
    fn trim(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let files = list(&self.dir);
        let mut bytes: u64 = files.iter().map(|(_, len)| len).sum();
        let (mut recordings, components): (Vec<_>, Vec<_>) =
            files.into_iter().partition(|(name, _)| name.ends_with(".json"));
        // Named by time first: sorted, the oldest come first.
        recordings.sort();
        let mut first = 0;
        while recordings.len() - first > self.config.max_files
            || (bytes > self.config.max_bytes && recordings.len() - first > 1)
        {
            self.dir.remove(&recordings[first].0);
            bytes -= recordings[first].1;
            first += 1;
        }
        let kept: HashSet<&str> = recordings[first..].iter().filter_map(|(name, _)| digest_of(name)).collect();
        for (name, _) in &components {
            let Some(digest) = name.strip_suffix(".wasm") else { continue };
            if !kept.contains(&digest[..12.min(digest.len())]) {
                self.dir.remove(name);
                state.components.remove(digest);
            }
        }
    }
}

/// The digest prefix in a recording's name.
fn digest_of(name: &str) -> Option<&str> {
    name.strip_suffix(".json")?.rsplit('-').next()
}

/// The regular files of the directory, with their sizes (temporary files left out).
fn list(dir: &PrivateDir) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(dir.path()) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let meta = entry.metadata().ok()?;
            (meta.is_file() && !name.starts_with('.')).then_some((name, meta.len()))
        })
        .collect()
}

/// An output name as a directory name: the agent's names (`wasm.0`, an alias) are, but an alias
/// could hold a slash.
fn sanitize(output: &str) -> String {
    let name: String =
        output.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    if name.chars().all(|c| c == '.') { format!("_{name}") } else { name }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_named_so() {
        for key in ["api_key", "password", "Token", "wasm_oci_auth_file", "client_secret", "private_key"] {
            assert!(is_secret(key), "{key}");
        }
        for key in ["endpoint", "url", "wasm_flush_timeout", "note", "gate_dir"] {
            assert!(!is_secret(key), "{key}");
        }
    }

    #[test]
    fn names_sort_by_time_and_carry_the_digest() {
        assert_eq!(digest_of("0001765100000000-000001-fault-0123456789ab.json"), Some("0123456789ab"));
        assert_eq!(sanitize("wasm.0"), "wasm.0");
        assert_eq!(sanitize("../x y"), ".._x_y");
        assert_eq!(sanitize(".."), "_..", "never the parent directory");
    }
}
