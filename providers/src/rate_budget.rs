//! An API's request budget, learnt from the `RateLimit-*` headers of every
//! answer, so that reads slow down *before* the budget is gone instead of
//! running into 429s.
//!
//! Why it matters: Hetzner's 3,600 requests per hour are per project and
//! shared with every other tool of that project (terraform, a CSI driver,
//! monitoring); DigitalOcean's 5,000 per hour are per token. A refresher
//! that spends the last of it on steady-state reads leaves nothing for the
//! one write a failover needs. So reads are paced once the budget runs low,
//! and writes (an assign and its polls) are never held back: they are what
//! the budget is kept for.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

use crate::http::MAX_RETRY_AFTER;

/// How the provider's budget comes back, which decides what
/// `RateLimit-Reset` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refill {
    /// Hetzner: one request back at a steady rate; `RateLimit-Reset` is
    /// when the budget is full again.
    Steady,
    /// DigitalOcean: each request counts for a window on its own timer;
    /// `RateLimit-Reset` is when the oldest counted one stops counting.
    Window,
}

/// Below this share of the limit (and at least [`LOW_MIN`] requests),
/// reads are paced.
const LOW_SHARE: u64 = 5;
const LOW_MIN: u64 = 10;
/// What is kept for a failover: an assign and a few polls of its action.
/// Reads wait while no more than this is left.
pub(crate) const WRITE_RESERVE: u64 = 5;

