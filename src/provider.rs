//! Binding floaty's config to a provider from the `providers` crate.
//!
//! Split in two on purpose: `Spec::from_config` runs in the notify call and
//! catches every config problem before any lock is taken; `Spec::build`
//! runs in the forked refresher, where creating HTTP clients is safe.

use std::sync::Arc;

use floaty_providers::aws::{self, Aws};
use floaty_providers::cloudscale::{self, Cloudscale, ServerSource};
use floaty_providers::digitalocean::{self, DigitalOcean, DropletSource};
use floaty_providers::dry_run::DryRun;
use floaty_providers::exoscale::{self, Exoscale};
use floaty_providers::hetzner::{self, Hetzner};
use floaty_providers::{Provider, ProviderError, Secret};

use crate::config::{Config, ConfigError, ProviderKind, RunCredentials};

/// Where the metadata service lives; tests point it at a mock.
const METADATA_URL_ENV: &str = "FLOATY_METADATA_URL";

/// `PartialEq` compares everything the provider is built from, secrets
/// included (`Debug` hides them, so text would not), so the FIFO daemon
/// restarts a refresher after a token rotation.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    DryRun { target: String },
    Cloudscale(cloudscale::Settings),
    Exoscale(exoscale::Settings),
    Hetzner(hetzner::Settings),
    DigitalOcean(digitalocean::Settings),
    Aws(aws::Settings),
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A credential the run needs is missing.
    #[error(transparent)]
    Credentials(#[from] ConfigError),
    /// A value the YAML parser accepted but the provider cannot use.
    #[error("{}: {key}: {message}", crate::text::shown(&.path.display().to_string()))]
    Invalid {
        path: std::path::PathBuf,
        key: &'static str,
        message: String,
    },
}

impl Spec {
    /// The provider a run uses: the dry-run stand-in, or the real one with
    /// its credentials (a missing one is this function's error, so none is
    /// ever built without them).
    pub fn from_config(cfg: &Config, dry_run: bool) -> Result<Spec, SpecError> {
        let credentials = if dry_run {
            None
        } else {
            Some(cfg.run_credentials()?)
        };
        check_exoscale_zone(cfg)?;
        Ok(match credentials {
            None => Spec::DryRun {
                target: dry_run_target(cfg),
            },
            Some(RunCredentials::Cloudscale { token }) => Spec::Cloudscale(cloudscale::Settings {
                endpoint: cfg.cloudscale.endpoint.clone(),
                token,
                server: server_source(cfg),
                ca: ca_bundle(cfg),
            }),
            Some(RunCredentials::Exoscale { key, secret }) => exoscale_spec(cfg, key, secret),
            Some(RunCredentials::Hetzner { token }) => Spec::Hetzner(hetzner::Settings {
                endpoint: cfg.hetzner.endpoint.clone(),
                token,
                server: hetzner_server(cfg),
                timeout: cfg.refresh_timeout,
                ca: ca_bundle(cfg),
            }),
            Some(RunCredentials::Aws { credentials }) => Spec::Aws(aws::Settings {
                region: cfg.aws.region.clone(),
                endpoint: cfg.aws.endpoint.clone(),
                instance: match cfg
                    .aws
                    .instance_id
                    .clone()
                    .or_else(|| lookup_hostname(&cfg.aws.hostname_to_instance_id))
                {
                    Some(id) => aws::InstanceSource::Id(id),
                    None => aws::InstanceSource::Metadata,
                },
                mode: cfg.aws.mode,
                network_interface: cfg.aws.network_interface_id.clone(),
                credentials,
                metadata_url: metadata_url(),
                timeout: cfg.refresh_timeout,
                ca: ca_bundle(cfg),
            }),
            Some(RunCredentials::DigitalOcean { token }) => {
                Spec::DigitalOcean(digitalocean::Settings {
                    endpoint: cfg.digitalocean.endpoint.clone(),
                    token,
                    droplet: droplet(cfg),
                    timeout: cfg.refresh_timeout,
                    ca: ca_bundle(cfg),
                })
            }
        })
    }

    /// Build the provider. Only in the refresher or self-test, after any fork.
    pub async fn build(&self) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(match self {
            Spec::DryRun { target } => Arc::new(DryRun::new(target.clone())),
            Spec::Cloudscale(settings) => Arc::new(Cloudscale::new(settings.clone()).await?),
            Spec::Exoscale(settings) => Arc::new(Exoscale::new(settings.clone()).await?),
            Spec::Hetzner(settings) => Arc::new(Hetzner::new(settings.clone()).await?),
            Spec::DigitalOcean(settings) => Arc::new(DigitalOcean::new(settings.clone()).await?),
            Spec::Aws(settings) => Arc::new(Aws::new(settings.clone()).await?),
        })
    }
}

/// What a dry run names as "here".
fn dry_run_target(cfg: &Config) -> String {
    match cfg.provider {
        ProviderKind::Cloudscale => match server_source(cfg) {
            ServerSource::Uuid(u) => u.to_string(),
            ServerSource::Metadata { .. } => "this server (from metadata)".into(),
        },
        ProviderKind::Exoscale => match cfg.exoscale.instance_id {
            Some(id) => id.to_string(),
            None => "this instance (from metadata)".into(),
        },
        ProviderKind::Hetzner => match hetzner_server(cfg) {
            hetzner::ServerSource::Id(id) => id.to_string(),
            hetzner::ServerSource::Metadata { .. } => "this server (from metadata)".into(),
        },
        ProviderKind::DigitalOcean => match droplet(cfg) {
            DropletSource::Id(id) => id.to_string(),
            DropletSource::Metadata { .. } => "this droplet (from metadata)".into(),
        },
        ProviderKind::Aws => match (&cfg.aws.network_interface_id, &cfg.aws.instance_id) {
            (Some(eni), _) => eni.clone(),
            (None, Some(id)) => id.clone(),
            (None, None) => "this instance (from metadata)".into(),
        },
    }
}

