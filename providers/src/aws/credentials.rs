//! Where the signing key comes from: keys given in the configuration or
//! the standard environment variables, else the instance role through
//! IMDSv2, cached until shortly before its `Expiration` and renewed ahead
//! of it, so that a rotation never costs a failed request.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::metadata::Imds;
use crate::metadata::Failure;
use crate::{Cause, ProviderError, Secret};

/// Renew role credentials this long before they expire at most (AWS
/// offers new ones five minutes before), a quarter of their life at least
/// (short-lived test credentials).
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// What the settings say. `PartialEq` so a reload sees a rotated key.
#[derive(Debug, Clone, PartialEq)]
pub enum Credentials {
    /// `aws.access-key-id` / `aws.secret-access-key` (or their `-file`
    /// keys), or `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN`.
    Static {
        access_key_id: Secret,
        secret_access_key: Secret,
        session_token: Option<Secret>,
    },
    /// The instance profile's role, through IMDSv2.
    InstanceRole,
}

/// One set of keys to sign with.
#[derive(Clone)]
pub(crate) struct Keys {
    pub access_key_id: Secret,
    pub secret: Secret,
    pub session_token: Option<Secret>,
}

struct Cached {
    keys: Keys,
    role: String,
    expiration: SystemTime,
    renew_at: SystemTime,
}

enum Kind {
    Static(Keys),
    Role {
        imds: Arc<Imds>,
        cache: Mutex<Option<Cached>>,
    },
}

pub(crate) struct KeySource {
    kind: Kind,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleAnswer {
    #[serde(default)]
    code: String,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    expiration: Option<String>,
}

impl KeySource {
    pub(crate) fn new(credentials: &Credentials, imds: Arc<Imds>) -> KeySource {
        KeySource {
            kind: match credentials {
                Credentials::Static {
                    access_key_id,
                    secret_access_key,
                    session_token,
                } => Kind::Static(Keys {
                    access_key_id: access_key_id.clone(),
                    secret: secret_access_key.clone(),
                    session_token: session_token.clone(),
                }),
                Credentials::InstanceRole => Kind::Role {
                    imds,
                    cache: Mutex::new(None),
                },
            },
        }
    }

    pub(crate) fn is_role(&self) -> bool {
        matches!(self.kind, Kind::Role { .. })
    }

    /// For `--test`: where the keys come from, without them.
    pub(crate) async fn describe(&self) -> Result<String, ProviderError> {
        self.keys().await?;
        Ok(match &self.kind {
            Kind::Static(k) => format!(
                "static keys {}{}",
                shown_key_id(k.access_key_id.expose()),
                if k.session_token.is_some() {
                    " with a session token"
                } else {
                    ""
                }
            ),
            Kind::Role { cache, .. } => match cache.lock().await.as_ref() {
                Some(c) => format!(
                    "instance role {:?}, keys {} valid for {} s",
                    c.role,
                    shown_key_id(c.keys.access_key_id.expose()),
                    c.expiration
                        .duration_since(SystemTime::now())
                        .map_or(0, |d| d.as_secs())
                ),
                None => "instance role".into(),
            },
        })
    }

    /// The keys to sign the next request with.
    pub(crate) async fn keys(&self) -> Result<Keys, ProviderError> {
        let (imds, cache) = match &self.kind {
            Kind::Static(k) => return Ok(k.clone()),
            Kind::Role { imds, cache } => (imds, cache),
        };
        let mut cache = cache.lock().await;
        let now = SystemTime::now();
        if let Some(c) = cache.as_ref() {
            if now < c.renew_at {
                return Ok(c.keys.clone());
            }
        }
        match fetch(imds).await {
            Ok(fresh) => {
                if cache.is_some() {
                    tracing::info!(role = %fresh.role, "aws: instance role credentials renewed");
                }
                let keys = fresh.keys.clone();
                *cache = Some(fresh);
                Ok(keys)
            }
            // Still valid: keep signing with them, try again next time.
            Err(e) => match cache.as_ref() {
                Some(c) if now < c.expiration => {
                    tracing::warn!("aws: cannot renew the instance role credentials yet: {e}");
                    Ok(c.keys.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// Forgets role credentials the API refused (revoked, expired early):
    /// the next request fetches new ones.
    pub(crate) async fn invalidate(&self) {
        if let Kind::Role { cache, .. } = &self.kind {
            *cache.lock().await = None;
        }
    }
}

/// `AKIA…WXYZ`: enough to tell keys apart in a log, not to use one.
fn shown_key_id(id: &str) -> String {
    let tail: String = id
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let head: String = id.chars().take(4).collect();
    format!("{head}…{tail}")
}

async fn fetch(imds: &Imds) -> Result<Cached, ProviderError> {
    let unavailable = |msg: String| ProviderError::Transient {
        operation: "IMDSv2 iam/security-credentials".into(),
        message: msg,
        retry_after: None,
        cause: Cause::Connect,
    };
    let no_role = |msg: String| {
        ProviderError::Setup(format!(
            "aws: no credentials: none in the configuration or the environment, and no instance \
             role ({msg}); set aws.access-key-id and aws.secret-access-key, AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or attach an instance profile"
        ))
    };
    let failure = |f: Failure| match f {
        Failure::Retry(m) => unavailable(m),
        Failure::Fatal(m) => no_role(m),
    };
    let roles = imds
        .get("iam/security-credentials/")
        .await
        .map_err(failure)?;
    let Some(role) = roles.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return Err(no_role("the instance has no role".into()));
    };
    let text = imds
        .get(&format!("iam/security-credentials/{role}"))
        .await
        .map_err(failure)?;
    let answer: RoleAnswer = serde_json::from_str(&text)
        .map_err(|e| unavailable(format!("role {role:?}: not the credentials JSON: {e}")))?;
    if answer.code != "Success" {
        return Err(unavailable(format!(
            "role {role:?}: Code {:?}",
            crate::http::one_line(&answer.code, 40)
        )));
    }
    let (Some(id), Some(secret), Some(expiration)) = (
        answer.access_key_id,
        answer.secret_access_key,
        answer.expiration.as_deref().and_then(parse_time),
    ) else {
        return Err(unavailable(format!(
            "role {role:?}: AccessKeyId, SecretAccessKey or Expiration missing"
        )));
    };
    let now = SystemTime::now();
    let life = expiration.duration_since(now).unwrap_or_default();
    let renew_at = expiration - RENEW_BEFORE.min(life / 4);
    Ok(Cached {
        keys: Keys {
            access_key_id: Secret::new(id),
            secret: Secret::new(secret),
            session_token: answer.token.map(Secret::new),
        },
        role: role.to_string(),
        expiration,
        renew_at,
    })
}

/// `2026-12-02T13:00:00Z` (IMDS's `Expiration`).
pub(crate) fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim().strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<u64>().ok()?,
        t.next()?.parse::<u64>().ok()?,
    );
    // Seconds may carry a fraction.
    let sec = t.next()?.split('.').next()?.parse::<u64>().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 60 {
        return None;
    }
    let days = crate::http::days_from_civil(y, m as u32, day as u32);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + min * 60 + sec;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_times() {
        assert_eq!(
            parse_time("2026-12-01T12:00:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_796_126_400))
        );
        assert_eq!(
            parse_time("1970-01-01T00:00:01.5Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1))
        );
        for bad in ["", "2026-12-01 12:00:00", "2026-13-01T12:00:00Z", "soon"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn key_ids_are_shown_shortened() {
        assert_eq!(shown_key_id("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
    }
}
