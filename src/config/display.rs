//! The settings dump: what a missing key turned into.

use std::fmt;

use floaty_providers::Secret;

use super::{Config, ProviderKind};
use crate::duration;

/// The effective settings, defaults included, in the file's own syntax:
/// what `floaty check` and debug logs show so an operator can see what a
/// missing key turned into. Credentials print as `***` or `(not set)`.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = duration::format;
        let secret = |s: &Option<Secret>| match s {
            Some(_) => "***",
            None => "(not set)",
        };
        let opt = |o: Option<String>| o.unwrap_or_else(|| "(not set)".to_string());
        writeln!(f, "# {}", self.path.display())?;
        writeln!(f, "lock-file-template: {}", self.lock_file_template)?;
        writeln!(f, "lock-timeout: {}", d(self.lock_timeout))?;
        writeln!(f, "keepalived-config: {}", self.keepalived_config.display())?;
        writeln!(
            f,
            "keepalived-config-id: {}",
            opt(self.keepalived_config_id.clone())
        )?;
        if self.managed_addresses.is_empty() {
            writeln!(f, "managed-addresses: [] # the VIPs in keepalived-config")?;
        } else {
            writeln!(f, "managed-addresses:")?;
            for vip in &self.managed_addresses {
                writeln!(f, "  - {vip}")?;
            }
        }
        writeln!(f, "refresh-interval: {}", d(self.refresh_interval))?;
        writeln!(f, "refresh-timeout: {}", d(self.refresh_timeout))?;
        let b = &self.back_off;
        writeln!(f, "back-off:")?;
        writeln!(f, "  initial-interval: {}", d(b.initial_interval))?;
        writeln!(f, "  multiplier: {}", b.multiplier)?;
        writeln!(f, "  max-interval: {}", d(b.max_interval))?;
        writeln!(
            f,
            "  max-elapsed-time: {}",
            b.max_elapsed_time
                .map_or("0 # retry for ever".to_string(), d)
        )?;
        writeln!(f, "verify-master: {}", self.verify_master.as_str())?;
        match &self.track_file_template {
            Some(t) => writeln!(f, "track-file-template: {t}")?,
            None => writeln!(f, "track-file-template: (not set) # no health reporting")?,
        }
        writeln!(f, "demote-by: {}", self.demote_by)?;
        writeln!(f, "health-interval: {}", d(self.health_interval))?;
        match &self.state_dir {
            super::StateDir::Default(p) => writeln!(f, "state-dir: {} # the default", p.display())?,
            super::StateDir::Configured(p) => writeln!(f, "state-dir: {}", p.display())?,
        }
        match &self.metrics_dir {
            Some(p) => writeln!(f, "metrics-dir: {}", p.display())?,
            None => writeln!(f, "metrics-dir: (not set) # no Prometheus textfiles")?,
        }
        match &self.metrics_listen {
            Some(a) => writeln!(f, "metrics-listen: {a} # the FIFO daemon's /metrics")?,
            None => writeln!(f, "metrics-listen: (not set)")?,
        }
        match &self.ca_file {
            Some(ca) => writeln!(
                f,
                "ca-file: {} # {} certificates on top of the built-in roots",
                ca.path.display(),
                ca.bundle.len()
            )?,
            None => writeln!(f, "ca-file: (not set) # the built-in roots only")?,
        }
        writeln!(f, "provider: {}", self.provider)?;
        match self.provider {
            ProviderKind::Cloudscale => {
                let c = &self.cloudscale;
                writeln!(f, "cloudscale:")?;
                writeln!(f, "  endpoint: {}", c.endpoint)?;
                writeln!(f, "  token: {}", secret(&c.token))?;
                writeln!(
                    f,
                    "  server-uuid: {}",
                    opt(c.server_uuid.map(|u| u.to_string()))
                )?;
                write!(f, "  hostname-to-server-uuid:")?;
                if c.hostname_to_server_uuid.is_empty() {
                    write!(f, " {{}}")?;
                }
                for (host, uuid) in &c.hostname_to_server_uuid {
                    write!(f, "\n    {host}: {uuid}")?;
                }
                Ok(())
            }
            ProviderKind::Hetzner => {
                let h = &self.hetzner;
                writeln!(f, "hetzner:")?;
                writeln!(f, "  endpoint: {}", h.endpoint)?;
                writeln!(f, "  token: {}", secret(&h.token))?;
                writeln!(
                    f,
                    "  server-id: {}",
                    opt(h.server_id.map(|i| i.to_string()))
                )?;
                ids(f, "hostname-to-server-id", &h.hostname_to_server_id)
            }
            ProviderKind::DigitalOcean => {
                let d = &self.digitalocean;
                writeln!(f, "digitalocean:")?;
                writeln!(f, "  endpoint: {}", d.endpoint)?;
                writeln!(f, "  token: {}", secret(&d.token))?;
                writeln!(
                    f,
                    "  droplet-id: {}",
                    opt(d.droplet_id.map(|i| i.to_string()))
                )?;
                ids(f, "hostname-to-droplet-id", &d.hostname_to_droplet_id)
            }
            ProviderKind::Aws => {
                let a = &self.aws;
                writeln!(f, "aws:")?;
                writeln!(f, "  region: {}", opt(a.region.clone()))?;
                writeln!(f, "  endpoint: {}", opt(a.endpoint.clone()))?;
                writeln!(
                    f,
                    "  mode: {}",
                    match a.mode {
                        floaty_providers::aws::AddressMode::ElasticIp => "elastic-ip",
                        floaty_providers::aws::AddressMode::SecondaryPrivateIp =>
                            "secondary-private-ip",
                    }
                )?;
                writeln!(f, "  instance-id: {}", opt(a.instance_id.clone()))?;
                writeln!(
                    f,
                    "  network-interface-id: {}",
                    opt(a.network_interface_id.clone())
                )?;
                writeln!(f, "  access-key-id: {}", secret(&a.access_key_id))?;
                write!(f, "  secret-access-key: {}", secret(&a.secret_access_key))
            }
            ProviderKind::Exoscale => {
                let e = &self.exoscale;
                writeln!(f, "exoscale:")?;
                writeln!(f, "  endpoint: {}", opt(e.endpoint.clone()))?;
                writeln!(f, "  zone: {}", opt(e.zone.clone()))?;
                writeln!(f, "  key: {}", secret(&e.key))?;
                writeln!(f, "  secret: {}", secret(&e.secret))?;
                write!(
                    f,
                    "  instance-id: {}",
                    opt(e.instance_id.map(|u| u.to_string()))
                )
            }
        }
    }
}

/// A `hostname-to-*-id` map, one host per line.
fn ids(
    f: &mut fmt::Formatter<'_>,
    key: &str,
    map: &std::collections::BTreeMap<String, u64>,
) -> fmt::Result {
    write!(f, "  {key}:")?;
    if map.is_empty() {
        write!(f, " {{}}")?;
    }
    for (host, id) in map {
        write!(f, "\n    {host}: {id}")?;
    }
    Ok(())
}
