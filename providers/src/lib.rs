//! Cloud providers for floaty, behind one small trait.
//!
//! A provider knows how to make one address point at this node. Everything
//! else (when to call it, retries, back-off, timeouts, cancellation) lives in
//! the caller's refresher, so a provider stays a thin, testable HTTP client.
//!
//! Providers build their HTTP client in their constructor. Construct them
//! only *after* the refresher has forked: threads and connection pools do not
//! survive `fork()`.
//!
//! # Map
//!
//! One folder per cloud, each with `mod.rs` (the provider), `api.rs` (the
//! wire format), `metadata.rs` (who "here" is) and `tests.rs` (against
//! `mock-cloud`): `cloudscale/`, `exoscale/` (+ `sign.rs`), `hetzner/`,
//! `digitalocean/`, `aws/` (+ `sign.rs` SigV4, `credentials.rs`). Shared:
//! `http` (the client recipe, sending, errors), `metadata` (retrying
//! look-ups), `rate_budget` (reads paced by `RateLimit-*`), `read_share`
//! (one listing answering every address of an instance), `calls` (the
//! requests a refresh sent, for metrics), `secret`, `tls` (`ca-file`),
//! `endpoint` (the URL check), `dry_run`.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

pub mod aws;
pub mod calls;
pub mod cloudscale;
pub mod digitalocean;
pub mod dry_run;
mod endpoint;
pub mod exoscale;
pub mod hetzner;
mod http;
mod metadata;
mod rate_budget;
mod read_share;
mod secret;
#[cfg(test)]
mod test_gate;
mod tls;

pub use endpoint::{check_endpoint, EndpointError};
pub use metadata::DEFAULT_METADATA_URL;
pub use secret::Secret;
pub use tls::{CaBundle, CaBundleError};

/// A boxed future, so that `dyn Provider` works without extra crates.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How much a refresh may assume about where the address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Right after a MASTER event the address is almost surely elsewhere:
    /// write at once, every millisecond of failover counts.
    Write,
    /// Steady state: read where the address points, write only if elsewhere.
    Verify,
}

/// What a successful refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The address already pointed here; nothing was written.
    AlreadyHere,
    /// The address was written to point here. `previous` names where it
    /// pointed before when that was read (Verify mode), for the warn log.
    Moved { previous: Option<String> },
}

/// A failed refresh, classified by what the caller should do next.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// 4xx other than 429: retrying soon will not help (bad token, unknown
    /// address, ...). Wait for the next refresh interval.
    #[error("{operation}: HTTP {status}: {message}")]
    Rejected {
        operation: String,
        status: u16,
        message: String,
    },
    /// 5xx, 429, connection or protocol trouble: retry on the back-off,
    /// not sooner than `retry_after` when the server said so.
    #[error("{operation}: {message}")]
    Transient {
        operation: String,
        message: String,
        retry_after: Option<Duration>,
        /// What kind of trouble, for the metrics and `--status`.
        cause: Cause,
    },
    /// The API answered, and the address is not among what this account
    /// holds (a listing without it): this node's trouble, like a 404, but
    /// no status was answered for it, so none is claimed.
    #[error("{operation}: {message}")]
    NotFound { operation: String, message: String },
    /// The provider cannot work with what it was given (no token, no server
    /// UUID and no metadata, ...).
    #[error("{0}")]
    Setup(String),
    /// The [`WriteGate`] said no right before a write, so nothing was
    /// written (reads before it may have been sent). Not a failure to
    /// retry: the node stopped being MASTER while the refresh ran.
    #[error("{operation}: not sent, this node no longer holds the instance's virtual IPs")]
    Withheld { operation: String },
    /// A read not sent because the API's request budget is nearly spent
    /// (`RateLimit-Remaining`): not a failure, and no retry before `wait`.
    /// Why not a sleep inside the provider: the caller's refresh-timeout
    /// would cut it, and the caller's log should say why it is quiet.
    #[error("{operation}: not sent, {why}; next try in {:.1} s", .wait.as_secs_f64())]
    Deferred {
        operation: String,
        why: String,
        wait: Duration,
    },
}

/// Why a retryable refresh failed: what an SRE's dashboard groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// No answer in time (the client's or the caller's timeout).
    Timeout,
    /// The connection could not be made (refused, unreachable, TLS).
    Connect,
    /// HTTP 429.
    RateLimited,
    /// HTTP 5xx.
    ServerError,
    /// An answer that could not be read: a broken body, unexpected JSON,
    /// an asynchronous operation that failed on the provider's side.
    Protocol,
    /// The address is busy with an action already in flight (Hetzner's
    /// 423 `locked` and 409 `conflict`, DigitalOcean's `locked: true`):
    /// it clears by itself, and says nothing about this node.
    Locked,
}

