//! `floaty --check`: what floaty would manage, as keepalived would see it.
//!
//! The JSON is meant for people and for tests that compare floaty's reading
//! of keepalived.conf with keepalived's own (`keepalived -d`).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::config::{Config, ProviderKind};
use crate::error::Error;
use crate::notify;

#[derive(Debug, Serialize)]
struct Report {
    provider: &'static str,
    instances: BTreeMap<String, Vec<String>>,
}

pub fn run(cfg: &Config) -> Result<(), Error> {
    let kconf = notify::load_keepalived(cfg)?;
    let mut instances = BTreeMap::new();
    if let Some(k) = &kconf {
        for inst in &k.instances {
            let addresses = if cfg.managed_addresses.is_empty() {
                inst.addresses()
            } else {
                cfg.managed_addresses.clone()
            };
            instances.insert(
                inst.name.clone(),
                addresses.iter().map(|a| a.to_string()).collect(),
            );
        }
    }
    let report = Report {
        provider: match cfg.provider {
            ProviderKind::Cloudscale => "cloudscale",
            ProviderKind::Exoscale => "exoscale",
        },
        instances,
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &report).map_err(|e| Error::Output(e.into()))?;
    writeln!(out).map_err(Error::Output)
}
