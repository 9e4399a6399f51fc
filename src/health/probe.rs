//! The prober: while this node is not MASTER, read each address once every
//! health-interval, never write, and tell keepalived through the track file
//! whether this node could take over.
//!
//! Why a read of the address and not a "ping" of the API: it proves
//! everything a takeover needs short of the write itself: the API answers,
//! the credentials are accepted, the address exists in this account. The
//! same call the refresher makes in Verify mode, with a gate that refuses
//! every write, so one code path per cloud serves both.

use crate::status::Recorder;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use floaty_providers::{Mode, Provider, WriteGate};
use tokio::task::JoinSet;

use super::{Health, Verdict};
use crate::refresh::{self, Plan, SharedProvider};

/// A prober never writes: the address belongs to the MASTER.
struct ReadOnly;

impl WriteGate for ReadOnly {
    fn may_write(&self) -> bool {
        false
    }
}

/// What a MASTER call on this node would check before acting (config,
/// credential files, keepalived.conf): `Some(why)` when it would fail.
/// A token file that became unreadable leaves the running prober's token
/// intact, but the next MASTER call could not start a refresher: this node
/// could not move the address, which is what the track file must say.
pub type Precheck = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Probe every address of `plan` until dropped.
pub async fn probe_all(
    plan: Plan,
    health: Arc<Health>,
    provider: SharedProvider,
    precheck: Precheck,
) {
    let provider = provider
        .get_or_init(|| refresh::build_provider(&plan, Some(&health)))
        .await
        .clone();
    health.keep_together(provider.reads_together());
    let mut set = JoinSet::new();
    for addr in plan.addresses.iter().copied() {
        set.spawn(probe_one(
            plan.instance.clone(),
            addr,
            plan.timeout,
            provider.clone(),
            health.clone(),
            precheck.clone(),
            plan.status.clone(),
        ));
    }
    while set.join_next().await.is_some() {}
}

async fn probe_one(
    instance: String,
    addr: IpAddr,
    timeout: Duration,
    provider: Arc<dyn Provider>,
    health: Arc<Health>,
    precheck: Precheck,
    status: Arc<Recorder>,
) {
    loop {
        let verdict = match precheck() {
            Some(why) => {
                let why = format!("a MASTER call here would fail: {why}");
                tracing::warn!(instance = %instance, address = %addr, "probe: {why}");
                (Verdict::NodeBroken(why), Duration::ZERO)
            }
            None => probe(&instance, addr, timeout, provider.as_ref(), &status).await,
        };
        let (verdict, stay_away) = verdict;
        health.report(&instance, Some(addr), &verdict);
        status.flush_with(Some(health.track_value()));
        let wait = health.next_wait(Some(addr), health.interval());
        tokio::time::sleep(wait.max(stay_away)).await;
    }
}

/// One read of `addr`, never a write, sorted and logged; and how long the
/// API asked us to stay away (a 429's `Retry-After`, a deferred read), so
/// that probing never burns the budget the MASTER's write needs.
async fn probe(
    instance: &str,
    addr: IpAddr,
    timeout: Duration,
    provider: &dyn Provider,
    status: &Recorder,
) -> (Verdict, Duration) {
    let (result, calls) = floaty_providers::calls::recorded(tokio::time::timeout(
        timeout,
        provider.refresh(addr, Mode::Verify, &ReadOnly),
    ))
    .await;
    status.round(addr, false, &result, &calls);
    let verdict = match &result {
        Ok(r) => Verdict::of(r),
        Err(_) => Verdict::NoNews,
    };
    match (&verdict, &result) {
        (Verdict::NodeBroken(why), _) => {
            tracing::warn!(instance, address = %addr, "probe: {why}")
        }
        (Verdict::NoNews, Ok(Err(e))) => {
            tracing::info!(instance, address = %addr, "probe: {e} (not this node's fault: the value stays)")
        }
        (Verdict::NoNews, _) => {
            tracing::info!(instance, address = %addr, "probe: no answer within refresh-timeout ({timeout:?}; the value stays)")
        }
        (Verdict::Ready, _) => {
            tracing::debug!(instance, address = %addr, "probe: ready")
        }
    }
    let stay_away = match &result {
        Ok(Err(e)) => e.retry_after().unwrap_or_default(),
        _ => Duration::ZERO,
    };
    (verdict, stay_away)
}
