//! The refresher: keeps every address of one instance pointed here until
//! told to stop, keepalived dies, or a signal arrives.
//!
//! In notify mode it runs in the forked child (`worker.rs`, where the tokio
//! runtime and the HTTP client are born); the FIFO daemon runs the same
//! [`refresh_all`] as a task per MASTER instance. Each address gets its own
//! task: one slow address must not delay the others.

use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use floaty_providers::{Mode, Open, Outcome, Provider, ProviderError, WriteGate};
use tokio::task::JoinSet;

use crate::backoff::Schedule;
use crate::beat::Beat;
use crate::config::BackOff;
use crate::guard::Guard;
use crate::health::{Health, HealthPlan, Verdict};
use crate::provider::Spec;
use crate::reassert::{Pauses, Wake};
use crate::status::Recorder;

/// Everything the refresher needs, prepared (and validated) before the fork.
pub struct Plan {
    pub instance: String,
    pub addresses: Vec<IpAddr>,
    pub interval: Duration,
    pub timeout: Duration,
    pub back_off: BackOff,
    pub spec: Spec,
    /// pidfds of the keepalived processes that started us.
    pub keepalived: Vec<OwnedFd>,
    /// Where to tell keepalived whether this node can move the address
    /// (`track-file-template`), if anywhere.
    pub health: Option<HealthPlan>,
    /// What `--status` and the metrics show of this instance; the owner
    /// writes it (a recorder without directories writes nothing).
    pub status: Arc<Recorder>,
}

/// A provider built at most once and shared by the refreshers it is handed
/// to. Why: the FIFO daemon runs every MASTER instance's refresher on one
/// thread, and building a provider (an HTTP client with its TLS roots, a
/// metadata look-up with its retries) costs that thread time for each of
/// them when 50 instances become MASTER at once; and 50 providers keep 50
/// connection pools (one connection and TLS handshake per instance, and
/// 1.0-1.3 MiB of the daemon's RSS, docs/RELIABILITY.md).
pub type SharedProvider = Arc<tokio::sync::OnceCell<Arc<dyn Provider>>>;

/// Refresh every address of `plan` until dropped (the forked refresher runs
/// it to its end; the FIFO daemon aborts it when the instance leaves
/// MASTER), writing only while `guard`, if any, finds the instance's VIPs
/// on this node; `pauses` cut its waits short for split-brain repair.
pub async fn refresh_all(plan: Plan, guard: Option<Arc<Guard>>, pauses: Pauses) {
    refresh_all_with(plan, guard, SharedProvider::default(), pauses).await
}

/// [`refresh_all`] with a provider shared with other refreshers (built by
/// whichever needs it first); `provider` must come from `plan.spec`.
pub async fn refresh_all_with(
    plan: Plan,
    guard: Option<Arc<Guard>>,
    provider: SharedProvider,
    pauses: Pauses,
) {
    // With a track file, the MASTER's own Verify rounds are its probes: a
    // revoked token must be noticed within a health-interval, not a
    // refresh-interval.
    let health = plan
        .health
        .clone()
        .map(|h| Arc::new(Health::start(h, &plan.instance)));
    let interval = match &health {
        Some(h) => plan.interval.min(h.interval()),
        None => plan.interval,
    };
    let provider = provider
        .get_or_init(|| build_provider(&plan, health.as_deref()))
        .await
        .clone();
    let beat = Arc::new(Beat::default());
    beat.keep_together(provider.reads_together());
    if let Some(h) = &health {
        h.keep_together(provider.reads_together());
    }
    let mut set = JoinSet::new();
    for addr in plan.addresses.iter().copied() {
        let task = Task {
            instance: plan.instance.clone(),
            addr,
            interval,
            health: health.clone(),
            timeout: plan.timeout,
            back_off: plan.back_off,
            provider: provider.clone(),
            guard: guard.clone(),
            pauses: pauses.clone(),
            status: plan.status.clone(),
            beat: beat.clone(),
        };
        set.spawn(task.run());
    }
    while set.join_next().await.is_some() {}
}

