//! Process plumbing: identifying processes safely, finding keepalived,
//! detaching the refresher.
//!
//! A PID alone is not an identity: PIDs are reused. Everywhere floaty names a
//! process it uses (PID, start time), and it signals through a pidfd opened
//! *before* the identity check, so the check and the signal refer to the same
//! process.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

/// (PID, start time in clock ticks since boot): stable for a process's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: i32,
    pub start_time: u64,
}

/// Fields of /proc/PID/stat after the command name, which may hold spaces
/// and parentheses (hence: split at the *last* `)`).
struct Stat {
    comm: String,
    /// R, S, D, Z, ...: a zombie has exited, whatever its PID says.
    state: char,
    ppid: i32,
    start_time: u64,
}

fn read_stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); ppid is field 4, starttime field 22.
    let state = rest.first()?.chars().next()?;
    let ppid = rest.get(1)?.parse().ok()?;
    let start_time = rest.get(19)?.parse().ok()?;
    Some(Stat {
        comm,
        state,
        ppid,
        start_time,
    })
}

impl ProcessId {
    pub fn current() -> Option<ProcessId> {
        let pid = std::process::id() as i32;
        Self::of(pid)
    }

    /// Whether this process still runs: its PID not reused, and not a
    /// zombie nobody has reaped yet.
    pub fn is_running(self) -> bool {
        read_stat(self.pid).is_some_and(|s| s.start_time == self.start_time && s.state != 'Z')
    }

    pub fn of(pid: i32) -> Option<ProcessId> {
        read_stat(pid).map(|s| ProcessId {
            pid,
            start_time: s.start_time,
        })
    }
}

/// A handle on one specific process, immune to PID reuse.
#[derive(Debug)]
pub struct ProcessHandle {
    pub id: ProcessId,
    fd: OwnedFd,
}

impl ProcessHandle {
    /// Open a pidfd for `id` and confirm it still is that process.
    /// None when the process is gone (or the PID now belongs to another).
    pub fn open(id: ProcessId) -> Option<ProcessHandle> {
        let pid = Pid::from_raw(id.pid)?;
        let fd = pidfd_open(pid, PidfdFlags::empty()).ok()?;
        // The pidfd pins the process that had the PID at open time; check
        // that this is the one we mean *after* opening it.
        if ProcessId::of(id.pid) != Some(id) {
            return None;
        }
        Some(ProcessHandle { id, fd })
    }

    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        pidfd_send_signal(&self.fd, sig).map_err(io::Error::from)
    }

    /// Wait until the process exits or `timeout` passes. True when it exited.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ts = Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: left.subsec_nanos() as i64,
            };
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            match poll(&mut fds, Some(&ts)) {
                Ok(n) if n > 0 => return true,
                Ok(_) => return false,
                Err(rustix::io::Errno::INTR) if !left.is_zero() => continue,
                Err(_) => return false,
            }
        }
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// keepalived processes above us. keepalived's VRRP child forks the notify
/// call (possibly through a wrapper shell); its main process is above that.
/// The refresher watches all of them: when any dies, so must the refresher.
pub fn keepalived_ancestors() -> Vec<ProcessId> {
    let mut found = Vec::new();
    // One read of /proc/PID/stat per level: it names the parent and, for
    // the parent, is the next level (this walk is on the way to a cold
    // MASTER call's first write).
    let Some(mut stat) = read_stat(std::process::id() as i32) else {
        return found;
    };
    for _ in 0..64 {
        if stat.ppid <= 1 {
            break;
        }
        let pid = stat.ppid;
        let Some(parent) = read_stat(pid) else { break };
        if parent.comm == "keepalived" {
            found.push(ProcessId {
                pid,
                start_time: parent.start_time,
            });
        }
        stat = parent;
    }
    found
}

/// keepalived processes in this network namespace (when systemd, not
/// keepalived, started us): any of them exiting means keepalived is gone.
pub fn keepalived_in_this_namespace() -> Vec<ProcessId> {
    let mine = fs::read_link("/proc/self/ns/net").ok();
    all_pids()
        .into_iter()
        .filter_map(|pid| {
            let stat = read_stat(pid)?;
            let here = fs::read_link(format!("/proc/{pid}/ns/net")).ok() == mine;
            (stat.comm == "keepalived" && here).then_some(ProcessId {
                pid,
                start_time: stat.start_time,
            })
        })
        .collect()
}

