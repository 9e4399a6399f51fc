//! FIFO mode: one long-lived floaty reads keepalived's notify FIFO, where
//! events arrive in order (notify programs can run concurrently and finish
//! out of order; the FIFO cannot).
//!
//! One process, no fork: each MASTER instance gets a task running the same
//! refresher code as notify mode's forked child ([`refresh::refresh_all`]),
//! holding the instance's lock file for as long as it runs, so a notify-mode
//! refresher and the daemon never refresh one instance at once. Rules run in
//! a task of their own, one event after the other, so a slow command never
//! delays a refresher starting or stopping.
//!
//! The FIFO comes from systemd (socket activation) or is opened by path. A
//! path-opened FIFO is reopened on end-of-file (the writer went away, or
//! keepalived recreated it on reload) and when the path turns out to name a
//! new FIFO (`fifo_reader.rs`); the daemon never ends because of the FIFO.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::address;
use crate::backoff::Schedule;
use crate::cli::Options;
use crate::error::Error;
use crate::event::{Event, Kind, LowerPriority, State};
use crate::fifo::{self, FifoError, Line};
use crate::lock::{self, InstanceLock, Patience};
use crate::process::{self, ProcessHandle, ProcessId};
use crate::refresh::{self, Plan};
use crate::rules::{self, Rule};
use crate::setup::{self, Setup, Work};
use crate::systemd;

mod fifo_reader;
mod metrics_listen;
use fifo_reader::{read_fifo, Input};

/// keepalived writes the shutdown STOP lines after it sent us SIGTERM, and
/// SIGKILLs us about a second later: read this long, then stop.
const LINGER: Duration = Duration::from_millis(500);

/// Least time between two config rereads caused by unknown names.
const AUTO_RELOAD_EVERY: Duration = Duration::from_secs(1);

/// Least time between two scans of /proc for keepalived while none is
/// known. A scan reads every process's stat and network namespace (3-4 ms
/// with ~120 processes, debug build); done for each of 50 MASTER lines in
/// a row it delayed the lines behind them, BACKUP lines included, by
/// ~175 ms.
const RESCAN_EVERY: Duration = Duration::from_secs(1);

fn load_setup(path: &Path, dry_run: bool) -> Result<Setup, Error> {
    let setup = setup::load(path, dry_run)?;
    setup.check_every_instance()?;
    Ok(setup)
}

pub fn run(config_path: &Path, fifo_path: &Path, opts: &Options) -> Result<(), Error> {
    let setup = load_setup(config_path, opts.dry_run)?;
    // Before any thread exists: this edits the environment.
    let from_systemd = systemd::take_listen_fd();
    if from_systemd.is_none() {
        if let Ok(meta) = std::fs::metadata(fifo_path) {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_fifo() {
                return Err(FifoError::NotAFifo(fifo_path.to_path_buf()).into());
            }
        }
    }
    let parent_keepalived = crate::process::keepalived_ancestors();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let workers = start_workers().map_err(Error::Runtime)?;
    let daemon = Daemon {
        workers,
        config_path: config_path.to_path_buf(),
        dry_run: opts.dry_run,
        rules: Arc::new(setup.cfg.rules.clone()),
        setup,
        running: BTreeMap::new(),
        groups: BTreeMap::new(),
        me: ProcessId::current(),
        last_auto_reload: None,
        provider: refresh::SharedProvider::default(),
        provider_spec: None,
        metrics: metrics_listen::Registry::default(),
    };
    let result =
        runtime.block_on(daemon.run(from_systemd, fifo_path.to_path_buf(), parent_keepalived));
    // In-flight requests are dropped, not waited for: exit within 1 s.
    runtime.shutdown_background();
    result
}

/// One instance's task: a MASTER's refresher, or (with a track file) the
/// prober of one that is not.
struct Running {
    /// A refresher's split-brain repair trigger, or a prober.
    kind: TaskKind,
    addresses: Vec<IpAddr>,
    /// Settings that, when changed by a reload, need a restart.
    settings: Settings,
    task: JoinHandle<()>,
}

enum TaskKind {
    /// Poked on `MASTER_RX_LOWER_PRI` (`reassert.rs`).
    Refresher(crate::reassert::Trigger),
    Prober,
}

impl Running {
    fn is_prober(&self) -> bool {
        matches!(self.kind, TaskKind::Prober)
    }
}

