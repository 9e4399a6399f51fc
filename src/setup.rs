//! Everything checked before the first side effect, in one place.
//!
//! [`load`] reads and checks floaty.yml, the provider settings and
//! keepalived.conf; [`Setup::work_for`] turns one event into the instances
//! it concerns, each with its lock path (in a directory checked to be safe)
//! and, for MASTER, its split-brain guard. Whatever fails here fails with
//! nothing done: no lock taken, no process signalled, no API call.
//!
//! A stop (BACKUP, FAULT, STOP, DELETED) must stop even when this fails;
//! that short road is `stop.rs`, which needs only the lock path.

use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::address::{self, Vip};
use crate::config::{self, Config, StateDir};
use crate::error::Error;
use crate::event::{Event, Kind, State};
use crate::guard::Guard;
use crate::health::{HealthPlan, TrackFile};
use crate::keepalived::{self, KeepalivedConfig};
use crate::lock::{self, Patience};
use crate::provider::Spec;
use crate::refresh::Plan;
use crate::status::{Recorder, StatusPlan};

/// A checked configuration: the provider spec has its credentials and
/// keepalived.conf is parsed (absent only where vshn/floaty allowed it).
pub struct Setup {
    pub cfg: Config,
    pub spec: Spec,
    pub kconf: Option<KeepalivedConfig>,
    /// Where the state and metrics files go, their directories checked.
    pub status: StatusPlan,
}

/// One instance an event concerns, ready to act on.
pub struct Work {
    pub instance: String,
    /// The sync group whose event this is, recorded in the lock so a later
    /// GROUP stop finds the instance without keepalived.conf.
    pub group: Option<String>,
    pub addresses: Vec<IpAddr>,
    pub lock_path: PathBuf,
    /// The split-brain guard; `None` when verify-master does not apply.
    pub guard: Option<Guard>,
}

pub fn load(config_path: &Path, dry_run: bool) -> Result<Setup, Error> {
    load_with(config::load(config_path)?, dry_run)
}

/// [`load`] without logging the config's warnings, for the long-running
/// part that loads it again (a prober's check, its takeover).
pub fn load_quietly(config_path: &Path, dry_run: bool) -> Result<Setup, Error> {
    load_with(config::load_quietly(config_path)?, dry_run)
}

fn load_with(cfg: Config, dry_run: bool) -> Result<Setup, Error> {
    let spec = Spec::from_config(&cfg, dry_run)?;
    let kconf = load_keepalived(&cfg)?;
    let status = status_plan(&cfg)?;
    Ok(Setup {
        cfg,
        spec,
        kconf,
        status,
    })
}

/// `state-dir` and `metrics-dir`, checked: a configured directory must be
/// there and writable (exit 2, before any lock), the default state-dir is
/// used when it is there (the package's tmpfiles.d makes it) or can be
/// made, and skipped otherwise (floaty run by hand as a user).
fn status_plan(cfg: &Config) -> Result<StatusPlan, Error> {
    let usable = |key: &str, dir: &Path| -> Result<(), Error> {
        let why = match std::fs::metadata(dir) {
            Ok(m) if !m.is_dir() => "is not a directory",
            Ok(_) => match rustix::fs::access(dir, rustix::fs::Access::WRITE_OK) {
                Ok(()) => return Ok(()),
                Err(_) => "is not writable by this user",
            },
            Err(_) => "does not exist",
        };
        Err(Error::Config(crate::config::ConfigError::invalid(
            &cfg.path,
            Some(key),
            format!(
                "{} {why}; create it (writable by floaty, readable by the monitoring user) or remove the key",
                dir.display()
            ),
        )))
    };
    let state_dir = match &cfg.state_dir {
        StateDir::Configured(d) => {
            usable("state-dir", d)?;
            Some(d.clone())
        }
        StateDir::Default(d) => {
            if !d.is_dir() {
                use std::os::unix::fs::DirBuilderExt;
                let _ = std::fs::DirBuilder::new().mode(0o755).create(d);
            }
            usable("state-dir", d).ok().map(|()| d.clone())
        }
    };
    let metrics_dir = match &cfg.metrics_dir {
        Some(d) => {
            usable("metrics-dir", d)?;
            Some(d.clone())
        }
        None => None,
    };
    Ok(StatusPlan {
        state_dir,
        metrics_dir,
    })
}

