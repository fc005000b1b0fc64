//! The `config` interface a guest imports (0.3.0 on): any key of its `[OUTPUT]` section, read
//! from the agent by name as the agent lets native plugins read theirs.
//!
//! The agent never changes a section's properties after init and frees them only after the
//! instance's exit call, which outlives every guest instance, so the lookup may run on any
//! plugin thread (`lib.rs`: Threads).

use std::sync::Arc;

use anyhow::Result;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::config;

/// Prefix of the keys the host reads for itself; guests may not declare keys with it.
pub const HOST_KEY_PREFIX: &str = "wasm_";

/// Whether the agent keeps `key` to itself (the list, shared with the loader, is
/// `out_wasm_format::AGENT_KEYS`).
pub use out_wasm_format::is_agent_key as is_reserved;

/// How an instance finds a key of its section: the agent's property lookup in the plugin,
/// the `--config` pairs in `out-wasm check`.
#[derive(Clone)]
pub struct ConfigLookup(Arc<Property>);

/// The agent's answer for one key.
type Property = dyn Fn(&str) -> Option<String> + Send + Sync;

impl ConfigLookup {
    pub fn new(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self(Arc::new(lookup))
    }

    /// The value of `key`, as a guest may see it: never a key of the host's (`wasm_*`) or one
    /// the agent consumes.
    pub fn get(&self, key: &str) -> Option<String> {
        let key = key.trim();
        if key.is_empty() || key.to_ascii_lowercase().starts_with(HOST_KEY_PREFIX) || is_reserved(key) {
            return None;
        }
        (self.0)(key)
    }
}

/// Links `config` (0.3.0 on); `get` finds an instance's [`ConfigLookup`].
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> &mut ConfigLookup) -> Result<()> {
    config::add_to_linker::<T, HasSelf<ConfigLookup>>(linker, get).map_err(anyhow::Error::from)
}

impl config::Host for ConfigLookup {
    fn get(&mut self, key: String) -> Option<String> {
        ConfigLookup::get(self, &key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_key_but_the_hosts_and_the_agents() {
        let lookup = ConfigLookup::new(|key| Some(format!("value of {key}")));
        assert_eq!(lookup.get("key_str0").as_deref(), Some("value of key_str0"), "undeclared keys are read");
        for hidden in ["wasm_path", "WASM_allow_net", "match", "Workers", "tls.verify", " "] {
            assert_eq!(lookup.get(hidden), None, "{hidden:?} is not the guest's");
        }
        assert_eq!(ConfigLookup::new(|_| None).get("absent"), None);
    }
}
