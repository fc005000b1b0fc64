//! `wasm_memory_limit` (in [`crate::config::Limits`]): the most linear memory a guest
//! instance may grow to; growing past it traps. The cap is per instance, in its store's
//! resource limiter.

use std::fmt;

use wasmtime::ResourceLimiter;

/// Table entries a guest may have (a pointer each): far above what real guests use.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Caps each linear memory of a guest. Growing past the cap traps with a message that names
/// the limit, instead of handing the guest a failed allocation it would abort on anyway.
pub struct MemoryCap {
    limit: usize,
    /// Linear memory the guest has grown to so far (memories never shrink).
    size: usize,
}

impl MemoryCap {
    pub fn new(limit: usize) -> Self {
        Self { limit, size: 0 }
    }

    /// How far the instance's memory has grown, and the cap.
    pub fn usage(&self) -> (usize, usize) {
        (self.size, self.limit)
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(MemoryLimitExceeded { desired, limit: self.limit }.into());
        }
        self.size = self.size.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The error a guest's memory growth past its cap raises (a trap of the host's making).
#[derive(Debug)]
pub struct MemoryLimitExceeded {
    /// Bytes the guest asked for.
    pub desired: usize,
    /// `wasm_memory_limit` in bytes.
    pub limit: usize,
}

impl fmt::Display for MemoryLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "guest exceeded its memory limit: it asked for {} MiB, wasm_memory_limit is {} MiB",
            self.desired.div_ceil(1 << 20),
            self.limit >> 20
        )
    }
}

impl std::error::Error for MemoryLimitExceeded {}
