//! One notify call: keepalived reports a transition, floaty makes the
//! refresher match it.
//!
//! Order matters and is the whole safety story: everything that can be
//! wrong with the input is found before the first side effect (lock, signal,
//! fork, API call); then each instance's lock is taken, which stops the
//! previous refresher; then, on MASTER only, a new refresher is forked that
//! inherits the lock.

use std::time::Duration;

use crate::address::{self, Vip};
use crate::cli::Options;
use crate::config::Config;
use crate::error::Error;
use crate::event::{Event, Kind, State};
use crate::keepalived::{self, KeepalivedConfig};
use crate::lock::{self, Patience};
use crate::process::{self, Forked, ProcessHandle, ProcessId};
use crate::provider::Spec;
use crate::refresh::{self, Plan};

/// keepalived SIGKILLs a STOP call's process group after 1 s: give the old
/// refresher at most this long to go before SIGKILL, and leave margin.
const STOP_KILL_AFTER: Duration = Duration::from_millis(500);

/// keepalived SIGKILLs a STOP call 1 s after starting it; rules' commands
/// run in groups of their own, which that kill would miss, so floaty ends
/// them itself before then. Counted from the start of [`run`], with a
/// margin for exec and config loading before it.
const STOP_RULES_DEADLINE: Duration = Duration::from_millis(750);

/// How long the notify call waits for the forked refresher to report
/// "running" before it says so in the log (the refresher still runs).
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// One instance this event applies to, with the addresses it manages.
#[derive(Debug)]
pub struct Target {
    pub instance: String,
    pub addresses: Vec<Vip>,
}

/// Resolve an event to the instances it concerns: the instance itself, or
/// every member of the sync group.
pub fn targets(
    event: &Event,
    cfg: &Config,
    kconf: Option<&KeepalivedConfig>,
) -> Result<Vec<Target>, Error> {
    let names: Vec<String> = match (event.kind, kconf) {
        (Kind::Instance, Some(k)) => match k.instance(&event.name) {
            Some(i) => vec![i.name.clone()],
            None => {
                return Err(Error::UnknownInstance {
                    name: event.name.clone(),
                    conf: cfg.keepalived_config.clone(),
                })
            }
        },
        // vshn/floaty never read keepalived.conf when managed-addresses was
        // set; keep accepting such setups even without a keepalived.conf.
        (Kind::Instance, None) => vec![event.name.clone()],
        (Kind::Group, Some(k)) => match k.group(&event.name) {
            Some(g) => g.members.clone(),
            None => {
                return Err(Error::UnknownGroup {
                    name: event.name.clone(),
                    conf: cfg.keepalived_config.clone(),
                })
            }
        },
        (Kind::Group, None) => {
            return Err(Error::UnknownGroup {
                name: event.name.clone(),
                conf: cfg.keepalived_config.clone(),
            })
        }
    };
    Ok(names
        .into_iter()
        .map(|name| {
            let addresses = if !cfg.managed_addresses.is_empty() {
                cfg.managed_addresses.clone()
            } else {
                kconf
                    .and_then(|k| k.instance(&name))
                    .map(|i| i.addresses())
                    .unwrap_or_default()
            };
            Target {
                instance: name,
                addresses,
            }
        })
        .collect())
}

/// Load keepalived.conf. With managed-addresses set and no keepalived.conf
/// present, run without it (vshn/floaty compatibility).
pub fn load_keepalived(cfg: &Config) -> Result<Option<KeepalivedConfig>, Error> {
    if !cfg.managed_addresses.is_empty() && !cfg.keepalived_config.exists() {
        return Ok(None);
    }
    let opts = keepalived::Options {
        config_id: cfg.keepalived_config_id.clone(),
    };
    Ok(Some(keepalived::load(&cfg.keepalived_config, &opts)?))
}

