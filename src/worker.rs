//! The forked process of one instance in notify mode: the refresher or the
//! prober (and the refresher a prober becomes), its runtime, its signals,
//! and how it ends: SIGTERM/SIGINT, keepalived gone, or nothing left.
//!
//! Apart from `refresh.rs` (the refresh loop the FIFO daemon runs too) and
//! `health/probe.rs` (the probe loop), which both only do their work: this
//! file is what ties them to one process's life.

use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};

use crate::guard::Guard;
use crate::handoff::Takeover;
use crate::health::{self, Health, HealthPlan};
use crate::lock::InstanceLock;
use crate::process::{watch_keepalived, ReadyPipe};
use crate::refresh::{self, Plan, SharedProvider};

/// What the instance's long-running part does: refresh while MASTER,
/// probe (read only, for the track file) otherwise.
/// Each holds the instance's lock, for as long as the process lives.
pub enum Role {
    /// `guard`: check for the instance's VIPs before each write (`guard.rs`).
    Refresh(Option<Guard>, InstanceLock),
    /// A prober, which may become the refresher (`handoff.rs`).
    Probe(HealthPlan, health::probe::Precheck, Takeover),
}

/// How the refresher ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    Signalled(&'static str),
    /// Every address task ended (none to refresh).
    NothingLeft,
    KeepalivedGone,
}

/// Run the refresher (or prober) to its end. Returns the process exit code.
pub fn run(plan: Plan, role: Role, ready: ReadyPipe) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(instance = %plan.instance, "cannot start the refresher runtime: {e}");
            return 1;
        }
    };
    let code = runtime.block_on(supervise(plan, role, ready));
    // Do not wait for in-flight requests: dropping them is the cancellation.
    runtime.shutdown_background();
    code
}

async fn supervise(mut plan: Plan, role: Role, ready: ReadyPipe) -> i32 {
    // SIGUSR1 before `ready`: the call that pokes us (`poke.rs`) checks
    // that we catch it, and its default action would end us.
    let (Ok(mut term), Ok(mut int), Ok(usr1), Ok(mut usr2)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
    ) else {
        tracing::error!(instance = %plan.instance, "cannot install signal handlers");
        return 1;
    };
    let mut watch = Box::pin(watch_keepalived(std::mem::take(&mut plan.keepalived)));
    ready.signal();
    let instance = plan.instance.clone();

    // Split-brain repair (`reassert.rs`): SIGUSR1 pokes the refresher,
    // the one this process starts as or the one a prober becomes.
    let (trigger, pauses) = crate::reassert::channel(&instance, &plan.addresses);
    let status = plan.status.clone();
    let mut pokes = Box::pin(crate::reassert::poke_on_signal(
        usr1,
        trigger,
        status.clone(),
    ));
    // The provider a prober probes with, handed on warm to the refresher
    // it may become.
    let provider = SharedProvider::default();
    let probe_spec = plan.spec.clone();
    type Work = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
    // Both the lock (a refresher's) and the takeover (a prober's, which
    // holds the lock) live until this function returns.
    let (mut work, mut what, mut takeover, _lock): (Work, _, Option<Takeover>, _) = match role {
        Role::Refresh(guard, lock) => (
            Box::pin(refresh::refresh_all(
                plan,
                guard.map(Arc::new),
                pauses.clone(),
            )),
            "refresher",
            None,
            Some(lock),
        ),
        Role::Probe(health, precheck, takeover) => {
            let health = Arc::new(Health::start(health, &instance));
            let probe = health::probe::probe_all(plan, health, provider.clone(), precheck);
            (Box::pin(probe), "prober", Some(takeover), None)
        }
    };
    let mut may_take_over = takeover.is_some();
    let ending = loop {
        tokio::select! {
            never = &mut pokes => match never {},
            _ = term.recv() => break Ending::Signalled("SIGTERM"),
            _ = int.recv() => break Ending::Signalled("SIGINT"),
            _ = &mut watch => break Ending::KeepalivedGone,
            _ = &mut work => break Ending::NothingLeft,
            Some(()) = usr2.recv(), if may_take_over => {
                let Some((mut plan, guard)) = takeover.as_mut().and_then(|t| t.take()) else {
                    continue;
                };
                // One record for the instance's whole life in this process.
                plan.status = status.clone();
                status.became_refresher();
                // Dropping the probe's future ends its tasks.
                let provider = if plan.spec == probe_spec {
                    provider.clone()
                } else {
                    SharedProvider::default()
                };
                tracing::info!(instance = %instance, addresses = %crate::address::comma_list(&plan.addresses),
                    "prober takes over as refresher (MASTER), on its open connection");
                work = Box::pin(refresh::refresh_all_with(
                    plan,
                    guard.map(Arc::new),
                    provider,
                    pauses.clone(),
                ));
                what = "refresher";
                // `takeover` stays: it holds the lock.
                may_take_over = false;
            }
        }
    };
    match ending {
        Ending::KeepalivedGone => {
            tracing::warn!(instance = %instance, "keepalived is gone; {what} stops")
        }
        Ending::Signalled(why) => tracing::info!(instance = %instance, "{what} stops ({why})"),
        Ending::NothingLeft => {
            tracing::info!(instance = %instance, "{what} stops (nothing left to do)")
        }
    }
    0
}
