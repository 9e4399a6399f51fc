//! The EC2 instance metadata service, IMDSv2 only (`HttpTokens=required`,
//! `docs/cloud-apis-next.md` §3.3), for one instance of an [`Ec2`] mock
//! whose state it shares: `local-ipv4s` is EC2's view of the instance's
//! ENI with the remap delay applied, and the role credentials it hands out
//! are the ones the EC2 mock accepts.
//!
//! [`Ec2`]: super::Ec2

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Credential, Shared};
use crate::clock;
use crate::fault::{self, Fault, FaultRule};
use crate::http::{lock, percent_decode, Handler, RawRequest, Reply, Response, Served};
use crate::ids;
use crate::Request;

/// The longest token TTL IMDS grants, in seconds (six hours).
pub const MAX_TOKEN_TTL: u64 = 21_600;
const TTL_HEADER: &str = "X-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "X-aws-ec2-metadata-token";

/// Role credentials as handed out.
#[derive(Debug, Clone)]
struct Role {
    name: String,
    access_key_id: String,
    secret: String,
    token: String,
    last_updated: i64,
    expiration: i64,
}

#[derive(Debug)]
struct ImdsState {
    instance_id: String,
    region: String,
    role: Option<Role>,
    /// Token → when it stops working.
    tokens: HashMap<String, Instant>,
    disabled: bool,
    requests: Vec<Request>,
    fault: Option<FaultRule>,
}

struct Inner {
    /// Locked before the EC2 state when both are, never after.
    state: Mutex<ImdsState>,
    ec2: Arc<Shared>,
}

/// A running IMDSv2 mock ([`super::Ec2::imds`]); clones share it, and it
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct Imds {
    inner: Arc<Inner>,
    served: Arc<Served>,
}

impl std::fmt::Debug for Imds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imds")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Imds {
    pub(super) fn start(
        listener: TcpListener,
        ec2: Arc<Shared>,
        instance_id: &str,
    ) -> io::Result<Imds> {
        // The region the EC2 mock is in unless told otherwise, so the two
        // agree by default.
        let region = ec2.state.lock().region.clone();
        let inner = Arc::new(Inner {
            state: Mutex::new(ImdsState {
                instance_id: instance_id.to_string(),
                region,
                role: None,
                tokens: HashMap::new(),
                disabled: false,
                requests: Vec::new(),
                fault: None,
            }),
            ec2,
        });
        let served = Served::start(listener, Arc::new(Service(Arc::clone(&inner))))?;
        Ok(Imds {
            inner,
            served: Arc::new(served),
        })
    }

    /// `http://127.0.0.1:PORT/`: the metadata base, as floaty's
    /// `FLOATY_METADATA_URL` takes it (`latest/...` is appended).
    pub fn url(&self) -> String {
        self.served.url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.served.addr()
    }

    /// Also serves `listener` from the same state.
    ///
    /// # Panics
    /// If no thread can be spawned.
    pub fn also_listen(&self, listener: TcpListener) {
        self.served.also_listen(listener);
    }

    /// Attaches role `role` to the instance: its credentials are served at
    /// `latest/meta-data/iam/security-credentials/<role>`, and the EC2 mock
    /// accepts them (with `token` as the session token) until their
    /// `Expiration`, `expires_in` from now on the mock's clock (rounded up
    /// to a second).
    pub fn set_role(
        &self,
        role: &str,
        access_key_id: &str,
        secret: &str,
        token: &str,
        expires_in: Duration,
    ) {
        let mut state = lock(&self.inner.state);
        let issued = self.issue(access_key_id, secret, token, expires_in);
        state.role = Some(Role {
            name: role.to_string(),
            ..issued
        });
    }

    /// New credentials for the role from now on; the old ones stay valid
    /// until their own `Expiration`, as AWS's do.
    ///
    /// # Panics
    /// Without a role ([`Imds::set_role`] first: a test bug).
    pub fn rotate_role(
        &self,
        access_key_id: &str,
        secret: &str,
        token: &str,
        expires_in: Duration,
    ) {
        let mut state = lock(&self.inner.state);
        let Some(name) = state.role.as_ref().map(|r| r.name.clone()) else {
            panic!("rotate_role without a role: call set_role first");
        };
        let issued = self.issue(access_key_id, secret, token, expires_in);
        state.role = Some(Role { name, ..issued });
    }

    /// Registers temporary credentials with the EC2 mock.
    fn issue(&self, access_key_id: &str, secret: &str, token: &str, expires_in: Duration) -> Role {
        let mut ec2 = self.inner.ec2.state.lock();
        let (now, expiration) = (ec2.now_secs(), ec2.secs_after(expires_in));
        ec2.credentials.insert(
            access_key_id.to_string(),
            Credential {
                secret: secret.to_string(),
                token: Some(token.to_string()),
                expires: Some(expiration),
                actions: None,
            },
        );
        drop(ec2);
        self.inner.ec2.state.notify();
        Role {
            name: String::new(),
            access_key_id: access_key_id.to_string(),
            secret: secret.to_string(),
            token: token.to_string(),
            last_updated: now,
            expiration,
        }
    }

    /// Detaches the role: `security-credentials/` answers 404. Credentials
    /// already handed out stay valid until they expire.
    pub fn remove_role(&self) {
        lock(&self.inner.state).role = None;
    }

    /// `placement/region` (and the zone, the region plus `a`); the EC2
    /// mock's region when the IMDS was made, `us-east-1` by default.
    pub fn set_region(&self, region: &str) {
        lock(&self.inner.state).region = region.to_string();
    }

    /// A disabled IMDS (`HttpEndpoint=disabled`) answers every request,
    /// the token PUT first, with 403.
    pub fn set_disabled(&self, disabled: bool) {
        lock(&self.inner.state).disabled = disabled;
    }

    pub fn requests(&self) -> Vec<Request> {
        lock(&self.inner.state).requests.clone()
    }

    pub fn set_fault(&self, fault: Fault) {
        self.set_fault_rule(fault, None, None);
    }

    pub fn set_fault_times(&self, fault: Fault, times: usize) {
        self.set_fault_rule(fault, Some(times), None);
    }

    pub fn set_fault_on(&self, method: &str, fault: Fault, times: Option<usize>) {
        self.set_fault_rule(fault, times, Some(method));
    }

    pub fn clear_fault(&self) {
        self.set_fault(Fault::None);
    }

    fn set_fault_rule(&self, fault: Fault, times: Option<usize>, method: Option<&str>) {
        lock(&self.inner.state).fault = FaultRule::new(fault, times, method);
    }
}

