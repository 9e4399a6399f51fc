//! The few fields of DigitalOcean's JSON that floaty reads. Everything else
//! is ignored, so additions on their side never break us.

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
pub(crate) struct ReservedIp {
    #[serde(default)]
    pub ip: String,
    /// The full droplet object, null when unassigned.
    #[serde(default)]
    pub droplet: Option<Droplet>,
    /// An action on the address is pending: no new one is accepted.
    #[serde(default)]
    pub locked: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Droplet {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// `GET /v2/reserved_ips/{ip}` (`reserved_ip`) and `/v2/reserved_ipv6/{ip}`
/// (`reserved_ipv6`).
#[derive(Debug, Deserialize)]
pub(crate) struct One {
    #[serde(alias = "reserved_ipv6")]
    pub reserved_ip: ReservedIp,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Page {
    #[serde(default, alias = "reserved_ipv6s")]
    pub reserved_ips: Vec<ReservedIp>,
    #[serde(default)]
    pub links: Option<Links>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Links {
    #[serde(default)]
    pub pages: Option<Pages>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Pages {
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Assign {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub droplet_id: u64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionAnswer {
    pub action: Action,
}

/// An asynchronous action: the address moves when it leaves `in-progress`.
#[derive(Debug, Deserialize)]
pub(crate) struct Action {
    pub id: u64,
    /// `in-progress`, `completed` or `errored` (a 2021 report saw `done`:
    /// anything but `in-progress` is final, only `errored` a failure).
    #[serde(default)]
    pub status: String,
    #[serde(default, rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DropletAnswer {
    pub droplet: Droplet,
}
