//! Reading keepalived.conf the way keepalived 2.2 does.
//!
//! floaty must move exactly the addresses keepalived moves, so this reader
//! copies keepalived's own parser (comments mid-word, includes, `@ID`
//! conditionals, `$NAME` definitions, `~SEQ`/`~LST`, brace splitting, its
//! lenient address parsing) instead of a tidier grammar: where keepalived
//! only logs and carries on, so does this reader (the message lands in
//! [`KeepalivedConfig::warnings`]). Hard errors are kept for what makes the
//! result unusable: an unreadable main file, include loops, runaway
//! expansion, and lines keepalived itself refuses to start with.

mod definitions;
mod files;
mod lexer;
mod parser;
mod reader;
mod sequences;
mod state;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::address::Vip;
pub use parser::{TrackFileDef, TrackUse};

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// keepalived's `-i`; `None` means its default, the host name up to the
    /// first dot, because that is what `@ID` lines are matched against.
    pub config_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Escaped: a path can hold a newline, the message must stay one line.
        write!(f, "{}:{}", shown_path(&self.file), self.line)
    }
}

#[derive(Debug, Clone, Default)]
pub struct KeepalivedConfig {
    pub instances: Vec<Instance>,
    pub sync_groups: Vec<SyncGroup>,
    /// Top-level `track_file` definitions.
    pub track_files: Vec<TrackFileDef>,
    /// What keepalived would log and then ignore, as "file:line: message".
    /// Not yet shown by the binary; kept so `--check` can print them.
    #[allow(dead_code)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// As keepalived knows it (and reports it to notify programs): double
    /// quotes removed, single quotes kept.
    pub name: String,
    pub interface: Option<String>,
    /// `virtual_ipaddress`, after keepalived's family rule: entries of the
    /// other family than the instance's first address are dropped.
    pub vips: Vec<Vip>,
    /// `virtual_ipaddress_excluded` (any family).
    pub excluded: Vec<Vip>,
    /// "file:line" of the `vrrp_instance` line, for error messages.
    pub location: String,
    /// The instance's `track_file { ... }` lines.
    pub track_files: Vec<TrackUse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    pub name: String,
    /// Member instance names as written; names of undefined instances are
    /// dropped, as keepalived does.
    pub members: Vec<String>,
    pub track_files: Vec<TrackUse>,
    /// `sync_group_tracking_weight`: without it a group's tracked file
    /// may only FAULT (weight 0).
    pub tracking_weight: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum KeepalivedError {
    #[error(
        "cannot read keepalived config {}: {source} (check the path and its permissions)",
        shown_path(path)
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: keepalived ignores a config file that is not a regular, non-executable file (use a plain file without execute bits, e.g. chmod a-x)",
        shown_path(path)
    )]
    NotRegularFile { path: PathBuf },
    #[error("{location}: includes nest deeper than {max} files; flatten the includes")]
    IncludeDepth { location: Location, max: usize },
    #[error(
        "{location}: including {} again while it is still being read (include loop); remove the circular include",
        shown_path(path)
    )]
    IncludeLoop { location: Location, path: PathBuf },
    #[error("{location}: {what} expands to more than {max} lines; use a smaller range or fix the self-referencing definition")]
    TooManyLines {
        location: Location,
        what: String,
        max: usize,
    },
    #[error("{location}: `{keyword}` needs a value (keepalived refuses to start with this line)")]
    MissingParameter { location: Location, keyword: String },
    #[error("{location}: {what} expands to more than {max_mib} MiB of text; use a smaller range or fix the self-referencing definition")]
    TooMuchText {
        location: Location,
        what: String,
        max_mib: usize,
    },
    #[error(
        "{}: larger than {max_mib} MiB; that is no keepalived config (check the path and the include patterns)",
        shown_path(path)
    )]
    TooLarge { path: PathBuf, max_mib: u64 },
    #[error("{location}: the config files together are larger than {max_mib} MiB; check the include patterns")]
    TooMuchInput { location: Location, max_mib: u64 },
    #[error(
        "{location}: more than {max} `$NAME` substitutions; fix the self-referencing definition"
    )]
    TooManySubstitutions { location: Location, max: usize },
}

fn shown_path(path: &Path) -> String {
    crate::text::shown(&path.display().to_string())
}

/// keepalived's default config id: the host name cut at the first dot.
pub fn default_config_id() -> String {
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy().into_owned();
    match host.split_once('.') {
        Some((h, _)) => h.to_string(),
        None => host,
    }
}

pub fn load(path: &Path, opts: &LoadOptions) -> Result<KeepalivedConfig, KeepalivedError> {
    let config_id = opts.config_id.clone().unwrap_or_else(default_config_id);
    let mut r = state::Reader::open(path, Some(&config_id))?;
    let mut p = parser::Parser::new(&mut r);
    p.run()?;
    let raw_instances = std::mem::take(&mut p.instances);
    let raw_groups = std::mem::take(&mut p.groups);
    let track_files = std::mem::take(&mut p.track_files);
    let mut warnings = std::mem::take(&mut r.warnings);

    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let instances: Vec<Instance> = raw_instances
        .into_iter()
        .map(|i| Instance {
            name: text(&i.name),
            interface: i.interface.as_deref().map(text),
            vips: i.vips,
            excluded: i.excluded,
            location: i.location,
            track_files: i.track_files,
        })
        .collect();

    let mut sync_groups = Vec::new();
    for g in raw_groups {
        let name = text(&g.name);
        let mut members = Vec::new();
        for m in g.members.unwrap_or_default() {
            let m = text(&m);
            if instances.iter().any(|i| i.name == m) {
                members.push(m);
            } else {
                warnings.push(format!(
                    "{}: sync group {name} names instance {m}, which does not exist - keepalived ignores it",
                    g.location
                ));
            }
        }
        sync_groups.push(SyncGroup {
            name,
            members,
            track_files: g.track_files,
            tracking_weight: g.tracking_weight,
        });
    }
    Ok(KeepalivedConfig {
        instances,
        sync_groups,
        track_files,
        warnings,
    })
}

impl KeepalivedConfig {
    pub fn instance(&self, event_name: &str) -> Option<&Instance> {
        self.instances
            .iter()
            .find(|i| crate::event::name_matches(event_name, &i.name))
    }

    pub fn group(&self, event_name: &str) -> Option<&SyncGroup> {
        self.sync_groups
            .iter()
            .find(|g| crate::event::name_matches(event_name, &g.name))
    }
}

impl Instance {
    /// Every address this instance moves: VIPs then excluded VIPs, in
    /// config order, each once.
    pub fn addresses(&self) -> Vec<Vip> {
        let mut out: Vec<Vip> = Vec::new();
        for v in self.vips.iter().chain(self.excluded.iter()) {
            if !out.contains(v) {
                out.push(*v);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
