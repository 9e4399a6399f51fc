//! Learning "which server am I" from the metadata service, so a fleet can
//! share one configuration file.

use std::time::Duration;

use super::api::MetaData;
use crate::http::with_slash;
use crate::metadata::{self, check_base, Failure};
use crate::ProviderError;

pub(crate) use crate::metadata::BUDGET;

/// Per try: the service is link-local and answers in milliseconds when up.
const PER_TRY: Duration = Duration::from_secs(5);
const MAX_METADATA: usize = 1 << 20;

pub(crate) async fn server_uuid(
    client: &reqwest::Client,
    base_url: &str,
    budget: Duration,
) -> Result<uuid::Uuid, ProviderError> {
    let url = format!("{}openstack/latest/meta_data.json", with_slash(base_url));
    check_base("cloudscale", &url, base_url)?;
    let found = metadata::retry(
        budget,
        || fetch(client, &url),
        |last| tracing::debug!(%url, error = %last, "metadata not available yet, retrying"),
    )
    .await;
    found.map_err(|failure| match failure {
        Failure::Fatal(msg) => ProviderError::Setup(format!(
            "cloudscale: {msg}; set the server UUID in the configuration"
        )),
        Failure::Retry(last) => ProviderError::Setup(format!(
            "cloudscale: cannot learn this server's UUID from GET {url} within {} s ({last}); \
             set the server UUID in the configuration",
            budget.as_secs()
        )),
    })
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<uuid::Uuid, Failure> {
    let body = metadata::get(client, url, PER_TRY, MAX_METADATA).await?;
    let doc: MetaData = serde_json::from_slice(&body)
        .map_err(|e| Failure::Retry(format!("GET {url}: not metadata JSON: {e}")))?;
    let Some(text) = doc.meta.and_then(|m| m.cloudscale_uuid) else {
        return Err(Failure::Fatal(format!(
            "GET {url} has no meta.cloudscale_uuid (not a cloudscale server?)"
        )));
    };
    uuid::Uuid::parse_str(text.trim()).map_err(|_| {
        Failure::Fatal(format!(
            "GET {url}: meta.cloudscale_uuid is not a UUID: {:?}",
            crate::http::one_line(&text, 60)
        ))
    })
}
