//! The split-brain guard: before a refresher tries, and again right before
//! every write request, it checks that this node really holds the
//! instance's virtual IPs.
//!
//! Why: keepalived runs notify programs without waiting for them, so a
//! MASTER call can arrive late or out of order, after this node has become
//! BACKUP again. Believing it would point the address at a node that is not
//! MASTER, and the real MASTER's refresher would point it back: the address
//! flaps between the nodes. keepalived adds an instance's
//! `virtual_ipaddress` entries to a local interface before it reports
//! MASTER and removes them before it reports BACKUP or FAULT, so "are the
//! VIPs here?" is the ground truth a late call can be checked against.
//!
//! How: this host's addresses from the kernel (`netlink.rs`), asked again
//! before every try and right before every write (`WriteGate`).

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use floaty_providers::WriteGate;

use crate::address::{comma_list, host_addresses};
use crate::config::{Config, ConfigError, VerifyMaster};
use crate::keepalived::KeepalivedConfig;

use crate::netlink::local_addresses;
/// How often a refresher whose node lacks the VIPs looks again: failover
/// after keepalived adds them (without a further event reaching us) takes
/// at most this long plus one write.
pub const POLL: Duration = Duration::from_secs(1);

/// Whether refreshers of `instance` must check for the VIPs first, and
/// which ones; `Ok(None)` when they need not. Called before any lock, so
/// `verify-master: always` on an instance without VIPs is a config error
/// (exit 2) and not a refresher that can never write.
pub fn guard_for(
    cfg: &Config,
    kconf: Option<&KeepalivedConfig>,
    instance: &str,
) -> Result<Option<Guard>, ConfigError> {
    let vips: Vec<IpAddr> = kconf
        .and_then(|k| k.instance(instance))
        .map(|i| host_addresses(&i.vips))
        .unwrap_or_default();
    match (cfg.verify_master, vips.is_empty()) {
        (VerifyMaster::Off, _) | (VerifyMaster::Auto, true) => Ok(None),
        (VerifyMaster::Always, true) => Err(ConfigError::invalid(
            &cfg.path,
            Some("verify-master"),
            format!(
                "`always`, but vrrp_instance `{instance}` has no virtual_ipaddress in {} to check for; use `auto` or `off`",
                cfg.keepalived_config.display()
            ),
        )),
        (VerifyMaster::Auto | VerifyMaster::Always, false) => Ok(Some(Guard::new(instance, vips))),
    }
}

/// How long a running refresher may find its VIPs missing before that is
/// an ERROR. Why a grace period: every normal demotion removes the VIPs a
/// moment before the BACKUP call stops the refresher (milliseconds in
/// notify mode, one FIFO line in the daemon), so a first "not here" is
/// routine and logged at info. A refresher still running without its VIPs
/// this long after is one no BACKUP call came for, a late or out-of-order
/// MASTER call, and that needs a human. 10 s is far more than any stop
/// takes (keepalived kills a STOP call after 1 s; the lock handoff waits at
/// most `lock-timeout`, 10 s by default, and is logged itself) and short
/// enough that the operator learns of a stale refresher within one look at
/// the log.
pub const GRACE: Duration = Duration::from_secs(10);

/// Where a guard stands, to log each change once per instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Unknown,
    Holding,
    /// Missing since then; `escalated` once the ERROR was logged.
    Missing {
        since: Instant,
        escalated: bool,
    },
    /// The addresses could not be listed (logged once).
    Unlistable,
}

/// What a check should log, decided from the state before it and what it
/// found; separate from the logging so it can be tested without a clock.
#[derive(Debug, PartialEq, Eq)]
enum Note {
    Nothing,
    /// The first "not here": routine while a refresher is being stopped.
    Missing,
    /// Still missing after [`GRACE`].
    StillMissing,
    Back,
}

fn step(before: Seen, held: bool, now: Instant) -> (Seen, Note) {
    match (before, held) {
        (Seen::Missing { .. } | Seen::Unlistable, true) => (Seen::Holding, Note::Back),
        (_, true) => (Seen::Holding, Note::Nothing),
        (Seen::Unknown | Seen::Holding | Seen::Unlistable, false) => (
            Seen::Missing {
                since: now,
                escalated: false,
            },
            Note::Missing,
        ),
        (
            Seen::Missing {
                since,
                escalated: false,
            },
            false,
        ) if now.saturating_duration_since(since) >= GRACE => (
            Seen::Missing {
                since,
                escalated: true,
            },
            Note::StillMissing,
        ),
        (missing @ Seen::Missing { .. }, false) => (missing, Note::Nothing),
    }
}

/// One instance's guard, shared by its address tasks so that a missing VIP
/// is logged once per instance and transition, not per address and tick.
#[derive(Debug)]
pub struct Guard {
    instance: String,
    vips: Vec<IpAddr>,
    seen: Mutex<Seen>,
    /// Under `--dry-run`: look and say what was found, but never hold
    /// anything back (nothing is written anyway, and a dry run that waits
    /// for VIPs the machine trying it out does not have shows nothing).
    advisory: bool,
}

