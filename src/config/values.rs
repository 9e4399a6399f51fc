//! The checked value types: each `Deserialize` checks its scalar, so
//! serde_yaml attaches the line and the key path to our message.

use std::fmt;
use std::time::Duration;

use floaty_providers::Secret;
use serde::de::{self, Deserializer, Visitor};

use crate::text::text;
use serde::Deserialize;
use uuid::Uuid;

use super::{ProviderKind, DEFAULT_CLOUDSCALE_ENDPOINT};
use crate::address::Vip;
use crate::duration;

// ---------------------------------------------------------------------------
// Checked values. Each `Deserialize` reads the scalar as text (serde_yaml
// hands every scalar over as a string, so `token: 1234` works as in Go) and
// returns our message; serde_yaml adds line and key.

/// Intervals and timeouts, with a floor of `MIN_MS` milliseconds: zero
/// would mean a busy loop or an instant failure, and values just above it
/// nearly the same (`refresh-interval: 1ns` made 115 API requests in 5 s).
/// The floors are in [`MIN_REFRESH_INTERVAL`] and its neighbours.
pub(super) struct MinDuration<const MIN_MS: u64>(pub(super) Duration);

/// The lower bounds, documented in docs/BAD-INPUT.md and the README.
/// refresh-interval: one API read per second per instance is already more
/// than any cloud API wants to see for an address that is not moving.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// refresh-timeout and lock-timeout: below this a request or a stopping
/// refresher cannot finish even on a fast path; it is a typo, not a policy.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// back-off intervals: retries closer than this only hammer a failing API.
pub const MIN_BACK_OFF: Duration = Duration::from_millis(10);

pub(super) type RefreshInterval = MinDuration<{ MIN_REFRESH_INTERVAL.as_millis() as u64 }>;
pub(super) type Timeout = MinDuration<{ MIN_TIMEOUT.as_millis() as u64 }>;
pub(super) type BackOffInterval = MinDuration<{ MIN_BACK_OFF.as_millis() as u64 }>;

pub(super) fn min_duration<const MIN_MS: u64>(s: &str) -> Result<MinDuration<MIN_MS>, String> {
    let min = Duration::from_millis(MIN_MS);
    match duration::parse(s).map_err(|e| e.to_string())? {
        d if d.is_zero() => Err(format!(
            "`{s}` is zero; it must be longer than that, e.g. 10s"
        )),
        d if d < min => Err(format!(
            "`{s}` is below the minimum of {}; write at least {}",
            duration::format(min),
            duration::format(min)
        )),
        d => Ok(MinDuration(d)),
    }
}

impl<'de, const MIN_MS: u64> Deserialize<'de> for MinDuration<MIN_MS> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a duration like 10s", min_duration::<MIN_MS>)
    }
}

/// `max-elapsed-time`, where 0 has a meaning (no limit).
pub(super) struct AnyDuration(pub(super) Duration);

impl<'de> Deserialize<'de> for AnyDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        duration::deserialize(d).map(AnyDuration)
    }
}

pub(super) struct Multiplier(pub(super) f64);

impl<'de> Deserialize<'de> for Multiplier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Multiplier;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of at least 1, e.g. 1.5")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Multiplier, E> {
                // Below 1 the waits would shrink: hammering a failing API.
                if v.is_finite() && v >= 1.0 {
                    Ok(Multiplier(v))
                } else {
                    Err(E::custom(format!(
                        "{v} is not allowed; the multiplier must be a number of at least 1, e.g. 1.5"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Multiplier, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Multiplier, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_f64(V)
    }
}

pub(super) struct VipValue(pub(super) Vip);

impl<'de> Deserialize<'de> for VipValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "an address like 192.0.2.10 or 2001:db8::10/64", |s| {
            s.parse().map(VipValue).map_err(|e| format!("{e}"))
        })
    }
}

/// `None` for the nil UUID: vshn/floaty treated all-zeros as "not set".
pub(super) struct UuidValue(pub(super) Option<Uuid>);

impl<'de> Deserialize<'de> for UuidValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a UUID", |s| {
            match Uuid::parse_str(s.trim()) {
            Ok(u) if u.is_nil() => Ok(UuidValue(None)),
            Ok(u) => Ok(UuidValue(Some(u))),
            Err(_) => Err(format!(
                "{s:?} is not a UUID (expected 8-4-4-4-12 hex digits, e.g. 6c1c8e4e-8f2a-4b0e-9a53-3c1e8f0a2b7d)"
            )),
        }
        })
    }
}

