//! One compiled and linked component per digest in the process: every output instance and
//! every version serving the same component file shares its code, its memory images and its
//! linking, however many `[OUTPUT]` sections name it.
//!
//! The registry holds weak references: a component lives while an output serves it (or a
//! retired version still drains), and is unmapped after the last one lets go.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use anyhow::Result;

/// What the registry tells apart: the digest, and whether the code has deadline checks (two
/// engines, two compilations).
type Key = (String, bool);

/// The slot of one key: locked while that component loads, so two outputs starting with the
/// same component compile it once, and other components load meanwhile.
type Slot<T> = Arc<Mutex<Weak<T>>>;

/// A registry of shared values of type `T` (in the host: [`crate::runtime::image::Compiled`]).
pub struct SharedByDigest<T> {
    slots: Mutex<BTreeMap<Key, Slot<T>>>,
}

impl<T> Default for SharedByDigest<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> SharedByDigest<T> {
    pub const fn new() -> Self {
        Self { slots: Mutex::new(BTreeMap::new()) }
    }

    /// The value for `digest`, `deadlines`, loaded by `load` unless a live one exists; the
    /// flag says whether it was shared.
    pub fn get_or_load(
        &self,
        digest: &str,
        deadlines: bool,
        load: impl FnOnce() -> Result<T>,
    ) -> Result<(Arc<T>, bool)> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            // Forget the keys whose value is gone, so the map does not grow with every swap.
            slots.retain(|_, slot| slot.try_lock().map_or(true, |weak| weak.strong_count() > 0));
            slots.entry((digest.to_owned(), deadlines)).or_default().clone()
        };
        let mut shared = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = shared.upgrade() {
            return Ok((value, true));
        }
        let value = Arc::new(load()?);
        *shared = Arc::downgrade(&value);
        Ok((value, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_loads_once_while_it_is_used_and_again_after() {
        let registry = SharedByDigest::new();
        let (a, shared) = registry.get_or_load("d", true, || Ok(1)).unwrap();
        assert!(!shared);
        let (b, shared) = registry.get_or_load("d", true, || panic!("loaded twice")).unwrap();
        assert!(shared && Arc::ptr_eq(&a, &b), "one value per digest");
        let (c, shared) = registry.get_or_load("d", false, || Ok(2)).unwrap();
        assert!(!shared && *c == 2, "without deadlines it is another compilation");
        drop((a, b));
        let (_, shared) = registry.get_or_load("d", true, || Ok(3)).unwrap();
        assert!(!shared, "loaded again once nobody used it");
        assert!(registry.get_or_load("e", true, || Err(anyhow::anyhow!("bad"))).is_err());
    }
}
