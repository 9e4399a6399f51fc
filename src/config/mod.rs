//! floaty's YAML config file.
//!
//! The keys, defaults and value syntax are vshn/floaty's, so a file written
//! for the Go tool loads unchanged. What differs is how mistakes are
//! reported: this file is usually edited on a production router in a hurry,
//! so every error is one line naming the file, the line, the key as a dotted
//! path and what to write instead.
//!
//! How: every value with a rule (durations, UUIDs, addresses, URLs, the lock
//! template, the multiplier) is a newtype whose `Deserialize` does the check,
//! so serde_yaml attaches position and key path to our message for free.
//! [`ConfigError`] then takes serde_yaml's text apart and puts it back in our
//! one-line shape. Only checks that span keys (provider-dependent defaults,
//! required credentials) run after deserializing and carry no line.
//!
//! To add a key: add a field to the matching `Raw*` struct in `raw.rs`
//! (serde's "unknown key" message picks it up by itself), and copy it into
//! the public struct in `build.rs`.
//!
//! One job per file: this one holds the model (what a checked config is)
//! and the way in ([`load`], [`parse`]); `raw.rs` the YAML schema,
//! `values.rs` the checked value types, `build.rs` raw → model with the
//! defaults, `credentials.rs` where secrets come from, `ca_file.rs` the
//! extra trust roots, `error.rs` the one
//! error type, `yaml_error.rs` serde_yaml's messages reworded, `locate.rs`
//! where a node sits (the parser's own marks), `display.rs`
//! the settings dump, `stop.rs` the lenient read a stop falls back on.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use floaty_providers::Secret;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use uuid::Uuid;

use crate::address::Vip;

mod build;
mod ca_file;
mod credentials;
mod display;
mod error;
mod locate;
mod raw;
mod stop;
mod values;
mod yaml_error;

pub use crate::lock::LockTemplate;
pub use ca_file::{CaFile, MAX_CA_FILE};
pub use credentials::{
    ENV_AWS_ACCESS_KEY_ID, ENV_AWS_SECRET_ACCESS_KEY, ENV_AWS_SESSION_TOKEN, ENV_CLOUDSCALE_TOKEN,
    ENV_DIGITALOCEAN_TOKEN, ENV_EXOSCALE_KEY, ENV_EXOSCALE_SECRET, ENV_HETZNER_TOKEN,
};
pub use error::ConfigError;
pub use stop::{stop_settings, StopSettings};
pub use values::{MIN_BACK_OFF, MIN_REFRESH_INTERVAL, MIN_TIMEOUT};

use credentials::{
    readable_by_others, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, CLOUDSCALE_TOKEN,
    DIGITALOCEAN_TOKEN, EXOSCALE_KEY, EXOSCALE_SECRET, HETZNER_TOKEN,
};
use raw::RawConfig;
use yaml_error::{secret_values, yaml_error};

/// In a directory of floaty's own that other users cannot write, not in
/// `/var/lock`: that is `/run/lock`, mode 1777, where any local user could
/// create, hold or forge floaty's lock files.
pub const DEFAULT_LOCK_FILE_TEMPLATE: &str = "/run/floaty/floaty.%s.lock";
/// The default of older floaty versions (and of vshn/floaty). A stop must also
/// look there: a refresher started by an older floaty, before an upgrade,
/// holds its lock in this place and must still be found and ended.
pub const LEGACY_LOCK_FILE_TEMPLATE: &str = "/var/lock/floaty.%s.lock";
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_KEEPALIVED_CONFIG: &str = "/etc/keepalived/keepalived.conf";
const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
/// Exoscale's API is slower to answer than cloudscale's; vshn/floaty's
/// documentation recommends 15s there, so that is what an absent key means.
const DEFAULT_EXOSCALE_REFRESH_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_CLOUDSCALE_ENDPOINT: &str = "https://api.cloudscale.ch/";
/// More than the usual 50-point gap between two nodes' priorities.
pub const DEFAULT_DEMOTE_BY: i32 = 100;
const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(10);

