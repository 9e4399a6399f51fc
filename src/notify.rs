//! One notify call: keepalived reports a transition, floaty makes the
//! refresher match it.
//!
//! Order matters and is the whole safety story: everything that can be
//! wrong with the input is found before the first side effect (lock, signal,
//! fork, API call); then each instance's lock is taken, which stops the
//! previous refresher; then, on MASTER only, a new refresher is forked that
//! inherits the lock.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::address;
use crate::cli::Options;
use crate::config::{self, Config};
use crate::error::Error;
use crate::event::{Event, State};
use crate::lock;
use crate::process::{self, Forked, ProcessHandle, ProcessId};
use crate::refresh::Plan;
use crate::setup::{self, Setup, Work};
use crate::stop::{self, Places};
use crate::worker::{self, Role};

/// keepalived SIGKILLs a STOP call 1 s after starting it; rules' commands
/// run in groups of their own, which that kill would miss, so floaty ends
/// them itself before then. Counted from the start of [`run`], with a
/// margin for exec and config loading before it.
const STOP_RULES_DEADLINE: Duration = Duration::from_millis(750);

/// How long the notify call waits for the forked refresher to report
/// "running" before it says so in the log (the refresher still runs).
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn run(config_path: &Path, event: &Event, opts: &Options) -> Result<(), Error> {
    let started = Instant::now();
    // Everything that can be wrong with the input, found before the first
    // side effect.
    let checked = setup::load(config_path, opts.dry_run)
        .and_then(|setup| setup.work_for(event).map(|work| (setup, work)));
    if event.state.is_master() {
        let (setup, work) = checked?;
        log_event(event);
        return take_over(&setup, work, event, started, Take::Refresh);
    }
    log_event(event);
    match checked {
        // With a track file, the lock holder of a BACKUP or FAULT instance
        // is its prober (health/probe.rs), started like a refresher.
        Ok((setup, work))
            if setup.cfg.track_file_template.is_some()
                && matches!(event.state, State::Backup | State::Fault) =>
        {
            let names: Vec<String> = work.iter().map(|w| w.instance.clone()).collect();
            let recorded =
                stop::with_recorded_members(event, names.clone(), &setup.cfg.lock_file_template);
            let gone: Vec<String> = recorded
                .into_iter()
                .filter(|n| !names.contains(n))
                .collect();
            let mut failures = stop_names(
                &gone,
                &setup.cfg.stop_settings(),
                Some(&setup.status),
                event,
                started,
            );
            if let Err(e) = take_over(&setup, work, event, started, Take::Probe) {
                failures.insert(0, e);
            }
            first(failures)
        }
        Ok((setup, work)) => {
            let names = work.into_iter().map(|w| w.instance).collect();
            let names = stop::with_recorded_members(event, names, &setup.cfg.lock_file_template);
            let failures = stop_names(
                &names,
                &setup.cfg.stop_settings(),
                Some(&setup.status),
                event,
                started,
            );
            run_rules(&setup.cfg, event, started);
            first(failures)
        }
        Err(e) => {
            // The stop still happens: a refresher left running here would
            // move the address back from the new MASTER.
            let settings = config::stop_settings(config_path);
            let names = stop::names_without_setup(event, &settings);
            tracing::warn!(name = %crate::text::shown(&event.name), state = %event.state,
                "stopping without a valid configuration ({e})");
            stop_names(&names, &settings, None, event, started);
            Err(e)
        }
    }
}

fn log_event(event: &Event) {
    tracing::info!(kind = %event.kind, name = %crate::text::shown(&event.name), state = %event.state,
        priority = event.priority.map(|p| p as i64).unwrap_or(-1), "keepalived event");
}

fn stop_names(
    names: &[String],
    settings: &config::StopSettings,
    status: Option<&crate::status::StatusPlan>,
    event: &Event,
    started: Instant,
) -> Vec<Error> {
    let patience = stop::patience(event.state, settings.lock_timeout, started);
    let places = Places {
        status: status.cloned(),
        ..Places::from_settings(settings)
    };
    stop::stop_all(
        names,
        &places,
        patience,
        lock::Ticket::current(),
        event.state,
    )
}

