//! Where lock files may live: only where no other user can write.
//!
//! A lock file is floaty's only memory of who refreshes an instance, and
//! root floaty signals the process it names. In a world-writable directory
//! (`/run/lock`, `/tmp`) any local user can create the file first, hold its
//! flock to block every call, or write a record naming a root process. So
//! the directory must be owned by root or by floaty's own user and be
//! writable by nobody else, every directory above it must be the same or
//! sticky (then nobody else can rename our entry away), and a lock file
//! must be ours and writable by nobody else.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::LockError;

const GROUP_OR_OTHER_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == euid()
}

/// What [`check_dir`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirState {
    Ready,
    /// Missing, but its parent is safe: [`prepare_dir`] will create it.
    WillCreate,
}

/// Whether `dir` may hold lock files. Touches nothing: this runs before
/// any side effect, so a bad directory is reported as the config problem
/// it is.
pub fn check_dir(dir: &Path) -> Result<DirState, LockError> {
    match fs::canonicalize(dir) {
        Ok(real) => {
            check_chain(&real, dir)?;
            Ok(DirState::Ready)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
            let real_parent = parent
                .and_then(|p| fs::canonicalize(p).ok())
                .ok_or_else(|| LockError::MissingDir(dir.to_path_buf()))?;
            check_chain(&real_parent, dir)?;
            Ok(DirState::WillCreate)
        }
        Err(source) => Err(LockError::Open {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// `real` (canonical) itself must be writable by nobody else; the
/// directories above it must be that or sticky.
fn check_chain(real: &Path, shown: &Path) -> Result<(), LockError> {
    for (i, dir) in real.ancestors().enumerate() {
        let meta = fs::metadata(dir).map_err(|source| LockError::Open {
            path: dir.to_path_buf(),
            source,
        })?;
        let unsafe_dir = |why: String| LockError::UnsafeDir {
            dir: shown.to_path_buf(),
            why,
        };
        if !meta.is_dir() {
            return Err(unsafe_dir(format!("{} is not a directory", dir.display())));
        }
        let mode = meta.permissions().mode();
        if !trusted_owner(meta.uid()) {
            return Err(unsafe_dir(format!(
                "{} is owned by uid {}, not by root or floaty's user",
                dir.display(),
                meta.uid()
            )));
        }
        let writable = mode & GROUP_OR_OTHER_WRITE != 0;
        if writable && (i == 0 || mode & STICKY == 0) {
            return Err(unsafe_dir(format!(
                "{} is writable by other users (mode {:04o})",
                dir.display(),
                mode & 0o7777
            )));
        }
    }
    Ok(())
}

/// Create the lock directory when [`check_dir`] said it will be created:
/// `/run` is emptied at every boot, so the default `/run/floaty` is made
/// on first use. Mode 0755 whatever the umask (keepalived's is 0177): lock
/// files stay 0600, and a monitoring user may list the directory.
pub fn prepare_dir(dir: &Path) -> Result<(), LockError> {
    if check_dir(dir)? == DirState::Ready {
        return Ok(());
    }
    match fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => {}
        // Another call made it meanwhile: check it like any other.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(LockError::Open {
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
    match check_dir(dir)? {
        DirState::Ready => Ok(()),
        DirState::WillCreate => Err(LockError::MissingDir(dir.to_path_buf())),
    }
}

/// The directory a lock path lives in.
pub fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An opened lock file is usable only when it is ours and nobody else can
/// write it; anything else was made by someone else and is never trusted
/// (not locked, not read, not acted on).
pub fn check_file(file: &File, path: &Path) -> Result<(u64, u64), LockError> {
    let meta = file.metadata().map_err(|source| LockError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let foreign = |why: String| LockError::Foreign {
        path: path.to_path_buf(),
        why,
    };
    if !meta.is_file() {
        return Err(foreign("it is not a regular file".into()));
    }
    if meta.uid() != euid() {
        return Err(foreign(format!(
            "it is owned by uid {}, not by floaty's user (uid {})",
            meta.uid(),
            euid()
        )));
    }
    let mode = meta.permissions().mode();
    if mode & GROUP_OR_OTHER_WRITE != 0 {
        return Err(foreign(format!(
            "other users can write it (mode {:04o})",
            mode & 0o7777
        )));
    }
    Ok((meta.dev(), meta.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn private_dirs_are_ready_and_missing_ones_will_be_made() {
        let top = tempfile::tempdir().unwrap();
        assert_eq!(check_dir(top.path()).unwrap(), DirState::Ready);
        let sub = top.path().join("floaty");
        assert_eq!(check_dir(&sub).unwrap(), DirState::WillCreate);
        prepare_dir(&sub).unwrap();
        let mode = fs::metadata(&sub).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755);
        assert!(matches!(
            check_dir(&sub.join("a/b")),
            Err(LockError::MissingDir(_))
        ));
    }

    #[test]
    fn writable_by_others_is_refused_even_when_sticky() {
        let top = tempfile::tempdir().unwrap();
        for mode in [0o1777, 0o777, 0o775, 0o757] {
            chmod(top.path(), mode);
            let err = check_dir(top.path()).unwrap_err();
            assert!(
                matches!(err, LockError::UnsafeDir { .. }),
                "{mode:o}: {err}"
            );
            assert!(err.to_string().contains("writable by other users"), "{err}");
            // A directory below one that others can write is no better,
            // unless that one is sticky (like /tmp).
            let sub = top.path().join("x");
            let _ = fs::create_dir(&sub);
            chmod(&sub, 0o700);
            let below = check_dir(&sub);
            assert_eq!(below.is_ok(), mode & STICKY != 0, "{mode:o}: {below:?}");
        }
        chmod(top.path(), 0o700);
    }

    #[test]
    fn files_must_be_ours_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.lock");
        let f = File::create(&path).unwrap();
        chmod(&path, 0o600);
        check_file(&f, &path).unwrap();
        chmod(&path, 0o622);
        let err = check_file(&f, &path).unwrap_err();
        assert!(matches!(err, LockError::Foreign { .. }), "{err}");
    }
}
