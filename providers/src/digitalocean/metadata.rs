//! Learning "which droplet am I" from DigitalOcean's metadata service, so a
//! fleet can share one configuration file.

use std::time::Duration;

use crate::ProviderError;

pub(crate) use crate::metadata::BUDGET;

/// Plain text, the droplet's integer id; no auth header.
const DROPLET_ID: &str = "metadata/v1/id";

pub(crate) async fn droplet_id(
    client: &reqwest::Client,
    base_url: &str,
    budget: Duration,
) -> Result<u64, ProviderError> {
    crate::metadata::plain_id(
        client,
        "digitalocean",
        base_url,
        DROPLET_ID,
        "digitalocean.droplet-id in the configuration",
        budget,
    )
    .await
}
