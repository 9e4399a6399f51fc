//! Exoscale Elastic IPs, API v2.
//!
//! An Elastic IP may be attached to several instances at once, so "point
//! it here" means: attached to this instance and to no other. Attach and
//! detach are asynchronous operations, polled to their end.
//!
//! The call pattern (see docs/PERFORMANCE.md for the counts):
//! - the Elastic IP's id is looked up once (`GET /elastic-ip`) and cached;
//! - steady state (`Mode::Verify`) costs one `GET /instance/{self}`: when
//!   the address is attached here and the last scan found it nowhere else,
//!   nothing else is done, however many instances the account holds;
//! - the wide scan (`GET /instance`, then `GET /instance/{id}` for every
//!   other instance, detaching every other holder) runs when the refresher
//!   starts (`Mode::Write`) and again only when a read shows the address is
//!   not (only) here; refreshes of several addresses started together
//!   share one scan. vshn/floaty ran it on every refresh.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::http::{self, check_url, decode, read_body, MAX_BODY};
use crate::Secret;
use crate::{ask, BoxFuture, Cause, Check, Mode, Outcome, Provider, ProviderError, WriteGate};

mod api;
mod metadata;
pub mod sign;
#[cfg(test)]
mod tests;

pub use crate::metadata::DEFAULT_METADATA_URL;

/// How long a signature stays valid. The official clients use 600 s; a
/// request is sent within milliseconds of signing, so 300 s is plenty for
/// clock skew while making a captured header useless sooner.
pub const SIGNATURE_LIFETIME: Duration = Duration::from_secs(300);
/// First pause before re-reading a pending operation: attach/detach
/// usually finish within a second, and failover time counts.
const POLL_FIRST: Duration = Duration::from_millis(50);
/// The official client's fixed interval, our ceiling.
const POLL_MAX: Duration = Duration::from_secs(3);
/// Instances read at once during a scan: enough to read hundreds within
/// the refresh timeout, few enough not to look like a flood.
const SCAN_CONCURRENCY: usize = 8;

/// The zone's API base URL.
pub fn default_endpoint(zone: &str) -> String {
    format!("https://api-{zone}.exoscale.com/v2")
}

/// `PartialEq` so a reload can tell a changed setting (a rotated token
/// included) without comparing text.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The whole API base URL (`.../v2`); None: derived from the zone.
    pub endpoint: Option<String>,
    /// None: from the metadata service (only needed without `endpoint`).
    pub zone: Option<String>,
    pub key: Secret,
    pub secret: Secret,
    /// None: from the metadata service.
    pub instance: Option<uuid::Uuid>,
    /// Base URL of the metadata service.
    pub metadata_url: String,
    /// How long one refresh may take (`refresh-timeout`); operations still
    /// pending when it is nearly spent are reported as such.
    pub timeout: Duration,
    /// CA certificates trusted on top of the built-in roots, for the API
    /// and the metadata service (`ca-file`).
    pub ca: Option<crate::CaBundle>,
}

impl Settings {
    pub fn new(key: Secret, secret: Secret) -> Settings {
        Settings {
            endpoint: None,
            zone: None,
            key,
            secret,
            instance: None,
            metadata_url: DEFAULT_METADATA_URL.to_string(),
            timeout: Duration::from_secs(15),
            ca: None,
        }
    }
}

/// What the client needs to sign and send; shared with scan tasks.
struct Client {
    http: reqwest::Client,
    /// Without a trailing `/`; paths start with one.
    endpoint: String,
    key: Secret,
    secret: Secret,
}

/// What refreshes learn and later refreshes rely on.
#[derive(Debug, Default)]
struct Cache {
    /// Address → Elastic IP id.
    ids: HashMap<IpAddr, String>,
    /// Elastic IP ids the last scan found (or left) attached nowhere but here.
    exclusive: HashSet<String>,
}

