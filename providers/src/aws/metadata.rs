//! The instance metadata service, IMDSv2 only: a session token from
//! `PUT latest/api/token`, sent with every read. IMDSv1 (plain GETs) is
//! never used: it is what `HttpTokens=required` turns off, and what the
//! SSRF attacks on instance roles used.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::http::{read_body, transport};
use crate::metadata::Failure;
use crate::ProviderError;

/// The longest session AWS grants; the token is renewed a minute early.
const TOKEN_TTL: Duration = Duration::from_secs(21_600);
const PER_TRY: Duration = Duration::from_secs(3);
const MAX_VALUE: usize = 64 << 10;

pub(crate) struct Imds {
    client: reqwest::Client,
    /// Ends with `/`.
    base: String,
    token: Mutex<Option<(String, Instant)>>,
}

impl Imds {
    pub(crate) fn new(client: reqwest::Client, base: &str) -> Imds {
        Imds {
            client,
            base: crate::http::with_slash(base),
            token: Mutex::new(None),
        }
    }

    async fn fresh_token(&self) -> Result<String, Failure> {
        let url = format!("{}latest/api/token", self.base);
        let operation = format!("PUT {url}");
        let request = self
            .client
            .put(&url)
            .header(
                "x-aws-ec2-metadata-token-ttl-seconds",
                TOKEN_TTL.as_secs().to_string(),
            )
            .send();
        let mut response = match tokio::time::timeout(PER_TRY, request).await {
            Err(_) => return Err(Failure::Retry(format!("{operation}: no answer"))),
            Ok(Err(e)) => return Err(Failure::Retry(transport(&operation, e).to_string())),
            Ok(Ok(r)) => r,
        };
        match response.status().as_u16() {
            200 => {}
            // IMDS turned off for this instance, or the hop limit: a
            // container one hop further than HttpPutResponseHopLimit
            // never gets the answer (a timeout, above), or a 403.
            403 => {
                return Err(Failure::Fatal(format!(
                    "{operation}: HTTP 403: the instance metadata service refuses tokens \
                     (disabled for this instance?)"
                )))
            }
            s => return Err(Failure::Retry(format!("{operation}: HTTP {s}"))),
        }
        let body = read_body(&operation, &mut response, MAX_VALUE)
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?;
        let token = String::from_utf8_lossy(&body).trim().to_string();
        if token.is_empty() {
            return Err(Failure::Retry(format!("{operation}: an empty token")));
        }
        Ok(token)
    }

    async fn token(&self, renew: bool) -> Result<String, Failure> {
        let mut slot = self.token.lock().await;
        if let Some((token, until)) = slot.as_ref() {
            if !renew && Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let token = self.fresh_token().await?;
        *slot = Some((
            token.clone(),
            Instant::now() + TOKEN_TTL - Duration::from_secs(60),
        ));
        Ok(token)
    }

    /// `latest/meta-data/{path}`, trimmed. A 401 (the token expired or was
    /// lost) renews the token once; a 404 is `Fatal` (no such value: no
    /// role attached, say).
    pub(crate) async fn get(&self, path: &str) -> Result<String, Failure> {
        let url = format!("{}latest/meta-data/{path}", self.base);
        let operation = format!("GET {url}");
        for renew in [false, true] {
            let token = self.token(renew).await?;
            let request = self
                .client
                .get(&url)
                .header("x-aws-ec2-metadata-token", token)
                .send();
            let mut response = match tokio::time::timeout(PER_TRY, request).await {
                Err(_) => return Err(Failure::Retry(format!("{operation}: no answer"))),
                Ok(Err(e)) => return Err(Failure::Retry(transport(&operation, e).to_string())),
                Ok(Ok(r)) => r,
            };
            match response.status().as_u16() {
                200 => {
                    let body = read_body(&operation, &mut response, MAX_VALUE)
                        .await
                        .map_err(|e| Failure::Retry(e.to_string()))?;
                    return Ok(String::from_utf8_lossy(&body).trim().to_string());
                }
                401 if !renew => continue,
                404 => return Err(Failure::Fatal(format!("{operation}: HTTP 404"))),
                s => return Err(Failure::Retry(format!("{operation}: HTTP {s}"))),
            }
        }
        Err(Failure::Retry(format!(
            "{operation}: HTTP 401 with a new token"
        )))
    }

    /// [`Imds::get`] retried for `budget` (right after boot the service
    /// may not answer yet); `key` names the setting that makes it
    /// unnecessary.
    pub(crate) async fn value(
        &self,
        path: &str,
        key: &str,
        budget: Duration,
    ) -> Result<String, ProviderError> {
        let found = crate::metadata::retry(
            budget,
            || self.get(path),
            |last| tracing::debug!(error = %last, "instance metadata not available yet, retrying"),
        )
        .await;
        found.map_err(|failure| match failure {
            Failure::Fatal(msg) => ProviderError::Setup(format!("aws: {msg}; set {key}")),
            Failure::Retry(last) => ProviderError::Setup(format!(
                "aws: no answer from the instance metadata service (IMDSv2) within {} s ({last}); set {key}",
                budget.as_secs()
            )),
        })
    }
}
