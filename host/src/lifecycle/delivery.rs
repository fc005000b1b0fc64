//! Which delivery of which chunk a flush is (WIT 0.3.0 `flush-context.delivery`): an id made
//! of the tag and the chunk's bytes, so it is the same on every delivery of the chunk (a retry,
//! another guest instance, a new version after a hot swap), and the attempts at it, counted
//! per output instance in memory.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::bindings::Delivery;

/// An id not seen for this long is forgotten (its next delivery counts from 1 again).
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Ids kept at most: past it, the ones seen longest ago go first. A chunk is retried at most
/// `retry_limit` times, so only chunks still in the agent's retry schedule need remembering.
pub const REMEMBERED: usize = 16_384;

/// The attempts of one output instance.
#[derive(Default)]
pub struct Deliveries {
    seen: Mutex<HashMap<[u8; 16], Seen>>,
}

struct Seen {
    attempts: u32,
    last: Instant,
}

/// The first 128 bits of SHA-256 over the tag, a zero byte and the chunk (a tag has no NUL in
/// it, so no two tag and chunk pairs run together).
pub fn id(tag: &str, chunk: &[u8]) -> [u8; 16] {
    let mut hasher = Sha256::new();
    hasher.update(tag.as_bytes());
    hasher.update([0]);
    hasher.update(chunk);
    let digest = hasher.finalize();
    digest[..16].try_into().expect("SHA-256 has 32 bytes")
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

impl Deliveries {
    /// Counts one more delivery of `tag` and `chunk`.
    pub fn next(&self, tag: &str, chunk: &[u8]) -> Delivery {
        self.count(id(tag, chunk), Instant::now())
    }

    fn count(&self, id: [u8; 16], now: Instant) -> Delivery {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= REMEMBERED && !seen.contains_key(&id) {
            seen.retain(|_, entry| now.duration_since(entry.last) < FORGET_AFTER);
            if seen.len() >= REMEMBERED {
                let oldest = seen.iter().min_by_key(|(_, entry)| entry.last).map(|(id, _)| *id);
                seen.remove(&oldest.expect("the map is full"));
            }
        }
        let entry = seen.entry(id).or_insert(Seen { attempts: 0, last: now });
        if now.duration_since(entry.last) >= FORGET_AFTER {
            entry.attempts = 0;
        }
        entry.attempts = entry.attempts.saturating_add(1);
        entry.last = now;
        Delivery { id: hex(&id), attempt: entry.attempts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_chunk_has_the_same_id_and_its_attempts_count_up() {
        let deliveries = Deliveries::default();
        let first = deliveries.next("app", b"\x92\x01\x80");
        assert_eq!(first.id.len(), 32, "128 bits in lowercase hex");
        assert!(first.id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(first.attempt, 1);
        let again = deliveries.next("app", b"\x92\x01\x80");
        assert_eq!((again.id.as_str(), again.attempt), (first.id.as_str(), 2));
        assert_ne!(deliveries.next("other", b"\x92\x01\x80").id, first.id, "the tag is part of the id");
        assert_ne!(deliveries.next("app", b"\x92\x02\x80").id, first.id, "so are the bytes");
        assert_ne!(id("ab", b"c"), id("a", b"bc"), "tag and chunk do not run together");
    }

    #[test]
    fn old_ids_are_forgotten_and_the_memory_is_bounded() {
        let deliveries = Deliveries::default();
        let start = Instant::now();
        let a = [1; 16];
        assert_eq!(deliveries.count(a, start).attempt, 1);
        assert_eq!(deliveries.count(a, start + FORGET_AFTER).attempt, 1, "an hour later it starts again");
        for n in 0..REMEMBERED + 10 {
            let mut id = [0; 16];
            id[..8].copy_from_slice(&(n as u64).to_le_bytes());
            deliveries.count(id, start + FORGET_AFTER + Duration::from_millis(n as u64));
        }
        assert!(deliveries.seen.lock().unwrap().len() <= REMEMBERED);
    }
}
