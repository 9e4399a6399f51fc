//! Asking the refresher that holds a lock to re-assert its address
//! (SIGUSR1, `reassert.rs`), without taking the lock or stopping anyone.
//!
//! The signal goes only where a stop's SIGTERM would (`holder.rs`: the
//! record's PID and start time, this instance, floaty's user, the lock
//! file open), and only to a process that catches SIGUSR1: its default
//! action ends a process, and a refresher started by an older floaty
//! (before an upgrade) does not catch it.

use std::fs;
use std::path::Path;

use rustix::process::Signal;

use super::record::HolderKind;
use super::{existing_record, holder, LockError};

/// What [`poke`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Poked {
    /// No lock file, or no record in it: no refresher runs.
    Nothing,
    /// The provable refresher with this PID was sent SIGUSR1.
    Refresher { pid: i32 },
    /// The FIFO daemon refreshes the instance: it reads the FIFO's own
    /// `MASTER_RX_LOWER_PRI` lines, so it is not signalled.
    Daemon { pid: i32 },
    /// A provable refresher that does not catch SIGUSR1: left alone.
    Deaf { pid: i32 },
    /// The record names nobody floaty may signal (named for the log).
    NotProven { holder: String },
}

/// Send the refresher that holds `instance`'s lock at `path` SIGUSR1 when
/// it provably is one that catches it. Creates, locks and writes nothing.
pub fn poke(path: &Path, instance: &str) -> Result<Poked, LockError> {
    let Some(super::Existing {
        id: file_id,
        record,
        ..
    }) = existing_record(path)?
    else {
        return Ok(Poked::Nothing);
    };
    if record.kind == HolderKind::Daemon {
        return Ok(Poked::Daemon { pid: record.id.pid });
    }
    // A prober (health/probe.rs) writes nothing until a MASTER call hands
    // it the instance, and then it records itself as the refresher.
    if record.kind == HolderKind::Prober {
        return Ok(Poked::Nothing);
    }
    let Some(refresher) = holder::proven_refresher(&record, instance, file_id) else {
        return Ok(Poked::NotProven {
            holder: holder::describe(Some(&record), false),
        });
    };
    let pid = refresher.id.pid;
    if !catches(pid, Signal::USR1) {
        return Ok(Poked::Deaf { pid });
    }
    // Through the pidfd the checks above were made on.
    match refresher.signal(Signal::USR1) {
        Ok(()) => Ok(Poked::Refresher { pid }),
        // Gone since: nothing runs any more.
        Err(_) => Ok(Poked::Nothing),
    }
}

/// Whether `pid` has a handler for `signal` (`SigCgt` in its status).
fn catches(pid: i32, signal: Signal) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok());
    let bit = signal.as_raw() - 1;
    mask.is_some_and(|m| (0..64).contains(&bit) && m & (1 << bit) != 0)
}

#[cfg(test)]
mod tests {
    use super::super::acquire;
    use super::super::tests::patience;
    use super::*;
    use crate::process::ProcessId;

    #[test]
    fn only_a_provable_refresher_is_poked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floaty.VI_1.lock");
        assert_eq!(poke(&path, "VI_1").unwrap(), Poked::Nothing);
        assert!(!path.exists(), "a poke never creates a lock file");
        let mut held = acquire(&path, "VI_1", patience()).unwrap();
        assert_eq!(
            poke(&path, "VI_1").unwrap(),
            Poked::Nothing,
            "no record yet"
        );
        // PID 1 does not hold the file: never signalled.
        held.record_owner(ProcessId::of(1).unwrap(), "VI_1", None)
            .unwrap();
        assert!(matches!(
            poke(&path, "VI_1").unwrap(),
            Poked::NotProven { .. }
        ));
        // This test process holds it, but catches no SIGUSR1 (the test
        // harness installs no handler): SIGUSR1 would end it.
        let me = ProcessId::current().unwrap();
        held.record_owner(me, "VI_1", None).unwrap();
        assert_eq!(poke(&path, "VI_1").unwrap(), Poked::Deaf { pid: me.pid });
        assert!(matches!(
            poke(&path, "VI_2").unwrap(),
            Poked::NotProven { .. }
        ));
        held.record_daemon(me, "VI_1").unwrap();
        assert_eq!(poke(&path, "VI_1").unwrap(), Poked::Daemon { pid: me.pid });
        held.release();
        assert_eq!(poke(&path, "VI_1").unwrap(), Poked::Nothing);
    }

    #[test]
    fn the_signal_mask_is_read_from_proc() {
        let me = std::process::id() as i32;
        assert!(!catches(me, Signal::USR1));
        assert!(!catches(-1, Signal::USR1), "no such process");
    }
}
