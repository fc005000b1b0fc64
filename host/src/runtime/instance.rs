//! One live guest instance: its store, its sandbox, and typed calls into its exports at the
//! WIT version it was built against.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::WasiHttpCtx;

use crate::bindings::{
    ConfigEntry, ConfigKey, EventFormat, EventTypes, FlushContext, FlushError, InitContext, OutputPlugin, WitVersion,
    v0_1_0, v0_2_0,
};
use crate::log::{Dropped, Level, LogSink};
use crate::runtime::fault::Fault;
use crate::runtime::image::{GuestImage, Pre};
use crate::runtime::store::HostState;
use crate::runtime::trust_file;
use crate::sandbox::Capabilities;
use crate::sandbox::config::ConfigLookup;
use crate::sandbox::connections::Connections;
use crate::sandbox::descriptors::Holdings;
use crate::sandbox::http::HttpPolicy;
use crate::sandbox::logging::Logging;
use crate::sandbox::memory::{GuestBudget, HostSideCaps};
use crate::sandbox::metrics::{GuestMetrics, Metrics};
use crate::sandbox::tls;

/// The guest's exports, bound at the WIT version it was built against.
enum Plugin {
    V0_3_0(OutputPlugin),
    V0_2_0(v0_2_0::OutputPlugin),
    V0_1_0(v0_1_0::OutputPlugin),
}

/// A guest instance and its store. Not shared: one thread drives it, one call at a time.
pub struct GuestInstance {
    store: Store<HostState>,
    plugin: Plugin,
}

