//! Every error floaty can end with, and the one place that maps them to an
//! exit status: 2 when the input was wrong and nothing was done, 1 when
//! something failed at run time.

use std::path::{Path, PathBuf};

use crate::cli::UsageError;
use crate::config::ConfigError;
use crate::keepalived::KeepalivedError;
use crate::lock::LockError;
use crate::provider::SpecError;
use crate::text::shown;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Provider(#[from] SpecError),
    #[error(transparent)]
    Keepalived(#[from] KeepalivedError),
    // The name comes from the command line or the FIFO and may hold a
    // newline; escaped so the message stays one line.
    #[error(
        "no vrrp_instance `{}` in {}; check the name keepalived passes (floaty --check lists them)",
        shown(name),
        shown_path(conf)
    )]
    UnknownInstance { name: String, conf: PathBuf },
    #[error(
        "no vrrp_sync_group `{}` in {}; check the name keepalived passes",
        shown(name),
        shown_path(conf)
    )]
    UnknownGroup { name: String, conf: PathBuf },
    #[error(transparent)]
    Fifo(#[from] crate::fifo::FifoError),
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A lock directory other users could write: found before any lock.
    #[error(transparent)]
    LockPlace(LockError),
    /// A track-file directory that is missing or unsafe: found before any
    /// lock.
    #[error(transparent)]
    TrackPlace(crate::health::TrackFileError),
    #[error(transparent)]
    TrackFile(crate::health::TrackFileError),
    #[error("{flag} needs `track-file-template` in {}: without a track file keepalived cannot be told (README, \"Health\")", shown_path(config))]
    NoTrackFile { config: PathBuf, flag: &'static str },
    #[error("cannot fork the refresher: {0}")]
    Fork(#[source] std::io::Error),
    #[error("cannot write the report: {0}")]
    Output(#[source] std::io::Error),
    #[error("self-test failed: {0}")]
    SelfTest(String),
    #[error(transparent)]
    Generate(crate::generate::GenerateError),
    #[error("cannot start: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(
        "metrics-listen: cannot listen on {addr}: {source}; choose a free port or remove the key"
    )]
    MetricsListen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_)
            | Error::Config(_)
            | Error::Provider(_)
            | Error::Keepalived(_)
            | Error::UnknownInstance { .. }
            | Error::UnknownGroup { .. }
            | Error::Fifo(_)
            | Error::LockPlace(_)
            | Error::TrackPlace(_)
            | Error::NoTrackFile { .. } => 2,
            Error::Lock(_)
            | Error::TrackFile(_)
            | Error::Fork(_)
            | Error::Output(_)
            | Error::SelfTest(_)
            | Error::Generate(_)
            | Error::Runtime(_)
            | Error::MetricsListen { .. } => 1,
        }
    }
}

fn shown_path(path: &Path) -> String {
    shown(&path.display().to_string())
}
