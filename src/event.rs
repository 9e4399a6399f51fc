//! keepalived events: what a notify call receives as argv and what the FIFO
//! carries (cut into lines by `fifo`), parsed into one type.

use std::fmt;

use crate::text::shown;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Instance,
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Master,
    Backup,
    Fault,
    Stop,
    Deleted,
}

impl State {
    /// Every state but MASTER means: this node must not hold the address.
    pub fn is_master(self) -> bool {
        matches!(self, State::Master)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Master => "MASTER",
            State::Backup => "BACKUP",
            State::Fault => "FAULT",
            State::Stop => "STOP",
            State::Deleted => "DELETED",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Instance => "INSTANCE",
            Kind::Group => "GROUP",
        })
    }
}

/// One transition reported by keepalived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    /// The name as keepalived knows it: outer double quotes (which the FIFO
    /// adds) removed, single quotes kept.
    pub name: String,
    pub state: State,
    pub priority: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("expected INSTANCE or GROUP, got `{0}`")]
    BadKind(String),
    #[error("unknown state `{0}` (expected MASTER, BACKUP, FAULT, STOP or DELETED)")]
    BadState(String),
    #[error("priority `{0}` is not a number from 0 to 255")]
    BadPriority(String),
    #[error("the instance or group name is empty")]
    EmptyName,
    #[error("MASTER_RX_LOWER_PRI is an instance's event, not a group's: write INSTANCE NAME MASTER_RX_LOWER_PRI")]
    GroupLowerPriority,
}

impl Event {
    /// Parse the notify arguments `TYPE NAME STATE [PRIORITY]`.
    pub fn from_args(
        kind: &str,
        name: &str,
        state: &str,
        priority: Option<&str>,
    ) -> Result<Event, EventError> {
        let kind = match kind {
            "INSTANCE" => Kind::Instance,
            "GROUP" => Kind::Group,
            other => return Err(EventError::BadKind(shown(other))),
        };
        let state = match state {
            "MASTER" => State::Master,
            "BACKUP" => State::Backup,
            "FAULT" => State::Fault,
            "STOP" => State::Stop,
            "DELETED" => State::Deleted,
            other => return Err(EventError::BadState(shown(other))),
        };
        Ok(Event {
            kind,
            name: checked_name(name)?,
            state,
            priority: parse_priority(priority)?,
        })
    }
}

/// The word keepalived reports in STATE's place when a MASTER hears an
/// advert of lower priority: on the FIFO, and as what
/// `notify_master_rx_lower_pri` users bake into its line.
pub const RX_LOWER_PRI: &str = "MASTER_RX_LOWER_PRI";

/// `INSTANCE NAME MASTER_RX_LOWER_PRI [PRIORITY]`: this node is MASTER and
/// another node claims MASTER with a lower priority. Not a state: it comes
/// about once an advert interval during a split brain, and it is the only
/// sign the true MASTER gets when the split heals (keepalived sends it no
/// new MASTER event, keepalived#1884), so it means "re-assert the address".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowerPriority {
    /// The instance, canonical as in [`Event::name`].
    pub name: String,
    /// This node's priority, when given.
    pub priority: Option<u32>,
}

impl LowerPriority {
    /// Parse `TYPE NAME [PRIORITY]` of a `MASTER_RX_LOWER_PRI` line or call.
    pub fn from_args(
        kind: &str,
        name: &str,
        priority: Option<&str>,
    ) -> Result<LowerPriority, EventError> {
        match kind {
            "INSTANCE" => {}
            "GROUP" => return Err(EventError::GroupLowerPriority),
            other => return Err(EventError::BadKind(shown(other))),
        }
        Ok(LowerPriority {
            name: checked_name(name)?,
            priority: parse_priority(priority)?,
        })
    }
}

fn parse_priority(priority: Option<&str>) -> Result<Option<u32>, EventError> {
    match priority {
        None => Ok(None),
        Some(p) => match p.parse::<u32>() {
            Ok(n) if n <= 255 => Ok(Some(n)),
            _ => Err(EventError::BadPriority(shown(p))),
        },
    }
}

fn checked_name(name: &str) -> Result<String, EventError> {
    let name = canonical_name(name);
    if name.is_empty() {
        return Err(EventError::EmptyName);
    }
    Ok(name.to_string())
}

/// keepalived's FIFO wraps the name it knows in one pair of double quotes;
/// argv does not. A name never contains `"`, so stripping one outer pair
/// makes both spellings equal.
pub fn canonical_name(name: &str) -> &str {
    if name.len() >= 2 && name.starts_with('"') && name.ends_with('"') {
        &name[1..name.len() - 1]
    } else {
        name
    }
}

/// Whether an event name refers to a name declared in keepalived.conf.
///
/// Exact match on the canonical form first; as a fallback, names that differ
/// only by one pair of surrounding single quotes match too, so a hand-typed
/// `floaty CONFIG INSTANCE VI.a MASTER` finds `'VI.a'`.
pub fn name_matches(event_name: &str, declared: &str) -> bool {
    let e = canonical_name(event_name);
    let d = canonical_name(declared);
    e == d || strip_single(e) == strip_single(d)
}

fn strip_single(s: &str) -> &str {
    if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_notify_args() {
        let e = Event::from_args("INSTANCE", "VI_1", "MASTER", Some("150")).unwrap();
        assert_eq!(e.kind, Kind::Instance);
        assert_eq!(e.name, "VI_1");
        assert_eq!(e.state, State::Master);
        assert_eq!(e.priority, Some(150));
        let e = Event::from_args("GROUP", "G1", "STOP", None).unwrap();
        assert_eq!(e.kind, Kind::Group);
        assert_eq!(e.priority, None);
    }

    #[test]
    fn rejects_unknown_words() {
        assert!(matches!(
            Event::from_args("instance", "VI_1", "MASTER", None),
            Err(EventError::BadKind(_))
        ));
        assert!(matches!(
            Event::from_args("INSTANCE", "VI_1", "master", None),
            Err(EventError::BadState(_))
        ));
        assert!(matches!(
            Event::from_args("INSTANCE", "VI_1", "MASTER", Some("x")),
            Err(EventError::BadPriority(_))
        ));
        assert!(matches!(
            Event::from_args("INSTANCE", "\"\"", "MASTER", None),
            Err(EventError::EmptyName)
        ));
    }

    #[test]
    fn lower_priority_is_an_instance_word() {
        let lp = LowerPriority::from_args("INSTANCE", "\"VI_1\"", Some("150")).unwrap();
        assert_eq!((lp.name.as_str(), lp.priority), ("VI_1", Some(150)));
        assert_eq!(
            LowerPriority::from_args("INSTANCE", "VI_1", None)
                .unwrap()
                .priority,
            None
        );
        assert_eq!(
            LowerPriority::from_args("GROUP", "G1", None),
            Err(EventError::GroupLowerPriority)
        );
        assert!(matches!(
            LowerPriority::from_args("INSTANCE", "VI_1", Some("256")),
            Err(EventError::BadPriority(_))
        ));
        assert_eq!(
            LowerPriority::from_args("INSTANCE", "", None),
            Err(EventError::EmptyName)
        );
    }

    #[test]
    fn names_match_however_quoted() {
        assert!(name_matches("\"'VI.a'\"", "'VI.a'"));
        assert!(name_matches("'VI.a'", "'VI.a'"));
        assert!(name_matches("VI.a", "'VI.a'"));
        assert!(name_matches("\"VI_1\"", "VI_1"));
        assert!(!name_matches("VI_2", "VI_1"));
        assert_eq!(canonical_name("\""), "\"");
    }
}
