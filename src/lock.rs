//! The per-instance lock: at most one floaty works on an instance at a time.
//!
//! The lock is an `flock` on a file named after the instance. A MASTER call
//! forks the refresher, which inherits the lock and keeps it for its life;
//! every later call for the instance must first make that refresher go.
//! The file holds the refresher's identity (PID and start time), so the
//! next call can tell a live refresher from a reused PID and never signals a
//! process that is not ours. The FIFO daemon takes the same locks for the
//! instances it refreshes but records itself as `floaty-daemon`: it may be
//! stopped by nobody but its own events and signals, so a notify call waits
//! for it rather than signalling it.
//!
//! keepalived does not wait for notify programs, so two calls for one
//! instance can run at once and reach the lock in any order. The file's
//! second line (a [`Ticket`]) names the call that last took the lock; a call
//! older than that one is stale and gives way without signalling anyone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::process::{ProcessHandle, ProcessId};

const RECORD_TAG: &str = "floaty-refresher";
/// The FIFO daemon records itself under another tag: a notify call must
/// wait for it (it serves every instance; a SIGTERM would stop them all),
/// never signal it.
const DAEMON_TAG: &str = "floaty-daemon";

/// Starts the second line of the lock file.
const TICKET_TAG: &str = "last-event";

/// When a notify call was started, to order calls that race for the lock.
/// keepalived forks its notify calls in event order, so (start time in
/// clock ticks, PID) orders them: PIDs grow within one tick. The boot id
/// keeps a lock file that survived a reboot (a lock directory on disk)
/// from outranking every call of the new boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    boot: String,
    start_time: u64,
    pid: i32,
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
    fn newer_than(&self, other: &Ticket) -> bool {
        self.boot == other.boot && (self.start_time, self.pid) > (other.start_time, other.pid)
    }

    fn parse(text: &str) -> Option<Ticket> {
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

    fn render(&self) -> String {
        format!(
            "{TICKET_TAG} {} {} {}\n",
            self.boot, self.start_time, self.pid
        )
    }
}

/// What [`acquire_in_order`] got.
#[derive(Debug)]
pub enum Acquired {
    Locked(InstanceLock),
    /// A call started after this one has already taken the lock: this
    /// call's event is outdated and must change nothing. Holds the newer
    /// call's PID, for the log.
    Stale {
        newer_pid: i32,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("lock directory {} does not exist; create it or change lock-file-template", .0.display())]
    MissingDir(PathBuf),
    #[error("lock file {} is a symbolic link; floaty never follows one: remove it", .0.display())]
    Symlink(PathBuf),
    #[error("cannot open lock file {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("lock file {} still held after {timeout:?} ({holder}); raise lock-timeout or check that process", path.display())]
    Timeout {
        path: PathBuf,
        timeout: Duration,
        holder: String,
    },
    #[error("cannot write lock file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A held instance lock. Dropping it closes the file without `LOCK_UN`:
/// after a fork the refresher shares the same open file description, and an
/// explicit unlock by the exiting notify call would release the refresher's
/// lock too.
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
    path: PathBuf,
    /// Kept on the file's second line through every rewrite.
    ticket: Option<Ticket>,
}

/// How long to wait for the lock, and when to stop asking nicely.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    pub timeout: Duration,
    /// After SIGTERM, wait this long for the holder before SIGKILL.
    pub kill_after: Duration,
}

/// Who holds the lock, as the lock file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: ProcessId,
    pub instance: String,
}

impl Record {
    fn parse(text: &str) -> Option<Record> {
        let line = text.lines().next()?;
        let mut parts = line.splitn(4, ' ');
        if parts.next()? != RECORD_TAG {
            return None;
        }
        let pid = parts.next()?.parse().ok()?;
        let start_time = parts.next()?.parse().ok()?;
        let instance = parts.next()?.to_string();
        Some(Record {
            id: ProcessId { pid, start_time },
            instance,
        })
    }

    fn render(&self) -> String {
        format!(
            "{RECORD_TAG} {} {} {}\n",
            self.id.pid, self.id.start_time, self.instance
        )
    }
}

