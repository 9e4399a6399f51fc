//! AWS EC2: Elastic IPs, or secondary private IPs (the usual
//! keepalived-on-AWS pattern), over the Query API signed with SigV4
//! (`sign.rs`), credentials from the configuration, the environment or the
//! instance role through IMDSv2 (`credentials.rs`, `metadata.rs`).
//!
//! Every refresh reads before it writes, the first after MASTER too: AWS
//! may bill each remap of an Elastic IP, even to the instance that already
//! holds it, and a read costs one round trip. Several addresses of an
//! instance are read with one call (`AllocationId.1..N`, or one
//! `DescribeNetworkInterfaces` filter with N values: `read_share.rs`).
//! An Elastic IP moves synchronously; a secondary private IP is remapped
//! asynchronously, so a move is confirmed in IMDS `local-ipv4s`.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use tokio::time::Instant;

use crate::http::{self, with_slash};
use crate::read_share::{Owner, ReadShare};
use crate::{ask, BoxFuture, Cause, Check, Mode, Outcome, Provider, ProviderError, WriteGate};

mod api;
mod credentials;
mod metadata;
mod sign;
#[cfg(test)]
mod tests;

pub use credentials::Credentials;

const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// How often IMDS `local-ipv4s` is asked whether a remap is done.
const CONFIRM_POLL: Duration = Duration::from_millis(100);
/// SigV4's tolerance for clock skew is about this (AWS says "within 5
/// minutes"; the exact window is not documented).
const SKEW_WINDOW: u64 = 300;

/// The EC2 endpoint of a region.
pub fn default_endpoint(region: &str) -> String {
    format!("https://ec2.{region}.amazonaws.com/")
}

/// What moves with VRRP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressMode {
    /// A public Elastic IP, associated with this instance (or ENI).
    ElasticIp,
    /// A secondary private IP of the VPC, assigned to this node's ENI.
    SecondaryPrivateIp,
}

/// Where "this instance" comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceSource {
    Id(String),
    /// IMDSv2 `instance-id`.
    Metadata,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `None`: IMDSv2 `placement/region`.
    pub region: Option<String>,
    /// `None`: [`default_endpoint`] of the region.
    pub endpoint: Option<String>,
    pub instance: InstanceSource,
    pub mode: AddressMode,
    /// This node's ENI: for an Elastic IP, associate with it instead of
    /// the instance (instances with several ENIs); for a secondary IP,
    /// the ENI to assign to (`None`: the primary ENI, from IMDS by MAC).
    pub network_interface: Option<String>,
    pub credentials: Credentials,
    /// The instance metadata service's base URL.
    pub metadata_url: String,
    /// How long one refresh may take (`refresh-timeout`).
    pub timeout: Duration,
    pub ca: Option<crate::CaBundle>,
}

/// Who "here" is for the mode: the instance (or ENI) an Elastic IP is
/// associated with, the ENI a secondary IP is assigned to.
#[derive(Debug, Clone)]
struct Here {
    instance: String,
    eni: Option<String>,
    /// The ENI's MAC, to confirm a remap in IMDS `local-ipv4s` (known
    /// when the ENI came from IMDS).
    mac: Option<String>,
}

/// Why a call failed, where the caller decides more than the error does.
enum CallError {
    /// Role credentials refused (revoked, expired early): fetch new ones
    /// and try once more.
    StaleKeys(ProviderError),
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
            CallError::StaleKeys(e) | CallError::Other(e) => e,
        }
    }
}

pub struct Aws {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    /// What SigV4 signs as `host` (with the port when not the default).
    host: String,
    region: String,
    mode: AddressMode,
    here: Here,
    keys: credentials::KeySource,
    imds: Arc<metadata::Imds>,
    timeout: Duration,
    /// Allocation ids of Elastic IPs, by address.
    allocations: Mutex<std::collections::HashMap<IpAddr, String>>,
    share: ReadShare<String>,
    /// The API's clock minus ours, from the last answer's `Date`.
    skew: Mutex<Option<i64>>,
}

impl fmt::Debug for Aws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aws")
            .field("endpoint", &self.endpoint.as_str())
            .field("region", &self.region)
            .field("mode", &self.mode)
            .field("here", &self.here)
            .finish_non_exhaustive()
    }
}

