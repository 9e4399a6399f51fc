//! The one error a config can end with, always one line.

use std::path::{Path, PathBuf};

/// A config that cannot be used. Always the user's to fix, so the caller
/// treats every variant as a usage error (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read config file: {source}", shown_path(path))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a file floaty reads at all (a FIFO would block for ever, a
    /// device never end), so it is refused before it is read.
    #[error("{}: {problem}; CONFIG must be floaty's YAML file", shown_path(path))]
    File {
        path: PathBuf,
        #[source]
        problem: crate::readfile::ReadError,
    },
    #[error("{}", render(path, *line, *column, key.as_deref(), message))]
    Invalid {
        path: PathBuf,
        /// 1-based, where serde_yaml knows it.
        line: Option<usize>,
        column: Option<usize>,
        /// Dotted key path such as `back-off.multiplier`.
        key: Option<String>,
        message: String,
    },
}

pub(super) fn render(
    path: &Path,
    line: Option<usize>,
    column: Option<usize>,
    key: Option<&str>,
    message: &str,
) -> String {
    let mut s = format!("{}: ", path.display());
    match (line, column) {
        (Some(l), Some(c)) => s.push_str(&format!("line {l}, column {c}: ")),
        (Some(l), None) => s.push_str(&format!("line {l}: ")),
        _ => {}
    }
    if let Some(key) = key {
        s.push_str(key);
        s.push_str(": ");
    }
    s.push_str(message);
    // Errors are one line, always: a key or value can hold newlines (a
    // quoted or flow-style YAML key can span lines), and a multi-line
    // message breaks every log pipeline and the "one clear line" promise.
    crate::text::shown(&s)
}

impl ConfigError {
    /// An error about `key` that no line can be given for (checks that
    /// span files, such as verify-master against keepalived.conf).
    pub(crate) fn invalid(path: &Path, key: Option<&str>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line: None,
            column: None,
            key: key.map(str::to_string),
            message: message.into(),
        }
    }
}

/// A path in a message, control characters escaped so it stays one line.
pub(super) fn shown_path(path: &Path) -> String {
    crate::text::shown(&path.display().to_string())
}
