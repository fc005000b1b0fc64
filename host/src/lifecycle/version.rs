//! One version of an instance's guest: a loaded component, the config it was initialised
//! with, its idle guest instances and its warm spare.
//!
//! A hot swap installs a new version and retires the old one. Every flush takes a worker from
//! exactly one version and gives it back to the same one, so exactly one version serves each
//! chunk; a worker that comes back to a retired version is exited instead of kept.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::bindings::InitContext;
use crate::lifecycle::worker::Worker;
use crate::runtime::image::GuestImage;

pub struct GuestVersion {
    pub image: Arc<GuestImage>,
    pub init_ctx: InitContext,
    pool: Mutex<Pool>,
}

struct Pool {
    idle: Vec<Worker>,
    /// An instance started and initialised ahead of need, off the flush path, for the flush
    /// that finds no idle instance (after a fault, a recycle, or for more concurrency).
    spare: Option<Worker>,
    /// A spare was asked for and is not ready yet.
    spare_pending: bool,
    retired: bool,
}

impl GuestVersion {
    pub fn new(image: Arc<GuestImage>, init_ctx: InitContext, first: Worker) -> Self {
        Self {
            image,
            init_ctx,
            pool: Mutex::new(Pool { idle: vec![first], spare: None, spare_pending: false, retired: false }),
        }
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        // A panic while holding the lock leaves a consistent list behind.
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lowercase hex SHA-256 of this version's component.
    pub fn digest(&self) -> &str {
        self.image.digest()
    }

    /// The linear memory of the first idle instance (the one planning made), if any is idle.
    pub fn first_memory(&self) -> Option<usize> {
        self.pool().idle.first().map(Worker::memory)
    }

    /// An idle guest instance of this version, if there is one.
    pub fn take_idle(&self) -> Option<Worker> {
        self.pool().idle.pop()
    }

    /// The warm spare, if one is ready.
    pub fn take_spare(&self) -> Option<Worker> {
        self.pool().spare.take()
    }

    /// Whether a spare should be asked for: none is ready or on its way, and the version still
    /// serves. Answers true once per spare: the caller asks for it.
    pub fn claim_spare(&self) -> bool {
        let mut pool = self.pool();
        let wanted = pool.spare.is_none() && !pool.spare_pending && !pool.retired;
        pool.spare_pending |= wanted;
        wanted
    }

    pub fn is_retired(&self) -> bool {
        self.pool().retired
    }

    /// The spare asked for could not be made; the next flush that needs one asks again.
    pub fn spare_failed(&self) {
        self.pool().spare_pending = false;
    }

    /// Keeps `worker` as the warm spare, or hands it back if the version has one or was retired.
    pub fn offer_spare(&self, worker: Worker) -> Result<(), Worker> {
        let mut pool = self.pool();
        pool.spare_pending = false;
        if pool.retired || pool.spare.is_some() {
            return Err(worker);
        }
        pool.spare = Some(worker);
        Ok(())
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

    /// Marks the version retired and takes its idle workers and spare; busy ones come back
    /// through [`GuestVersion::put_back`] as `Err` when their flush ends.
    pub fn retire(&self) -> Vec<Worker> {
        let mut pool = self.pool();
        pool.retired = true;
        let mut workers = std::mem::take(&mut pool.idle);
        workers.extend(pool.spare.take());
        workers
    }
}
