//! One live guest instance: its store, its sandbox, and typed calls into its exports at the
//! WIT version it was built against.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::WasiHttpCtx;

use crate::bindings::{
    ConfigKey, EventFormat, EventTypes, FlushContext, FlushError, InitContext, OutputPlugin, v0_1_0,
};
use crate::log::{Level, LogSink};
use crate::runtime::fault::Fault;
use crate::runtime::image::{GuestImage, Pre};
use crate::runtime::store::HostState;
use crate::sandbox::Capabilities;
use crate::sandbox::http::HttpPolicy;
use crate::sandbox::logging::Logging;
use crate::sandbox::memory::MemoryCap;
use crate::sandbox::metrics::{GuestMetrics, Metrics};

/// The guest's exports, bound at the WIT version it was built against.
enum Plugin {
    V0_2_0(OutputPlugin),
    V0_1_0(v0_1_0::OutputPlugin),
}

/// What `config-schema` and its siblings tell about a guest version.
#[derive(Debug)]
pub struct Schema {
    pub keys: Vec<ConfigKey>,
    pub preferred_format: EventFormat,
    pub event_types: EventTypes,
}

/// A guest instance and its store. Not shared: one thread drives it, one call at a time.
pub struct GuestInstance {
    store: Store<HostState>,
    plugin: Plugin,
}

impl GuestInstance {
    /// Instantiates `image` with a WASI context that opens only what `capabilities` grants, and
    /// `memory_limit` bytes of linear memory at most; growing past it traps.
    pub async fn instantiate(
        image: &GuestImage,
        max_level: Level,
        log: LogSink,
        memory_limit: usize,
        deadlines: bool,
        capabilities: &Capabilities,
        metrics: Arc<GuestMetrics>,
    ) -> anyhow::Result<Self> {
        let mut wasi = WasiCtxBuilder::new();
        let net = capabilities.apply(&mut wasi, &log)?;
        let state = HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            http_policy: HttpPolicy::new(net, capabilities.tls.client()),
            logging: Logging::new(max_level, log.clone()),
            metrics: Metrics::new(metrics, log.clone()),
            memory: MemoryCap::new(memory_limit),
            log,
        };
        let mut store = Store::new(image.engine(), state);
        store.limiter(|state| &mut state.memory);
        if deadlines {
            // Yield to the executor at every epoch tick, so the call's timeout gets to run.
            store.epoch_deadline_async_yield_and_update(1);
        }
        let plugin = match image.pre() {
            Pre::V0_2_0(pre) => Plugin::V0_2_0(pre.instantiate_async(&mut store).await?),
            Pre::V0_1_0(pre) => Plugin::V0_1_0(pre.instantiate_async(&mut store).await?),
        };
        Ok(Self { store, plugin })
    }

    /// Starts a call: the guest gets its full log budget again.
    pub fn begin_call(&mut self) {
        self.store.data().log.begin_call();
    }

    /// Log lines the guest wrote past its budget in the current call.
    pub fn dropped_log_lines(&self) -> u64 {
        self.store.data().log.dropped()
    }

    /// The keys the guest declares, the event format it prefers and the event types it takes.
    pub async fn schema(&mut self) -> Result<Schema, Fault> {
        let store = &mut self.store;
        match &self.plugin {
            Plugin::V0_2_0(plugin) => {
                let exports = plugin.out_wasm_output_output();
                let keys = exports.call_config_schema(&mut *store).await.map_err(Fault::from_call)?;
                let preferred_format =
                    exports.call_preferred_event_format(&mut *store).await.map_err(Fault::from_call)?;
                let event_types = exports.call_accepted_event_types(&mut *store).await.map_err(Fault::from_call)?;
                Ok(Schema { keys, preferred_format, event_types })
            }
            Plugin::V0_1_0(plugin) => {
                let exports = plugin.out_wasm_output_output();
                let keys = exports.call_config_schema(&mut *store).await.map_err(Fault::from_call)?;
                let preferred = exports.call_preferred_event_format(&mut *store).await.map_err(Fault::from_call)?;
                Ok(Schema {
                    keys: keys.into_iter().map(Into::into).collect(),
                    preferred_format: preferred.into(),
                    event_types: EventTypes::LOGS,
                })
            }
        }
    }

    pub async fn init(&mut self, ctx: &InitContext) -> Result<Result<(), String>, Fault> {
        let store = &mut self.store;
        match &self.plugin {
            Plugin::V0_2_0(plugin) => {
                plugin.out_wasm_output_output().call_init(store, ctx).await.map_err(Fault::from_call)
            }
            Plugin::V0_1_0(plugin) => {
                let ctx = v0_1_0::init_context(ctx).map_err(|err| Fault::host(format!("{err:#}")))?;
                plugin.out_wasm_output_output().call_init(store, &ctx).await.map_err(Fault::from_call)
            }
        }
    }

    pub async fn flush(&mut self, ctx: &FlushContext, chunk: &[u8]) -> Result<Result<(), FlushError>, Fault> {
        let store = &mut self.store;
        match &self.plugin {
            Plugin::V0_2_0(plugin) => {
                plugin.out_wasm_output_output().call_flush(store, ctx, chunk).await.map_err(Fault::from_call)
            }
            Plugin::V0_1_0(plugin) => {
                let outcome = plugin.out_wasm_output_output().call_flush(store, &ctx.tag, chunk).await;
                outcome.map(|answer| answer.map_err(Into::into)).map_err(Fault::from_call)
            }
        }
    }

    /// How far this instance's linear memory has grown, and the cap (`wasm_memory_limit`).
    pub fn memory(&self) -> (usize, usize) {
        self.store.data().memory.usage()
    }

    pub async fn exit(&mut self) -> Result<(), Fault> {
        let store = &mut self.store;
        match &self.plugin {
            Plugin::V0_2_0(plugin) => plugin.out_wasm_output_output().call_exit(store).await,
            Plugin::V0_1_0(plugin) => plugin.out_wasm_output_output().call_exit(store).await,
        }
        .map_err(Fault::from_call)
    }
}