pub fn run(cfg: &Config, event: &Event, opts: &Options) -> Result<(), Error> {
    let started = std::time::Instant::now();
    // Validation first: nothing below may fail on bad input.
    cfg.validate_for_run(opts.dry_run)?;
    let spec = Spec::from_config(cfg, opts.dry_run)?;
    let kconf = load_keepalived(cfg)?;
    let targets = targets(event, cfg, kconf.as_ref())?;
    // The split-brain guard's settings, checked before any side effect.
    let mut guards = targets
        .iter()
        .map(|t| crate::vip::guard_for(cfg, kconf.as_ref(), &t.instance))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();

    tracing::info!(kind = %event.kind, name = %event.name, state = %event.state,
        priority = event.priority.map(|p| p as i64).unwrap_or(-1), "keepalived event");

    let patience = Patience {
        timeout: cfg.lock_timeout,
        kill_after: if event.state == State::Stop {
            (cfg.lock_timeout / 2).min(STOP_KILL_AFTER)
        } else {
            cfg.lock_timeout / 2
        },
    };
    let keepalived = if event.state.is_master() {
        process::keepalived_ancestors()
    } else {
        Vec::new()
    };

    // Orders this call against others for the same instance that run at
    // the same time (keepalived does not wait for notify programs).
    let ticket = lock::Ticket::current();
    let mut failures = Vec::new();
    for target in targets {
        let guard = guards.next().flatten();
        let path = cfg.lock_file_template.path_for(&target.instance);
        let acquired = lock::acquire_in_order(&path, &target.instance, patience, ticket.clone());
        let lock = match acquired {
            Ok(lock::Acquired::Locked(l)) => l,
            Ok(lock::Acquired::Stale { newer_pid }) => {
                tracing::info!(instance = %target.instance, state = %event.state, newer_pid,
                    "a later notify call has already handled this instance; this event is outdated and changes nothing");
                continue;
            }
            Err(e) => {
                tracing::error!(instance = %target.instance, "{e}");
                failures.push(Error::from(e));
                continue;
            }
        };
        if !event.state.is_master() {
            tracing::info!(instance = %target.instance, state = %event.state, "refresher stopped, lock released");
            lock.release();
            continue;
        }
        if target.addresses.is_empty() {
            tracing::warn!(instance = %target.instance, "no addresses to manage (no virtual_ipaddress and no managed-addresses)");
            lock.release();
            continue;
        }
        let plan = Plan {
            instance: target.instance.clone(),
            addresses: address::host_addresses(&target.addresses),
            interval: cfg.refresh_interval,
            timeout: cfg.refresh_timeout,
            back_off: cfg.back_off,
            spec: spec.clone(),
            keepalived: keepalived
                .iter()
                .filter_map(|id| ProcessHandle::open(*id).map(ProcessHandle::into_fd))
                .collect(),
        };
        if let Err(e) = start_refresher(plan, guard, lock) {
            failures.push(e);
        }
    }
    // After the refresher handling (already done: rules never delay it),
    // and whether or not it failed: the event happened.
    run_rules(cfg, event, started);
    match failures.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Run the matching rules in this call, one after the other. A STOP call
/// gets [`STOP_RULES_DEADLINE`] in all; other calls wait for each rule up to
/// its timeout (keepalived does not wait for notify calls, so that delays
/// nothing). Only here, after any fork: the runtime starts threads.
fn run_rules(cfg: &Config, event: &Event, started: std::time::Instant) {
    if !cfg.rules.iter().any(|r| r.matches(event)) {
        return;
    }
    let deadline = (event.state == State::Stop)
        .then(|| tokio::time::Instant::from_std(started + STOP_RULES_DEADLINE));
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => {
            rt.block_on(crate::rules::run_matching(&cfg.rules, event, deadline));
            rt.shutdown_background();
        }
        Err(e) => tracing::error!("cannot run rules: {e}"),
    }
}

/// Fork the refresher. In the parent, return once it runs; the child never
/// returns from here.
fn start_refresher(
    plan: Plan,
    guard: Option<crate::vip::Guard>,
    mut lock: lock::InstanceLock,
) -> Result<(), Error> {
    let instance = plan.instance.clone();
    let addresses = address::comma_list(&plan.addresses);
    match process::fork_detached(READY_TIMEOUT).map_err(Error::Fork)? {
        Forked::Parent { child, ready } => {
            if ready {
                tracing::info!(instance = %instance, addresses = %addresses, pid = child, "refresher started");
            } else {
                tracing::warn!(instance = %instance, pid = child, "refresher did not report running in time");
            }
            // Our copy of the lock fd closes here; the child's keeps the lock.
            drop(lock);
            Ok(())
        }
        Forked::Child { ready } => {
            process::protect_from_oom_killer();
            let code = match ProcessId::current() {
                Some(me) => match lock.record_owner(me, &instance) {
                    Ok(()) => refresh::run(plan, guard, ready),
                    Err(e) => {
                        tracing::error!(instance = %instance, "{e}");
                        1
                    }
                },
                None => 1,
            };
            std::process::exit(code);
        }
    }
}