/// Load keepalived.conf. With managed-addresses set and no keepalived.conf
/// present, run without it (vshn/floaty compatibility).
fn load_keepalived(cfg: &Config) -> Result<Option<KeepalivedConfig>, Error> {
    if !cfg.managed_addresses.is_empty() && !cfg.keepalived_config.exists() {
        return Ok(None);
    }
    let opts = keepalived::LoadOptions {
        config_id: cfg.keepalived_config_id.clone(),
    };
    Ok(Some(keepalived::load(&cfg.keepalived_config, &opts)?))
}

impl Setup {
    /// The instances `event` concerns: the instance itself, or every member
    /// of the sync group. Fails on names keepalived.conf does not know, on
    /// `verify-master: always` without VIPs to check, and on a lock
    /// directory other users could write.
    pub fn work_for(&self, event: &Event) -> Result<Vec<Work>, Error> {
        let group = (event.kind == Kind::Group).then_some(event.name.as_str());
        self.names(event)?
            .into_iter()
            .map(|instance| self.work(instance, group, event.state.is_master()))
            .collect()
    }

    /// The work for one instance keepalived.conf declares (or any name,
    /// without a keepalived.conf), as for a MASTER event when `master`.
    pub fn instance_work(&self, name: &str, master: bool) -> Result<Work, Error> {
        let instance =
            match &self.kconf {
                Some(k) => k.instance(name).map(|i| i.name.clone()).ok_or_else(|| {
                    Error::UnknownInstance {
                        name: name.to_string(),
                        conf: self.cfg.keepalived_config.clone(),
                    }
                })?,
                None => name.to_string(),
            };
        self.work(instance, None, master)
    }

    fn work(&self, instance: String, group: Option<&str>, master: bool) -> Result<Work, Error> {
        let lock_path = self.cfg.lock_file_template.path_for(&instance);
        match lock::check_dir(&lock::dir_of(&lock_path)) {
            // Found when the lock is taken (exit 1): a build host running
            // `--check` need not have the run-time directory.
            Ok(_) | Err(lock::LockError::MissingDir(_)) => {}
            Err(e) => return Err(Error::LockPlace(e)),
        }
        if let Some(plan) = self.health_plan(&instance) {
            plan.file.check().map_err(Error::TrackPlace)?;
        }
        let guard = if master {
            crate::guard::guard_for(&self.cfg, self.kconf.as_ref(), &instance)?
        } else {
            None
        };
        // A dry run writes nothing, so the guard has nothing to protect: it
        // only says what it found, and the run goes on to show what it would
        // write (the README's first command, on a machine without the VIPs).
        let guard = match &self.spec {
            Spec::DryRun { .. } => guard.map(|g| g.advisory()),
            _ => guard,
        };
        Ok(Work {
            addresses: address::host_addresses(&self.addresses_of(&instance)),
            group: group.map(str::to_string),
            lock_path,
            guard,
            instance,
        })
    }

    /// For the FIFO daemon and `--check`, which concern every instance:
    /// what a MASTER call for each would check (its split-brain guard, its
    /// lock directory), found before anything starts.
    pub fn check_every_instance(&self) -> Result<(), Error> {
        for instance in self.kconf.iter().flat_map(|k| &k.instances) {
            self.work(instance.name.clone(), None, true)?;
        }
        Ok(())
    }

    /// The refresher's plan for `instance`: what it refreshes, how often,
    /// through which provider. `keepalived`: the pidfds it must watch
    /// (none in the FIFO daemon, which watches keepalived itself).
    pub fn plan(&self, instance: &str, addresses: Vec<IpAddr>, keepalived: Vec<OwnedFd>) -> Plan {
        let cfg = &self.cfg;
        Plan {
            instance: instance.to_string(),
            status: Arc::new(Recorder::new(
                &self.status,
                instance,
                &cfg.provider.to_string(),
                &addresses,
                cfg.refresh_interval,
            )),
            addresses,
            interval: cfg.refresh_interval,
            timeout: cfg.refresh_timeout,
            back_off: cfg.back_off,
            spec: self.spec.clone(),
            keepalived,
            health: self.health_plan(instance),
        }
    }