/// What a running refresher was started with; compared whole on reload.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    refresh_interval: Duration,
    refresh_timeout: Duration,
    back_off: crate::config::BackOff,
    spec: crate::provider::Spec,
    lock_file_template: crate::config::LockTemplate,
    lock_timeout: Duration,
    verify_master: crate::config::VerifyMaster,
    track_file_template: Option<crate::config::LockTemplate>,
    demote_by: i32,
    health_interval: Duration,
}

struct Daemon {
    /// Where refresher tasks run (see [`start_workers`]).
    workers: tokio::runtime::Handle,
    config_path: PathBuf,
    dry_run: bool,
    setup: Setup,
    rules: Arc<Vec<Rule>>,
    running: BTreeMap<String, Running>,
    /// Each sync group's members as its last event found them, so a stop
    /// for a group keepalived.conf no longer names still stops them.
    groups: BTreeMap<String, Vec<String>>,
    me: Option<ProcessId>,
    last_auto_reload: Option<Instant>,
    /// One provider for every refresher task of the current spec, built by
    /// the first that needs it (see [`refresh::SharedProvider`]); replaced
    /// when a reload changes the spec.
    provider: refresh::SharedProvider,
    provider_spec: Option<crate::provider::Spec>,
    /// Every instance's record: counted in by the daemon and its tasks,
    /// shown by `metrics-listen`.
    metrics: metrics_listen::Registry,
}

type Watch = Pin<Box<dyn Future<Output = ()>>>;

impl Daemon {
    async fn run(
        mut self,
        from_systemd: Option<OwnedFd>,
        fifo_path: PathBuf,
        parent_keepalived: Vec<ProcessId>,
    ) -> Result<(), Error> {
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            return Err(Error::Runtime(std::io::Error::other(
                "cannot install signal handlers",
            )));
        };
        if let Some(addr) = self.setup.cfg.metrics_listen {
            metrics_listen::start(addr, self.metrics.clone())
                .await
                .map_err(|e| Error::MetricsListen { addr, source: e })?;
        }
        let started_by_keepalived = !parent_keepalived.is_empty();
        let mut keepalived = if started_by_keepalived {
            parent_keepalived
        } else {
            process::keepalived_in_this_namespace()
        };
        let mut last_scan = Instant::now();
        let mut watch = watch(&keepalived);
        tracing::info!(
            fifo = %fifo_path.display(),
            source = if from_systemd.is_some() { "systemd" } else { "path" },
            keepalived = ?keepalived.iter().map(|k| k.pid).collect::<Vec<_>>(),
            "FIFO daemon started"
        );

        // keepalived does not repeat states on reload (and restarts the FIFO
        // program it started): an instance whose VIPs are on this host while
        // keepalived runs is MASTER now, whatever the FIFO still holds.
        if !keepalived.is_empty() {
            self.adopt_masters();
        }
        // With a track file, every instance not MASTER has its prober from
        // the start: keepalived must know before its first election whether
        // this node could take over.
        self.probe_the_rest();

        let (tx, mut rx) = mpsc::channel(256);
        let closing = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(read_fifo(from_systemd, fifo_path, tx, closing.clone()));
        let (rules_tx, rules_rx) = mpsc::unbounded_channel();
        let rules_worker = tokio::spawn(run_rules(rules_rx));