/// The whole configuration, defaults applied and every value checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, for messages that point the user back to it.
    pub path: PathBuf,
    /// Relative templates already resolved against the file's directory.
    pub lock_file_template: LockTemplate,
    /// Whether `lock-file-template` was set (else it is the default, and a
    /// stop also looks at [`LEGACY_LOCK_FILE_TEMPLATE`]).
    pub lock_template_from_file: bool,
    pub lock_timeout: Duration,
    pub keepalived_config: PathBuf,
    /// keepalived's `-i`/`--config-id`: picks the `@id`-prefixed lines of a
    /// config shared by several nodes. `None` means keepalived's default.
    pub keepalived_config_id: Option<String>,
    /// Empty means: manage the VIPs found in keepalived's config.
    pub managed_addresses: Vec<Vip>,
    pub refresh_interval: Duration,
    pub refresh_timeout: Duration,
    pub back_off: BackOff,
    pub provider: ProviderKind,
    pub cloudscale: Cloudscale,
    pub exoscale: Exoscale,
    pub hetzner: Hetzner,
    pub digitalocean: DigitalOcean,
    pub aws: Aws,
    /// `ca-file`: trusted by the provider on top of the built-in roots.
    pub ca_file: Option<CaFile>,
    /// Commands run on events (`rules:`), context already filled in.
    pub rules: Vec<crate::rules::Rule>,
    /// The split-brain guard (see `guard.rs`).
    pub verify_master: VerifyMaster,
    /// keepalived's `track_file` for each instance (`health/`); `None`
    /// turns health reporting off.
    pub track_file_template: Option<LockTemplate>,
    /// Subtracted from the priority while this node cannot move the address.
    pub demote_by: i32,
    /// How often the prober reads (and a MASTER verifies at least).
    pub health_interval: Duration,
    /// Where each instance's owner keeps its state (`status/`).
    pub state_dir: StateDir,
    /// `metrics-dir`: one Prometheus textfile per instance, if set.
    pub metrics_dir: Option<PathBuf>,
    /// `metrics-listen`: where the FIFO daemon serves `/metrics`, if set.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Whether the YAML itself holds a credential (`token`, `key`,
    /// `secret`), so [`load`] can warn when the file is readable by others.
    pub inline_secret: bool,
    /// One-line warnings found while loading (secret files readable by
    /// group or others); [`load`] logs each once.
    pub warnings: Vec<String>,
}

/// `state-dir`. The default is used when it exists (the package's
/// tmpfiles.d makes it) and quietly skipped when it cannot be made; a
/// configured one must be there: a typo must not hide the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateDir {
    Default(PathBuf),
    Configured(PathBuf),
}

impl StateDir {
    pub fn path(&self) -> &Path {
        match self {
            StateDir::Default(p) | StateDir::Configured(p) => p,
        }
    }
}

pub const DEFAULT_STATE_DIR: &str = "/run/floaty";

/// Retry policy for failed cloud API calls (the same knobs as the Go
/// `cenkalti/backoff` library vshn/floaty used).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackOff {
    pub initial_interval: Duration,
    pub multiplier: f64,
    pub max_interval: Duration,
    /// `None` = retry for ever (`max-elapsed-time: 0`, the default).
    pub max_elapsed_time: Option<Duration>,
}

impl Default for BackOff {
    fn default() -> Self {
        BackOff {
            initial_interval: Duration::from_secs(1),
            multiplier: 1.1,
            max_interval: Duration::from_secs(10),
            max_elapsed_time: None,
        }
    }
}

/// `verify-master`: whether a refresher checks that this node holds the
/// instance's virtual IPs before each write (the split-brain guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyMaster {
    /// On for instances with `virtual_ipaddress` in keepalived.conf.
    #[default]
    Auto,
    /// On; an instance without VIPs is a config error.
    Always,
    Off,
}

impl VerifyMaster {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMaster::Auto => "auto",
            VerifyMaster::Always => "always",
            VerifyMaster::Off => "off",
        }
    }
}

