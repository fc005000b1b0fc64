//! The host's own keys of an `[OUTPUT] Name wasm` section, each declared once: its name, what
//! leaving it out means, the values it takes and how they are read, what it does, and the
//! release that added it. Everything that knows a key reads it here: the parser
//! ([`super::HostConfig`]), `out-wasm check`, README's key table (tested equal to
//! [`markdown_table`]) and the refusal of a misspelt key ([`refuse_unknown`]).
//!
//! Why the agent's `config_map` is not used for this (Fluent Bit 5.0 and later let a proxy
//! plugin pass one): it is one list per plugin, fixed at registration, and the agent refuses
//! every key not in it, but a section also holds the guest's own keys, which only the guest
//! knows, after the instance has started. So the host checks its own prefix itself.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

use crate::runtime::oci::Verify;
use crate::sandbox::filesystem::{self, DirGrant};
use crate::sandbox::network::{self, NetGrant};
use crate::sandbox::proxy::{self, Bypass};
use crate::sandbox::stdio::Stdio;

use super::{CanaryShare, FormatKey, OnFault, WarmSpare};

/// Prefix of the host's keys: a guest may neither declare nor read a key that starts with it.
pub use crate::sandbox::config::HOST_KEY_PREFIX as PREFIX;

/// What leaving a key out means.
#[derive(Clone, Copy, Debug)]
pub enum Unset {
    /// The instance refuses to start.
    Required,
    /// This value, as an operator would write it (read by the key's own parser).
    Value(&'static str),
    /// Nothing is set; the text says what that means.
    Means(&'static str),
}

/// How a key's value is read.
pub enum Parser<T> {
    /// Accepted or not: a refusal names the key and the values it takes.
    Plain(fn(&str) -> Option<T>),
    /// With a reason of its own (a grant's syntax, a file that does not exist...).
    Explained(fn(&str) -> Result<T>),
}

/// One key of the host.
pub struct Key<T: 'static> {
    pub name: &'static str,
    pub unset: Unset,
    /// The values it takes, as a refusal lists them.
    pub takes: &'static str,
    /// What it does: README's text (Markdown).
    pub doc: &'static str,
    /// The out_wasm release that added it.
    pub since: &'static str,
    parser: Parser<T>,
}

impl<T> Key<T> {
    /// `value` as this key reads it; a refusal names the key.
    pub fn parse(&self, value: &str) -> Result<T> {
        let value = value.trim();
        let refused = || anyhow!("invalid value {value:?} for key '{}' ({})", self.name, self.takes);
        match &self.parser {
            Parser::Plain(parse) => parse(value).ok_or_else(refused),
            Parser::Explained(parse) => parse(value).map_err(|err| err.context(refused())),
        }
    }

    /// The key's value in the section, its default when it is not set, `None` when leaving it
    /// out means nothing is set.
    pub fn get(&self, lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<T>> {
        match (lookup(self.name), self.unset) {
            (Some(value), _) => self.parse(&value).map(Some),
            (None, Unset::Value(default)) => self.parse(default).map(Some),
            (None, Unset::Required) => bail!("required key '{}' ({}) is not set", self.name, self.takes),
            (None, Unset::Means(_)) => Ok(None),
        }
    }

    /// As [`Key::get`], for a key that always has a value (a default, or required).
    pub fn value(&self, lookup: &impl Fn(&str) -> Option<String>) -> Result<T> {
        self.get(lookup)?.ok_or_else(|| anyhow!("key '{}' has no default", self.name))
    }
}

/// A key as the lists read it, whatever its type.
pub trait Declared: Sync {
    fn name(&self) -> &'static str;
    fn unset(&self) -> Unset;
    fn doc(&self) -> &'static str;
    fn since(&self) -> &'static str;
    /// Whether `value` would be accepted (files it names are not read).
    #[cfg(test)]
    fn check(&self, value: &str) -> Result<()>;
}

impl<T: 'static> Declared for Key<T> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn unset(&self) -> Unset {
        self.unset
    }
    fn doc(&self) -> &'static str {
        self.doc
    }
    fn since(&self) -> &'static str {
        self.since
    }
    #[cfg(test)]
    fn check(&self, value: &str) -> Result<()> {
        self.parse(value).map(drop)
    }
}