struct Service(Arc<Inner>);

impl Handler for Service {
    fn handle(&self, req: RawRequest) -> Reply {
        let at = Instant::now();
        let (path, query) = match req.target.split_once('?') {
            Some((p, q)) => (percent_decode(p), Some(q.to_string())),
            None => (percent_decode(&req.target), None),
        };
        let mut state = lock(&self.0.state);
        let fault = fault::take(&mut state.fault, &req.method);
        let reply = fault::apply(fault, || {
            Reply::now(serve(&mut state, &self.0.ec2, &req, &path, at))
        });
        Request::new(&req, path, query, at, reply.status()).log(&mut state.requests);
        reply
    }
}

fn serve(
    state: &mut ImdsState,
    ec2: &Shared,
    req: &RawRequest,
    path: &str,
    now: Instant,
) -> Response {
    if state.disabled {
        return page(403, "Forbidden");
    }
    if path == "/latest/api/token" {
        return match req.method.as_str() {
            "PUT" => new_token(state, req, now),
            _ => page(405, "Method Not Allowed").with_header("Allow", "PUT"),
        };
    }
    if req.method != "GET" && req.method != "HEAD" {
        return page(405, "Method Not Allowed").with_header("Allow", "GET, HEAD");
    }
    // IMDSv2 only: no valid token, no metadata (this is what makes an
    // IMDSv1 client fail). Expired tokens are forgotten as they are met.
    state.tokens.retain(|_, until| now < *until);
    let valid = req
        .header(TOKEN_HEADER)
        .is_some_and(|t| state.tokens.contains_key(t));
    if !valid {
        return page(401, "Unauthorized");
    }
    let Some(key) = path.strip_prefix("/latest/") else {
        return page(404, "Not Found");
    };
    match metadata(state, ec2, key, now) {
        Some(body) => text(&body),
        None => page(404, "Not Found"),
    }
}

