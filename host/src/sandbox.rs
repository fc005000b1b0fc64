//! The sandbox: what a guest may reach of the host, granted per instance by config; nothing
//! by default. One module per capability, each with its config keys, its wiring (into the
//! guest's WASI context, or onto the linker through a projection of the store's data), and
//! the state it keeps per guest instance:
//!
//! - [`filesystem`]: `wasm_allow_dirs`, the directories a guest may open.
//! - [`env`]: `wasm_allow_env`, the variables of the agent's environment it sees.
//! - [`network`]: `wasm_allow_net`, the one network policy that judges every lookup,
//!   connection, datagram and HTTP request; [`http`] sends the requests it allows, trusting
//!   the roots of [`tls`] (`wasm_tls_ca_file`, `wasm_tls_system_roots`), on the output's
//!   kept-alive [`connections`] (`wasm_http_keepalive`).
//! - [`stdio`]: `wasm_stdout`, `wasm_stderr`.
//! - [`memory`]: `wasm_memory_limit`, the cap on its linear memory.
//! - [`descriptors`]: `wasm_max_descriptors`, the cap on the files, sockets and connections
//!   the guests of an output hold at once.
//! - [`logging`], [`metrics`] and [`config`]: the interfaces of the WIT a guest imports
//!   (`wasm_metrics_*`; `config` reads any key of the section but the host's and the agent's,
//!   whose lists are there).
//!
//! Everything else WASI offers is closed: no other directory, variable, address, listening
//! socket or explicit bind.

pub mod config;
pub mod connections;
pub mod descriptors;
pub mod env;
pub mod filesystem;
pub mod http;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod network;
pub mod stdio;
pub mod tls;

use std::sync::Arc;

use anyhow::Result;
use wasmtime_wasi::WasiCtxBuilder;

use crate::log::LogSink;
use filesystem::DirGrant;
use network::{NetGrant, NetPolicy};
use stdio::Stdio;
use tls::TlsTrust;

/// Everything an instance's config grants its guest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub dirs: Vec<DirGrant>,
    pub env: Vec<(String, String)>,
    pub net: Vec<NetGrant>,
    pub tls: TlsTrust,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

/// The items of a comma-separated grant key (none when the key is not set).
fn list(value: Option<String>) -> Vec<String> {
    let Some(value) = value else { return Vec::new() };
    value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

impl Capabilities {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        Ok(Self {
            stdout: Stdio::parse("wasm_stdout", lookup("wasm_stdout"))?,
            stderr: Stdio::parse("wasm_stderr", lookup("wasm_stderr"))?,
            tls: TlsTrust::from_lookup(&lookup)?,
            dirs: filesystem::grants(&list(lookup("wasm_allow_dirs")))?,
            env: env::grants(&list(lookup("wasm_allow_env"))),
            net: network::grants(&list(lookup("wasm_allow_net")))?,
        })
    }

    /// Opens exactly what was granted in a fresh WASI context; what the guest does that the
    /// host logs goes to `log`. Returns the instance's network policy, which judges its
    /// sockets here and its lookups and HTTP requests where those are provided.
    pub fn apply(&self, builder: &mut WasiCtxBuilder, log: &LogSink, output: &str) -> Result<Arc<NetPolicy>> {
        stdio::apply(builder, self.stdout, self.stderr, log, output);
        env::apply(builder, &self.env);
        filesystem::apply(builder, &self.dirs)?;
        Ok(network::apply(builder, &self.net, log))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use network::GrantHost;

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
