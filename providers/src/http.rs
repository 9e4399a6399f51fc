//! HTTP plumbing shared by the providers: one client recipe, one way to
//! turn answers into [`ProviderError`]s, bounded body reads.

use std::error::Error as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{CaBundle, Cause, ProviderError};

/// Longest API answer we read; a floating-IP list of thousands of entries
/// fits, a misbehaving proxy streaming forever does not.
pub(crate) const MAX_BODY: usize = 4 << 20;
/// Error bodies only feed a one-line message.
pub(crate) const MAX_ERROR_BODY: usize = 64 << 10;
/// How much of a non-JSON error body ends up in a message.
const MAX_MESSAGE: usize = 200;
/// A server asking us to stay away longer than this is treated as asking
/// for this: a typo'd header must not park failover for a day.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The client every provider uses for its API.
///
/// No overall timeout on purpose: the caller bounds each attempt with its
/// `refresh-timeout`, and a client-wide one shorter than that would cut
/// attempts early. Connecting is bounded, because a black-holed SYN should
/// fail over to the next attempt quickly whatever the caller allows.
///
/// `ca` is trusted on top of the built-in roots, never instead of them.
/// Proxies come from the environment (`HTTPS_PROXY`, `ALL_PROXY`,
/// `NO_PROXY`, ..., read by reqwest at build time): enterprises reach the
/// cloud API through one.
pub(crate) fn client(ca: Option<&CaBundle>) -> Result<reqwest::Client, ProviderError> {
    build(builder(ca)?)
}

/// The client for the metadata service: like [`client`], but never
/// through a proxy. The service is link-local (169.254.169.254) and
/// answers only the instance itself; a proxy would ask on its own behalf
/// and learn its own identity, or leak ours, and `HTTP_PROXY` set for the
/// API must not take the lookup along.
pub(crate) fn metadata_client(ca: Option<&CaBundle>) -> Result<reqwest::Client, ProviderError> {
    build(builder(ca)?.no_proxy())
}

fn builder(ca: Option<&CaBundle>) -> Result<reqwest::ClientBuilder, ProviderError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("floaty/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(50))
        .tcp_keepalive(Duration::from_secs(30))
        // A provider must never follow a redirect elsewhere with its token.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = ca {
        for cert in ca.certificates()? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}