/// Empty means absent, as with Go's zero-value strings.
pub(super) struct SecretValue(pub(super) Option<Secret>);

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The check must never quote its input.
        text(d, "a string", |s| {
            // A block scalar (`token: |`) ends in a newline; dropped as it
            // is from a file or the environment.
            let s = s.trim_end_matches(['\n', '\r']);
            Ok(SecretValue((!s.is_empty()).then(|| Secret::new(s))))
        })
    }
}

pub(super) struct OptionalText(pub(super) Option<String>);

impl<'de> Deserialize<'de> for OptionalText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a string", |s| {
            Ok(OptionalText((!s.is_empty()).then(|| s.to_string())))
        })
    }
}

/// Paths and ids where an empty string can only be a mistake.
pub(super) struct NonEmpty(pub(super) String);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a non-empty string", |s| {
            if s.is_empty() {
                Err("empty; remove the key to use the default".to_string())
            } else {
                Ok(NonEmpty(s.to_string()))
            }
        })
    }
}

/// cloudscale's base URL, normalised to end in `/` so API paths can be
/// appended.
pub(super) struct Endpoint(pub(super) String);

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "an http(s) URL", |s| {
            let mut url = check_url(s)?;
            if !url.ends_with('/') {
                url.push('/');
            }
            Ok(Endpoint(url))
        })
    }
}

/// An endpoint that is the whole API base, version path included
/// (`https://api-ZONE.exoscale.com/v2`, `https://api.hetzner.cloud/v1`);
/// the provider adds the `/` it needs (and Exoscale's ignores vshn/floaty's
/// v1 URLs).
pub(super) struct ApiBase(pub(super) String);

impl<'de> Deserialize<'de> for ApiBase {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "an http(s) URL", |s| check_url(s).map(ApiBase))
    }
}

/// A server's or droplet's integer id (Hetzner, DigitalOcean): 64 bits,
/// as real ones exceed 2^31.
pub(super) struct IdValue(pub(super) u64);

impl<'de> Deserialize<'de> for IdValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a whole number like 4711", |s| {
            match s.trim().parse::<u64>() {
            Ok(0) => Err("0 is no id; write the id the cloud shows (e.g. 4711), or remove the key to ask the metadata service".to_string()),
            Ok(n) => Ok(IdValue(n)),
            Err(_) => Err(format!(
                "{:?} is not an id; write the whole number the cloud shows, e.g. 4711",
                crate::text::shown(s)
            )),
        }
        })
    }
}

/// `s` with any `user:password@` before the host replaced by `***@`, for
/// quoting a URL in a message: a password in a URL is a secret too.
pub(super) fn without_userinfo(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => s.to_string(),
    }
}

/// The endpoint as written, once it is certain to work as a base URL.
/// Checked here rather than at the first request: a bad port or a
/// `user:pw@` only showed in the refresher's log, failing for ever (and
/// the userinfo made reqwest send Basic auth instead of the token).
pub(super) fn check_url(s: &str) -> Result<String, String> {
    use floaty_providers::EndpointError;
    let quoted = crate::text::shown(&without_userinfo(s));
    let example = DEFAULT_CLOUDSCALE_ENDPOINT;
    match floaty_providers::check_endpoint(s) {
        Ok(_) => Ok(s.to_string()),
        // Was silently the production API: surprising for someone who
        // meant to point floaty at a test endpoint.
        Err(EndpointError::Empty) => Err("empty; remove the key to use the default".to_string()),
        Err(EndpointError::NotHttp) => Err(format!("\"{quoted}\" is not an http(s) URL (write e.g. {example})")),
        Err(EndpointError::Invalid(why)) => Err(format!("\"{quoted}\" is not a valid URL: {why} (write e.g. {example})")),
        Err(EndpointError::Credentials) => Err(format!(
            "\"{quoted}\" holds credentials (`user:password@`); credentials do not belong in the URL: remove them, floaty sends the API credentials itself"
        )),
        Err(EndpointError::QueryOrFragment) => Err(format!(
            "\"{quoted}\" has a query or fragment; give only the base URL, e.g. {example}"
        )),
    }
}

/// `demote-by`: what a node that cannot move the address subtracts from
/// its priority. 1..=253: 254 and more is keepalived's FAULT, which only a
/// drain may ask for (keepalived-health.md §1.6).
pub(super) struct DemoteBy(pub(super) i32);

