//! The state an output instance's threads share (the flush path on the agent's threads, the
//! watcher, the warm-spare thread): the current guest version, and how a guest version is
//! prepared and its instances started and stopped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, anyhow, bail};

use crate::agent::handle::Agent;
use crate::agent::logger::Logger;
use crate::bindings::InitContext;
use crate::config::{CanaryConfig, HostConfig};
use crate::lifecycle::canary::Canary;
use crate::lifecycle::plan::{Setting, plan};
use crate::lifecycle::version::GuestVersion;
use crate::lifecycle::worker::{Call, Phase, Recipe, Worker};
use crate::runtime::cache::CompileCache;
use crate::runtime::image::GuestImage;
use crate::runtime::oci::{Artifact, ArtifactStore, OciSource, RegistryClient};
use crate::sandbox::config::ConfigLookup;
use crate::sandbox::connections::Connections;
use crate::sandbox::descriptors::Descriptors;
use crate::sandbox::metrics::GuestMetrics;
use crate::telemetry::host::{HostMetrics, Meters};

/// What the flush path, the watcher thread and the spares thread of an output instance share.
pub struct OutputState {
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
    /// The kept-alive HTTP connections of all its guest instances.
    pub connections: Arc<Connections>,
    /// With `wasm_path oci://...`: the registry, the artifact store, and the artifact the
    /// first version was prepared from (set up by the first [`OutputState::prepare`]).
    oci: Mutex<Option<(Arc<OciSource>, Artifact)>>,
    /// A new version on trial beside `current` (`wasm_canary`), until it is judged.
    canary: Mutex<Option<Arc<Canary>>>,
}