#[derive(Debug, Clone, Copy)]
struct Seen {
    limit: u64,
    remaining: u64,
    /// `RateLimit-Reset`, as seconds from when it was seen.
    reset_in: f64,
    at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    seen: Option<Seen>,
    /// No read before this, once pacing started.
    next_read: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct RateBudget {
    refill: Refill,
    inner: Mutex<Inner>,
}

impl RateBudget {
    pub(crate) fn new(refill: Refill) -> RateBudget {
        RateBudget {
            refill,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the budget an answer reports; answers without the three
    /// headers (a proxy's error page) change nothing.
    pub(crate) fn learn(&self, headers: &HeaderMap) {
        self.learn_at(headers, SystemTime::now(), Instant::now());
    }

    fn learn_at(&self, headers: &HeaderMap, wall: SystemTime, now: Instant) {
        let number =
            |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        let (Some(limit), Some(remaining), Some(reset)) = (
            number("ratelimit-limit"),
            number("ratelimit-remaining"),
            number("ratelimit-reset"),
        ) else {
            return;
        };
        if limit == 0 {
            return;
        }
        let unix = wall
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        // The IETF draft sends seconds from now; Hetzner and DigitalOcean
        // send a UNIX time. No UNIX time of this century is this small.
        let reset_in = if reset < 1_000_000_000 {
            reset as f64
        } else {
            (reset as f64 - unix).max(0.0)
        };
        self.lock().seen = Some(Seen {
            limit,
            remaining: remaining.min(limit),
            reset_in,
            at: now,
        });
    }

    /// Whether a read may be sent now. `Err((wait, why))` when not: the
    /// caller defers it (`ProviderError::Deferred`) rather than sending it.
    pub(crate) fn admit_read(&self) -> Result<(), (Duration, String)> {
        self.admit_read_at(Instant::now())
    }

    fn admit_read_at(&self, now: Instant) -> Result<(), (Duration, String)> {
        let mut inner = self.lock();
        let Some(seen) = inner.seen else {
            return Ok(());
        };
        let left = self.estimate(&seen, now);
        let why = || {
            format!(
                "the API's request budget is low ({left} of {} left)",
                seen.limit
            )
        };
        if let Some(t) = inner.next_read {
            if now < t {
                return Err((t - now, why()));
            }
        }
        let low = (seen.limit / LOW_SHARE).max(LOW_MIN);
        if left > low {
            inner.next_read = None;
            return Ok(());
        }
        let refill_in =
            (seen.reset_in - now.saturating_duration_since(seen.at).as_secs_f64()).max(1.0);
        let (gap, admit) = match self.refill {
            Refill::Steady => {
                // One request back every `per` seconds: read at half that
                // rate, so the budget climbs back while we read.
                let per = refill_in / (seen.limit - left).max(1) as f64;
                if left <= WRITE_RESERVE {
                    (per * (WRITE_RESERVE + 1 - left) as f64, false)
                } else {
                    (per * 2.0, true)
                }
            }
            Refill::Window => {
                if left <= WRITE_RESERVE {
                    (refill_in, false)
                } else {
                    // Spread what is left above the reserve until the
                    // oldest request stops counting.
                    (refill_in / (left - WRITE_RESERVE) as f64, true)
                }
            }
        };
        let gap = Duration::from_secs_f64(gap.max(0.001)).min(MAX_RETRY_AFTER);
        inner.next_read = Some(now + gap);
        if admit {
            Ok(())
        } else {
            Err((gap, why()))
        }
    }

    /// Requests left now by what was last seen, counting what came back
    /// since.
    fn estimate(&self, seen: &Seen, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(seen.at).as_secs_f64();
        let back = match self.refill {
            Refill::Steady => {
                let missing = seen.limit - seen.remaining;
                if missing == 0 || seen.reset_in <= 0.0 {
                    missing
                } else {
                    let per = seen.reset_in / missing as f64;
                    (elapsed / per) as u64
                }
            }
            Refill::Window => u64::from(elapsed >= seen.reset_in),
        };
        (seen.remaining + back).min(seen.limit)
    }

    /// How long to stay away after a 429 that named no `Retry-After`
    /// (Hetzner documents none): until a few requests are back.
    pub(crate) fn after_429(&self) -> Duration {
        let inner = self.lock();
        let wait = match inner.seen {
            None => 1.0,
            Some(seen) => {
                let refill_in = (seen.reset_in - seen.at.elapsed().as_secs_f64()).max(1.0);
                match self.refill {
                    Refill::Steady => {
                        refill_in / (seen.limit - seen.remaining).max(1) as f64
                            * (WRITE_RESERVE + 1) as f64
                    }
                    Refill::Window => refill_in,
                }
            }
        };
        Duration::from_secs_f64(wait.max(1.0)).min(MAX_RETRY_AFTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(limit: u64, remaining: u64, reset: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, v) in [
            ("ratelimit-limit", limit),
            ("ratelimit-remaining", remaining),
            ("ratelimit-reset", reset),
        ] {
            h.insert(name, HeaderValue::from(v));
        }
        h
    }

    const NOW: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn plenty_left_never_waits() {
        let b = RateBudget::new(Refill::Steady);
        assert_eq!(b.admit_read(), Ok(()), "nothing learnt yet");
        let now = Instant::now();
        b.learn_at(&headers(3600, 3000, NOW + 600), at(NOW), now);
        for _ in 0..100 {
            assert_eq!(b.admit_read_at(now), Ok(()));
        }
    }

    #[test]
    fn steady_refill_paces_reads_at_half_the_refill_rate() {
        let b = RateBudget::new(Refill::Steady);
        let now = Instant::now();
        // 100 missing, full again in 100 s: one back per second.
        b.learn_at(&headers(3600, 3500, NOW + 100), at(NOW), now);
        assert_eq!(b.admit_read_at(now), Ok(()));
        let b = RateBudget::new(Refill::Steady);
        // 3580 missing, full in 3580 s: one back per second, 20 left.
        b.learn_at(&headers(3600, 20, NOW + 3580), at(NOW), now);
        assert_eq!(b.admit_read_at(now), Ok(()), "the first read goes");
        let (wait, why) = b.admit_read_at(now).expect_err("the next waits");
        assert!(
            (1.9..=2.1).contains(&wait.as_secs_f64()),
            "two refill periods: {wait:?}"
        );
        assert!(why.contains("20 of 3600 left"), "{why}");
        assert_eq!(b.admit_read_at(now + Duration::from_secs(2)), Ok(()));
    }

    #[test]
    fn the_write_reserve_is_never_read_away() {
        let b = RateBudget::new(Refill::Steady);
        let now = Instant::now();
        b.learn_at(&headers(3600, 3, NOW + 3597), at(NOW), now);
        let (wait, _) = b.admit_read_at(now).expect_err("3 left: no read");
        // Until 6 are left: three more seconds.
        assert!((2.9..=3.1).contains(&wait.as_secs_f64()), "{wait:?}");
        // Refilled by then (estimated without a new answer).
        assert_eq!(b.admit_read_at(now + Duration::from_secs(4)), Ok(()));
    }

    #[test]
    fn window_refill_spreads_what_is_left_until_the_oldest_expires() {
        let b = RateBudget::new(Refill::Window);
        let now = Instant::now();
        b.learn_at(&headers(100, 9, NOW + 40), at(NOW), now);
        assert_eq!(b.admit_read_at(now), Ok(()));
        let (wait, _) = b.admit_read_at(now).expect_err("paced");
        assert!(
            (9.9..=10.1).contains(&wait.as_secs_f64()),
            "40 s / 4: {wait:?}"
        );
        let b = RateBudget::new(Refill::Window);
        b.learn_at(&headers(100, 2, NOW + 7), at(NOW), now);
        let (wait, _) = b.admit_read_at(now).expect_err("reserve");
        assert!((6.9..=7.1).contains(&wait.as_secs_f64()), "{wait:?}");
        assert_eq!(
            b.admit_read_at(now + Duration::from_secs(8)),
            Err((
                Duration::from_secs_f64(1.0),
                "the API's request budget is low (3 of 100 left)".to_string()
            )),
            "one came back, still inside the reserve"
        );
    }

    #[test]
    fn broken_or_missing_headers_change_nothing() {
        let b = RateBudget::new(Refill::Steady);
        let mut h = headers(3600, 0, NOW);
        h.insert("ratelimit-remaining", HeaderValue::from_static("lots"));
        b.learn(&h);
        assert_eq!(b.admit_read(), Ok(()));
        b.learn(&headers(0, 0, NOW));
        assert_eq!(b.admit_read(), Ok(()), "a zero limit is no budget");
        assert_eq!(b.after_429(), Duration::from_secs(1));
    }

    #[test]
    fn after_a_429_wait_for_a_few_to_come_back() {
        let b = RateBudget::new(Refill::Steady);
        let now = Instant::now();
        b.learn_at(&headers(3600, 0, NOW + 3600), at(NOW), now);
        let wait = b.after_429().as_secs_f64();
        assert!((5.5..=6.1).contains(&wait), "{wait}");
        let b = RateBudget::new(Refill::Window);
        b.learn_at(&headers(250, 0, NOW + 30), at(NOW), now);
        let wait = b.after_429().as_secs_f64();
        assert!((29.0..=30.1).contains(&wait), "{wait}");
    }

    #[test]
    fn a_draft_style_reset_in_seconds_is_understood() {
        let b = RateBudget::new(Refill::Window);
        let now = Instant::now();
        b.learn_at(&headers(100, 2, 7), at(NOW), now);
        let (wait, _) = b.admit_read_at(now).expect_err("reserve");
        assert!((6.9..=7.1).contains(&wait.as_secs_f64()), "{wait:?}");
    }
}
