//! The dry-run provider behind `--dry-run`: the whole daemon runs (events,
//! refresher, back-off, logs) but nothing leaves the machine, so a new
//! configuration can be watched against real keepalived transitions first.

use std::net::IpAddr;

use crate::{ask, BoxFuture, Check, Mode, Outcome, Provider, ProviderError, WriteGate};

#[derive(Debug, Clone)]
pub struct DryRun {
    target: String,
}

impl DryRun {
    /// `target` is what the real provider would point addresses at (a
    /// server UUID, or a placeholder when it is unknown).
    pub fn new(target: String) -> DryRun {
        DryRun { target }
    }
}

impl Provider for DryRun {
    fn name(&self) -> &'static str {
        "dry-run"
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    /// Always "moved": in Verify mode a real provider would read first, but
    /// claiming `AlreadyHere` without reading would hide what a real run
    /// does on its first refresh. The gate is asked where a real provider
    /// would ask it, so a dry run shows what a closed gate would hold back.
    fn refresh<'a>(
        &'a self,
        ip: IpAddr,
        mode: Mode,
        gate: &'a dyn WriteGate,
    ) -> BoxFuture<'a, Result<Outcome, ProviderError>> {
        Box::pin(async move {
            ask(gate, || format!("dry-run: point {ip} at {}", self.target))?;
            tracing::info!(
                %ip,
                ?mode,
                target = %self.target,
                "dry-run: would point {ip} at {}",
                self.target
            );
            Ok(Outcome::Moved { previous: None })
        })
    }

    fn self_test(&self) -> BoxFuture<'_, Vec<Check>> {
        Box::pin(async move {
            vec![Check {
                what: "dry-run".to_string(),
                result: Ok(format!(
                    "nothing was contacted; refreshes would point addresses at {}",
                    self.target
                )),
            }]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dry_run_never_fails() {
        let p = DryRun::new("u-1".into());
        let ip: IpAddr = "192.0.2.10".parse().expect("ip");
        assert_eq!(
            p.refresh(ip, Mode::Verify, &crate::Open).await.ok(),
            Some(Outcome::Moved { previous: None })
        );
        let checks = p.self_test().await;
        assert_eq!(checks.len(), 1);
        assert!(checks[0].result.is_ok());
        assert_eq!((p.name(), p.target().as_str()), ("dry-run", "u-1"));
    }

    struct Closed;
    impl WriteGate for Closed {
        fn may_write(&self) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn a_closed_gate_withholds_the_dry_run_write_too() {
        let p = DryRun::new("u-1".into());
        let ip: IpAddr = "192.0.2.10".parse().expect("ip");
        let e = p.refresh(ip, Mode::Write, &Closed).await.unwrap_err();
        assert!(matches!(e, ProviderError::Withheld { .. }), "{e:?}");
    }
}