fn first(failures: Vec<Error>) -> Result<(), Error> {
    match failures.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What the process forked for an instance does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Take {
    /// MASTER: refresh.
    Refresh,
    /// BACKUP or FAULT with a track file: probe.
    Probe,
}

/// Take each instance's lock (stopping the refresher or prober that holds
/// it), then fork the process that inherits the lock: a refresher on
/// MASTER, a prober on BACKUP/FAULT when health reporting is on.
fn take_over(
    setup: &Setup,
    work: Vec<Work>,
    event: &Event,
    started: Instant,
    take: Take,
) -> Result<(), Error> {
    let cfg = &setup.cfg;
    let patience = setup.patience(event.state, started);
    // Found when first needed: a handoff to a prober needs none (the
    // prober watches keepalived already), and the walk up /proc costs
    // a warm MASTER its time.
    let mut keepalived: Option<Vec<ProcessId>> = None;
    let legacy = stop::legacy_template(cfg.lock_template_from_file);
    // Orders this call against others for the same instance that run at
    // the same time (keepalived does not wait for notify programs).
    let ticket = lock::Ticket::current();
    let mut failures = Vec::new();
    for target in work {
        if let Some(legacy) = &legacy {
            stop::stop_legacy(&target.instance, legacy, patience);
        }
        if take == Take::Refresh && handed_to_prober(setup, &target, ticket.as_ref(), patience) {
            continue;
        }
        let acquired = lock::acquire_in_order(
            &target.lock_path,
            &target.instance,
            patience,
            ticket.clone(),
        );
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
        if target.addresses.is_empty() {
            tracing::warn!(instance = %target.instance, "no addresses to manage (no virtual_ipaddress and no managed-addresses)");
            lock.release();
            continue;
        }
        let watch = keepalived
            .get_or_insert_with(process::keepalived_ancestors)
            .iter()
            .filter_map(|id| ProcessHandle::open(*id).map(ProcessHandle::into_fd))
            .collect();
        let plan = setup.plan(&target.instance, target.addresses, watch);
        let start = match (take, plan.health.clone()) {
            (Take::Probe, Some(health)) => Start::Prober(health),
            (Take::Probe, None) => {
                lock.release();
                continue;
            }
            (Take::Refresh, _) => Start::Refresher(target.guard),
        };
        if let Err(e) = start_refresher(setup, plan, start, target.group, lock, event.state) {
            failures.push(e);
        }
    }
    // After the refresher handling (already done: rules never delay it),
    // and whether or not it failed: the event happened.
    run_rules(cfg, event, started);
    first(failures)
}

/// How long a MASTER call waits for the prober to take over before it
/// stops it and forks a refresher instead (the prober answers within a
/// millisecond or two: it reloads the config and rewrites its lock).
const HANDOFF_WAIT: Duration = Duration::from_millis(300);

/// MASTER with health reporting on: hand the instance to its running
/// prober, whose connection to the API is open (`handoff.rs`). True when
/// the prober refreshes now.
fn handed_to_prober(
    setup: &Setup,
    target: &Work,
    ticket: Option<&lock::Ticket>,
    patience: lock::Patience,
) -> bool {
    let Some(ticket) = ticket else {
        return false;
    };
    if setup.cfg.track_file_template.is_none() || target.addresses.is_empty() {
        return false;
    }
    let wait = HANDOFF_WAIT.min(patience.timeout);
    match lock::request_handoff(&target.lock_path, &target.instance, ticket, wait) {
        Ok(lock::Handoff::Done { pid }) => {
            tracing::info!(instance = %target.instance, addresses = %address::comma_list(&target.addresses), pid,
                "refresher started (the running prober took over, on its open connection)");
            true
        }
        Ok(lock::Handoff::NoProber) => false,
        Err(e) => {
            tracing::warn!(instance = %target.instance, "cannot hand over to the prober ({e}); starting a refresher");
            false
        }
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

/// What [`start_refresher`] forks.
enum Start {
    Refresher(Option<crate::guard::Guard>),
    Prober(crate::health::HealthPlan),
}

/// Fork the refresher (or prober). In the parent, return once it runs; the
/// child never returns from here.
fn start_refresher(
    setup: &Setup,
    plan: Plan,
    start: Start,
    group: Option<String>,
    mut lock: lock::InstanceLock,
    state: State,
) -> Result<(), Error> {
    let instance = plan.instance.clone();
    // What the state file (`status/`) and the log call it.
    let role_shown = match start {
        Start::Refresher(_) => crate::status::record::Role::Refresher,
        Start::Prober(_) => crate::status::record::Role::Prober,
    };
    let what = role_shown.as_str();
    let addresses = address::comma_list(&plan.addresses);
    let lets_go = crate::logging::refresher_lets_go_of_stderr();
    match process::fork_detached(READY_TIMEOUT).map_err(Error::Fork)? {
        Forked::Parent { child, ready } => {
            if ready {
                tracing::info!(instance = %instance, addresses = %addresses, pid = child, "{what} started");
                if lets_go {
                    tracing::info!(instance = %instance, pid = child,
                        "the {what} logs to syslog: stderr is a pipe or socket, which it would hold open until the next event");
                }
            } else {
                tracing::warn!(instance = %instance, pid = child, "{what} did not report running in time");
            }
            // Our copy of the lock fd closes here; the child's keeps the lock.
            drop(lock);
            Ok(())
        }
        Forked::Child { ready } => {
            // Before the first log line of the child.
            if lets_go {
                crate::logging::let_go_of_stderr();
            }
            process::protect_from_oom_killer();
            let code = match ProcessId::current() {
                Some(me) => {
                    let recorded = match &start {
                        Start::Refresher(_) => lock.record_owner(me, &instance, group.as_deref()),
                        Start::Prober(_) => lock.record_prober(me, &instance, group.as_deref()),
                    };
                    match recorded {
                        Ok(()) => {
                            plan.status.begin(
                                role_shown,
                                Some((me.pid, me.start_time)),
                                Some((&state.to_string(), "notify")),
                            );
                            let role = match start {
                                // The lock stays open in this process until it exits.
                                Start::Refresher(guard) => Role::Refresh(guard, lock),
                                Start::Prober(health) => Role::Probe(
                                    health,
                                    setup.precheck(),
                                    crate::handoff::Takeover {
                                        prepare: setup.prepare_refresher(&instance),
                                        lock,
                                        me,
                                        instance: instance.clone(),
                                        group,
                                    },
                                ),
                            };
                            worker::run(plan, role, ready)
                        }
                        Err(e) => {
                            tracing::error!(instance = %instance, "{e}");
                            1
                        }
                    }
                }
                None => 1,
            };
            std::process::exit(code);
        }
    }
}
