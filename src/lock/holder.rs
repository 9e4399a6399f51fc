//! Telling the refresher that holds a lock to go — and never anyone else.
//!
//! A record in a lock file is a claim, not a proof: the file may be older
//! than floaty's current rules (a world-writable `/tmp` template), and a
//! PID may have been reused. floaty signals a process only when all of
//! these hold, checked through a pidfd opened first, so the checks and the
//! signal concern the same process:
//! - the record names it with its PID *and* start time, as a refresher of
//!   this very instance;
//! - it runs as floaty's own user;
//! - it has this very lock file (device and inode) open, which only a
//!   floaty that took the lock can have.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::record::{HolderKind, Record};
use crate::process::ProcessHandle;

/// The refresher `record` names, when it is provably that refresher of
/// `instance` holding the lock file `file` (device, inode).
pub fn proven_refresher(
    record: &Record,
    instance: &str,
    file: (u64, u64),
) -> Option<ProcessHandle> {
    if record.kind == HolderKind::Daemon || record.instance != instance {
        return None;
    }
    let handle = ProcessHandle::open(record.id)?;
    let pid = record.id.pid;
    if effective_uid(pid)? != rustix::process::geteuid().as_raw() {
        return None;
    }
    has_open(pid, file).then_some(handle)
}

/// The effective uid in /proc/PID/status (`Uid: real effective saved fs`).
fn effective_uid(pid: i32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` has the file (device, inode) open.
fn has_open(pid: i32, (dev, ino): (u64, u64)) -> bool {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    entries.flatten().any(|e| {
        // metadata() follows the fd's magic link to the open file itself.
        fs::metadata(e.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino)
    })
}

/// SIGTERM, wait on the pidfd, SIGKILL if it has not gone by `kill_after`;
/// never past `deadline`.
pub fn stop(holder: &ProcessHandle, kill_after: Duration, deadline: Instant) {
    tracing::debug!(pid = holder.id.pid, "stopping the previous refresher");
    if holder.signal(Signal::TERM).is_err() {
        return; // already gone
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if holder.wait_exit(kill_after.min(left)) {
        return;
    }
    tracing::warn!(
        pid = holder.id.pid,
        "previous refresher ignored SIGTERM for {kill_after:?}; sending SIGKILL"
    );
    let _ = holder.signal(Signal::KILL);
    let left = deadline.saturating_duration_since(Instant::now());
    holder.wait_exit(left);
}

/// How the holder is named in logs and errors.
pub fn describe(record: Option<&Record>, proven: bool) -> String {
    match record {
        Some(r) if r.kind == HolderKind::Daemon => {
            format!("floaty --fifo daemon pid {}", r.id.pid)
        }
        Some(r) if proven && r.kind == HolderKind::Prober => format!("prober pid {}", r.id.pid),
        Some(r) if proven => format!("refresher pid {}", r.id.pid),
        Some(r) => format!(
            "a process that is not provably floaty's refresher of this instance (the file names pid {}); it is never signalled",
            r.id.pid
        ),
        None => String::from(
            "a holder that left no record (another floaty call between taking the lock and forking, or not floaty at all)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ProcessId;

    #[test]
    fn only_a_process_holding_the_file_is_proven() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.lock");
        let file = fs::File::create(&path).unwrap();
        let meta = file.metadata().unwrap();
        let id = (meta.dev(), meta.ino());
        let me = ProcessId::current().unwrap();
        let record = Record {
            kind: HolderKind::Refresher,
            id: me,
            instance: "VI_1".into(),
            group: None,
        };
        assert!(proven_refresher(&record, "VI_1", id).is_some());
        assert!(proven_refresher(&record, "VI_2", id).is_none());
        let daemon = Record {
            kind: HolderKind::Daemon,
            ..record.clone()
        };
        assert!(proven_refresher(&daemon, "VI_1", id).is_none());
        drop(file);
        assert!(
            proven_refresher(&record, "VI_1", id).is_none(),
            "nobody has the file open any more"
        );
        // A live process that never opened the file (PID 1).
        let init = Record {
            id: ProcessId::of(1).unwrap(),
            ..record
        };
        let _file = fs::File::open(&path).unwrap();
        assert!(proven_refresher(&init, "VI_1", id).is_none());
    }
}