impl<'de> Deserialize<'de> for DemoteBy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a number from 1 to 253", |s| {
            match s.parse::<i32>() {
            Ok(n @ 1..=253) => Ok(DemoteBy(n)),
            Ok(n) => Err(format!(
                "{n} is out of range; write 1 to 253, more than the gap between the nodes' priorities (254 would be FAULT: use --drain for that)"
            )),
            Err(_) => Err(format!(
                "{:?} is not a whole number; write e.g. 100",
                crate::text::shown(s)
            )),
        }
        })
    }
}

/// Every value `provider:` takes, for messages.
pub(super) const PROVIDERS: &str = "cloudscale, exoscale, hetzner, digitalocean or aws";

/// An AWS id of a kind (`i-0123456789abcdef0`, `eni-…`): the prefix and
/// hex digits, so a name or an ARN is caught here rather than by the API
/// on the first failover.
fn aws_id(s: &str, prefix: &str, example: &str) -> Result<String, String> {
    let s = s.trim();
    match s.strip_prefix(prefix) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(s.to_string())
        }
        _ => Err(format!(
            "{:?} is not an id like {example}",
            crate::text::shown(s)
        )),
    }
}

/// `aws.instance-id`.
pub(super) struct InstanceIdValue(pub(super) String);

impl<'de> Deserialize<'de> for InstanceIdValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "an instance id like i-0123456789abcdef0", |s| {
            aws_id(s, "i-", "i-0123456789abcdef0").map(InstanceIdValue)
        })
    }
}

/// `aws.network-interface-id`.
pub(super) struct EniValue(pub(super) String);

impl<'de> Deserialize<'de> for EniValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(
            d,
            "a network interface id like eni-0123456789abcdef0",
            |s| aws_id(s, "eni-", "eni-0123456789abcdef0").map(EniValue),
        )
    }
}

/// `aws.mode`.
pub(super) struct AwsModeValue(pub(super) floaty_providers::aws::AddressMode);

impl<'de> Deserialize<'de> for AwsModeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use floaty_providers::aws::AddressMode;
        text(d, "elastic-ip or secondary-private-ip", |s| match s {
            "elastic-ip" => Ok(AwsModeValue(AddressMode::ElasticIp)),
            "secondary-private-ip" => Ok(AwsModeValue(AddressMode::SecondaryPrivateIp)),
            other => Err(format!(
                "{:?} is not a mode; write elastic-ip (the default) or secondary-private-ip",
                crate::text::shown(other)
            )),
        })
    }
}

/// `aws.region`: `eu-central-1` and its kind.
pub(super) struct AwsRegion(pub(super) String);

impl<'de> Deserialize<'de> for AwsRegion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a region like eu-central-1", |s| {
            let ok = !s.is_empty()
                && s.contains('-')
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if ok {
                Ok(AwsRegion(s.to_string()))
            } else {
                Err(format!(
                    "{:?} is not a region (write e.g. eu-central-1), or remove the key to ask the metadata service",
                    crate::text::shown(s)
                ))
            }
        })
    }
}

/// `provider:`; empty counts as missing, like in vshn/floaty.
pub(super) struct ProviderValue(pub(super) Option<ProviderKind>);

impl<'de> Deserialize<'de> for ProviderValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, PROVIDERS, |s| match s {
            "" => Ok(ProviderValue(None)),
            "cloudscale" => Ok(ProviderValue(Some(ProviderKind::Cloudscale))),
            "exoscale" => Ok(ProviderValue(Some(ProviderKind::Exoscale))),
            "hetzner" => Ok(ProviderValue(Some(ProviderKind::Hetzner))),
            "digitalocean" => Ok(ProviderValue(Some(ProviderKind::DigitalOcean))),
            "aws" => Ok(ProviderValue(Some(ProviderKind::Aws))),
            other => {
                let hint = match other.trim().to_ascii_lowercase().as_str() {
                    "cloudscale" => "; did you mean `cloudscale`?",
                    "exoscale" => "; did you mean `exoscale`?",
                    "hetzner" | "hcloud" | "hetzner-cloud" => "; did you mean `hetzner`?",
                    "digitalocean" | "digital-ocean" | "do" => "; did you mean `digitalocean`?",
                    "aws" | "ec2" | "amazon" => "; did you mean `aws`?",
                    _ => "",
                };
                Err(format!(
                    "{other:?} is not a supported provider (write {PROVIDERS}{hint})"
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_never_shown() {
        assert_eq!(without_userinfo("http://a:b@c@d/x@y"), "http://***@d/x@y");
        assert_eq!(without_userinfo("http://d/x@y"), "http://d/x@y");
    }
}