impl<'de> Deserialize<'de> for VerifyMaster {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // YAML 1.1 reads a bare `off` as a boolean; accept it as meant.
        struct V;
        impl Visitor<'_> for V {
            type Value = VerifyMaster;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("auto, always or off")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<VerifyMaster, E> {
                match s {
                    "auto" => Ok(VerifyMaster::Auto),
                    "always" => Ok(VerifyMaster::Always),
                    "off" => Ok(VerifyMaster::Off),
                    other => Err(E::custom(format!(
                        "{other:?} is not one of auto, always, off"
                    ))),
                }
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<VerifyMaster, E> {
                if b {
                    Err(E::custom("`true` is ambiguous; write auto, always or off"))
                } else {
                    Ok(VerifyMaster::Off)
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Cloudscale,
    Exoscale,
    Hetzner,
    DigitalOcean,
    Aws,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Cloudscale => "cloudscale",
            ProviderKind::Exoscale => "exoscale",
            ProviderKind::Hetzner => "hetzner",
            ProviderKind::DigitalOcean => "digitalocean",
            ProviderKind::Aws => "aws",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Cloudscale {
    /// Always an http(s) URL ending in `/`, so API paths can be appended.
    pub endpoint: String,
    pub token: Option<Secret>,
    pub server_uuid: Option<Uuid>,
    pub hostname_to_server_uuid: BTreeMap<String, Uuid>,
}

impl Default for Cloudscale {
    fn default() -> Self {
        Cloudscale {
            endpoint: DEFAULT_CLOUDSCALE_ENDPOINT.to_string(),
            token: None,
            server_uuid: None,
            hostname_to_server_uuid: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Exoscale {
    pub endpoint: Option<String>,
    pub zone: Option<String>,
    pub key: Option<Secret>,
    pub secret: Option<Secret>,
    pub instance_id: Option<Uuid>,
}

#[derive(Debug, Clone)]
pub struct Hetzner {
    /// The API base (`https://api.hetzner.cloud/v1`), as written.
    pub endpoint: String,
    pub token: Option<Secret>,
    pub server_id: Option<u64>,
    pub hostname_to_server_id: BTreeMap<String, u64>,
}

#[derive(Debug, Clone)]
pub struct DigitalOcean {
    /// The API base (`https://api.digitalocean.com/v2`), as written.
    pub endpoint: String,
    pub token: Option<Secret>,
    pub droplet_id: Option<u64>,
    pub hostname_to_droplet_id: BTreeMap<String, u64>,
}

#[derive(Debug, Clone)]
pub struct Aws {
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub mode: floaty_providers::aws::AddressMode,
    pub instance_id: Option<String>,
    pub hostname_to_instance_id: BTreeMap<String, String>,
    pub network_interface_id: Option<String>,
    /// Both or neither (checked at load); neither means the instance role.
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
    /// `AWS_SESSION_TOKEN`, taken only with keys from the environment.
    pub session_token: Option<Secret>,
}

/// floaty.yml is a few KiB; a file beyond this is the wrong file (or
/// `/dev/zero` behind a symlink), not a config.
pub const MAX_CONFIG_FILE: u64 = 1 << 20;

/// The text of the YAML at `path`, refusing what is not a regular file or
/// is larger than [`MAX_CONFIG_FILE`].
fn read_config(path: &Path) -> Result<String, ConfigError> {
    use crate::readfile::{read_regular, ReadError};
    let (bytes, _) = read_regular(path, MAX_CONFIG_FILE).map_err(|e| match e {
        ReadError::Io(source) => ConfigError::Read {
            path: path.to_path_buf(),
            source,
        },
        problem => ConfigError::File {
            path: path.to_path_buf(),
            problem,
        },
    })?;
    String::from_utf8(bytes).map_err(|_| {
        ConfigError::invalid(
            path,
            None,
            "the file is not UTF-8 text; save it as UTF-8 (or plain ASCII)",
        )
    })
}

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let config = load_quietly(path)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

/// [`load`] without logging its warnings: for what loads the same file
/// again and again (a prober's check every health-interval), which would
/// repeat them forever.
pub fn load_quietly(path: &Path) -> Result<Config, ConfigError> {
    let text = read_config(path)?;
    let mut config = parse(&text, path)?;
    if config.inline_secret {
        if let Some(w) = readable_by_others(path, "holds a credential inline") {
            config.warnings.insert(0, w);
        }
    }
    Ok(config)
}

pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_with_env(text, path, &|name| std::env::var(name).ok())
}

/// [`parse`] with the environment given, so tests need not change the
/// process's own.
pub fn parse_with_env(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    // A first, position-less look: to tell "empty" from "broken", and to learn
    // the secret values so no error message can ever echo them (and, for an
    // error, the rule names). The second, typed read keeps serde_yaml's
    // positions, which deserializing from the Value would lose; these two
    // are the only reads.
    let value = match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(serde_yaml::Value::Null) => {
            return Err(ConfigError::invalid(
                path,
                None,
                format!(
                    "the file is empty; it needs at least `provider: NAME` ({})",
                    values::PROVIDERS
                ),
            ))
        }
        Ok(value) => Some(value),
        Err(_) => None,
    };
    let de = serde_yaml::Deserializer::from_str(text);
    let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let secrets = value.as_ref().map(secret_values).unwrap_or_default();
        let rule = locate::KeyPath::from_serde(e.path()).rule_index();
        let name = rule.and_then(|i| value.as_ref()?.get("rules")?.get(i)?.get("name")?.as_str());
        name_the_rule(yaml_error(&e, text, path, &secrets), name)
    })?;
    build::build(raw, path, text, env)
}

/// An error inside `rules[N]` also names the rule, as people know rules by
/// name rather than by position.
fn name_the_rule(err: ConfigError, name: Option<&str>) -> ConfigError {
    match (err, name) {
        (
            ConfigError::Invalid {
                path,
                line,
                column,
                key,
                message,
            },
            Some(name),
        ) => ConfigError::Invalid {
            path,
            line,
            column,
            key,
            message: format!("rule `{name}`: {message}"),
        },
        (err, _) => err,
    }
}

/// The credentials a run against the cloud needs, each one there: what
/// `provider::Spec` is built from, so no provider is ever built without them.
#[derive(Debug, Clone)]
pub enum RunCredentials {
    Cloudscale {
        token: Secret,
    },
    Exoscale {
        key: Secret,
        secret: Secret,
    },
    Hetzner {
        token: Secret,
    },
    DigitalOcean {
        token: Secret,
    },
    /// Nothing is missing on AWS: without keys, the instance role signs.
    Aws {
        credentials: floaty_providers::aws::Credentials,
    },
}

impl Config {
    /// The provider's credentials, or the error naming the one missing.
    /// Asked only by what talks to the cloud: `--dry-run`, `--check` and
    /// a stop must work without them.
    pub fn run_credentials(&self) -> Result<RunCredentials, ConfigError> {
        match self.provider {
            ProviderKind::Cloudscale => {
                let token = self.cloudscale.token.clone().ok_or_else(|| {
                    CLOUDSCALE_TOKEN.missing(&self.path, "a cloudscale API token with write access")
                })?;
                Ok(RunCredentials::Cloudscale { token })
            }
            ProviderKind::Exoscale => {
                let key = self.exoscale.key.clone().ok_or_else(|| {
                    EXOSCALE_KEY.missing(&self.path, "your Exoscale API key (EXO...)")
                })?;
                let secret = self.exoscale.secret.clone().ok_or_else(|| {
                    EXOSCALE_SECRET.missing(&self.path, "your Exoscale API secret")
                })?;
                Ok(RunCredentials::Exoscale { key, secret })
            }
            ProviderKind::Hetzner => {
                let token = self.hetzner.token.clone().ok_or_else(|| {
                    HETZNER_TOKEN.missing(
                        &self.path,
                        "a Read & Write API token of the servers' Hetzner Cloud project",
                    )
                })?;
                Ok(RunCredentials::Hetzner { token })
            }
            ProviderKind::DigitalOcean => {
                let token = self.digitalocean.token.clone().ok_or_else(|| {
                    DIGITALOCEAN_TOKEN.missing(
                        &self.path,
                        "a DigitalOcean API token with reserved_ip:update",
                    )
                })?;
                Ok(RunCredentials::DigitalOcean { token })
            }
            ProviderKind::Aws => {
                let a = &self.aws;
                Ok(RunCredentials::Aws {
                    credentials: match (&a.access_key_id, &a.secret_access_key) {
                        (Some(id), Some(secret)) => floaty_providers::aws::Credentials::Static {
                            access_key_id: id.clone(),
                            secret_access_key: secret.clone(),
                            session_token: a.session_token.clone(),
                        },
                        _ => floaty_providers::aws::Credentials::InstanceRole,
                    },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
