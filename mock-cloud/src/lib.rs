//! Local HTTP mocks of the cloud APIs floaty talks to, over real sockets.
//!
//! Real sockets rather than an in-process fake, because what breaks in
//! production is mostly on the wire: connection reuse, timeouts, resets,
//! status codes, odd bodies. The same mocks serve unit tests (as a library),
//! the behaviour tests and the lab (as the `floaty-mock-cloud` binary).
//!
//! Each mock runs its own threads, needs no async runtime, and stops when
//! its last handle is dropped. The API mocks also serve HTTPS
//! (`start_tls`), with a certificate from a test CA made at start-up whose
//! PEM `ca_pem()` hands to the test, for floaty's `ca-file`.

use std::time::Instant;

/// Old entries are dropped beyond this, so a long-running lab mock does not
/// grow without bound; counters such as [`State::patch_count`] are kept
/// separately and stay exact.
const MAX_LOG: usize = 50_000;

pub mod aws;
mod clock;
mod cloudscale;
pub mod digitalocean;
pub mod exoscale;
mod fault;
pub mod hetzner;
mod http;
mod ids;
mod metadata;
mod ratelimit;
mod tls;

pub use aws::{Ec2, Ec2State, ExpiredAnswer, Imds};
pub use cloudscale::{Cloudscale, State};
pub use digitalocean::{DigitalOcean, DigitalOceanState};
pub use exoscale::Exoscale;
pub use fault::Fault;
pub use hetzner::{AssignedConflict, Hetzner, HetznerState};
pub use metadata::{ExoscalePaths, Metadata};

/// One request as a mock received it, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Percent-decoded path, without the query.
    pub path: String,
    pub query: Option<String>,
    /// When the whole request had arrived.
    pub at: Instant,
    /// What was answered; None when a fault closed or held the connection.
    pub status: Option<u16>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
    /// The body, lossily decoded.
    pub body: String,
    /// The request budget left as the answer told it (`RateLimit-Remaining`);
    /// None for mocks without a budget and for answers a fault made.
    pub rate_remaining: Option<u64>,
    /// The Query API's `Action` (AWS EC2: `AssociateAddress`, ...), from
    /// the body or the query string; None for the other mocks.
    pub action: Option<String>,
}

impl Request {
    fn new(
        raw: &http::RawRequest,
        path: String,
        query: Option<String>,
        at: Instant,
        status: Option<u16>,
    ) -> Request {
        Request {
            method: raw.method.clone(),
            path,
            query,
            at,
            status,
            authorization: raw.header("authorization").map(str::to_string),
            content_type: raw.header("content-type").map(str::to_string),
            user_agent: raw.header("user-agent").map(str::to_string),
            body: String::from_utf8_lossy(&raw.body).into_owned(),
            rate_remaining: None,
            action: None,
        }
    }

    /// Appends to a mock's request log, dropping the oldest tenth when full.
    fn log(self, log: &mut Vec<Request>) {
        if log.len() >= MAX_LOG {
            log.drain(..MAX_LOG / 10);
        }
        log.push(self);
    }
}
