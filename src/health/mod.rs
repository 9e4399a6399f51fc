//! This node's readiness to move the address, told to keepalived through a
//! `track_file` (keepalived-health.md §1.2, §1.6).
//!
//! keepalived elects from VRRP adverts alone; a node whose token was
//! revoked still wins and then cannot move the address. So the instance's
//! long-running part (refresher while MASTER, prober otherwise) keeps one
//! integer in a file keepalived adds to the priority (`weight 1`):
//!
//! - `0`: the API answered this node's read and accepted its credentials;
//! - `−demote-by`: a failure particular to this node (401/403, the address
//!   or server unknown, a provider that cannot be set up): a healthy peer
//!   with preempt wins the next election;
//! - unchanged on common-mode failures (timeouts, refused connections, 5xx,
//!   429): the peer most likely sees them too, and demoting both would turn
//!   a control-plane outage into a data-plane one;
//! - `−254` while drained (`--drain`), keepalived's hard FAULT.
//!
//! Hysteresis: one answer never flips the value. [`CONFIRM`] node-particular
//! answers in a row demote, the same number of good ones restore; the
//! probe after a first bad answer comes after [`RECHECK`], not a whole
//! health-interval, so a revoked token is acted on within seconds.
//!
//! `track_file.rs` the file and its state, `probe.rs` the prober loop,
//! `drain.rs` the `--drain`/`--undrain` command.

pub mod drain;
pub mod probe;
pub mod track_file;
pub mod watched;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use floaty_providers::{Outcome, ProviderError};

pub use track_file::{TrackFile, TrackFileError};

/// Answers in a row that change the value.
pub const CONFIRM: u32 = 2;
/// How soon a first node-particular answer is checked again.
pub const RECHECK: Duration = Duration::from_secs(1);

/// What the config asks of health reporting for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthPlan {
    pub file: TrackFile,
    pub demote_by: i32,
    pub interval: Duration,
}

/// One answer, sorted by what it says about this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ready,
    /// This node cannot move the address; why, for the log.
    NodeBroken(String),
    /// Common-mode trouble or no answer: says nothing about this node.
    NoNews,
}

impl Verdict {
    pub fn of(result: &Result<Outcome, ProviderError>) -> Verdict {
        match result {
            Ok(_) => Verdict::Ready,
            Err(e) => Verdict::of_error(e),
        }
    }

    pub fn of_error(e: &ProviderError) -> Verdict {
        match e {
            // The read went through (the write after it was refused by the
            // gate: a prober never writes).
            ProviderError::Withheld { .. } => Verdict::Ready,
            ProviderError::Rejected { .. }
            | ProviderError::NotFound { .. }
            | ProviderError::Setup(_) => Verdict::NodeBroken(e.to_string()),
            ProviderError::Transient { .. } | ProviderError::Deferred { .. } => Verdict::NoNews,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Streak {
    bad: u32,
    good: u32,
}

/// One instance's health: the answers per address, and the track file.
#[derive(Debug)]
pub struct Health {
    plan: HealthPlan,
    inner: Mutex<Inner>,
    /// The instance's address tasks read together (`beat.rs`).
    beat: crate::beat::Beat,
}

#[derive(Debug, Default)]
struct Inner {
    streaks: BTreeMap<Option<IpAddr>, Streak>,
    demoted: bool,
}

impl Health {
    /// Starts from what the file's state last said (a restarted prober must
    /// not call a demoted node ready before it has probed), and writes it.
    pub fn start(plan: HealthPlan, instance: &str) -> Health {
        let demoted = match plan.file.update(|_| {}) {
            Ok((state, _)) => state.measured < 0,
            Err(e) => {
                tracing::error!(instance, "{e}");
                false
            }
        };
        Health {
            plan,
            inner: Mutex::new(Inner {
                demoted,
                ..Inner::default()
            }),
            beat: crate::beat::Beat::default(),
        }
    }

    /// Whether the instance's address tasks wake together (`beat.rs`).
    pub fn keep_together(&self, together: bool) {
        self.beat.keep_together(together);
    }

    /// What the track file says now, and whether that is a drain: for the
    /// state file (`status/`), read from the state the writers share.
    pub fn track_value(&self) -> (i32, bool) {
        let s = self.plan.file.state();
        (s.value(), s.drained)
    }

    pub fn interval(&self) -> Duration {
        self.plan.interval
    }

    /// Whether the next probe of `addr` should come early, to confirm a
    /// first bad answer.
    fn wants_recheck(&self, addr: Option<IpAddr>) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let streak = inner.streaks.get(&addr).copied().unwrap_or_default();
        streak.bad > 0 && streak.bad < CONFIRM && !inner.demoted
            || streak.good > 0 && streak.good < CONFIRM && inner.demoted
    }

    /// How long to wait before the next read of `addr`, whose steady
    /// interval is `interval`: [`RECHECK`] while a first answer waits to
    /// be confirmed, else `interval` jittered.
    pub fn next_wait(&self, addr: Option<IpAddr>, interval: Duration) -> Duration {
        if self.wants_recheck(addr) {
            RECHECK
        } else {
            self.beat.wait(interval)
        }
    }

    /// Take one answer for `addr` (None: the instance as a whole, e.g. a
    /// provider that cannot be built) into account.
    pub fn report(&self, instance: &str, addr: Option<IpAddr>, verdict: &Verdict) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let streak = inner.streaks.entry(addr).or_default();
        match verdict {
            Verdict::NoNews => return,
            Verdict::Ready => {
                streak.good += 1;
                streak.bad = 0;
            }
            Verdict::NodeBroken(_) => {
                streak.bad += 1;
                streak.good = 0;
            }
        }
        let demote = inner.streaks.values().any(|s| s.bad >= CONFIRM);
        let restore = inner
            .streaks
            .values()
            .all(|s| s.bad == 0 && (s.good >= CONFIRM || s.good == 0))
            && inner.streaks.values().any(|s| s.good >= CONFIRM);
        let demoted = if demote {
            true
        } else if restore {
            false
        } else {
            inner.demoted
        };
        if demoted == inner.demoted {
            return;
        }
        inner.demoted = demoted;
        let measured = if demoted { -self.plan.demote_by } else { 0 };
        match self.plan.file.update(|s| s.measured = measured) {
            Ok((state, _)) if demoted => {
                let why = match verdict {
                    Verdict::NodeBroken(why) => why.as_str(),
                    _ => "",
                };
                tracing::error!(instance, track_file = %self.plan.file.path().display(), value = state.value(),
                    "this node cannot move the address: telling keepalived to prefer the peer ({why})");
            }
            Ok((state, _)) => {
                tracing::info!(instance, track_file = %self.plan.file.path().display(), value = state.value(),
                    "this node can move the address again: ready for keepalived");
            }
            Err(e) => tracing::error!(instance, "{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn health() -> (tempfile::TempDir, Health) {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let plan = HealthPlan {
            file: TrackFile::new(d.path().join("VI_1.health")),
            demote_by: 100,
            interval: Duration::from_secs(10),
        };
        (d, Health::start(plan, "VI_1"))
    }

    fn value(h: &Health) -> Option<i32> {
        h.plan.file.current_value()
    }

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));

