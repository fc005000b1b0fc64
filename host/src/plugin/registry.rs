//! Process-wide bookkeeping of live output instances.
//!
//! Needed for two things the agent does not tell us: the instance's name (`wasm.<n>`, numbered
//! like the agent numbers instances, from 0 in each configuration) and, for the legacy
//! context-less symbols, which instance a call is for.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::agent::profile::AgentProfile;
use crate::lifecycle::output::OutputInstance;

struct Registry {
    /// Instances initialised since the last Register (the agent's current configuration).
    initialised: usize,
    /// The agent as the last Register found it (`None` before any).
    profile: Option<AgentProfile>,
    /// Whether an instance of the current configuration has said which agent this is.
    announced: bool,
    /// Live instances, oldest first.
    live: Vec<InstancePtr>,
}

/// Address of a boxed `OutputInstance` owned by the agent's `remote_context`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InstancePtr(pub *mut OutputInstance);

// SAFETY: only an address is kept here; it is dereferenced by the FFI layer under the ownership
// rules written in `lib.rs`.
unsafe impl Send for InstancePtr {}

static REGISTRY: Mutex<Registry> =
    Mutex::new(Registry { initialised: 0, profile: None, announced: false, live: Vec::new() });

fn registry() -> MutexGuard<'static, Registry> {
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

/// Forgets `instance`; false if it was not live (a double exit, or a pointer we never made).
pub fn remove(instance: InstancePtr) -> bool {
    let mut registry = registry();
    let before = registry.live.len();
    registry.live.retain(|live| *live != instance);
    registry.live.len() != before
}

/// The live instances, oldest first.
pub fn live() -> Vec<InstancePtr> {
    registry().live.clone()
}