fn build(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, ProviderError> {
    builder
        .build()
        .map_err(|e| ProviderError::Setup(format!("cannot build the HTTP client: {}", chain(&e))))
}

/// `url` with a trailing `/`, so paths are appended without `Url::join`'s
/// surprises (joining drops the last segment of a base without `/`).
pub(crate) fn with_slash(url: &str) -> String {
    let url = url.trim();
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

/// Refuses a configured URL a request could not go to, at start-up rather
/// than as a confusing transport error on the first refresh.
pub(crate) fn check_url(provider: &str, what: &str, url: &str) -> Result<(), ProviderError> {
    match crate::check_endpoint(url) {
        Ok(_) => Ok(()),
        Err(why) => Err(ProviderError::Setup(format!(
            "{provider}: {what} is {why}: {url:?}"
        ))),
    }
}

/// An error and its causes on one line: reqwest's own Display says
/// "error sending request", the useful part ("Connection refused") is in
/// the sources.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    one_line(&out, 400)
}

/// A transport-level failure (connect, timeout, reset, broken body): always
/// worth retrying.
pub(crate) fn transport(operation: &str, e: reqwest::Error) -> ProviderError {
    let (kind, cause) = if e.is_timeout() {
        ("timed out", Cause::Timeout)
    } else if e.is_connect() {
        ("cannot connect", Cause::Connect)
    } else if e.is_body() || e.is_decode() {
        ("broken response body", Cause::Protocol)
    } else {
        ("request failed", Cause::Connect)
    };
    // The URL is already in `operation`; without it the message stays short.
    let e = e.without_url();
    let mut detail = match e.source() {
        Some(source) => chain(source),
        None => chain(&e),
    };
    // hyper-util's wrapper ("client error (Connect): ") says nothing the
    // kind does not already say.
    if detail.starts_with("client error (") {
        if let Some((_, rest)) = detail.split_once("): ") {
            detail = rest.to_string();
        }
    }
    ProviderError::Transient {
        operation: operation.to_string(),
        message: format!("{kind}: {detail}"),
        retry_after: None,
        cause,
    }
}

/// Sends `request`; a transport failure or a non-2xx answer is the error.
pub(crate) async fn send(
    operation: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ProviderError> {
    let response = execute(operation, request).await?;
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(status_error(operation, response).await)
    }
}

/// Sends `request` and notes the call; only a transport failure is the
/// error, whatever the status: for providers whose error bodies carry a
/// code that decides more than the status does (Hetzner's `locked`).
pub(crate) async fn execute(
    operation: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ProviderError> {
    let (client, built) = request.build_split();
    let request = built.map_err(|e| transport(operation, e))?;
    let method = request.method().clone();
    let started = std::time::Instant::now();
    match client.execute(request).await {
        Ok(r) => {
            crate::calls::note(&method, Some(r.status().as_u16()), started);
            Ok(r)
        }
        Err(e) => {
            crate::calls::note(&method, None, started);
            Err(transport(operation, e))
        }
    }
}

/// An answer read whole: what providers whose error bodies carry codes
/// (Hetzner, DigitalOcean) decide on.
pub(crate) struct Answer {
    pub status: u16,
    /// The server's `Retry-After`, if any.
    pub retry_after: Option<Duration>,
    /// At most [`MAX_BODY`] of a success, [`MAX_ERROR_BODY`] of an error
    /// (empty when an error's body broke: the status still decides).
    pub body: Vec<u8>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends `request`, notes the call, shows every answer's headers to
/// `headers` (errors included: a 429 says most about the budget) and reads
/// the body.
pub(crate) async fn exchange(
    operation: &str,
    request: reqwest::RequestBuilder,
    headers: impl FnOnce(&reqwest::header::HeaderMap),
) -> Result<Answer, ProviderError> {
    let mut response = execute(operation, request).await?;
    headers(response.headers());
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let body = if response.status().is_success() {
        read_body(operation, &mut response, MAX_BODY).await?
    } else {
        read_body(operation, &mut response, MAX_ERROR_BODY)
            .await
            .unwrap_or_default()
    };
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// The `Authorization` header for a Bearer token, marked sensitive so
/// reqwest's own Debug output hides it too.
pub(crate) fn bearer(
    provider: &str,
    token: &crate::Secret,
) -> Result<reqwest::header::HeaderValue, ProviderError> {
    if token.expose().is_empty() {
        return Err(ProviderError::Setup(format!(
            "{provider}: the API token is empty"
        )));
    }
    let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| {
            ProviderError::Setup(format!(
                "{provider}: the API token contains characters not allowed in an HTTP header"
            ))
        })?;
    auth.set_sensitive(true);
    Ok(auth)
}

/// Parses an API answer; one we cannot parse is transient, like a broken
/// body: the next try may get a good one.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    operation: &str,
    body: &[u8],
) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|e| ProviderError::Transient {
        operation: operation.to_string(),
        message: format!("unexpected answer: {e}"),
        retry_after: None,
        cause: Cause::Protocol,
    })
}

