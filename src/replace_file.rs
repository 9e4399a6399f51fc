//! Replacing a file whole: written to a temporary file in the same
//! directory, then renamed onto it. Readers that poll (node_exporter's
//! textfile collector, `floaty --status`) or watch (keepalived's inotify on
//! a `track_file`) never see it half-written, and the file never goes
//! missing in between.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` to `path` by rename, the file mode `mode` (before umask).
/// The temporary file is `.NAME.PID.tmp` beside it: node_exporter reads
/// only `*.prom`, keepalived only the tracked name, and two processes
/// never share one. Not synced to disk: what this writes describes a
/// running process and means nothing after a crash (see
/// [`replace_durably`]).
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_then_rename(path, bytes, mode, false)
}

/// [`replace`], with the data synced before the rename: for the track
/// file, whose value keepalived acts on.
pub fn replace_durably(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_then_rename(path, bytes, mode, true)
}

fn write_then_rename(path: &Path, bytes: &[u8], mode: u32, durable: bool) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    let written = f
        .write_all(bytes)
        .and_then(|()| if durable { f.sync_data() } else { Ok(()) });
    drop(f);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.prom");
        replace(&p, b"one\n", 0o644).unwrap();
        replace(&p, b"two\n", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two\n");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_creation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("gone").join("x.prom");
        assert!(replace(&p, b"x", 0o644).is_err());
        assert!(!d.path().join("gone").exists());
    }
}