        if let Err(e) = systemd::notify("READY=1") {
            tracing::warn!("cannot tell systemd we are ready: {e}");
        }
        let mut linger: Option<Instant> = None;
        loop {
            let until = linger.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = term.recv(), if linger.is_none() => {
                    tracing::info!("SIGTERM: reading keepalived's last lines for {LINGER:?}, then stopping");
                    linger = Some(Instant::now() + LINGER);
                    closing.store(true, Ordering::Relaxed);
                }
                _ = int.recv(), if linger.is_none() => {
                    tracing::info!("SIGINT: stopping in {LINGER:?}");
                    linger = Some(Instant::now() + LINGER);
                    closing.store(true, Ordering::Relaxed);
                }
                _ = tokio::time::sleep_until(until), if linger.is_some() => break,
                _ = hup.recv() => self.reload(),
                _ = &mut watch => {
                    tracing::warn!("keepalived is gone; stopping every refresher");
                    self.stop_all();
                    if started_by_keepalived {
                        break;
                    }
                    // Watch the next keepalived once events come again.
                    watch = Box::pin(std::future::pending());
                }
                input = rx.recv() => match input {
                    Some(Input::Line(bytes)) => {
                        if let Some(event) = self.line(&bytes) {
                            // Remember what the scan found, so that the next
                            // MASTER line does not scan again.
                            if matches!(event.state, State::Master)
                                && last_scan.elapsed() >= RESCAN_EVERY
                                && keepalived_here_needed(&keepalived)
                            {
                                keepalived = process::keepalived_in_this_namespace();
                                last_scan = Instant::now();
                                watch = self::watch(&keepalived);
                            }
                            if self.rules.iter().any(|r| r.matches(&event)) {
                                let _ = rules_tx.send((self.rules.clone(), event));
                            }
                        }
                    }
                    Some(Input::TooLong) => tracing::warn!(
                        "FIFO: dropped a line longer than {} bytes", crate::text::MAX_LINE
                    ),
                    // Only after SIGTERM: the FIFO ended, nothing more comes.
                    None => break,
                },
            }
        }
        let _ = systemd::notify("STOPPING=1");
        reader.abort();
        rules_worker.abort();
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut self.running)
            .into_iter()
            .map(|(name, r)| {
                r.task.abort();
                tracing::info!(instance = %name, "refresher stopped (shutdown), lock released");
                r.task
            })
            .collect();
        // An aborted task is dropped (its lock released) when next polled;
        // wait for that, briefly: the exit must come within 1 s of SIGTERM.
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_millis(100), task).await;
        }
        tracing::info!("FIFO daemon stopped");
        Ok(())
    }

    /// Apply one FIFO line; the event, when it was one.
    fn line(&mut self, bytes: &[u8]) -> Option<Event> {
        match fifo::parse_line(bytes) {
            Ok(Line::Event(event)) => {
                tracing::info!(kind = %event.kind, name = %event.name, state = %event.state,
                    priority = event.priority.map(i64::from).unwrap_or(-1), "keepalived event");
                self.apply(&event);
                Some(event)
            }
            Ok(Line::LowerPriority(lp)) => {
                self.reassert(&lp);
                None
            }
            Ok(Line::Ignored(what)) => {
                tracing::debug!(line = %crate::text::clip(&String::from_utf8_lossy(bytes), 200), "FIFO: skipped {what}");
                None
            }
            Err(e) => {
                tracing::warn!(line = %crate::text::clip(&String::from_utf8_lossy(bytes), 200), "FIFO: skipped a line: {e}");
                None
            }
        }
    }

    fn apply(&mut self, event: &Event) {
        let mut targets = self.setup.work_for(event);
        // keepalived may have been reloaded with a new instance (when
        // systemd, not keepalived, runs floaty, nothing restarts it): look
        // again, at most once a second so junk names cannot make it spin.
        if matches!(
            targets,
            Err(Error::UnknownInstance { .. } | Error::UnknownGroup { .. })
        ) && self
            .last_auto_reload
            .is_none_or(|t| t.elapsed() >= AUTO_RELOAD_EVERY)
        {
            tracing::info!(name = %event.name, "unknown name: rereading the configuration");
            self.last_auto_reload = Some(Instant::now());
            self.reload();
            targets = self.setup.work_for(event);
        }
        let targets = match targets {
            Ok(t) => t,
            Err(e) if event.state.is_master() => {
                tracing::warn!("{e}; event ignored");
                return;
            }
            Err(e) => {
                // A stop always stops (see stop.rs): the name itself, or
                // the members this group last had.
                tracing::warn!(
                    "{e}; stopping what runs for `{}` anyway",
                    crate::text::shown(&event.name)
                );
                let names = match event.kind {
                    Kind::Instance => vec![event.name.clone()],
                    Kind::Group => self.groups.get(&event.name).cloned().unwrap_or_default(),
                };
                for name in names {
                    self.stop(&name, event.state.as_str());
                }
                return;
            }
        };
        if event.kind == Kind::Group {
            let members = targets.iter().map(|t| t.instance.clone()).collect();
            self.groups.insert(event.name.clone(), members);
        }
        for target in targets {
            let name = target.instance.clone();
            if event.state.is_master() {
                self.start(target);
            } else if matches!(event.state, State::Backup | State::Fault)
                && self.setup.cfg.track_file_template.is_some()
            {
                self.start_probe(target);
            } else {
                self.stop(&target.instance, event.state.as_str());
                let left = crate::status::Recorder::left_without_owner(
                    &self.setup.status,
                    &name,
                    event.state.as_str(),
                    "fifo",
                );
                self.register(&name, Arc::new(left));
                continue;
            }
            if let Some(status) = metrics_listen::recorder(&self.metrics, &name) {
                status.event(event.state.as_str(), "fifo");
                status.flush();
            }
        }
    }

    fn settings(&self) -> Settings {
        let c = &self.setup.cfg;
        Settings {
            refresh_interval: c.refresh_interval,
            refresh_timeout: c.refresh_timeout,
            back_off: c.back_off,
            spec: self.setup.spec.clone(),
            lock_file_template: c.lock_file_template.clone(),
            lock_timeout: c.lock_timeout,
            verify_master: c.verify_master,
            track_file_template: c.track_file_template.clone(),
            demote_by: c.demote_by,
            health_interval: c.health_interval,
        }
    }

    /// A prober for every instance that has no task, when health reporting
    /// is on.
    fn probe_the_rest(&mut self) {
        if self.setup.cfg.track_file_template.is_none() {
            return;
        }
        let idle: Vec<String> = self
            .setup
            .instances()
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| !self.running.contains_key(name))
            .collect();
        for name in idle {
            match self.setup.instance_work(&name, false) {
                Ok(work) => {
                    self.start_probe(work);
                }
                Err(e) => tracing::warn!(instance = %name, "{e}; not probing"),
            }
        }
    }

    /// Probe `work`'s instance (stopping its refresher), unless its prober
    /// already runs with these settings. True when that is so.
    fn start_probe(&mut self, work: Work) -> bool {
        self.launch(work, true)
    }

    /// Start refreshing `work`'s instance, unless it already runs with these
    /// addresses and settings. True when that is so and nothing changed.
    fn start(&mut self, work: Work) -> bool {
        self.launch(work, false)
    }

    /// [`Daemon::start`] (`prober` false) and [`Daemon::start_probe`]: the
    /// instance's task, holding its lock.
    fn launch(&mut self, work: Work, prober: bool) -> bool {
        let Work {
            instance,
            addresses,
            lock_path,
            guard,
            ..
        } = work;
        let instance = instance.as_str();
        if addresses.is_empty() {
            if !prober {
                tracing::warn!(
                    instance,
                    "no addresses to manage (no virtual_ipaddress and no managed-addresses)"
                );
            }
            self.stop(
                instance,
                if prober {
                    "probing instead"
                } else {
                    "no addresses"
                },
            );
            return false;
        }
        let settings = self.settings();
        if let Some(r) = self.running.get(instance) {
            if r.is_prober() == prober
                && r.addresses == addresses
                && r.settings == settings
                && !r.task.is_finished()
            {
                tracing::debug!(instance, prober, "already running");
                return true;
            }
        }
        self.stop(instance, if prober { "probing instead" } else { "restart" });
        let plan = self.setup.plan(instance, addresses.clone(), Vec::new());
        let status = plan.status.clone();
        self.register(instance, status.clone());
        status.begin(
            if prober {
                crate::status::record::Role::Prober
            } else {
                crate::status::record::Role::Refresher
            },
            self.me.map(|me| (me.pid, me.start_time)),
            None,
        );
        let (job, kind, state) = if prober {
            let Some(health) = plan.health.clone() else {
                return false;
            };
            // The daemon acts on MASTER with the config it holds (a broken
            // file only fails the next reload): nothing to check again.
            let job = Job::Probe(health, Arc::new(|| None));
            (job, TaskKind::Prober, State::Backup)
        } else {
            let (trigger, pauses) = crate::reassert::channel(instance, &addresses);
            // The same split-brain guard as notify mode (`setup.rs` made
            // it): a late or stale MASTER line must not move the address
            // while another node holds the VIPs.
            let job = Job::Refresh(guard.map(Arc::new), pauses);
            (job, TaskKind::Refresher(trigger), State::Master)
        };
        let holder = Holder {
            path: lock_path,
            patience: self.setup.patience(state, std::time::Instant::now()),
            me: self.me,
        };
        if self.provider_spec.as_ref() != Some(&self.setup.spec) {
            self.provider = refresh::SharedProvider::default();
            self.provider_spec = Some(self.setup.spec.clone());
        }
        let task = self
            .workers
            .spawn(holder.hold_and_run(plan, job, self.provider.clone()));
        self.running.insert(
            instance.to_string(),
            Running {
                kind,
                addresses,
                settings,
                task,
            },
        );
        false
    }

    /// `MASTER_RX_LOWER_PRI`: poke the instance's refresher, if one runs
    /// (split-brain repair, `reassert.rs`). None runs: this node is not
    /// refreshing it, so there is nothing to re-assert.
    fn reassert(&mut self, lp: &LowerPriority) {
        let running = self
            .running
            .iter_mut()
            .find(|(name, _)| crate::event::name_matches(&lp.name, name));
        let trigger = running.and_then(|(name, r)| match &mut r.kind {
            TaskKind::Refresher(trigger) if !r.task.is_finished() => Some((name, trigger)),
            _ => None,
        });
        match trigger {
            Some((name, trigger)) => {
                if trigger.poke(lp.priority) {
                    if let Some(status) = metrics_listen::recorder(&self.metrics, name) {
                        status.split_brain_repair();
                        status.flush();
                    }
                }
            }
            None => tracing::debug!(name = %lp.name,
                "MASTER_RX_LOWER_PRI for an instance with no refresher running: nothing to re-assert"),
        }
    }

    /// The record `/metrics` shows for `instance` from now on, and the one
    /// events and repairs are counted in.
    fn register(&self, instance: &str, status: Arc<crate::status::Recorder>) {
        metrics_listen::lock(&self.metrics).insert(instance.to_string(), status);
    }

    fn stop(&mut self, instance: &str, why: &str) {
        if let Some(r) = self.running.remove(instance) {
            // Dropping the task drops its lock guard, which releases the lock.
            r.task.abort();
            let what = if r.is_prober() { "prober" } else { "refresher" };
            tracing::info!(instance, "{what} stopped ({why}), lock released");
        }
    }

    fn stop_all(&mut self) {
        let names: Vec<String> = self.running.keys().cloned().collect();
        for name in names {
            self.stop(&name, "shutdown");
        }
    }

    /// Instances whose VIPs are on this host: MASTER without an event.
    fn adopt_masters(&mut self) {
        let local = match crate::netlink::local_addresses() {
            Ok(local) => local,
            Err(e) => {
                tracing::warn!(
                    "cannot list this host's addresses ({e}); waiting for keepalived's events"
                );
                return;
            }
        };
        let held: Vec<String> = self
            .setup
            .kconf
            .iter()
            .flat_map(|k| &k.instances)
            // The split-brain guard's rule: every VIP here, not just one
            // (keepalived adds them all before it reports MASTER).
            .filter(|i| {
                let vips = address::host_addresses(&i.vips);
                !vips.is_empty() && vips.iter().all(|v| local.contains(v))
            })
            .map(|i| i.name.clone())
            .collect();
        for name in held {
            tracing::info!(instance = %name, "holds all its virtual IPs at start: MASTER");
            match self.setup.instance_work(&name, true) {
                Ok(work) => {
                    self.start(work);
                }
                Err(e) => tracing::warn!(instance = %name, "{e}; not refreshing"),
            }
        }
    }

    /// SIGHUP: reread both configs; keep refreshers whose addresses and
    /// settings did not change, restart the others, stop those whose
    /// instance is gone. A broken config changes nothing.
    fn reload(&mut self) {
        let setup = match load_setup(&self.config_path, self.dry_run) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("reload failed, the running configuration stays: {e}");
                return;
            }
        };
        self.setup = setup;
        self.rules = Arc::new(self.setup.cfg.rules.clone());
        let (mut kept, mut restarted, mut stopped) = (0, 0, 0);
        let names: Vec<(String, bool)> = self
            .running
            .iter()
            .map(|(name, r)| (name.clone(), r.is_prober()))
            .collect();
        for (name, probe) in names {
            match self.setup.instance_work(&name, !probe) {
                Ok(work) if probe => {
                    if self.start_probe(work) {
                        kept += 1;
                    } else {
                        restarted += 1;
                    }
                }
                Ok(work) => {
                    if self.start(work) {
                        kept += 1;
                    } else {
                        restarted += 1;
                    }
                }
                Err(e) => {
                    stopped += 1;
                    tracing::info!(instance = %name, "{e}");
                    self.stop(&name, "instance no longer usable after the reload");
                }
            }
        }
        self.probe_the_rest();
        tracing::info!(kept, restarted, stopped, "configuration reloaded");
        let _ = systemd::notify("READY=1");
    }
}

