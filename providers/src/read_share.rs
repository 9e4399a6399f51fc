//! One read answering for every address of an instance.
//!
//! The refresher runs one task per address, and they wake together (the
//! instance's beat, `src/beat.rs`). On clouds whose list call returns
//! every address in one answer (Hetzner, DigitalOcean), the first task's
//! read is a listing that every other task then takes its answer from:
//! a steady-state refresh of 50 addresses costs one call, not 50, which
//! matters where the budget is 3,600 an hour for a whole project.
//!
//! An answer serves for [`FRESH`]: long enough for the tasks of one beat
//! (they wake within a millisecond), short enough that it never stands in
//! for the next beat's read (`refresh-interval` is at least 1 s).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) const FRESH: Duration = Duration::from_millis(500);

/// Where an address points, by the provider's own id of the server or
/// droplet (`None`: nowhere).
pub(crate) type Owner<T = u64> = Option<T>;

#[derive(Debug)]
struct Inner<T> {
    seen: HashMap<IpAddr, (Instant, Owner<T>)>,
    asked: HashSet<IpAddr>,
    /// How many calls a listing of every address takes, once one was made.
    list_calls: Option<u64>,
}

/// `T`: the provider's id of an owner (a Hetzner server, an AWS ENI).
#[derive(Debug)]
pub(crate) struct ReadShare<T = u64> {
    /// Held by the read in flight: the reads arriving with it wait for
    /// its answer instead of sending their own.
    flight: tokio::sync::Mutex<()>,
    inner: Mutex<Inner<T>>,
}

impl<T> Default for ReadShare<T> {
    fn default() -> Self {
        ReadShare {
            flight: tokio::sync::Mutex::new(()),
            inner: Mutex::new(Inner {
                seen: HashMap::new(),
                asked: HashSet::new(),
                list_calls: None,
            }),
        }
    }
}

impl<T: Clone> ReadShare<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the read in flight, if any; the caller reads (or finds
    /// a fresh answer) while holding the guard.
    pub(crate) async fn flight(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.flight.lock().await
    }

    /// Notes that `ip` is one of the addresses being refreshed.
    pub(crate) fn ask(&self, ip: IpAddr) {
        self.lock().asked.insert(ip);
    }

    /// An answer for `ip` younger than [`FRESH`].
    pub(crate) fn fresh(&self, ip: IpAddr) -> Option<Owner<T>> {
        let inner = self.lock();
        let (at, owner) = inner.seen.get(&ip)?;
        (at.elapsed() < FRESH).then(|| owner.clone())
    }

    pub(crate) fn note(&self, ip: IpAddr, owner: Owner<T>) {
        self.lock().seen.insert(ip, (Instant::now(), owner));
    }

    /// A whole listing's answer: where each asked address points. An
    /// asked address missing from it is not noted (its own read then says
    /// what is wrong with it).
    pub(crate) fn note_listing(
        &self,
        calls: u64,
        owners: impl IntoIterator<Item = (IpAddr, Owner<T>)>,
    ) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.list_calls = Some(calls);
        for (ip, owner) in owners {
            if inner.asked.contains(&ip) {
                inner.seen.insert(ip, (now, owner));
            }
        }
    }

    /// The addresses asked about so far.
    pub(crate) fn asked(&self) -> Vec<IpAddr> {
        self.lock().asked.iter().copied().collect()
    }

    /// Makes every answer stale, as the next beat finds them.
    #[cfg(test)]
    pub(crate) fn age(&self) {
        self.lock().seen.clear();
    }

    /// Whether a listing is the cheaper read: more than one address is
    /// refreshed and a listing takes fewer calls than a read of each (a
    /// listing of unknown length is tried once to learn it).
    pub(crate) fn listing_pays(&self) -> bool {
        let inner = self.lock();
        let asked = inner.asked.len() as u64;
        asked > 1 && inner.list_calls.is_none_or(|calls| calls < asked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn a_listing_serves_the_asked_addresses_only() {
        let share = ReadShare::<u64>::default();
        share.ask(ip("192.0.2.1"));
        assert!(!share.listing_pays(), "one address: read it alone");
        share.ask(ip("192.0.2.2"));
        assert!(
            share.listing_pays(),
            "two: a listing of unknown size is worth a try"
        );
        share.note_listing(
            1,
            [
                (ip("192.0.2.1"), Some(7)),
                (ip("192.0.2.2"), None),
                (ip("192.0.2.3"), Some(8)),
            ],
        );
        assert_eq!(share.fresh(ip("192.0.2.1")), Some(Some(7)));
        assert_eq!(share.fresh(ip("192.0.2.2")), Some(None));
        assert_eq!(share.fresh(ip("192.0.2.3")), None, "not asked");
        assert!(share.listing_pays());
        share.note_listing(3, []);
        assert!(!share.listing_pays(), "three pages for two addresses");
    }

    #[test]
    fn an_answer_goes_stale() {
        let share = ReadShare::<u64>::default();
        share.lock().seen.insert(
            ip("192.0.2.1"),
            (Instant::now() - FRESH - Duration::from_millis(1), Some(1)),
        );
        assert_eq!(share.fresh(ip("192.0.2.1")), None);
        share.note(ip("192.0.2.1"), Some(2));
        assert_eq!(share.fresh(ip("192.0.2.1")), Some(Some(2)));
    }
}