pub struct Exoscale {
    client: Arc<Client>,
    instance: uuid::Uuid,
    instance_text: String,
    timeout: Duration,
    cache: Mutex<Cache>,
    /// The last scan; async, so concurrent refreshes wait for one scan
    /// instead of each running its own.
    scan: tokio::sync::Mutex<Option<Scan>>,
}

/// Who held what when a scan ran.
struct Scan {
    started: Instant,
    /// Elastic IP id (lower case) → other instances holding it.
    holders: HashMap<String, Vec<String>>,
}

impl fmt::Debug for Exoscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exoscale")
            .field("endpoint", &self.client.endpoint)
            .field("key", &self.client.key)
            .field("secret", &self.client.secret)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Client {
    /// Sends one signed request; non-2xx answers become errors. `path`
    /// starts with `/` and carries no query.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, ProviderError> {
        let operation = format!("{method} {path}");
        let result = async {
            let url = format!("{}{path}", self.endpoint);
            let parsed = reqwest::Url::parse(&url)
                .map_err(|e| ProviderError::Setup(format!("{operation}: bad URL {url:?}: {e}")))?;
            let body_bytes = body.as_deref().unwrap_or_default();
            let parts = sign::Parts {
                method: method.as_str(),
                // As sent: with the endpoint's own path (`/v2`), encoded.
                path: parsed.path(),
                body: body_bytes,
                query: &[],
                expires: now_secs() + SIGNATURE_LIFETIME.as_secs(),
            };
            let header = sign::authorization(self.key.expose(), self.secret.expose(), &parts);
            let mut auth = HeaderValue::from_str(&header).map_err(|_| {
                ProviderError::Setup(
                    "exoscale: the API key contains characters not allowed in an HTTP header"
                        .into(),
                )
            })?;
            auth.set_sensitive(true);
            let mut request = self
                .http
                .request(method.clone(), parsed)
                .header(AUTHORIZATION, auth);
            if let Some(b) = body {
                // The exact bytes that were signed.
                request = request.header(CONTENT_TYPE, "application/json").body(b);
            }
            let mut response = http::send(&operation, request).await?;
            read_body(&operation, &mut response, MAX_BODY).await
        }
        .await;
        result.map_err(|e| self.secret.redact_error(e))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ProviderError> {
        let body = self.call(Method::GET, path, None).await?;
        decode(&format!("GET {path}"), &body)
    }

    async fn get_instance(&self, id: &str) -> Result<api::Instance, ProviderError> {
        self.get(&format!("/instance/{id}")).await
    }

    /// Starts `:attach` or `:detach` of `eip` to/from `instance`, if
    /// `gate` still lets it: both are writes (a detach from the node that
    /// just became MASTER is as wrong as an attach here).
    async fn start(
        &self,
        verb: &str,
        eip: &str,
        instance: &str,
        gate: &dyn WriteGate,
    ) -> Result<api::Operation, ProviderError> {
        let path = format!("/elastic-ip/{eip}:{verb}");
        ask(gate, || format!("PUT {path}"))?;
        let body = serde_json::to_vec(&api::Target {
            instance: api::IdRefBorrowed { id: instance },
        })
        .map_err(|e| ProviderError::Setup(format!("PUT {path}: cannot encode the body: {e}")))?;
        let answer = self.call(Method::PUT, &path, Some(body)).await?;
        decode(&format!("PUT {path}"), &answer)
    }

    /// Polls `op` until it ends: quickly at first, then slowing to the
    /// official client's 3 s; gives up (transient) before `deadline`.
    async fn finish(
        &self,
        what: &str,
        mut op: api::Operation,
        deadline: Instant,
    ) -> Result<(), ProviderError> {
        let started = Instant::now();
        let mut delay = POLL_FIRST;
        loop {
            match op.state.as_deref().unwrap_or("pending") {
                "success" => return Ok(()),
                "pending" => {}
                state => {
                    let why = [op.reason.as_deref(), op.message.as_deref()]
                        .into_iter()
                        .flatten()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(": ");
                    return Err(ProviderError::Transient {
                        operation: what.to_string(),
                        message: http::one_line(
                            &format!(
                                "operation {} ended in {state}{}",
                                op.id,
                                if why.is_empty() {
                                    String::new()
                                } else {
                                    format!(" ({why})")
                                }
                            ),
                            300,
                        ),
                        retry_after: None,
                        cause: Cause::Protocol,
                    });
                }
            }
            if Instant::now() + delay >= deadline {
                return Err(ProviderError::Transient {
                    operation: what.to_string(),
                    message: format!(
                        "operation {} still pending after {:.1} s",
                        op.id,
                        started.elapsed().as_secs_f64()
                    ),
                    retry_after: None,
                    cause: Cause::Timeout,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(POLL_MAX);
            let id = op.id.clone();
            op = self.get(&format!("/operation/{id}")).await?;
        }
    }
}

/// A rejection a re-read can explain away (attaching what is attached,
/// detaching what is not); auth and "no such thing" cannot be.
fn maybe_already_done(e: &ProviderError) -> bool {
    match e {
        ProviderError::Rejected { status, .. } => !matches!(status, 401 | 403 | 404),
        ProviderError::Transient { message, .. } => message.starts_with("operation "),
        ProviderError::Setup(_)
        | ProviderError::NotFound { .. }
        | ProviderError::Withheld { .. }
        | ProviderError::Deferred { .. } => false,
    }
}

impl Exoscale {
    /// Builds the client and learns from the metadata service what the
    /// settings leave open (instance id; zone when there is no endpoint),
    /// retrying for about 10 s, then failing with `Setup`.
    pub async fn new(settings: Settings) -> Result<Exoscale, ProviderError> {
        Exoscale::with_metadata_budget(settings, metadata::BUDGET).await
    }

    pub(crate) async fn with_metadata_budget(
        settings: Settings,
        budget: Duration,
    ) -> Result<Exoscale, ProviderError> {
        let key = settings.key.expose().trim().to_string();
        let secret = Secret::new(settings.secret.expose().trim());
        if key.is_empty() {
            return Err(ProviderError::Setup(
                "exoscale: the API key is empty".into(),
            ));
        }
        if secret.expose().is_empty() {
            return Err(ProviderError::Setup(
                "exoscale: the API secret is empty".into(),
            ));
        }
        if let Some(why) = key_problem(&key) {
            return Err(ProviderError::Setup(format!("exoscale: the API key {why}")));
        }
        if let Some(e) = &settings.endpoint {
            check_url("exoscale", "endpoint", e.trim())?;
        }
        let ca = settings.ca.as_ref();
        let http = http::client(ca)?;
        // Only when a lookup is due: a second client is a second pool.
        let mut direct: Option<reqwest::Client> = None;
        let mut metadata_client = || -> Result<reqwest::Client, ProviderError> {
            if let Some(c) = &direct {
                return Ok(c.clone());
            }
            let c = http::metadata_client(ca)?;
            direct = Some(c.clone());
            Ok(c)
        };
        let instance = match settings.instance {
            Some(id) => id,
            None => {
                let text = metadata::lookup(
                    &metadata_client()?,
                    &settings.metadata_url,
                    metadata::Key::InstanceId,
                    budget,
                )
                .await?;
                let id = uuid::Uuid::parse_str(&text).map_err(|_| {
                    ProviderError::Setup("exoscale: metadata instance-id is not a UUID".into())
                })?;
                tracing::info!(instance = %id, "exoscale: instance id from metadata");
                id
            }
        };
        let endpoint = match (&settings.endpoint, &settings.zone) {
            (Some(e), _) => e.trim().trim_end_matches('/').to_string(),
            (None, Some(zone)) => default_endpoint(zone.trim()),
            (None, None) => {
                let zone = metadata::lookup(
                    &metadata_client()?,
                    &settings.metadata_url,
                    metadata::Key::Zone,
                    budget,
                )
                .await?;
                tracing::info!(zone = %zone, "exoscale: zone from metadata");
                default_endpoint(&zone)
            }
        };
        check_url("exoscale", "endpoint", &endpoint)?;
        Ok(Exoscale {
            client: Arc::new(Client {
                http,
                endpoint,
                key: Secret::new(key),
                secret,
            }),
            instance,
            instance_text: instance.to_string(),
            timeout: settings.timeout,
            cache: Mutex::new(Cache::default()),
            scan: tokio::sync::Mutex::new(None),
        })
    }

    /// The instance this provider attaches addresses to.
    pub fn instance(&self) -> uuid::Uuid {
        self.instance
    }

    /// The API base URL in use.
    pub fn endpoint(&self) -> &str {
        &self.client.endpoint
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Elastic IP id of `ip`: from the cache, else from the list (which
    /// then fills the cache for every address).
    async fn eip_id(&self, ip: IpAddr) -> Result<String, ProviderError> {
        if let Some(id) = self.cache().ids.get(&ip) {
            return Ok(id.clone());
        }
        let list: api::ElasticIpList = self.client.get("/elastic-ip").await?;
        let list = list.elastic_ips.unwrap_or_default();
        let mut cache = self.cache();
        for e in &list {
            if let Some(addr) = e.address() {
                cache.ids.insert(addr, e.id.clone());
            }
        }
        cache.ids.get(&ip).cloned().ok_or_else(|| {
            ProviderError::Setup(format!(
                "exoscale: no Elastic IP with address {ip} at {} ({} Elastic IPs visible); \
                 create one, or fix the virtual_ipaddress in keepalived.conf",
                self.client.endpoint,
                list.len()
            ))
        })
    }

    fn forget(&self, ip: IpAddr, eip: &str) {
        let mut cache = self.cache();
        cache.ids.remove(&ip);
        cache.exclusive.remove(eip);
    }

    /// Attaches `eip` here and waits for it. An answer that may mean
    /// "already attached" is checked with a read of this instance.
    async fn attach_here(
        &self,
        eip: &str,
        deadline: Instant,
        gate: &dyn WriteGate,
    ) -> Result<(), ProviderError> {
        let what = format!("PUT /elastic-ip/{eip}:attach");
        let result = match self
            .client
            .start("attach", eip, &self.instance_text, gate)
            .await
        {
            Ok(op) => self.client.finish(&what, op, deadline).await,
            Err(e) => Err(e),
        };
        match result {
            Err(e) if maybe_already_done(&e) => {
                let me = self.client.get_instance(&self.instance_text).await?;
                if me.holds(eip) {
                    tracing::debug!(elastic_ip = %eip, "attach refused, but it is attached here: {e}");
                    Ok(())
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }

    async fn detach(
        &self,
        eip: &str,
        instance: &str,
        deadline: Instant,
        gate: &dyn WriteGate,
    ) -> Result<(), ProviderError> {
        let what = format!("PUT /elastic-ip/{eip}:detach");
        let result = match self.client.start("detach", eip, instance, gate).await {
            Ok(op) => self.client.finish(&what, op, deadline).await,
            Err(e) => Err(e),
        };
        match result {
            Err(e) if maybe_already_done(&e) => match self.client.get_instance(instance).await {
                Ok(other) if !other.holds(eip) => Ok(()),
                _ => Err(e),
            },
            other => other,
        }
    }

    /// The other instances `eip` is attached to, from a scan that started
    /// no earlier than `since` (the start of the calling refresh): the
    /// refreshes of several addresses, started together, share one scan.
    async fn other_holders(&self, eip: &str, since: Instant) -> Result<Vec<String>, ProviderError> {
        let mut last = self.scan.lock().await;
        if let Some(scan) = last.as_ref().filter(|s| s.started >= since) {
            return Ok(scan.holders.get(eip).cloned().unwrap_or_default());
        }
        let started = Instant::now();
        let holders = self.scan_all().await?;
        let mine = holders.get(eip).cloned().unwrap_or_default();
        *last = Some(Scan { started, holders });
        Ok(mine)
    }

    /// Which Elastic IPs every other instance holds: lists the instances
    /// (the list does not say) and reads each, a few at a time.
    async fn scan_all(&self) -> Result<HashMap<String, Vec<String>>, ProviderError> {
        let list: api::InstanceList = self.client.get("/instance").await?;
        let mut pending = list
            .instances
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.id)
            .filter(|id| !uuid::Uuid::parse_str(id).is_ok_and(|u| u == self.instance));
        let mut holders: HashMap<String, Vec<String>> = HashMap::new();
        let mut set = tokio::task::JoinSet::new();
        loop {
            while set.len() < SCAN_CONCURRENCY {
                let Some(id) = pending.next() else { break };
                let client = Arc::clone(&self.client);
                set.spawn(async move {
                    let read = client.get_instance(&id).await;
                    (id, read)
                });
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            let (id, read) = joined.map_err(|e| ProviderError::Transient {
                operation: "GET /instance/…".into(),
                message: format!("scan task failed: {e}"),
                retry_after: None,
                cause: Cause::Protocol,
            })?;
            match read {
                Ok(instance) => {
                    for e in instance.elastic_ips.unwrap_or_default() {
                        holders
                            .entry(e.id.to_ascii_lowercase())
                            .or_default()
                            .push(id.clone());
                    }
                }
                // Deleted since the list: it holds nothing.
                Err(ProviderError::Rejected { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        for list in holders.values_mut() {
            list.sort();
        }
        Ok(holders)
    }

    /// Forgets that `instance` holds `eip` in the last scan, once detached.
    async fn scanned_detach(&self, eip: &str, instance: &str) {
        if let Some(scan) = self.scan.lock().await.as_mut() {
            if let Some(list) = scan.holders.get_mut(eip) {
                list.retain(|i| i != instance);
            }
        }
    }

    /// Scans for other holders of `eip` and detaches it from each; on
    /// success remembers that it is here only. Returns who held it.
    async fn evict_others(
        &self,
        eip: &str,
        since: Instant,
        deadline: Instant,
        gate: &dyn WriteGate,
    ) -> Result<Vec<String>, ProviderError> {
        self.cache().exclusive.remove(eip);
        let holders = self.other_holders(eip, since).await?;
        for other in &holders {
            self.detach(eip, other, deadline, gate).await?;
            self.scanned_detach(eip, other).await;
            tracing::info!(elastic_ip = %eip, instance = %other, "exoscale: detached from the previous holder");
        }
        self.cache().exclusive.insert(eip.to_string());
        Ok(holders)
    }

    async fn do_refresh(
        &self,
        ip: IpAddr,
        mode: Mode,
        gate: &dyn WriteGate,
    ) -> Result<Outcome, ProviderError> {
        let since = Instant::now();
        let deadline = since + self.timeout.mul_f64(0.9);
        // Ids are compared in lower case, as the scan keys them.
        let eip = self.eip_id(ip).await?.to_ascii_lowercase();
        let result = self.refresh_eip(&eip, mode, since, deadline, gate).await;
        // A 404 on our cached id: the Elastic IP was deleted (and maybe
        // re-created); look it up afresh, once.
        if let Err(ProviderError::Rejected {
            status: 404,
            operation,
            ..
        }) = &result
        {
            if operation.contains(&eip) {
                self.forget(ip, &eip);
                let eip = self.eip_id(ip).await?.to_ascii_lowercase();
                return self
                    .refresh_eip(&eip, Mode::Write, Instant::now(), deadline, gate)
                    .await;
            }
        }
        result
    }

    async fn refresh_eip(
        &self,
        eip: &str,
        mode: Mode,
        since: Instant,
        deadline: Instant,
        gate: &dyn WriteGate,
    ) -> Result<Outcome, ProviderError> {
        let here = match mode {
            // Right after MASTER: attach first, every millisecond counts.
            Mode::Write => false,
            Mode::Verify => {
                let me = self.client.get_instance(&self.instance_text).await?;
                let here = me.holds(eip);
                if here && self.cache().exclusive.contains(eip) {
                    return Ok(Outcome::AlreadyHere);
                }
                here
            }
        };
        if !here {
            self.attach_here(eip, deadline, gate).await?;
        }
        let holders = self.evict_others(eip, since, deadline, gate).await?;
        Ok(match (mode, here, holders.is_empty()) {
            (Mode::Verify, true, true) => Outcome::AlreadyHere,
            (Mode::Write, _, true) => Outcome::Moved { previous: None },
            (_, _, true) => Outcome::Moved {
                previous: Some("nowhere".into()),
            },
            (_, _, false) => Outcome::Moved {
                previous: Some(holders.join(", ")),
            },
        })
    }

    async fn do_self_test(&self) -> Vec<Check> {
        let instance_path = format!("/instance/{}", self.instance);
        let mut mine = None;
        let instance = Check {
            what: format!("exoscale GET {}{instance_path}", self.client.endpoint),
            result: match self.client.get_instance(&self.instance_text).await {
                Ok(i) => {
                    let text = format!(
                        "instance {:?}, state {}, {} Elastic IPs attached",
                        i.name.clone().unwrap_or_default(),
                        i.state.as_deref().unwrap_or("unknown"),
                        i.elastic_ips.as_ref().map_or(0, Vec::len)
                    );
                    mine = Some(i);
                    Ok(text)
                }
                Err(e) => Err(e.to_string()),
            },
        };
        let eips = Check {
            what: format!("exoscale GET {}/elastic-ip", self.client.endpoint),
            result: match self.client.get::<api::ElasticIpList>("/elastic-ip").await {
                Ok(list) => {
                    let list = list.elastic_ips.unwrap_or_default();
                    let here: Vec<String> = list
                        .iter()
                        .filter(|e| mine.as_ref().is_some_and(|m| m.holds(&e.id)))
                        .map(|e| e.ip.clone().unwrap_or_else(|| e.id.clone()))
                        .collect();
                    Ok(if here.is_empty() {
                        format!("{} Elastic IPs visible, none attached here", list.len())
                    } else {
                        format!(
                            "{} Elastic IPs visible, {} attached here: {}",
                            list.len(),
                            here.len(),
                            here.join(", ")
                        )
                    })
                }
                Err(e) => Err(e.to_string()),
            },
        };
        vec![instance, eips]
    }
}

/// Why `key` cannot go into the `Authorization` header, if it cannot.
fn key_problem(key: &str) -> Option<&'static str> {
    if key
        .bytes()
        .any(|b| !b.is_ascii_graphic() || b == b',' || b == b'=')
    {
        Some("contains spaces, commas, `=` or non-ASCII characters")
    } else {
        None
    }
}

/// Checks a key when the config is loaded, before any fork or lock.
/// Every Exoscale API key starts with `EXO`; anything else (most often the
/// secret pasted into `key`) could only fail on every request later.
pub fn check_key(key: &str) -> Result<(), String> {
    let key = key.trim();
    if let Some(why) = key_problem(key) {
        return Err(why.to_string());
    }
    if !key.starts_with("EXO") {
        return Err(
            "does not start with EXO, as every Exoscale API key does; check that key and secret are not swapped"
                .to_string(),
        );
    }
    Ok(())
}

impl Provider for Exoscale {
    fn name(&self) -> &'static str {
        "exoscale"
    }

    fn target(&self) -> String {
        self.instance_text.clone()
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
}
