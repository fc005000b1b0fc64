//! A guest examined outside the agent, for `out-wasm check`: the same checks, compiler, linker
//! and calls the plugin uses when an instance starts, with every step's answer kept for the
//! author instead of the first failure only.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, anyhow, bail};
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceType};

pub use crate::bindings::{ConfigKey, EventFormat, EventTypes};
pub use crate::log::Level;
pub use crate::runtime::cache::CompileCache;
pub use crate::runtime::instance::Schema;

use crate::bindings::{ConfigEntry, InitContext, WitVersion};
use crate::config::{self, Limits};
use crate::log::{Lines, LogSink};
use crate::runtime::cache;
use crate::runtime::engine::{TickerGuard, engine};
use crate::runtime::image::{self, GuestImage};
use crate::runtime::instance::GuestInstance;
use crate::runtime::linker::linker;
use crate::runtime::store::HostState;
use crate::sandbox::Capabilities;
use crate::sandbox::metrics::{GuestMetrics, MetricLimits};

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
            Some(cache) => cache.load_or_compile(engine, bytes, &digest)?.0,
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

    /// Whether the plugin would accept the component: a supported world, every import provided.
    pub fn loadable(&self) -> bool {
        self.image.is_some()
    }

    /// Instantiates the guest and asks it for its keys, preferred format and event types.
    pub fn schema(&self) -> Result<Probe<Schema>> {
        let Session { runtime, mut instance, events, ticker } = Session::start(self.image()?, &|_| None)?;
        let outcome = runtime.block_on(within_init_timeout(async {
            let schema = instance.schema().await.map_err(|fault| anyhow!("{fault}"))?;
            instance.exit().await.map_err(|fault| anyhow!("{fault}").context("guest faulted in exit"))?;
            Ok(schema)
        }));
        drop(ticker);
        Ok(Probe { value: outcome?, logs: logs(&events) })
    }

    /// Resolves `config` (the keys of an `[OUTPUT]` section, host keys included) against the
    /// guest's schema like the plugin does, then runs `init` once and `exit`. The outcome is the
    /// resolved config and the guest's own answer to init; a fault or a config the plugin would
    /// refuse is an error.
    pub fn init(&self, config: &[(String, String)]) -> Result<Probe<Init>> {
        let image = self.image()?;
        let lookup = |key: &str| config.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.clone());
        let host = config::HostConfig::from_lookup(|key| match key {
            "wasm_path" => Some(image.path().display().to_string()),
            _ => lookup(key),
        })?;
        let Session { runtime, mut instance, events, ticker } = Session::start(image, &lookup)?;
        let outcome = runtime.block_on(within_init_timeout(async {
            let schema = instance
                .schema()
                .await
                .map_err(|fault| anyhow!("{fault}").context("guest faulted in config-schema"))?;
            if schema.event_types == EventTypes::empty() {
                bail!("the guest accepts no event types (accepted-event-types returned an empty set)");
            }
            let event_format = host.event_format.unwrap_or(schema.preferred_format);
            if event_format == EventFormat::OtlpJson && image.version() < WitVersion::V0_2_0 {
                bail!("wasm_event_format otlp_json needs a guest built against out-wasm:output@0.2.0 or later");
            }
            let entries = config::resolve(&schema.keys, lookup).context("failed to resolve the guest's config")?;
            let ctx = InitContext {
                instance: "wasm.0".to_owned(),
                guest_path: image.path().display().to_string(),
                guest_digest: self.digest.clone(),
                config: entries.clone(),
                event_format,
                event_types: schema.event_types,
            };
            instance.begin_call();
            let answer =
                instance.init(&ctx).await.map_err(|fault| anyhow!("{fault}").context("guest faulted in init"))?;
            if answer.is_ok() {
                instance.begin_call();
                instance.exit().await.map_err(|fault| anyhow!("{fault}").context("guest faulted in exit"))?;
            }
            Ok(Init { config: entries, answer })
        }));
        drop(ticker);
        Ok(Probe { value: outcome?, logs: logs(&events) })
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

/// What `init` was given and what the guest answered.
#[derive(Debug)]
pub struct Init {
    /// The resolved config, in declaration order.
    pub config: Vec<ConfigEntry>,
    /// The guest's own answer: its error string when it refused the config.
    pub answer: Result<(), String>,
}

/// What a guest call answered, and the lines the guest logged meanwhile.
#[derive(Debug)]
pub struct Probe<T> {
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

impl Session {
    fn start(image: &GuestImage, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .context("failed to start the runtime")?;
        let events = Arc::new(Collected::default());
        let capabilities = Capabilities::from_lookup(lookup)?;
        let metrics = Arc::new(GuestMetrics::new(MetricLimits::default(), None));
        let ticker = TickerGuard::acquire()?;
        let instance = runtime.block_on(within_init_timeout(async {
            GuestInstance::instantiate(
                image,
                Level::Trace,
                LogSink::new(events.clone()),
                Limits::default().memory,
                true,
                &capabilities,
                metrics,
            )
            .await
            .context("failed to instantiate the guest")
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
