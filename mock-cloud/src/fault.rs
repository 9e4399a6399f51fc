//! Injected misbehaviour, shared by every mock.
//!
//! Faults sit in front of the API, like a load balancer or a maintenance
//! page would: they apply before authentication and routing.

use std::time::Duration;

use crate::http::{Reply, Response};

/// How the next request(s) should go wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Behave normally.
    None,
    /// Answer with this status and this body (sent as JSON if it parses as
    /// JSON, as text otherwise).
    Status(u16, String),
    /// 429 with `Retry-After: N` (seconds).
    TooMany { retry_after_secs: u64 },
    /// 503 with this exact `Retry-After` value (seconds or an HTTP-date).
    Unavailable { retry_after: String },
    /// 503 with a maintenance `detail` and no `Retry-After`.
    Maintenance503,
    /// Handle the request normally (state changes happen at once) but
    /// answer only after this long: a client that times out may have moved
    /// the address anyway, as in real life.
    Slow(Duration),
    /// Read the request and never answer.
    Hang,
    /// Read the request and close the connection without answering.
    Reset,
    /// `200 OK`, `Content-Type: application/json`, a body that is not JSON.
    Garbage,
}

/// A fault, how many more requests it applies to (`None`: until replaced),
/// and optionally only which method it applies to.
#[derive(Debug, Clone)]
pub(crate) struct FaultRule {
    fault: Fault,
    remaining: Option<usize>,
    method: Option<String>,
}

impl FaultRule {
    pub fn new(fault: Fault, times: Option<usize>, method: Option<&str>) -> Option<FaultRule> {
        if fault == Fault::None || times == Some(0) {
            return None;
        }
        Some(FaultRule {
            fault,
            remaining: times,
            method: method.map(|m| m.to_ascii_uppercase()),
        })
    }
}

/// Consumes one application of the rule in `slot` if it matches `method`.
pub(crate) fn take(slot: &mut Option<FaultRule>, method: &str) -> Option<Fault> {
    let rule = slot.as_mut()?;
    if rule.method.as_deref().is_some_and(|m| m != method) {
        return None;
    }
    let fault = rule.fault.clone();
    if let Some(n) = rule.remaining.as_mut() {
        *n = n.saturating_sub(1);
        if *n == 0 {
            *slot = None;
        }
    }
    Some(fault)
}

/// The reply a fault produces, or `Err(delay)` when the request should be
/// handled normally (after `delay`, if any).
pub(crate) fn reply(fault: &Fault) -> Result<Reply, Option<Duration>> {
    let response = match fault {
        Fault::None => return Err(None),
        Fault::Slow(d) => return Err(Some(*d)),
        Fault::Hang => return Ok(Reply::Hang),
        Fault::Reset => return Ok(Reply::Close),
        Fault::Status(status, body) => {
            let content_type = if serde_json::from_str::<serde_json::Value>(body).is_ok() {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            Response {
                status: *status,
                headers: vec![("Content-Type".into(), content_type.into())],
                body: body.clone().into_bytes(),
            }
        }
        Fault::TooMany { retry_after_secs } => Response::detail(
            429,
            &format!("Request was throttled. Expected available in {retry_after_secs} seconds."),
        )
        .with_header("Retry-After", &retry_after_secs.to_string()),
        Fault::Unavailable { retry_after } => {
            Response::detail(503, "Service temporarily unavailable.")
                .with_header("Retry-After", retry_after)
        }
        Fault::Maintenance503 => Response::detail(
            503,
            "The API is currently unavailable due to maintenance. Please try again later.",
        ),
        Fault::Garbage => Response {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: b"<html><body>502 Bad Gateway</body></html>{\"server\":".to_vec(),
        },
    };
    Ok(Reply::now(response))
}

/// The reply to a request `fault` (from [`take`]) applies to: the fault's
/// own, or `handle`'s, delayed as the fault says. `handle` runs only when
/// the fault lets the request through to the API, so a faulted request
/// changes no state.
pub(crate) fn apply(fault: Option<Fault>, handle: impl FnOnce() -> Reply) -> Reply {
    let Some(fault) = fault else {
        return handle();
    };
    match reply(&fault) {
        Ok(reply) => reply,
        Err(delay) => match handle() {
            Reply::Respond { response, .. } => Reply::Respond { response, delay },
            other => other,
        },
    }
}

/// Parses the control endpoint's fault description, e.g.
/// `{"fault": "status", "status": 500, "body": "{}", "times": 2, "method": "PATCH"}`.
/// Kinds: `none`, `status`, `too_many` (`retry_after_secs`), `unavailable`
/// (`retry_after`), `maintenance`, `slow` (`ms`), `hang`, `reset`, `garbage`.
pub(crate) fn rule_from_json(v: &serde_json::Value) -> Result<Option<FaultRule>, String> {
    let kind = v
        .get("fault")
        .and_then(|k| k.as_str())
        .ok_or("missing \"fault\"")?;
    let num = |name: &str| {
        v.get(name)
            .and_then(|n| n.as_u64())
            .ok_or(format!("\"{kind}\" needs a number \"{name}\""))
    };
    let fault = match kind {
        "none" => Fault::None,
        "status" => {
            let status = u16::try_from(num("status")?).map_err(|e| e.to_string())?;
            let body = match v.get("body") {
                None => String::new(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            Fault::Status(status, body)
        }
        "too_many" => Fault::TooMany {
            retry_after_secs: num("retry_after_secs")?,
        },
        "unavailable" => Fault::Unavailable {
            retry_after: v
                .get("retry_after")
                .and_then(|r| r.as_str())
                .unwrap_or("1")
                .to_string(),
        },
        "maintenance" => Fault::Maintenance503,
        "slow" => Fault::Slow(Duration::from_millis(num("ms")?)),
        "hang" => Fault::Hang,
        "reset" => Fault::Reset,
        "garbage" => Fault::Garbage,
        other => return Err(format!("unknown fault \"{other}\"")),
    };
    let times = match v.get("times") {
        None | Some(serde_json::Value::Null) => None,
        Some(t) => Some(t.as_u64().ok_or("\"times\" must be a number")? as usize),
    };
    let method = v.get("method").and_then(|m| m.as_str());
    Ok(FaultRule::new(fault, times, method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_and_method_scoped() {
        let mut slot = FaultRule::new(Fault::Hang, Some(2), Some("patch"));
        assert_eq!(take(&mut slot, "GET"), None);
        assert_eq!(take(&mut slot, "PATCH"), Some(Fault::Hang));
        assert_eq!(take(&mut slot, "PATCH"), Some(Fault::Hang));
        assert_eq!(take(&mut slot, "PATCH"), None);
        assert!(slot.is_none());
        assert!(FaultRule::new(Fault::None, None, None).is_none());
        let mut forever = FaultRule::new(Fault::Reset, None, None);
        for _ in 0..5 {
            assert_eq!(take(&mut forever, "GET"), Some(Fault::Reset));
        }
    }
}
