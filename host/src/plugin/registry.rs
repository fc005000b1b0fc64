//! Process-wide bookkeeping of live output instances.
//!
//! Needed for two things the agent does not tell us: the instance's name (`wasm.<n>`, numbered
//! like the agent numbers instances, from 0 in each configuration) and, for the legacy
//! context-less symbols, which instance a call is for. A legacy flush holds a [`Lease`] on the
//! instance it found, taken under the registry's lock, and an exit waits for the leases on its
//! instance to end before the instance is freed: the agent's FlushCtx contract (no flush runs
//! while its instance exits) is nothing a context-less call can rely on.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::agent::profile::AgentProfile;
use crate::lifecycle::output::OutputInstance;

struct LiveOutputs {
    /// Instances initialised since the last Register (the agent's current configuration).
    initialised: usize,
    /// The agent as the last Register found it (`None` before any).
    profile: Option<AgentProfile>,
    /// Whether an instance of the current configuration has said which agent this is.
    announced: bool,
    /// Live instances, oldest first.
    live: Vec<InstancePtr>,
    /// Instances with legacy flushes in flight, and how many.
    leased: Vec<(InstancePtr, usize)>,
}

/// Address of a boxed `OutputInstance` owned by the agent's `remote_context`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InstancePtr(pub *mut OutputInstance);

// SAFETY: only an address is kept here; it is dereferenced by the FFI layer under the ownership
// rules written in `lib.rs`.
unsafe impl Send for InstancePtr {}

static REGISTRY: Mutex<LiveOutputs> =
    Mutex::new(LiveOutputs { initialised: 0, profile: None, announced: false, live: Vec::new(), leased: Vec::new() });

/// Signalled when a lease ends.
static RELEASED: Condvar = Condvar::new();

fn registry() -> MutexGuard<'static, LiveOutputs> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Register starts a new configuration: instance numbering starts again at 0, as the agent's,
/// and its first instance says which agent this is.
pub fn on_register(profile: AgentProfile) {
    let mut registry = registry();
    registry.initialised = 0;
    registry.profile = Some(profile);
    registry.announced = false;
}

/// The agent's profile, the first time an instance of the current configuration asks.
pub fn announce() -> Option<AgentProfile> {
    let mut registry = registry();
    let first = !std::mem::replace(&mut registry.announced, true);
    registry.profile.filter(|_| first)
}

/// The agent as Register found it; without a Register (never, from a real agent), the oldest.
pub fn profile() -> AgentProfile {
    registry().profile.unwrap_or_else(AgentProfile::detect)
}

/// The name the agent gives the next instance of this plugin.
pub fn next_name() -> String {
    let mut registry = registry();
    let name = format!("wasm.{}", registry.initialised);
    registry.initialised += 1;
    name
}

pub fn add(instance: InstancePtr) {
    registry().live.push(instance);
}

/// Forgets `instance`, once no lease on it is left; false if it was not live (a double exit,
/// or a pointer we never made). No new lease can be taken on it once this is called.
pub fn remove(instance: InstancePtr) -> bool {
    let mut registry = registry();
    let before = registry.live.len();
    registry.live.retain(|live| *live != instance);
    if registry.live.len() == before {
        return false;
    }
    while registry.leased.iter().any(|(leased, _)| *leased == instance) {
        registry = RELEASED.wait(registry).unwrap_or_else(PoisonError::into_inner);
    }
    true
}

/// A legacy flush's hold on the one live instance: the instance is not freed while it lasts.
pub struct Lease(InstancePtr);

impl Lease {
    pub fn instance(&self) -> InstancePtr {
        self.0
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut registry = registry();
        if let Some(at) = registry.leased.iter().position(|(leased, _)| *leased == self.0) {
            registry.leased[at].1 -= 1;
            if registry.leased[at].1 == 0 {
                registry.leased.swap_remove(at);
            }
        }
        RELEASED.notify_all();
    }
}

/// A lease on the only live instance; the number of live instances when there is not exactly one.
pub fn lease_only() -> Result<Lease, usize> {
    let mut registry = registry();
    let only = match registry.live.as_slice() {
        [only] => *only,
        live => return Err(live.len()),
    };
    match registry.leased.iter_mut().find(|(leased, _)| *leased == only) {
        Some((_, count)) => *count += 1,
        None => registry.leased.push((only, 1)),
    }
    Ok(Lease(only))
}

/// The live instances, oldest first.
pub fn live() -> Vec<InstancePtr> {
    registry().live.clone()
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn an_exit_waits_for_the_legacy_flush_that_holds_its_instance() {
        // Never dereferenced: the registry keeps addresses only.
        let instance = InstancePtr(std::ptr::dangling_mut::<OutputInstance>().wrapping_byte_add(64));
        add(instance);
        let lease = lease_only().expect("one live instance");
        assert!(lease.instance() == instance);
        let (go, went) = mpsc::channel();
        let (released, was_released) = mpsc::channel();
        let flush = std::thread::spawn(move || {
            went.recv().unwrap();
            // The flush ends a little after the exit began: without the wait, the exit would
            // have freed the instance under it by now.
            std::thread::sleep(std::time::Duration::from_millis(50));
            released.send(()).unwrap();
            drop(lease);
        });
        go.send(()).unwrap();
        assert!(remove(instance), "the instance was live");
        assert!(was_released.try_recv().is_ok(), "the exit returned before the flush's lease ended");
        flush.join().unwrap();
        assert!(lease_only().is_err(), "no lease on an instance that exited");
        assert!(!remove(instance), "nor a second exit");
    }
}
