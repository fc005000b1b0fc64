//! The watcher: one plugin thread per watched instance that notices a new guest (a changed
//! file, or a followed `oci://` tag that moved), swaps it in off the flush path, and retires
//! the instances of the version it replaced.
//!
//! A followed tag is resolved every `wasm_oci_poll_interval` (with jitter, so a fleet does not
//! ask the registry in step; backing off while the registry fails). A new manifest digest is
//! pulled and checked ([`crate::runtime::oci`]) and then swapped in exactly as a new file is.
//! A registry outage only delays the next version: the current one keeps serving.
//!
//! A swap happens only when the file's *content* changes (its SHA-256), after the file stayed
//! unchanged for one interval (so a copy in progress is not read half-way). The new version is
//! compiled (or taken from the compile cache), instantiated, given the instance's config (its
//! declared keys are read again) and initialised before it is installed; until then, and if any
//! step fails, the current version keeps serving. Flushes already running finish on the old
//! version; the old instances get their exit call when they are idle.
//!
//! With `wasm_canary`, a prepared version is not installed but put on trial beside the current
//! one ([`crate::lifecycle::canary`]); the flush path judges it. Meanwhile the watcher leaves the
//! source alone; after the verdict a rolled-back content (or manifest) is refused like one that
//! failed to swap in, until the source changes again.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::agent::logger::Logger;
use crate::lifecycle::state::{OutputState, short};
use crate::lifecycle::worker::Worker;
use crate::runtime::image;
use crate::runtime::oci::{Artifact, OciSource, PullError};

/// What identifies one state of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    /// The stamp of the file `path` leads to (symlinks followed, as a Kubernetes volume's
    /// `..data` link is), or `None` if it cannot be read right now.
    pub fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        let ns = |secs: i64, nsecs: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsecs);
        Some(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        })
    }
}

enum Control {
    /// A worker of a retired version finished its flush: give it its exit call.
    Retire(Worker),
    Stop,
}

/// Handle to the watcher thread of one instance.
pub struct Watcher {
    control: Sender<Control>,
    thread: Option<JoinHandle<()>>,
    /// The registry of a followed tag: a poll in flight is abandoned when the watcher stops, so
    /// exit (and a hot reload) never waits on a registry.
    oci: Option<std::sync::Arc<OciSource>>,
}

impl Watcher {
    /// Starts watching `shared.host.wasm_path`; `loaded` is the file's stamp when the current
    /// version was read.
    pub fn start(shared: Arc<OutputState>, loaded: Option<FileStamp>) -> Result<Self> {
        let (control, requests) = mpsc::channel();
        let oci = shared.oci().map(|(source, _)| source);
        let thread = std::thread::Builder::new()
            .name(format!("out-wasm-watch-{}", shared.name))
            .spawn(move || run(&shared, loaded, &requests))
            .context("failed to start a thread")?;
        Ok(Self { control, thread: Some(thread), oci })
    }

    /// Hands over a worker of a retired version, to be exited off the flush path.
    pub fn retire(&self, worker: Worker) {
        // The watcher only stops in `stop`, after the agent's last flush; should it be gone, the
        // worker's own Drop still ends its thread.
        let _ = self.control.send(Control::Retire(worker));
    }