impl Aws {
    /// Builds the client and learns from IMDSv2 what the settings leave
    /// open (region, instance, ENI), retrying for about 10 s.
    pub async fn new(settings: Settings) -> Result<Aws, ProviderError> {
        Aws::with_metadata_budget(settings, crate::metadata::BUDGET).await
    }

    pub(crate) async fn with_metadata_budget(
        settings: Settings,
        budget: Duration,
    ) -> Result<Aws, ProviderError> {
        let ca = settings.ca.as_ref();
        crate::metadata::check_base("aws", &settings.metadata_url, &settings.metadata_url)?;
        let imds = Arc::new(metadata::Imds::new(
            http::metadata_client(ca)?,
            &settings.metadata_url,
        ));
        let region = match &settings.region {
            Some(r) => r.clone(),
            None => {
                imds.value(
                    "placement/region",
                    "aws.region in the configuration",
                    budget,
                )
                .await?
            }
        };
        let endpoint = with_slash(
            &settings
                .endpoint
                .clone()
                .unwrap_or_else(|| default_endpoint(&region)),
        );
        http::check_url("aws", "endpoint", &endpoint)?;
        let endpoint = reqwest::Url::parse(&endpoint)
            .map_err(|e| ProviderError::Setup(format!("aws: endpoint {endpoint:?}: {e}")))?;
        let host = match (endpoint.host_str(), endpoint.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => {
                return Err(ProviderError::Setup(format!(
                    "aws: endpoint {endpoint} has no host"
                )))
            }
        };
        let instance = match &settings.instance {
            InstanceSource::Id(id) => id.clone(),
            InstanceSource::Metadata => {
                let id = imds
                    .value(
                        "instance-id",
                        "aws.instance-id in the configuration",
                        budget,
                    )
                    .await?;
                tracing::info!(instance = %id, "aws: instance id from metadata");
                id
            }
        };
        let here = match (settings.mode, &settings.network_interface) {
            (AddressMode::SecondaryPrivateIp, Some(eni)) => Here {
                instance,
                eni: Some(eni.clone()),
                mac: mac_of(&imds, eni).await,
            },
            (AddressMode::ElasticIp, Some(eni)) => Here {
                instance,
                eni: Some(eni.clone()),
                mac: None,
            },
            (AddressMode::ElasticIp, None) => Here {
                instance,
                eni: None,
                mac: None,
            },
            (AddressMode::SecondaryPrivateIp, None) => {
                let key = "aws.network-interface-id in the configuration";
                let mac = imds.value("mac", key, budget).await?;
                let eni = imds
                    .value(
                        &format!("network/interfaces/macs/{mac}/interface-id"),
                        key,
                        budget,
                    )
                    .await?;
                tracing::info!(eni = %eni, "aws: network interface from metadata");
                Here {
                    instance,
                    eni: Some(eni),
                    mac: Some(mac),
                }
            }
        };
        Ok(Aws {
            client: http::client(ca)?,
            endpoint,
            host,
            region,
            mode: settings.mode,
            here,
            keys: credentials::KeySource::new(&settings.credentials, imds.clone()),
            imds,
            timeout: settings.timeout,
            allocations: Mutex::new(std::collections::HashMap::new()),
            share: ReadShare::default(),
            skew: Mutex::new(None),
        })
    }

    /// One signed call, retried once with fresh role credentials when the
    /// API refused the cached ones.
    async fn call(
        &self,
        action: &str,
        params: &[(String, String)],
    ) -> Result<String, ProviderError> {
        match self.call_once(action, params).await {
            Err(CallError::StaleKeys(e)) if self.keys.is_role() => {
                tracing::info!("aws: {e}; fetching new instance role credentials");
                self.keys.invalidate().await;
                self.call_once(action, params)
                    .await
                    .map_err(CallError::into_error)
            }
            other => other.map_err(CallError::into_error),
        }
    }

