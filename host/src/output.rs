//! One `[OUTPUT] Name wasm` section: its guest image, resolved config and pool of workers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::agent::Agent;
use crate::bindings::{FlushError, InitContext};
use crate::config::{self, HostConfig};
use crate::image::GuestImage;
use crate::log::Logger;
use crate::worker::{ChunkRef, Request, Response, Worker};

/// How a flush ended, in the agent's terms; mapped to its status codes in `ffi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushStatus {
    Ok,
    Retry,
    Error,
}

/// The plugin's state for one output instance, owned by the agent's `remote_context`.
///
/// Guest instances live on workers. A flush takes an idle worker, or starts a new one when all
/// are busy, so an instance with `workers N` in the agent ends up with N guest instances that
/// flush concurrently; one without ends up with one. A worker whose guest faulted is discarded
/// and the next flush starts a fresh one.
pub struct OutputInstance {
    logger: Logger,
    image: Arc<GuestImage>,
    init_ctx: InitContext,
    idle: Mutex<Vec<Worker>>,
    next_worker: AtomicU64,
    /// Drives WASI's host-side I/O for this instance's guests; shut down in `exit`.
    runtime: Option<tokio::runtime::Runtime>,
}

impl OutputInstance {
    /// Reads the host's keys, loads the guest, resolves the guest's declared keys and
    /// initialises one guest instance. Any failure refuses the instance.
    pub fn init(agent: &Agent, logger: Logger, name: &str) -> Result<Self> {
        let host = HostConfig::read(agent)?;
        let path = host.wasm_path.display().to_string();
        let image = GuestImage::load(&host.wasm_path)
            .with_context(|| format!("failed to load guest '{path}'"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .thread_name("out-wasm-io")
            .enable_all()
            .build()
            .context("failed to start the I/O runtime")?;
        let init_ctx = InitContext {
            instance: name.to_owned(),
            guest_path: path.clone(),
            guest_digest: image.digest().to_owned(),
            config: Vec::new(),
        };
        let mut this = Self {
            logger,
            image: Arc::new(image),
            init_ctx,
            idle: Mutex::new(Vec::new()),
            next_worker: AtomicU64::new(0),
            runtime: Some(runtime),
        };
        let first = this
            .start_first(agent)
            .with_context(|| format!("failed to initialize guest '{path}'"))?;
        this.idle().push(first);
        this.logger.info(&format!(
            "guest '{path}' (sha256 {}) initialized",
            &this.image.digest()[..12]
        ));
        Ok(this)
    }

    /// The first worker also answers the guest's config schema, which the agent then resolves.
    fn start_first(&mut self, agent: &Agent) -> Result<Worker> {
        let mut worker = self.spawn_worker()?;
        let schema = match worker.call(Request::Schema, &self.logger) {
            Ok(Response::Schema(schema)) => schema,
            Ok(other) => bail!("config-schema answered unexpectedly: {other:?}"),
            Err(fault) => return Err(anyhow!("{fault}").context("guest faulted in config-schema")),
        };
        self.init_ctx.config = config::resolve_with_agent(&schema, agent)?;
        self.init_worker(&mut worker)?;
        Ok(worker)
    }

    fn spawn_worker(&self) -> Result<Worker> {
        let id = self.next_worker.fetch_add(1, Ordering::Relaxed);
        let runtime = self
            .runtime
            .as_ref()
            .expect("runtime lives until exit")
            .handle()
            .clone();
        Worker::spawn(id, self.image.clone(), runtime, &self.logger)
    }

    fn init_worker(&self, worker: &mut Worker) -> Result<()> {
        match worker.call(Request::Init(self.init_ctx.clone()), &self.logger) {
            Ok(Response::Init(Ok(()))) => Ok(()),
            Ok(Response::Init(Err(message))) => bail!("guest init returned an error: {message}"),
            Ok(other) => bail!("guest init answered unexpectedly: {other:?}"),
            Err(fault) => Err(anyhow!("{fault}").context("guest faulted in init")),
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Worker>> {
        // A panic while holding the lock leaves a plain Vec behind, still consistent.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn checkout(&self) -> Result<Worker> {
        if let Some(worker) = self.idle().pop() {
            return Ok(worker);
        }
        let mut worker = self.spawn_worker()?;
        self.init_worker(&mut worker)?;
        self.logger.debug(&format!(
            "started guest instance #{} for a concurrent flush",
            worker.id()
        ));
        Ok(worker)
    }

    /// Delivers one chunk to a guest instance.
    pub fn flush(&self, tag: &str, chunk: &[u8]) -> FlushStatus {
        let path = &self.init_ctx.guest_path;
        let mut worker = match self.checkout() {
            Ok(worker) => worker,
            Err(err) => {
                self.logger.error(&format!(
                    "failed to start an instance of guest '{path}', the chunk will be retried: {err:#}"
                ));
                return FlushStatus::Retry;
            }
        };
        // SAFETY: `chunk` is valid for this whole function, and `call` only returns once the
        // worker is done with the request that carries it.
        let chunk = unsafe { ChunkRef::new(chunk) };
        let outcome = worker.call(
            Request::Flush {
                tag: tag.to_owned(),
                chunk,
            },
            &self.logger,
        );
        let status = match outcome {
            Ok(Response::Flush(Ok(()))) => FlushStatus::Ok,
            Ok(Response::Flush(Err(FlushError::Retry(message)))) => {
                self.logger.warn(&format!(
                    "guest asked to retry the chunk of tag '{tag}': {message}"
                ));
                FlushStatus::Retry
            }
            Ok(Response::Flush(Err(FlushError::Error(message)))) => {
                self.logger.error(&format!(
                    "guest failed the chunk of tag '{tag}', it is dropped: {message}"
                ));
                FlushStatus::Error
            }
            Ok(other) => {
                self.logger
                    .error(&format!("guest flush answered unexpectedly: {other:?}"));
                return FlushStatus::Retry;
            }
            Err(fault) => {
                self.logger.error(&format!(
                    "guest '{path}' instance #{} faulted in flush and is discarded; the chunk of tag \
                     '{tag}' will be retried: {fault}",
                    worker.id()
                ));
                return FlushStatus::Retry;
            }
        };
        self.idle().push(worker);
        status
    }

    /// Gives every guest instance its exit call, then stops the worker threads and the runtime.
    /// The agent calls this once, after the instance's last flush returned.
    pub fn exit(mut self) {
        let workers = std::mem::take(&mut *self.idle());
        for mut worker in workers {
            if let Err(fault) = worker.call(Request::Exit, &self.logger) {
                self.logger.warn(&format!(
                    "guest instance #{} faulted in exit: {fault}",
                    worker.id()
                ));
            }
            worker.join();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
        self.logger.debug("exited");
    }
}
