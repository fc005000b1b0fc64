//! The state an output instance's threads share (the flush path on the agent's threads, the
//! watcher, the warm-spare thread): the current guest version, and how a guest version is
//! prepared and its instances started and stopped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, anyhow, bail};

use crate::agent::handle::Agent;
use crate::agent::logger::Logger;
use crate::bindings::{EventFormat, EventTypes, InitContext, WitVersion};
use crate::config::{self, HostConfig};
use crate::lifecycle::version::GuestVersion;
use crate::lifecycle::worker::{Request, Response, Worker};
use crate::runtime::cache::CompileCache;
use crate::runtime::image::GuestImage;
use crate::sandbox::metrics::GuestMetrics;
use crate::telemetry::host::{HostMetrics, Meters};

/// What the flush path, the watcher thread and the spares thread of an output instance share.
pub struct Shared {
    pub name: String,
    pub agent: Agent,
    pub logger: Logger,
    pub host: HostConfig,
    cache: Option<CompileCache>,
    next_worker: AtomicU64,
    runtime: tokio::runtime::Handle,
    current: Mutex<Option<Arc<GuestVersion>>>,
    /// The guests' own metrics: the output instance's, whichever guest instance declared them.
    metrics: Arc<GuestMetrics>,
    /// The host's metrics of this output instance (`fluentbit_wasm_*`).
    pub host_metrics: Arc<HostMetrics>,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        agent: Agent,
        logger: Logger,
        host: HostConfig,
        cache: Option<CompileCache>,
        runtime: tokio::runtime::Handle,
        metrics: Arc<GuestMetrics>,
        host_metrics: Arc<HostMetrics>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            agent,
            logger,
            host,
            cache,
            next_worker: AtomicU64::new(0),
            runtime,
            current: Mutex::new(None),
            metrics,
            host_metrics,
        }
    }

    /// The version new flushes go to.
    pub fn current(&self) -> Arc<GuestVersion> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone().expect("a version is installed at init")
    }

    /// Makes `version` the one new flushes go to; returns the one it replaces.
    pub fn install(&self, version: Arc<GuestVersion>) -> Option<Arc<GuestVersion>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).replace(version)
    }

    fn spawn_worker(&self, image: &Arc<GuestImage>, logger: &Logger) -> Result<Worker> {
        let id = self.next_worker.fetch_add(1, Ordering::Relaxed);
        let capabilities = self.host.capabilities.clone();
        Worker::spawn(
            id,
            image.clone(),
            self.runtime.clone(),
            self.host.limits,
            capabilities,
            Meters { guest: self.metrics.clone(), host: self.host_metrics.clone() },
            logger,
        )
    }

    /// Starts and initialises a new guest instance of `version`: what a flush must never wait
    /// for once the output runs (see [`crate::lifecycle::spares`]).
    pub fn start_instance(&self, version: &GuestVersion, logger: &Logger) -> Result<Worker> {
        let mut worker = self.spawn_worker(&version.image, logger)?;
        Self::init_worker(&mut worker, &version.init_ctx, logger)?;
        Ok(worker)
    }

    fn init_worker(worker: &mut Worker, ctx: &InitContext, logger: &Logger) -> Result<()> {
        match worker.call(Request::Init(ctx.clone()), logger) {
            Ok(Response::Init(Ok(()))) => Ok(()),
            Ok(Response::Init(Err(message))) => bail!("guest init returned an error: {message}"),
            Ok(other) => bail!("guest init answered unexpectedly: {other:?}"),
            Err(fault) => Err(anyhow!("{fault}").context("guest faulted in init")),
        }
    }

    /// Loads a guest (from `bytes`, or from the file), resolves the keys it declares and
    /// initialises its first instance: a version ready to serve. Compiling, instantiating and
    /// init all happen here, never on the flush path of another version.
    pub fn prepare(&self, bytes: Option<&[u8]>, logger: &Logger) -> Result<Arc<GuestVersion>> {
        let path = &self.host.wasm_path;
        let image = match bytes {
            Some(bytes) => GuestImage::from_bytes(path, bytes, self.cache.as_ref(), self.host.limits.deadlines),
            None => GuestImage::load(path, self.cache.as_ref(), self.host.limits.deadlines),
        }
        .with_context(|| format!("failed to load guest '{}'", path.display()))?;
        let image = Arc::new(image);
        let setup = || -> Result<Arc<GuestVersion>> {
            let mut worker = self.spawn_worker(&image, logger)?;
            let schema = match worker.call(Request::Schema, logger) {
                Ok(Response::Schema(schema)) => schema,
                Ok(other) => bail!("config-schema answered unexpectedly: {other:?}"),
                Err(fault) => return Err(anyhow!("{fault}").context("guest faulted in config-schema")),
            };
            if schema.event_types == EventTypes::empty() {
                bail!("the guest accepts no event types (accepted-event-types returned an empty set)");
            }
            let event_format = self.host.event_format.unwrap_or(schema.preferred_format);
            if event_format == EventFormat::OtlpJson && image.version() < WitVersion::V0_2_0 {
                bail!(
                    "wasm_event_format otlp_json needs a guest built against out-wasm:output@0.2.0 or later; \
                     this one is {}",
                    image.version()
                );
            }
            let ctx = InitContext {
                instance: self.name.clone(),
                guest_path: path.display().to_string(),
                guest_digest: image.digest().to_owned(),
                config: config::resolve_with_agent(&schema.keys, &self.agent)?,
                event_format,
                event_types: schema.event_types,
            };
            Self::init_worker(&mut worker, &ctx, logger)?;
            Ok(Arc::new(GuestVersion::new(image.clone(), ctx, worker)))
        };
        setup().with_context(|| format!("failed to initialize guest '{}'", path.display()))
    }

    /// Gives a worker its exit call and stops its thread.
    pub fn exit_worker(mut worker: Worker, logger: &Logger) {
        if let Err(fault) = worker.call(Request::Exit, logger) {
            logger.warn(&format!("guest instance #{} faulted in exit: {fault}", worker.id()));
        }
        worker.join();
    }
}

/// The first 12 hex digits of a digest, as logs show it.
pub fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}