    /// Stops the thread after the exit calls it still owes, and waits for it.
    pub fn stop(mut self) {
        if let Some(source) = &self.oci {
            source.registry.cancel();
        }
        let _ = self.control.send(Control::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct State {
    /// Stamp of the file content the current version came from (or last tried).
    loaded: Option<FileStamp>,
    /// Stamp seen at the previous check, while waiting for the file to settle.
    seen: Option<FileStamp>,
    /// Digest of the last file that failed to swap in, or was rolled back as a canary: not
    /// tried again until it changes.
    failed: Option<String>,
    /// Digest of the version on trial as a canary (`wasm_canary`), until it is judged.
    trial: Option<String>,
}

/// What the watcher follows.
enum Source {
    File(State),
    Tag(TagState),
    /// A pinned `oci://...@sha256:` reference: nothing to follow, only workers to retire.
    Pinned,
}

/// A followed tag.
struct TagState {
    source: std::sync::Arc<OciSource>,
    /// The manifest digest serving now.
    manifest: String,
    /// The manifest digest last refused (or that failed to swap in): not tried again until the
    /// tag moves.
    failed: Option<String>,
    /// Registry errors in a row, for the backoff; the first is logged, then one in ten.
    errors: u32,
    /// The manifest and component digest on trial as a canary, until it is judged.
    trial: Option<(String, String)>,
}

fn run(shared: &OutputState, loaded: Option<FileStamp>, control: &Receiver<Control>) {
    let logger = shared.logger.deferred();
    let mut source = match shared.oci() {
        None => Source::File(State { loaded, seen: None, failed: None, trial: None }),
        Some((source, _)) if !source.reference.follows() => Source::Pinned,
        Some((source, artifact)) => {
            Source::Tag(TagState { source, manifest: artifact.manifest, failed: None, errors: 0, trial: None })
        }
    };
    let mut next_check = Instant::now() + first_delay(shared, &source);
    loop {
        match control.recv_timeout(next_check.saturating_duration_since(Instant::now())) {
            Ok(Control::Retire(worker)) => shared.exit_worker(worker, &logger),
            Ok(Control::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let delay = match &mut source {
                    Source::File(state) => {
                        check(shared, state, &logger);
                        shared.host.watch_interval
                    }
                    Source::Tag(state) => poll(shared, state, &logger),
                    Source::Pinned => Duration::from_secs(3600),
                };
                next_check = Instant::now() + delay;
            }
        }
    }
    // Workers retired just before the stop still get their exit call.
    while let Ok(Control::Retire(worker)) = control.try_recv() {
        shared.exit_worker(worker, &logger);
    }
}

/// Whether a canary is still on trial (then the source is looked at again after its verdict).
/// Once it is judged: `true` if the version on trial (`digest`) was promoted, `false` if it was
/// rolled back; `None` when nothing was on trial.
fn on_trial(shared: &OutputState, digest: Option<&str>) -> Result<Option<bool>, ()> {
    if shared.canary().is_some() {
        return Err(());
    }
    Ok(digest.map(|digest| shared.current().digest() == digest))
}

/// Puts a prepared version on trial beside the serving one (`wasm_canary`), saying so.
fn begin_canary(
    shared: &OutputState,
    version: Arc<crate::lifecycle::version::GuestVersion>,
    what: &str,
    logger: &Logger,
) {
    let Some(config) = shared.host.canary else { return };
    let serving = shared.current();
    let share = match config.share {
        crate::config::CanaryShare::Percent(p) => format!("{p}% of the flushes"),
        crate::config::CanaryShare::One => "one guest instance".to_owned(),
    };
    logger.info(&format!(
        "canary started for guest {what}: sha256 {} beside sha256 {} on {share}, judged after {} of its \
         flushes and {} s ({})",
        short(version.digest()),
        short(serving.digest()),
        config.window_flushes,
        config.window_time.as_secs_f64(),
        version.image.provenance()
    ));
    shared.start_canary(version, config);
    shared.host_metrics.canary_started();
}

fn check(shared: &OutputState, state: &mut State, logger: &Logger) {
    let path = &shared.host.wasm_path;
    match on_trial(shared, state.trial.as_deref()) {
        // The file is looked at again once the canary is judged.
        Err(()) => return,
        Ok(Some(false)) => state.failed = state.trial.take(),
        Ok(_) => state.trial = None,
    }
    // Missing for a moment (a rename in progress, a volume being updated): look again later.
    let Some(stamp) = FileStamp::of(path) else { return };
    if Some(stamp) == state.loaded {
        state.seen = None;
        return;
    }
    if state.seen != Some(stamp) {
        // Changed since the last check: wait until it stays put for one interval.
        state.seen = Some(stamp);
        return;
    }
    state.seen = None;
    state.loaded = Some(stamp);
    // The digest alone tells whether the content changed; the file is read whole only to
    // compile a new version (`OutputState::prepare`).
    let digest = match image::file_digest(path) {
        Ok(digest) => digest,
        // Not a component at all: still refused once, by its content's digest, with the reason
        // `prepare` gives (the header check); a file that cannot be read is looked at again.
        Err(_) => match std::fs::read(path) {
            Ok(bytes) => image::digest(&bytes),
            Err(_) => return,
        },
    };
    let current = shared.current();
    if digest == current.digest() {
        return;
    }
    if state.failed.as_deref() == Some(digest.as_str()) {
        logger.info(&format!(
            "guest '{}' changed but its content did not (sha256 {}, refused before): not tried again until it does",
            path.display(),
            short(&digest)
        ));
        return;
    }
    let started = Instant::now();
    match shared.prepare(logger) {
        Ok(version) if shared.host.canary.is_some() => {
            state.trial = Some(version.digest().to_owned());
            begin_canary(shared, version, &format!("'{}'", path.display()), logger);
        }
        Ok(version) => {
            let provenance = version.image.provenance();
            // What was loaded, should the file have changed again since it was hashed.
            let digest = version.digest().to_owned();
            let old = shared.install(version);
            shared.host_metrics.swapped(&digest);
            logger.info(&format!(
                "swapped guest '{}': sha256 {} -> {} in {} ms ({provenance})",
                path.display(),
                short(current.digest()),
                short(&digest),
                started.elapsed().as_millis()
            ));
            state.failed = None;
            for worker in old.map(|old| old.retire()).unwrap_or_default() {
                shared.exit_worker(worker, logger);
            }
        }
        Err(err) => {
            logger.error(&format!(
                "failed to swap in guest '{}' (sha256 {}), still serving sha256 {}: {err:#}",
                path.display(),
                short(&digest),
                short(current.digest())
            ));
            state.failed = Some(digest);
            shared.host_metrics.swap_failed();
        }
    }
}

/// When the first check is due.
fn first_delay(shared: &OutputState, source: &Source) -> Duration {
    match source {
        Source::File(_) => shared.host.watch_interval,
        Source::Tag(state) => jittered(state.source.poll_interval),
        Source::Pinned => Duration::from_secs(3600),
    }
}

/// `interval` give or take a tenth, from the clock's nanoseconds: enough to spread a fleet's
/// polls, without a random number generator.
fn jittered(interval: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let spread = interval / 5;
    let offset = spread.mul_f64(f64::from(nanos % 1000) / 1000.0);
    interval - interval / 10 + offset
}

/// Resolves the followed tag and swaps a new manifest in; returns when to poll again.
fn poll(shared: &OutputState, state: &mut TagState, logger: &Logger) -> Duration {
    let source = state.source.clone();
    let reference = &source.reference;
    match on_trial(shared, state.trial.as_ref().map(|(_, digest)| digest.as_str())) {
        // The tag is resolved again once the canary is judged.
        Err(()) => return jittered(source.poll_interval),
        Ok(Some(promoted)) => {
            let (manifest, _) = state.trial.take().expect("a trial");
            if promoted {
                state.manifest = manifest;
            } else {
                state.failed = Some(manifest);
            }
        }
        Ok(None) => {}
    }
    let polled = source.poll(shared.runtime(), &state.manifest, state.failed.as_deref());
    match polled {
        Ok(None) => {
            if state.errors > 0 {
                logger.info(&format!("the registry of guest '{reference}' answers again"));
            }
            state.errors = 0;
        }
        Ok(Some(artifact)) => {
            state.errors = 0;
            swap_artifact(shared, state, &artifact, logger);
        }
        Err((manifest, PullError::Refused(err))) => {
            state.errors = 0;
            logger.error(&format!(
                "refused guest '{reference}' at manifest {manifest}, still serving manifest {}: {err:#}",
                state.manifest
            ));
            state.failed = Some(manifest);
            shared.host_metrics.swap_failed();
        }
        // Abandoned because the output is stopping: nothing to report, no next poll.
        Err((_, PullError::Registry(_))) if source.registry.cancelled() => return Duration::from_secs(3600),
        Err((_, PullError::Registry(err))) => {
            if state.errors.is_multiple_of(10) {
                logger.warn(&format!(
                    "cannot poll guest '{reference}' (still serving manifest {}; trying again with backoff): {err:#}",
                    state.manifest
                ));
            }
            state.errors = state.errors.saturating_add(1);
            // Doubling up to eight intervals: an outage is not made worse by the fleet.
            let factor = 1u32 << state.errors.min(3);
            return jittered(source.poll_interval * factor);
        }
    }
    jittered(source.poll_interval)
}

fn swap_artifact(shared: &OutputState, state: &mut TagState, artifact: &Artifact, logger: &Logger) {
    let reference = &state.source.reference;
    let current = shared.current();
    let started = Instant::now();
    match shared.prepare_artifact(artifact, logger) {
        Ok(version) if shared.host.canary.is_some() => {
            state.trial = Some((artifact.manifest.clone(), version.digest().to_owned()));
            let what = format!("'{reference}' at manifest {} (serving manifest {})", artifact.manifest, state.manifest);
            begin_canary(shared, version, &what, logger);
        }
        Ok(version) => {
            let provenance = version.image.provenance();
            let digest = version.digest().to_owned();
            let old = shared.install(version);
            shared.host_metrics.swapped(&digest);
            logger.info(&format!(
                "swapped guest '{reference}': sha256 {} -> {} (manifest {} -> {}) in {} ms ({provenance})",
                short(current.digest()),
                short(&digest),
                state.manifest,
                artifact.manifest,
                started.elapsed().as_millis()
            ));
            state.manifest = artifact.manifest.clone();
            state.failed = None;
            for worker in old.map(|old| old.retire()).unwrap_or_default() {
                shared.exit_worker(worker, logger);
            }
        }
        Err(err) => {
            logger.error(&format!(
                "failed to swap in guest '{reference}' at manifest {} (sha256 {}), still serving sha256 {}: {err:#}",
                artifact.manifest,
                short(&artifact.digest),
                short(current.digest())
            ));
            state.failed = Some(artifact.manifest.clone());
            shared.host_metrics.swap_failed();
        }
    }
}
