//! Learning "which instance am I, in which zone" from the metadata service,
//! so a fleet can share one configuration file.
//!
//! Which paths Exoscale's service answers is not settled: cloud-init and
//! afterburn read `/1.0/meta-data/KEY`, the Go SDK `/latest/meta-data/KEY`.
//! Both are tried, in that order; values are plain text.

use std::time::Duration;

use crate::http::{one_line, with_slash};
use crate::metadata::{self, check_base, Failure};
use crate::ProviderError;

pub(crate) use crate::metadata::BUDGET;

/// Tried in this order under the metadata base URL.
pub(crate) const PATHS: [&str; 2] = ["1.0/meta-data/", "latest/meta-data/"];
/// Per try: the service is link-local and answers in milliseconds when up.
const PER_TRY: Duration = Duration::from_secs(3);
/// A UUID or a zone slug; anything longer is not one.
const MAX_VALUE: usize = 4096;

/// A metadata key floaty reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    InstanceId,
    Zone,
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::InstanceId => "instance-id",
            Key::Zone => "availability-zone",
        }
    }

    fn config_key(self) -> &'static str {
        match self {
            Key::InstanceId => "exoscale.instance-id",
            Key::Zone => "exoscale.zone",
        }
    }

    /// Checks the value; Err says what is wrong with it.
    fn check(self, value: &str) -> Result<(), String> {
        let ok = match self {
            Key::InstanceId => uuid::Uuid::parse_str(value).is_ok(),
            Key::Zone => {
                !value.is_empty()
                    && value.len() <= 64
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{} is not {}: {:?}",
                self.name(),
                match self {
                    Key::InstanceId => "a UUID",
                    Key::Zone => "a zone name",
                },
                one_line(value, 60)
            ))
        }
    }
}

/// Reads `key`, trying every known path, retrying on the back-off within
/// `budget`, then failing with a `Setup` error that says what to configure.
pub(crate) async fn lookup(
    client: &reqwest::Client,
    base_url: &str,
    key: Key,
    budget: Duration,
) -> Result<String, ProviderError> {
    let base = with_slash(base_url);
    let urls: Vec<String> = PATHS
        .iter()
        .map(|p| format!("{base}{p}{}", key.name()))
        .collect();
    check_base("exoscale", &urls[0], base_url)?;
    let found = metadata::retry(
        budget,
        || read_any(client, &urls, key),
        |last| {
            tracing::debug!(key = key.name(), error = %last, "metadata not available yet, retrying")
        },
    )
    .await;
    found.map_err(|failure| match failure {
        Failure::Fatal(msg) => ProviderError::Setup(format!(
            "exoscale: {msg}; set {} in the configuration",
            key.config_key()
        )),
        Failure::Retry(last) => ProviderError::Setup(format!(
            "exoscale: cannot learn this instance's {} from the metadata service within {} s ({last}); \
             set {} in the configuration",
            key.name(),
            budget.as_secs(),
            key.config_key()
        )),
    })
}

/// One round over every path: the first value wins; a round where none
/// answers is retryable with what each path said.
async fn read_any(client: &reqwest::Client, urls: &[String], key: Key) -> Result<String, Failure> {
    let mut last = Vec::new();
    for url in urls {
        match fetch(client, url).await {
            Ok(value) => {
                return key
                    .check(&value)
                    .map(|()| value)
                    .map_err(|e| Failure::Fatal(format!("GET {url}: {e}")))
            }
            Err(Failure::Retry(msg)) => last.push(format!("{url}: {msg}")),
            Err(fatal) => return Err(fatal),
        }
    }
    Err(Failure::Retry(last.join("; ")))
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<String, Failure> {
    let body = metadata::get(client, url, PER_TRY, MAX_VALUE).await?;
    let text = String::from_utf8(body)
        .map_err(|_| Failure::Fatal(format!("GET {url}: the value is not text")))?;
    let value = text.trim();
    if value.is_empty() {
        // Seen during boot on some clouds: an empty 200 before the value.
        return Err(Failure::Retry("empty value".into()));
    }
    Ok(value.to_string())
}
