//! What every provider's metadata lookup shares: the service is link-local
//! and answers in milliseconds when up, but right after boot it (or the
//! route to it) may not be up yet, so a lookup retries for a while before
//! asking for the value in the configuration.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::http::{read_body, transport};
use crate::ProviderError;

/// Where every cloud floaty knows serves its metadata (link-local).
pub const DEFAULT_METADATA_URL: &str = "http://169.254.169.254/";

/// Covers a service still coming up after boot without stalling a
/// misconfigured start for long.
pub(crate) const BUDGET: Duration = Duration::from_secs(10);

pub(crate) enum Failure {
    /// Worth another try (down, timeout, 5xx, 404 during boot).
    Retry(String),
    /// The service answered with something that is not the value.
    Fatal(String),
}

/// Refuses a base URL no request could go to: a typo is not worth
/// [`BUDGET`] of retries.
pub(crate) fn check_base(provider: &str, url: &str, base_url: &str) -> Result<(), ProviderError> {
    if reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
        Ok(())
    } else {
        Err(ProviderError::Setup(format!(
            "{provider}: metadata URL is not an http(s) URL: {base_url:?}"
        )))
    }
}

/// The body of `GET url`, at most `limit` bytes, within `per_try`. Any
/// failure is worth a retry: what the body means is the caller's to judge.
pub(crate) async fn get(
    client: &reqwest::Client,
    url: &str,
    per_try: Duration,
    limit: usize,
) -> Result<Vec<u8>, Failure> {
    let operation = format!("GET {url}");
    let attempt = async {
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
        read_body(&operation, &mut response, limit)
            .await
            .map_err(|e| Failure::Retry(e.to_string()))
    };
    match tokio::time::timeout(per_try, attempt).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Retry(format!(
            "no answer within {} s",
            per_try.as_secs()
        ))),
    }
}

/// Runs `attempt` until it gives a value or a fatal failure, pausing 250 ms
/// and doubling up to 2 s in between; gives up with the last retryable
/// failure when the next pause would overrun `budget`. `retrying` sees each
/// failure that is retried, for the caller's debug log.
pub(crate) async fn retry<T, F, Fut>(
    budget: Duration,
    mut attempt: F,
    retrying: impl Fn(&str),
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        let last = match attempt().await {
            Err(Failure::Retry(msg)) => msg,
            done => return done,
        };
        if start.elapsed() + delay > budget {
            return Err(Failure::Retry(last));
        }
        retrying(&last);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Per try: the service is link-local and answers in milliseconds when up.
const PER_TRY: Duration = Duration::from_secs(5);
/// An id is a few digits; anything longer is not the id.
const MAX_ID: usize = 4 << 10;

/// A numeric id served as plain text at `path` under `base_url`
/// (Hetzner's `instance-id`, DigitalOcean's droplet `id`), retried for
/// `budget`. `key` names the setting that makes the look-up unnecessary.
pub(crate) async fn plain_id(
    client: &reqwest::Client,
    provider: &str,
    base_url: &str,
    path: &str,
    key: &str,
    budget: Duration,
) -> Result<u64, ProviderError> {
    let url = format!("{}{path}", crate::http::with_slash(base_url));
    check_base(provider, &url, base_url)?;
    let attempt = || async {
        let body = get(client, &url, PER_TRY, MAX_ID).await?;
        let text = String::from_utf8_lossy(&body);
        text.trim().parse::<u64>().map_err(|_| {
            Failure::Fatal(format!(
                "GET {url} is not a numeric id: {:?}",
                crate::http::one_line(&text, 60)
            ))
        })
    };
    let found = retry(
        budget,
        attempt,
        |last| tracing::debug!(%url, error = %last, "metadata not available yet, retrying"),
    )
    .await;
    found.map_err(|failure| match failure {
        Failure::Fatal(msg) => ProviderError::Setup(format!("{provider}: {msg}; set {key}")),
        Failure::Retry(last) => ProviderError::Setup(format!(
            "{provider}: cannot learn this node's id from GET {url} within {} s ({last}); set {key}",
            budget.as_secs()
        )),
    })
}