pub static PATH: Key<PathBuf> = Key {
    name: "wasm_path",
    unset: Unset::Required,
    takes: "the guest component file, or oci://REGISTRY/REPOSITORY:TAG or @sha256:DIGEST",
    doc: "the guest component file, or `oci://REGISTRY/REPOSITORY:TAG` (pulled, and the tag followed) or \
          `oci://REGISTRY/REPOSITORY@sha256:DIGEST` (pinned): a CNCF WebAssembly artifact pulled over HTTPS (the \
          `wasm_tls_*` roots), stored by digest beside the compile cache and started from there when the \
          registry cannot be reached ([docs/hot-swap.md](docs/hot-swap.md#from-an-oci-registry))",
    since: "0.1.0",
    parser: Parser::Plain(path),
};

pub static OCI_AUTH_FILE: Key<PathBuf> = Key {
    name: "wasm_oci_auth_file",
    unset: Unset::Means("`~/.docker/config.json` (if it exists)"),
    takes: "a Docker config.json file",
    doc: "a Docker `config.json` whose `auths` entry for the registry holds its credentials (`auth`, \
          `username`/`password`, `identitytoken`); anonymous without one; credentials never appear in the log",
    since: "0.1.0",
    parser: Parser::Plain(path),
};

pub static OCI_INSECURE_HTTP: Key<bool> = Key {
    name: "wasm_oci_insecure_http",
    unset: Unset::Value("off"),
    takes: "on, off",
    doc: "`on`: speak plain HTTP to a registry that is not on loopback (only on a network you trust). A registry \
          on loopback (`localhost`, `127.0.0.0/8`, `[::1]`: kind's and k3d's `localhost:5000`) is tried over \
          HTTPS and spoken to over plain HTTP if it does not answer TLS; any other registry that does not answer \
          TLS is refused with a line naming this key",
    since: "0.1.0",
    parser: Parser::Plain(switch),
};

pub static OCI_PULL_TIMEOUT: Key<Duration> = Key {
    name: "wasm_oci_pull_timeout",
    unset: Unset::Value("60s"),
    takes: "e.g. 60s, 5m",
    doc: "how long one whole pull (resolve, manifest, signatures, layer) may take, whatever the registry does; \
          past it the pull counts as the registry being unreachable (a start falls back to the artifact store). \
          Manifests are read up to 1 MiB, signature payloads 64 KiB, layers 256 MiB \
          ([security](docs/security.md#what-a-registry-can-make-the-host-hold))",
    since: "0.1.0",
    parser: Parser::Plain(positive_duration),
};

pub static OCI_POLL_INTERVAL: Key<Duration> = Key {
    name: "wasm_oci_poll_interval",
    unset: Unset::Value("60s"),
    takes: "e.g. 60s, 5m",
    doc: "how often a followed tag is resolved (a `HEAD` request; give or take a tenth, and backing off up to 8 \
          times while the registry fails); a new digest goes through the hot swap",
    since: "0.1.0",
    parser: Parser::Plain(positive_duration),
};

pub static OCI_VERIFY: Key<Verify> = Key {
    name: "wasm_oci_verify",
    unset: Unset::Value("off"),
    takes: "off, digest, or a public key file",
    doc: "`digest`: only a pinned `@sha256:` reference is accepted; a file: a cosign public key (ECDSA P-256 PEM) \
          whose signature (`sha256-<digest>.sig`) each pulled manifest must carry, an unsigned or badly signed \
          one is refused",
    since: "0.1.0",
    parser: Parser::Plain(verify),
};

/// The keys that apply only to a guest pulled from a registry.
pub static OCI_KEYS: [&dyn Declared; 5] =
    [&OCI_AUTH_FILE, &OCI_INSECURE_HTTP, &OCI_PULL_TIMEOUT, &OCI_POLL_INTERVAL, &OCI_VERIFY];

pub static WATCH: Key<bool> = Key {
    name: "wasm_watch",
    unset: Unset::Value("on"),
    takes: "on, off",
    doc: "swap in the file's new content while the agent runs ([docs/hot-swap.md](docs/hot-swap.md))",
    since: "0.1.0",
    parser: Parser::Plain(switch),
};

pub static WATCH_INTERVAL: Key<Duration> = Key {
    name: "wasm_watch_interval",
    unset: Unset::Value("2s"),
    takes: "e.g. 2s, 500ms",
    doc: "how often the file is checked",
    since: "0.1.0",
    parser: Parser::Plain(positive_duration),
};

