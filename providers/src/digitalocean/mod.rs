//! DigitalOcean Reserved IPs (formerly Floating IPs).
//!
//! The API names a Reserved IP by its address, so there is nothing to
//! resolve: one GET per refresh, or one listing for all of an instance's
//! addresses (`read_share.rs`). A move is an action, polled until it leaves
//! `in-progress`; only `errored` is a failure (a 2021 report saw `done`
//! where `completed` was documented). `locked: true` on a read means an
//! action is pending: transient. DigitalOcean answers 422 to an assign even
//! when the address is already on that droplet (its own controller,
//! flipop, says so), so a 422 is answered by reading again. The token's
//! 5,000 requests an hour are guarded like Hetzner's (`rate_budget.rs`).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::http::{self, decode, with_slash};
use crate::rate_budget::{RateBudget, Refill};
use crate::read_share::{Owner, ReadShare};
use crate::{
    ask, BoxFuture, Cause, Check, Mode, Outcome, Provider, ProviderError, Secret, WriteGate,
};

mod api;
mod metadata;
#[cfg(test)]
mod tests;

pub const DEFAULT_ENDPOINT: &str = "https://api.digitalocean.com/v2";

/// Actions take a few seconds; polled like Hetzner's.
const POLL: Duration = Duration::from_millis(500);
/// The API's largest page.
const PER_PAGE: u32 = 200;
const MAX_PAGES: u64 = 100;
/// A pending action clears in a few seconds (DigitalOcean's own guidance
/// is a short wait, flipop retries on its next pass).
const LOCKED_RETRY: Duration = Duration::from_secs(2);

/// `PartialEq` so a reload can tell a changed setting (a rotated token
/// included) without comparing text.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// API base URL (`https://api.digitalocean.com/v2`); a trailing `/` is added.
    pub endpoint: String,
    /// A token with `reserved_ip:read`, `reserved_ip:update` and
    /// `droplet:read` (or full access).
    pub token: Secret,
    pub droplet: DropletSource,
    /// How long one refresh may take (`refresh-timeout`).
    pub timeout: Duration,
    /// CA certificates trusted on top of the built-in roots (`ca-file`).
    pub ca: Option<crate::CaBundle>,
}

impl Settings {
    pub fn new(token: Secret, droplet: DropletSource) -> Settings {
        Settings {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            token,
            droplet,
            timeout: Duration::from_secs(15),
            ca: None,
        }
    }
}

/// Where "this droplet" comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropletSource {
    Id(u64),
    /// Ask the metadata service once, at start-up.
    Metadata {
        base_url: String,
    },
}

/// Why a call failed, where the caller decides more than the status does.
enum CallError {
    /// 422 on an assign: already there, pending, or truly refused; a read
    /// tells which.
    Unprocessable(ProviderError),
    Other(ProviderError),
}

impl From<ProviderError> for CallError {
    fn from(e: ProviderError) -> CallError {
        CallError::Other(e)
    }
}

impl CallError {
    fn into_error(self) -> ProviderError {
        match self {
            CallError::Unprocessable(e) | CallError::Other(e) => e,
        }
    }
}

/// The resource an address lives under: IPv6 Reserved IPs are their own.
fn collection(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "reserved_ips",
        IpAddr::V6(_) => "reserved_ipv6",
    }
}

pub struct DigitalOcean {
    client: reqwest::Client,
    /// Always ends with `/`.
    endpoint: String,
    auth: HeaderValue,
    token: Secret,
    droplet: u64,
    timeout: Duration,
    budget: RateBudget,
    share: ReadShare,
}

impl fmt::Debug for DigitalOcean {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigitalOcean")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token)
            .field("droplet", &self.droplet)
            .finish_non_exhaustive()
    }
}

impl DigitalOcean {
    /// Builds the client and, for [`DropletSource::Metadata`], learns the
    /// droplet id (retrying for about 10 s, then failing with `Setup`).
    pub async fn new(settings: Settings) -> Result<DigitalOcean, ProviderError> {
        DigitalOcean::with_metadata_budget(settings, metadata::BUDGET).await
    }

