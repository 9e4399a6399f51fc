//! The few fields of Hetzner Cloud's JSON that floaty reads. Everything else
//! is ignored, so additions on their side never break us.

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
pub(crate) struct FloatingIp {
    pub id: u64,
    /// An IPv4 address, or for `type: ipv6` a /64 network (`2001:db8::/64`).
    #[serde(default)]
    pub ip: String,
    /// The server id, null when unassigned.
    #[serde(default)]
    pub server: Option<u64>,
    /// Blocked by Hetzner (abuse): it stays assigned but carries no
    /// traffic, which the self-test says.
    #[serde(default)]
    pub blocked: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct One {
    pub floating_ip: FloatingIp,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Page {
    #[serde(default)]
    pub floating_ips: Vec<FloatingIp>,
    #[serde(default)]
    pub meta: Option<Meta>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Meta {
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Pagination {
    #[serde(default)]
    pub next_page: Option<u64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Assign {
    pub server: u64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionAnswer {
    pub action: Action,
}

/// An asynchronous action: the 201 of an assign says only that it was
/// queued; the address moves when the action ends in `success`.
#[derive(Debug, Deserialize)]
pub(crate) struct Action {
    pub id: u64,
    #[serde(default)]
    pub command: String,
    /// `running`, `success` or `error`.
    pub status: String,
    #[serde(default)]
    pub error: Option<ErrorDetail>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ServerAnswer {
    pub server: Server,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Server {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}