pub static CACHE_DIR: Key<Option<PathBuf>> = Key {
    name: "wasm_cache_dir",
    unset: Unset::Means("`$XDG_CACHE_HOME/out_wasm` or `~/.cache/out_wasm`"),
    takes: "a directory, or off",
    doc: "compiled components, so restarts and swaps back do not compile again; `off` disables. Used only if \
          every component of its path is root's or the agent's and writable by no other user (sticky \
          `/tmp`-like parents allowed), and an entry only with its MAC under the directory's key \
          ([security](docs/security.md#the-compile-cache))",
    since: "0.1.0",
    parser: Parser::Plain(|value| match value.eq_ignore_ascii_case("off") {
        true => Some(None),
        false => path(value).map(Some),
    }),
};

pub static MEMORY_LIMIT: Key<usize> = Key {
    name: "wasm_memory_limit",
    unset: Unset::Value("128M"),
    takes: "e.g. 64M, 1G; at least 64K",
    doc: "the memory of one guest instance: all its linear memories and tables together; growing past it traps, \
          and an instance past 3/4 of it is recycled between flushes. What the guest can make the host keep \
          beside it (handles, header fields, request bodies) is capped too: at most 21 MiB more \
          ([docs/security.md](docs/security.md#what-a-guest-can-make-the-host-hold))",
    since: "0.1.0",
    parser: Parser::Plain(|value| size(value).filter(|n| *n >= 1 << 16)),
};

pub static FLUSH_TIMEOUT: Key<Duration> = Key {
    name: "wasm_flush_timeout",
    unset: Unset::Value("10s"),
    takes: "e.g. 10s, 500ms",
    doc: "how long one flush (or exit) may run before the guest is stopped",
    since: "0.1.0",
    parser: Parser::Plain(positive_duration),
};

pub static INIT_TIMEOUT: Key<Duration> = Key {
    name: "wasm_init_timeout",
    unset: Unset::Value("30s"),
    takes: "e.g. 30s, 1m",
    doc: "how long instantiation, config-schema and init may run",
    since: "0.1.0",
    parser: Parser::Plain(positive_duration),
};

pub static DEADLINES: Key<bool> = Key {
    name: "wasm_deadlines",
    unset: Unset::Value("on"),
    takes: "on, off",
    doc: "`off` compiles without the checks deadlines need (faster; a stuck guest then blocks its flush)",
    since: "0.1.0",
    parser: Parser::Plain(switch),
};

pub static EVENT_FORMAT: Key<FormatKey> = Key {
    name: "wasm_event_format",
    unset: Unset::Means("the guest's choice"),
    takes: "msgpack, json_lines, otlp_json",
    doc: "what `flush` receives: `msgpack` (the chunk as the agent delivered it), `json_lines` (the host renders \
          each record as the agent's `stdout` output does with `format json_lines` and default keys, one line \
          each, so the guest need not decode msgpack) or `otlp_json` (the chunk as one OTLP/JSON export request; \
          guests of WIT 0.2.0 or later); guests declare their preference, this key overrides it",
    since: "0.1.0",
    parser: Parser::Plain(|value| match value.to_ascii_lowercase().as_str() {
        "msgpack" => Some(FormatKey::Msgpack),
        "json_lines" | "json-lines" => Some(FormatKey::JsonLines),
        "otlp_json" | "otlp-json" => Some(FormatKey::OtlpJson),
        _ => None,
    }),
};

pub static WARM_SPARE: Key<WarmSpare> = Key {
    name: "wasm_warm_spare",
    unset: Unset::Value("auto"),
    takes: "auto, on, off",
    doc: "keep one guest instance started and initialised ahead of need, so no flush waits for an instance to \
          start: `on` from init, `off` never, `auto` from init for a small guest (at most 4 MiB of linear memory \
          after init: Rust, C) and from the first flush that needs a second instance for a larger one (Python, \
          JavaScript) ([docs/production.md](docs/production.md#starts-off-the-flush-path))",
    since: "0.1.0",
    parser: Parser::Plain(|value| match value.eq_ignore_ascii_case("auto") {
        true => Some(WarmSpare::Auto),
        false => switch(value).map(|on| if on { WarmSpare::On } else { WarmSpare::Off }),
    }),
};

pub static IDLE_INTERVAL: Key<Duration> = Key {
    name: "wasm_idle_interval",
    unset: Unset::Value("1s"),
    takes: "e.g. 1s, 200ms",
    doc: "for guests that asked for it (WIT 0.3.0 `idle`: Go's goroutines, timers), how long an instance must go \
          without a call before it gets time for its background work, and the least time between two such calls",
    since: "0.1.0",
    parser: Parser::Plain(positive_duration),
};

