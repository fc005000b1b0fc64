//! The store's data of a guest instance: the state of each sandbox capability, side by side.
//!
//! Each capability keeps its per-instance state in its own type, in its own module of
//! [`crate::sandbox`], and is linked through a projection onto its field (see
//! [`crate::runtime::linker`]); this type only puts them together and gives WASI the views it
//! asks for.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::log::LogSink;
use crate::sandbox::config::ConfigLookup;
use crate::sandbox::descriptors::{Holding, Holdings};
use crate::sandbox::http::HttpPolicy;
use crate::sandbox::logging::Logging;
use crate::sandbox::memory::GuestBudget;
use crate::sandbox::metrics::Metrics;
use crate::sandbox::network::Lookup;

/// What the host keeps per guest instance.
pub struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub http: WasiHttpCtx,
    pub http_policy: HttpPolicy,
    pub logging: Logging,
    pub metrics: Metrics,
    pub config: ConfigLookup,
    /// Its memories and tables against `wasm_memory_limit`.
    pub memory: GuestBudget,
    pub descriptors: Holdings,
    /// The sink every capability above writes its log lines to, kept here to start each call
    /// with a fresh budget and to count what the budget dropped.
    pub log: LogSink,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_policy }
    }
}

impl HostState {
    /// What the host's own `wasi:sockets/ip-name-lookup` needs (see `sandbox::network`).
    pub fn lookup(&mut self) -> Lookup<'_> {
        Lookup {
            sockets: wasmtime_wasi::sockets::WasiSocketsCtxView { ctx: self.wasi.sockets(), table: &mut self.table },
            policy: self.http_policy.net(),
        }
    }

    /// What the host's count of descriptors needs (see `sandbox::descriptors`).
    pub fn holding(&mut self) -> Holding<'_> {
        Holding { table: &mut self.table, wasi: &mut self.wasi, holdings: &mut self.descriptors }
    }
}