fn open(path: &Path) -> Result<File, LockError> {
    let result = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    result.map_err(|source| {
        if source.raw_os_error() == Some(libc::ELOOP) {
            LockError::Symlink(path.to_path_buf())
        } else if source.kind() == io::ErrorKind::NotFound {
            LockError::MissingDir(path.parent().unwrap_or(Path::new("/")).to_path_buf())
        } else {
            LockError::Open {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn read_text(file: &mut File) -> String {
    let mut text = String::new();
    if file.rewind().is_ok() {
        let _ = file.take(4096).read_to_string(&mut text);
    }
    text
}

/// The ticket in `text` when it is newer than `mine`.
fn newer_ticket(text: &str, mine: Option<&Ticket>) -> Option<Ticket> {
    let theirs = Ticket::parse(text)?;
    theirs.newer_than(mine?).then_some(theirs)
}

/// Take the lock for `instance`, stopping the refresher that holds it.
///
/// A holder is signalled only when the lock file names a live process with
/// the recorded start time and this very instance; anything else holding
/// the lock (another notify call in flight) is waited for.
pub fn acquire(path: &Path, instance: &str, patience: Patience) -> Result<InstanceLock, LockError> {
    match acquire_in_order(path, instance, patience, None)? {
        Acquired::Locked(lock) => Ok(lock),
        // Without a ticket of our own no other ticket is newer.
        Acquired::Stale { newer_pid } => Err(LockError::Timeout {
            path: path.to_path_buf(),
            timeout: patience.timeout,
            holder: format!("newer call pid {newer_pid}"),
        }),
    }
}

/// [`acquire`] for a notify call holding `ticket`: gives way (without
/// signalling anyone) to a call started later that has taken the lock
/// first, and leaves `ticket` in the file for older calls to see.
pub fn acquire_in_order(
    path: &Path,
    instance: &str,
    patience: Patience,
    ticket: Option<Ticket>,
) -> Result<Acquired, LockError> {
    let mut file = open(path)?;
    let deadline = Instant::now() + patience.timeout;
    let mut last_holder = String::from("holder unknown");
    loop {
        match file.try_lock() {
            Ok(()) => {
                let text = read_text(&mut file);
                if let Some(newer) = newer_ticket(&text, ticket.as_ref()) {
                    // Closing our only descriptor unlocks.
                    return Ok(Acquired::Stale {
                        newer_pid: newer.pid,
                    });
                }
                let mut lock = InstanceLock {
                    file,
                    path: path.to_path_buf(),
                    ticket,
                };
                if lock.ticket.is_some() {
                    // Stamp our ticket at once (the previous holder is
                    // gone: its record names nobody any more).
                    lock.write_record(String::from("\n"))?;
                }
                return Ok(Acquired::Locked(lock));
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(source)) => {
                return Err(LockError::Open {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
        if Instant::now() >= deadline {
            return Err(LockError::Timeout {
                path: path.to_path_buf(),
                timeout: patience.timeout,
                holder: last_holder,
            });
        }
        // The record and the ticket come from one read: a refresher's
        // record is always written together with its call's ticket.
        let text = read_text(&mut file);
        if let Some(newer) = newer_ticket(&text, ticket.as_ref()) {
            return Ok(Acquired::Stale {
                newer_pid: newer.pid,
            });
        }
        let record = Record::parse(&text).filter(|r| r.instance == instance);
        match record.and_then(|r| ProcessHandle::open(r.id)) {
            Some(holder) => {
                last_holder = format!("refresher pid {}", holder.id.pid);
                stop_refresher(&holder, patience.kill_after, deadline);
            }
            None => {
                // Another notify call is between taking the lock and
                // forking (or finishing); it holds the lock for
                // milliseconds. Poll briefly. Or the FIFO daemon holds
                // it: wait, do not signal.
                last_holder =
                    daemon_holder(&text).unwrap_or_else(|| String::from("another floaty call"));
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// SIGTERM, wait on the pidfd, SIGKILL if it has not gone by `kill_after`.
fn stop_refresher(holder: &ProcessHandle, kill_after: Duration, deadline: Instant) {
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

/// "floaty --fifo daemon pid N" when the lock file names the daemon.
fn daemon_holder(text: &str) -> Option<String> {
    let pid = text.strip_prefix(DAEMON_TAG)?.split_whitespace().next()?;
    Some(format!("floaty --fifo daemon pid {pid}"))
}

impl InstanceLock {
    /// Record the refresher that now owns the lock (called in the child).
    pub fn record_owner(&mut self, id: ProcessId, instance: &str) -> Result<(), LockError> {
        let record = Record {
            id,
            instance: instance.to_string(),
        };
        self.write_record(record.render())
    }

    /// Record the FIFO daemon as the holder (see [`DAEMON_TAG`]).
    pub fn record_daemon(&mut self, id: ProcessId, instance: &str) -> Result<(), LockError> {
        let record = Record {
            id,
            instance: instance.to_string(),
        };
        let text = record.render().replacen(RECORD_TAG, DAEMON_TAG, 1);
        self.write_record(text)
    }

    fn write_record(&mut self, mut text: String) -> Result<(), LockError> {
        if let Some(t) = &self.ticket {
            text.push_str(&t.render());
        }
        let write = |file: &mut File| -> io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(text.as_bytes())
        };
        write(&mut self.file).map_err(|source| LockError::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// Give the lock up for good: clear the record so nobody mistakes a
    /// stale entry for a holder, then unlock.
    pub fn release(mut self) {
        if self.ticket.is_some() {
            // An empty record line; the ticket stays for older calls.
            let _ = self.write_record(String::from("\n"));
        } else {
            let _ = self.file.set_len(0);
        }
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patience() -> Patience {
        Patience {
            timeout: Duration::from_millis(300),
            kill_after: Duration::from_millis(100),
        }
    }

    #[test]
    fn record_round_trips_names_with_spaces() {
        let r = Record {
            id: ProcessId {
                pid: 42,
                start_time: 7,
            },
            instance: "'VI a'".into(),
        };
        assert_eq!(Record::parse(&r.render()), Some(r));
        assert_eq!(Record::parse("garbage"), None);
        assert_eq!(Record::parse("floaty-refresher x 1 a"), None);
    }

    #[test]
    fn lock_is_exclusive_and_times_out_without_signalling_strangers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floaty.VI_1.lock");
        let first = acquire(&path, "VI_1", patience()).unwrap();
        // The file names no refresher: the second caller must wait, not kill.
        let err = acquire(&path, "VI_1", patience()).unwrap_err();
        assert!(matches!(err, LockError::Timeout { .. }), "{err}");
        first.release();
        acquire(&path, "VI_1", patience()).unwrap();
    }

    fn ticket(boot: &str, start_time: u64, pid: i32) -> Ticket {
        Ticket {
            boot: boot.into(),
            start_time,
            pid,
        }
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
        let file = format!("floaty-refresher 7 8 VI 1\n{}", t.render());
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

    #[test]
    fn an_older_call_gives_way_without_signalling_the_newer_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floaty.VI_1.lock");
        let me = ProcessId::current().unwrap();
        let newer = ticket("b", 200, 10);
        let older = ticket("b", 100, 10);
        let Acquired::Locked(mut held) =
            acquire_in_order(&path, "VI_1", patience(), Some(newer.clone())).unwrap()
        else {
            panic!("first call must get the lock")
        };
        // Our own PID as the refresher: were it signalled, the test dies.
        held.record_owner(me, "VI_1").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("floaty-refresher ") && text.ends_with(&newer.render()),
            "{text}"
        );
        let got = acquire_in_order(&path, "VI_1", patience(), Some(older.clone())).unwrap();
        assert!(matches!(got, Acquired::Stale { newer_pid: 10 }), "{got:?}");
        // Released: the ticket stays, so a late older call still gives way.
        held.release();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("\n{}", newer.render())
        );
        let got = acquire_in_order(&path, "VI_1", patience(), Some(older)).unwrap();
        assert!(matches!(got, Acquired::Stale { .. }), "{got:?}");
        // A newer call takes it and stamps its own ticket.
        let newest = ticket("b", 300, 1);
        let got = acquire_in_order(&path, "VI_1", patience(), Some(newest.clone())).unwrap();
        assert!(matches!(got, Acquired::Locked(_)), "{got:?}");
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .ends_with(&newest.render()));
    }

    #[test]
    fn a_daemon_holder_is_waited_for_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floaty.VI_1.lock");
        let mut held = acquire(&path, "VI_1", patience()).unwrap();
        // Our own PID: were it signalled, this test process would die.
        held.record_daemon(ProcessId::current().unwrap(), "VI_1")
            .unwrap();
        let err = acquire(&path, "VI_1", patience()).unwrap_err();
        assert!(
            err.to_string().contains("floaty --fifo daemon pid"),
            "{err}"
        );
        held.release();
        acquire(&path, "VI_1", patience()).unwrap();
    }

    #[test]
    fn file_is_private_and_symlinks_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.lock");
        let _l = acquire(&path, "a", patience()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let link = dir.path().join("b.lock");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(
            acquire(&link, "b", patience()),
            Err(LockError::Symlink(_))
        ));
        let missing = dir.path().join("nope/c.lock");
        assert!(matches!(
            acquire(&missing, "c", patience()),
            Err(LockError::MissingDir(_))
        ));
    }
}
