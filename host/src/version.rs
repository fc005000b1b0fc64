//! One version of an instance's guest: a loaded component, the config it was initialised
//! with, and its idle guest instances.
//!
//! A hot swap installs a new version and retires the old one. Every flush takes a worker from
//! exactly one version and gives it back to the same one, so exactly one version serves each
//! chunk; a worker that comes back to a retired version is exited instead of kept.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::bindings::InitContext;
use crate::image::GuestImage;
use crate::worker::Worker;

pub struct GuestVersion {
    pub image: Arc<GuestImage>,
    pub init_ctx: InitContext,
    pool: Mutex<Pool>,
}

struct Pool {
    idle: Vec<Worker>,
    retired: bool,
}

impl GuestVersion {
    pub fn new(image: Arc<GuestImage>, init_ctx: InitContext, first: Worker) -> Self {
        Self { image, init_ctx, pool: Mutex::new(Pool { idle: vec![first], retired: false }) }
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        // A panic while holding the lock leaves a consistent list behind.
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lowercase hex SHA-256 of this version's component.
    pub fn digest(&self) -> &str {
        self.image.digest()
    }

    /// An idle guest instance of this version, if there is one.
    pub fn take_idle(&self) -> Option<Worker> {
        self.pool().idle.pop()
    }

    /// Keeps `worker` for the next flush, or hands it back if this version was retired.
    pub fn put_back(&self, worker: Worker) -> Result<(), Worker> {
        let mut pool = self.pool();
        if pool.retired {
            return Err(worker);
        }
        pool.idle.push(worker);
        Ok(())
    }

    /// Marks the version retired and takes its idle workers; busy ones come back through
    /// [`GuestVersion::put_back`] as `Err` when their flush ends.
    pub fn retire(&self) -> Vec<Worker> {
        let mut pool = self.pool();
        pool.retired = true;
        std::mem::take(&mut pool.idle)
    }
}
