//! A guest examined outside the agent, for `out-wasm check`: the same checks, compiler, linker
//! and calls the plugin uses when an instance starts, with every step's answer kept for the
//! author instead of the first failure only.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, anyhow, bail};
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceType};

pub use crate::bindings::{ConfigKey, DateFormat, EventFormat, EventTypes, JsonOptions};
/// The flight recorder's files, for `out-wasm replay`.
pub use crate::lifecycle::recorder::{REDACTED, RecordedExchange, RecordedGuest, Recording};
pub use crate::log::Level;
pub use crate::runtime::cache::CompileCache;
/// Pushing, signing and pulling guests of a registry (`out-wasm push`, `sign`, `check oci://`).
pub use crate::runtime::oci::tool as oci;

use crate::bindings::{ConfigEntry, WitVersion};
use crate::config::{self, Limits, keys};
use crate::lifecycle::plan::{Setting, plan};
use crate::log::{Lines, LogSink};
use crate::runtime::cache;
use crate::runtime::engine::{TickerGuard, engine};
use crate::runtime::image::{self, GuestImage};
use crate::runtime::instance::{GuestInstance, Sandbox};
use crate::runtime::linker::linker;
use crate::runtime::store::HostState;
use crate::sandbox::config::ConfigLookup;
use crate::sandbox::connections::Connections;
use crate::sandbox::descriptors::Descriptors;
use crate::sandbox::metrics::GuestMetrics;

/// The host's keys, README's table of them (`out-wasm keys`): one row per key, from its one
/// declaration (`config::keys`).
pub fn host_keys() -> String {
    keys::markdown_table()
}

/// One import of the component and whether the host's linker satisfies it.
#[derive(Debug)]
pub struct Import {
    pub name: String,
    /// Why the host cannot satisfy it (`None`: it does).
    pub refused: Option<String>,
}

/// A component file read, compiled and matched against the host.
pub struct Inspection {
    pub digest: String,
    /// The WIT version whose world the component exports, or why none fits.
    pub version: Result<WitVersion, String>,
    pub imports: Vec<Import>,
    /// Ready to instantiate: the component has a supported world and links.
    image: Option<GuestImage>,
}

impl Inspection {
    /// Checks `bytes` (the file at `path`) is a component, compiles it (through `cache` when
    /// given, as the plugin would), and matches its world and imports against the host.
    /// Fails only when the file is no component at all or does not compile.
    pub fn new(path: &Path, bytes: &[u8], cache: Option<&CompileCache>) -> Result<Self> {
        image::check_header(bytes)?;
        let engine = engine()?;
        let digest = image::digest(bytes);
        let component = match cache {
            Some(cache) => cache.load_or_compile(engine, &digest, || Ok(bytes.to_vec()))?.0,
            None => cache::compile(engine, bytes)?,
        };
        let version = image::wit_version(engine, &component).map_err(|err| format!("{err:#}"));
        let imports = imports(engine, &component)?;
        let image = match (&version, imports.iter().all(|i| i.refused.is_none())) {
            // Compiled above: the cache (or, without one, a second compile) hands it over.
            (Ok(_), true) => Some(GuestImage::from_bytes(path, bytes, cache, true)?),
            _ => None,
        };
        Ok(Self { digest, version, imports, image })
    }

    /// The smallest world of the component's WIT version that has all its imports: a 0.3.0
    /// guest that sends HTTP fits `http-output-plugin`, one that opens sockets
    /// `net-output-plugin` (the host serves the three alike).
    pub fn world(&self) -> Option<String> {
        let version = *self.version.as_ref().ok()?;
        if version < WitVersion::V0_3_0 {
            return Some(version.world());
        }
        let imports = |prefix: &str| self.imports.iter().any(|i| i.name.starts_with(prefix));
        let world = if imports("wasi:sockets/tcp") || imports("wasi:sockets/udp") {
            "net-output-plugin"
        } else if imports("wasi:http/outgoing-handler") {
            "http-output-plugin"
        } else {
            "output-plugin"
        };
        Some(format!("out-wasm:output/{world}@{version}"))
    }

    /// Whether the plugin would accept the component: a supported world, every import provided.
    pub fn loadable(&self) -> bool {
        self.image.is_some()
    }