    async fn call_once(
        &self,
        action: &str,
        params: &[(String, String)],
    ) -> Result<String, CallError> {
        let operation = format!("EC2 {action}");
        let keys = self.keys.keys().await?;
        let body = api::form(action, params);
        let amz_date = sign::amz_date(SystemTime::now());
        let mut headers = vec![
            ("content-type", FORM),
            ("host", self.host.as_str()),
            ("x-amz-date", amz_date.as_str()),
        ];
        if let Some(t) = &keys.session_token {
            headers.push(("x-amz-security-token", t.expose()));
        }
        let authorization = sign::authorization(
            &sign::Key {
                access_key_id: keys.access_key_id.expose(),
                secret: keys.secret.expose(),
            },
            &sign::Parts {
                method: "POST",
                path: self.endpoint.path(),
                query: "",
                headers: &headers,
                body: body.as_bytes(),
            },
            &sign::Scope {
                region: &self.region,
                service: "ec2",
                amz_date: &amz_date,
            },
        );
        let sensitive = |v: &str| {
            HeaderValue::from_str(v).map(|mut h| {
                h.set_sensitive(true);
                h
            })
        };
        let bad_header = |_| {
            CallError::Other(ProviderError::Setup(
                "aws: a credential holds characters not allowed in an HTTP header".into(),
            ))
        };
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, FORM)
            .header("x-amz-date", &amz_date)
            .header(
                AUTHORIZATION,
                sensitive(&authorization).map_err(bad_header)?,
            )
            .body(body);
        if let Some(t) = &keys.session_token {
            request = request.header(
                "x-amz-security-token",
                sensitive(t.expose()).map_err(bad_header)?,
            );
        }
        let answer = http::exchange(&operation, request, |h| self.learn_skew(h))
            .await
            .map_err(|e| CallError::Other(self.redact(&keys, e)))?;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        if answer.is_success() {
            return Ok(text);
        }
        Err(match self.error(&operation, answer.status, &text) {
            CallError::StaleKeys(e) => CallError::StaleKeys(self.redact(&keys, e)),
            CallError::Other(e) => CallError::Other(self.redact(&keys, e)),
        })
    }

    fn redact(&self, keys: &credentials::Keys, mut e: ProviderError) -> ProviderError {
        e = keys.secret.redact_error(e);
        if let Some(t) = &keys.session_token {
            e = t.redact_error(e);
        }
        e
    }

    /// The API's `Date` against our clock: SigV4 fails on a skew of more
    /// than about five minutes, and "fix NTP" is the useful message then.
    fn learn_skew(&self, headers: &reqwest::header::HeaderMap) {
        let Some(date) = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
        else {
            return;
        };
        let Some(server) = http::parse_http_date(date) else {
            return;
        };
        let ours = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        *self.skew.lock().unwrap_or_else(|p| p.into_inner()) = Some(server as i64 - ours as i64);
    }

    fn clock_hint(&self) -> String {
        match *self.skew.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(s) if s.unsigned_abs() > SKEW_WINDOW => format!(
                " (this node's clock is {} s {} the API's: fix NTP; SigV4 allows a few minutes)",
                s.unsigned_abs(),
                if s > 0 { "behind" } else { "ahead of" }
            ),
            _ => " (check this node's clock, NTP: SigV4 allows a few minutes of skew)".into(),
        }
    }

    fn error(&self, operation: &str, status: u16, body: &str) -> CallError {
        let Some((code, message)) = api::error(body) else {
            return CallError::Other(http::error_from(operation, status, None, body.as_bytes()));
        };
        let detail = http::one_line(&format!("{code}: {message}"), 300);
        let rejected = |hint: String| ProviderError::Rejected {
            operation: operation.to_string(),
            status,
            message: format!("{detail}{hint}"),
        };
        match code.as_str() {
            // EC2's throttling: 503 with no Retry-After; the back-off waits.
            "RequestLimitExceeded" | "Throttling" => CallError::Other(ProviderError::Transient {
                operation: operation.to_string(),
                message: format!("HTTP {status}: {detail}"),
                retry_after: None,
                cause: Cause::RateLimited,
            }),
            // A clock off by minutes, or (EC2 answers both ways) role
            // credentials that expired: fresh ones are tried first.
            "RequestExpired" | "RequestTimeTooSkewed" => {
                CallError::StaleKeys(rejected(self.clock_hint()))
            }
            "SignatureDoesNotMatch" => CallError::Other(rejected(
                " (check aws.secret-access-key: it does not belong to the key id)".into(),
            )),
            "AuthFailure" | "ExpiredToken" | "InvalidClientTokenId" => CallError::StaleKeys(
                rejected(" (the access key is unknown, revoked or expired)".into()),
            ),
            "UnauthorizedOperation" => CallError::Other(rejected(format!(
                " (the IAM policy must allow ec2:{}; see the README)",
                operation.trim_start_matches("EC2 ")
            ))),
            _ if (500..600).contains(&status) => CallError::Other(ProviderError::Transient {
                operation: operation.to_string(),
                message: format!("HTTP {status}: {detail}"),
                retry_after: None,
                cause: Cause::ServerError,
            }),
            _ => CallError::Other(rejected(String::new())),
        }
    }

    fn protocol(operation: &str, why: String) -> ProviderError {
        ProviderError::Transient {
            operation: operation.to_string(),
            message: format!("unexpected answer: {why}"),
            retry_after: None,
            cause: Cause::Protocol,
        }
    }

    fn allocation(&self, ip: IpAddr) -> Option<String> {
        self.allocations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ip)
            .cloned()
    }

    /// Who `ip` points at: the instance (or ENI, when configured) holding
    /// an Elastic IP, the ENI holding a secondary IP.
    fn owner_of_address(&self, a: &api::Address) -> Owner<String> {
        match &self.here.eni {
            Some(_) => a.network_interface_id.clone(),
            None => a.instance_id.clone(),
        }
    }

    fn our_id(&self) -> &str {
        match (self.mode, &self.here.eni) {
            (_, Some(eni)) => eni,
            (AddressMode::ElasticIp, None) => &self.here.instance,
            // Unreachable: new() always finds the ENI in this mode.
            (AddressMode::SecondaryPrivateIp, None) => &self.here.instance,
        }
    }

    /// Reads where every asked address points with one call, and notes it.
    async fn read_all(&self) -> Result<(), ProviderError> {
        let asked = self.share.asked();
        match self.mode {
            AddressMode::ElasticIp => {
                // Resolved addresses by allocation id (stable), the others by
                // address (resolving them on the way).
                let (known, unknown): (Vec<IpAddr>, Vec<IpAddr>) =
                    asked.iter().partition(|ip| self.allocation(**ip).is_some());
                let mut found = Vec::new();
                for (key, ips) in [("AllocationId", &known), ("PublicIp", &unknown)] {
                    if ips.is_empty() {
                        continue;
                    }
                    let values = ips.iter().map(|ip| match key {
                        "AllocationId" => self.allocation(*ip).unwrap_or_default(),
                        _ => ip.to_string(),
                    });
                    let text = self
                        .call("DescribeAddresses", &api::list(key, values))
                        .await?;
                    found.extend(
                        api::addresses(&text)
                            .map_err(|e| Aws::protocol("EC2 DescribeAddresses", e))?,
                    );
                }
                let mut owners = Vec::new();
                for a in &found {
                    let Ok(ip) = a.public_ip.parse::<IpAddr>() else {
                        continue;
                    };
                    if let Some(alloc) = &a.allocation_id {
                        self.allocations
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(ip, alloc.clone());
                    }
                    owners.push((ip, self.owner_of_address(a)));
                }
                self.share.note_listing(1, owners);
            }
            AddressMode::SecondaryPrivateIp => {
                let mut params = vec![(
                    "Filter.1.Name".to_string(),
                    "addresses.private-ip-address".to_string(),
                )];
                params.extend(api::list(
                    "Filter.1.Value",
                    asked.iter().map(IpAddr::to_string),
                ));
                let text = self.call("DescribeNetworkInterfaces", &params).await?;
                let interfaces = api::interfaces(&text)
                    .map_err(|e| Aws::protocol("EC2 DescribeNetworkInterfaces", e))?;
                // An asked address on no interface points nowhere.
                let owners = asked.iter().map(|ip| {
                    let text = ip.to_string();
                    let owner = interfaces
                        .iter()
                        .find(|i| i.private_ips.contains(&text))
                        .map(|i| i.id.clone());
                    (*ip, owner)
                });
                self.share.note_listing(1, owners.collect::<Vec<_>>());
            }
        }
        Ok(())
    }

    async fn owner(&self, ip: IpAddr) -> Result<Owner<String>, ProviderError> {
        if let Some(owner) = self.share.fresh(ip) {
            return Ok(owner);
        }
        let _flight = self.share.flight().await;
        if let Some(owner) = self.share.fresh(ip) {
            return Ok(owner);
        }
        self.read_all().await?;
        match self.share.fresh(ip) {
            Some(owner) => Ok(owner),
            // Listed by address, found nowhere: no such Elastic IP.
            None => Err(ProviderError::NotFound {
                operation: "EC2 DescribeAddresses".into(),
                message: format!(
                    "no Elastic IP {ip} in region {} of this account (a typo in keepalived.conf, \
                     or another region?)",
                    self.region
                ),
            }),
        }
    }

    async fn write(&self, ip: IpAddr, gate: &dyn WriteGate) -> Result<(), ProviderError> {
        let (action, params) = match self.mode {
            AddressMode::ElasticIp => {
                let alloc = self.allocation(ip).ok_or_else(|| ProviderError::NotFound {
                    operation: "EC2 AssociateAddress".into(),
                    message: format!("Elastic IP {ip} has no allocation id (EC2-Classic?)"),
                })?;
                let mut p = vec![("AllocationId".to_string(), alloc)];
                match &self.here.eni {
                    Some(eni) => p.push(("NetworkInterfaceId".into(), eni.clone())),
                    None => p.push(("InstanceId".into(), self.here.instance.clone())),
                }
                p.push(("AllowReassociation".into(), "true".into()));
                ("AssociateAddress", p)
            }
            AddressMode::SecondaryPrivateIp => (
                "AssignPrivateIpAddresses",
                vec![
                    ("AllowReassignment".to_string(), "true".to_string()),
                    ("NetworkInterfaceId".into(), self.our_id().to_string()),
                    ("PrivateIpAddress.1".into(), ip.to_string()),
                ],
            ),
        };
        let operation = format!("EC2 {action}");
        // Last moment before the write leaves.
        ask(gate, || operation.clone())?;
        let text = self.call(action, &params).await?;
        if !api::returned_true(&text).map_err(|e| Aws::protocol(&operation, e))? {
            return Err(Aws::protocol(&operation, "<return> is not true".into()));
        }
        Ok(())
    }

    /// The remap of a secondary IP is asynchronous: done when IMDS lists
    /// the address among this ENI's `local-ipv4s`.
    async fn confirm(&self, ip: IpAddr, deadline: Instant) -> Result<(), ProviderError> {
        let Some(mac) = &self.here.mac else {
            return Ok(());
        };
        let path = format!("network/interfaces/macs/{mac}/local-ipv4s");
        let wanted = ip.to_string();
        let started = Instant::now();
        loop {
            match self.imds.get(&path).await {
                Ok(list) if list.lines().any(|l| l.trim() == wanted) => return Ok(()),
                Ok(_) => {}
                Err(e) => {
                    let why = match e {
                        crate::metadata::Failure::Retry(m) | crate::metadata::Failure::Fatal(m) => {
                            m
                        }
                    };
                    tracing::debug!("aws: cannot confirm the remap of {ip} in IMDS: {why}");
                }
            }
            if Instant::now() + CONFIRM_POLL >= deadline {
                return Err(ProviderError::Transient {
                    operation: "IMDSv2 local-ipv4s".into(),
                    message: format!(
                        "{ip} assigned, but not in this ENI's local-ipv4s after {:.1} s",
                        started.elapsed().as_secs_f64()
                    ),
                    retry_after: None,
                    cause: Cause::Timeout,
                });
            }
            tokio::time::sleep(CONFIRM_POLL).await;
        }
    }

    async fn do_refresh(
        &self,
        ip: IpAddr,
        mode: Mode,
        gate: &dyn WriteGate,
    ) -> Result<Outcome, ProviderError> {
        let deadline = Instant::now() + self.timeout.saturating_sub(Duration::from_millis(300));
        self.share.ask(ip);
        // Write mode reads too: see the module's doc. `mode` only says
        // what the caller expects to find.
        let _ = mode;
        let previous = match self.owner(ip).await? {
            Some(o) if o == self.our_id() => return Ok(Outcome::AlreadyHere),
            Some(o) => o,
            None => "nowhere".to_string(),
        };
        self.write(ip, gate).await?;
        self.share.note(ip, Some(self.our_id().to_string()));
        if self.mode == AddressMode::SecondaryPrivateIp {
            self.confirm(ip, deadline).await?;
        }
        Ok(Outcome::Moved {
            previous: Some(previous),
        })
    }

    async fn do_self_test(&self) -> Vec<Check> {
        let keys = Check {
            what: "aws credentials".into(),
            result: self.keys.describe().await.map_err(|e| e.to_string()),
        };
        let instance = Check {
            what: format!("aws EC2 DescribeInstances {}", self.here.instance),
            result: match self
                .call(
                    "DescribeInstances",
                    &api::list("InstanceId", [self.here.instance.clone()]),
                )
                .await
            {
                Ok(text) => match api::instance_state(&text) {
                    Ok(Some((id, state))) => Ok(format!("instance {id}, state {state}")),
                    Ok(None) => Err(format!("no instance {}", self.here.instance)),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e.to_string()),
            },
        };
        let addresses = match self.mode {
            AddressMode::ElasticIp => Check {
                what: "aws EC2 DescribeAddresses".into(),
                result: match self.call("DescribeAddresses", &[]).await {
                    Ok(text) => api::addresses(&text).map(|list| {
                        let here: Vec<&str> = list
                            .iter()
                            .filter(|a| self.owner_of_address(a).as_deref() == Some(self.our_id()))
                            .map(|a| a.public_ip.as_str())
                            .collect();
                        format!(
                            "{} Elastic IPs visible, {} here{}",
                            list.len(),
                            here.len(),
                            if here.is_empty() {
                                String::new()
                            } else {
                                format!(": {}", here.join(", "))
                            }
                        )
                    }),
                    Err(e) => Err(e.to_string()),
                },
            },
            AddressMode::SecondaryPrivateIp => Check {
                what: format!("aws EC2 DescribeNetworkInterfaces {}", self.our_id()),
                result: match self
                    .call(
                        "DescribeNetworkInterfaces",
                        &api::list("NetworkInterfaceId", [self.our_id().to_string()]),
                    )
                    .await
                {
                    Ok(text) => api::interfaces(&text).and_then(|list| match list.first() {
                        Some(i) => Ok(format!(
                            "interface {}, private IPs {}",
                            i.id,
                            i.private_ips.join(", ")
                        )),
                        None => Err(format!("no interface {}", self.our_id())),
                    }),
                    Err(e) => Err(e.to_string()),
                },
            },
        };
        vec![keys, instance, addresses]
    }
}

/// The MAC of a configured ENI, to confirm remaps in its IMDS
/// `local-ipv4s`: IMDS lists this instance's MACs and each one's
/// interface id. `None` (remaps then trusted on EC2's answer, said once)
/// when IMDS does not answer or the ENI is not attached here.
async fn mac_of(imds: &metadata::Imds, eni: &str) -> Option<String> {
    let macs = match imds.get("network/interfaces/macs/").await {
        Ok(list) => list,
        Err(_) => {
            tracing::info!(
                eni,
                "aws: no instance metadata; remaps of secondary IPs are not confirmed"
            );
            return None;
        }
    };
    for mac in macs.lines().map(|l| l.trim().trim_end_matches('/')) {
        if mac.is_empty() {
            continue;
        }
        let path = format!("network/interfaces/macs/{mac}/interface-id");
        if imds.get(&path).await.is_ok_and(|id| id == eni) {
            return Some(mac.to_string());
        }
    }
    tracing::info!(
        eni,
        "aws: the interface is not attached here (IMDS); remaps are not confirmed"
    );
    None
}

impl Provider for Aws {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn target(&self) -> String {
        self.our_id().to_string()
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
