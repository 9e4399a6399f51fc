//! Hetzner Cloud Floating IPs.
//!
//! The API names a Floating IP by its integer id, not by its address, so
//! each address is resolved once (a paginated listing; an IPv6 Floating IP
//! is a /64 network, matched by containment) and then read with one GET per
//! refresh, or one listing for all of an instance's addresses
//! (`read_share.rs`). A move is an asynchronous action: the 201 says only
//! that it was queued, so it is polled until `success` or `error`, the way
//! hcloud-go waits (constant 500 ms). An action in flight makes the API
//! answer 423 `locked` (or 409 `conflict`): transient, nothing wrong with
//! this node. The project's 3,600 requests an hour are shared with every
//! other tool, so reads slow down when `RateLimit-Remaining` runs low
//! (`rate_budget.rs`).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
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

pub const DEFAULT_ENDPOINT: &str = "https://api.hetzner.cloud/v1";

/// hcloud-go's constant poll interval for actions.
const POLL: Duration = Duration::from_millis(500);
/// The API's largest page.
const PER_PAGE: u32 = 50;
/// A listing longer than this is not a project's Floating IPs but a loop.
const MAX_PAGES: u64 = 200;
/// An address missing from the listing is looked for again only this
/// often: every refresh of a typo must not list the whole project.
const RELIST: Duration = Duration::from_secs(60);
/// A 423/409 clears when the action in flight ends: about a second.
const LOCKED_RETRY: Duration = Duration::from_secs(1);

/// `PartialEq` so a reload can tell a changed setting (a rotated token
/// included) without comparing text.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// API base URL (`https://api.hetzner.cloud/v1`); a trailing `/` is added.
    pub endpoint: String,
    /// A Read & Write API token of the server's project.
    pub token: Secret,
    pub server: ServerSource,
    /// How long one refresh may take (`refresh-timeout`): an action still
    /// running then is reported, not waited for.
    pub timeout: Duration,
    /// CA certificates trusted on top of the built-in roots (`ca-file`).
    pub ca: Option<crate::CaBundle>,
}

impl Settings {
    pub fn new(token: Secret, server: ServerSource) -> Settings {
        Settings {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            token,
            server,
            timeout: Duration::from_secs(15),
            ca: None,
        }
    }
}

/// Where "this server" comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSource {
    Id(u64),
    /// Ask the metadata service once, at start-up.
    Metadata {
        base_url: String,
    },
}

/// A Floating IP's address: one IPv4 address, or an IPv6 /64 whose every
/// address can be used on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Net {
    V4(IpAddr),
    V6 { network: Ipv6Addr, prefix: u8 },
}

impl Net {
    fn parse(text: &str) -> Option<Net> {
        match text.split_once('/') {
            None => text.parse().ok().map(Net::V4),
            Some((addr, prefix)) => {
                let prefix: u8 = prefix.parse().ok()?;
                match addr.parse::<IpAddr>().ok()? {
                    IpAddr::V6(network) if prefix <= 128 => Some(Net::V6 { network, prefix }),
                    v4 @ IpAddr::V4(_) if prefix == 32 => Some(Net::V4(v4)),
                    _ => None,
                }
            }
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Net::V4(a), ip) => *a == ip,
            (Net::V6 { network, prefix }, IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*prefix)).unwrap_or(0);
                u128::from(*network) & mask == u128::from(ip) & mask
            }
            (Net::V6 { .. }, IpAddr::V4(_)) => false,
        }
    }
}

/// Floating IP ids by address, from the last listing.
#[derive(Debug)]
struct Index {
    entries: Vec<(Net, u64)>,
    listed: Instant,
}

impl Index {
    fn id_of(&self, ip: IpAddr) -> Option<u64> {
        self.entries
            .iter()
            .find(|(net, _)| net.contains(ip))
            .map(|(_, id)| *id)
    }
}

