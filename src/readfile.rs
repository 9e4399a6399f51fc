//! Reading a config file that someone may have pointed at the wrong thing.
//!
//! A notify call runs as root with a path from keepalived.conf or the
//! command line. A FIFO there made `read` block for ever (keepalived then
//! kills the call and the failover is lost), and `/dev/zero` grew floaty to
//! gigabytes before anything was checked. So: only regular files, checked
//! on the open descriptor (a path swapped between `stat` and `open` cannot
//! sneak a FIFO in), opened without blocking, and read through a bound.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file was not read. The caller adds the path and what the file
/// was for.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[source] std::io::Error),
    #[error("is {kind}, not a regular file")]
    NotRegular { kind: &'static str },
    #[error("is larger than {}; that cannot be the right file", size(*max))]
    TooLarge { max: u64 },
}

/// The whole content of the regular file at `path`, at most `max` bytes,
/// and its metadata (taken from the open descriptor).
pub fn read_regular(path: &Path, max: u64) -> Result<(Vec<u8>, Metadata), ReadError> {
    // A stat first, so that a device is never even opened: opening one can
    // have effects of its own (a tape rewinds, a modem line goes up).
    let before = std::fs::metadata(path).map_err(ReadError::Io)?;
    check_kind(&before)?;
    let mut file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    check_kind(&meta)?;
    let mut data = Vec::new();
    (&mut file)
        .take(max.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(ReadError::Io)?;
    if data.len() as u64 > max {
        return Err(ReadError::TooLarge { max });
    }
    Ok((data, meta))
}

fn check_kind(meta: &Metadata) -> Result<(), ReadError> {
    let t = meta.file_type();
    let kind = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(ReadError::NotRegular { kind })
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// Makes a FIFO at `path`, for the tests here and in `config/`.
#[cfg(test)]
pub(crate) fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_regular_file_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let e = read_regular(&fifo, 10).unwrap_err();
        assert_eq!(e.to_string(), "is a FIFO, not a regular file");
        let e = read_regular(Path::new("/dev/zero"), 10).unwrap_err();
        assert_eq!(e.to_string(), "is a character device, not a regular file");
        let e = read_regular(dir.path(), 10).unwrap_err();
        assert_eq!(e.to_string(), "is a directory, not a regular file");
        assert!(matches!(
            read_regular(&dir.path().join("nope"), 10),
            Err(ReadError::Io(_))
        ));
    }

    #[test]
    fn reads_up_to_the_bound_and_no_further() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, [b'x'; 1024]).unwrap();
        assert_eq!(read_regular(&file, 1024).unwrap().0.len(), 1024);
        let e = read_regular(&file, 1023).unwrap_err();
        assert_eq!(
            e.to_string(),
            "is larger than 1023 bytes; that cannot be the right file"
        );
        assert!(read_regular(&file, 512)
            .unwrap_err()
            .to_string()
            .contains("512 bytes"));
        assert_eq!(size(1 << 20), "1 MiB");
        assert_eq!(size(64 << 10), "64 KiB");
    }
}
