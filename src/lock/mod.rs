//! The per-instance lock: at most one floaty works on an instance at a time.
//!
//! The lock is an `flock` on a file named after the instance. A MASTER call
//! forks the refresher, which inherits the lock and keeps it for its life;
//! every later call for the instance must first make that refresher go.
//! The file holds the refresher's identity (`record.rs`), so the next call
//! can stop it, and stop it without a valid config; `holder.rs` decides
//! whom floaty may signal (only a provable refresher of that instance),
//! `place.rs` where lock files may live at all (nowhere another user can
//! write). The FIFO daemon takes the same locks for the instances it
//! refreshes but records itself as a daemon: it may be stopped by nobody
//! but its own events and signals, so a notify call waits for it rather
//! than signalling it.
//!
//! keepalived does not wait for notify programs, so two calls for one
//! instance can run at once and reach the lock in any order. The file's
//! ticket line names the call that last took the lock; a call older than
//! that one is stale and gives way without signalling anyone.

mod handoff;
mod holder;
mod place;
mod poke;
mod record;
mod template;

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::ProcessId;

pub use handoff::{request_handoff, take_handoff_request, Handoff};
pub use place::{check_dir, dir_of, DirState};
pub use poke::{poke, Poked};
pub use record::Ticket;
use record::{newer_ticket, HolderKind, Record};
pub use template::{encode_name, LockTemplate};

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
    #[error("lock directory {} does not exist and cannot be created (its parent is missing); create it or change lock-file-template", .0.display())]
    MissingDir(PathBuf),
    #[error("lock directory {} is not safe: {why}; other users could forge or block floaty's locks there, so use a directory only root can write (the default /run/floaty) in lock-file-template", .dir.display())]
    UnsafeDir { dir: PathBuf, why: String },
    #[error("lock file {} is not floaty's: {why}; floaty never trusts it (remove it if no floaty of yours is running)", .path.display())]
    Foreign { path: PathBuf, why: String },
    #[error("lock file {} is a symbolic link; floaty never follows one: remove it", .0.display())]
    Symlink(PathBuf),
    #[error("cannot open lock file {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("lock file {} still held after {:.1}s by {holder}; {hint}", path.display(), .waited.as_secs_f64())]
    Timeout {
        path: PathBuf,
        waited: Duration,
        holder: String,
        hint: &'static str,
    },
    #[error("cannot write lock file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The advice in a timeout error: raising lock-timeout helps a slow
/// holder, not a STOP call, whose time keepalived limits.
const HINT_RAISE: &str = "raise lock-timeout or check that process";
const HINT_STOP: &str =
    "keepalived kills a STOP call after 1 s, so this call gave up in time to say so; check that process";

/// A held instance lock. Dropping it closes the file without `LOCK_UN`:
/// after a fork the refresher shares the same open file description, and an
/// explicit unlock by the exiting notify call would release the refresher's
/// lock too.
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
    path: PathBuf,
    /// Kept on the file's last line through every rewrite.
    ticket: Option<Ticket>,
}

/// How long to wait for the lock, and when to stop asking nicely.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    pub timeout: Duration,
    /// After SIGTERM, wait this long for the holder before SIGKILL.
    pub kill_after: Duration,
    /// Set for STOP and DELETED calls, whose time keepalived limits: the
    /// timeout error then says so instead of advising a longer timeout.
    pub limited_by_keepalived: bool,
}

impl Patience {
    fn timeout_hint(&self) -> &'static str {
        if self.limited_by_keepalived {
            HINT_STOP
        } else {
            HINT_RAISE
        }
    }
}

fn open_options(create: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true)
        .write(create)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    o
}