/// The zone is checked here, before any lock, because the refresher could
/// only log what is wrong with it (the key is checked where the config is
/// loaded, with and without --dry-run).
fn check_exoscale_zone(cfg: &Config) -> Result<(), SpecError> {
    let Some(zone) = cfg.exoscale.zone.as_deref() else {
        return Ok(());
    };
    if cfg.provider != ProviderKind::Exoscale {
        return Ok(());
    }
    let ok = !zone.is_empty()
        && zone
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        return Ok(());
    }
    Err(SpecError::Invalid {
        path: cfg.path.clone(),
        key: "exoscale.zone",
        message: format!("{zone:?} is not a zone name (write e.g. ch-gva-2)"),
    })
}

fn exoscale_spec(cfg: &Config, key: Secret, secret: Secret) -> Spec {
    let e = &cfg.exoscale;
    let endpoint = match e.endpoint.as_deref() {
        Some(url) if is_legacy_exoscale(url) => {
            // A config carried over from vshn/floaty: failing here would
            // fail the failover; the zone's v2 endpoint is what was meant.
            tracing::warn!(
                endpoint = url,
                "exoscale.endpoint names the retired v1 API vshn/floaty used; \
                 ignoring it and using the zone's v2 endpoint (remove the key to silence this)"
            );
            None
        }
        other => other.map(str::to_string),
    };
    Spec::Exoscale(exoscale::Settings {
        endpoint,
        zone: e.zone.clone(),
        key,
        secret,
        instance: e.instance_id,
        metadata_url: metadata_url(),
        timeout: cfg.refresh_timeout,
        ca: ca_bundle(cfg),
    })
}

/// `ca-file`'s certificates, already checked when the config loaded. In
/// the spec, so the FIFO daemon restarts a refresher when the file changes.
fn ca_bundle(cfg: &Config) -> Option<floaty_providers::CaBundle> {
    cfg.ca_file.as_ref().map(|ca| ca.bundle.clone())
}

/// vshn/floaty's endpoints: `https://api.exoscale.ch/compute` (its
/// default) and `.../v1`; floaty speaks API v2 only.
fn is_legacy_exoscale(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let path = lower
        .split_once("://")
        .map_or("", |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let path = path.trim_end_matches('/');
    let host = lower
        .split_once("://")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
    (host.ends_with("exoscale.ch") || host.ends_with("exoscale.com"))
        && (path == "compute"
            || path == "v1"
            || path.ends_with("/compute")
            || path.ends_with("/v1"))
}

fn metadata_url() -> String {
    std::env::var(METADATA_URL_ENV)
        .unwrap_or_else(|_| floaty_providers::DEFAULT_METADATA_URL.to_string())
}

/// `server-uuid`, else `hostname-to-server-uuid[hostname]`, else metadata.
fn server_source(cfg: &Config) -> ServerSource {
    if let Some(uuid) = cfg.cloudscale.server_uuid {
        return ServerSource::Uuid(uuid);
    }
    if let Some(uuid) = lookup_hostname(&cfg.cloudscale.hostname_to_server_uuid) {
        return ServerSource::Uuid(uuid);
    }
    ServerSource::Metadata {
        base_url: metadata_url(),
    }
}

/// `server-id`, else `hostname-to-server-id[hostname]`, else metadata.
fn hetzner_server(cfg: &Config) -> hetzner::ServerSource {
    let h = &cfg.hetzner;
    match h
        .server_id
        .or_else(|| lookup_hostname(&h.hostname_to_server_id))
    {
        Some(id) => hetzner::ServerSource::Id(id),
        None => hetzner::ServerSource::Metadata {
            base_url: metadata_url(),
        },
    }
}

/// `droplet-id`, else `hostname-to-droplet-id[hostname]`, else metadata.
fn droplet(cfg: &Config) -> DropletSource {
    let d = &cfg.digitalocean;
    match d
        .droplet_id
        .or_else(|| lookup_hostname(&d.hostname_to_droplet_id))
    {
        Some(id) => DropletSource::Id(id),
        None => DropletSource::Metadata {
            base_url: metadata_url(),
        },
    }
}

/// The full host name first, then its first label, as SREs write either.
fn lookup_hostname<T: Clone>(map: &std::collections::BTreeMap<String, T>) -> Option<T> {
    if map.is_empty() {
        return None;
    }
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy().into_owned();
    let short = host.split('.').next().unwrap_or(&host).to_string();
    map.get(&host).or_else(|| map.get(&short)).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_exoscale_endpoints() {
        for url in [
            "https://api.exoscale.ch/compute",
            "https://api.exoscale.com/v1/",
            "https://API.exoscale.com/compute",
        ] {
            assert!(is_legacy_exoscale(url), "{url}");
        }
        for url in [
            "https://api-ch-gva-2.exoscale.com/v2",
            "http://127.0.0.1:8080/v1",
            "https://proxy.example.com/exoscale/v2",
        ] {
            assert!(!is_legacy_exoscale(url), "{url}");
        }
    }

    #[test]
    fn equality_sees_a_rotated_token_that_debug_hides() {
        let spec = |token: &str| {
            Spec::Cloudscale(cloudscale::Settings::new(
                floaty_providers::Secret::new(token),
                ServerSource::Uuid(uuid::Uuid::nil()),
            ))
        };
        let (old, new) = (spec("old-t0ken-value"), spec("new-t0ken-value"));
        assert_eq!(old, spec("old-t0ken-value"));
        assert_ne!(old, new);
        assert_eq!(format!("{old:?}"), format!("{new:?}"));
    }
}