pub static IDLE_BUDGET: Key<Duration> = Key {
    name: "wasm_idle_budget",
    unset: Unset::Value("50ms"),
    takes: "e.g. 50ms; at most wasm_flush_timeout",
    doc: "how long one `idle` call should take (a flush that arrives waits for it); an `idle` call still running \
          250 ms past its budget is stopped as a flush is at its deadline",
    since: "0.1.0",
    parser: Parser::Plain(positive_duration),
};

/// 64 by default: an output needs a few (a connection or two per instance, a file it writes);
/// 64 is 1/16 of the usual soft RLIMIT_NOFILE of 1024, so even a dozen outputs whose guests all
/// open without end leave the agent most of its descriptors.
pub static MAX_DESCRIPTORS: Key<usize> = Key {
    name: "wasm_max_descriptors",
    unset: Unset::Value("64"),
    takes: "a positive number",
    doc: "how many files, sockets and HTTP connections the output's guests may hold open at once, all its \
          instances together (they are the agent's descriptors); past it the guest's open, socket or request \
          fails, the refusal is logged at warn and counted in `fluentbit_wasm_descriptor_refusals_total` \
          ([docs/security.md](docs/security.md#descriptors))",
    since: "0.1.0",
    parser: Parser::Plain(count),
};

pub static HTTP_KEEPALIVE: Key<Option<Duration>> = Key {
    name: "wasm_http_keepalive",
    unset: Unset::Value("15s"),
    takes: "e.g. 15s, or off",
    doc: "how long an idle HTTP connection of the output's guests stays open for the next request (TLS \
          handshakes are paid once, not per flush); `off`: a connection per request. The default stays below \
          the idle timeouts of common servers and load balancers (nginx 75 s, AWS ALB 60 s)",
    since: "0.1.0",
    parser: Parser::Plain(|value| match switch(value) {
        Some(false) => Some(None),
        _ => positive_duration(value).map(Some),
    }),
};

pub static METRICS_MAX: Key<usize> = Key {
    name: "wasm_metrics_max",
    unset: Unset::Value("64"),
    takes: "a positive number",
    doc: "how many metrics the guests of this output may declare; past it the declaration is refused, counted \
          in `fluentbit_wasm_metrics_refused_total` and logged at warn at most once per 10 s \
          ([docs/metrics.md](docs/metrics.md))",
    since: "0.1.0",
    parser: Parser::Plain(count),
};

pub static METRICS_MAX_SERIES: Key<usize> = Key {
    name: "wasm_metrics_max_series",
    unset: Unset::Value("1000"),
    takes: "a positive number",
    doc: "how many series (label value combinations) the guests' metrics may have, over all of them; past it an \
          update to a new series is refused and counted as for `wasm_metrics_max`",
    since: "0.1.0",
    parser: Parser::Plain(count),
};

pub static METRICS_MAX_LABEL_LEN: Key<usize> = Key {
    name: "wasm_metrics_max_label_len",
    unset: Unset::Value("128"),
    takes: "a positive number",
    doc: "the bytes of one label value of a guest's metric; a longer one is refused and counted as for \
          `wasm_metrics_max`",
    since: "0.1.0",
    parser: Parser::Plain(count),
};

pub static ON_TRAP: Key<OnFault> = Key {
    name: "wasm_on_trap",
    unset: Unset::Value("retry"),
    takes: "retry, error",
    doc: "what the agent is told when a guest faults in flush: `retry` (FLB_RETRY) or `error` (FLB_ERROR, the \
          chunk is dropped)",
    since: "0.1.0",
    parser: Parser::Plain(|value| match value.to_ascii_lowercase().as_str() {
        "retry" => Some(OnFault::Retry),
        "error" => Some(OnFault::Error),
        _ => None,
    }),
};

pub static ALLOW_DIRS: Key<Vec<DirGrant>> = Key {
    name: "wasm_allow_dirs",
    unset: Unset::Means("none"),
    takes: "host_dir:guest_dir[:ro|rw], ...",
    doc: "`host_dir:guest_dir[:ro\\|rw], ...`: directories the guest may open",
    since: "0.1.0",
    parser: Parser::Explained(|value| filesystem::grants(&list(value))),
};

pub static ALLOW_ENV: Key<Vec<String>> = Key {
    name: "wasm_allow_env",
    unset: Unset::Means("none"),
    takes: "NAME, ...",
    doc: "`NAME, ...`: environment variables the guest may read",
    since: "0.1.0",
    parser: Parser::Plain(|value| Some(list(value))),
};