/// A failed refresh's class, one word, stable: the `reason` label of
/// `floaty_refresh_errors_total` and the class `--status` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    Timeout,
    Connect,
    RateLimited,
    ServerError,
    Protocol,
    Locked,
    /// HTTP 401 or 403: this node's credentials.
    Auth,
    /// HTTP 404: the address or server is unknown to this account.
    NotFound,
    /// Any other 4xx.
    Rejected,
    /// The provider could not be set up (no server id, unreadable secret).
    Setup,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Connect => "connect",
            Reason::RateLimited => "429",
            Reason::ServerError => "5xx",
            Reason::Protocol => "protocol",
            Reason::Locked => "locked",
            Reason::Auth => "auth",
            Reason::NotFound => "not_found",
            Reason::Rejected => "rejected",
            Reason::Setup => "setup",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ProviderError {
    /// The failure's class; None for [`ProviderError::Withheld`] and
    /// [`ProviderError::Deferred`], which are no failures.
    pub fn reason(&self) -> Option<Reason> {
        Some(match self {
            ProviderError::Rejected {
                status: 401 | 403, ..
            } => Reason::Auth,
            ProviderError::Rejected { status: 404, .. } => Reason::NotFound,
            ProviderError::Rejected { .. } => Reason::Rejected,
            ProviderError::NotFound { .. } => Reason::NotFound,
            ProviderError::Transient { cause, .. } => match cause {
                Cause::Timeout => Reason::Timeout,
                Cause::Connect => Reason::Connect,
                Cause::RateLimited => Reason::RateLimited,
                Cause::ServerError => Reason::ServerError,
                Cause::Protocol => Reason::Protocol,
                Cause::Locked => Reason::Locked,
            },
            ProviderError::Setup(_) => Reason::Setup,
            ProviderError::Withheld { .. } | ProviderError::Deferred { .. } => return None,
        })
    }

    /// Whether the back-off should retry before the next interval.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProviderError::Transient { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Transient { retry_after, .. } => *retry_after,
            ProviderError::Deferred { wait, .. } => Some(*wait),
            _ => None,
        }
    }
}

/// Asked immediately before every write request a provider sends.
///
/// Why a callback and not a check by the caller: a refresh reads, then
/// writes, and the node can stop being MASTER in between (keepalived removes
/// the VIPs before its BACKUP notify, which then takes a moment to stop the
/// refresher). Only the provider knows when its write is about to leave.
pub trait WriteGate: Send + Sync {
    /// Whether a write may be sent now. Must be quick: it runs on the
    /// refresher's thread between a read and a write.
    fn may_write(&self) -> bool;
}

/// A gate that is always open, for callers without a split-brain guard
/// (`verify-master: off`, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct Open;

impl WriteGate for Open {
    fn may_write(&self) -> bool {
        true
    }
}

/// `Err(Withheld)` unless `gate` lets the write named `operation` go.
pub fn ask(gate: &dyn WriteGate, operation: impl FnOnce() -> String) -> Result<(), ProviderError> {
    if gate.may_write() {
        Ok(())
    } else {
        Err(ProviderError::Withheld {
            operation: operation(),
        })
    }
}

/// One line of a self-test report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub what: String,
    pub result: Result<String, String>,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            Ok(detail) => write!(f, "OK   {}: {}", self.what, detail),
            Err(e) => write!(f, "FAIL {}: {}", self.what, e),
        }
    }
}

/// The one trait every cloud implements.
pub trait Provider: Send + Sync {
    /// Short name for logs (`cloudscale`, `exoscale`, `hetzner`,
    /// `digitalocean`, `dry-run`).
    fn name(&self) -> &'static str;

    /// Who "here" is, for logs (a server UUID, an instance ID).
    fn target(&self) -> String;

    /// Make `ip` (a host address, never a network) point at this node,
    /// asking `gate` immediately before each write request; when it says no,
    /// fail with [`ProviderError::Withheld`] without sending that write.
    fn refresh<'a>(
        &'a self,
        ip: IpAddr,
        mode: Mode,
        gate: &'a dyn WriteGate,
    ) -> BoxFuture<'a, Result<Outcome, ProviderError>>;

    /// Check credentials and reachability; one `Check` per probe.
    fn self_test(&self) -> BoxFuture<'_, Vec<Check>>;

    /// Whether the addresses of an instance are best read at the same
    /// moment: true where one listing answers them all (`read_share.rs`).
    /// Elsewhere reads spread out, so 50 addresses are not 50 requests
    /// (and connections) in one burst.
    fn reads_together(&self) -> bool {
        false
    }
}
