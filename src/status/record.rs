//! What one instance's owner (refresher, prober, FIFO task, or the notify
//! call that left it without one) last knew, as `STATE-DIR/NAME.json`:
//! the one source `--status` and the metrics file are made from. It holds
//! no secret: error lines come from providers that redact them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Bumped when a field changes meaning; `--status` refuses other versions.
pub const SCHEMA: u32 = 1;

/// Seconds since the epoch, as the metrics and the JSON carry them.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The record in the state file at `path`; None when there is none or it
/// does not parse.
pub fn read(path: &std::path::Path) -> Option<InstanceRecord> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Who holds the instance on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Refresher,
    Prober,
    #[default]
    None,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Refresher => "refresher",
            Role::Prober => "prober",
            Role::None => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InstanceRecord {
    pub schema: u32,
    pub instance: String,
    pub provider: String,
    /// keepalived's last state for the instance (MASTER, BACKUP, ...) and
    /// when it came, and whether by a notify call or the FIFO.
    pub keepalived_state: Option<String>,
    pub keepalived_since: Option<f64>,
    pub event_source: Option<String>,
    pub role: Role,
    pub pid: Option<i32>,
    /// The owner's start time in clock ticks (`/proc/PID/stat`): a reused
    /// PID is not taken for the owner.
    pub pid_start_time: Option<u64>,
    pub role_since: Option<f64>,
    pub refresh_interval_seconds: f64,
    /// None when no track file is configured (health reporting off).
    pub drained: Option<bool>,
    pub health_value: Option<i32>,
    pub updated: f64,
    pub addresses: Vec<AddressRecord>,
    /// `STATE/SOURCE` → count, e.g. `MASTER/notify`.
    pub events: BTreeMap<String, u64>,
    pub split_brain_repairs: u64,
    /// When the last MASTER event came and whether the cloud has
    /// confirmed this node since (for the failover duration).
    pub master_since: Option<f64>,
    pub failover: Histogram,
    /// `OPERATION CODE` → latency histogram (`get 200`, `assign none`).
    pub api: BTreeMap<String, Histogram>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressRecord {
    pub address: IpAddr,
    /// The server the last read saw the address on, if a read said.
    pub owner: Option<String>,
    pub owner_is_here: Option<bool>,
    /// Since when the cloud has pointed the address elsewhere, as far as
    /// this node's reads know.
    pub mismatch_since: Option<f64>,
    pub last_read: Option<f64>,
    pub last_write: Option<f64>,
    pub last_success: Option<f64>,
    pub consecutive_failures: u32,
    pub last_error: Option<ErrorRecord>,
    /// `get`/`assign` → requests sent.
    pub calls: BTreeMap<String, u64>,
    pub last_latency_seconds: Option<f64>,
    pub refreshes: u64,
    /// reason → failed refreshes.
    pub errors: BTreeMap<String, u64>,
    /// Found elsewhere while refreshing, and re-pointed here.
    pub corrections: u64,
}

impl AddressRecord {
    pub fn new(address: IpAddr) -> AddressRecord {
        AddressRecord {
            address,
            owner: None,
            owner_is_here: None,
            mismatch_since: None,
            last_read: None,
            last_write: None,
            last_success: None,
            consecutive_failures: 0,
            last_error: None,
            calls: BTreeMap::new(),
            last_latency_seconds: None,
            refreshes: 0,
            errors: BTreeMap::new(),
            corrections: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// One word (`ProviderError::reason`): auth, 5xx, timeout, ...
    pub reason: String,
    pub message: String,
    pub at: f64,
}

/// Upper bounds in seconds (keepalived-health.md §4.3: 0.05 … 30 s).
pub const BUCKETS: [f64; 9] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A Prometheus histogram's state: per-bucket counts (not cumulative),
/// the overflow, sum and count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Histogram {
    pub buckets: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        if self.buckets.len() != BUCKETS.len() + 1 {
            self.buckets = vec![0; BUCKETS.len() + 1];
        }
        let i = BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i] += 1;
        self.sum += s;
        self.count += 1;
    }

    /// (upper bound, cumulative count) for each bucket, `+Inf` last.
    pub fn cumulative(&self) -> Vec<(Option<f64>, u64)> {
        let mut total = 0;
        let mut out = Vec::with_capacity(BUCKETS.len() + 1);
        for i in 0..=BUCKETS.len() {
            total += self.buckets.get(i).copied().unwrap_or(0);
            out.push((BUCKETS.get(i).copied(), total));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_in_inf() {
        let mut h = Histogram::default();
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_millis(300));
        h.observe(Duration::from_secs(60));
        let c = h.cumulative();
        assert_eq!(c[0], (Some(0.05), 1));
        assert_eq!(c[3], (Some(0.5), 2));
        assert_eq!(c.last(), Some(&(None, 3)));
        assert_eq!(h.count, 3);
    }

    #[test]
    fn a_record_survives_json() {
        let mut r = InstanceRecord {
            schema: SCHEMA,
            instance: "VI 1".into(),
            ..InstanceRecord::default()
        };
        r.addresses
            .push(AddressRecord::new("192.0.2.1".parse().unwrap()));
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<InstanceRecord>(&text).unwrap(), r);
    }
}
