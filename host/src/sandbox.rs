//! The sandbox: what a guest may reach of the host, granted per instance by config; nothing
//! by default. One module per capability, each with its config keys, its wiring (into the
//! guest's WASI context, or onto the linker through a projection of the store's data), and
//! the state it keeps per guest instance:
//!
//! - [`filesystem`]: `wasm_allow_dirs`, the directories a guest may open.
//! - [`env`]: `wasm_allow_env`, the variables of the agent's environment it sees.
//! - [`network`]: `wasm_allow_net`, the one network policy that judges every lookup,
//!   connection, datagram and HTTP request; [`http`] sends the requests it allows, trusting
//!   the roots of [`tls`] (`wasm_tls_ca_file`, `wasm_tls_system_roots`) and presenting the
//!   [`client_cert`] (`wasm_tls_crt_file`, `wasm_tls_key_file`), on the output's kept-alive
//!   [`connections`] (`wasm_http_keepalive`), through the [`proxy`] (`wasm_http_proxy`),
//!   counted per [`destinations`].
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

pub mod client_cert;
pub mod config;
pub mod connections;
pub mod descriptors;
pub mod destinations;
pub mod env;
pub mod filesystem;
pub mod http;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod network;
pub mod proxy;
pub mod stdio;
pub mod tls;

use std::sync::Arc;

use anyhow::Result;
use wasmtime_wasi::WasiCtxBuilder;

use crate::log::LogSink;
use filesystem::DirGrant;
use network::{NetGrant, NetPolicy};
use proxy::HttpProxy;
use stdio::Stdio;
use tls::TlsTrust;

/// Everything an instance's config grants its guest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub dirs: Vec<DirGrant>,
    pub env: Vec<(String, String)>,
    pub net: Vec<NetGrant>,
    pub tls: TlsTrust,
    /// `wasm_http_proxy`: where the guest's HTTP requests go first.
    pub proxy: Option<Arc<HttpProxy>>,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl Capabilities {
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
