//! `floaty --check`: what floaty would manage, as keepalived would see it.
//!
//! The JSON is meant for people and for tests that compare floaty's reading
//! of keepalived.conf with keepalived's own (`keepalived -d`).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use std::path::Path;

use crate::error::Error;
use crate::health::watched::{watching, Watching};
use crate::setup;

#[derive(Debug, Serialize)]
struct Report {
    provider: &'static str,
    instances: BTreeMap<String, Vec<String>>,
    /// With `track-file-template` only.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    health: BTreeMap<String, Health>,
}

#[derive(Debug, Serialize)]
struct Health {
    track_file: String,
    /// What keepalived reads now (None: no file yet).
    value: Option<i32>,
    drained: bool,
    /// `watched, weight N` or what is wrong with keepalived.conf's reading.
    keepalived: String,
}

/// Runs every check a notify call or the FIFO daemon would run before a
/// side effect (`setup.rs`), credentials aside: `--check` must work on a
/// build host that has none.
pub fn run(config_path: &Path) -> Result<(), Error> {
    let setup = setup::load(config_path, true)?;
    setup.check_every_instance()?;
    let mut instances = BTreeMap::new();
    let mut health = BTreeMap::new();
    for (name, addresses) in setup.instances() {
        if let (Some(plan), Some(k)) = (setup.health_plan(&name), &setup.kconf) {
            let keepalived = match watching(k, &name, plan.file.path(), setup.cfg.demote_by) {
                Watching::Weight(w) => format!("watched, weight {w}"),
                Watching::Problem(p) => {
                    tracing::warn!(instance = %name, "{p}");
                    p
                }
            };
            let state = plan.file.state();
            health.insert(
                name.clone(),
                Health {
                    track_file: plan.file.path().display().to_string(),
                    value: plan.file.current_value(),
                    drained: state.drained,
                    keepalived,
                },
            );
        }
        instances.insert(name, addresses.iter().map(|a| a.to_string()).collect());
    }
    let report = Report {
        provider: setup.cfg.provider.as_str(),
        instances,
        health,
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &report).map_err(|e| Error::Output(e.into()))?;
    writeln!(out).map_err(Error::Output)
}