    fn broken() -> Verdict {
        Verdict::NodeBroken("HTTP 401".into())
    }

    #[test]
    fn one_bad_answer_does_not_flap_two_demote_two_good_restore() {
        let (_d, h) = health();
        assert_eq!(value(&h), Some(0), "written at start");
        h.report("VI_1", A, &broken());
        assert_eq!(value(&h), Some(0));
        assert!(h.wants_recheck(A));
        h.report("VI_1", A, &Verdict::NoNews);
        h.report("VI_1", A, &broken());
        assert_eq!(value(&h), Some(-100));
        h.report("VI_1", A, &Verdict::Ready);
        assert_eq!(value(&h), Some(-100));
        h.report("VI_1", A, &Verdict::Ready);
        assert_eq!(value(&h), Some(0));
    }

    #[test]
    fn common_mode_trouble_never_demotes() {
        let (_d, h) = health();
        for _ in 0..10 {
            h.report("VI_1", A, &Verdict::NoNews);
        }
        assert_eq!(value(&h), Some(0));
    }

    #[test]
    fn one_broken_address_demotes_the_instance() {
        let (_d, h) = health();
        for _ in 0..3 {
            h.report("VI_1", A, &Verdict::Ready);
            h.report("VI_1", B, &broken());
        }
        assert_eq!(value(&h), Some(-100));
    }

    #[test]
    fn a_restart_keeps_the_demotion_until_probed_good() {
        let (d, h) = health();
        h.report("VI_1", A, &broken());
        h.report("VI_1", A, &broken());
        drop(h);
        let plan = HealthPlan {
            file: TrackFile::new(d.path().join("VI_1.health")),
            demote_by: 100,
            interval: Duration::from_secs(10),
        };
        let h = Health::start(plan, "VI_1");
        assert_eq!(value(&h), Some(-100));
        h.report("VI_1", A, &Verdict::Ready);
        assert!(h.wants_recheck(A));
        h.report("VI_1", A, &Verdict::Ready);
        assert_eq!(value(&h), Some(0));
    }

    #[test]
    fn verdicts() {
        let rejected = ProviderError::Rejected {
            operation: "GET".into(),
            status: 401,
            message: "no".into(),
        };
        assert!(matches!(
            Verdict::of(&Err(rejected)),
            Verdict::NodeBroken(_)
        ));
        let transient = ProviderError::Transient {
            operation: "GET".into(),
            message: "503".into(),
            retry_after: None,
            cause: floaty_providers::Cause::ServerError,
        };
        assert_eq!(Verdict::of(&Err(transient)), Verdict::NoNews);
        let withheld = ProviderError::Withheld {
            operation: "PATCH".into(),
        };
        assert_eq!(Verdict::of(&Err(withheld)), Verdict::Ready);
        assert_eq!(Verdict::of(&Ok(Outcome::AlreadyHere)), Verdict::Ready);
    }
}
