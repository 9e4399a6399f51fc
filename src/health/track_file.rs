//! The file keepalived's `track_file` reads, and the state beside it.
//!
//! keepalived watches the file's directory with inotify and reads the file
//! on IN_CLOSE_WRITE or IN_MOVED_TO; a deleted file reads as 0 ("ready"),
//! a recreated directory loses the watch for good. So the file is only
//! ever replaced by rename from a temporary file in the same directory
//! (never seen half-written), never deleted, and the directory is never
//! made: a missing one is an error the caller reports.
//!
//! Several processes write it (the instance's refresher or prober, and
//! `--drain`/`--undrain`), so what they decide from lives in one state
//! file, `NAME.state`, read and rewritten under `flock`: the last measured
//! value and whether the instance is drained. The value written is
//! derived from both, so no writer can undo another's drain.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

/// keepalived's hard FAULT: `value × weight ≤ −254` (weight 1).
pub const DRAINED: i32 = -254;

#[derive(Debug, thiserror::Error)]
pub enum TrackFileError {
    #[error("track file directory {} does not exist; create it before keepalived starts (tmpfiles.d) and never recreate it: keepalived loses its watch on a recreated directory", .0.display())]
    MissingDir(PathBuf),
    #[error("track file directory {} is not safe: {why}; other users could forge this node's health there, use a directory only root can write (e.g. /run/floaty)", .dir.display())]
    UnsafeDir { dir: PathBuf, why: String },
    #[error("cannot write track file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What all writers of one track file agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct State {
    /// What this node's probes last found: 0 or −demote-by.
    pub measured: i32,
    pub drained: bool,
}

impl State {
    /// The number keepalived gets.
    pub fn value(self) -> i32 {
        if self.drained {
            DRAINED
        } else {
            self.measured
        }
    }

    fn parse(text: &str) -> State {
        let mut state = State::default();
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("measured", v)) => state.measured = v.trim().parse().unwrap_or(0),
                Some(("drained", v)) => state.drained = v.trim() == "yes",
                _ => {}
            }
        }
        state
    }

    fn render(self) -> String {
        let drained = if self.drained { "yes" } else { "no" };
        format!("measured {}\ndrained {drained}\n", self.measured)
    }
}

/// One instance's track file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFile {
    path: PathBuf,
}

impl TrackFile {
    pub fn new(path: PathBuf) -> TrackFile {
        TrackFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn dir(&self) -> PathBuf {
        crate::lock::dir_of(&self.path)
    }

    fn state_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".state");
        PathBuf::from(name)
    }

    /// Whether the file can be written here; touches nothing (the checks
    /// before any side effect call it).
    pub fn check(&self) -> Result<(), TrackFileError> {
        let dir = self.dir();
        match crate::lock::check_dir(&dir) {
            Ok(crate::lock::DirState::Ready) => Ok(()),
            Ok(crate::lock::DirState::WillCreate) | Err(crate::lock::LockError::MissingDir(_)) => {
                Err(TrackFileError::MissingDir(dir))
            }
            Err(crate::lock::LockError::UnsafeDir { why, .. }) => {
                Err(TrackFileError::UnsafeDir { dir, why })
            }
            Err(e) => Err(TrackFileError::Io {
                path: dir,
                source: io::Error::other(e.to_string()),
            }),
        }
    }

    /// The state as the writers left it (default when none wrote yet);
    /// reads only, for `--check`.
    pub fn state(&self) -> State {
        std::fs::read_to_string(self.state_path())
            .map(|t| State::parse(&t))
            .unwrap_or_default()
    }

    /// The value keepalived reads now, if the file holds a number.
    pub fn current_value(&self) -> Option<i32> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        text.trim().parse().ok()
    }

    /// Change the state under the lock, then make the track file say what
    /// the new state means (rewritten only when that differs, so an
    /// unchanged value causes no inotify read). Returns the state and
    /// whether the file was rewritten.
    pub fn update(&self, change: impl FnOnce(&mut State)) -> Result<(State, bool), TrackFileError> {
        self.check()?;
        let state_path = self.state_path();
        let io_err = |source| TrackFileError::Io {
            path: state_path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&state_path)
            .map_err(io_err)?;
        // Held until `file` closes, at the end of this function.
        flock(&file, FlockOperation::LockExclusive).map_err(|e| io_err(e.into()))?;
        let mut text = String::new();
        // A state file that is not text (someone wrote junk) reads as the
        // default: rewritten below.
        let _ = file.read_to_string(&mut text);
        let before = State::parse(&text);
        let mut state = before;
        change(&mut state);
        if state != before || text != before.render() {
            rewrite(&mut file, &state.render()).map_err(io_err)?;
        }
        let value = state.value();
        let written = if self.current_value() != Some(value) {
            self.replace(value)?;
            true
        } else {
            false
        };
        Ok((state, written))
    }

    /// `VALUE\n` into a temporary file beside the track file, renamed onto
    /// it: keepalived reads it once, whole, on IN_MOVED_TO.
    fn replace(&self, value: i32) -> Result<(), TrackFileError> {
        let io_err = |source| TrackFileError::Io {
            path: self.path.clone(),
            source,
        };
        crate::replace_file::replace_durably(&self.path, format!("{value}\n").as_bytes(), 0o644)
            .map_err(io_err)?;
        Ok(())
    }
}

fn rewrite(file: &mut File, text: &str) -> io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    #[test]
    fn the_value_is_derived_from_measured_and_drained() {
        let d = dir();
        let t = TrackFile::new(d.path().join("VI_1.health"));
        assert_eq!(t.current_value(), None);
        let (s, written) = t.update(|s| s.measured = -100).unwrap();
        assert!(written);
        assert_eq!((s.value(), t.current_value()), (-100, Some(-100)));
        let (_, written) = t.update(|s| s.drained = true).unwrap();
        assert!(written);
        assert_eq!(t.current_value(), Some(DRAINED));
        // A probe's news does not undo the drain.
        let (_, written) = t.update(|s| s.measured = 0).unwrap();
        assert!(!written);
        assert_eq!(t.current_value(), Some(DRAINED));
        let (s, _) = t.update(|s| s.drained = false).unwrap();
        assert_eq!((s.value(), t.current_value()), (0, Some(0)));
        assert_eq!(std::fs::read_to_string(t.path()).unwrap(), "0\n");
        // Only the track file and its state remain: no temporary left over.
        let mut names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["VI_1.health", "VI_1.health.state"]);
    }

    #[test]
    fn an_unchanged_value_is_not_rewritten() {
        let d = dir();
        let t = TrackFile::new(d.path().join("x"));
        t.update(|s| s.measured = 0).unwrap();
        let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = ino(t.path());
        let (_, written) = t.update(|s| s.measured = 0).unwrap();
        assert!(!written);
        assert_eq!(ino(t.path()), before);
    }

    #[test]
    fn a_missing_or_unsafe_directory_is_an_error_and_nothing_is_made() {
        let d = dir();
        let missing = d.path().join("gone");
        let t = TrackFile::new(missing.join("x"));
        assert!(matches!(
            t.update(|_| {}),
            Err(TrackFileError::MissingDir(_))
        ));
        assert!(!missing.exists());
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let t = TrackFile::new(open.join("x"));
        assert!(matches!(t.check(), Err(TrackFileError::UnsafeDir { .. })));
    }

    #[test]
    fn junk_in_the_state_reads_as_default() {
        assert_eq!(State::parse("\u{0}garbage"), State::default());
        let s = State {
            measured: -7,
            drained: true,
        };
        assert_eq!(State::parse(&s.render()), s);
    }
}