/// What an instance is made with, besides its component.
pub struct Sandbox<'a> {
    pub max_level: Level,
    /// The output's name (`init-context.instance`), which the guest's stderr lines carry.
    pub output: &'a str,
    pub log: LogSink,
    pub memory_limit: usize,
    pub deadlines: bool,
    pub capabilities: &'a Capabilities,
    pub metrics: Arc<GuestMetrics>,
    /// What `config.get` answers.
    pub config: ConfigLookup,
    /// The output's kept-alive HTTP connections.
    pub connections: Arc<Connections>,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl GuestInstance {
    /// Instantiates `image` with a WASI context that opens only what the sandbox's capabilities
    /// grant, and its memory limit of linear memory at most; growing past it traps.
    pub async fn instantiate(image: &GuestImage, sandbox: Sandbox<'_>) -> anyhow::Result<Self> {
        let Sandbox { max_level, output, log, memory_limit, deadlines, capabilities, metrics, config, connections } =
            sandbox;
        let mut wasi = WasiCtxBuilder::new();
        let net = capabilities.apply(&mut wasi, &log, output)?;
        // The host's TLS roots as the guest's own system roots (for TLS done in the guest).
        // Without a directory to keep the file in, the guest has none: said, not fatal.
        match trust_file::dir(&capabilities.tls) {
            Ok(dir) => tls::offer(&mut wasi, &dir)?,
            Err(err) => log.write(Level::Warn, format!("the guest gets no TLS roots file: {err:#}")),
        }
        // What the guest can make the host keep besides its memories: bounded handles, each
        // bounded in bytes (sandbox::memory).
        let mut table = ResourceTable::new();
        table.set_max_capacity(HostSideCaps::HANDLES);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(HostSideCaps::FIELD_BYTES);
        let descriptors = Holdings::new(connections.descriptors().clone(), log.clone());
        let state = HostState {
            wasi: wasi.build(),
            table,
            http,
            http_policy: HttpPolicy::new(net, capabilities.tls.client(), connections, capabilities.proxy.clone()),
            logging: Logging::new(max_level, log.clone()),
            metrics: Metrics::new(metrics, log.clone()),
            config,
            memory: GuestBudget::new(memory_limit),
            descriptors,
            log,
        };
        let mut store = Store::new(image.engine(), state);
        store.limiter(|state| &mut state.memory);
        if deadlines {
            // Yield to the executor at every epoch tick, so the call's timeout gets to run.
            store.epoch_deadline_async_yield_and_update(1);
        }
        let plugin = match image.pre() {
            Pre::V0_3_0(pre) => Plugin::V0_3_0(pre.instantiate_async(&mut store).await?),
            Pre::V0_2_0(pre) => Plugin::V0_2_0(pre.instantiate_async(&mut store).await?),
            Pre::V0_1_0(pre) => Plugin::V0_1_0(pre.instantiate_async(&mut store).await?),
        };
        Ok(Self { store, plugin })
    }

    /// The WIT version the guest was built against.
    pub fn version(&self) -> WitVersion {
        match self.plugin {
            Plugin::V0_3_0(_) => WitVersion::V0_3_0,
            Plugin::V0_2_0(_) => WitVersion::V0_2_0,
            Plugin::V0_1_0(_) => WitVersion::V0_1_0,
        }
    }

    /// Starts a call: the guest gets its full log budget again.
    pub fn begin_call(&mut self) {
        self.store.data().log.begin_call();
    }

    /// The HTTP requests the guest made since this was last asked (the flight recorder's).
    pub fn take_exchanges(&self) -> Vec<crate::sandbox::http::Exchange> {
        self.store.data().http_policy.take_exchanges()
    }

    /// What the guest wrote past its text budgets in the current call.
    pub fn dropped_text(&self) -> Dropped {
        self.store.data().log.dropped()
    }

    /// The keys the guest declares.
    pub async fn config_schema(&mut self) -> Result<Vec<ConfigKey>, Fault> {
        let store = &mut self.store;
        match &self.plugin {
            Plugin::V0_3_0(plugin) => plugin.out_wasm_output_output().call_config_schema(store).await,
            Plugin::V0_2_0(plugin) => plugin
                .out_wasm_output_output()
                .call_config_schema(store)
                .await
                .map(|keys| keys.into_iter().map(Into::into).collect()),
            Plugin::V0_1_0(plugin) => plugin
                .out_wasm_output_output()
                .call_config_schema(store)
                .await
                .map(|keys| keys.into_iter().map(Into::into).collect()),
        }
        .map_err(Fault::from_call)
    }

    /// The event format the guest prefers for `config` (its resolved keys), or the error with
    /// which it refuses that config. Guests before 0.3.0 prefer without seeing the config.
    pub async fn preferred_event_format(
        &mut self,
        config: &[ConfigEntry],
    ) -> Result<Result<EventFormat, String>, Fault> {
        let store = &mut self.store;
        match &self.plugin {
            Plugin::V0_3_0(plugin) => plugin.out_wasm_output_output().call_preferred_event_format(store, config).await,
            Plugin::V0_2_0(plugin) => {
                plugin.out_wasm_output_output().call_preferred_event_format(store).await.map(|f| Ok(f.into()))
            }
            Plugin::V0_1_0(plugin) => {
                plugin.out_wasm_output_output().call_preferred_event_format(store).await.map(|f| Ok(f.into()))
            }
        }
        .map_err(Fault::from_call)
    }

    /// The event types the guest accepts (a 0.1.0 guest: logs).
    pub async fn accepted_event_types(&mut self) -> Result<EventTypes, Fault> {
        let store = &mut self.store;
        match &self.plugin {
            Plugin::V0_3_0(plugin) => plugin.out_wasm_output_output().call_accepted_event_types(store).await,
            Plugin::V0_2_0(plugin) => {
                plugin.out_wasm_output_output().call_accepted_event_types(store).await.map(Into::into)
            }
            Plugin::V0_1_0(_) => Ok(EventTypes::LOGS),
        }
        .map_err(Fault::from_call)
    }

    pub async fn init(&mut self, ctx: &InitContext) -> Result<Result<(), String>, Fault> {
        let store = &mut self.store;
        match &self.plugin {
            Plugin::V0_3_0(plugin) => plugin.out_wasm_output_output().call_init(store, ctx).await,
            Plugin::V0_2_0(plugin) => {
                let ctx = v0_2_0::init_context(ctx).map_err(|err| Fault::host(format!("{err:#}")))?;
                plugin.out_wasm_output_output().call_init(store, &ctx).await
            }
            Plugin::V0_1_0(plugin) => {
                let ctx = v0_1_0::init_context(ctx).map_err(|err| Fault::host(format!("{err:#}")))?;
                plugin.out_wasm_output_output().call_init(store, &ctx).await
            }
        }
        .map_err(Fault::from_call)
    }

    pub async fn flush(&mut self, ctx: &FlushContext, chunk: &[u8]) -> Result<Result<(), FlushError>, Fault> {
        let store = &mut self.store;
        match &self.plugin {
            Plugin::V0_3_0(plugin) => plugin.out_wasm_output_output().call_flush(store, ctx, chunk).await,
            Plugin::V0_2_0(plugin) => {
                let ctx = v0_2_0::flush_context(ctx);
                let outcome = plugin.out_wasm_output_output().call_flush(store, &ctx, chunk).await;
                outcome.map(|answer| answer.map_err(Into::into))
            }
            Plugin::V0_1_0(plugin) => {
                let outcome = plugin.out_wasm_output_output().call_flush(store, &ctx.tag, chunk).await;
                outcome.map(|answer| answer.map_err(Into::into))
            }
        }
        .map_err(Fault::from_call)
    }

    /// Whether the guest has an `idle` export (0.3.0 on).
    pub fn has_idle(&self) -> bool {
        matches!(self.plugin, Plugin::V0_3_0(_))
    }

    /// Runs the guest's background work for about `budget`; when it wants to be called again
    /// (`None`: after the next flush). A guest before 0.3.0 has none.
    pub async fn idle(&mut self, budget: Duration) -> Result<Option<Duration>, Fault> {
        let store = &mut self.store;
        match &self.plugin {
            Plugin::V0_3_0(plugin) => plugin
                .out_wasm_output_output()
                .call_idle(store, nanos(budget))
                .await
                .map(|next| next.map(Duration::from_nanos))
                .map_err(Fault::from_call),
            Plugin::V0_2_0(_) | Plugin::V0_1_0(_) => Ok(None),
        }
    }

    /// What this instance's memories and tables take together, and the cap (`wasm_memory_limit`).
    pub fn memory(&self) -> (usize, usize) {
        self.store.data().memory.usage()
    }

    /// The last call: `time_left` is how long it may run (guests before 0.3.0 are not told).
    pub async fn exit(&mut self, time_left: Option<Duration>) -> Result<(), Fault> {
        let store = &mut self.store;
        match &self.plugin {
            Plugin::V0_3_0(plugin) => plugin.out_wasm_output_output().call_exit(store, time_left.map(nanos)).await,
            Plugin::V0_2_0(plugin) => plugin.out_wasm_output_output().call_exit(store).await,
            Plugin::V0_1_0(plugin) => plugin.out_wasm_output_output().call_exit(store).await,
        }
        .map_err(Fault::from_call)
    }
}
