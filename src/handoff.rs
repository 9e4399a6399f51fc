//! notify mode's warm MASTER: the prober that holds a BACKUP instance's
//! lock becomes its refresher when the MASTER call asks, keeping the
//! connection to the API it has kept open by probing, so the first write
//! goes out without a TCP and TLS handshake (and without a fork, a runtime
//! and a client to build).
//!
//! The MASTER call's side is [`crate::lock::request_handoff`]; this is the
//! prober's. The call's ticket is carried into the lock, so ordering
//! against other calls holds as if the call had taken the lock itself; a
//! prober that does not answer in time is stopped the usual way.

use crate::error::Error;
use crate::guard::Guard;
use crate::lock::{self, InstanceLock};
use crate::process::ProcessId;
use crate::refresh::Plan;

/// Builds the refresher's plan and guard from the configuration as it is
/// now (it may have changed since the prober started), as the MASTER call
/// would; None when the instance has no addresses (any more).
pub type Prepare = Box<dyn Fn() -> Result<Option<(Plan, Option<Guard>)>, Error> + Send>;

/// What a prober needs to become the refresher.
pub struct Takeover {
    pub lock: InstanceLock,
    pub me: ProcessId,
    pub instance: String,
    pub group: Option<String>,
    pub prepare: Prepare,
}

impl Takeover {
    /// On SIGUSR2: the refresher's plan and guard when this prober is the
    /// refresher now (its lock record says so); None when there was no
    /// request for it, it was outdated, or the config cannot be used.
    pub fn take(&mut self) -> Option<(Plan, Option<Guard>)> {
        let ticket = lock::take_handoff_request(self.lock.path())?;
        let (plan, guard) = match (self.prepare)() {
            Ok(Some(ready)) => ready,
            Ok(None) => {
                tracing::warn!(instance = %self.instance, "not taking over as refresher: no addresses to manage");
                return None;
            }
            Err(e) => {
                tracing::warn!(instance = %self.instance, "not taking over as refresher: {e}");
                return None;
            }
        };
        match self
            .lock
            .hand_over(self.me, &self.instance, self.group.as_deref(), ticket)
        {
            Ok(true) => Some((plan, guard)),
            Ok(false) => {
                tracing::info!(instance = %self.instance, "an outdated MASTER call asked to take over; ignored");
                None
            }
            Err(e) => {
                tracing::error!(instance = %self.instance, "{e}");
                None
            }
        }
    }
}
