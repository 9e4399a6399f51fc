//! `floaty --check`: what floaty would manage, as keepalived would see it.
//!
//! The JSON is meant for people and for tests that compare floaty's reading
//! of keepalived.conf with keepalived's own (`keepalived -d`).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use std::path::Path;

use crate::config::ProviderKind;
use crate::error::Error;
use crate::setup;

#[derive(Debug, Serialize)]
struct Report {
    provider: &'static str,
    instances: BTreeMap<String, Vec<String>>,
}

/// Runs every check a notify call or the FIFO daemon would run before a
/// side effect (`setup.rs`), credentials aside: `--check` must work on a
/// build host that has none.
pub fn run(config_path: &Path) -> Result<(), Error> {
    let setup = setup::load(config_path, true)?;
    setup.check_every_instance()?;
    let mut instances = BTreeMap::new();
    for (name, addresses) in setup.instances() {
        instances.insert(name, addresses.iter().map(|a| a.to_string()).collect());
    }
    let report = Report {
        provider: match setup.cfg.provider {
            ProviderKind::Cloudscale => "cloudscale",
            ProviderKind::Exoscale => "exoscale",
        },
        instances,
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &report).map_err(|e| Error::Output(e.into()))?;
    writeln!(out).map_err(Error::Output)
}
