//! Whether keepalived.conf reads the file floaty writes for an instance,
//! with a weight under which `−demote-by` still means "prefer the peer".
//!
//! A track file nobody reads is the quiet failure of this feature: floaty
//! demotes, keepalived never hears it. `--check` and `--drain` say so.

use std::path::Path;

use crate::keepalived::{KeepalivedConfig, TrackUse};

/// keepalived's FAULT threshold for `value × weight`.
const FAULT: i64 = -254;

/// How keepalived.conf watches `file` for `instance`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watching {
    /// Read with this weight (value × weight is added to the priority).
    Weight(i64),
    /// Not read, or read so that a demotion does not work; why, one line.
    Problem(String),
}

pub fn watching(kconf: &KeepalivedConfig, instance: &str, file: &Path, demote_by: i32) -> Watching {
    let defs: Vec<_> = kconf
        .track_files
        .iter()
        .filter(|d| d.file.as_deref().map(Path::new) == Some(file))
        .collect();
    if defs.is_empty() {
        return Watching::Problem(format!(
            "no track_file in keepalived.conf reads {f}, so keepalived never hears this node's health; add `track_file floaty_{instance} {{ file \"{f}\" weight 1 }}` and `track_file {{ floaty_{instance} }}` in vrrp_instance {instance} (README, \"Health\")",
            f = file.display()
        ));
    }
    let Some(inst) = kconf.instances.iter().find(|i| i.name == instance) else {
        return Watching::Problem(format!("no vrrp_instance {instance} in keepalived.conf"));
    };
    let groups: Vec<_> = kconf
        .sync_groups
        .iter()
        .filter(|g| g.members.iter().any(|m| m == instance))
        .collect();
    let used = |uses: &[TrackUse]| {
        uses.iter().find_map(|u| {
            defs.iter()
                .find(|d| d.name == u.name)
                .map(|d| (u.clone(), *d))
        })
    };
    let (weight, reverse) = if let Some((u, d)) = used(&inst.track_files) {
        (u.weight.unwrap_or(d.weight), u.reverse.unwrap_or(d.reverse))
    } else if let Some((g, (u, d))) = groups
        .iter()
        .find_map(|g| used(&g.track_files).map(|x| (g, x)))
    {
        if !g.tracking_weight {
            // keepalived forces weight 0 on a group's tracking without it.
            (0, u.reverse.unwrap_or(d.reverse))
        } else {
            (u.weight.unwrap_or(d.weight), u.reverse.unwrap_or(d.reverse))
        }
    } else {
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        return Watching::Problem(format!(
            "track_file {} reads {} but vrrp_instance {instance} does not track it; add `track_file {{ {} }}` to the instance",
            names.join(", "),
            file.display(),
            names[0]
        ));
    };
    let weight = if reverse { -weight } else { weight };
    let demoted = -i64::from(demote_by) * weight;
    if weight < 0 {
        Watching::Problem(format!(
            "keepalived tracks {} with a negative weight or `reverse`: a demotion would raise this node's priority; use `weight 1`",
            file.display()
        ))
    } else if weight == 0 {
        Watching::Problem(format!(
            "keepalived tracks {} with weight 0 (or from a sync group without sync_group_tracking_weight): any demotion is a FAULT, not a preference for the peer; use `weight 1`",
            file.display()
        ))
    } else if demoted <= FAULT {
        Watching::Problem(format!(
            "weight {weight} × demote-by {demote_by} reaches keepalived's FAULT (−254): a demotion is a FAULT; use `weight 1` or a smaller demote-by"
        ))
    } else {
        Watching::Weight(weight)
    }
}
