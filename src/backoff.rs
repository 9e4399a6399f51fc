//! Retry schedule with vshn/floaty's semantics (cenkalti/backoff's
//! exponential back-off): start at `initial-interval`, multiply by
//! `multiplier` after each failure up to `max-interval`, randomise each wait
//! by ±50 %, and give up only after `max-elapsed-time` (0 = never).
//!
//! In-house rather than the `backoff` crate (unmaintained, RUSTSEC-2025-0012):
//! it is twenty lines, and the exact semantics are part of our contract.

use std::time::{Duration, Instant};

use crate::config::BackOff;

/// How far each wait is randomised around the current interval, as in
/// cenkalti/backoff's default. Spreads retries of many nodes apart.
pub const RANDOMIZATION: f64 = 0.5;

#[derive(Debug, Clone)]
pub struct Schedule {
    policy: BackOff,
    current: Duration,
    started: Instant,
}

impl Schedule {
    pub fn new(policy: &BackOff) -> Self {
        Schedule {
            policy: *policy,
            current: policy.initial_interval,
            started: Instant::now(),
        }
    }

    /// The next wait, or None once `max-elapsed-time` is spent.
    /// `unit` in [0, 1) picks the point in the randomisation window, so tests
    /// can drive the schedule deterministically.
    pub fn next_with(&mut self, unit: f64, now: Instant) -> Option<Duration> {
        if let Some(max) = self.policy.max_elapsed_time {
            if !max.is_zero() && now.saturating_duration_since(self.started) >= max {
                return None;
            }
        }
        let base = self.current.as_secs_f64();
        let low = base * (1.0 - RANDOMIZATION);
        let high = base * (1.0 + RANDOMIZATION);
        let wait = low + (high - low) * unit.clamp(0.0, 1.0);
        let grown = (base * self.policy.multiplier).min(self.policy.max_interval.as_secs_f64());
        self.current = Duration::from_secs_f64(grown.max(0.0));
        Some(Duration::from_secs_f64(wait.max(0.0)))
    }

    pub fn next(&mut self) -> Option<Duration> {
        self.next_with(fastrand::f64(), Instant::now())
    }
}

/// Spread of the steady refresh and probe intervals, so a fleet of nodes
/// does not hit the API in lockstep.
const INTERVAL_JITTER: f64 = 0.1;

/// `interval` ±10 %, `unit` (0..=1) choosing where.
pub fn jittered(interval: Duration, unit: f64) -> Duration {
    let factor = 1.0 + INTERVAL_JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    interval.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    #[test]
    fn jitter_stays_within_ten_percent() {
        let i = Duration::from_secs(60);
        assert_eq!(jittered(i, 0.0), Duration::from_secs(54));
        assert_eq!(jittered(i, 0.5), Duration::from_secs(60));
        assert_eq!(jittered(i, 1.0), Duration::from_secs(66));
    }

    use super::*;

    fn policy(max_elapsed: Option<Duration>) -> BackOff {
        BackOff {
            initial_interval: Duration::from_secs(1),
            multiplier: 1.1,
            max_interval: Duration::from_secs(10),
            max_elapsed_time: max_elapsed,
        }
    }

    #[test]
    fn grows_by_the_multiplier_up_to_the_max() {
        let mut s = Schedule::new(&policy(None));
        let now = Instant::now();
        let mids: Vec<f64> = (0..40)
            .map(|_| s.next_with(0.5, now).unwrap().as_secs_f64())
            .collect();
        assert!((mids[0] - 1.0).abs() < 1e-9);
        assert!((mids[1] - 1.1).abs() < 1e-9);
        assert!((mids[2] - 1.21).abs() < 1e-9);
        assert!((mids[39] - 10.0).abs() < 1e-9, "capped at max-interval");
    }

    #[test]
    fn randomisation_stays_within_half_either_side() {
        let mut lo = Schedule::new(&policy(None));
        let mut hi = Schedule::new(&policy(None));
        let now = Instant::now();
        assert_eq!(lo.next_with(0.0, now), Some(Duration::from_millis(500)));
        assert_eq!(hi.next_with(1.0, now), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn zero_max_elapsed_means_for_ever() {
        let mut s = Schedule::new(&policy(None));
        let later = Instant::now() + Duration::from_secs(86_400 * 365);
        assert!(s.next_with(0.5, later).is_some());
        let mut s = Schedule::new(&policy(Some(Duration::ZERO)));
        assert!(s.next_with(0.5, later).is_some());
    }

    #[test]
    fn stops_after_max_elapsed() {
        let mut s = Schedule::new(&policy(Some(Duration::from_secs(30))));
        let start = Instant::now();
        assert!(s.next_with(0.5, start).is_some());
        assert!(s.next_with(0.5, start + Duration::from_secs(31)).is_none());
    }
}
