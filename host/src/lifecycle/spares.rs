//! Warm spares: one plugin thread per output instance that starts and initialises a guest
//! instance ahead of need, so that after the first start no flush waits for an instantiation
//! or an `init` (after a fault, a memory recycle, for more concurrency, or after a hot swap).
//!
//! A flush that finds no idle instance takes the version's spare and asks for the next one; a
//! flush that finds no spare either (several at once, or a spare still starting) starts an
//! instance itself, as before, and that fallback is counted.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use crate::lifecycle::state::OutputState;
use crate::lifecycle::version::GuestVersion;

enum Request {
    /// Prepare a spare for this version (claimed with `GuestVersion::claim_spare`), unless it
    /// was retired meanwhile.
    Prepare(Arc<GuestVersion>),
    Stop,
}

/// Handle to the spare-making thread of one output instance.
pub struct Spares {
    requests: Sender<Request>,
    thread: Option<JoinHandle<()>>,
}

impl Spares {
    pub fn start(shared: Arc<OutputState>) -> Result<Self> {
        let (requests, incoming) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("out-wasm-spare-{}", shared.name))
            .spawn(move || run(&shared, &incoming))
            .context("failed to start a thread")?;
        Ok(Self { requests, thread: Some(thread) })
    }

    /// Asks for a spare of `version` if it needs one; returns at once.
    pub fn replenish(&self, version: &Arc<GuestVersion>) {
        if version.claim_spare() {
            // The thread only ends in `stop`, after the agent's last flush.
            let _ = self.requests.send(Request::Prepare(version.clone()));
        }
    }

    /// Stops the thread once the spare it is preparing (if any) is done, and waits for it. The
    /// spares themselves stay with their versions, which exit them.
    pub fn stop(mut self) {
        let _ = self.requests.send(Request::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(shared: &OutputState, requests: &Receiver<Request>) {
    let logger = shared.logger.deferred();
    while let Ok(Request::Prepare(version)) = requests.recv() {
        if version.is_retired() {
            version.spare_failed();
            continue;
        }
        match shared.start_instance(&version, &logger) {
            Ok(worker) => {
                logger.debug(&format!("guest instance #{} is ready as a warm spare", worker.id()));
                if let Err(worker) = version.offer_spare(worker) {
                    shared.exit_worker(worker, &logger);
                }
            }
            // The flush that needs an instance starts one itself, and reports a failure then.
            Err(err) => {
                version.spare_failed();
                logger.warn(&format!("failed to prepare a warm spare instance: {err:#}"));
            }
        }
    }
}
