//! The two bits of systemd's protocol the FIFO daemon speaks, written out
//! rather than pulled in as a library: taking the FIFO systemd opened for
//! us (`sd_listen_fds`) and saying "ready" (`sd_notify`). Both are a few
//! lines and documented in sd_listen_fds(3) and sd_notify(3).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// The first descriptor systemd passed to this process, if any.
///
/// Honoured only when `LISTEN_PID` names this process: the variables are
/// inherited by children, which must not take a descriptor meant for their
/// parent. The variables are removed either way, so commands run by rules
/// do not see them. Call while single-threaded (before any runtime starts):
/// it changes the environment.
pub fn take_listen_fd() -> Option<OwnedFd> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    let count = listen_count(pid.as_deref(), fds.as_deref(), std::process::id())?;
    if count > 1 {
        tracing::warn!(
            "systemd passed {count} descriptors; using the first, a FIFO is all floaty needs"
        );
    }
    // Not ours to keep across exec: rules' commands must not inherit it.
    let flags = unsafe { libc::fcntl(LISTEN_FDS_START, libc::F_GETFD) };
    if flags < 0 {
        return None;
    }
    unsafe { libc::fcntl(LISTEN_FDS_START, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
    // SAFETY: systemd hands fd 3 to this process (LISTEN_PID checked); it
    // is open (F_GETFD succeeded) and nothing else in floaty owns it.
    Some(unsafe { OwnedFd::from_raw_fd(LISTEN_FDS_START) })
}

/// How many descriptors `LISTEN_PID`/`LISTEN_FDS` give process `me`.
fn listen_count(pid: Option<&str>, fds: Option<&str>, me: u32) -> Option<i32> {
    let pid: u32 = pid?.trim().parse().ok()?;
    if pid != me {
        return None;
    }
    let count: i32 = fds?.trim().parse().ok()?;
    (count >= 1).then_some(count)
}

/// Send `state` (e.g. `READY=1`) to systemd's notification socket, if
/// `NOTIFY_SOCKET` is set. Ok(false) when there is none to talk to.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => notify_to(&path.to_string_lossy(), state).map(|()| true),
        None => Ok(false),
    }
}

fn notify_to(path: &str, state: &str) -> io::Result<()> {
    let addr = match path.strip_prefix('@') {
        // Abstract namespace: systemd writes the leading NUL as `@`.
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None if path.starts_with('/') => SocketAddr::from_pathname(path)?,
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("NOTIFY_SOCKET={path:?} is neither a path nor @abstract"),
            ))
        }
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_reaches_path_and_abstract_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        notify_to(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("floaty-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(&format!("@{name}"), "STOPPING=1").unwrap();
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");

        assert!(notify_to("relative", "READY=1").is_err());
    }

    #[test]
    fn listen_fds_only_for_this_process() {
        assert_eq!(listen_count(Some("42"), Some("1"), 42), Some(1));
        assert_eq!(listen_count(Some("42"), Some("2"), 42), Some(2));
        assert_eq!(listen_count(Some("1"), Some("1"), 42), None);
        assert_eq!(listen_count(Some("42"), Some("0"), 42), None);
        assert_eq!(listen_count(None, Some("1"), 42), None);
        assert_eq!(listen_count(Some("x"), Some("1"), 42), None);
    }
}
