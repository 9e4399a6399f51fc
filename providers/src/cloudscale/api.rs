//! The few fields of cloudscale's JSON that floaty reads. Everything else
//! is ignored, so additions on their side never break us.

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
pub(crate) struct FloatingIp {
    /// `192.0.2.123/32`; the self-test shows the address part.
    #[serde(default)]
    pub network: String,
    /// Null when the address is unassigned or on a load balancer.
    #[serde(default)]
    pub server: Option<ServerRef>,
}

impl FloatingIp {
    pub fn address(&self) -> &str {
        self.network.split('/').next().unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ServerRef {
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Server {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Patch<'a> {
    pub server: &'a str,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MetaData {
    #[serde(default)]
    pub meta: Option<Meta>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Meta {
    #[serde(default)]
    pub cloudscale_uuid: Option<String>,
}