/// A thread with a runtime of its own for the refresher tasks; returns its
/// handle. Why not the FIFO loop's runtime: on one thread, 50 refreshers'
/// verify rounds (a guard check and an HTTP request each) queue in front
/// of the task that reads the next FIFO line, so a BACKUP line waited for
/// a whole round of them (tens to hundreds of milliseconds on a busy
/// machine) before its refresher was stopped. On a thread of their own they
/// compete for the CPU, not for a place in the FIFO loop's queue. The
/// thread lives as long as the process (its runtime is never shut down:
/// the daemon exits right after its loop ends).
fn start_workers() -> std::io::Result<tokio::runtime::Handle> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("floaty-refresh".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => {
                    let _ = tx.send(Ok(rt.handle().clone()));
                    rt.block_on(std::future::pending::<()>());
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })?;
    rx.recv()
        .map_err(|_| std::io::Error::other("the refresher thread ended at start"))?
}

/// Whether keepalived was not found at start (so a MASTER event is a good
/// moment to look again).
fn keepalived_here_needed(known: &[ProcessId]) -> bool {
    known.is_empty() || known.iter().all(|k| ProcessHandle::open(*k).is_none())
}

fn watch(keepalived: &[ProcessId]) -> Watch {
    let fds: Vec<OwnedFd> = keepalived
        .iter()
        .filter_map(|id| ProcessHandle::open(*id).map(ProcessHandle::into_fd))
        .collect();
    Box::pin(process::watch_keepalived(fds))
}

