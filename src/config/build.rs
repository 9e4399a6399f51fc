//! From what the YAML holds to the checked model, defaults applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::credentials::Credential;
use super::locate::{locate, KeyPath, Step, Target};
use super::raw::RawConfig;
use super::values::{AnyDuration, IdValue, NonEmpty, SecretValue};
use super::*;
use crate::rules::{RuleError, RuleErrorKind};
use floaty_providers::Secret;

pub(super) fn build(
    raw: RawConfig,
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let provider = raw.provider.and_then(|p| p.0).ok_or_else(|| {
        ConfigError::invalid(
            path,
            Some("provider"),
            format!(
                "missing; set `provider: NAME` ({})",
                super::values::PROVIDERS
            ),
        )
    })?;
    let keepalived_config = match raw.keepalived_config {
        // Relative to the YAML file, not to wherever floaty was started from
        // (keepalived runs notify scripts with cwd `/`).
        Some(p) => path.parent().unwrap_or(Path::new("")).join(p.0),
        None => PathBuf::from(DEFAULT_KEEPALIVED_CONFIG),
    };
    let default_timeout = match provider {
        // An asynchronous action to wait for, like Exoscale's operations.
        ProviderKind::Exoscale | ProviderKind::Hetzner | ProviderKind::DigitalOcean => {
            DEFAULT_EXOSCALE_REFRESH_TIMEOUT
        }
        // A secondary IP's remap is confirmed in IMDS within it.
        ProviderKind::Cloudscale | ProviderKind::Aws => DEFAULT_REFRESH_TIMEOUT,
    };
    let back_off = raw.back_off.unwrap_or_default();
    let defaults = BackOff::default();
    let cloudscale = raw.cloudscale.unwrap_or_default();
    let exoscale = raw.exoscale.unwrap_or_default();
    let hetzner = raw.hetzner.unwrap_or_default();
    let digitalocean = raw.digitalocean.unwrap_or_default();
    let aws = raw.aws.unwrap_or_default();
    let inline = |s: &Option<SecretValue>| s.as_ref().and_then(|s| s.0.clone());
    let inline_secret = inline(&cloudscale.token).is_some()
        || inline(&exoscale.key).is_some()
        || inline(&exoscale.secret).is_some()
        || inline(&hetzner.token).is_some()
        || inline(&digitalocean.token).is_some()
        || inline(&aws.access_key_id).is_some()
        || inline(&aws.secret_access_key).is_some();
    let mut warnings = Vec::new();
    let mut resolve = |credential: &Credential,
                       value: &Option<SecretValue>,
                       file: Option<NonEmpty>,
                       used: ProviderKind| {
        credential.resolve(
            inline(value),
            file.map(|f| f.0),
            path,
            env,
            used == provider,
            &mut warnings,
        )
    };
    let token = resolve(
        &CLOUDSCALE_TOKEN,
        &cloudscale.token,
        cloudscale.token_file,
        ProviderKind::Cloudscale,
    )?;
    let exoscale_key = resolve(
        &EXOSCALE_KEY,
        &exoscale.key,
        exoscale.key_file,
        ProviderKind::Exoscale,
    )?;
    let exoscale_secret = resolve(
        &EXOSCALE_SECRET,
        &exoscale.secret,
        exoscale.secret_file,
        ProviderKind::Exoscale,
    )?;
    let hetzner_token = resolve(
        &HETZNER_TOKEN,
        &hetzner.token,
        hetzner.token_file,
        ProviderKind::Hetzner,
    )?;
    let digitalocean_token = resolve(
        &DIGITALOCEAN_TOKEN,
        &digitalocean.token,
        digitalocean.token_file,
        ProviderKind::DigitalOcean,
    )?;
    let keys_in_yaml = aws.access_key_id.as_ref().is_some_and(|v| v.0.is_some())
        || aws.access_key_id_file.is_some();
    let aws_key_id = resolve(
        &AWS_ACCESS_KEY_ID,
        &aws.access_key_id,
        aws.access_key_id_file,
        ProviderKind::Aws,
    )?;
    let aws_secret = resolve(
        &AWS_SECRET_ACCESS_KEY,
        &aws.secret_access_key,
        aws.secret_access_key_file,
        ProviderKind::Aws,
    )?;
    if provider == ProviderKind::Aws {
        match (&aws_key_id, &aws_secret) {
            (Some(_), None) => {
                return Err(AWS_SECRET_ACCESS_KEY.missing(
                    path,
                    "the secret of the access key id (or remove both to use the instance role)",
                ))
            }
            (None, Some(_)) => {
                return Err(AWS_ACCESS_KEY_ID.missing(
                    path,
                    "the id of the secret access key (or remove both to use the instance role)",
                ))
            }
            _ => {}
        }
    }
    // AWS pairs a session token with keys from the environment only.
    let aws_session_token =
        (provider == ProviderKind::Aws && !keys_in_yaml && aws_key_id.is_some())
            .then(|| env(super::ENV_AWS_SESSION_TOKEN))
            .flatten()
            .filter(|t| !t.is_empty())
            .map(|t| Secret::new(t.trim_end_matches(['\n', '\r'])));
    let ids = |map: Option<BTreeMap<String, IdValue>>| -> BTreeMap<String, u64> {
        map.unwrap_or_default()
            .into_iter()
            .map(|(host, id)| (host, id.0))
            .collect()
    };
    let context: BTreeMap<String, String> = raw
        .context
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let ca_file = raw
        .ca_file
        .map(|f| super::ca_file::read_ca_file(path, &f.0))
        .transpose()?;
    let rules = crate::rules::build(raw.rules.unwrap_or_default(), &context)
        .map_err(|e| rule_error(e, path, text))?;
    Ok(Config {
        path: path.to_path_buf(),
        lock_template_from_file: raw.lock_file_template.is_some(),
        lock_file_template: match raw.lock_file_template {
            Some(t) => t
                .relative_to(path.parent().unwrap_or(Path::new("")))
                .map_err(|m| ConfigError::invalid(path, Some("lock-file-template"), m))?,
            None => LockTemplate::default(),
        },
        lock_timeout: raw.lock_timeout.map_or(DEFAULT_LOCK_TIMEOUT, |d| d.0),
        keepalived_config,
        keepalived_config_id: raw.keepalived_config_id.map(|s| s.0),
        managed_addresses: raw
            .managed_addresses
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.0)
            .collect(),
        refresh_interval: raw
            .refresh_interval
            .map_or(DEFAULT_REFRESH_INTERVAL, |d| d.0),
        refresh_timeout: raw.refresh_timeout.map_or(default_timeout, |d| d.0),
        back_off: BackOff {
            initial_interval: back_off
                .initial_interval
                .map_or(defaults.initial_interval, |d| d.0),
            multiplier: back_off.multiplier.map_or(defaults.multiplier, |m| m.0),
            max_interval: back_off.max_interval.map_or(defaults.max_interval, |d| d.0),
            max_elapsed_time: match back_off.max_elapsed_time {
                Some(AnyDuration(d)) if !d.is_zero() => Some(d),
                _ => None,
            },
        },
        provider,
        cloudscale: Cloudscale {
            endpoint: cloudscale
                .endpoint
                .map_or_else(|| DEFAULT_CLOUDSCALE_ENDPOINT.to_string(), |e| e.0),
            token,
            server_uuid: cloudscale.server_uuid.and_then(|u| u.0),
            hostname_to_server_uuid: cloudscale
                .hostname_to_server_uuid
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(host, u)| Some((host, u.0?)))
                .collect(),
        },
        exoscale: Exoscale {
            endpoint: exoscale.endpoint.map(|e| e.0),
            zone: exoscale.zone.and_then(|z| z.0),
            key: exoscale_key,
            secret: exoscale_secret,
            instance_id: exoscale.instance_id.and_then(|u| u.0),
        },
        hetzner: Hetzner {
            endpoint: hetzner.endpoint.map_or_else(
                || floaty_providers::hetzner::DEFAULT_ENDPOINT.to_string(),
                |e| e.0,
            ),
            token: hetzner_token,
            server_id: hetzner.server_id.map(|i| i.0),
            hostname_to_server_id: ids(hetzner.hostname_to_server_id),
        },
        digitalocean: DigitalOcean {
            endpoint: digitalocean.endpoint.map_or_else(
                || floaty_providers::digitalocean::DEFAULT_ENDPOINT.to_string(),
                |e| e.0,
            ),
            token: digitalocean_token,
            droplet_id: digitalocean.droplet_id.map(|i| i.0),
            hostname_to_droplet_id: ids(digitalocean.hostname_to_droplet_id),
        },
        aws: Aws {
            region: aws.region.map(|r| r.0),
            endpoint: aws.endpoint.map(|e| e.0),
            mode: aws
                .mode
                .map_or(floaty_providers::aws::AddressMode::ElasticIp, |m| m.0),
            instance_id: aws.instance_id.map(|i| i.0),
            hostname_to_instance_id: aws
                .hostname_to_instance_id
                .unwrap_or_default()
                .into_iter()
                .map(|(host, id)| (host, id.0))
                .collect(),
            network_interface_id: aws.network_interface_id.map(|i| i.0),
            access_key_id: aws_key_id,
            secret_access_key: aws_secret,
            session_token: aws_session_token,
        },
        ca_file,
        rules,
        verify_master: raw.verify_master.unwrap_or_default(),
        track_file_template: raw
            .track_file_template
            .map(|t| t.relative_to(path.parent().unwrap_or(Path::new(""))))
            .transpose()
            .map_err(|m| ConfigError::invalid(path, Some("track-file-template"), m))?,
        demote_by: raw.demote_by.map_or(DEFAULT_DEMOTE_BY, |d| d.0),
        health_interval: raw.health_interval.map_or(DEFAULT_HEALTH_INTERVAL, |d| d.0),
        state_dir: match raw.state_dir {
            Some(d) => StateDir::Configured(relative_to_config(path, &d.0)),
            None => StateDir::Default(PathBuf::from(super::DEFAULT_STATE_DIR)),
        },
        metrics_dir: raw.metrics_dir.map(|d| relative_to_config(path, &d.0)),
        metrics_listen: raw
            .metrics_listen
            .map(|a| {
                a.0.parse().map_err(|_| {
                    ConfigError::invalid(
                        path,
                        Some("metrics-listen"),
                        format!(
                            "{:?} is not an address and port; write e.g. 127.0.0.1:9465",
                            a.0
                        ),
                    )
                })
            })
            .transpose()?,
        inline_secret,
        warnings,
    })
}

/// A directory key's value; relative to the config file's directory, like
/// the path templates.
fn relative_to_config(config: &Path, value: &str) -> PathBuf {
    config.parent().unwrap_or(Path::new("")).join(value)
}

/// Points a rule error at its place, by the parser's marks: the
/// `{context.KEY}` use, or the rule's `name:` key.
fn rule_error(e: RuleError, path: &Path, text: &str) -> ConfigError {
    let rule = KeyPath(vec![Step::Key("rules".into()), Step::Index(e.index)]);
    let name = Target::Key {
        name: "name".into(),
        nth: 0,
    };
    let position = match &e.kind {
        RuleErrorKind::UnknownContextKey { key, .. } => {
            let used = Target::Containing(format!("{{context.{key}}}"));
            locate(text, &rule, &used).or_else(|| locate(text, &rule, &name))
        }
        RuleErrorKind::DuplicateName => locate(text, &rule, &name),
    };
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line: position.map(|p| p.0),
        column: position.map(|p| p.1),
        key: Some(rule.to_string()),
        message: format!("rule `{}`: {}", e.name, e.kind),
    }
}