pub static ALLOW_NET: Key<Vec<NetGrant>> = Key {
    name: "wasm_allow_net",
    unset: Unset::Means("none"),
    takes: "host:port, ...",
    doc: "`host:port, ...` (`host:*`; a range as `10.0.0.0/8:443`): what the guest may reach over TCP, UDP and \
          HTTP, and the only names it may look up (an IP-only grant allows no lookup); a name's answers in \
          loopback, link-local, private and other special ranges are reached only when a grant names that \
          address or range (`localhost` names the loopback); one policy for all three \
          ([docs/security.md](docs/security.md#the-network-policy))",
    since: "0.1.0",
    parser: Parser::Explained(|value| network::grants(&list(value))),
};

pub static TLS_CA_FILE: Key<PathBuf> = Key {
    name: "wasm_tls_ca_file",
    unset: Unset::Means("none"),
    takes: "a PEM file of CA certificates",
    doc: "a PEM file of CA certificates that the guest's HTTPS requests (and the registry client) trust in \
          addition to the public roots compiled into the host (a private or corporate CA), as does TLS the guest \
          does itself (the roots are its `SSL_CERT_FILE`, [docs/security.md](docs/security.md#private-https)); \
          read at start, an \
          unreadable file or one without a certificate refuses the instance",
    since: "0.1.0",
    parser: Parser::Plain(path),
};

pub static TLS_SYSTEM_ROOTS: Key<bool> = Key {
    name: "wasm_tls_system_roots",
    unset: Unset::Value("off"),
    takes: "on, off",
    doc: "`on`: HTTPS also trusts the system's store (`SSL_CERT_FILE`, `SSL_CERT_DIR`, or the distribution's \
          bundle)",
    since: "0.1.0",
    parser: Parser::Plain(switch),
};

pub static TLS_CRT_FILE: Key<PathBuf> = Key {
    name: "wasm_tls_crt_file",
    unset: Unset::Means("none"),
    takes: "a PEM file: the client certificate, then any intermediates",
    doc: "the client certificate the guest's HTTPS requests present to a server that asks for one (mutual \
          TLS), with `wasm_tls_key_file`; read at start, the key kept by the host (the guest never sees it)",
    since: "0.1.0",
    parser: Parser::Plain(path),
};

pub static TLS_KEY_FILE: Key<PathBuf> = Key {
    name: "wasm_tls_key_file",
    unset: Unset::Means("none"),
    takes: "a PEM private key file (PKCS#8, PKCS#1, SEC1, or encrypted PKCS#8)",
    doc: "the private key of `wasm_tls_crt_file`; an encrypted one (`ENCRYPTED PRIVATE KEY`, as `openssl pkcs8 \
          -topk8` writes) needs `wasm_tls_key_passwd_file`",
    since: "0.1.0",
    parser: Parser::Plain(path),
};

pub static TLS_KEY_PASSWD_FILE: Key<PathBuf> = Key {
    name: "wasm_tls_key_passwd_file",
    unset: Unset::Means("none"),
    takes: "a file whose first line is the key's password",
    doc: "the password of an encrypted `wasm_tls_key_file`, on the file's first line (a file, so the password \
          is in neither the configuration nor the agent's environment)",
    since: "0.1.0",
    parser: Parser::Plain(path),
};

pub static HTTP_PROXY: Key<(String, u16)> = Key {
    name: "wasm_http_proxy",
    unset: Unset::Means("none"),
    takes: "http://HOST:PORT",
    doc: "an HTTP proxy the guest's HTTP requests go through: plain HTTP ones in absolute form, HTTPS ones \
          through a `CONNECT` tunnel (TLS end to end, with the host's roots and client certificate). The proxy \
          must be granted by `wasm_allow_net`, and each request's target still is judged by it \
          ([docs/security.md](docs/security.md#proxies)). Not used for the guest's own sockets",
    since: "0.1.0",
    parser: Parser::Explained(proxy::parse_url),
};

pub static NO_PROXY: Key<Vec<Bypass>> = Key {
    name: "wasm_no_proxy",
    unset: Unset::Means("none"),
    takes: "*, NAME, .DOMAIN, ADDRESS or RANGE, ...",
    doc: "targets reached without `wasm_http_proxy`, as `NO_PROXY` lists them: `*`, a name and the names under \
          it (`example.com`, `.example.com`), an address or a range written in the URL (`10.0.0.0/8`)",
    since: "0.1.0",
    parser: Parser::Explained(|value| proxy::parse_bypass(&list(value))),
};

