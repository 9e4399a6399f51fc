//! The YAML schema, exactly as serde reads it.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::values::*;
use super::{LockTemplate, VerifyMaster};

// ---------------------------------------------------------------------------
// What the YAML holds. Every field is an Option so that `key:` with no value
// means "default", as it did with Go's yaml.v2.

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping of settings such as `provider: cloudscale`"
)]
pub(super) struct RawConfig {
    pub(super) lock_file_template: Option<LockTemplate>,
    pub(super) lock_timeout: Option<Timeout>,
    pub(super) keepalived_config: Option<NonEmpty>,
    pub(super) keepalived_config_id: Option<NonEmpty>,
    pub(super) managed_addresses: Option<Vec<VipValue>>,
    pub(super) refresh_interval: Option<RefreshInterval>,
    pub(super) refresh_timeout: Option<Timeout>,
    pub(super) back_off: Option<RawBackOff>,
    pub(super) provider: Option<ProviderValue>,
    pub(super) verify_master: Option<VerifyMaster>,
    pub(super) track_file_template: Option<LockTemplate>,
    pub(super) demote_by: Option<DemoteBy>,
    pub(super) health_interval: Option<RefreshInterval>,
    /// A PEM bundle trusted on top of the built-in roots.
    pub(super) ca_file: Option<NonEmpty>,
    /// Where each instance's state goes, for `--status`.
    pub(super) state_dir: Option<NonEmpty>,
    /// node_exporter's textfile collector directory.
    pub(super) metrics_dir: Option<NonEmpty>,
    /// The FIFO daemon's `/metrics` address.
    pub(super) metrics_listen: Option<NonEmpty>,
    pub(super) cloudscale: Option<RawCloudscale>,
    pub(super) exoscale: Option<RawExoscale>,
    pub(super) hetzner: Option<RawHetzner>,
    pub(super) digitalocean: Option<RawDigitalOcean>,
    pub(super) aws: Option<RawAws>,
    pub(super) rules: Option<Vec<crate::rules::RawRule>>,
    /// Free user strings for rule templates (`{context.KEY}`).
    pub(super) context: Option<BTreeMap<String, crate::rules::ContextValue>>,
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with initial-interval, multiplier, max-interval, max-elapsed-time"
)]
pub(super) struct RawBackOff {
    pub(super) initial_interval: Option<BackOffInterval>,
    pub(super) multiplier: Option<Multiplier>,
    pub(super) max_interval: Option<BackOffInterval>,
    pub(super) max_elapsed_time: Option<AnyDuration>,
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with endpoint, token, token-file, server-uuid, hostname-to-server-uuid"
)]
pub(super) struct RawCloudscale {
    pub(super) endpoint: Option<Endpoint>,
    pub(super) token: Option<SecretValue>,
    /// A file holding the token (the rest of the YAML can then be public).
    pub(super) token_file: Option<NonEmpty>,
    pub(super) server_uuid: Option<UuidValue>,
    pub(super) hostname_to_server_uuid: Option<BTreeMap<String, UuidValue>>,
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with endpoint, zone, key, key-file, secret, secret-file, instance-id"
)]
pub(super) struct RawExoscale {
    pub(super) endpoint: Option<ApiBase>,
    pub(super) zone: Option<OptionalText>,
    pub(super) key: Option<SecretValue>,
    pub(super) key_file: Option<NonEmpty>,
    pub(super) secret: Option<SecretValue>,
    pub(super) secret_file: Option<NonEmpty>,
    pub(super) instance_id: Option<UuidValue>,
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with endpoint, token, token-file, server-id, hostname-to-server-id"
)]
pub(super) struct RawHetzner {
    pub(super) endpoint: Option<ApiBase>,
    pub(super) token: Option<SecretValue>,
    pub(super) token_file: Option<NonEmpty>,
    pub(super) server_id: Option<IdValue>,
    pub(super) hostname_to_server_id: Option<BTreeMap<String, IdValue>>,
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with endpoint, token, token-file, droplet-id, hostname-to-droplet-id"
)]
pub(super) struct RawDigitalOcean {
    pub(super) endpoint: Option<ApiBase>,
    pub(super) token: Option<SecretValue>,
    pub(super) token_file: Option<NonEmpty>,
    pub(super) droplet_id: Option<IdValue>,
    pub(super) hostname_to_droplet_id: Option<BTreeMap<String, IdValue>>,
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with region, endpoint, mode, instance-id, hostname-to-instance-id, network-interface-id, access-key-id, secret-access-key"
)]
pub(super) struct RawAws {
    pub(super) region: Option<AwsRegion>,
    pub(super) endpoint: Option<ApiBase>,
    pub(super) mode: Option<AwsModeValue>,
    pub(super) instance_id: Option<InstanceIdValue>,
    pub(super) hostname_to_instance_id: Option<BTreeMap<String, InstanceIdValue>>,
    pub(super) network_interface_id: Option<EniValue>,
    pub(super) access_key_id: Option<SecretValue>,
    pub(super) access_key_id_file: Option<NonEmpty>,
    pub(super) secret_access_key: Option<SecretValue>,
    pub(super) secret_access_key_file: Option<NonEmpty>,
}

/// Keys that belong in a section, for the hint when one is written at the top.
pub(super) const SECTION_KEYS: &[(&str, &[&str])] = &[
    (
        "back-off",
        &[
            "initial-interval",
            "multiplier",
            "max-interval",
            "max-elapsed-time",
        ],
    ),
    (
        "cloudscale",
        &[
            "endpoint",
            "token",
            "token-file",
            "server-uuid",
            "hostname-to-server-uuid",
        ],
    ),
    (
        "exoscale",
        &[
            "endpoint",
            "zone",
            "key",
            "key-file",
            "secret",
            "secret-file",
            "instance-id",
        ],
    ),
    (
        "hetzner",
        &[
            "endpoint",
            "token",
            "token-file",
            "server-id",
            "hostname-to-server-id",
        ],
    ),
    (
        "digitalocean",
        &[
            "endpoint",
            "token",
            "token-file",
            "droplet-id",
            "hostname-to-droplet-id",
        ],
    ),
    (
        "aws",
        &[
            "region",
            "endpoint",
            "mode",
            "instance-id",
            "hostname-to-instance-id",
            "network-interface-id",
            "access-key-id",
            "access-key-id-file",
            "secret-access-key",
            "secret-access-key-file",
        ],
    ),
];
