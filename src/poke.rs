//! One `MASTER_RX_LOWER_PRI` notify call: keepalived's
//! `notify_master_rx_lower_pri` runs `floaty CONFIG INSTANCE NAME
//! MASTER_RX_LOWER_PRI` (that script gets no arguments appended, so they
//! are written into its line) about once a second while this MASTER hears
//! a lower-priority one. The refresher running for the instance is asked
//! to re-assert the address (`reassert.rs`); nothing else happens.
//!
//! Cheap, because it comes every second: no fork, no runtime, no HTTP
//! request, and no lock taken (taking it would stop the refresher). The
//! input is checked as for every call before anything is signalled.

use std::path::Path;

use crate::cli::Options;
use crate::error::Error;
use crate::event::LowerPriority;
use crate::lock::{self, Poked};
use crate::setup;

pub fn run(config_path: &Path, event: &LowerPriority, opts: &Options) -> Result<(), Error> {
    let setup = setup::load(config_path, opts.dry_run)?;
    // Finds unknown names and unsafe lock directories; makes no guard.
    let work = setup.instance_work(&event.name, false)?;
    let instance = crate::text::shown(&work.instance);
    let instance = instance.as_str();
    let priority = event.priority.map(i64::from).unwrap_or(-1);
    // keepalived repeats the event every second: the refresher says at
    // info when a burst starts, these calls only at debug.
    match lock::poke(&work.lock_path, &work.instance)? {
        Poked::Refresher { pid } => tracing::debug!(instance, priority, pid,
            "keepalived event MASTER_RX_LOWER_PRI: asked the refresher to re-assert the address"),
        Poked::Nothing => tracing::info!(instance, priority,
            "keepalived event MASTER_RX_LOWER_PRI, but no refresher runs for this instance: nothing to re-assert"),
        Poked::Daemon { pid } => tracing::debug!(instance, priority, pid,
            "keepalived event MASTER_RX_LOWER_PRI: the FIFO daemon refreshes this instance and acts on the FIFO's own line; nothing signalled"),
        Poked::Deaf { pid } => tracing::warn!(instance, priority, pid,
            "keepalived event MASTER_RX_LOWER_PRI: the refresher does not take re-assert requests (started by an older floaty?); left alone, its next refresh repairs the address"),
        Poked::NotProven { holder } => tracing::info!(instance, priority,
            "keepalived event MASTER_RX_LOWER_PRI: the lock is held by {holder}; nothing signalled"),
    }
    Ok(())
}