/// `PUT /latest/api/token`: a TTL in 1..=21600 is required (else 400), and
/// a request that came through a proxy (`X-Forwarded-For`) is refused with
/// 403, as IMDS refuses them.
fn new_token(state: &mut ImdsState, req: &RawRequest, now: Instant) -> Response {
    if req.header("x-forwarded-for").is_some() {
        return page(403, "Forbidden");
    }
    let ttl = req
        .header(TTL_HEADER)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| (1..=MAX_TOKEN_TTL).contains(n));
    let Some(ttl) = ttl else {
        return page(400, "Bad Request");
    };
    let token = format!("AQAEA{}{}{}", ids::hex(), ids::hex(), ids::hex());
    state
        .tokens
        .insert(token.clone(), now + Duration::from_secs(ttl));
    text(&token).with_header(TTL_HEADER, &ttl.to_string())
}

/// The text under `/latest/` at `key`, None for 404.
fn metadata(state: &ImdsState, ec2: &Shared, key: &str, now: Instant) -> Option<String> {
    let s = ec2.state.lock();
    let eni = s.eni_of_instance(&state.instance_id);
    let role = state.role.as_ref();
    let key = key.trim_end_matches('/');
    let answer = match key {
        "meta-data" => "iam/\ninstance-id\nlocal-ipv4\nmac\nnetwork/\nplacement/".to_string(),
        "meta-data/instance-id" => state.instance_id.clone(),
        "meta-data/placement" => "availability-zone\nregion".to_string(),
        "meta-data/placement/region" => state.region.clone(),
        "meta-data/placement/availability-zone" => format!("{}a", state.region),
        "meta-data/local-ipv4" => eni?.1.primary.clone(),
        "meta-data/mac" => eni?.1.mac.clone(),
        "meta-data/network" => "interfaces/".to_string(),
        "meta-data/network/interfaces" => "macs/".to_string(),
        "meta-data/network/interfaces/macs" => format!("{}/", eni?.1.mac),
        "meta-data/iam" => "security-credentials/".to_string(),
        "meta-data/iam/security-credentials" => role?.name.clone(),
        "dynamic/instance-identity/document" => {
            let (_, e) = eni?;
            serde_json::json!({
                "accountId": super::OWNER_ID,
                "availabilityZone": format!("{}a", state.region),
                "instanceId": state.instance_id,
                "privateIp": e.primary,
                "region": state.region,
                "version": "2017-09-30",
            })
            .to_string()
        }
        other => {
            if let Some(name) = other.strip_prefix("meta-data/iam/security-credentials/") {
                let role = role.filter(|r| r.name == name)?;
                return Some(credentials_json(role));
            }
            let rest = other.strip_prefix("meta-data/network/interfaces/macs/")?;
            let (eni_id, e) = eni?;
            let (mac, item) = rest.split_once('/').unwrap_or((rest, ""));
            if !mac.eq_ignore_ascii_case(&e.mac) {
                return None;
            }
            match item {
                "" => "interface-id\nlocal-ipv4s\nmac".to_string(),
                "interface-id" => eni_id.to_string(),
                "local-ipv4s" => s.imds_ips(eni_id, now).join("\n"),
                "mac" => e.mac.clone(),
                _ => return None,
            }
        }
    };
    Some(answer)
}

/// The credentials document, laid out as AWS's IAM-roles page shows it.
fn credentials_json(role: &Role) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "{{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : {},\n  \"Type\" : \"AWS-HMAC\",\n  \
         \"AccessKeyId\" : {},\n  \"SecretAccessKey\" : {},\n  \"Token\" : {},\n  \"Expiration\" : {}\n}}",
        q(&clock::iso8601_z(role.last_updated)),
        q(&role.access_key_id),
        q(&role.secret),
        q(&role.token),
        q(&clock::iso8601_z(role.expiration)),
    )
}

fn text(body: &str) -> Response {
    Response {
        status: 200,
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: body.as_bytes().to_vec(),
    }
}

/// The small HTML page IMDS answers its errors with.
fn page(status: u16, title: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<html><head><title>{status} - {title}</title></head>\
         <body><h1>{status} - {title}</h1></body></html>\n"
    );
    Response {
        status,
        headers: vec![("Content-Type".into(), "text/html".into())],
        body: body.into_bytes(),
    }
}
