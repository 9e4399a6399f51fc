//! The stop road: BACKUP, FAULT, STOP and DELETED always stop what runs
//! for that name, whatever else is wrong.
//!
//! A refresher left running on a node that is no longer MASTER moves the
//! address back from the new MASTER every refresh (split brain). So a stop
//! must not depend on anything that may have broken since the MASTER call:
//! floaty.yml may have gained a typo, keepalived.conf may no longer name
//! the instance (a reload that removes it sends FAULT or DELETED for it).
//! All a stop needs is the lock path, and the lock file's record says the
//! rest (who holds it, for which instance and sync group):
//! - the lock-file-template comes from floaty.yml when that key alone can
//!   be read (`config::stop_settings`), else the default;
//! - an INSTANCE event's name is the instance; a GROUP event's members are
//!   keepalived.conf's where it can be read, plus every lock file whose
//!   record says it was started for that group;
//! - with the default template, the default of older floaty versions
//!   (`/var/lock`) is looked at too, so an upgrade cannot strand a
//!   refresher.
//!
//! When even that is unknowable — the template was changed in a file that
//! no longer parses as YAML — the refresher is not found; it still stops
//! writing once this node loses the VIPs (verify-master) and ends with
//! keepalived. docs/RELIABILITY.md says so.

use std::time::{Duration, Instant};

use crate::config::{self, LockTemplate, StopSettings};
use crate::error::Error;
use crate::event::{Event, Kind, State};
use crate::keepalived;
use crate::lock::{self, Acquired, LockError, Patience, Stopped, Ticket};

/// keepalived SIGKILLs a STOP call's process group 1 s after starting it:
/// a STOP or DELETED call gives up on the lock this long after it started,
/// in time to log why (and to run its rules, `notify.rs`).
const STOP_LOCK_BUDGET: Duration = Duration::from_millis(600);

/// On STOP, the old refresher gets this long after SIGTERM before SIGKILL;
/// it normally exits within milliseconds.
const STOP_KILL_AFTER: Duration = Duration::from_millis(250);

/// How long a call for `state` waits for an instance's lock. `started` is
/// when the call began: a STOP's budget counts from there.
pub fn patience(state: State, lock_timeout: Duration, started: Instant) -> Patience {
    match state {
        State::Stop | State::Deleted => Patience {
            timeout: STOP_LOCK_BUDGET
                .saturating_sub(started.elapsed())
                .min(lock_timeout),
            kill_after: STOP_KILL_AFTER.min(lock_timeout / 2),
            limited_by_keepalived: true,
        },
        State::Master | State::Backup | State::Fault => Patience {
            timeout: lock_timeout,
            kill_after: lock_timeout / 2,
            limited_by_keepalived: false,
        },
    }
}

/// Where to look for the refreshers to stop.
pub struct Places {
    pub template: LockTemplate,
    /// Also look where older floaty versions put locks by default.
    pub legacy: Option<LockTemplate>,
    /// Where the stopping call records that the instance has no owner now;
    /// unknown on the road without a valid config.
    pub status: Option<crate::status::StatusPlan>,
}

impl Places {
    pub fn from_settings(settings: &StopSettings) -> Places {
        Places {
            template: settings.lock_file_template.clone(),
            legacy: legacy_template(settings.template_from_file),
            status: None,
        }
    }
}

/// The old default, for a config that does not set lock-file-template.
pub fn legacy_template(template_from_file: bool) -> Option<LockTemplate> {
    if template_from_file {
        return None;
    }
    LockTemplate::new(config::LEGACY_LOCK_FILE_TEMPLATE).ok()
}

/// The instances a stop for `event` concerns when the checked setup could
/// not say: the name itself, or the group's members from keepalived.conf
/// (when it still reads) and from the lock records.
pub fn names_without_setup(event: &Event, settings: &StopSettings) -> Vec<String> {
    match event.kind {
        Kind::Instance => vec![event.name.clone()],
        Kind::Group => {
            let opts = keepalived::LoadOptions {
                config_id: settings.keepalived_config_id.clone(),
            };
            let known = keepalived::load(&settings.keepalived_config, &opts)
                .ok()
                .and_then(|k| k.group(&event.name).map(|g| g.members.clone()))
                .unwrap_or_default();
            with_recorded_members(event, known, &settings.lock_file_template)
        }
    }
}