impl OutputState {
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
            cache,
            next_worker: AtomicU64::new(0),
            runtime,
            current: Mutex::new(None),
            metrics,
            host_metrics,
            connections: Connections::new(
                host.http_keepalive,
                Descriptors::new(host.max_descriptors, host.wasm_path.display().to_string()),
            ),
            host,
            oci: Mutex::new(None),
            canary: Mutex::new(None),
        }
    }

    /// The OCI source and the artifact the serving version was first prepared from, when the
    /// guest comes from a registry.
    pub fn oci(&self) -> Option<(Arc<OciSource>, Artifact)> {
        self.oci.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Connects to the registry and opens the artifact store of `wasm_path oci://...`.
    fn open_oci(&self, config: &crate::config::OciConfig) -> Result<OciSource> {
        let trust = &self.host.capabilities.tls;
        let registry = RegistryClient::connect(&config.reference, config.auth_file.as_deref(), config.reach, trust)?;
        // Beside the compile cache; with the cache off, where it would be by default: pulled
        // guests must survive a restart for an outage not to stop the agent.
        let base = self.host.cache_dir.clone().or_else(CompileCache::default_dir).context(
            "no directory for the artifact store of pulled guests: set wasm_cache_dir (neither XDG_CACHE_HOME nor \
             HOME is set)",
        )?;
        let store = ArtifactStore::open(&ArtifactStore::beside(&base))?;
        Ok(OciSource {
            reference: config.reference.clone(),
            verify: config.verify.clone(),
            poll_interval: config.poll_interval,
            registry,
            store,
        })
    }

    /// The I/O runtime of the instance (what the registry client runs on).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// The version new flushes go to.
    pub fn current(&self) -> Arc<GuestVersion> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone().expect("a version is installed at init")
    }

    /// Makes `version` the one new flushes go to; returns the one it replaces.
    pub fn install(&self, version: Arc<GuestVersion>) -> Option<Arc<GuestVersion>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).replace(version)
    }

    /// The canary on trial, if any.
    pub fn canary(&self) -> Option<Arc<Canary>> {
        self.canary.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Puts `version` on trial beside the current one.
    pub fn start_canary(&self, version: Arc<GuestVersion>, config: CanaryConfig) -> Arc<Canary> {
        let canary = Arc::new(Canary::new(version, self.current(), config));
        *self.canary.lock().unwrap_or_else(PoisonError::into_inner) = Some(canary.clone());
        canary
    }

    /// Ends the trial of `canary` (judged or abandoned); a later canary is left alone.
    pub fn end_canary(&self, canary: &Arc<Canary>) {
        let mut slot = self.canary.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, canary)) {
            *slot = None;
        }
    }

    fn spawn_worker(&self, image: &Arc<GuestImage>, logger: &Logger) -> Result<Worker> {
        let id = self.next_worker.fetch_add(1, Ordering::Relaxed);
        let agent = self.agent;
        let recipe = Recipe {
            image: image.clone(),
            output: self.name.clone(),
            limits: self.host.limits,
            capabilities: self.host.capabilities.clone(),
            meters: Meters { guest: self.metrics.clone(), host: self.host_metrics.clone() },
            config: ConfigLookup::new(move |key| agent.property(key)),
            connections: self.connections.clone(),
        };
        Worker::spawn(id, recipe, self.runtime.clone(), logger)
    }

    /// Starts and initialises a new guest instance of `version`: what a flush must never wait
    /// for once the output runs (see [`crate::lifecycle::spares`]).
    pub fn start_instance(&self, version: &GuestVersion, logger: &Logger) -> Result<Worker> {
        let mut worker = self.spawn_worker(&version.image, logger)?;
        Self::init_worker(&mut worker, &version.init_ctx, logger)?;
        Ok(worker)
    }

    fn init_worker(worker: &mut Worker, ctx: &InitContext, logger: &Logger) -> Result<()> {
        let ctx = ctx.clone();
        let call =
            Call::new("init", Phase::Setup, move |instance, _| Box::pin(async move { instance.init(&ctx).await }));
        match worker.call(call.initialising(), logger) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => bail!("guest init returned an error: {message}"),
            Err(fault) => Err(anyhow!("{fault}").context("guest faulted in init")),
        }
    }

    /// Loads the guest file, plans the version (its keys resolved,
    /// its format and event types, [`crate::lifecycle::plan`]) and initialises its first
    /// instance: a version ready to serve. Compiling, instantiating and init all happen here,
    /// never on the flush path of another version.
    /// With `wasm_path oci://...`, the first call pulls the artifact (or, the registry being
    /// unreachable, takes the last verified pull from the artifact store) and loads that.
    pub fn prepare(&self, logger: &Logger) -> Result<Arc<GuestVersion>> {
        let Some(config) = &self.host.oci else {
            return self.prepare_file(&self.host.wasm_path, logger);
        };
        let path = &self.host.wasm_path;
        let source = match self.oci() {
            Some((source, _)) => source,
            None => {
                Arc::new(self.open_oci(config).with_context(|| format!("failed to set up guest '{}'", path.display()))?)
            }
        };
        let artifact =
            source.initial(&self.runtime).with_context(|| format!("failed to pull guest '{}'", path.display()))?;
        if let Some(why) = &artifact.offline {
            logger.warn(&format!(
                "the registry of guest '{}' cannot be reached ({why}): starting from the last verified pull, manifest \
                 {} (component sha256 {}) from the artifact store {}",
                path.display(),
                artifact.manifest,
                short(&artifact.digest),
                source.store.dir().display()
            ));
        } else {
            logger.info(&format!(
                "pulled guest '{}': manifest {}, component sha256 {} ({})",
                path.display(),
                artifact.manifest,
                short(&artifact.digest),
                source.registry.auth_source()
            ));
        }
        let version = self.prepare_artifact(&artifact, logger)?;
        *self.oci.lock().unwrap_or_else(PoisonError::into_inner) = Some((source, artifact));
        Ok(version)
    }

    /// Prepares a version from a pulled artifact (its component in the artifact store).
    pub fn prepare_artifact(&self, artifact: &Artifact, logger: &Logger) -> Result<Arc<GuestVersion>> {
        self.prepare_file(&artifact.path, logger)
    }

    /// Prepares a version from the component file `path` (`wasm_path`, or a pulled component).
    fn prepare_file(&self, path: &std::path::Path, logger: &Logger) -> Result<Arc<GuestVersion>> {
        let image = GuestImage::load(path, self.cache.as_ref(), self.host.limits.deadlines)
            .with_context(|| format!("failed to load guest '{}'", self.host.wasm_path.display()))?;
        let image = Arc::new(image);
        let setup = || -> Result<Arc<GuestVersion>> {
            let mut worker = self.spawn_worker(&image, logger)?;
            let guest_path = self.host.wasm_path.display().to_string();
            let (name, digest) = (self.name.clone(), image.digest().to_owned());
            let (format, agent) = (self.host.event_format, self.agent);
            let call = Call::new("config-schema", Phase::Setup, move |instance, _| {
                Box::pin(async move {
                    let lookup = move |key: &str| agent.property(key);
                    let setting = Setting {
                        instance: &name,
                        guest_path: &guest_path,
                        guest_digest: &digest,
                        format,
                        lookup: &lookup,
                    };
                    plan(instance, &setting).await
                })
            });
            let init = match worker.call(call, logger) {
                Ok(planned) => planned?,
                Err(fault) => {
                    let during = fault.during.unwrap_or("config-schema");
                    return Err(anyhow!("{fault}").context(format!("guest faulted in {during}")));
                }
            };
            Self::init_worker(&mut worker, &init, logger)?;
            Ok(Arc::new(GuestVersion::new(image.clone(), init, worker)))
        };
        setup().with_context(|| format!("failed to initialize guest '{}'", self.host.wasm_path.display()))
    }

    /// Gives a worker its exit call (with the flush timeout as its time) and stops its thread.
    pub fn exit_worker(&self, mut worker: Worker, logger: &Logger) {
        let limits = &self.host.limits;
        let time_left = limits.deadlines.then_some(limits.flush_timeout);
        let call = Call::new("exit", Phase::Serve, move |instance, _| Box::pin(instance.exit(time_left)));
        if let Err(fault) = worker.call(call, logger) {
            logger.warn(&format!("guest instance #{} faulted in exit: {fault}", worker.id()));
        }
        worker.join();
    }
}

/// The first 12 hex digits of a digest, as logs show it.
pub fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}
