//! What a lock file says: who holds the lock, and which call last took it.
//!
//! The text is the only thing a later call knows about a refresher, so it
//! carries everything a stop needs without a valid config: the holder's
//! identity (PID and start time), the instance, and the sync group the
//! refresher was started for (a GROUP stop finds its members by it when
//! keepalived.conf no longer names them).
//!
//! ```text
//! floaty-refresher PID START INSTANCE      (or floaty-daemon …)
//! group G1                                 (only for GROUP events)
//! last-event BOOT START PID                (the ticket)
//! ```

use crate::process::ProcessId;

/// A notify-mode refresher: may be stopped by the next call for its instance.
const REFRESHER_TAG: &str = "floaty-refresher";
/// The FIFO daemon: a notify call must wait for it (it serves every
/// instance; a SIGTERM would stop them all), never signal it.
const DAEMON_TAG: &str = "floaty-daemon";
const PROBER_TAG: &str = "floaty-prober";
const GROUP_TAG: &str = "group";
/// Starts the ticket's line.
const TICKET_TAG: &str = "last-event";

/// Who holds the lock, as the lock file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderKind {
    Refresher,
    Daemon,
    /// A notify-mode prober (health/probe.rs): signalled like a refresher,
    /// and the one a MASTER call may hand the instance to.
    Prober,
}

impl HolderKind {
    fn tag(self) -> &'static str {
        match self {
            HolderKind::Refresher => REFRESHER_TAG,
            HolderKind::Daemon => DAEMON_TAG,
            HolderKind::Prober => PROBER_TAG,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: HolderKind,
    pub id: ProcessId,
    pub instance: String,
    /// The sync group whose MASTER event started this refresher.
    pub group: Option<String>,
}

impl Record {
    pub fn parse(text: &str) -> Option<Record> {
        let mut lines = text.lines();
        let line = lines.next()?;
        let mut parts = line.splitn(4, ' ');
        let kind = match parts.next()? {
            REFRESHER_TAG => HolderKind::Refresher,
            DAEMON_TAG => HolderKind::Daemon,
            PROBER_TAG => HolderKind::Prober,
            _ => return None,
        };
        let pid = parts.next()?.parse().ok()?;
        let start_time = parts.next()?.parse().ok()?;
        let instance = parts.next()?.to_string();
        let group = lines
            .find_map(|l| l.strip_prefix(GROUP_TAG)?.strip_prefix(' '))
            .map(str::to_string);
        Some(Record {
            kind,
            id: ProcessId { pid, start_time },
            instance,
            group,
        })
    }

    pub fn render(&self) -> String {
        let mut text = format!(
            "{} {} {} {}\n",
            self.kind.tag(),
            self.id.pid,
            self.id.start_time,
            self.instance
        );
        if let Some(group) = &self.group {
            text.push_str(&format!("{GROUP_TAG} {group}\n"));
        }
        text
    }
}

/// When a notify call was started, to order calls that race for the lock.
/// keepalived forks its notify calls in event order, so (start time in
/// clock ticks, PID) orders them: PIDs grow within one tick. The boot id
/// keeps a lock file that survived a reboot (a lock directory on disk)
/// from outranking every call of the new boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    boot: String,
    start_time: u64,
    pub(super) pid: i32,
}

impl Ticket {
    /// This process's ticket; None when /proc cannot tell (then the call
    /// is not ordered, as before tickets existed).
    pub fn current() -> Option<Ticket> {
        let id = ProcessId::current()?;
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        Some(Ticket {
            boot: boot.trim().to_string(),
            start_time: id.start_time,
            pid: id.pid,
        })
    }

    /// Issued after `other`, in the same boot. Equal tickets (the same tick
    /// and PID, e.g. PID 1 in two containers) are not ordered.
    pub(super) fn newer_than(&self, other: &Ticket) -> bool {
        self.boot == other.boot && (self.start_time, self.pid) > (other.start_time, other.pid)
    }

    pub(super) fn parse(text: &str) -> Option<Ticket> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(TICKET_TAG)?.strip_prefix(' '))?;
        let mut parts = line.split(' ');
        let boot = parts.next()?.to_string();
        let start_time = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        Some(Ticket {
            boot,
            start_time,
            pid,
        })
    }

    pub(super) fn render(&self) -> String {
        format!(
            "{TICKET_TAG} {} {} {}\n",
            self.boot, self.start_time, self.pid
        )
    }
}

/// The ticket in `text` when it is newer than `mine`.
pub(super) fn newer_ticket(text: &str, mine: Option<&Ticket>) -> Option<Ticket> {
    let theirs = Ticket::parse(text)?;
    theirs.newer_than(mine?).then_some(theirs)
}

#[cfg(test)]
pub(super) fn ticket(boot: &str, start_time: u64, pid: i32) -> Ticket {
    Ticket {
        boot: boot.into(),
        start_time,
        pid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_names_with_spaces_and_groups() {
        let mut r = Record {
            kind: HolderKind::Refresher,
            id: ProcessId {
                pid: 42,
                start_time: 7,
            },
            instance: "'VI a'".into(),
            group: None,
        };
        assert_eq!(Record::parse(&r.render()), Some(r.clone()));
        r.group = Some("G 1".into());
        r.kind = HolderKind::Daemon;
        let text = format!("{}{}", r.render(), ticket("b", 1, 2).render());
        assert_eq!(Record::parse(&text), Some(r));
        assert_eq!(Record::parse("garbage"), None);
        assert_eq!(Record::parse("floaty-refresher x 1 a"), None);
        assert_eq!(Record::parse("\nlast-event b 1 2\n"), None);
    }

    #[test]
    fn tickets_order_by_start_then_pid_within_one_boot() {
        let t = ticket("b1", 100, 50);
        assert!(ticket("b1", 101, 2).newer_than(&t));
        assert!(ticket("b1", 100, 51).newer_than(&t));
        assert!(!ticket("b1", 100, 50).newer_than(&t));
        assert!(!ticket("b1", 99, 900).newer_than(&t));
        // Another boot: not comparable, so never "newer".
        assert!(!ticket("b2", 1000, 1).newer_than(&t));
        assert_eq!(Ticket::parse(&t.render()), Some(t.clone()));
        let file = format!("floaty-refresher 7 8 VI 1\ngroup G\n{}", t.render());
        assert_eq!(Ticket::parse(&file), Some(t));
        for bad in [
            "",
            "last-event",
            "last-event b x 1",
            "last-event b 1",
            "xlast-event b 1 2",
        ] {
            assert_eq!(Ticket::parse(bad), None, "{bad:?}");
        }
        let me = Ticket::current().expect("ticket");
        assert!(!me.newer_than(&me));
    }
}