    /// Instantiates the guest and asks it for its keys, then, with the keys of `config` that
    /// it declares (its defaults for the rest; required keys without a value left out), for its
    /// preferred format and its event types.
    pub fn schema(&self, config: &[(String, String)]) -> Result<Logged<Schema>> {
        let lookup = section(config);
        let Session { runtime, mut instance, events, ticker } = Session::start(self.image()?, config)?;
        let outcome = runtime.block_on(within_init_timeout(async {
            let keys = instance.config_schema().await.map_err(|fault| anyhow!("{fault}"))?;
            let entries = config::resolve_lenient(&keys, &lookup).context("failed to resolve the guest's config")?;
            let preferred_format = instance
                .preferred_event_format(&entries)
                .await
                .map_err(|fault| anyhow!("{fault}").context("guest faulted in preferred-event-format"))?;
            let event_types = instance
                .accepted_event_types()
                .await
                .map_err(|fault| anyhow!("{fault}").context("guest faulted in accepted-event-types"))?;
            instance.exit(None).await.map_err(|fault| anyhow!("{fault}").context("guest faulted in exit"))?;
            Ok(Schema { keys, preferred_format, event_types })
        }));
        drop(ticker);
        Ok(Logged { value: outcome?, logs: logs(&events) })
    }

    /// Plans the version for `config` (the keys of an `[OUTPUT]` section, host keys included)
    /// as the plugin does ([`crate::lifecycle::plan`]), then runs `init` once and `exit`. The
    /// outcome is the resolved config and the guest's own answer to init; a fault or a config
    /// the plugin would refuse is an error.
    pub fn init(&self, config: &[(String, String)]) -> Result<Logged<Init>> {
        let image = self.image()?;
        let lookup = section(config);
        let host = config::HostConfig::from_lookup(|key| match key {
            "wasm_path" => Some(image.path().display().to_string()),
            _ => lookup(key),
        })?;
        let Session { runtime, mut instance, events, ticker } = Session::start(image, config)?;
        let guest_path = image.path().display().to_string();
        let outcome = runtime.block_on(within_init_timeout(async {
            let setting = Setting {
                instance: "wasm.0",
                guest_path: &guest_path,
                guest_digest: &self.digest,
                format: host.event_format,
                lookup: &lookup,
            };
            let planned = match plan(&mut instance, &setting).await {
                Ok(planned) => planned?,
                Err(fault) => {
                    let during = fault.during.unwrap_or("config-schema");
                    return Err(anyhow!("{fault}").context(format!("guest faulted in {during}")));
                }
            };
            instance.begin_call();
            let answer =
                instance.init(&planned).await.map_err(|fault| anyhow!("{fault}").context("guest faulted in init"))?;
            if answer.is_ok() {
                instance.begin_call();
                instance.exit(None).await.map_err(|fault| anyhow!("{fault}").context("guest faulted in exit"))?;
            }
            Ok(Init { config: planned.config, event_format: planned.event_format, answer })
        }));
        drop(ticker);
        Ok(Logged { value: outcome?, logs: logs(&events) })
    }

    /// Refuses declared keys the plugin would refuse at init (reserved, host-owned, repeated or
    /// malformed names), before any value is looked up.
    pub fn check_keys(schema: &Schema) -> Result<()> {
        config::resolve(&schema.keys, |_| Some(String::new())).map(drop)
    }

    fn image(&self) -> Result<&GuestImage> {
        self.image.as_ref().context("the component does not load in this host")
    }
}

/// What `config-schema` and its siblings tell about a guest version.
#[derive(Debug)]
pub struct Schema {
    pub keys: Vec<ConfigKey>,
    /// The guest's preference for the config it was asked with, or its refusal of it.
    pub preferred_format: Result<EventFormat, String>,
    pub event_types: EventTypes,
}

/// What `init` was given and what the guest answered.
#[derive(Debug)]
pub struct Init {
    /// The resolved config, in declaration order.
    pub config: Vec<ConfigEntry>,
    /// The format the instance got.
    pub event_format: EventFormat,
    /// The guest's own answer: its error string when it refused the config.
    pub answer: Result<(), String>,
}

/// What a guest call answered, and the lines the guest logged meanwhile.
#[derive(Debug)]
pub struct Logged<T> {
    pub value: T,
    pub logs: Vec<(Level, String)>,
}

/// One guest instance on a runtime of its own, with its log lines collected.
struct Session {
    runtime: tokio::runtime::Runtime,
    instance: GuestInstance,
    events: Arc<Collected>,
    /// Deadlines need the epoch ticking while the guest runs.
    ticker: TickerGuard,
}

/// The keys of a section given as pairs, as the agent answers them: the last one of a name,
/// matched case-insensitively.
fn section(config: &[(String, String)]) -> impl Fn(&str) -> Option<String> + Send + Sync + Clone + 'static {
    let config = config.to_vec();
    move |key: &str| config.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.clone())
}