pub static HTTP_PROXY_AUTH_FILE: Key<PathBuf> = Key {
    name: "wasm_http_proxy_auth_file",
    unset: Unset::Means("none"),
    takes: "a file whose first line is USER:PASSWORD",
    doc: "the credentials of `wasm_http_proxy` (sent as `Proxy-Authorization: Basic`), read at start; never in \
          the log or the guest's reach",
    since: "0.1.0",
    parser: Parser::Plain(path),
};

pub static STDOUT: Key<Stdio> = Key {
    name: "wasm_stdout",
    unset: Unset::Value("agent"),
    takes: "agent, log, off",
    doc: "`agent` (the agent's own stdout, at most 16 MiB a call, control characters written out as `\\xNN`), \
          `log` (lines into the agent's log, within the log budget), `off`",
    since: "0.1.0",
    parser: Parser::Plain(Stdio::parse),
};

pub static STDERR: Key<Stdio> = Key {
    name: "wasm_stderr",
    unset: Unset::Value("agent"),
    takes: "agent, log, off",
    doc: "as `wasm_stdout`, for the guest's stderr; on the agent's, each line starts `[out_wasm:NAME]`",
    since: "0.1.0",
    parser: Parser::Plain(Stdio::parse),
};

pub static CANARY: Key<Option<CanaryShare>> = Key {
    name: "wasm_canary",
    unset: Unset::Value("off"),
    takes: "off, a share of flushes from 1% to 99%, or one",
    doc: "how a new version (a changed file, a moved tag) is rolled out: `off` swaps it in for all traffic at once; `N%` (1% to 99%) serves that share of the flushes with it beside the serving version, `one` serves one flush in (1 + the most flushes seen running at once) with one instance of it; it is promoted when no worse, rolled back when worse by a margin, and a rolled-back content is not tried again until the file or tag changes again ([docs/hot-swap.md](docs/hot-swap.md#safe-rollouts-canary-and-flight-recorder))",
    since: "0.1.0",
    parser: Parser::Plain(|value| match value.to_ascii_lowercase().as_str() {
        "one" | "one instance" | "1 instance" => Some(Some(CanaryShare::One)),
        v if switch(v) == Some(false) => Some(None),
        v => v
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<u8>().ok())
            .filter(|n| (1..=99).contains(n))
            .map(|n| Some(CanaryShare::Percent(n))),
    }),
};

/// 100 flushes and a minute by default: enough flushes for a rate to mean something, long
/// enough for a periodic failure (a token that expires, a batch job's burst) to show.
pub static CANARY_WINDOW: Key<(u64, Duration)> = Key {
    name: "wasm_canary_window",
    unset: Unset::Value("100 flushes 1m"),
    takes: "e.g. 100 flushes 1m, 500, 30s",
    doc: "how long a canary is judged: that many of its own flushes and that long, whichever ends last (`200 flushes 5m`, `50`, `30s`); a failure or retry rate already worse after a quarter of the flushes rolls it back at once",
    since: "0.1.0",
    parser: Parser::Plain(window),
};

pub static RECORD: Key<Option<PathBuf>> = Key {
    name: "wasm_record",
    unset: Unset::Means("off"),
    takes: "a directory, or off",
    doc: "a directory: the flight recorder keeps each flush that ended in error, retry or a fault, with the chunk, the guest's answer, log lines, trap and wasm backtrace, HTTP requests (method, origin, status, time), the version (its component kept once) and the section's keys without secrets, in `DIR/<output>/` (0700, files 0600); `out-wasm replay DIR` runs them again ([docs/hot-swap.md](docs/hot-swap.md#the-flight-recorder))",
    since: "0.1.0",
    parser: Parser::Plain(|value| match switch(value) {
        Some(false) => Some(None),
        _ => path(value).map(Some),
    }),
};

pub static RECORD_MAX_BYTES: Key<u64> = Key {
    name: "wasm_record_max_bytes",
    unset: Unset::Value("64M"),
    takes: "e.g. 64M, 1G; at least 64K",
    doc: "the bytes of one output's recordings, at most; past it the oldest go first",
    since: "0.1.0",
    parser: Parser::Plain(|value| size(value).filter(|n| *n >= 1 << 16).map(|n| n as u64)),
};

pub static RECORD_MAX_FILES: Key<usize> = Key {
    name: "wasm_record_max_files",
    unset: Unset::Value("100"),
    takes: "a positive number",
    doc: "the recordings of one output, at most; past it the oldest go first",
    since: "0.1.0",
    parser: Parser::Plain(count),
};