fn open_error(path: &Path, source: io::Error) -> LockError {
    if source.raw_os_error() == Some(libc::ELOOP) {
        LockError::Symlink(path.to_path_buf())
    } else if source.kind() == io::ErrorKind::NotFound {
        LockError::MissingDir(dir_of(path))
    } else {
        LockError::Open {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Open (creating it in a safe directory) the lock file and check it is
/// ours; returns it with its (device, inode) for proving holders.
fn open(path: &Path) -> Result<(File, (u64, u64)), LockError> {
    place::prepare_dir(&dir_of(path))?;
    let file = open_options(true)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    let id = place::check_file(&file, path)?;
    Ok((file, id))
}

/// The lock file at `path` if it exists and is ours, with its identity and
/// the record it holds (None without a file or a record). Creates, locks
/// and writes nothing: for the calls that only look at the holder (a poke,
/// a handoff request).
fn existing_record(path: &Path) -> Result<Option<Existing>, LockError> {
    let mut file = match open_options(false).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(open_error(path, e)),
    };
    let id = place::check_file(&file, path)?;
    Ok(Record::parse(&read_text(&mut file)).map(|record| Existing { file, id, record }))
}

/// What [`existing_record`] found.
struct Existing {
    file: File,
    /// (device, inode), for proving the holder.
    id: (u64, u64),
    record: Record,
}

fn read_text(file: &mut File) -> String {
    let mut text = String::new();
    if file.rewind().is_ok() {
        let _ = file.take(4096).read_to_string(&mut text);
    }
    text
}

/// Take the lock for `instance`, stopping the refresher that holds it.
///
/// A holder is signalled only when it is provably floaty's refresher of
/// this very instance (`holder.rs`); anything else holding the lock
/// (another notify call in flight, the FIFO daemon) is waited for.
pub fn acquire(path: &Path, instance: &str, patience: Patience) -> Result<InstanceLock, LockError> {
    match acquire_in_order(path, instance, patience, None)? {
        Acquired::Locked(lock) => Ok(lock),
        // Without a ticket of our own no other ticket is newer.
        Acquired::Stale { newer_pid } => Err(LockError::Timeout {
            path: path.to_path_buf(),
            waited: patience.timeout,
            holder: format!("newer call pid {newer_pid}"),
            hint: patience.timeout_hint(),
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
    let started = Instant::now();
    let deadline = started + patience.timeout;
    let (mut file, file_id) = open(path)?;
    let mut last_holder = holder::describe(None, false);
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
                waited: started.elapsed(),
                holder: last_holder,
                hint: patience.timeout_hint(),
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
        let record = Record::parse(&text);
        match record
            .as_ref()
            .and_then(|r| holder::proven_refresher(r, instance, file_id))
        {
            Some(refresher) => {
                last_holder = holder::describe(record.as_ref(), true);
                holder::stop(&refresher, patience.kill_after, deadline);
            }
            None => {
                // Another notify call is between taking the lock and
                // forking (or finishing); it holds the lock for
                // milliseconds. Poll briefly. Or the FIFO daemon holds
                // it: wait, do not signal.
                last_holder = holder::describe(record.as_ref(), false);
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// What [`stop_only`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// No lock file, or nobody holds it.
    Nothing,
    /// The provable refresher with this PID was stopped.
    Refresher { pid: i32 },
    /// Something holds the lock that floaty may not signal; named for the log.
    NotProven { holder: String },
}

/// Stop the refresher a lock file in an untrusted place names — an older
/// floaty's default `/var/lock`, or a world-writable lock-file-template
/// that floaty now refuses for new locks — when it is provably that
/// refresher. Creates, writes and waits for nothing else, so nobody can
/// use such a file to make floaty signal or block.
pub fn stop_only(path: &Path, instance: &str, patience: Patience) -> Result<Stopped, LockError> {
    let deadline = Instant::now() + patience.timeout;
    let mut file = match open_options(false).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Stopped::Nothing),
        Err(e) => return Err(open_error(path, e)),
    };
    let file_id = place::check_file(&file, path)?;
    match file.try_lock() {
        // Nobody holds it; closing the file unlocks it again.
        Ok(()) => return Ok(Stopped::Nothing),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(source)) => {
            return Err(LockError::Open {
                path: path.to_path_buf(),
                source,
            })
        }
    }
    let text = read_text(&mut file);
    let record = Record::parse(&text);
    match record
        .as_ref()
        .and_then(|r| holder::proven_refresher(r, instance, file_id))
    {
        Some(refresher) => {
            holder::stop(&refresher, patience.kill_after, deadline);
            Ok(Stopped::Refresher {
                pid: refresher.id.pid,
            })
        }
        None => Ok(Stopped::NotProven {
            holder: holder::describe(record.as_ref(), false),
        }),
    }
}

/// The instances whose lock files in `dir` say they were started for sync
/// group `group`: a GROUP stop finds its members this way when
/// keepalived.conf no longer names them. Only files that are floaty's and
/// sit exactly where `path_for` puts that instance's lock count.
pub fn group_members(dir: &Path, group: &str, path_for: &dyn Fn(&str) -> PathBuf) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(mut file) = open_options(false).open(&path) else {
            continue;
        };
        if place::check_file(&file, &path).is_err() {
            continue;
        }
        let Some(record) = Record::parse(&read_text(&mut file)) else {
            continue;
        };
        if record.group.as_deref() == Some(group) && path_for(&record.instance) == path {
            found.push(record.instance);
        }
    }
    found.sort();
    found
}

impl InstanceLock {
    /// Record the refresher that now owns the lock (called in the child),
    /// with the group whose event started it.
    pub fn record_owner(
        &mut self,
        id: ProcessId,
        instance: &str,
        group: Option<&str>,
    ) -> Result<(), LockError> {
        self.record_as(HolderKind::Refresher, id, instance, group)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Record a prober as the owner (called in the child).
    pub fn record_prober(
        &mut self,
        id: ProcessId,
        instance: &str,
        group: Option<&str>,
    ) -> Result<(), LockError> {
        self.record_as(HolderKind::Prober, id, instance, group)
    }

    /// The prober becomes the instance's refresher for the MASTER call
    /// holding `ticket` (see [`request_handoff`]): the record says so, and
    /// the ticket orders it against other calls as if that call had taken
    /// the lock itself. False when `ticket` is not newer than the one this
    /// lock already carries (an outdated request: ignored).
    pub fn hand_over(
        &mut self,
        id: ProcessId,
        instance: &str,
        group: Option<&str>,
        ticket: Ticket,
    ) -> Result<bool, LockError> {
        if self.ticket.as_ref().is_some_and(|t| !ticket.newer_than(t)) {
            return Ok(false);
        }
        self.ticket = Some(ticket);
        self.record_owner(id, instance, group)?;
        Ok(true)
    }

    /// Record the FIFO daemon as the holder (it is waited for, never
    /// signalled).
    pub fn record_daemon(&mut self, id: ProcessId, instance: &str) -> Result<(), LockError> {
        self.record_as(HolderKind::Daemon, id, instance, None)
    }

    fn record_as(
        &mut self,
        kind: HolderKind,
        id: ProcessId,
        instance: &str,
        group: Option<&str>,
    ) -> Result<(), LockError> {
        let record = Record {
            kind,
            id,
            instance: instance.to_string(),
            group: group.map(str::to_string),
        };
        self.write_record(record.render())
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
pub(super) mod tests {
    use super::record::ticket;
    use super::*;

    /// Short waits, for the lock module's tests.
    pub(in crate::lock) fn patience() -> Patience {
        Patience {
            timeout: Duration::from_millis(300),
            kill_after: Duration::from_millis(100),
            limited_by_keepalived: false,
        }
    }

    #[test]
    fn lock_is_exclusive_and_times_out_without_signalling_strangers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floaty.VI_1.lock");
        let first = acquire(&path, "VI_1", patience()).unwrap();
        // The file names no refresher: the second caller must wait, not kill.
        let err = acquire(&path, "VI_1", patience()).unwrap_err();
        assert!(matches!(err, LockError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("raise lock-timeout"), "{err}");
        let stop = Patience {
            limited_by_keepalived: true,
            ..patience()
        };
        let err = acquire(&path, "VI_1", stop).unwrap_err();
        assert!(err.to_string().contains("kills a STOP call"), "{err}");
        first.release();
        acquire(&path, "VI_1", patience()).unwrap();
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
        held.record_owner(me, "VI_1", None).unwrap();
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
    fn file_is_private_and_symlinks_and_unsafe_places_are_refused() {
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
        let missing = dir.path().join("nope/deeper/c.lock");
        assert!(matches!(
            acquire(&missing, "c", patience()),
            Err(LockError::MissingDir(_))
        ));
        // One missing level in a safe place is created.
        acquire(&dir.path().join("made/d.lock"), "d", patience()).unwrap();
        let open = tempfile::tempdir().unwrap();
        std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = acquire(&open.path().join("e.lock"), "e", patience()).unwrap_err();
        assert!(matches!(err, LockError::UnsafeDir { .. }), "{err}");
        assert_eq!(std::fs::read_dir(open.path()).unwrap().count(), 0);
    }

    #[test]
    fn stop_only_touches_nothing_it_cannot_prove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floaty.VI_1.lock");
        assert_eq!(
            stop_only(&path, "VI_1", patience()).unwrap(),
            Stopped::Nothing
        );
        assert!(!path.exists(), "stop_only never creates a lock file");
        let mut held = acquire(&path, "VI_1", patience()).unwrap();
        // Names PID 1, which does not hold the file: never signalled.
        held.record_owner(ProcessId::of(1).unwrap(), "VI_1", None)
            .unwrap();
        let got = stop_only(&path, "VI_1", patience()).unwrap();
        assert!(matches!(got, Stopped::NotProven { .. }), "{got:?}");
        held.release();
        assert_eq!(
            stop_only(&path, "VI_1", patience()).unwrap(),
            Stopped::Nothing
        );
    }

    #[test]
    fn group_members_come_from_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let path_for = |name: &str| dir.path().join(format!("floaty.{name}.lock"));
        let me = ProcessId::current().unwrap();
        let mut a = acquire(&path_for("VI_1"), "VI_1", patience()).unwrap();
        a.record_owner(me, "VI_1", Some("G1")).unwrap();
        let mut b = acquire(&path_for("VI_2"), "VI_2", patience()).unwrap();
        b.record_owner(me, "VI_2", None).unwrap();
        // A record at the wrong place for its instance does not count.
        let mut c = acquire(&dir.path().join("stray.lock"), "VI_3", patience()).unwrap();
        c.record_owner(me, "VI_3", Some("G1")).unwrap();
        assert_eq!(group_members(dir.path(), "G1", &path_for), ["VI_1"]);
        assert!(group_members(dir.path(), "G2", &path_for).is_empty());
    }
}