/// Why a call failed, where the caller decides more than the status does.
enum CallError {
    /// 422 `floating_ip_assigned`: read again and decide.
    AlreadyAssigned,
    Other(ProviderError),
}

impl From<ProviderError> for CallError {
    fn from(e: ProviderError) -> CallError {
        CallError::Other(e)
    }
}

pub struct Hetzner {
    client: reqwest::Client,
    /// Always ends with `/`.
    endpoint: String,
    /// Marked sensitive, so reqwest's own Debug output hides it too.
    auth: HeaderValue,
    token: Secret,
    server: u64,
    timeout: Duration,
    budget: RateBudget,
    share: ReadShare,
    index: Mutex<Option<Index>>,
}

impl fmt::Debug for Hetzner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hetzner")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Hetzner {
    /// Builds the client and, for [`ServerSource::Metadata`], learns the
    /// server id (retrying for about 10 s, then failing with `Setup`).
    pub async fn new(settings: Settings) -> Result<Hetzner, ProviderError> {
        Hetzner::with_metadata_budget(settings, metadata::BUDGET).await
    }

    pub(crate) async fn with_metadata_budget(
        settings: Settings,
        budget: Duration,
    ) -> Result<Hetzner, ProviderError> {
        let endpoint = with_slash(&settings.endpoint);
        http::check_url("hetzner", "endpoint", &endpoint)?;
        let token = Secret::new(settings.token.expose().trim());
        let auth = http::bearer("hetzner", &token)?;
        let ca = settings.ca.as_ref();
        let client = http::client(ca)?;
        let server = match &settings.server {
            ServerSource::Id(id) => *id,
            ServerSource::Metadata { base_url } => {
                let direct = http::metadata_client(ca)?;
                let id = metadata::server_id(&direct, base_url, budget).await?;
                tracing::info!(server = id, "hetzner: server id from metadata");
                id
            }
        };
        Ok(Hetzner {
            client,
            endpoint,
            auth,
            token,
            server,
            timeout: settings.timeout,
            budget: RateBudget::new(Refill::Steady),
            share: ReadShare::default(),
            index: Mutex::new(None),
        })
    }

    /// The server this provider points addresses at.
    pub fn server(&self) -> u64 {
        self.server
    }

    /// Sends one request; a non-2xx answer becomes a [`CallError`]. Every
    /// answer's budget headers are learnt, errors included.
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
        let redact = |e| CallError::Other(self.token.redact_error(e));
        let answer = http::exchange(&operation, request, |h| self.budget.learn(h))
            .await
            .map_err(redact)?;
        if answer.is_success() {
            return Ok(answer.body);
        }
        match self.error(&operation, answer.status, answer.retry_after, &answer.body) {
            CallError::Other(e) => Err(redact(e)),
            special => Err(special),
        }
    }

    /// Hetzner's error codes decide more than the status: `locked` and
    /// `conflict` are an action in flight, `token_readonly` the wrong kind
    /// of token.
    fn error(
        &self,
        operation: &str,
        status: u16,
        retry_after: Option<Duration>,
        body: &[u8],
    ) -> CallError {
        let detail = serde_json::from_slice::<api::ErrorBody>(body)
            .ok()
            .map(|b| b.error);
        let code = detail.as_ref().map_or("", |d| d.code.as_str());
        let message = detail
            .as_ref()
            .map(|d| http::one_line(&format!("{}: {}", d.code, d.message), 200));
        let transient = |cause, retry_after, what: &str| {
            CallError::Other(ProviderError::Transient {
                operation: operation.to_string(),
                message: format!(
                    "HTTP {status}: {}{what}",
                    message.clone().unwrap_or_default()
                ),
                retry_after,
                cause,
            })
        };
        let rejected = |hint: &str| {
            CallError::Other(ProviderError::Rejected {
                operation: operation.to_string(),
                status,
                message: format!("{}{hint}", message.clone().unwrap_or_default()),
            })
        };
        match (status, code) {
            (422, "floating_ip_assigned") => CallError::AlreadyAssigned,
            (423, _) | (409, _) | (_, "locked" | "conflict") => transient(
                Cause::Locked,
                Some(LOCKED_RETRY),
                " (an action on this Floating IP is still running)",
            ),
            (429, _) => transient(
                Cause::RateLimited,
                Some(retry_after.unwrap_or_else(|| self.budget.after_429())),
                " (the project's request budget is spent)",
            ),
            (401, _) => rejected(
                " (check hetzner.token: an API token of this server's project, with Read & Write)",
            ),
            (403, "token_readonly") => rejected(
                " (the API token is read-only: create one with Read & Write in the project's \
                 Security > API tokens)",
            ),
            _ if detail.is_some() && !(500..600).contains(&status) => rejected(""),
            _ => CallError::Other(http::error_from(operation, status, retry_after, body)),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ProviderError> {
        match self.call(reqwest::Method::GET, path, None).await {
            Ok(body) => decode(&format!("GET {path}"), &body),
            Err(CallError::Other(e)) => Err(e),
            Err(CallError::AlreadyAssigned) => Err(ProviderError::Transient {
                operation: format!("GET {path}"),
                message: "unexpected floating_ip_assigned on a read".into(),
                retry_after: None,
                cause: Cause::Protocol,
            }),
        }
    }

    /// Every Floating IP of the project, page by page; and how many calls
    /// that took.
    async fn list_all(&self) -> Result<(Vec<api::FloatingIp>, u64), ProviderError> {
        let mut all = Vec::new();
        let mut page = 1;
        for calls in 1..=MAX_PAGES {
            let answer: api::Page = self
                .get(&format!("floating_ips?page={page}&per_page={PER_PAGE}"))
                .await?;
            all.extend(answer.floating_ips);
            match answer.meta.and_then(|m| m.pagination?.next_page) {
                Some(next) if next > page => page = next,
                _ => return Ok((all, calls)),
            }
        }
        Err(ProviderError::Transient {
            operation: "GET floating_ips".into(),
            message: format!("more than {MAX_PAGES} pages; giving up"),
            retry_after: None,
            cause: Cause::Protocol,
        })
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Option<Index>> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a listing in: the ids of every address, and where each asked
    /// address points.
    fn take_listing(&self, list: &[api::FloatingIp], calls: u64) {
        let entries: Vec<(Net, u64)> = list
            .iter()
            .filter_map(|f| Some((Net::parse(&f.ip)?, f.id)))
            .collect();
        let owners: Vec<(IpAddr, Owner)> = self
            .share
            .asked()
            .into_iter()
            .filter_map(|ip| {
                let (_, id) = entries.iter().find(|(net, _)| net.contains(ip))?;
                let fip = list.iter().find(|f| f.id == *id)?;
                Some((ip, fip.server))
            })
            .collect();
        self.share.note_listing(calls, owners);
        *self.index() = Some(Index {
            entries,
            listed: Instant::now(),
        });
    }

    /// The Floating IP id of `ip`: from the index, else from a new
    /// listing (at most every [`RELIST`] for an address not found).
    async fn id_of(&self, ip: IpAddr) -> Result<u64, ProviderError> {
        self.share.ask(ip);
        if let Some(id) = self.index().as_ref().and_then(|i| i.id_of(ip)) {
            return Ok(id);
        }
        let _flight = self.share.flight().await;
        let recent = {
            let index = self.index();
            if let Some(id) = index.as_ref().and_then(|i| i.id_of(ip)) {
                return Ok(id);
            }
            index.as_ref().is_some_and(|i| i.listed.elapsed() < RELIST)
        };
        if !recent {
            let (list, calls) = self.list_all().await?;
            self.take_listing(&list, calls);
            if let Some(id) = self.index().as_ref().and_then(|i| i.id_of(ip)) {
                return Ok(id);
            }
        }
        Err(ProviderError::NotFound {
            operation: "GET floating_ips".into(),
            message: format!(
                "no Floating IP {ip} in this token's project (is the address in another \
                 project, or a typo in keepalived.conf?)"
            ),
        })
    }

    /// Where `ip` points now: a fresh shared answer, a listing of every
    /// asked address, or one GET.
    async fn owner(&self, ip: IpAddr, id: u64) -> Result<Owner, ProviderError> {
        if let Some(owner) = self.share.fresh(ip) {
            return Ok(owner);
        }
        let _flight = self.share.flight().await;
        if let Some(owner) = self.share.fresh(ip) {
            return Ok(owner);
        }
        let path = format!("floating_ips/{id}");
        self.budget
            .admit_read()
            .map_err(|(wait, why)| ProviderError::Deferred {
                operation: format!("GET {path}"),
                why,
                wait,
            })?;
        if self.share.listing_pays() {
            let (list, calls) = self.list_all().await?;
            self.take_listing(&list, calls);
            if let Some(owner) = self.share.fresh(ip) {
                return Ok(owner);
            }
        }
        let answer: api::One = self.get(&path).await.inspect_err(|e| {
            if matches!(e, ProviderError::Rejected { status: 404, .. }) {
                // Deleted and maybe recreated: look it up again.
                *self.index() = None;
            }
        })?;
        self.share.note(ip, answer.floating_ip.server);
        Ok(answer.floating_ip.server)
    }

    /// Starts `assign` (to this server) or `unassign` of Floating IP `id`,
    /// if `gate` still lets the write go.
    async fn start(
        &self,
        id: u64,
        verb: &str,
        gate: &dyn WriteGate,
    ) -> Result<api::Action, CallError> {
        let path = format!("floating_ips/{id}/actions/{verb}");
        let operation = format!("POST {path}");
        let body = match verb {
            "assign" => serde_json::to_vec(&api::Assign {
                server: self.server,
            }),
            _ => Ok(b"{}".to_vec()),
        }
        .map_err(|e| ProviderError::Setup(format!("{operation}: cannot encode the body: {e}")))?;
        // Last moment before the write leaves.
        ask(gate, || operation.clone())?;
        let answer = self.call(reqwest::Method::POST, &path, Some(body)).await?;
        let answer: api::ActionAnswer = decode(&operation, &answer)?;
        Ok(answer.action)
    }

    /// Polls `action` until it ends; an `error` is a failed write (retried
    /// by the caller's back-off), one still running at `deadline` too.
    async fn finish(
        &self,
        mut action: api::Action,
        deadline: Instant,
    ) -> Result<(), ProviderError> {
        let started = Instant::now();
        loop {
            match action.status.as_str() {
                "success" => return Ok(()),
                "running" => {}
                status => {
                    let why = action
                        .error
                        .as_ref()
                        .map(|e| format!(": {}: {}", e.code, e.message))
                        .unwrap_or_default();
                    return Err(ProviderError::Transient {
                        operation: format!("action {} ({})", action.id, action.command),
                        message: http::one_line(&format!("ended in {status}{why}"), 300),
                        retry_after: None,
                        cause: Cause::Protocol,
                    });
                }
            }
            if Instant::now() + POLL >= deadline {
                return Err(ProviderError::Transient {
                    operation: format!("action {} ({})", action.id, action.command),
                    message: format!(
                        "still running after {:.1} s",
                        started.elapsed().as_secs_f64()
                    ),
                    retry_after: None,
                    cause: Cause::Timeout,
                });
            }
            tokio::time::sleep(POLL).await;
            let answer: api::ActionAnswer = self.get(&format!("actions/{}", action.id)).await?;
            action = answer.action;
        }
    }

    /// Points Floating IP `id` (holding `ip`) here. A 422
    /// `floating_ip_assigned` is answered by reading: here already is
    /// success; elsewhere means this API wants it unassigned first (the
    /// docs leave open which it does), so unassign, then assign.
    async fn point_here(
        &self,
        ip: IpAddr,
        id: u64,
        gate: &dyn WriteGate,
        previous: Option<String>,
    ) -> Result<Outcome, ProviderError> {
        let deadline = Instant::now() + self.timeout.saturating_sub(Duration::from_millis(500));
        match self.start(id, "assign", gate).await {
            Ok(action) => self.finish(action, deadline).await?,
            Err(CallError::Other(e)) => return Err(e),
            Err(CallError::AlreadyAssigned) => {
                let answer: api::One = self.get(&format!("floating_ips/{id}")).await?;
                let owner = answer.floating_ip.server;
                self.share.note(ip, owner);
                if owner == Some(self.server) {
                    return Ok(Outcome::AlreadyHere);
                }
                tracing::info!(
                    address = %ip,
                    "hetzner: Floating IP {id} is on server {}; unassigning it before the assign",
                    owner.map_or("none".to_string(), |s| s.to_string())
                );
                for verb in ["unassign", "assign"] {
                    match self.start(id, verb, gate).await {
                        Ok(action) => self.finish(action, deadline).await?,
                        Err(CallError::Other(e)) => return Err(e),
                        Err(CallError::AlreadyAssigned) => {
                            return Err(ProviderError::Transient {
                                operation: format!("POST floating_ips/{id}/actions/{verb}"),
                                message: "HTTP 422: floating_ip_assigned again after a read".into(),
                                retry_after: None,
                                cause: Cause::Protocol,
                            })
                        }
                    }
                }
            }
        }
        self.share.note(ip, Some(self.server));
        Ok(Outcome::Moved { previous })
    }

    async fn do_refresh(
        &self,
        ip: IpAddr,
        mode: Mode,
        gate: &dyn WriteGate,
    ) -> Result<Outcome, ProviderError> {
        let id = self.id_of(ip).await?;
        let previous = match mode {
            // The first write after MASTER: the address is almost surely
            // elsewhere, and a blind assign is safe here (a 422 is read).
            Mode::Write => None,
            Mode::Verify => match self.owner(ip, id).await? {
                Some(s) if s == self.server => return Ok(Outcome::AlreadyHere),
                Some(s) => Some(format!("server {s}")),
                None => Some("nowhere".to_string()),
            },
        };
        self.point_here(ip, id, gate, previous).await
    }

    async fn do_self_test(&self) -> Vec<Check> {
        let server_path = format!("servers/{}", self.server);
        let server = Check {
            what: format!("hetzner GET {server_path}"),
            result: match self.get::<api::ServerAnswer>(&server_path).await {
                Ok(s) => Ok(format!(
                    "server {:?}, status {}",
                    s.server.name.unwrap_or_default(),
                    s.server.status.as_deref().unwrap_or("unknown")
                )),
                Err(e) => Err(e.to_string()),
            },
        };
        let ips = Check {
            what: "hetzner GET floating_ips".to_string(),
            result: match self.list_all().await {
                Ok((list, _)) => {
                    let here: Vec<&str> = list
                        .iter()
                        .filter(|f| f.server == Some(self.server))
                        .map(|f| f.ip.as_str())
                        .collect();
                    let blocked: Vec<&str> = list
                        .iter()
                        .filter(|f| f.blocked)
                        .map(|f| f.ip.as_str())
                        .collect();
                    let mut text = if here.is_empty() {
                        format!("{} Floating IPs visible, none pointing here", list.len())
                    } else {
                        format!(
                            "{} Floating IPs visible, {} pointing here: {}",
                            list.len(),
                            here.len(),
                            here.join(", ")
                        )
                    };
                    if !blocked.is_empty() {
                        text.push_str(&format!(
                            "; blocked by Hetzner (no traffic): {}",
                            blocked.join(", ")
                        ));
                    }
                    Ok(text)
                }
                Err(e) => Err(e.to_string()),
            },
        };
        vec![server, ips]
    }
}

impl Provider for Hetzner {
    fn name(&self) -> &'static str {
        "hetzner"
    }

    fn target(&self) -> String {
        self.server.to_string()
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