/// Every key of the host, in README's order.
pub static ALL: [&dyn Declared; 41] = [
    &PATH,
    &OCI_AUTH_FILE,
    &OCI_INSECURE_HTTP,
    &OCI_PULL_TIMEOUT,
    &OCI_POLL_INTERVAL,
    &OCI_VERIFY,
    &WATCH,
    &WATCH_INTERVAL,
    &CACHE_DIR,
    &MEMORY_LIMIT,
    &FLUSH_TIMEOUT,
    &INIT_TIMEOUT,
    &DEADLINES,
    &EVENT_FORMAT,
    &WARM_SPARE,
    &IDLE_INTERVAL,
    &IDLE_BUDGET,
    &MAX_DESCRIPTORS,
    &HTTP_KEEPALIVE,
    &METRICS_MAX,
    &METRICS_MAX_SERIES,
    &METRICS_MAX_LABEL_LEN,
    &ON_TRAP,
    &ALLOW_DIRS,
    &ALLOW_ENV,
    &ALLOW_NET,
    &TLS_CA_FILE,
    &TLS_SYSTEM_ROOTS,
    &TLS_CRT_FILE,
    &TLS_KEY_FILE,
    &TLS_KEY_PASSWD_FILE,
    &HTTP_PROXY,
    &NO_PROXY,
    &HTTP_PROXY_AUTH_FILE,
    &STDOUT,
    &STDERR,
    &CANARY,
    &CANARY_WINDOW,
    &RECORD,
    &RECORD_MAX_BYTES,
    &RECORD_MAX_FILES,
];

/// The declared key named `name` (case-insensitive).
pub fn find(name: &str) -> Option<&'static dyn Declared> {
    ALL.iter().copied().find(|key| key.name().eq_ignore_ascii_case(name))
}

/// Refuses the first of `names` that starts with the host's prefix and is no key of the host,
/// naming the nearest real one. `names` are the keys a section sets, when they can be listed
/// (`out-wasm check`), or those of [`misspellings`] the agent has a value for.
pub fn refuse_unknown<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<()> {
    for name in names {
        if !name.to_ascii_lowercase().starts_with(PREFIX) || find(name).is_some() {
            continue;
        }
        let nearest = ALL
            .iter()
            .map(|key| (distance(&name.to_ascii_lowercase(), key.name()), key.name()))
            .min()
            .map(|(_, key)| key)
            .unwrap_or(PATH.name);
        bail!("unknown key '{name}' (keys starting with '{PREFIX}' are the host's): did you mean {nearest}?");
    }
    Ok(())
}

/// Every name one edit (a letter left out, added, changed, or two swapped) from a key of the
/// host that still starts with its prefix: what the plugin asks the agent for, since the agent
/// lists no section's keys to a plugin. A misspelling two edits away is not seen there.
pub fn misspellings() -> Vec<String> {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_.";
    let mut out = std::collections::BTreeSet::new();
    for key in ALL.iter().map(|key| key.name().as_bytes()) {
        let mut variants: Vec<Vec<u8>> = Vec::new();
        for at in 0..=key.len() {
            for &letter in LETTERS {
                variants.push([&key[..at], &[letter], &key[at..]].concat());
                if at < key.len() {
                    variants.push([&key[..at], &[letter], &key[at + 1..]].concat());
                }
            }
            if at < key.len() {
                variants.push([&key[..at], &key[at + 1..]].concat());
            }
            if at + 1 < key.len() {
                let mut swapped = key.to_vec();
                swapped.swap(at, at + 1);
                variants.push(swapped);
            }
        }
        for variant in variants {
            let variant = String::from_utf8(variant).expect("ASCII edits of an ASCII name");
            if variant.starts_with(PREFIX) && find(&variant).is_none() {
                out.insert(variant);
            }
        }
    }
    out.into_iter().collect()
}

/// Levenshtein distance of two ASCII names.
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb)).min(row[j] + 1).min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// README's table of the host's keys (between its `keys:begin` and `keys:end` markers).
pub fn markdown_table() -> String {
    let mut table = String::from("| key | default | since | meaning |\n| --- | --- | --- | --- |\n");
    for key in ALL {
        let unset = match key.unset() {
            Unset::Required => "(required)".to_owned(),
            Unset::Value(value) => format!("`{value}`"),
            Unset::Means(text) => text.to_owned(),
        };
        table.push_str(&format!("| `{}` | {unset} | {} | {} |\n", key.name(), key.since(), key.doc()));
    }
    table
}

