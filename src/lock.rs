//! The per-instance lock: at most one floaty works on an instance at a time.
//!
//! The lock is an `flock` on a file named after the instance. A MASTER call
//! forks the refresher, which inherits the lock and keeps it for its life;
//! every later call for the instance must first make that refresher go.
//! The file holds the refresher's identity (PID and start time), so the
//! next call can tell a live refresher from a reused PID and never signals a
//! process that is not ours.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::process::{ProcessHandle, ProcessId};

const RECORD_TAG: &str = "floaty-refresher";

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

fn read_record(file: &mut File) -> Option<Record> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(4096).read_to_string(&mut text).ok()?;
    Record::parse(&text)
}

/// Take the lock for `instance`, stopping the refresher that holds it.
///
/// A holder is signalled only when the lock file names a live process with
/// the recorded start time and this very instance; anything else holding
/// the lock (another notify call in flight) is waited for.
pub fn acquire(path: &Path, instance: &str, patience: Patience) -> Result<InstanceLock, LockError> {
    let mut file = open(path)?;
    let deadline = Instant::now() + patience.timeout;
    let mut last_holder = String::from("holder unknown");
    loop {
        match file.try_lock() {
            Ok(()) => {
                return Ok(InstanceLock {
                    file,
                    path: path.to_path_buf(),
                })
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
        let record = read_record(&mut file).filter(|r| r.instance == instance);
        match record.and_then(|r| ProcessHandle::open(r.id)) {
            Some(holder) => {
                last_holder = format!("refresher pid {}", holder.id.pid);
                stop_refresher(&holder, patience.kill_after, deadline);
            }
            None => {
                // Another notify call is between taking the lock and
                // forking (or finishing); it holds the lock for
                // milliseconds. Poll briefly.
                last_holder = String::from("another floaty call");
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

impl InstanceLock {
    /// Record the refresher that now owns the lock (called in the child).
    pub fn record_owner(&mut self, id: ProcessId, instance: &str) -> Result<(), LockError> {
        let record = Record {
            id,
            instance: instance.to_string(),
        };
        let write = |file: &mut File| -> io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(record.render().as_bytes())
        };
        write(&mut self.file).map_err(|source| LockError::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// Give the lock up for good: clear the record so nobody mistakes a
    /// stale entry for a holder, then unlock.
    pub fn release(self) {
        let _ = self.file.set_len(0);
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
