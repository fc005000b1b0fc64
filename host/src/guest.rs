//! One live guest instance: its store, its WASI context, and typed calls into its exports.

use std::sync::mpsc::Sender;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::{ConfigKey, EventFormat, FlushError, InitContext, OutputPlugin, logging};
use crate::capabilities::Capabilities;
use crate::fault::Fault;
use crate::http::HttpPolicy;
use crate::image::GuestImage;
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
            wasmtime::bail!(
                "guest exceeded its memory limit: it asked for {} MiB, wasm_memory_limit is {} MiB",
                desired.div_ceil(1 << 20),
                self.limit >> 20
            );
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

/// A guest instance and its store. Not shared: one thread drives it, one call at a time.
pub struct GuestInstance {
    store: Store<HostState>,
    plugin: OutputPlugin,
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
        };
        let mut store = Store::new(image.pre().engine(), state);
        store.limiter(|state| &mut state.limiter);
        if deadlines {
            // Yield to the executor at every epoch tick, so the call's timeout gets to run.
            store.epoch_deadline_async_yield_and_update(1);
        }
        let plugin = image.pre().instantiate_async(&mut store).await?;
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

    fn exports(&self) -> &crate::bindings::exports::out_wasm::output::output::Guest {
        self.plugin.out_wasm_output_output()
    }

    /// The keys the guest declares and the event format it prefers.
    pub async fn config_schema(&mut self) -> Result<(Vec<ConfigKey>, EventFormat), Fault> {
        let exports = self.exports().clone();
        let keys = exports.call_config_schema(&mut self.store).await.map_err(Fault::from_call)?;
        let format = exports.call_preferred_event_format(&mut self.store).await.map_err(Fault::from_call)?;
        Ok((keys, format))
    }

    pub async fn init(&mut self, ctx: &InitContext) -> Result<Result<(), String>, Fault> {
        let exports = self.exports().clone();
        exports.call_init(&mut self.store, ctx).await.map_err(Fault::from_call)
    }

    pub async fn flush(&mut self, tag: &str, chunk: &[u8]) -> Result<Result<(), FlushError>, Fault> {
        let exports = self.exports().clone();
        exports.call_flush(&mut self.store, tag, chunk).await.map_err(Fault::from_call)
    }

    /// How far this instance's linear memory has grown, and the cap (`wasm_memory_limit`).
    pub fn memory(&self) -> (usize, usize) {
        let cap = &self.store.data().limiter;
        (cap.size, cap.limit)
    }

    pub async fn exit(&mut self) -> Result<(), Fault> {
        let exports = self.exports().clone();
        exports.call_exit(&mut self.store).await.map_err(Fault::from_call)
    }
}
