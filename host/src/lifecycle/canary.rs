//! Canary rollouts (`wasm_canary`): a new version prepared by the watcher serves beside the
//! current one on a share of the flushes, and is judged against it over a window
//! (`wasm_canary_window`: a number of the canary's flushes and a time, whichever ends last).
//!
//! Each flush goes to exactly one version and its answer (ok, retry, error, or the fault's)
//! is the one the agent gets: a chunk the canary fails is the canary's answer, never handed to
//! the other version as well, so nothing is delivered twice. The judge compares the canary's
//! failure rate (error answers and faults), retry rate and mean flush latency with the serving
//! version's over the same time: worse by more than a margin rolls the canary back (early,
//! once a quarter of the window shows it, for the rates), no worse at the window's end
//! promotes it. The watcher refuses a rolled-back digest until the source changes again.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{CanaryConfig, CanaryShare};
use crate::lifecycle::version::GuestVersion;
use crate::telemetry::host::FlushResult;

/// A rate (failures, retries) is worse when it is above the serving version's by more than this
/// (in parts of one: 5 percentage points), and at least `MIN_BAD` of the canary's flushes had it.
pub const RATE_MARGIN: f64 = 0.05;
/// The fewest bad flushes that can condemn a canary: one error in a handful is not a trend.
pub const MIN_BAD: u64 = 2;
/// Mean flush latency is worse when it is above the serving version's by more than this
/// factor and by more than `LATENCY_FLOOR`.
pub const LATENCY_FACTOR: f64 = 1.5;
pub const LATENCY_FLOOR: Duration = Duration::from_millis(5);

/// What one version did with its flushes during the canary.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Outcomes {
    pub flushes: u64,
    pub errors: u64,
    pub retries: u64,
    pub faults: u64,
    pub latency: Duration,
}

impl Outcomes {
    fn add(&mut self, result: FlushResult, elapsed: Duration) {
        match result {
            FlushResult::Ok => {}
            FlushResult::Retry => self.retries += 1,
            FlushResult::Error => self.errors += 1,
            FlushResult::Fault => self.faults += 1,
            // No guest ran: says nothing about either version.
            FlushResult::Held | FlushResult::Skipped => return,
        }
        self.flushes += 1;
        self.latency += elapsed;
    }

    fn rate(&self, count: u64) -> f64 {
        if self.flushes == 0 { 0.0 } else { count as f64 / self.flushes as f64 }
    }

    /// Errors and faults: chunks the version did not deliver.
    pub fn failures(&self) -> u64 {
        self.errors + self.faults
    }

    pub fn mean_latency(&self) -> Duration {
        if self.flushes == 0 { Duration::ZERO } else { self.latency / self.flushes as u32 }
    }

    /// `2 errors, 0 retries, 1 faults of 40 flushes (7.5% failed), mean 3.1 ms`.
    pub fn summary(&self) -> String {
        format!(
            "{} errors, {} retries, {} faults of {} flushes ({:.1}% failed, {:.1}% retried), mean {:.1} ms",
            self.errors,
            self.retries,
            self.faults,
            self.flushes,
            100.0 * self.rate(self.failures()),
            100.0 * self.rate(self.retries),
            self.mean_latency().as_secs_f64() * 1e3
        )
    }
}

/// The judge's word.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Not enough seen yet.
    Undecided,
    Promote,
    /// Worse, and in what.
    RollBack(String),
}

/// Compares the canary with the serving version. `window_over`: the canary has had its window's
/// flushes and time. Before that only a rate can condemn it, and only once `early` holds.
pub fn judge(canary: &Outcomes, serving: &Outcomes, window_over: bool, early: bool) -> Verdict {
    let rate_worse = |what: &str, bad: u64, theirs: u64| -> Option<String> {
        let (mine, base) = (canary.rate(bad), serving.rate(theirs));
        (bad >= MIN_BAD && mine > base + RATE_MARGIN)
            .then(|| format!("{what} {:.1}% against {:.1}%", 100.0 * mine, 100.0 * base))
    };
    if window_over || early {
        if let Some(why) = rate_worse("failed", canary.failures(), serving.failures()) {
            return Verdict::RollBack(why);
        }
        if let Some(why) = rate_worse("retried", canary.retries, serving.retries) {
            return Verdict::RollBack(why);
        }
    }
    if !window_over {
        return Verdict::Undecided;
    }
    let (mine, base) = (canary.mean_latency(), serving.mean_latency());
    if serving.flushes > 0 && mine.as_secs_f64() > base.as_secs_f64() * LATENCY_FACTOR && mine > base + LATENCY_FLOOR {
        return Verdict::RollBack(format!(
            "mean flush {:.1} ms against {:.1} ms",
            mine.as_secs_f64() * 1e3,
            base.as_secs_f64() * 1e3
        ));
    }
    Verdict::Promote
}

/// One canary: the new version, the version it is judged against, and what each did since it
/// started.
pub struct Canary {
    pub version: Arc<GuestVersion>,
    pub serving: Arc<GuestVersion>,
    pub config: CanaryConfig,
    pub started: Instant,
    /// Flushes routed so far (both versions), for an even spread of the share.
    routed: AtomicU64,
    /// With `one`: the canary's one instance is taking a flush.
    busy: AtomicBool,
    outcomes: Mutex<(Outcomes, Outcomes)>,
    /// Judged (promoted or rolled back): later answers are not counted and nothing is done twice.
    decided: AtomicBool,
}

