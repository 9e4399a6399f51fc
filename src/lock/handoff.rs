//! A MASTER call handing the instance to the prober that holds its lock
//! (`crate::handoff` is the prober's side): the request file beside the
//! lock, the signal, and the wait for the prober's new record.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::record::{HolderKind, Record, Ticket};
use super::{existing_record, holder, open_error, open_options, place, read_text, LockError};

/// What [`request_handoff`] got.
#[derive(Debug, PartialEq, Eq)]
pub enum Handoff {
    /// The prober with this PID refreshes now, under the caller's ticket.
    Done { pid: i32 },
    /// No prober of this instance holds the lock (or it did not answer in
    /// time): take the lock the usual way.
    NoProber,
}

/// Where a MASTER call leaves its ticket for the prober it hands to.
fn request_path(lock: &Path) -> PathBuf {
    let mut name = lock.as_os_str().to_owned();
    name.push(".master");
    PathBuf::from(name)
}

/// A MASTER call hands the instance to the prober that holds its lock
/// instead of stopping it and forking a cold refresher: the prober's
/// connection to the API is open, so the first write goes out on it.
/// The ticket goes into a request file beside the lock (as safe as the
/// lock: same directory, ours, 0600), the prober is sent SIGUSR2, and the
/// call waits up to `wait` for the lock record to name that process as
/// refresher with this ticket.
pub fn request_handoff(
    path: &Path,
    instance: &str,
    ticket: &Ticket,
    wait: Duration,
) -> Result<Handoff, LockError> {
    let deadline = Instant::now() + wait;
    let Some(super::Existing {
        mut file,
        id: file_id,
        record,
    }) = existing_record(path)?
    else {
        return Ok(Handoff::NoProber);
    };
    if file.try_lock().is_ok() {
        return Ok(Handoff::NoProber); // nobody holds it
    }
    if record.kind != HolderKind::Prober {
        return Ok(Handoff::NoProber);
    }
    let Some(prober) = holder::proven_refresher(&record, instance, file_id) else {
        return Ok(Handoff::NoProber);
    };
    let request = request_path(path);
    // Opened like a lock file (ours, 0600, never through a symlink).
    let mut req = open_options(true)
        .open(&request)
        .map_err(|e| open_error(&request, e))?;
    place::check_file(&req, &request)?;
    let written = req
        .set_len(0)
        .and_then(|()| req.write_all(ticket.render().as_bytes()));
    if let Err(source) = written {
        return Err(LockError::Write {
            path: request,
            source,
        });
    }
    if prober.signal(rustix::process::Signal::USR2).is_err() {
        let _ = std::fs::remove_file(&request);
        return Ok(Handoff::NoProber);
    }
    loop {
        let text = read_text(&mut file);
        let done = Record::parse(&text).is_some_and(|r| {
            r.kind == HolderKind::Refresher && r.id == record.id && r.instance == instance
        }) && Ticket::parse(&text).as_ref() == Some(ticket);
        if done {
            return Ok(Handoff::Done { pid: record.id.pid });
        }
        if Instant::now() >= deadline {
            let _ = std::fs::remove_file(&request);
            return Ok(Handoff::NoProber);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// In the prober, on SIGUSR2: the ticket a MASTER call left (the request
/// is consumed). Only a file of ours beside our own lock counts.
pub fn take_handoff_request(lock: &Path) -> Option<Ticket> {
    let path = request_path(lock);
    let mut file = open_options(false).open(&path).ok()?;
    place::check_file(&file, &path).ok()?;
    let text = read_text(&mut file);
    let _ = std::fs::remove_file(&path);
    Ticket::parse(&text)
}
