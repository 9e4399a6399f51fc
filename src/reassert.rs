//! Split-brain repair: a burst of verify rounds when keepalived says a
//! lower-priority node claims MASTER too.
//!
//! After a partition heals, the node that stayed MASTER gets no new MASTER
//! event (keepalived#1884): the loser, which moved the address while it
//! was MASTER, goes BACKUP and stops its refresher, and the address would
//! stay on it until this node's next refresh (a refresh-interval). The true
//! MASTER's only sign is `MASTER_RX_LOWER_PRI`, about once an advert
//! interval for as long as it hears the other one. Each such event pokes
//! the instance's refresher ([`Trigger::poke`]: the FIFO line in the
//! daemon, SIGUSR1 from the notify call in the forked one); every address
//! task then reads the provider at once and every [`BURST_EVERY`] until
//! [`BURST_LINGER`] after the last poke ([`Pauses::wait`]), re-pointing the
//! address when it is elsewhere. The reads go through the split-brain
//! guard like every refresh, so a node without the VIPs never writes.
//!
//! The burst is the rate limit: events that come while one runs only make
//! it last longer, so a partition of any length costs one read per address
//! every [`BURST_EVERY`], not one per event.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::Signal;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often a burst reads. Two advert intervals: the loser's write (it
/// became MASTER just when the events started) lands within one read.
pub const BURST_EVERY: Duration = Duration::from_secs(2);

/// How long a burst goes on after the last event: the loser's last
/// writes (its refresher stops only once it is BACKUP) are caught too.
pub const BURST_LINGER: Duration = Duration::from_secs(10);

/// An instance's end of the channel: one per running refresher.
pub struct Trigger {
    instance: String,
    addresses: String,
    /// When the last poke came; the address tasks watch it.
    last: watch::Sender<Option<Instant>>,
    bursts: u64,
}

/// An address task's end: how long to pause between two refreshes.
#[derive(Clone)]
pub struct Pauses {
    pokes: watch::Receiver<Option<Instant>>,
    /// The running burst ends here (none yet: `None`).
    burst_end: Option<Instant>,
    /// False once the trigger is gone: nothing can poke any more.
    open: bool,
}

/// Why a pause ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The refresh interval passed.
    Interval,
    /// A burst read: verify the address now.
    Reassert,
}

/// A trigger for `instance` and the pauses its address tasks share.
pub fn channel(instance: &str, addresses: &[IpAddr]) -> (Trigger, Pauses) {
    let (last, pokes) = watch::channel(None);
    let trigger = Trigger {
        instance: instance.to_string(),
        addresses: crate::address::comma_list(addresses),
        last,
        bursts: 0,
    };
    (trigger, Pauses::from(pokes))
}

impl From<watch::Receiver<Option<Instant>>> for Pauses {
    fn from(pokes: watch::Receiver<Option<Instant>>) -> Pauses {
        Pauses {
            pokes,
            burst_end: None,
            open: true,
        }
    }
}

impl Pauses {
    /// Pauses nothing will ever poke.
    #[cfg(test)]
    pub fn never() -> Pauses {
        Pauses::from(watch::channel(None).1)
    }

    /// Wait until the next refresh is due: `interval` from now, or sooner
    /// in a burst; at once when a poke starts a new burst.
    pub async fn wait(&mut self, interval: Duration) -> Wake {
        let start = Instant::now();
        let until = start + interval;
        loop {
            let burst_read = self
                .burst_end
                .map(|end| (start + BURST_EVERY, end))
                .filter(|(read, end)| read <= end && *read < until)
                .map(|(read, _)| read);
            tokio::select! {
                biased;
                changed = self.pokes.changed(), if self.open => {
                    if changed.is_err() {
                        self.open = false;
                        continue;
                    }
                    let poked = *self.pokes.borrow_and_update();
                    let now = Instant::now();
                    let in_burst = self.burst_end.is_some_and(|end| now < end);
                    if let Some(at) = poked {
                        self.burst_end = Some(at + BURST_LINGER);
                    }
                    if !in_burst {
                        return Wake::Reassert;
                    }
                }
                _ = tokio::time::sleep_until(burst_read.unwrap_or(until)) => {
                    return match burst_read {
                        Some(_) => Wake::Reassert,
                        None => Wake::Interval,
                    };
                }
            }
        }
    }
}