/// Reads at most `limit` bytes of body; a longer body is an error rather
/// than silently truncated JSON.
pub(crate) async fn read_body(
    operation: &str,
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ProviderError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ProviderError::Transient {
            operation: operation.to_string(),
            message: format!("response body larger than {limit} bytes"),
            retry_after: None,
            cause: Cause::Protocol,
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport(operation, e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(ProviderError::Transient {
                operation: operation.to_string(),
                message: format!("response body larger than {limit} bytes"),
                retry_after: None,
                cause: Cause::Protocol,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns a non-2xx answer into an error: 429 and 5xx are transient (with
/// the server's `Retry-After`), every other status is a rejection that
/// retrying soon will not fix.
pub(crate) async fn status_error(
    operation: &str,
    mut response: reqwest::Response,
) -> ProviderError {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    // The status alone must still make an error when the body is broken.
    let body = read_body(operation, &mut response, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    error_from(operation, status, retry_after, &body)
}

/// The server's `Retry-After`, if it sent one that parses.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// [`status_error`] for an answer already read: `status` (not 2xx), the
/// server's wait and the error body.
pub(crate) fn error_from(
    operation: &str,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> ProviderError {
    let detail = error_message(body);
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    if status == 429 || (500..600).contains(&status) {
        let message = match detail {
            Some(d) => format!("HTTP {status}: {d}"),
            None => format!("HTTP {status} {reason}"),
        };
        ProviderError::Transient {
            operation: operation.to_string(),
            message,
            retry_after,
            cause: if status == 429 {
                Cause::RateLimited
            } else {
                Cause::ServerError
            },
        }
    } else {
        ProviderError::Rejected {
            operation: operation.to_string(),
            status,
            message: detail.unwrap_or_else(|| reason.to_string()),
        }
    }
}

/// The human part of an API error body, on one line.
///
/// Accepts `{"detail": "..."}` (cloudscale), `{"message": "..."}`
/// (Exoscale), `{"error": "..."}` / `{"error": {"message": "..."}}`, field
/// errors such as `{"server": "..."}` or `{"server": ["...", "..."]}`, and
/// falls back to the raw text, shortened.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    use serde_json::Value;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let flat = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                (!parts.is_empty()).then(|| parts.join("; "))
            }
            Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    let message = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => {
            let known = ["detail", "message"]
                .iter()
                .find_map(|k| map.get(*k).and_then(&flat))
                .or_else(|| match map.get("error") {
                    Some(Value::Object(e)) => e.get("message").and_then(&flat),
                    Some(e) => flat(e),
                    None => None,
                });
            match known {
                Some(m) => m,
                None => {
                    let fields: Vec<String> = map
                        .iter()
                        .filter_map(|(k, v)| flat(v).map(|m| format!("{k}: {m}")))
                        .collect();
                    if fields.is_empty() {
                        text.to_string()
                    } else {
                        fields.join("; ")
                    }
                }
            }
        }
        Ok(Value::String(s)) => s,
        _ => text.to_string(),
    };
    Some(one_line(&message, MAX_MESSAGE))
}

/// Collapses whitespace and control characters and cuts at `max` chars, so
/// one error is one log line whatever the server sent.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            count += 1;
            space = false;
        }
        if count >= max {
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// `Retry-After` is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3);
/// a date in the past means "now". Capped at [`MAX_RETRY_AFTER`].
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits to parse is still "a long time".
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = UNIX_EPOCH + Duration::from_secs(parse_http_date(value)?);
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Seconds since the epoch of an HTTP-date in any of the three forms a
/// recipient must accept: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
/// RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`).
pub(crate) fn parse_http_date(s: &str) -> Option<u64> {
    let words: Vec<&str> = s.split_ascii_whitespace().collect();
    let (day, month, year, time) = match words.as_slice() {
        [wkday, day, month, year, time, "GMT"] if wkday.ends_with(',') => (
            day.parse::<u32>().ok()?,
            *month,
            year.parse::<i64>().ok()?,
            *time,
        ),
        [wkday, date, time, "GMT"] if wkday.ends_with(',') => {
            let mut parts = date.split('-');
            let day = parts.next()?.parse::<u32>().ok()?;
            let month = parts.next()?;
            let yy = parts.next()?;
            let year = yy.parse::<i64>().ok()?;
            let year = match yy.len() {
                2 if year < 70 => 2000 + year,
                2 => 1900 + year,
                _ => year,
            };
            (day, month, year, *time)
        }
        [_, month, day, time, year] => (
            day.parse::<u32>().ok()?,
            *month,
            year.parse::<i64>().ok()?,
            *time,
        ),
        _ => return None,
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some()
        || !(1..=31).contains(&day)
        || h > 23
        || m > 59
        || sec > 60
        || year < 1970
    {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm), to avoid a date crate for one header.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        for date in [
            "Sun, 06 Nov 1994 08:50:07 GMT",
            "Sunday, 06-Nov-94 08:50:07 GMT",
            "Sun Nov  6 08:50:07 1994",
        ] {
            assert_eq!(
                parse_retry_after(date, now),
                Some(Duration::from_secs(30)),
                "{date}"
            );
        }
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:00:00 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951_825_600)
        );
    }

    #[test]
    fn error_bodies() {
        let m = |s: &str| error_message(s.as_bytes());
        assert_eq!(
            m(r#"{"detail": "Not found."}"#).as_deref(),
            Some("Not found.")
        );
        assert_eq!(
            m(r#"{"message": "Invalid request signature"}"#).as_deref(),
            Some("Invalid request signature")
        );
        assert_eq!(
            m(r#"{"error": {"code": "x", "message": "nope"}}"#).as_deref(),
            Some("nope")
        );
        assert_eq!(
            m(r#"{"server": "bad uuid"}"#).as_deref(),
            Some("server: bad uuid")
        );
        assert_eq!(
            m(r#"{"server": ["a", "b"], "tags": ["c"]}"#).as_deref(),
            Some("server: a; b; tags: c")
        );
        assert_eq!(m("").as_deref(), None);
        assert_eq!(
            m("<html>\n<b>Bad\tGateway</b>\n</html>").as_deref(),
            Some("<html> <b>Bad Gateway</b> </html>")
        );
        let long = m(&"x".repeat(5000)).unwrap_or_default();
        assert_eq!(long.chars().count(), MAX_MESSAGE + 1);
    }
}
