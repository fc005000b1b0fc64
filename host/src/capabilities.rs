//! What a guest may reach of the host, granted per instance by config; nothing by default.
//!
//! - `wasm_allow_dirs`: `host_dir:guest_dir[:ro|rw], ...` (read-only unless `rw`).
//! - `wasm_allow_env`: `NAME, ...`: these variables of the agent's environment, if set.
//! - `wasm_allow_net`: `host:port, ...` (`host:*` for any port; `[v6]:port`): what the guest
//!   may reach over TCP, UDP and HTTP, and the only names it may look up; judged by
//!   [`crate::net_policy::NetPolicy`].
//! - `wasm_tls_ca_file`, `wasm_tls_system_roots`: the roots its HTTPS requests trust
//!   ([`crate::tls`]).
//! - `wasm_stdout`, `wasm_stderr`: `agent` (default: the agent's own stdout/stderr), `log`
//!   (each line to the agent's log: stdout at info, stderr at warn) or `off`.
//!
//! Everything else WASI offers is closed: no other directory, variable, address, listening
//! socket or explicit bind.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use std::sync::mpsc::Sender;

use anyhow::{Context, Result, bail};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::log::Level;
use crate::net_policy::{HostLog, NetPolicy, NetUse};
use crate::stdio::{LogBudget, LogStream};
use crate::tls::TlsTrust;
use crate::worker::Event;

/// A directory the guest may open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// One `wasm_allow_net` entry: a host as written and a port (`None`: any port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetGrant {
    pub host: GrantHost,
    pub port: Option<u16>,
}

/// The host of a grant: an address, or a name (lowercase, without a root dot), never resolved
/// by the host on the guest's behalf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantHost {
    Ip(IpAddr),
    Name(String),
}

/// Where a guest's stdout or stderr goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stdio {
    /// The agent's own stdout / stderr.
    #[default]
    Agent,
    /// Lines to the agent's log.
    Log,
    /// Nowhere.
    Off,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub dirs: Vec<DirGrant>,
    pub env: Vec<(String, String)>,
    pub net: Vec<NetGrant>,
    pub tls: TlsTrust,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty())
}

fn stdio(key: &str, value: Option<String>) -> Result<Stdio> {
    match value.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(Stdio::Agent),
        Some(v) if v == "agent" => Ok(Stdio::Agent),
        Some(v) if v == "log" => Ok(Stdio::Log),
        Some(v) if v == "off" => Ok(Stdio::Off),
        Some(v) => bail!("invalid value {v:?} for key '{key}' (agent, log, off)"),
    }
}

fn dir_grant(item: &str) -> Result<DirGrant> {
    let mut parts: Vec<&str> = item.split(':').collect();
    let writable = match parts.last() {
        Some(&"rw") => {
            parts.pop();
            true
        }
        Some(&"ro") => {
            parts.pop();
            false
        }
        _ => false,
    };
    let [host, guest] = parts[..] else {
        bail!("invalid directory grant {item:?} in 'wasm_allow_dirs' (host_dir:guest_dir[:ro|rw])");
    };
    let host = PathBuf::from(host);
    if !host.is_dir() {
        bail!("directory {} granted by 'wasm_allow_dirs' does not exist", host.display());
    }
    if !guest.starts_with('/') {
        bail!("guest path {guest:?} in 'wasm_allow_dirs' must be absolute");
    }
    Ok(DirGrant { host, guest: guest.to_owned(), writable })
}

fn net_grant(item: &str) -> Result<NetGrant> {
    let (host, port) = item
        .rsplit_once(':')
        .with_context(|| format!("invalid address {item:?} in 'wasm_allow_net' (host:port or host:*)"))?;
    let port = match port {
        "*" => None,
        p => Some(p.parse::<u16>().with_context(|| format!("invalid port in {item:?} ('wasm_allow_net')"))?),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => GrantHost::Ip(ip.to_canonical()),
        Err(_) if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/' || c == ':') => {
            bail!("invalid host {host:?} in 'wasm_allow_net' (a name or an IP address)")
        }
        Err(_) => GrantHost::Name(host.trim_end_matches('.').to_ascii_lowercase()),
    };
    Ok(NetGrant { host, port })
}