impl Trigger {
    /// keepalived reported `MASTER_RX_LOWER_PRI` for this instance (with
    /// this node's `priority`, when known). Logged once per burst; true
    /// when this poke started one (a repair, for the metrics).
    pub fn poke(&mut self, priority: Option<u32>) -> bool {
        let now = Instant::now();
        let in_burst = self
            .last
            .borrow()
            .is_some_and(|last| now < last + BURST_LINGER);
        if !in_burst {
            self.bursts += 1;
            tracing::info!(instance = %self.instance, addresses = %self.addresses,
                priority = priority.map(i64::from).unwrap_or(-1), bursts = self.bursts,
                "a lower-priority node claims MASTER (split brain healed?): re-asserting the address, reading it now and every {}s until {}s after the last such event",
                BURST_EVERY.as_secs(), BURST_LINGER.as_secs());
        }
        self.last.send_replace(Some(now));
        !in_burst
    }

    /// How many bursts this trigger started.
    #[cfg(test)]
    pub fn bursts(&self) -> u64 {
        self.bursts
    }
}

/// The forked refresher's pokes: SIGUSR1, sent by the notify call for
/// `MASTER_RX_LOWER_PRI` (`poke.rs`). Never ends.
pub async fn poke_on_signal(
    mut usr1: Signal,
    mut trigger: Trigger,
    status: Arc<crate::status::Recorder>,
) -> Infallible {
    while usr1.recv().await.is_some() {
        if trigger.poke(None) {
            status.split_brain_repair();
            status.flush();
        }
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn pair() -> (Trigger, Pauses) {
        channel("VI_1", &["192.0.2.10".parse().unwrap()])
    }

    /// `wait`, and how much (paused, virtual) time it took.
    async fn timed(p: &mut Pauses, interval: Duration) -> (Wake, Duration) {
        let t0 = Instant::now();
        let wake = p.wait(interval).await;
        (wake, t0.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn without_pokes_a_pause_is_the_interval() {
        let (_trigger, mut p) = pair();
        assert_eq!(
            timed(&mut p, HOUR).await,
            (Wake::Interval, HOUR),
            "the refresh loop is unchanged"
        );
        let mut never = Pauses::never();
        assert_eq!(timed(&mut never, HOUR).await, (Wake::Interval, HOUR));
    }

    #[tokio::test(start_paused = true)]
    async fn a_poke_reads_at_once_then_every_two_seconds_until_ten_after() {
        let (mut trigger, mut p) = pair();
        let waiting = tokio::spawn(async move {
            let first = timed(&mut p, HOUR).await;
            (first, p)
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        trigger.poke(Some(150));
        let ((wake, took), mut p) = waiting.await.unwrap();
        assert_eq!((wake, took), (Wake::Reassert, Duration::from_secs(5)));
        // Reads at +2, +4, +6, +8, +10 after the poke, then the interval.
        for _ in 0..5 {
            assert_eq!(timed(&mut p, HOUR).await, (Wake::Reassert, BURST_EVERY));
        }
        assert_eq!(timed(&mut p, HOUR).await, (Wake::Interval, HOUR));
        assert_eq!(trigger.bursts(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn pokes_during_a_burst_extend_it_without_extra_reads() {
        let (mut trigger, mut p) = pair();
        trigger.poke(None);
        assert_eq!(timed(&mut p, HOUR).await, (Wake::Reassert, Duration::ZERO));
        // keepalived repeats the event every second while it lasts.
        let repeat = tokio::spawn(async move {
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                trigger.poke(None);
            }
            trigger
        });
        // 20 s of events, then 10 s of burst: reads every 2 s, no faster.
        let mut reads = 0;
        let t0 = Instant::now();
        loop {
            let (wake, took) = timed(&mut p, HOUR).await;
            if wake == Wake::Interval {
                break;
            }
            assert_eq!(took, BURST_EVERY, "read {reads}");
            reads += 1;
        }
        let trigger = repeat.await.unwrap();
        assert_eq!(reads, 15, "30 s of burst after the first read");
        assert_eq!(t0.elapsed(), Duration::from_secs(30) + HOUR);
        assert_eq!(trigger.bursts(), 1, "one burst, logged once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_poke_after_a_burst_starts_a_new_one() {
        let (mut trigger, mut p) = pair();
        trigger.poke(None);
        assert_eq!(timed(&mut p, HOUR).await.0, Wake::Reassert);
        tokio::time::sleep(BURST_LINGER + Duration::from_secs(1)).await;
        trigger.poke(None);
        assert_eq!(timed(&mut p, HOUR).await, (Wake::Reassert, Duration::ZERO));
        assert_eq!(trigger.bursts(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_interval_still_comes_first() {
        let (mut trigger, mut p) = pair();
        trigger.poke(None);
        assert_eq!(timed(&mut p, HOUR).await.0, Wake::Reassert);
        let second = Duration::from_secs(1);
        assert_eq!(timed(&mut p, second).await, (Wake::Interval, second));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_trigger_leaves_the_interval() {
        let (trigger, mut p) = pair();
        drop(trigger);
        assert_eq!(timed(&mut p, HOUR).await, (Wake::Interval, HOUR));
    }
}
