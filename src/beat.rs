//! One instance's beat: the moment its address tasks next wake together.
//!
//! Why together: on clouds where one listing answers for every address
//! (Hetzner, DigitalOcean; `providers/src/read_share.rs`), tasks that wake
//! within a moment of each other share one read, so a steady-state refresh
//! of 50 addresses costs one API call. Tasks with a jitter each would
//! drift apart and cost one call each. The beat itself is jittered, so
//! the instances of a fleet still spread out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::jittered;

/// Off until [`Beat::keep_together`]: then each wait is jittered on its
/// own, and the tasks spread out.
#[derive(Debug, Default)]
pub struct Beat {
    next: Mutex<Option<Instant>>,
    together: AtomicBool,
}

impl Beat {
    /// Whether the tasks wake together (the provider's
    /// `reads_together`).
    pub fn keep_together(&self, together: bool) {
        self.together.store(together, Ordering::Relaxed);
    }

    /// How long until the next beat at least half an `interval` away: a
    /// task that finishes its round late (a back-off, a slow answer) joins
    /// the beat after, rather than moving everyone's. Apart, a jittered
    /// interval of its own.
    pub fn wait(&self, interval: Duration) -> Duration {
        if !self.together.load(Ordering::Relaxed) {
            return jittered(interval, fastrand::f64());
        }
        self.wait_with(interval, fastrand::f64)
    }

    fn wait_with(&self, interval: Duration, mut unit: impl FnMut() -> f64) -> Duration {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let mut at = next.unwrap_or(now);
        while at < now + interval / 2 {
            at += jittered(interval, unit());
        }
        *next = Some(at);
        at - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tasks_of_one_round_wake_together_and_a_late_one_joins_the_next() {
        let beat = Beat::default();
        let i = Duration::from_secs(60);
        let first = beat.wait_with(i, || 0.0);
        assert_eq!(first, Duration::from_secs(54), "jittered by the first");
        tokio::time::advance(Duration::from_millis(5)).await;
        let second = beat.wait_with(i, || 1.0);
        assert_eq!(first - second, Duration::from_millis(5), "same instant");
        // 40 s later (a long back-off): 14 s to the beat is too close.
        tokio::time::advance(Duration::from_secs(40)).await;
        let late = beat.wait_with(i, || 0.5);
        assert_eq!(late, Duration::from_secs(14) - Duration::from_millis(5) + i);
        // The others, waking at the first beat, join that next beat too.
        tokio::time::advance(first - Duration::from_secs(40) - Duration::from_millis(5)).await;
        assert_eq!(beat.wait_with(i, || 0.0), i);
    }
}
