//! `wasm_memory_limit` (in [`crate::config::Limits`]): the one budget of a guest instance. All
//! its linear memories and tables together may not grow past it; the store holds at most a few
//! core instances, memories and tables; and the host-side state the guest can make the host keep
//! for it (resource handles, HTTP header fields, buffered request bodies) is capped beside it by
//! [`HostSideCaps`], whose worst case is the documented margin of docs/security.md.
//!
//! A guest is one component, but a component may hold many core instances, each with its own
//! memories and tables: a cap per memory (wasmtime's own `StoreLimits::memory_size`) would let
//! 64 memories of 100 MiB each pass as "under 128M". The count is over the whole store.

use std::fmt;

use wasmtime::ResourceLimiter;

/// Bytes one table element is charged: the pointer wasmtime keeps for it.
pub const TABLE_ELEMENT_BYTES: usize = 8;

/// Core instances one guest store may hold. The guests of every SDK have far fewer (a Rust or C
/// guest 3 to 5, componentize-py's and ComponentizeJS's 10 to 20: adapters and shims included);
/// wasmtime's default is 10,000.
pub const MAX_INSTANCES: usize = 64;

/// Linear memories one guest store may hold (real guests: 1 to 3; wasmtime's default 10,000).
pub const MAX_MEMORIES: usize = 16;

/// Tables one guest store may hold (real guests: a few per core instance).
pub const MAX_TABLES: usize = 128;

/// The caps on what a guest makes the host keep outside its linear memory, per instance. Their
/// product is what an instance can hold beyond `wasm_memory_limit` (docs/security.md).
pub struct HostSideCaps;

impl HostSideCaps {
    /// Resource handles (files, sockets, streams, pollables, HTTP requests, responses, header
    /// fields...) a guest instance may hold at once; wasmtime's default is 1,000,000. A guest
    /// doing HTTP holds about 10 per request in flight; interpreters a few dozen at rest.
    pub const HANDLES: usize = 1024;
    /// Bytes of one set of HTTP header fields, in the host's representation (names, values and
    /// the map's own overhead); wasmtime's default is 128 KiB. Real request headers are well under
    /// 8 KiB (common proxies refuse more).
    pub const FIELD_BYTES: usize = 16 << 10;
    /// Bytes one write to an outgoing HTTP body may hand the host, and so the most a body buffers
    /// while its request is not sent (two such writes: the channel keeps one slot free); wasmtime's
    /// default is 1 MiB.
    pub const BODY_WRITE_BYTES: usize = 32 << 10;
}

/// Counts all of one guest instance's linear memories and tables against `wasm_memory_limit`,
/// and caps how many instances, memories and tables its store holds. Growing past the budget
/// traps with a message that names the limit, instead of handing the guest a failed allocation
/// it would abort on anyway.
pub struct GuestBudget {
    limit: usize,
    /// Bytes of all linear memories (they never shrink).
    memories: usize,
    /// Bytes charged for all table elements.
    tables: usize,
}

impl GuestBudget {
    pub fn new(limit: usize) -> Self {
        Self { limit, memories: 0, tables: 0 }
    }

    /// What the instance's memories and tables take together, and the budget.
    pub fn usage(&self) -> (usize, usize) {
        (self.memories + self.tables, self.limit)
    }

    fn charge(&self, what: Growing, more: usize) -> wasmtime::Result<()> {
        let used = self.memories + self.tables;
        let desired = used.saturating_add(more);
        if desired > self.limit {
            return Err(MemoryLimitExceeded { what, desired, limit: self.limit }.into());
        }
        Ok(())
    }
}

impl ResourceLimiter for GuestBudget {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let more = desired.saturating_sub(current);
        self.charge(Growing::Memory, more)?;
        self.memories += more;
        Ok(true)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let more = desired.saturating_sub(current).saturating_mul(TABLE_ELEMENT_BYTES);
        self.charge(Growing::Table, more)?;
        self.tables += more;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

/// What was growing when the budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Growing {
    Memory,
    Table,
}

/// The error a guest's growth past its budget raises (a trap of the host's making).
#[derive(Debug)]
pub struct MemoryLimitExceeded {
    pub what: Growing,
    /// Bytes the guest's memories and tables would have taken together.
    pub desired: usize,
    /// `wasm_memory_limit` in bytes.
    pub limit: usize,
}

impl fmt::Display for MemoryLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.what {
            Growing::Memory => "a linear memory",
            Growing::Table => "a table",
        };
        write!(
            f,
            "guest exceeded its memory limit: growing {what}, its memories and tables would take {} MiB, \
             wasm_memory_limit is {} MiB",
            self.desired.div_ceil(1 << 20),
            self.limit >> 20
        )
    }
}

impl std::error::Error for MemoryLimitExceeded {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_and_tables_share_one_budget() {
        let mut budget = GuestBudget::new(10 << 20);
        assert!(budget.memory_growing(0, 4 << 20, None).unwrap());
        assert!(budget.memory_growing(0, 4 << 20, None).unwrap(), "a second memory, 8 MiB in all");
        let err = budget.memory_growing(0, 4 << 20, None).unwrap_err();
        assert!(err.to_string().contains("would take 12 MiB, wasm_memory_limit is 10 MiB"), "{err}");
        assert!(budget.table_growing(0, 1 << 18, None).unwrap(), "2 MiB of table elements");
        assert_eq!(budget.usage(), (10 << 20, 10 << 20));
        let err = budget.table_growing(1 << 18, (1 << 18) + 1, None).unwrap_err();
        assert!(err.to_string().contains("growing a table"), "{err}");
        assert!(budget.memory_growing(4 << 20, 4 << 20, None).unwrap(), "growing by nothing costs nothing");
    }

    /// The most host memory one guest instance's handles can keep: every handle a set of fields
    /// at its cap, or every third a request body (with its request and its output stream) with
    /// its buffer of two writes full, whichever is more.
    fn worst_case_bytes() -> usize {
        let fields = HostSideCaps::HANDLES * HostSideCaps::FIELD_BYTES;
        let bodies = HostSideCaps::HANDLES / 3 * 2 * HostSideCaps::BODY_WRITE_BYTES;
        fields.max(bodies)
    }

    #[test]
    fn the_host_side_margin_is_what_the_docs_say() {
        // docs/security.md quotes this figure (21 MiB: 341 request bodies of two 32 KiB writes
        // each; 1,024 header sets of 16 KiB are 16 MiB): change both together.
        assert_eq!(worst_case_bytes() >> 20, 21);
    }
}
