//! What SREs see: each instance's state as its owner last knew it, for
//! `floaty --status` and Prometheus (keepalived-health.md §4).
//!
//! `record.rs` the state file's schema, `recorder.rs` the owner's live
//! copy and its writes, `metrics.rs` the Prometheus text, `report.rs`
//! `--status` and its monitoring-plugin exit code.
//!
//! One writer per instance at any time, the lock's holder: the refresher
//! or prober (notify mode), the notify call that stopped it and left the
//! instance without one, or the FIFO daemon. A new owner carries the
//! counters on from the file its predecessor left.

pub mod metrics;
pub mod record;
pub mod recorder;
pub mod report;

use std::path::{Path, PathBuf};

pub use recorder::Recorder;

/// Where the files go (`state-dir`, `metrics-dir`); checked at load.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusPlan {
    pub state_dir: Option<PathBuf>,
    pub metrics_dir: Option<PathBuf>,
}

impl StatusPlan {
    pub fn state_path(&self, instance: &str) -> Option<PathBuf> {
        self.state_dir
            .as_deref()
            .map(|d| state_path_in(d, instance))
    }

    pub fn metrics_path(&self, instance: &str) -> Option<PathBuf> {
        self.metrics_dir.as_deref().map(|d| {
            d.join(format!(
                "floaty_{}.prom",
                crate::lock::encode_name(instance)
            ))
        })
    }
}

/// `DIR/NAME.json`, the name encoded like a lock file's.
pub fn state_path_in(dir: &Path, instance: &str) -> PathBuf {
    dir.join(format!("{}.json", crate::lock::encode_name(instance)))
}
