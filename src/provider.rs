//! Binding floaty's config to a provider from the `providers` crate.
//!
//! Split in two on purpose: `Spec::from_config` runs in the notify call and
//! catches every config problem before any lock is taken; `Spec::build`
//! runs in the forked refresher, where creating HTTP clients is safe.

use std::sync::Arc;

use floaty_providers::cloudscale::{self, Cloudscale, ServerSource};
use floaty_providers::fake::DryRun;
use floaty_providers::{Provider, ProviderError};
use uuid::Uuid;

use crate::config::{Config, ProviderKind};

/// Where the metadata service lives; tests point it at a mock.
const METADATA_URL_ENV: &str = "FLOATY_METADATA_URL";
const METADATA_URL: &str = "http://169.254.169.254/";

#[derive(Debug, Clone)]
pub enum Spec {
    DryRun { target: String },
    Cloudscale(cloudscale::Settings),
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{}: provider {kind} is not available in this floaty version yet; use provider: cloudscale", .path.display())]
    Unsupported {
        path: std::path::PathBuf,
        kind: &'static str,
    },
}

impl Spec {
    pub fn from_config(cfg: &Config, dry_run: bool) -> Result<Spec, SpecError> {
        match cfg.provider {
            ProviderKind::Cloudscale => {
                let server = server_source(cfg);
                if dry_run {
                    let target = match &server {
                        ServerSource::Uuid(u) => u.to_string(),
                        ServerSource::Metadata { .. } => "this server (from metadata)".into(),
                    };
                    return Ok(Spec::DryRun { target });
                }
                // validate_for_run has made sure the token is there.
                let token = cfg
                    .cloudscale
                    .token
                    .clone()
                    .unwrap_or_else(|| floaty_providers::Secret::new(""));
                Ok(Spec::Cloudscale(cloudscale::Settings {
                    endpoint: cfg.cloudscale.endpoint.clone(),
                    token,
                    server,
                }))
            }
            ProviderKind::Exoscale => Err(SpecError::Unsupported {
                path: cfg.path.clone(),
                kind: "exoscale",
            }),
        }
    }

    /// Build the provider. Only in the refresher or self-test, after any fork.
    pub async fn build(&self) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(match self {
            Spec::DryRun { target } => Arc::new(DryRun::new(target.clone())),
            Spec::Cloudscale(settings) => Arc::new(Cloudscale::new(settings.clone()).await?),
        })
    }
}

/// `server-uuid`, else `hostname-to-server-uuid[hostname]`, else metadata.
fn server_source(cfg: &Config) -> ServerSource {
    if let Some(uuid) = cfg.cloudscale.server_uuid {
        return ServerSource::Uuid(uuid);
    }
    if let Some(uuid) = lookup_hostname(&cfg.cloudscale.hostname_to_server_uuid) {
        return ServerSource::Uuid(uuid);
    }
    let base_url = std::env::var(METADATA_URL_ENV).unwrap_or_else(|_| METADATA_URL.to_string());
    ServerSource::Metadata { base_url }
}

/// The full host name first, then its first label, as SREs write either.
fn lookup_hostname(map: &std::collections::BTreeMap<String, Uuid>) -> Option<Uuid> {
    if map.is_empty() {
        return None;
    }
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy().into_owned();
    let short = host.split('.').next().unwrap_or(&host).to_string();
    map.get(&host).or_else(|| map.get(&short)).copied()
}
