//! Learning "which server am I" from the metadata service, so a fleet can
//! share one configuration file.

use std::time::Duration;

use tokio::time::Instant;

use super::api::MetaData;
use crate::http::{read_body, transport};
use crate::ProviderError;

/// Per try: the service is link-local and answers in milliseconds when up.
const PER_TRY: Duration = Duration::from_secs(5);
/// Right after boot the service (or the route to it) may not be up yet;
/// this long covers that without stalling a misconfigured start for long.
pub(crate) const BUDGET: Duration = Duration::from_secs(10);
const MAX_METADATA: usize = 1 << 20;

enum Failure {
    /// Worth another try (down, timeout, 5xx, 404 during boot).
    Retry(String),
    /// The service answered, but not with a cloudscale server UUID.
    Fatal(String),
}

pub(crate) async fn server_uuid(
    client: &reqwest::Client,
    base_url: &str,
    budget: Duration,
) -> Result<uuid::Uuid, ProviderError> {
    let url = format!(
        "{}openstack/latest/meta_data.json",
        super::with_slash(base_url)
    );
    // A typo here is not worth ten seconds of retries.
    if !reqwest::Url::parse(&url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
        return Err(ProviderError::Setup(format!(
            "cloudscale: metadata URL is not an http(s) URL: {base_url:?}"
        )));
    }
    let start = Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        let last = match tokio::time::timeout(PER_TRY, fetch(client, &url)).await {
            Ok(Ok(uuid)) => return Ok(uuid),
            Ok(Err(Failure::Fatal(msg))) => {
                return Err(ProviderError::Setup(format!(
                    "cloudscale: {msg}; set the server UUID in the configuration"
                )))
            }
            Ok(Err(Failure::Retry(msg))) => msg,
            Err(_) => format!("no answer within {} s", PER_TRY.as_secs()),
        };
        if start.elapsed() + delay > budget {
            return Err(ProviderError::Setup(format!(
                "cloudscale: cannot learn this server's UUID from GET {url} within {} s ({last}); \
                 set the server UUID in the configuration",
                budget.as_secs()
            )));
        }
        tracing::debug!(%url, error = %last, "metadata not available yet, retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<uuid::Uuid, Failure> {
    let operation = format!("GET {url}");
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| Failure::Retry(transport(&operation, e).to_string()))?;
    if !response.status().is_success() {
        return Err(Failure::Retry(format!(
            "HTTP {}",
            response.status().as_u16()
        )));
    }
    let body = read_body(&operation, &mut response, MAX_METADATA)
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?;
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