impl Guard {
    pub fn new(instance: &str, vips: Vec<IpAddr>) -> Guard {
        Guard {
            instance: instance.to_string(),
            vips,
            seen: Mutex::new(Seen::Unknown),
            advisory: false,
        }
    }

    /// The same check for a dry run: reports, never blocks.
    pub fn advisory(&self) -> Guard {
        Guard {
            advisory: true,
            ..Guard::new(&self.instance, self.vips.clone())
        }
    }

    /// Whether every VIP of the instance is on a local interface now (an
    /// advisory guard: always yes, after saying what it found).
    /// When the addresses cannot be listed: no (never write blind).
    pub fn holds(&self) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let held = match local_addresses() {
            Ok(local) => self.vips.iter().all(|v| local.contains(v)),
            Err(e) => {
                if *seen != Seen::Unlistable {
                    *seen = Seen::Unlistable;
                    if self.advisory {
                        tracing::info!(instance = %self.instance,
                            "dry-run: cannot list this host's addresses ({e}); a real run would not write");
                    } else {
                        tracing::error!(instance = %self.instance,
                            "not writing: cannot list this host's addresses to check that it holds the virtual IPs ({e}); set verify-master: off if this host cannot");
                    }
                }
                return self.advisory;
            }
        };
        if self.advisory {
            if *seen == Seen::Unknown && !held {
                tracing::info!(instance = %self.instance, vips = %comma_list(&self.vips),
                    "dry-run: this node does not hold the VIPs {}; a real run would wait for them", comma_list(&self.vips));
            }
            *seen = if held {
                Seen::Holding
            } else {
                Seen::Missing {
                    since: Instant::now(),
                    escalated: true,
                }
            };
            return true;
        }
        let (next, note) = step(*seen, held, Instant::now());
        *seen = next;
        drop(seen);
        match note {
            Note::Nothing => {}
            Note::Back => tracing::info!(instance = %self.instance,
                "now holds its virtual IPs: writing again"),
            Note::Missing => {
                tracing::info!(instance = %self.instance, vips = %comma_list(&self.vips),
                "this node does not hold the virtual IPs (demoted?); not writing, checking every {}s", POLL.as_secs())
            }
            Note::StillMissing => {
                tracing::error!(instance = %self.instance, vips = %comma_list(&self.vips),
                "not writing: this node still does not hold the instance's virtual IPs after {}s, so it is not MASTER, yet its refresher was not stopped (a late or out-of-order MASTER call?); checking every {}s",
                GRACE.as_secs(), POLL.as_secs())
            }
        }
        held
    }

    /// Returns at once when the VIPs are here (false), else once they
    /// appear (true: the caller waited, the address is likely elsewhere).
    pub async fn wait_until_held(&self) -> bool {
        if self.holds() {
            return false;
        }
        loop {
            tokio::time::sleep(POLL).await;
            if self.holds() {
                return true;
            }
        }
    }
}

/// The guard asked again inside the provider, right before each write.
impl WriteGate for Guard {
    fn may_write(&self) -> bool {
        self.holds()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn the_first_miss_is_routine_and_only_a_lasting_one_an_error() {
        let t0 = Instant::now();
        let (s, n) = step(Seen::Unknown, true, t0);
        assert_eq!((s, n), (Seen::Holding, Note::Nothing));
        // Demoted: info, once.
        let (s, n) = step(s, false, t0);
        assert_eq!(n, Note::Missing);
        let (s, n) = step(s, false, t0 + GRACE / 2);
        assert_eq!(n, Note::Nothing);
        // Still missing after the grace period: the one error.
        let (s, n) = step(s, false, t0 + GRACE);
        assert_eq!(n, Note::StillMissing);
        let (s, n) = step(s, false, t0 + GRACE * 3);
        assert_eq!(n, Note::Nothing);
        // Back, then gone again: the grace period starts afresh.
        let (s, n) = step(s, true, t0 + GRACE * 3);
        assert_eq!(n, Note::Back);
        let t1 = t0 + GRACE * 4;
        let (s, n) = step(s, false, t1);
        assert_eq!(n, Note::Missing);
        assert_eq!(step(s, false, t1 + GRACE / 2).1, Note::Nothing);
        // A stale MASTER call (never held): info first as well.
        assert_eq!(step(Seen::Unknown, false, t0).1, Note::Missing);
    }

    #[test]
    fn an_advisory_guard_never_blocks() {
        let absent: IpAddr = "192.0.2.254".parse().unwrap();
        let g = Guard::new("VI_1", vec![absent]);
        assert!(!g.holds());
        assert!(!g.may_write());
        let dry = g.advisory();
        assert!(dry.holds());
        assert!(dry.may_write());
    }

    #[test]
    fn a_guard_holds_only_when_every_vip_is_local() {
        let lo = IpAddr::from(Ipv4Addr::LOCALHOST);
        let absent: IpAddr = "192.0.2.254".parse().unwrap();
        assert!(Guard::new("VI_1", vec![lo]).holds());
        assert!(!Guard::new("VI_1", vec![lo, absent]).holds());
        assert!(!Guard::new("VI_1", vec![absent]).holds());
    }
}