/// A comma-separated list's items.
fn list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

fn path(value: &str) -> Option<PathBuf> {
    (!value.is_empty()).then(|| PathBuf::from(value))
}

fn verify(value: &str) -> Option<Verify> {
    match value.to_ascii_lowercase().as_str() {
        "" => None,
        "off" => Some(Verify::Off),
        "digest" => Some(Verify::Digest),
        _ => Some(Verify::Key(PathBuf::from(value))),
    }
}

fn count(value: &str) -> Option<usize> {
    value.parse::<usize>().ok().filter(|n| *n > 0)
}

/// `64M`, `1G`, `512K`, or bytes: the agent's size spellings (powers of 1024).
pub fn size(value: &str) -> Option<usize> {
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
pub fn switch(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// `500ms`, `2s`, `1m`, `1h`, or plain (possibly fractional) seconds.
pub fn duration(value: &str) -> Option<Duration> {
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

/// `200 flushes 5m`, `200`, `5m`, `200,5m`: a count of flushes (at least 1; alone, no time
/// beyond it) and a duration (alone, 100 flushes).
fn window(value: &str) -> Option<(u64, Duration)> {
    let mut flushes = None;
    let mut time = None;
    let mut words = value.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()).peekable();
    while let Some(word) = words.next() {
        if let Ok(n) = word.parse::<u64>() {
            if flushes.replace(n).is_some() || n == 0 {
                return None;
            }
            words.next_if(|w| w.eq_ignore_ascii_case("flushes") || w.eq_ignore_ascii_case("flush"));
        } else if time.replace(duration(word)?).is_some() {
            return None;
        }
    }
    if flushes.is_none() && time.is_none() {
        return None;
    }
    Some((flushes.unwrap_or(100), time.unwrap_or(Duration::ZERO)))
}

fn positive_duration(value: &str) -> Option<Duration> {
    duration(value).filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_a_value_its_key_takes() {
        for key in ALL {
            if let Unset::Value(default) = key.unset() {
                key.check(default).unwrap_or_else(|err| panic!("{}: default {default:?}: {err:#}", key.name()));
            }
            assert!(key.name().starts_with(PREFIX), "{}", key.name());
            assert!(!key.doc().is_empty() && !key.since().is_empty(), "{}", key.name());
        }
        let mut names: Vec<_> = ALL.iter().map(|key| key.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "a key is declared twice");
    }

    #[test]
    fn an_unknown_key_is_refused_naming_the_nearest() {
        let err = refuse_unknown(["wasm_alow_net"]).unwrap_err().to_string();
        assert!(err.contains("'wasm_alow_net'") && err.ends_with("did you mean wasm_allow_net?"), "{err}");
        let err = refuse_unknown(["format", "WASM_MEMORY_LIMT"]).unwrap_err().to_string();
        assert!(err.ends_with("did you mean wasm_memory_limit?"), "{err}");
        refuse_unknown(["wasm_path", "Wasm_Allow_Net", "format", "workers"]).unwrap();
    }

    #[test]
    fn misspellings_are_one_edit_away_and_never_a_real_key() {
        let all = misspellings();
        for typo in ["wasm_alow_net", "wasm_allow_nett", "wasm_allow_ent", "wasm_allwo_net", "wasm_pat"] {
            assert!(all.binary_search(&typo.to_owned()).is_ok(), "{typo} is not probed");
        }
        assert!(all.iter().all(|name| name.starts_with(PREFIX) && find(name).is_none()));
        // What the plugin asks the agent at each start: bounded.
        assert!(all.len() < 60_000, "{}", all.len());
    }

    /// README's table is this module's: `OUT_WASM_BLESS=1 cargo test -p out-wasm keys` writes it.
    #[test]
    fn readme_has_the_table_of_keys() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let (begin, end) = ("<!-- keys:begin (host/src/config/keys.rs) -->\n", "<!-- keys:end -->");
        let start = readme.find(begin).expect("README marks the table's start") + begin.len();
        let stop = readme[start..].find(end).expect("README marks the table's end") + start;
        let table = markdown_table();
        if readme[start..stop] != table {
            if std::env::var_os("OUT_WASM_BLESS").is_some() {
                std::fs::write(&path, format!("{}{table}{}", &readme[..start], &readme[stop..])).unwrap();
            } else {
                panic!(
                    "README's key table differs from host/src/config/keys.rs: run OUT_WASM_BLESS=1 cargo test -p out-wasm readme_has_the_table_of_keys"
                );
            }
        }
    }
}
