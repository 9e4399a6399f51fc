//! Reading keepalived's notify FIFO into lines for the daemon: from
//! systemd's descriptor or by path, reopened when the writer goes away or
//! keepalived recreates the FIFO, lines cut at the length limit.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::text::{LineSplitter, Piece};

/// How often the FIFO path is checked for having been replaced by a new
/// FIFO while we still read the old one.
const REPLACED_CHECK: Duration = Duration::from_millis(500);

/// Waiting for the FIFO path to (re)appear.
const REOPEN_EVERY: Duration = Duration::from_millis(50);

/// What the FIFO reader hands the daemon.
pub(super) enum Input {
    Line(Vec<u8>),
    TooLong,
}

/// Read the FIFO for ever: the systemd descriptor first, then the path,
/// reopened whenever the writer goes away or the path names a new FIFO.
///
/// Once `closing` is set (SIGTERM) it never reopens: on a keepalived
/// reload the new FIFO belongs to the FIFO program keepalived starts next,
/// and a second reader would steal its lines.
pub(super) async fn read_fifo(
    mut first: Option<OwnedFd>,
    path: PathBuf,
    tx: mpsc::Sender<Input>,
    closing: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 8192];
    loop {
        if closing.load(Ordering::Relaxed) {
            return;
        }
        let receiver = match first.take() {
            Some(fd) => match pipe::Receiver::from_owned_fd(fd) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("the descriptor from systemd is not a readable FIFO ({e}); opening {} instead", path.display());
                    continue;
                }
            },
            None => open_fifo(&path).await,
        };
        let identity = file_id(receiver.as_fd());
        let opened = Instant::now();
        let mut got_data = false;
        let mut lines = LineSplitter::new();
        let mut check = tokio::time::interval(REPLACED_CHECK);
        let mut receiver = receiver;
        loop {
            tokio::select! {
                read = receiver.read(&mut buf) => match read {
                    Ok(0) => {
                        tracing::debug!("FIFO: end of file (the writer closed it); reopening");
                        break;
                    }
                    Ok(n) => {
                        got_data = true;
                        for piece in lines.push(&buf[..n]) {
                            let input = match piece {
                                Piece::Line(l) => Input::Line(l),
                                Piece::TooLong => Input::TooLong,
                            };
                            if tx.send(input).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::warn!("FIFO: read failed ({e}); reopening");
                        break;
                    }
                },
                _ = check.tick() => {
                    let now = std::fs::metadata(&path).ok().map(|m| {
                        use std::os::unix::fs::MetadataExt;
                        (m.dev(), m.ino())
                    });
                    if now.is_some() && now != identity {
                        tracing::info!("FIFO: {} is a new FIFO now (keepalived reloaded); reopening", path.display());
                        break;
                    }
                }
            }
        }
        if lines.pending() > 0 {
            tracing::warn!(
                "FIFO: dropped an unfinished line of {} bytes",
                lines.pending()
            );
        }
        // Never spin: a FIFO that ends at once without data waits a little.
        if !got_data && opened.elapsed() < REOPEN_EVERY {
            tokio::time::sleep(REOPEN_EVERY).await;
        }
    }
}

/// Open the FIFO by path, waiting for it to exist; never blocks on a
/// missing writer (tokio opens O_RDONLY|O_NONBLOCK).
async fn open_fifo(path: &Path) -> pipe::Receiver {
    let mut last_warned: Option<Instant> = None;
    loop {
        match pipe::OpenOptions::new().open_receiver(path) {
            Ok(r) => return r,
            Err(e) => {
                if last_warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    let what = if e.kind() == std::io::ErrorKind::NotFound {
                        "does not exist (yet)".to_string()
                    } else {
                        format!("cannot be opened: {e}")
                    };
                    tracing::warn!("FIFO {} {what}; retrying", path.display());
                    last_warned = Some(Instant::now());
                }
                tokio::time::sleep(REOPEN_EVERY).await;
            }
        }
    }
}

fn file_id(fd: std::os::fd::BorrowedFd<'_>) -> Option<(u64, u64)> {
    rustix::fs::fstat(fd).ok().map(|s| (s.st_dev, s.st_ino))
}
