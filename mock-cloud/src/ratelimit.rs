//! The two request budgets the mocked clouds document, kept on the
//! monotonic clock so that a test can shrink them to milliseconds:
//! Hetzner's token bucket (3600 per project, one back every second) and
//! DigitalOcean's sliding window (5000 per hour, each request counted for
//! an hour on its own timer).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A bucket of `limit` tokens, one added back every `refill_every`.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    limit: u64,
    refill_every: Duration,
    tokens: u64,
    /// When the last token came back (or the bucket was last full): the
    /// next one comes back `refill_every` later.
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(limit: u64, refill_every: Duration, now: Instant) -> TokenBucket {
        TokenBucket {
            limit,
            refill_every,
            tokens: limit,
            last: now,
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    fn refill(&mut self, now: Instant) {
        if self.refill_every.is_zero() {
            self.tokens = self.limit;
            self.last = now;
            return;
        }
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        let back = elapsed / self.refill_every.as_nanos();
        let missing = u128::from(self.limit - self.tokens);
        if back >= missing {
            self.tokens = self.limit;
            self.last = now;
        } else {
            // back < missing ≤ u64::MAX.
            self.tokens += back as u64;
            self.last += Duration::from_nanos(
                (back * self.refill_every.as_nanos()).min(u128::from(u64::MAX)) as u64,
            );
        }
    }

    /// Spends one token: `Ok(tokens left)`, or `Err(())` when empty (an
    /// empty bucket is not charged: there is nothing to take).
    pub fn take(&mut self, now: Instant) -> Result<u64, ()> {
        self.refill(now);
        if self.tokens == 0 {
            return Err(());
        }
        self.tokens -= 1;
        Ok(self.tokens)
    }

    pub fn remaining(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.tokens
    }

    /// When the bucket will be full again if nothing more is spent.
    pub fn full_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        let missing = u128::from(self.limit - self.tokens);
        if missing == 0 {
            return now;
        }
        let total = missing * self.refill_every.as_nanos();
        let until = Duration::from_nanos(total.min(u128::from(u64::MAX)) as u64);
        self.last + until
    }
}

/// At most `limit` requests within any `window`.
#[derive(Debug, Clone)]
pub(crate) struct SlidingWindow {
    limit: u64,
    window: Duration,
    /// When each counted request stops counting, oldest first.
    expiries: VecDeque<Instant>,
}

impl SlidingWindow {
    pub fn new(limit: u64, window: Duration) -> SlidingWindow {
        SlidingWindow {
            limit,
            window,
            expiries: VecDeque::new(),
        }
    }

    fn prune(&mut self, now: Instant) {
        while self.expiries.front().is_some_and(|e| *e <= now) {
            self.expiries.pop_front();
        }
    }

    fn counted(&self) -> u64 {
        self.expiries.len() as u64
    }

    /// Counts one request: `Ok(requests left)`, or `Err(how long until one
    /// is allowed)` when the window is full (a refused request is not
    /// counted, or a client that keeps trying would never get through).
    pub fn take(&mut self, now: Instant) -> Result<u64, Duration> {
        self.prune(now);
        if self.counted() >= self.limit {
            let wait = self
                .expiries
                .front()
                .map_or(self.window, |e| e.saturating_duration_since(now));
            return Err(wait);
        }
        self.expiries.push_back(now + self.window);
        Ok(self.limit - self.counted())
    }

    pub fn remaining(&mut self, now: Instant) -> u64 {
        self.prune(now);
        self.limit.saturating_sub(self.counted())
    }

    /// When the oldest counted request stops counting (`now` when none is).
    pub fn oldest_expiry(&mut self, now: Instant) -> Instant {
        self.prune(now);
        self.expiries.front().copied().unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn bucket_spends_refills_and_caps() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, S, t0);
        assert_eq!(b.full_at(t0), t0);
        assert_eq!(b.take(t0), Ok(2));
        assert_eq!(b.take(t0), Ok(1));
        assert_eq!(b.take(t0), Ok(0));
        assert_eq!(b.take(t0), Err(()));
        assert_eq!(b.full_at(t0), t0 + 3 * S);
        // 1.5 s later one token is back, the half is not lost.
        let t1 = t0 + S + S / 2;
        assert_eq!(b.remaining(t1), 1);
        assert_eq!(b.full_at(t1), t0 + 3 * S);
        assert_eq!(b.remaining(t0 + 2 * S), 2);
        // Never above the limit, however long it rests.
        assert_eq!(b.remaining(t0 + 100 * S), 3);
        assert_eq!(b.take(t0 + 100 * S), Ok(2));
        assert_eq!(b.full_at(t0 + 100 * S), t0 + 101 * S);
    }

    #[test]
    fn bucket_edge_cases() {
        let t0 = Instant::now();
        let mut empty = TokenBucket::new(0, S, t0);
        assert_eq!(empty.take(t0), Err(()));
        assert_eq!(empty.full_at(t0), t0);
        let mut instant = TokenBucket::new(1, Duration::ZERO, t0);
        assert_eq!(instant.take(t0), Ok(0));
        assert_eq!(instant.take(t0), Ok(0));
    }

    #[test]
    fn window_counts_each_request_on_its_own_timer() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(2, 10 * S);
        assert_eq!(w.take(t0), Ok(1));
        assert_eq!(w.take(t0 + 4 * S), Ok(0));
        assert_eq!(w.take(t0 + 5 * S), Err(5 * S));
        assert_eq!(w.oldest_expiry(t0 + 5 * S), t0 + 10 * S);
        // The first expires at 10 s, the second still counts until 14 s.
        assert_eq!(w.remaining(t0 + 10 * S), 1);
        assert_eq!(w.take(t0 + 10 * S), Ok(0));
        assert_eq!(w.take(t0 + 12 * S), Err(2 * S));
        assert_eq!(w.remaining(t0 + 30 * S), 2);
        assert_eq!(w.oldest_expiry(t0 + 30 * S), t0 + 30 * S);
        let mut none = SlidingWindow::new(0, 10 * S);
        assert_eq!(none.take(t0), Err(10 * S));
    }
}