/// A decision, to carry out.
pub struct Decision {
    pub canary: Arc<Canary>,
    pub verdict: Verdict,
    pub canary_outcomes: Outcomes,
    pub serving_outcomes: Outcomes,
}

impl Canary {
    pub fn new(version: Arc<GuestVersion>, serving: Arc<GuestVersion>, config: CanaryConfig) -> Self {
        Self {
            version,
            serving,
            config,
            started: Instant::now(),
            routed: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            outcomes: Mutex::default(),
            decided: AtomicBool::new(false),
        }
    }

    /// Whether the next flush goes to the canary. `peak`: the most flushes the output has seen
    /// running at once (for `one`). A flush that goes to it must end with [`Canary::observe`].
    pub fn take(&self, peak: usize) -> bool {
        if self.decided.load(Ordering::Acquire) {
            return false;
        }
        let n = self.routed.fetch_add(1, Ordering::Relaxed);
        match self.config.share {
            CanaryShare::Percent(p) => in_share(n, p),
            CanaryShare::One => {
                let turn = n.is_multiple_of(peak.max(1) as u64 + 1);
                turn && self.busy.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
            }
        }
    }

    /// Counts how a flush ended on `version`; the decision when this answer settles it.
    pub fn observe(
        self: &Arc<Self>,
        version: &Arc<GuestVersion>,
        result: FlushResult,
        elapsed: Duration,
    ) -> Option<Decision> {
        let on_canary = Arc::ptr_eq(version, &self.version);
        if on_canary {
            self.busy.store(false, Ordering::Release);
        } else if !Arc::ptr_eq(version, &self.serving) {
            return None;
        }
        if self.decided.load(Ordering::Acquire) {
            return None;
        }
        let (canary, serving) = {
            let mut outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
            if on_canary {
                outcomes.0.add(result, elapsed);
            } else {
                outcomes.1.add(result, elapsed);
            }
            *outcomes
        };
        // Only the canary's own answers move its window; the serving side's only its baseline.
        if !on_canary {
            return None;
        }
        let window = self.config.window_flushes;
        let window_over = canary.flushes >= window && self.started.elapsed() >= self.config.window_time;
        let early = canary.flushes >= (window / 4).max(1);
        let verdict = judge(&canary, &serving, window_over, early);
        if verdict == Verdict::Undecided || self.decided.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(Decision { canary: self.clone(), verdict, canary_outcomes: canary, serving_outcomes: serving })
    }

    /// Stops the canary without a verdict (the output exits).
    pub fn abandon(&self) {
        self.decided.store(true, Ordering::Release);
    }
}

/// Whether flush number `n` (from 0) is in a share of `percent`: the flushes whose number
/// crosses a multiple of 100/`percent`, an even spread.
fn in_share(n: u64, percent: u8) -> bool {
    (n * u64::from(percent)) / 100 != ((n + 1) * u64::from(percent)) / 100
}

/// The most flushes seen running at once, and how many run now: what `wasm_canary one` spreads
/// by.
#[derive(Default)]
pub struct Concurrency {
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Concurrency {
    /// A flush starts; the peak so far (this one included).
    pub fn enter(&self) -> usize {
        let now = self.running.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::AcqRel).max(now)
    }

    pub fn leave(&self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(flushes: u64, errors: u64, retries: u64, ms: u64) -> Outcomes {
        Outcomes { flushes, errors, retries, faults: 0, latency: Duration::from_millis(ms * flushes) }
    }

    #[test]
    fn a_canary_no_worse_is_promoted_at_the_window_end_only() {
        let serving = outcomes(200, 1, 0, 2);
        let canary = outcomes(20, 0, 0, 2);
        assert_eq!(judge(&canary, &serving, false, true), Verdict::Undecided);
        assert_eq!(judge(&canary, &serving, true, true), Verdict::Promote);
        // Within the margins: one error more is not a trend, 40% slower is not worse.
        assert_eq!(judge(&outcomes(20, 1, 0, 2), &serving, true, true), Verdict::Promote);
        assert_eq!(judge(&outcomes(20, 0, 0, 3), &serving, true, true), Verdict::Promote);
    }

    #[test]
    fn a_worse_rate_rolls_back_early_and_slowness_at_the_end() {
        let serving = outcomes(200, 0, 0, 2);
        let failing = outcomes(5, 2, 0, 2);
        assert!(
            matches!(judge(&failing, &serving, false, true), Verdict::RollBack(why) if why.contains("failed 40.0%"))
        );
        assert_eq!(judge(&failing, &serving, false, false), Verdict::Undecided, "not before a quarter of the window");
        let retrying = outcomes(20, 0, 3, 2);
        assert!(matches!(judge(&retrying, &serving, true, true), Verdict::RollBack(why) if why.contains("retried")));
        let slow = outcomes(20, 0, 0, 20);
        assert_eq!(judge(&slow, &serving, false, true), Verdict::Undecided, "latency waits for the window");
        assert!(matches!(judge(&slow, &serving, true, true), Verdict::RollBack(why) if why.contains("mean flush")));
        // As bad as the serving version is no worse.
        assert_eq!(judge(&outcomes(20, 4, 0, 2), &outcomes(200, 40, 0, 2), true, true), Verdict::Promote);
    }

    #[test]
    fn a_share_of_flushes_is_spread_evenly() {
        let share = |p: u8, n: u64| (0..n).filter(|i| in_share(*i, p)).count();
        assert_eq!(share(10, 1000), 100);
        assert_eq!(share(25, 8), 2);
        assert_eq!(share(1, 100), 1);
        assert_eq!(share(50, 10), 5);
    }
}