impl Session {
    fn start(image: &GuestImage, config: &[(String, String)]) -> Result<Self> {
        // Here the section's keys can be listed: any unknown `wasm_*` key is refused, not only
        // the misspellings the plugin asks the agent for.
        keys::refuse_unknown(config.iter().map(|(key, _)| key.as_str()))?;
        let lookup = section(config);
        let capabilities = config::capabilities(&lookup)?;
        let metric_limits = config::metric_limits(&lookup)?;
        let max_descriptors = keys::MAX_DESCRIPTORS.value(&lookup)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .context("failed to start the runtime")?;
        let events = Arc::new(Collected::default());
        let metrics = Arc::new(GuestMetrics::new(metric_limits, None));
        let ticker = TickerGuard::acquire()?;
        let instance = runtime.block_on(within_init_timeout(async {
            let sandbox = Sandbox {
                max_level: Level::Trace,
                output: "check",
                log: LogSink::new(events.clone()),
                memory_limit: Limits::default().memory,
                deadlines: true,
                capabilities: &capabilities,
                metrics,
                config: ConfigLookup::new(lookup),
                connections: Connections::new(
                    None,
                    Descriptors::new(max_descriptors, image.path().display().to_string()),
                ),
            };
            GuestInstance::instantiate(image, sandbox).await.context("failed to instantiate the guest")
        }))?;
        Ok(Self { runtime, instance, events, ticker })
    }
}

/// Runs `call` under the plugin's default `wasm_init_timeout`, as instance start-up does.
async fn within_init_timeout<T>(call: impl Future<Output = Result<T>>) -> Result<T> {
    let limit = Limits::default().init_timeout;
    tokio::time::timeout(limit, call).await.map_err(|_| anyhow!("the guest ran past wasm_init_timeout ({limit:?})"))?
}

/// The lines a guest instance logged, kept for the author.
#[derive(Default)]
struct Collected(Mutex<Vec<(Level, String)>>);

impl Lines for Collected {
    fn line(&self, level: Level, text: String) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push((level, text));
    }
}

/// The guest's log lines so far.
fn logs(events: &Collected) -> Vec<(Level, String)> {
    std::mem::take(&mut *events.0.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Every import of `component`, each with the host's answer. The linker stops at the first
/// import it cannot satisfy, so each refused one is stood in for with traps and the match
/// repeated, until the rest link.
fn imports(engine: &Engine, component: &Component) -> Result<Vec<Import>> {
    let ty = component.component_type();
    let items: Vec<(String, ComponentItem)> =
        ty.imports(engine).map(|(name, item)| (name.to_owned(), item.ty)).collect();
    let mut refused: Vec<(String, String)> = Vec::new();
    let mut linker = linker(engine)?;
    linker.allow_shadowing(true);
    for _ in 0..=items.len() {
        let Err(err) = linker.instantiate_pre(component) else { break };
        let err = anyhow::Error::from(err);
        let top = err.to_string();
        let Some(name) = top.split('`').nth(1).filter(|n| items.iter().any(|(i, _)| i == n)) else {
            bail!("the component does not link: {err:#}");
        };
        let reason: Vec<String> = err.chain().skip(1).map(ToString::to_string).collect();
        let reason = if reason.is_empty() { top.clone() } else { reason.join(": ") };
        let item = &items.iter().find(|(i, _)| i == name).expect("found above").1;
        stand_in(&mut linker, engine, name, item)?;
        refused.push((name.to_owned(), reason));
    }
    Ok(items
        .into_iter()
        .map(|(name, _)| {
            let refused = refused.iter().find(|(n, _)| *n == name).map(|(_, why)| why.clone());
            Import { name, refused }
        })
        .collect())
}

/// Defines `name` in `linker` with functions that trap, of whatever type the component wants.
fn stand_in(linker: &mut Linker<HostState>, engine: &Engine, name: &str, item: &ComponentItem) -> Result<()> {
    struct StandIn;
    let trap = |_: wasmtime::StoreContextMut<'_, HostState>, _, _: &[_], _: &mut [_]| -> wasmtime::Result<()> {
        wasmtime::bail!("the host does not provide this import")
    };
    match item {
        ComponentItem::ComponentFunc(_) => linker.root().func_new(name, trap).map_err(anyhow::Error::from)?,
        ComponentItem::ComponentInstance(instance) => {
            let mut stand_in = linker.instance(name).map_err(anyhow::Error::from)?;
            for (export, item) in instance.exports(engine) {
                match item.ty {
                    ComponentItem::ComponentFunc(_) => stand_in.func_new(export, trap).map_err(anyhow::Error::from)?,
                    ComponentItem::Resource(_) => stand_in
                        .resource(export, ResourceType::host::<StandIn>(), |_, _| Ok(()))
                        .map_err(anyhow::Error::from)?,
                    _ => {}
                }
            }
        }
        _ => bail!("the component imports {name}, which is neither a function nor an instance"),
    }
    Ok(())
}