impl Capabilities {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut caps = Self {
            stdout: stdio("wasm_stdout", lookup("wasm_stdout"))?,
            stderr: stdio("wasm_stderr", lookup("wasm_stderr"))?,
            tls: TlsTrust::from_lookup(&lookup)?,
            ..Self::default()
        };
        if let Some(value) = lookup("wasm_allow_dirs") {
            caps.dirs = list(&value).map(dir_grant).collect::<Result<_>>()?;
        }
        if let Some(value) = lookup("wasm_allow_env") {
            caps.env = list(&value).filter_map(|name| Some((name.to_owned(), std::env::var(name).ok()?))).collect();
        }
        if let Some(value) = lookup("wasm_allow_net") {
            caps.net = list(&value).map(net_grant).collect::<Result<_>>()?;
        }
        Ok(caps)
    }

    /// Opens exactly what was granted in a fresh WASI context; `log` streams write to `events`
    /// within `budget`. Returns the instance's network policy, which judges its sockets here
    /// and its lookups and HTTP requests where those are provided.
    pub fn apply(
        &self,
        builder: &mut WasiCtxBuilder,
        events: &Sender<Event>,
        budget: &LogBudget,
    ) -> Result<Arc<NetPolicy>> {
        match self.stdout {
            Stdio::Agent => drop(builder.inherit_stdout()),
            Stdio::Log => drop(builder.stdout(LogStream::new(Level::Info, "stdout: ", events.clone(), budget.clone()))),
            Stdio::Off => {}
        }
        match self.stderr {
            Stdio::Agent => drop(builder.inherit_stderr()),
            Stdio::Log => drop(builder.stderr(LogStream::new(Level::Warn, "stderr: ", events.clone(), budget.clone()))),
            Stdio::Off => {}
        }
        for (name, value) in &self.env {
            builder.env(name, value);
        }
        for dir in &self.dirs {
            let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
            builder
                .preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("failed to open granted directory {}", dir.host.display()))?;
        }
        let policy = Arc::new(NetPolicy::new(&self.net, HostLog::new(events.clone(), budget.clone())));
        let networked = policy.networked();
        // WASI's own lookup switch only opens the resolver the policy stands in front of: the
        // host's `ip-name-lookup` (see `net_policy`) judges every name first.
        builder.allow_tcp(networked).allow_udp(networked).allow_ip_name_lookup(networked);
        let judge = policy.clone();
        builder.socket_addr_check(move |addr, usage| {
            let permitted = match usage {
                // The implicit bind before a connect or a send uses the wildcard address.
                SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => addr.ip().is_unspecified() && addr.port() == 0,
                SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                    judge.judge(NetUse::Connect(addr))
                }
                // An output never listens or accepts.
                _ => false,
            };
            Box::pin(async move { permitted })
        });
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(pairs: &[(&str, &str)]) -> Result<Capabilities> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Capabilities::from_lookup(|key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    #[test]
    fn nothing_is_granted_by_default() {
        let caps = caps(&[]).unwrap();
        assert!(caps.dirs.is_empty() && caps.env.is_empty() && caps.net.is_empty());
        assert_eq!(
            (caps.stdout, caps.stderr),
            (Stdio::Agent, Stdio::Agent),
            "stdout and stderr are the agent's by default"
        );
    }

    #[test]
    fn parses_grants_and_refuses_bad_ones() {
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
        ] {
            let err = format!("{:#}", caps(&[(key, value)]).unwrap_err());
            assert!(err.contains(expected), "{key}={value}: expected {expected:?} in {err}");
        }
    }
}
