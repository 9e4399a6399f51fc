//! The owner's live record of one instance, and its two files: the state
//! (`STATE-DIR/NAME.json`, for `--status`) and the metrics
//! (`METRICS-DIR/floaty_NAME.prom`). Written at most once per refresh or
//! probe round and on role changes, whole, by rename. A file that cannot be
//! written is logged once and the refreshing goes on: the address matters
//! more than the metrics.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use floaty_providers::calls::{Call, Operation};
use floaty_providers::{Outcome, ProviderError};

use super::record::{now, AddressRecord, ErrorRecord, InstanceRecord, Role, SCHEMA};
use super::StatusPlan;

/// What a refresh or probe attempt ended with: the provider's answer, or
/// none within refresh-timeout.
pub type Attempt = Result<Result<Outcome, ProviderError>, tokio::time::error::Elapsed>;

pub struct Recorder {
    state_path: Option<PathBuf>,
    metrics_path: Option<PathBuf>,
    record: Mutex<InstanceRecord>,
    warned: AtomicBool,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("state_path", &self.state_path)
            .field("metrics_path", &self.metrics_path)
            .finish()
    }
}

impl Recorder {
    /// A record for `instance`, not yet written. No I/O: this is made
    /// before the fork, with the rest of the plan.
    pub fn new(
        plan: &StatusPlan,
        instance: &str,
        provider: &str,
        addresses: &[IpAddr],
        refresh_interval: Duration,
    ) -> Recorder {
        Recorder {
            state_path: plan.state_path(instance),
            metrics_path: plan.metrics_path(instance),
            record: Mutex::new(InstanceRecord {
                schema: SCHEMA,
                instance: instance.to_string(),
                provider: provider.to_string(),
                refresh_interval_seconds: refresh_interval.as_secs_f64(),
                addresses: addresses.iter().map(|a| AddressRecord::new(*a)).collect(),
                ..InstanceRecord::default()
            }),
            warned: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InstanceRecord> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with(&self, f: impl FnOnce(&mut InstanceRecord)) {
        f(&mut self.lock());
    }

    /// A copy of the record as it is now (the daemon's `/metrics`).
    pub fn record(&self) -> InstanceRecord {
        self.lock().clone()
    }

    /// The notify call that stopped the instance's owner and starts none
    /// (BACKUP, FAULT, STOP without a track file), while it holds the lock:
    /// the record says so, the previous owner's counters kept.
    pub fn left_without_owner(
        plan: &StatusPlan,
        instance: &str,
        state: &str,
        source: &str,
    ) -> Recorder {
        let previous = previous_record(plan.state_path(instance).as_deref(), instance);
        let (provider, addresses, interval) = match &previous {
            Some(p) => (
                p.provider.clone(),
                p.addresses.iter().map(|a| a.address).collect(),
                Duration::from_secs_f64(p.refresh_interval_seconds.max(0.0)),
            ),
            None => (String::new(), Vec::new(), Duration::ZERO),
        };
        let r = Recorder::new(plan, instance, &provider, &addresses, interval);
        r.carry_on(previous);
        r.set_role(Role::None, None);
        r.event(state, source);
        r.flush();
        r
    }

    /// This process (or task) owns the instance now: carry the counters on
    /// from the previous owner's file (a Prometheus counter should not
    /// reset on every failover) and note the role and the event. Written
    /// with the first round's result, not now: this is on the way to a
    /// cold MASTER's first write.
    pub fn begin(&self, role: Role, pid: Option<(i32, u64)>, event: Option<(&str, &str)>) {
        let instance = self.lock().instance.clone();
        self.carry_on(previous_record(self.state_path.as_deref(), &instance));
        self.set_role(role, pid);
        if let Some((state, source)) = event {
            self.event(state, source);
        }
    }

    /// Takes the counters and keepalived's last word from the previous
    /// owner's record.
    fn carry_on(&self, previous: Option<InstanceRecord>) {
        self.with(|r| {
            if let Some(prev) = previous {
                r.events = prev.events;
                r.split_brain_repairs = prev.split_brain_repairs;
                r.failover = prev.failover;
                r.api = prev.api;
                r.master_since = prev.master_since;
                r.keepalived_state = prev.keepalived_state;
                r.keepalived_since = prev.keepalived_since;
                r.event_source = prev.event_source;
                r.drained = r.drained.or(prev.drained);
                r.health_value = r.health_value.or(prev.health_value);
                for a in &mut r.addresses {
                    if let Some(p) = prev.addresses.iter().find(|p| p.address == a.address) {
                        *a = AddressRecord {
                            consecutive_failures: 0,
                            ..p.clone()
                        };
                    }
                }
            }
        });
    }

    pub fn set_role(&self, role: Role, pid: Option<(i32, u64)>) {
        self.with(|r| {
            r.role = role;
            r.pid = pid.map(|p| p.0);
            r.pid_start_time = pid.map(|p| p.1);
            r.role_since = Some(now());
        });
    }

    /// A prober took over on a MASTER call (`handoff.rs`): same process,
    /// new role. Written with the first write's result, which this must
    /// not delay.
    pub fn became_refresher(&self) {
        self.with(|r| {
            r.role = Role::Refresher;
            r.role_since = Some(now());
        });
        self.event("MASTER", "notify");
    }

    /// keepalived said `state` about the instance (`source`: notify, fifo).
    pub fn event(&self, state: &str, source: &str) {
        let t = now();
        self.with(|r| {
            *r.events.entry(format!("{state}/{source}")).or_default() += 1;
            if r.keepalived_state.as_deref() != Some(state) {
                r.keepalived_since = Some(t);
            }
            r.keepalived_state = Some(state.to_string());
            r.event_source = Some(source.to_string());
            r.master_since = (state == "MASTER").then_some(t);
        });
    }

    pub fn split_brain_repair(&self) {
        self.with(|r| r.split_brain_repairs += 1);
    }

    pub fn health(&self, value: i32, drained: bool) {
        self.with(|r| {
            r.health_value = Some(value);
            r.drained = Some(drained);
        });
    }

    /// One round for `addr` (with its retries folded in by the caller:
    /// each attempt is one call of this).
    pub fn round(&self, addr: IpAddr, wrote: bool, attempt: &Attempt, calls: &[Call]) {
        let t = now();
        self.with(|r| {
            for c in calls {
                let code = c.code.map_or("none".to_string(), |c| c.to_string());
                r.api
                    .entry(format!("{} {code}", c.operation.as_str()))
                    .or_default()
                    .observe(c.duration);
            }
            let master_since = r.master_since;
            let Some(a) = r.addresses.iter_mut().find(|a| a.address == addr) else {
                return;
            };
            for c in calls {
                *a.calls.entry(c.operation.as_str().to_string()).or_default() += 1;
                a.last_latency_seconds = Some(c.duration.as_secs_f64());
            }
            a.refreshes += 1;
            let confirmed = match attempt {
                Ok(Ok(outcome)) => {
                    a.last_success = Some(t);
                    a.consecutive_failures = 0;
                    a.last_error = None;
                    a.owner_is_here = Some(true);
                    a.mismatch_since = None;
                    match outcome {
                        Outcome::AlreadyHere => {
                            a.last_read = Some(t);
                        }
                        Outcome::Moved { previous } => {
                            a.last_write = Some(t);
                            if !wrote {
                                // Read elsewhere, then re-pointed.
                                a.last_read = Some(t);
                                a.corrections += 1;
                            }
                            a.owner = previous.clone().or(a.owner.take());
                        }
                    }
                    true
                }
                // Nothing was sent: no news, and no failure.
                Ok(Err(ProviderError::Deferred { .. })) => false,
                Ok(Err(ProviderError::Withheld { .. })) => {
                    // The read found it elsewhere; nothing was written.
                    a.last_success = Some(t);
                    a.consecutive_failures = 0;
                    a.last_error = None;
                    seen_elsewhere(a, t);
                    false
                }
                Ok(Err(e)) => {
                    let reason = e.reason().map_or("unknown", |r| r.as_str());
                    fail(a, reason, &e.to_string(), t);
                    // A read-first round writes only when the read found
                    // the address elsewhere: that read is news even though
                    // the write failed.
                    let read_elsewhere =
                        !wrote && calls.iter().any(|c| c.operation == Operation::Assign);
                    if read_elsewhere {
                        seen_elsewhere(a, t);
                    }
                    false
                }
                Err(_) => {
                    fail(a, "timeout", "no answer within refresh-timeout", t);
                    false
                }
            };
            if confirmed {
                if let Some(since) = master_since {
                    r.failover
                        .observe(Duration::from_secs_f64((t - since).max(0.0)));
                    r.master_since = None;
                }
            }
        });
    }

    /// [`Recorder::flush`], with the track file's value and drain first
    /// (`None`: no track file).
    pub fn flush_with(&self, health: Option<(i32, bool)>) {
        if let Some((value, drained)) = health {
            self.health(value, drained);
        }
        self.flush();
    }

    /// Writes both files from the record as it is now.
    pub fn flush(&self) {
        let (json, prom) = {
            let mut r = self.lock();
            r.updated = now();
            (
                serde_json::to_vec_pretty(&*r).unwrap_or_default(),
                self.metrics_path
                    .as_ref()
                    .map(|_| super::metrics::render(&r)),
            )
        };
        if let Some(p) = &self.state_path {
            if let Err(e) = crate::replace_file::replace(p, &json, 0o644) {
                self.warn_once(&format!("cannot write state file {}: {e}", p.display()));
            }
        }
        if let (Some(p), Some(text)) = (&self.metrics_path, prom) {
            if let Err(e) = crate::replace_file::replace(p, text.as_bytes(), 0o644) {
                self.warn_once(&format!("cannot write metrics file {}: {e}", p.display()));
            }
        }
    }

    fn warn_once(&self, msg: &str) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!("{msg}; refreshing goes on (warned once)");
        }
    }
}

/// The record at `path`, if it is one of this schema for `instance`.
fn previous_record(path: Option<&std::path::Path>, instance: &str) -> Option<InstanceRecord> {
    super::record::read(path?).filter(|p| p.schema == SCHEMA && p.instance == instance)
}

/// A read found the address on another server.
fn seen_elsewhere(a: &mut AddressRecord, t: f64) {
    a.last_read = Some(t);
    if a.owner_is_here != Some(false) {
        a.mismatch_since = Some(t);
    }
    a.owner_is_here = Some(false);
}

fn fail(a: &mut AddressRecord, reason: &str, message: &str, t: f64) {
    a.consecutive_failures += 1;
    *a.errors.entry(reason.to_string()).or_default() += 1;
    a.last_error = Some(ErrorRecord {
        reason: reason.to_string(),
        message: crate::text::clip(message, 300),
        at: t,
    });
}