/// The lock and refresh side of one MASTER instance.
struct Holder {
    path: PathBuf,
    patience: Patience,
    me: Option<ProcessId>,
}

/// Releases the lock when the task ends or is aborted.
struct Held(Option<InstanceLock>);

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(lock) = self.0.take() {
            lock.release();
        }
    }
}

/// What a [`Holder`] does once it has the lock.
enum Job {
    Refresh(Option<Arc<crate::guard::Guard>>, crate::reassert::Pauses),
    Probe(crate::health::HealthPlan, crate::health::probe::Precheck),
}

impl Holder {
    async fn hold_and_run(self, plan: Plan, job: Job, provider: refresh::SharedProvider) {
        let instance = plan.instance.clone();
        let mut schedule = Schedule::new(&plan.back_off);
        let mut held = loop {
            let (path, name, patience) = (self.path.clone(), instance.clone(), self.patience);
            // Blocking: it may wait for (and stop) a notify-mode refresher.
            let taken =
                tokio::task::spawn_blocking(move || lock::acquire(&path, &name, patience)).await;
            match taken {
                Ok(Ok(lock)) => break Held(Some(lock)),
                Ok(Err(e)) => {
                    let wait = schedule.next().unwrap_or(plan.interval);
                    tracing::error!(instance = %instance, "{e}; retrying in {:.1}s", wait.as_secs_f64());
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    tracing::error!(instance = %instance, "cannot take the lock: {e}");
                    return;
                }
            }
        };
        if let (Some(lock), Some(me)) = (held.0.as_mut(), self.me) {
            if let Err(e) = lock.record_daemon(me, &instance) {
                tracing::warn!(instance = %instance, "{e}");
            }
        }
        let addresses = address::comma_list(&plan.addresses);
        match job {
            Job::Refresh(guard, pauses) => {
                tracing::info!(instance = %instance, addresses = %addresses, "refresher started");
                refresh::refresh_all_with(plan, guard, provider, pauses).await;
            }
            Job::Probe(health, precheck) => {
                tracing::info!(instance = %instance, addresses = %addresses, "prober started");
                let health = Arc::new(crate::health::Health::start(health, &instance));
                crate::health::probe::probe_all(plan, health, provider, precheck).await;
            }
        }
        drop(held);
    }
}

async fn run_rules(mut rx: mpsc::UnboundedReceiver<(Arc<Vec<Rule>>, Event)>) {
    while let Some((rules, event)) = rx.recv().await {
        rules::run_matching(&rules, &event, None).await;
    }
}
