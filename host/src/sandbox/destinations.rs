//! What an output's guests asked of each HTTP destination (`scheme://host:port`, never a path:
//! it may carry tokens), for the agent's metrics endpoint
//! (`fluentbit_wasm_http_destination_*`): requests by result, and the time to each response's
//! head. An operator sees which endpoint is slow, refusing or denied without reading the
//! guest's log.
//!
//! Destinations are the guest's to choose within its grants, and a grant such as `host:*` or a
//! range allows many: the table keeps [`MAX_DESTINATIONS`] of them, in the order they were
//! first asked, and counts the rest under [`OTHER`], so a guest cannot grow the agent's series
//! without bound.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Destinations with series of their own, per output.
pub const MAX_DESTINATIONS: usize = 32;
/// Where the requests to destinations past [`MAX_DESTINATIONS`] are counted.
pub const OTHER: &str = "other";

/// How a request ended, as the metric's `result` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A response with this status.
    Status(u16),
    /// No response: the connection, TLS or a timeout failed.
    Failed,
    /// Refused by the network policy before any connection.
    Denied,
}

impl Outcome {
    /// The `result` labels, in [`Outcome::index`] order.
    pub const RESULTS: [&'static str; 6] = ["2xx", "3xx", "4xx", "5xx", "failed", "denied"];

    fn index(self) -> usize {
        match self {
            Self::Status(status) if status < 300 => 0,
            Self::Status(status) if status < 400 => 1,
            Self::Status(status) if status < 500 => 2,
            Self::Status(_) => 3,
            Self::Failed => 4,
            Self::Denied => 5,
        }
    }
}

/// One destination's counts since the output started.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Requests by result, in [`Outcome::RESULTS`] order.
    pub requests: [u64; 6],
    /// Seconds from the requests to their responses' heads (or their failures), summed.
    pub seconds: f64,
}

/// The destinations of one output's guests.
#[derive(Debug, Default)]
pub struct Destinations {
    table: Mutex<Vec<(String, Stats)>>,
}

impl Destinations {
    /// Counts a request to `origin` that ended with `outcome` after `elapsed`.
    pub fn record(&self, origin: &str, outcome: Outcome, elapsed: Duration) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let index = match table.iter().position(|(name, _)| name == origin) {
            Some(index) => index,
            None if table.len() < MAX_DESTINATIONS => {
                table.push((origin.to_owned(), Stats::default()));
                table.len() - 1
            }
            None => match table.iter().position(|(name, _)| name == OTHER) {
                Some(index) => index,
                None => {
                    table.push((OTHER.to_owned(), Stats::default()));
                    table.len() - 1
                }
            },
        };
        let stats = &mut table[index].1;
        stats.requests[outcome.index()] += 1;
        stats.seconds += elapsed.as_secs_f64();
    }

    /// Every destination's counts so far.
    pub fn snapshot(&self) -> Vec<(String, Stats)> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_counted_per_destination_and_the_table_is_bounded() {
        let destinations = Destinations::default();
        let ms = Duration::from_millis;
        destinations.record("https://logs.example:443", Outcome::Status(202), ms(100));
        destinations.record("https://logs.example:443", Outcome::Status(503), ms(300));
        destinations.record("https://logs.example:443", Outcome::Failed, ms(0));
        destinations.record("http://10.0.0.1:80", Outcome::Denied, ms(0));
        let table = destinations.snapshot();
        assert_eq!(table[0].0, "https://logs.example:443");
        assert_eq!(table[0].1.requests, [1, 0, 0, 1, 1, 0]);
        assert!((table[0].1.seconds - 0.4).abs() < 1e-9);
        assert_eq!(table[1].1.requests, [0, 0, 0, 0, 0, 1]);
        for n in 0..100 {
            destinations.record(&format!("http://10.1.{n}.1:80"), Outcome::Status(200), ms(1));
        }
        let table = destinations.snapshot();
        assert_eq!(table.len(), MAX_DESTINATIONS + 1, "the table stops growing");
        let other = table.iter().find(|(name, _)| name == OTHER).expect("the rest counted as other");
        assert_eq!(other.1.requests[0], 100 - (MAX_DESTINATIONS as u64 - 2), "{table:?}");
    }
}