/// Every PID in /proc; none when /proc cannot be read.
fn all_pids() -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Ask the kernel not to pick the refresher when memory runs out: losing it
/// silently would leave the address on a node that may stop being MASTER.
pub fn protect_from_oom_killer() {
    match fs::write("/proc/self/oom_score_adj", "-1000") {
        Ok(()) => {}
        Err(e) => tracing::warn!("could not set oom_score_adj to -1000: {e}"),
    }
}

/// The parent side of a detached child: it learns whether the child got
/// to "running".
pub enum Forked {
    Parent { child: i32, ready: bool },
    Child { ready: ReadyPipe },
}

/// The child's end of the readiness pipe.
pub struct ReadyPipe(fs::File);

impl ReadyPipe {
    /// Tell the waiting notify call that the refresher is running.
    pub fn signal(mut self) {
        let _ = self.0.write_all(b"1");
    }
}

/// Fork a child in a new session, detached from keepalived's process group
/// (which keepalived SIGKILLs after 1 s on STOP calls).
///
/// Must be called while the process is single-threaded: no tokio runtime,
/// no HTTP client yet.
pub fn fork_detached(ready_timeout: Duration) -> io::Result<Forked> {
    let (read_end, write_end) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    // SAFETY: floaty is single-threaded here (callers fork before starting any
    // runtime or client), so the child may run arbitrary code after fork.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(read_end);
            // A new session: keepalived's kill of the notify call's process
            // group must not take the refresher with it.
            let _ = rustix::process::setsid();
            // Nothing reads the refresher's stdin or stdout; keeping the
            // caller's would hold its pipes open (a wrapper's `| logger`, a
            // test's captured output) for the refresher's whole life.
            // stderr: the caller decides (`logging::let_go_of_stderr`).
            if let Ok(null) = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                let _ = rustix::stdio::dup2_stdin(&null);
                let _ = rustix::stdio::dup2_stdout(&null);
            }
            Ok(Forked::Child {
                ready: ReadyPipe(fs::File::from(write_end)),
            })
        }
        child => {
            drop(write_end);
            let ready = wait_ready(read_end, ready_timeout);
            Ok(Forked::Parent { child, ready })
        }
    }
}

fn wait_ready(fd: OwnedFd, timeout: Duration) -> bool {
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    if !matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0) {
        return false;
    }
    let mut buf = [0u8; 1];
    let mut file = fs::File::from(fd);
    matches!(file.read(&mut buf), Ok(1))
}

/// Resolves when any watched keepalived process exits; never when there is
/// none to watch (floaty run by hand).
pub async fn watch_keepalived(fds: Vec<OwnedFd>) {
    let mut set = tokio::task::JoinSet::new();
    for fd in fds {
        set.spawn(async move {
            // SAFETY: the AsyncFd owns the pidfd, so the descriptor stays
            // open (and is not reused) for as long as it is registered.
            let registered = unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
            };
            match registered {
                Ok(afd) => {
                    let _ = afd.readable().await;
                }
                Err(e) => {
                    tracing::warn!("cannot watch keepalived: {e}");
                    std::future::pending::<()>().await
                }
            }
        });
    }
    if set.join_next().await.is_none() {
        std::future::pending::<()>().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_identity_is_stable() {
        let a = ProcessId::current().unwrap();
        let b = ProcessId::current().unwrap();
        assert_eq!(a, b);
        let fake = ProcessId {
            pid: a.pid,
            start_time: a.start_time + 1,
        };
        assert!(
            ProcessHandle::open(fake).is_none(),
            "a different start time is a different process"
        );
        assert!(ProcessHandle::open(a).is_some());
    }

    #[test]
    fn waits_for_a_child_to_exit() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let id = ProcessId::of(child.id() as i32).unwrap();
        let h = ProcessHandle::open(id).unwrap();
        assert!(!h.wait_exit(Duration::from_millis(1)));
        assert!(h.wait_exit(Duration::from_secs(5)));
        let _ = child.wait();
    }

    #[test]
    fn comm_with_parentheses_and_spaces_is_parsed() {
        // Our own stat always parses; the parser splits at the last ')'.
        assert!(read_stat(std::process::id() as i32).is_some());
    }
}
