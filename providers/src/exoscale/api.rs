//! The few fields of Exoscale's API v2 JSON that floaty reads (names are
//! kebab-case there). Everything else is ignored, so additions on their
//! side never break us.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
pub(crate) struct ElasticIpList {
    #[serde(rename = "elastic-ips", default)]
    pub elastic_ips: Option<Vec<ElasticIp>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ElasticIp {
    pub id: String,
    #[serde(default)]
    pub ip: Option<String>,
}

impl ElasticIp {
    /// The address, tolerating a prefix (`192.0.2.10/32`) should the API
    /// ever add one.
    pub fn address(&self) -> Option<IpAddr> {
        let text = self.ip.as_deref()?.trim();
        text.split('/').next()?.parse().ok()
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct InstanceList {
    #[serde(default)]
    pub instances: Option<Vec<InstanceRef>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct InstanceRef {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Instance {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    /// Absent or null when none is attached.
    #[serde(rename = "elastic-ips", default)]
    pub elastic_ips: Option<Vec<IdRef>>,
}

impl Instance {
    pub fn holds(&self, eip: &str) -> bool {
        self.elastic_ips
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|e| e.id.eq_ignore_ascii_case(eip))
    }
}

#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct IdRef {
    pub id: String,
}

/// Body of `:attach` and `:detach`.
#[derive(Debug, Serialize)]
pub(crate) struct Target<'a> {
    pub instance: IdRefBorrowed<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct IdRefBorrowed<'a> {
    pub id: &'a str,
}

/// What every mutation answers, and `GET /operation/{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Operation {
    pub id: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_compact_kebab_json() {
        let body = serde_json::to_string(&Target {
            instance: IdRefBorrowed { id: "i-1" },
        })
        .unwrap_or_default();
        assert_eq!(body, r#"{"instance":{"id":"i-1"}}"#);
    }

    #[test]
    fn tolerant_reads() {
        let i: Instance = serde_json::from_str(r#"{"id":"x","elastic-ips":null}"#).expect("null");
        assert!(!i.holds("e"));
        let i: Instance =
            serde_json::from_str(r#"{"elastic-ips":[{"id":"E-1"}],"new-field":1}"#).expect("ok");
        assert!(i.holds("e-1"));
        let e: ElasticIp = serde_json::from_str(r#"{"id":"e","ip":"192.0.2.10/32"}"#).expect("ok");
        assert_eq!(e.address(), "192.0.2.10".parse().ok());
        let e: ElasticIp = serde_json::from_str(r#"{"id":"e"}"#).expect("ok");
        assert_eq!(e.address(), None);
    }
}
