//! What a guest may reach of the host, granted per instance by config; nothing by default.
//!
//! - `wasm_allow_dirs`: `host_dir:guest_dir[:ro|rw], ...` (read-only unless `rw`).
//! - `wasm_allow_env`: `NAME, ...`: these variables of the agent's environment, if set.
//! - `wasm_allow_net`: `host:port, ...` (`host:*` for any port; `[v6]:port`): TCP connections
//!   and UDP datagrams to these addresses only (names are resolved when the instance starts),
//!   and outbound HTTP (`wasi:http`) to these authorities only.
//! - `wasm_stdout`, `wasm_stderr`: `agent` (default: the agent's own stdout/stderr), `log`
//!   (each line to the agent's log: stdout at info, stderr at warn) or `off`.
//!
//! Everything else WASI offers is closed: no other directory, variable, address, listening
//! socket or explicit bind.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use std::sync::mpsc::Sender;

use anyhow::{Context, Result, bail};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::log::Level;
use crate::stdio::{LogBudget, LogStream};
use crate::worker::Event;

/// A directory the guest may open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// Addresses the guest may send to: an IP and a port (`None`: any port), and, for HTTP, the
/// names as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetGrant {
    pub allow: Vec<(IpAddr, Option<u16>)>,
    pub names: Vec<(String, Option<u16>)>,
}

impl NetGrant {
    pub fn permits(&self, addr: SocketAddr) -> bool {
        self.allow.iter().any(|(ip, port)| *ip == addr.ip() && port.is_none_or(|p| p == addr.port()))
    }

    /// Whether an HTTP request to `host:port` (the URL's authority) is granted.
    pub fn permits_authority(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        self.names.iter().any(|(name, p)| *name == host && p.is_none_or(|p| p == port))
    }
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
    pub net: NetGrant,
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

fn net_grant(item: &str, grant: &mut NetGrant) -> Result<()> {
    let (host, port) = item
        .rsplit_once(':')
        .with_context(|| format!("invalid address {item:?} in 'wasm_allow_net' (host:port or host:*)"))?;
    let port = match port {
        "*" => None,
        p => Some(p.parse::<u16>().with_context(|| format!("invalid port in {item:?} ('wasm_allow_net')"))?),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    grant.names.push((host.to_ascii_lowercase(), port));
    let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => (host, 0)
            .to_socket_addrs()
            .with_context(|| format!("failed to resolve {host:?} from 'wasm_allow_net'"))?
            .map(|a| a.ip())
            .collect(),
    };
    grant.allow.extend(ips.into_iter().map(|ip| (ip, port)));
    Ok(())
}

impl Capabilities {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut caps = Self {
            stdout: stdio("wasm_stdout", lookup("wasm_stdout"))?,
            stderr: stdio("wasm_stderr", lookup("wasm_stderr"))?,
            ..Self::default()
        };
        if let Some(value) = lookup("wasm_allow_dirs") {
            caps.dirs = list(&value).map(dir_grant).collect::<Result<_>>()?;
        }
        if let Some(value) = lookup("wasm_allow_env") {
            caps.env = list(&value).filter_map(|name| Some((name.to_owned(), std::env::var(name).ok()?))).collect();
        }
        if let Some(value) = lookup("wasm_allow_net") {
            for item in list(&value) {
                net_grant(item, &mut caps.net)?;
            }
        }
        Ok(caps)
    }

    /// Opens exactly what was granted in a fresh WASI context; `log` streams write to `events`
    /// within `budget`.
    pub fn apply(&self, builder: &mut WasiCtxBuilder, events: &Sender<Event>, budget: &LogBudget) -> Result<()> {
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
        let networked = !self.net.allow.is_empty();
        builder.allow_tcp(networked).allow_udp(networked).allow_ip_name_lookup(networked);
        let net = Arc::new(self.net.clone());
        builder.socket_addr_check(move |addr, usage| {
            let permitted = match usage {
                // The implicit bind before a connect or a send uses the wildcard address.
                SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => addr.ip().is_unspecified() && addr.port() == 0,
                SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => net.permits(addr),
                // An output never listens or accepts.
                _ => false,
            };
            Box::pin(async move { permitted })
        });
        Ok(())
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
        assert!(caps.dirs.is_empty() && caps.env.is_empty() && caps.net.allow.is_empty());
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
            ("wasm_allow_net", "127.0.0.1:8080, [::1]:*"),
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
        assert!(granted.net.permits("127.0.0.1:8080".parse().unwrap()));
        assert!(!granted.net.permits("127.0.0.1:8081".parse().unwrap()));
        assert!(granted.net.permits("[::1]:9".parse().unwrap()));
        assert_eq!(granted.stdout, Stdio::Off);
        for (key, value, expected) in [
            ("wasm_allow_dirs", "/nonexistent/dir:/x", "does not exist"),
            ("wasm_allow_dirs", "/tmp", "host_dir:guest_dir"),
            ("wasm_allow_dirs", "/tmp:relative", "must be absolute"),
            ("wasm_allow_net", "127.0.0.1", "host:port"),
            ("wasm_allow_net", "127.0.0.1:http", "invalid port"),
            ("wasm_stderr", "file", "agent, log, off"),
        ] {
            let err = format!("{:#}", caps(&[(key, value)]).unwrap_err());
            assert!(err.contains(expected), "{key}={value}: expected {expected:?} in {err}");
        }
    }
}
