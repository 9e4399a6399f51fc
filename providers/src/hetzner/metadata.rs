//! Learning "which server am I" from Hetzner's metadata service, so a fleet
//! can share one configuration file.

use std::time::Duration;

use crate::ProviderError;

pub(crate) use crate::metadata::BUDGET;

/// Plain text, the server's integer id (`42`); no auth header.
const INSTANCE_ID: &str = "hetzner/v1/metadata/instance-id";

pub(crate) async fn server_id(
    client: &reqwest::Client,
    base_url: &str,
    budget: Duration,
) -> Result<u64, ProviderError> {
    crate::metadata::plain_id(
        client,
        "hetzner",
        base_url,
        INSTANCE_ID,
        "hetzner.server-id in the configuration",
        budget,
    )
    .await
}