/// `known`, plus (for a GROUP event) every instance whose lock record says
/// it was started for this group: members removed from the group since.
pub fn with_recorded_members(
    event: &Event,
    mut known: Vec<String>,
    template: &LockTemplate,
) -> Vec<String> {
    if event.kind == Kind::Group {
        let probe = template.path_for("x");
        let dir = lock::dir_of(&probe);
        for name in lock::group_members(&dir, &event.name, &|n| template.path_for(n)) {
            if !known.contains(&name) {
                known.push(name);
            }
        }
    }
    known
}

/// Stop every instance in `names`, all at once (a group's members share
/// keepalived's one second on STOP). Returns the failures.
pub fn stop_all(
    names: &[String],
    places: &Places,
    patience: Patience,
    ticket: Option<Ticket>,
    state: State,
) -> Vec<Error> {
    if names.len() == 1 {
        return stop_one(&names[0], places, patience, ticket, state)
            .err()
            .into_iter()
            .collect();
    }
    // Threads are safe here: a stop never forks.
    std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                let ticket = ticket.clone();
                scope.spawn(move || stop_one(name, places, patience, ticket, state))
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| match h.join() {
                Ok(result) => result.err(),
                Err(_) => Some(Error::Runtime(std::io::Error::other(
                    "a stop thread failed",
                ))),
            })
            .collect()
    })
}

/// Stop what runs for one instance: through its lock when the lock's
/// directory is safe, else (a place floaty no longer trusts) only a
/// provable refresher; and at the legacy place.
fn stop_one(
    instance: &str,
    places: &Places,
    patience: Patience,
    ticket: Option<Ticket>,
    state: State,
) -> Result<(), Error> {
    if let Some(legacy) = &places.legacy {
        stop_legacy(instance, legacy, patience);
    }
    let path = places.template.path_for(instance);
    // The name may come straight from argv: one log line whatever it holds.
    let name = crate::text::shown(instance);
    let instance_shown = name.as_str();
    // The lock's own checks of its place decide the road.
    match lock::acquire_in_order(&path, instance, patience, ticket) {
        Ok(Acquired::Locked(lock)) => {
            if let Some(plan) = &places.status {
                crate::status::Recorder::left_without_owner(
                    plan,
                    instance,
                    &state.to_string(),
                    "notify",
                );
            }
            tracing::info!(instance = instance_shown, state = %state, "refresher stopped, lock released");
            lock.release();
            Ok(())
        }
        Ok(Acquired::Stale { newer_pid }) => {
            tracing::info!(instance = instance_shown, state = %state, newer_pid,
                "a later notify call has already handled this instance; this event is outdated and changes nothing");
            Ok(())
        }
        Err(LockError::MissingDir(_)) => {
            tracing::info!(instance = instance_shown, state = %state, "no lock directory, so no refresher to stop");
            Ok(())
        }
        Err(e @ LockError::UnsafeDir { .. }) => {
            stop_untrusted(instance, &path, patience, false);
            Err(Error::LockPlace(e))
        }
        Err(e) => {
            tracing::error!(instance = instance_shown, "{e}");
            Err(Error::from(e))
        }
    }
}

/// After an upgrade: stop the refresher an older floaty started for
/// `instance` under its default lock place, when it provably is one.
pub fn stop_legacy(instance: &str, legacy: &LockTemplate, patience: Patience) {
    stop_untrusted(instance, &legacy.path_for(instance), patience, true);
}

/// A lock file in a place floaty does not trust: stop the refresher it
/// provably names, touch nothing else.
fn stop_untrusted(instance: &str, path: &std::path::Path, patience: Patience, legacy: bool) {
    let place = if legacy {
        "an older floaty's lock place"
    } else {
        "an unsafe lock directory"
    };
    let name = crate::text::shown(instance);
    match lock::stop_only(path, instance, patience) {
        Ok(Stopped::Nothing) => {}
        Ok(Stopped::Refresher { pid }) => {
            tracing::info!(instance = name.as_str(), pid, lock = %path.display(),
            "stopped a refresher found in {place}")
        }
        Ok(Stopped::NotProven { holder }) => {
            tracing::warn!(instance = name.as_str(), lock = %path.display(),
            "lock held in {place} by {holder}; left alone")
        }
        Err(e) => tracing::warn!(instance = name.as_str(), "{e}; left alone"),
    }
}