    /// Where `instance` reports its health, when `track-file-template` is
    /// set (its directory checked by [`Setup::work_for`]).
    pub fn health_plan(&self, instance: &str) -> Option<HealthPlan> {
        let cfg = &self.cfg;
        let template = cfg.track_file_template.as_ref()?;
        Some(HealthPlan {
            file: TrackFile::new(template.path_for(instance)),
            demote_by: cfg.demote_by,
            interval: cfg.health_interval,
        })
    }

    /// For a prober: would a MASTER call with this config succeed now? It
    /// loads everything again (config, credential files, keepalived.conf)
    /// as that call would; about a millisecond, once per health-interval.
    pub fn precheck(&self) -> crate::health::probe::Precheck {
        let reload = self.reload();
        std::sync::Arc::new(move || reload().err().map(|e| e.to_string()))
    }

    /// For a prober: how to become `instance`'s refresher with the config
    /// as it will be then (see `handoff.rs`); None without addresses.
    pub fn prepare_refresher(&self, instance: &str) -> crate::handoff::Prepare {
        let reload = self.reload();
        let name = instance.to_string();
        Box::new(move || {
            let setup = reload()?;
            let work = setup.instance_work(&name, true)?;
            Ok((!work.addresses.is_empty())
                .then(|| (setup.plan(&name, work.addresses, Vec::new()), work.guard)))
        })
    }

    /// Loads this setup again from its file, as a call would now.
    fn reload(&self) -> impl Fn() -> Result<Setup, Error> + Send + Sync + 'static {
        let path = self.cfg.path.clone();
        let dry_run = matches!(self.spec, Spec::DryRun { .. });
        move || load_quietly(&path, dry_run)
    }

    /// How long a call for `state`, begun at `started`, waits for a lock.
    pub fn patience(&self, state: State, started: Instant) -> Patience {
        crate::stop::patience(state, self.cfg.lock_timeout, started)
    }

    /// Every instance keepalived.conf declares, with its addresses (for
    /// `--check` and the FIFO daemon's start-up).
    pub fn instances(&self) -> Vec<(String, Vec<Vip>)> {
        self.kconf
            .iter()
            .flat_map(|k| &k.instances)
            .map(|i| (i.name.clone(), self.addresses_of(&i.name)))
            .collect()
    }

    fn names(&self, event: &Event) -> Result<Vec<String>, Error> {
        let unknown_instance = || Error::UnknownInstance {
            name: event.name.clone(),
            conf: self.cfg.keepalived_config.clone(),
        };
        let unknown_group = || Error::UnknownGroup {
            name: event.name.clone(),
            conf: self.cfg.keepalived_config.clone(),
        };
        match (event.kind, &self.kconf) {
            (Kind::Instance, Some(k)) => k
                .instance(&event.name)
                .map(|i| vec![i.name.clone()])
                .ok_or_else(unknown_instance),
            // vshn/floaty never read keepalived.conf when managed-addresses
            // was set; keep accepting such setups without a keepalived.conf.
            (Kind::Instance, None) => Ok(vec![event.name.clone()]),
            (Kind::Group, Some(k)) => k
                .group(&event.name)
                .map(|g| g.members.clone())
                .ok_or_else(unknown_group),
            (Kind::Group, None) => Err(unknown_group()),
        }
    }

    fn addresses_of(&self, instance: &str) -> Vec<Vip> {
        if !self.cfg.managed_addresses.is_empty() {
            return self.cfg.managed_addresses.clone();
        }
        self.kconf
            .as_ref()
            .and_then(|k| k.instance(instance))
            .map(|i| i.addresses())
            .unwrap_or_default()
    }
}
