//! `floaty --drain CONFIG [INSTANCE...]` and `--undrain`: the maintenance
//! switch an SRE reaches for instead of stopping keepalived.
//!
//! A drain writes −254 into the instance's track file: keepalived goes
//! FAULT at once and sends a priority-0 advert, so the peer takes over in
//! about 0.6 s (keepalived-health.md §1.2), `nopreempt` or not. The drain
//! is kept in the file's state (`track_file.rs`), so a refresher or prober
//! starting, probing or restarting keeps it; `/run` does not survive a
//! reboot, and neither does a drain. Undrain goes back to what this node's
//! probes last measured.

use std::io::Write;
use std::path::Path;

use super::watched::{watching, Watching};
use crate::error::Error;
use crate::setup;

pub fn run(config_path: &Path, names: &[String], drain: bool) -> Result<(), Error> {
    // Credentials are not needed to write a local file: a node whose token
    // was revoked must still be drainable.
    let setup = setup::load(config_path, true)?;
    let cfg = &setup.cfg;
    if cfg.track_file_template.is_none() {
        return Err(Error::NoTrackFile {
            config: cfg.path.clone(),
            flag: if drain { "--drain" } else { "--undrain" },
        });
    }
    let names: Vec<String> = if names.is_empty() {
        setup.instances().into_iter().map(|(n, _)| n).collect()
    } else {
        names.to_vec()
    };
    // Every name and every directory checked before the first write.
    let mut plans = Vec::new();
    for name in &names {
        let work = setup.instance_work(name, false)?;
        if let Some(plan) = setup.health_plan(&work.instance) {
            plans.push((work.instance, plan));
        }
    }
    let mut out = std::io::stdout().lock();
    for (instance, plan) in plans {
        let (state, _) = plan
            .file
            .update(|s| s.drained = drain)
            .map_err(Error::TrackFile)?;
        let what = if drain {
            "drained: keepalived goes FAULT, the peer takes over"
        } else {
            "undrained: back to what this node measured"
        };
        tracing::info!(instance = %instance, track_file = %plan.file.path().display(),
            value = state.value(), "{}", if drain { "drained" } else { "undrained" });
        writeln!(
            out,
            "{instance}: {what} ({} = {})",
            plan.file.path().display(),
            state.value()
        )
        .map_err(Error::Output)?;
        if let Some(k) = &setup.kconf {
            if let Watching::Problem(p) = watching(k, &instance, plan.file.path(), cfg.demote_by) {
                tracing::warn!(instance = %instance, "{p}");
            }
        }
    }
    Ok(())
}
