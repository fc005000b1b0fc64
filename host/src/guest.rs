//! One live guest instance: its store, its WASI context, and typed calls into its exports.

use std::sync::Arc;
use std::sync::mpsc::Sender;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::metrics::{self, MetricSpec};
use crate::bindings::{
    ConfigKey, EventFormat, EventTypes, FlushContext, FlushError, InitContext, OutputPlugin, logging, v0_1_0,
};
use crate::capabilities::Capabilities;
use crate::fault::Fault;
use crate::guest_metrics::{GuestMetrics, Update};
use crate::http::HttpPolicy;
use crate::image::{GuestImage, Pre};
use crate::log::Level;
use crate::stdio::LogBudget;
use crate::worker::Event;

/// What the host keeps per guest instance (the store's data).
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    max_level: Level,
    /// Carries the guest's log lines to the agent thread waiting on the current call.
    events: Sender<Event>,
    limiter: MemoryCap,
    /// Log lines the guest may still write in the current call; the rest are counted.
    budget: LogBudget,
    http: WasiHttpCtx,
    http_policy: HttpPolicy,
    /// The output instance's guest metrics, shared by all its guest instances.
    metrics: Arc<GuestMetrics>,
}

/// Log lines one guest call may write: a guest cannot flood the agent's log.
pub const LOG_LINES_PER_CALL: u32 = 1000;

/// Caps each linear memory of a guest. Growing past the cap traps with a message that names
/// the limit, instead of handing the guest a failed allocation it would abort on anyway.
struct MemoryCap {
    limit: usize,
    /// Linear memory the guest has grown to so far (memories never shrink).
    size: usize,
}

/// Table entries a guest may have (a pointer each): far above what real guests use.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(crate::fault::MemoryLimitExceeded { desired, limit: self.limit }.into());
        }
        self.size = self.size.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
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
    /// What the host's own `wasi:sockets/ip-name-lookup` needs (see `net_policy`).
    pub(crate) fn lookup(&mut self) -> crate::net_policy::Lookup<'_> {
        crate::net_policy::Lookup {
            sockets: wasmtime_wasi::sockets::WasiSocketsCtxView { ctx: self.wasi.sockets(), table: &mut self.table },
            policy: self.http_policy.net(),
        }
    }
}

impl crate::bindings::out_wasm::output::types::Host for HostState {}

impl logging::Host for HostState {
    fn max_level(&mut self) -> logging::Level {
        self.max_level.into()
    }

    fn log(&mut self, level: logging::Level, message: String) {
        let level = Level::from(level);
        if level > self.max_level {
            return;
        }
        if !self.budget.take() {
            return;
        }
        // The receiver is gone only when the waiting call was abandoned; nothing to do then.
        let _ = self.events.send(Event::Log(level, message));
    }
}

impl HostState {
    /// A refused metric call: counted, logged at warn now and then, and the error handed back.
    fn metric_refused(&mut self, err: anyhow::Error) -> String {
        let reason = format!("{err:#}");
        if let Some(line) = self.metrics.refused(&reason) {
            let _ = self.events.send(Event::Log(Level::Warn, line));
        }
        reason
    }

    fn metric_update(&mut self, metric: u32, labels: Vec<String>, update: Update) -> Result<(), String> {
        self.metrics.update(metric, labels, update).map_err(|err| self.metric_refused(err))
    }
}

impl metrics::Host for HostState {
    fn declare(&mut self, spec: MetricSpec) -> Result<u32, String> {
        self.metrics.declare(spec).map_err(|err| self.metric_refused(err))
    }

    fn add(&mut self, metric: u32, label_values: Vec<String>, value: f64) -> Result<(), String> {
        self.metric_update(metric, label_values, Update::Add(value))
    }

    fn set(&mut self, metric: u32, label_values: Vec<String>, value: f64) -> Result<(), String> {
        self.metric_update(metric, label_values, Update::Set(value))
    }

    fn observe(&mut self, metric: u32, label_values: Vec<String>, value: f64) -> Result<(), String> {
        self.metric_update(metric, label_values, Update::Observe(value))
    }
}

impl From<logging::Level> for Level {
    fn from(level: logging::Level) -> Self {
        match level {
            logging::Level::Error => Level::Error,
            logging::Level::Warn => Level::Warn,
            logging::Level::Info => Level::Info,
            logging::Level::Debug => Level::Debug,
            logging::Level::Trace => Level::Trace,
        }
    }
}

impl From<Level> for logging::Level {
    fn from(level: Level) -> Self {
        match level {
            Level::Error => logging::Level::Error,
            Level::Warn => logging::Level::Warn,
            Level::Info => logging::Level::Info,
            Level::Debug => logging::Level::Debug,
            Level::Trace => logging::Level::Trace,
        }
    }
}

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
        events: Sender<Event>,
        memory_limit: usize,
        deadlines: bool,
        capabilities: &Capabilities,
        metrics: Arc<GuestMetrics>,
    ) -> anyhow::Result<Self> {
        let budget = LogBudget::default();
        budget.reset(LOG_LINES_PER_CALL);
        let mut wasi = WasiCtxBuilder::new();
        let net = capabilities.apply(&mut wasi, &events, &budget)?;
        let wasi = wasi.build();
        let limiter = MemoryCap { limit: memory_limit, size: 0 };
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            max_level,
            events,
            limiter,
            budget,
            http: WasiHttpCtx::new(),
            http_policy: HttpPolicy::new(net, capabilities.tls.client()),
            metrics,
        };
        let mut store = Store::new(image.engine(), state);
        store.limiter(|state| &mut state.limiter);
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
        self.store.data().budget.reset(LOG_LINES_PER_CALL);
    }

    /// Log lines the guest wrote past its budget in the current call.
    pub fn dropped_log_lines(&self) -> u64 {
        self.store.data().budget.dropped()
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
        let cap = &self.store.data().limiter;
        (cap.size, cap.limit)
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
