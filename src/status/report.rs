//! What `floaty --status` says of the state files: each instance judged
//! like a monitoring plugin would (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)
//! and shown as text or as the plugin's one line with perfdata. Pure: the
//! command that reads the files is `status_command.rs`.

use serde::Serialize;

use super::record::{InstanceRecord, Role, SCHEMA};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Level {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn word(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
            Level::Unknown => "UNKNOWN",
        }
    }

    /// Worst first: CRITICAL, then UNKNOWN, WARNING, OK (the plugin
    /// guidelines' order).
    pub fn rank(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Warning => 1,
            Level::Unknown => 2,
            Level::Critical => 3,
        }
    }
}

/// What one instance's record says, judged.
#[derive(Debug, Serialize)]
pub struct Assessment {
    pub instance: String,
    pub level: Level,
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<InstanceRecord>,
}

/// How long ago `t` was, as "12s ago".
pub fn ago(now: f64, t: f64) -> String {
    let s = (now - t).max(0.0) as u64;
    match s {
        0..=119 => format!("{s}s ago"),
        120..=7199 => format!("{}m ago", s / 60),
        7200..=172_799 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// The judgement, from the record alone (and whether its owner lives).
pub fn assess(
    instance: &str,
    record: Option<InstanceRecord>,
    now: f64,
    alive: impl Fn(i32, u64) -> bool,
) -> Assessment {
    let mut a = Assessment {
        instance: instance.to_string(),
        level: Level::Ok,
        reasons: Vec::new(),
        record: None,
    };
    let raise = |a: &mut Assessment, level: Level, why: String| {
        if level.rank() > a.level.rank() {
            a.level = level;
        }
        a.reasons.push(why);
    };
    let Some(r) = record else {
        raise(
            &mut a,
            Level::Unknown,
            "no state file: floaty has not handled this instance since boot, or state-dir differs"
                .into(),
        );
        return a;
    };
    if r.schema != SCHEMA {
        raise(
            &mut a,
            Level::Unknown,
            format!(
                "state file schema {} (this floaty reads {SCHEMA})",
                r.schema
            ),
        );
        return a;
    }
    let interval = r.refresh_interval_seconds.max(1.0);
    let master = r.keepalived_state.as_deref() == Some("MASTER");
    let owner_alive = match (r.pid, r.pid_start_time) {
        (Some(pid), Some(start)) => alive(pid, start),
        _ => false,
    };
    if master && (r.role != Role::Refresher || !owner_alive) {
        raise(&mut a, Level::Critical, "MASTER without a refresher".into());
    } else if r.role != Role::None && !owner_alive {
        raise(
            &mut a,
            Level::Warning,
            format!(
                "its {} (pid {}) is gone",
                r.role.as_str(),
                r.pid.unwrap_or(0)
            ),
        );
    }
    for addr in &r.addresses {
        let ip = addr.address;
        if addr.consecutive_failures > 0 {
            if let Some(e) = &addr.last_error {
                if e.reason == "auth" {
                    raise(
                        &mut a,
                        Level::Critical,
                        format!("{ip}: credentials rejected: {}", e.message),
                    );
                } else {
                    raise(
                        &mut a,
                        Level::Warning,
                        format!(
                            "{ip}: retrying ({} failure(s), last: {} {})",
                            addr.consecutive_failures, e.reason, e.message
                        ),
                    );
                }
            }
        }
        if !master {
            continue;
        }
        if addr.owner_is_here == Some(false) {
            let since = addr.mismatch_since.unwrap_or(r.updated);
            if now - since > interval {
                raise(
                    &mut a,
                    Level::Critical,
                    format!(
                        "{ip}: MASTER, but the cloud points elsewhere (since {})",
                        ago(now, since)
                    ),
                );
            }
        }
        let last = addr.last_success.or(r.role_since).unwrap_or(r.updated);
        if now - last > 2.0 * interval {
            raise(
                &mut a,
                Level::Warning,
                format!(
                    "{ip}: last success {} (over twice the refresh interval)",
                    ago(now, last)
                ),
            );
        }
    }
    if r.drained == Some(true) {
        a.reasons.push("drained".into());
    } else if r.health_value.is_some_and(|v| v < 0) {
        raise(
            &mut a,
            Level::Warning,
            format!(
                "demoted: track file says {}",
                r.health_value.unwrap_or_default()
            ),
        );
    }
    a.record = Some(r);
    a
}

/// Names shown as keepalived would write them: with quotes when they hold
/// a space or a quote.
fn shown(name: &str) -> String {
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\'')
    {
        format!("{name:?}")
    } else {
        name.to_string()
    }
}

pub fn text(found: &[Assessment], t: f64) -> String {
    let mut out = String::new();
    for a in found {
        let name = shown(&a.instance);
        let Some(r) = &a.record else {
            out.push_str(&format!(
                "{name}: {} - {}\n",
                a.level.word(),
                a.reasons.join("; ")
            ));
            continue;
        };
        let state = r.keepalived_state.as_deref().unwrap_or("no event yet");
        let since = r
            .keepalived_since
            .map(|s| format!(" since {}", ago(t, s)))
            .unwrap_or_default();
        let owner = match (r.role, r.pid) {
            (Role::None, _) => "no refresher".to_string(),
            (role, Some(pid)) => format!("{} pid {pid}", role.as_str()),
            (role, None) => role.as_str().to_string(),
        };
        let health = match (r.health_value, r.drained) {
            (Some(v), Some(true)) => format!(", drained (track file {v})"),
            (Some(v), _) => format!(", health {v}"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{name}: {} - {state}{since}, {owner}{health}\n",
            a.level.word()
        ));
        for addr in &r.addresses {
            let owner = match addr.owner_is_here {
                Some(true) => "points here".to_string(),
                Some(false) => format!(
                    "points elsewhere{}",
                    addr.owner
                        .as_deref()
                        .map(|o| format!(" ({o})"))
                        .unwrap_or_default()
                ),
                None => "not read yet".to_string(),
            };
            let mut bits = vec![owner];
            if let Some(s) = addr.last_success {
                bits.push(format!("last success {}", ago(t, s)));
            }
            if let Some(w) = addr.last_write {
                bits.push(format!("written {}", ago(t, w)));
            }
            if addr.consecutive_failures > 0 {
                bits.push(format!("{} failure(s) in a row", addr.consecutive_failures));
            }
            if let Some(e) = &addr.last_error {
                bits.push(format!(
                    "last error {} ({}): {}",
                    ago(t, e.at),
                    e.reason,
                    e.message
                ));
            }
            out.push_str(&format!("  {}: {}\n", addr.address, bits.join(", ")));
        }
        for why in &a.reasons {
            out.push_str(&format!("  ! {why}\n"));
        }
    }
    out
}

/// The plugin's one line: `FLOATY LEVEL - summary | perfdata`.
pub fn nagios(found: &[Assessment], worst: Level, t: f64) -> String {
    let summary: Vec<String> = found
        .iter()
        .filter(|a| a.level != Level::Ok)
        .map(|a| format!("{}: {}", shown(&a.instance), a.reasons.join(", ")))
        .collect();
    let summary = if summary.is_empty() {
        format!("{} instance(s) OK", found.len())
    } else {
        summary.join("; ")
    };
    let mut perf = Vec::new();
    for a in found {
        let Some(r) = &a.record else { continue };
        for addr in &r.addresses {
            // Perfdata labels are quoted; a quote inside is doubled.
            let label = format!("{} {}", a.instance, addr.address).replace('\'', "''");
            perf.push(format!("'{label} failures'={}", addr.consecutive_failures));
            if let Some(s) = addr.last_success {
                perf.push(format!("'{label} age'={:.0}s", (t - s).max(0.0)));
            }
        }
    }
    let line = crate::text::clip(&summary.replace('\n', " "), 400);
    if perf.is_empty() {
        format!("FLOATY {} - {line}\n", worst.word())
    } else {
        format!("FLOATY {} - {line} | {}\n", worst.word(), perf.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::{AddressRecord, ErrorRecord};
    use super::*;

    const NOW: f64 = 1_000_000.0;

    fn master() -> InstanceRecord {
        let mut a = AddressRecord::new("192.0.2.10".parse().unwrap());
        a.owner_is_here = Some(true);
        a.last_success = Some(NOW - 5.0);
        InstanceRecord {
            schema: SCHEMA,
            instance: "VI_1".into(),
            provider: "cloudscale".into(),
            keepalived_state: Some("MASTER".into()),
            role: Role::Refresher,
            pid: Some(42),
            pid_start_time: Some(7),
            refresh_interval_seconds: 60.0,
            updated: NOW - 5.0,
            addresses: vec![a],
            ..InstanceRecord::default()
        }
    }

    fn level(r: Option<InstanceRecord>, alive: bool) -> Level {
        assess("VI_1", r, NOW, |_, _| alive).level
    }

    #[test]
    fn a_healthy_master_is_ok() {
        assert_eq!(level(Some(master()), true), Level::Ok);
    }

    #[test]
    fn no_state_is_unknown() {
        assert_eq!(level(None, true), Level::Unknown);
        assert_eq!(Level::Unknown.code(), 3);
    }

    #[test]
    fn a_master_whose_refresher_died_is_critical() {
        assert_eq!(level(Some(master()), false), Level::Critical);
        let mut r = master();
        r.role = Role::None;
        assert_eq!(level(Some(r), true), Level::Critical);
    }

    #[test]
    fn the_cloud_elsewhere_longer_than_a_refresh_is_critical() {
        let mut r = master();
        r.addresses[0].owner_is_here = Some(false);
        r.addresses[0].mismatch_since = Some(NOW - 30.0);
        assert_eq!(level(Some(r.clone()), true), Level::Ok, "not yet a refresh");
        r.addresses[0].mismatch_since = Some(NOW - 61.0);
        assert_eq!(level(Some(r), true), Level::Critical);
    }

    #[test]
    fn retrying_is_a_warning_and_rejected_credentials_critical() {
        let mut r = master();
        r.addresses[0].consecutive_failures = 2;
        r.addresses[0].last_error = Some(ErrorRecord {
            reason: "5xx".into(),
            message: "HTTP 503".into(),
            at: NOW,
        });
        assert_eq!(level(Some(r.clone()), true), Level::Warning);
        r.addresses[0].last_error.as_mut().unwrap().reason = "auth".into();
        assert_eq!(level(Some(r), true), Level::Critical);
    }

    #[test]
    fn an_old_last_success_is_a_warning() {
        let mut r = master();
        r.addresses[0].last_success = Some(NOW - 121.0);
        assert_eq!(level(Some(r), true), Level::Warning);
    }

    #[test]
    fn a_backup_without_refresher_is_ok() {
        let mut r = master();
        r.keepalived_state = Some("BACKUP".into());
        r.role = Role::None;
        r.pid = None;
        r.addresses[0].owner_is_here = Some(false);
        assert_eq!(level(Some(r), true), Level::Ok);
    }

    #[test]
    fn names_with_spaces_and_quotes_are_quoted_in_the_text() {
        let mut r = master();
        r.instance = "VI \"a\".1".into();
        let a = assess("VI \"a\".1", Some(r), NOW, |_, _| true);
        let out = text(&[a], NOW);
        assert!(out.starts_with("\"VI \\\"a\\\".1\": OK - MASTER"), "{out}");
        let a = assess("it's", None, NOW, |_, _| true);
        let line = nagios(&[a], Level::Unknown, NOW);
        assert!(
            line.starts_with("FLOATY UNKNOWN - \"it's\": no state file"),
            "{line}"
        );
    }

    #[test]
    fn ages_read_like_a_human_would_say_them() {
        assert_eq!(ago(NOW, NOW - 12.0), "12s ago");
        assert_eq!(ago(NOW, NOW - 600.0), "10m ago");
        assert_eq!(ago(NOW, NOW - 3.0 * 3600.0), "3h ago");
    }
}