/// The provider may need the metadata service, which can be slow right
/// after boot: keep trying on the back-off rather than give the address up.
/// A provider that cannot be set up (no server of that id, ...) is this
/// node's own trouble: `health` hears of it.
pub(crate) async fn build_provider(plan: &Plan, health: Option<&Health>) -> Arc<dyn Provider> {
    let mut schedule = Schedule::new(&plan.back_off);
    loop {
        match plan.spec.build().await {
            Ok(p) => return p,
            Err(e) => {
                if let Some(h) = health {
                    h.report(&plan.instance, None, &Verdict::of_error(&e));
                }
                let wait = schedule.next().unwrap_or(plan.interval);
                tracing::error!(instance = %plan.instance, "provider not ready: {e}; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

struct Task {
    instance: String,
    addr: IpAddr,
    interval: Duration,
    timeout: Duration,
    back_off: BackOff,
    provider: Arc<dyn Provider>,
    guard: Option<Arc<Guard>>,
    health: Option<Arc<Health>>,
    pauses: Pauses,
    status: Arc<Recorder>,
    beat: Arc<Beat>,
}

impl Task {
    async fn run(mut self) {
        // The first refresh after MASTER writes blindly: the address is
        // almost surely elsewhere, and a read would cost a round trip.
        let mut mode = Mode::Write;
        let mut this_round = mode;
        loop {
            if self.attempt_until_done(this_round).await {
                mode = Mode::Verify;
            }
            let wait = match &self.health {
                Some(h) => h.next_wait(Some(self.addr), self.interval),
                None => self.beat.wait(self.interval),
            };
            // A re-assert reads first: the address is most likely here.
            this_round = match self.pauses.wait(wait).await {
                Wake::Interval => mode,
                Wake::Reassert => Mode::Verify,
            };
        }
    }

    /// One refresh, retried on the back-off. True when it succeeded.
    async fn attempt_until_done(&self, mut mode: Mode) -> bool {
        let mut schedule = Schedule::new(&self.back_off);
        let server = self.provider.target();
        loop {
            // The split-brain guard, before every try (a Verify round may
            // write too): not MASTER, no try at all, not even a read.
            // Once the VIPs appear the address is likely elsewhere: write.
            if let Some(guard) = &self.guard {
                if guard.wait_until_held().await {
                    mode = Mode::Write;
                    schedule = Schedule::new(&self.back_off);
                }
            }
            // The guard again, inside the provider, right before each
            // write: the VIPs can leave between the check above and the
            // write (a Verify round reads first; Exoscale writes several
            // times per refresh).
            let gate: &dyn WriteGate = match &self.guard {
                Some(guard) => guard.as_ref(),
                None => &Open,
            };
            let (result, calls) = floaty_providers::calls::recorded(tokio::time::timeout(
                self.timeout,
                self.provider.refresh(self.addr, mode, gate),
            ))
            .await;
            if let Some(h) = &self.health {
                match &result {
                    // Nothing was learnt when the guard withheld the write.
                    Ok(Err(ProviderError::Withheld { .. })) | Err(_) => {}
                    Ok(r) => h.report(&self.instance, Some(self.addr), &Verdict::of(r)),
                }
            }
            self.status
                .round(self.addr, mode == Mode::Write, &result, &calls);
            self.status
                .flush_with(self.health.as_ref().map(|h| h.track_value()));
            let (error, retry_after) = match result {
                Ok(Ok(outcome)) => {
                    self.log_outcome(mode, &outcome, &server);
                    return true;
                }
                // Not a failure: the node stopped being MASTER while the
                // refresh ran (the guard logged that). No back-off, no
                // retry: back to waiting for the VIPs, and a write at once
                // should they come back.
                Ok(Err(e @ ProviderError::Withheld { .. })) => {
                    tracing::info!(instance = %self.instance, address = %self.addr, server = %server,
                        "{e}; waiting for them");
                    mode = Mode::Write;
                    schedule = Schedule::new(&self.back_off);
                    continue;
                }
                // Not a failure either: the API's budget is low, so this
                // read waits its turn (rate_budget.rs); the back-off is not
                // spent on it.
                Ok(Err(ProviderError::Deferred { why, wait, .. })) => {
                    tracing::info!(instance = %self.instance, address = %self.addr, server = %server,
                        "read deferred: {why}; next try in {:.1}s", wait.as_secs_f64());
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Ok(Err(e)) if !e.is_transient() => {
                    tracing::error!(instance = %self.instance, address = %self.addr, server = %server,
                        "refresh rejected, next try in one refresh interval: {e}");
                    return false;
                }
                Ok(Err(e)) => (e.to_string(), e.retry_after()),
                Err(_) => (
                    format!("no answer within refresh-timeout ({:?})", self.timeout),
                    None,
                ),
            };
            let Some(wait) = schedule.next() else {
                tracing::error!(instance = %self.instance, address = %self.addr, server = %server,
                    "refresh failed: {error}; back-off max-elapsed-time spent, next try in one refresh interval");
                return false;
            };
            let wait = retry_after.map_or(wait, |ra| ra.max(wait));
            tracing::warn!(instance = %self.instance, address = %self.addr, server = %server,
                "refresh failed: {error}; retrying in {:.1}s", wait.as_secs_f64());
            tokio::time::sleep(wait).await;
        }
    }

    fn log_outcome(&self, mode: Mode, outcome: &Outcome, server: &str) {
        match (mode, outcome) {
            (_, Outcome::AlreadyHere) => {
                tracing::debug!(instance = %self.instance, address = %self.addr, server = %server, "address points here")
            }
            (Mode::Write, Outcome::Moved { .. }) => {
                tracing::info!(instance = %self.instance, address = %self.addr, server = %server, "address pointed here")
            }
            (Mode::Verify, Outcome::Moved { previous }) => tracing::warn!(
                instance = %self.instance, address = %self.addr, server = %server,
                "address was on {}, re-pointed here", previous.as_deref().unwrap_or("another server")
            ),
        }
    }
}