    pub(crate) async fn with_metadata_budget(
        settings: Settings,
        budget: Duration,
    ) -> Result<DigitalOcean, ProviderError> {
        let endpoint = with_slash(&settings.endpoint);
        http::check_url("digitalocean", "endpoint", &endpoint)?;
        let token = Secret::new(settings.token.expose().trim());
        let auth = http::bearer("digitalocean", &token)?;
        let ca = settings.ca.as_ref();
        let client = http::client(ca)?;
        let droplet = match &settings.droplet {
            DropletSource::Id(id) => *id,
            DropletSource::Metadata { base_url } => {
                let direct = http::metadata_client(ca)?;
                let id = metadata::droplet_id(&direct, base_url, budget).await?;
                tracing::info!(droplet = id, "digitalocean: droplet id from metadata");
                id
            }
        };
        Ok(DigitalOcean {
            client,
            endpoint,
            auth,
            token,
            droplet,
            timeout: settings.timeout,
            budget: RateBudget::new(Refill::Window),
            share: ReadShare::default(),
        })
    }

    /// The droplet this provider points addresses at.
    pub fn droplet(&self) -> u64 {
        self.droplet
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, CallError> {
        let operation = format!("{method} {path}");
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.endpoint))
            .header(AUTHORIZATION, self.auth.clone());
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let redact = |e| self.token.redact_error(e);
        let answer = http::exchange(&operation, request, |h| self.budget.learn(h))
            .await
            .map_err(|e| CallError::Other(redact(e)))?;
        if answer.is_success() {
            return Ok(answer.body);
        }
        Err(
            match self.error(&operation, answer.status, answer.retry_after, &answer.body) {
                CallError::Unprocessable(e) => CallError::Unprocessable(redact(e)),
                CallError::Other(e) => CallError::Other(redact(e)),
            },
        )
    }

    /// DigitalOcean's errors, with what to do about each.
    fn error(
        &self,
        operation: &str,
        status: u16,
        retry_after: Option<Duration>,
        body: &[u8],
    ) -> CallError {
        let detail = serde_json::from_slice::<api::ErrorBody>(body)
            .ok()
            .filter(|b| !b.id.is_empty() || !b.message.is_empty());
        let message = detail
            .as_ref()
            .map(|d| http::one_line(&format!("{}: {}", d.id, d.message), 200))
            .unwrap_or_default();
        let rejected = |hint: &str| ProviderError::Rejected {
            operation: operation.to_string(),
            status,
            message: format!("{message}{hint}"),
        };
        match status {
            422 => CallError::Unprocessable(rejected("")),
            429 => CallError::Other(ProviderError::Transient {
                operation: operation.to_string(),
                message: format!("HTTP 429: {message} (the token's request budget is spent)"),
                retry_after: Some(retry_after.unwrap_or_else(|| self.budget.after_429())),
                cause: Cause::RateLimited,
            }),
            401 => CallError::Other(rejected(
                " (check digitalocean.token: a personal access token of the droplets' team)",
            )),
            403 => CallError::Other(rejected(
                " (the token may not do this: it needs the scopes reserved_ip:read, \
                 reserved_ip:update and droplet:read, or full access; a read-only token cannot \
                 move addresses)",
            )),
            _ => CallError::Other(http::error_from(operation, status, retry_after, body)),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ProviderError> {
        let body = self
            .call(reqwest::Method::GET, path, None)
            .await
            .map_err(CallError::into_error)?;
        decode(&format!("GET {path}"), &body)
    }

    /// Every Reserved IP of the families asked about, page by page; and
    /// how many calls that took.
    async fn list_all(
        &self,
        v4: bool,
        v6: bool,
    ) -> Result<(Vec<api::ReservedIp>, u64), ProviderError> {
        let mut all = Vec::new();
        let mut calls = 0;
        for (wanted, name) in [(v4, "reserved_ips"), (v6, "reserved_ipv6")] {
            if !wanted {
                continue;
            }
            let mut page = 1;
            loop {
                calls += 1;
                if calls > MAX_PAGES {
                    return Err(ProviderError::Transient {
                        operation: format!("GET {name}"),
                        message: format!("more than {MAX_PAGES} pages; giving up"),
                        retry_after: None,
                        cause: Cause::Protocol,
                    });
                }
                let answer: api::Page = self
                    .get(&format!("{name}?page={page}&per_page={PER_PAGE}"))
                    .await?;
                all.extend(answer.reserved_ips);
                if answer.links.and_then(|l| l.pages?.next).is_none() {
                    break;
                }
                page += 1;
            }
        }
        Ok((all, calls))
    }

    /// A read of `ip`: where it points, and whether an action is pending.
    fn note(&self, ip: IpAddr, reserved: &api::ReservedIp) -> Owner {
        let owner = reserved.droplet.as_ref().map(|d| d.id);
        if !reserved.locked {
            self.share.note(ip, owner);
        }
        owner
    }

    /// Where `ip` points now (`Err` Locked while an action on it is
    /// pending and it is not here): a fresh shared answer, a listing of
    /// every asked address, or one GET.
    async fn owner(&self, ip: IpAddr) -> Result<Owner, ProviderError> {
        if let Some(owner) = self.share.fresh(ip) {
            return Ok(owner);
        }
        let _flight = self.share.flight().await;
        if let Some(owner) = self.share.fresh(ip) {
            return Ok(owner);
        }
        let path = format!("{}/{ip}", collection(ip));
        self.budget
            .admit_read()
            .map_err(|(wait, why)| ProviderError::Deferred {
                operation: format!("GET {path}"),
                why,
                wait,
            })?;
        if self.share.listing_pays() {
            let asked = self.share.asked();
            let (list, calls) = self
                .list_all(
                    asked.iter().any(IpAddr::is_ipv4),
                    asked.iter().any(IpAddr::is_ipv6),
                )
                .await?;
            let owners: Vec<(IpAddr, Owner)> = list
                .iter()
                .filter(|r| !r.locked)
                .filter_map(|r| Some((r.ip.parse().ok()?, r.droplet.as_ref().map(|d| d.id))))
                .collect();
            self.share.note_listing(calls, owners);
            if let Some(owner) = self.share.fresh(ip) {
                return Ok(owner);
            }
        }
        let answer: api::One = self.get(&path).await?;
        let owner = self.note(ip, &answer.reserved_ip);
        if answer.reserved_ip.locked && owner != Some(self.droplet) {
            return Err(locked(&path));
        }
        Ok(owner)
    }

    /// Starts the assign of `ip` to this droplet, if `gate` lets it go.
    async fn start(&self, ip: IpAddr, gate: &dyn WriteGate) -> Result<api::Action, CallError> {
        let path = format!("{}/{ip}/actions", collection(ip));
        let operation = format!("POST {path}");
        let body = serde_json::to_vec(&api::Assign {
            kind: "assign",
            droplet_id: self.droplet,
        })
        .map_err(|e| ProviderError::Setup(format!("{operation}: cannot encode the body: {e}")))?;
        // Last moment before the write leaves.
        ask(gate, || operation.clone())?;
        let answer = self.call(reqwest::Method::POST, &path, Some(body)).await?;
        let answer: api::ActionAnswer = decode(&operation, &answer)?;
        Ok(answer.action)
    }

    /// Polls `action` until it leaves `in-progress`; `errored` is a failed
    /// write (retried by the caller's back-off), one still pending at
    /// `deadline` too.
    async fn finish(
        &self,
        ip: IpAddr,
        mut action: api::Action,
        deadline: Instant,
    ) -> Result<(), ProviderError> {
        let started = Instant::now();
        let path = format!("{}/{ip}/actions/{}", collection(ip), action.id);
        loop {
            match action.status.as_str() {
                "in-progress" | "" => {}
                "errored" => {
                    return Err(ProviderError::Transient {
                        operation: format!("action {} ({})", action.id, action.kind),
                        message: "ended in errored".into(),
                        retry_after: None,
                        cause: Cause::Protocol,
                    })
                }
                _ => return Ok(()),
            }
            if Instant::now() + POLL >= deadline {
                return Err(ProviderError::Transient {
                    operation: format!("action {} ({})", action.id, action.kind),
                    message: format!(
                        "still in progress after {:.1} s",
                        started.elapsed().as_secs_f64()
                    ),
                    retry_after: None,
                    cause: Cause::Timeout,
                });
            }
            tokio::time::sleep(POLL).await;
            let answer: api::ActionAnswer = self.get(&path).await?;
            action = answer.action;
        }
    }

    async fn point_here(
        &self,
        ip: IpAddr,
        gate: &dyn WriteGate,
        previous: Option<String>,
    ) -> Result<Outcome, ProviderError> {
        let deadline = Instant::now() + self.timeout.saturating_sub(Duration::from_millis(500));
        match self.start(ip, gate).await {
            Ok(action) => self.finish(ip, action, deadline).await?,
            Err(CallError::Other(e)) => return Err(e),
            Err(CallError::Unprocessable(e)) => {
                // Already here, pending, or refused: the read says which.
                let path = format!("{}/{ip}", collection(ip));
                let answer: api::One = self.get(&path).await?;
                let owner = self.note(ip, &answer.reserved_ip);
                if owner == Some(self.droplet) {
                    return Ok(Outcome::AlreadyHere);
                }
                if answer.reserved_ip.locked {
                    return Err(locked(&path));
                }
                return Err(e);
            }
        }
        self.share.note(ip, Some(self.droplet));
        Ok(Outcome::Moved { previous })
    }

    async fn do_refresh(
        &self,
        ip: IpAddr,
        mode: Mode,
        gate: &dyn WriteGate,
    ) -> Result<Outcome, ProviderError> {
        // Known from the first round on, so the first steady-state beat
        // already reads them all with one listing.
        self.share.ask(ip);
        let previous = match mode {
            // A blind assign: a 422 for "already there" is read away.
            Mode::Write => None,
            Mode::Verify => match self.owner(ip).await? {
                Some(d) if d == self.droplet => return Ok(Outcome::AlreadyHere),
                Some(d) => Some(format!("droplet {d}")),
                None => Some("nowhere".to_string()),
            },
        };
        self.point_here(ip, gate, previous).await
    }

    async fn do_self_test(&self) -> Vec<Check> {
        let droplet_path = format!("droplets/{}", self.droplet);
        let droplet = Check {
            what: format!("digitalocean GET {droplet_path}"),
            result: match self.get::<api::DropletAnswer>(&droplet_path).await {
                Ok(d) => Ok(format!(
                    "droplet {:?}, status {}",
                    d.droplet.name.unwrap_or_default(),
                    d.droplet.status.as_deref().unwrap_or("unknown")
                )),
                Err(e) => Err(e.to_string()),
            },
        };
        let ips = Check {
            what: "digitalocean GET reserved_ips".to_string(),
            result: match self.list_all(true, true).await {
                Ok((list, _)) => {
                    let here: Vec<&str> = list
                        .iter()
                        .filter(|r| r.droplet.as_ref().is_some_and(|d| d.id == self.droplet))
                        .map(|r| r.ip.as_str())
                        .collect();
                    Ok(if here.is_empty() {
                        format!("{} Reserved IPs visible, none pointing here", list.len())
                    } else {
                        format!(
                            "{} Reserved IPs visible, {} pointing here: {}",
                            list.len(),
                            here.len(),
                            here.join(", ")
                        )
                    })
                }
                Err(e) => Err(e.to_string()),
            },
        };
        vec![droplet, ips]
    }
}

fn locked(path: &str) -> ProviderError {
    ProviderError::Transient {
        operation: format!("GET {path}"),
        message: "locked: an action on this Reserved IP is pending".into(),
        retry_after: Some(LOCKED_RETRY),
        cause: Cause::Locked,
    }
}

impl Provider for DigitalOcean {
    fn name(&self) -> &'static str {
        "digitalocean"
    }

    fn target(&self) -> String {
        self.droplet.to_string()
    }

    fn refresh<'a>(
        &'a self,
        ip: IpAddr,
        mode: Mode,
        gate: &'a dyn WriteGate,
    ) -> BoxFuture<'a, Result<Outcome, ProviderError>> {
        Box::pin(self.do_refresh(ip, mode, gate))
    }

    fn self_test(&self) -> BoxFuture<'_, Vec<Check>> {
        Box::pin(self.do_self_test())
    }

    fn reads_together(&self) -> bool {
        true
    }
}
