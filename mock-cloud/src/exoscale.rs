//! A mock of Exoscale's API v2, as far as floaty uses it: Elastic IPs,
//! instances, asynchronous operations, EXO2-HMAC-SHA256 signatures.
//!
//! Strict where a lenient mock would hide client bugs: every request's
//! signature is rebuilt from the bytes received and compared in constant
//! time (403 `{"message":"Invalid request signature"}` on a mismatch or an
//! expired one); a body must be declared JSON; attach and detach change
//! nothing until their operation has stayed `pending` for the configured
//! moment; attaching what is attached (or detaching what is not) is
//! refused with 400 (what the real API answers there is unverified, so the
//! client must cope either way).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::hmac;
use serde_json::{json, Value};

use crate::fault::{self, Fault, FaultRule};
use crate::http::{
    percent_decode, query_pairs, Handler, RawRequest, Reply, Response, Served, Watched,
};
use crate::Request;

/// How long operations stay `pending` unless told otherwise.
pub const DEFAULT_OPERATION_DELAY: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
struct Operation {
    id: String,
    done_at: Instant,
    /// What happens at completion: (attach?, eip, instance).
    change: (bool, String, String),
    fail: bool,
    /// Set once the change has been applied (or refused at completion).
    state: &'static str,
    reason: Option<String>,
}

/// Everything the mock knows, readable by [`Exoscale::wait_for`] predicates.
#[derive(Debug, Default)]
pub struct State {
    /// key → secret
    keys: HashMap<String, String>,
    /// instance id → name
    instances: BTreeMap<String, String>,
    /// Elastic IP id → (address, instances it is attached to)
    eips: BTreeMap<String, (IpAddr, BTreeSet<String>)>,
    operations: HashMap<String, Operation>,
    next_id: u64,
    op_delay: Duration,
    /// This many next operations end in `failure`.
    failing_ops: usize,
    requests: Vec<Request>,
    mutations: usize,
    generation: u64,
    fault: Option<FaultRule>,
}

impl State {
    /// The instances the Elastic IP with address `ip` is attached to.
    pub fn holders(&self, ip: &str) -> Vec<String> {
        let Ok(ip) = ip.parse::<IpAddr>() else {
            return Vec::new();
        };
        self.eips
            .values()
            .find(|(a, _)| *a == ip)
            .map(|(_, set)| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The request log, oldest first.
    pub fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// Attach and detach requests received, whatever they were answered with.
    pub fn mutations(&self) -> usize {
        self.mutations
    }

    /// Bumped whenever an attachment changes.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Applies every operation whose time has come.
    fn settle(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .operations
            .values()
            .filter(|o| o.state == "pending" && o.done_at <= now)
            .map(|o| o.id.clone())
            .collect();
        for id in due {
            let Some(op) = self.operations.get(&id).cloned() else {
                continue;
            };
            let (state, reason) = if op.fail {
                ("failure", Some("internal error (injected)".to_string()))
            } else {
                let (attach, eip, instance) = &op.change;
                match self.eips.get_mut(eip) {
                    Some((_, set)) => {
                        if *attach {
                            set.insert(instance.clone());
                        } else {
                            set.remove(instance);
                        }
                        self.generation += 1;
                        ("success", None)
                    }
                    None => ("failure", Some("Elastic IP vanished".to_string())),
                }
            };
            if let Some(o) = self.operations.get_mut(&id) {
                o.state = state;
                o.reason = reason;
            }
        }
    }

    fn new_id(&mut self, prefix: u32) -> String {
        self.next_id += 1;
        format!("{prefix:08x}-0000-4000-8000-{:012x}", self.next_id)
    }
}

struct Shared {
    state: Watched<State>,
}

/// A running mock; clones share it, and it stops when the last clone is
/// dropped.
#[derive(Clone)]
pub struct Exoscale {
    shared: Arc<Shared>,
    served: Arc<Served>,
}

impl std::fmt::Debug for Exoscale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exoscale")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Exoscale {
    /// Starts on `127.0.0.1` and a free port, accepting `key` with `secret`.
    pub fn start(key: &str, secret: &str) -> io::Result<Exoscale> {
        Exoscale::start_on(TcpListener::bind("127.0.0.1:0")?, key, secret)
    }

    pub fn start_on(listener: TcpListener, key: &str, secret: &str) -> io::Result<Exoscale> {
        Exoscale::serve(listener, key, secret, false)
    }

    /// Like [`Exoscale::start`], over HTTPS with a certificate from a CA
    /// made for this mock alone ([`Exoscale::ca_pem`]).
    pub fn start_tls(key: &str, secret: &str) -> io::Result<Exoscale> {
        Exoscale::start_tls_on(TcpListener::bind("127.0.0.1:0")?, key, secret)
    }

    /// [`Exoscale::start_tls`] on a listener the caller bound.
    pub fn start_tls_on(listener: TcpListener, key: &str, secret: &str) -> io::Result<Exoscale> {
        Exoscale::serve(listener, key, secret, true)
    }

    fn serve(listener: TcpListener, key: &str, secret: &str, tls: bool) -> io::Result<Exoscale> {
        let shared = Arc::new(Shared {
            state: Watched::new(State {
                op_delay: DEFAULT_OPERATION_DELAY,
                ..State::default()
            }),
        });
        shared
            .state
            .lock()
            .keys
            .insert(key.to_string(), secret.to_string());
        let api = Arc::new(Api(Arc::clone(&shared)));
        let served = if tls {
            Served::start_tls(listener, api)?
        } else {
            Served::start(listener, api)?
        };
        Ok(Exoscale {
            shared,
            served: Arc::new(served),
        })
    }

    /// Also serves `listener` (say, inside a network namespace) from the
    /// same state.
    ///
    /// # Panics
    /// If no thread can be spawned.
    pub fn also_listen(&self, listener: TcpListener) {
        self.served.also_listen(listener);
    }

    /// The API base URL, `http://127.0.0.1:PORT/v2`: what `exoscale.endpoint`
    /// should be.
    pub fn url(&self) -> String {
        format!("{}v2", self.served.url())
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.served.addr()
    }

    /// The PEM of the CA behind the HTTPS certificate ([`Exoscale::start_tls`]);
    /// None for a mock in the clear.
    pub fn ca_pem(&self) -> Option<String> {
        self.served.ca_pem()
    }

    pub fn add_instance(&self, id: &str, name: &str) {
        self.shared.state.change(|s| {
            s.instances.insert(id.to_string(), name.to_string());
        });
    }

    /// Adds `n` more instances named `filler-N`, attached to nothing.
    pub fn add_filler_instances(&self, n: usize) {
        self.shared.state.change(|s| {
            for i in 0..n {
                let id = s.new_id(0xf111);
                s.instances.insert(id, format!("filler-{i}"));
            }
        });
    }

    /// Adds an Elastic IP with address `ip`, attached to `holders`; returns
    /// its id.
    ///
    /// # Panics
    /// If `ip` is not an address (a test bug).
    pub fn add_elastic_ip(&self, ip: &str, holders: &[&str]) -> String {
        let addr: IpAddr = ip
            .parse()
            .unwrap_or_else(|_| panic!("not an address: {ip}"));
        let mut id = String::new();
        self.shared.state.change(|s| {
            id = s.new_id(0xe1a5);
            let set = holders.iter().map(|h| h.to_string()).collect();
            s.eips.insert(id.clone(), (addr, set));
            s.generation += 1;
        });
        id
    }

    /// Deletes the Elastic IP with address `ip`.
    pub fn remove_elastic_ip(&self, ip: &str) {
        let Ok(addr) = ip.parse::<IpAddr>() else {
            return;
        };
        self.shared.state.change(|s| {
            s.eips.retain(|_, (a, _)| *a != addr);
            s.generation += 1;
        });
    }

    /// Attaches or detaches behind the client's back (another node, the
    /// web console).
    pub fn set_holders(&self, ip: &str, holders: &[&str]) {
        let Ok(addr) = ip.parse::<IpAddr>() else {
            return;
        };
        self.shared.state.change(|s| {
            if let Some((_, set)) = s.eips.values_mut().find(|(a, _)| *a == addr) {
                *set = holders.iter().map(|h| h.to_string()).collect();
                s.generation += 1;
            }
        });
    }

    pub fn holders(&self, ip: &str) -> Vec<String> {
        let mut s = self.shared.state.lock();
        s.settle();
        s.holders(ip)
    }

    /// How long attach/detach operations stay `pending`.
    pub fn set_operation_delay(&self, d: Duration) {
        self.shared.state.change(|s| s.op_delay = d);
    }

    /// The next `n` operations end in `failure`.
    pub fn fail_operations(&self, n: usize) {
        self.shared.state.change(|s| s.failing_ops = n);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.state.lock().requests.clone()
    }

    pub fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        let mut s = self.shared.state.lock();
        s.settle();
        f(&s)
    }

    /// Waits until `pred` holds, re-checking after every request and state
    /// change; false on timeout.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&State) -> bool) -> bool {
        // Pending operations complete by the clock, not by an event.
        let poll = Some(Duration::from_millis(20));
        self.shared.state.wait_until(timeout, poll, |s| {
            s.settle();
            pred(s)
        })
    }

    pub fn set_fault(&self, fault: Fault) {
        self.shared
            .state
            .change(|s| s.fault = FaultRule::new(fault, None, None));
    }

    pub fn set_fault_times(&self, fault: Fault, times: usize) {
        self.shared
            .state
            .change(|s| s.fault = FaultRule::new(fault, Some(times), None));
    }

    pub fn set_fault_on(&self, method: &str, fault: Fault, times: Option<usize>) {
        self.shared
            .state
            .change(|s| s.fault = FaultRule::new(fault, times, Some(method)));
    }

    pub fn clear_fault(&self) {
        self.set_fault(Fault::None);
    }
}

struct Api(Arc<Shared>);

impl Handler for Api {
    fn handle(&self, req: RawRequest) -> Reply {
        let at = Instant::now();
        let (raw_path, query) = match req.target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (req.target.clone(), None),
        };
        let path = percent_decode(&raw_path);
        let mut state = self.0.state.lock();
        state.settle();
        if path == "/_mock/state" {
            let eips: serde_json::Map<String, Value> = state
                .eips
                .values()
                .map(|(ip, set)| (ip.to_string(), json!(set)))
                .collect();
            let body = json!({"elastic_ips": eips, "requests": state.requests.len()});
            return Reply::now(Response::json(200, &body));
        }
        let fault = fault::take(&mut state.fault, &req.method);
        let reply = fault::apply(fault, || {
            route(&mut state, &req, &raw_path, &path, query.as_deref())
        });
        if req.method == "PUT" && (path.ends_with(":attach") || path.ends_with(":detach")) {
            state.mutations += 1;
        }
        Request::new(&req, path, query, at, reply.status()).log(&mut state.requests);
        drop(state);
        self.0.state.notify();
        reply
    }
}

fn message(status: u16, text: &str) -> Response {
    Response::json(status, &json!({ "message": text }))
}

fn route(
    state: &mut State,
    req: &RawRequest,
    raw_path: &str,
    path: &str,
    query: Option<&str>,
) -> Reply {
    Reply::now(api(state, req, raw_path, path, query))
}

/// Checks the `Authorization` header the way the API does; the error
/// response when it fails.
fn authenticate(
    state: &State,
    req: &RawRequest,
    raw_path: &str,
    query: Option<&str>,
) -> Result<(), Response> {
    let invalid = || Err(message(403, "Invalid request signature"));
    let Some(header) = req.header("authorization") else {
        return Err(message(401, "Missing Authorization header"));
    };
    let Some(rest) = header.strip_prefix("EXO2-HMAC-SHA256 ") else {
        return Err(message(401, "Unsupported authorization scheme"));
    };
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for part in rest.split(',') {
        let Some((name, value)) = part.split_once('=') else {
            return invalid();
        };
        fields.insert(name, value);
    }
    let (Some(key), Some(expires), Some(signature)) = (
        fields.get("credential"),
        fields.get("expires"),
        fields.get("signature"),
    ) else {
        return invalid();
    };
    let Some(secret) = state.keys.get(*key) else {
        return invalid();
    };
    let Ok(expires_at) = expires.parse::<u64>() else {
        return invalid();
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if expires_at < now {
        return invalid();
    }
    // The query values in the order `signed-query-args` names them, and
    // every query argument must be signed.
    let pairs = query_pairs(query);
    let names: Vec<&str> = fields
        .get("signed-query-args")
        .map(|s| s.split(';').filter(|n| !n.is_empty()).collect())
        .unwrap_or_default();
    let mut sorted_names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
    sorted_names.sort_unstable();
    sorted_names.dedup();
    if names != sorted_names {
        return invalid();
    }
    let mut values = String::new();
    for name in &names {
        for (n, v) in &pairs {
            if n == name {
                values.push_str(v);
            }
        }
    }
    let mut msg = format!("{} {}\n", req.method, raw_path).into_bytes();
    msg.extend_from_slice(&req.body);
    msg.extend_from_slice(format!("\n{values}\n\n{expires}").as_bytes());
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature) else {
        return invalid();
    };
    let k = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    if hmac::verify(&k, &msg, &given).is_err() {
        return invalid();
    }
    Ok(())
}

fn api(
    state: &mut State,
    req: &RawRequest,
    raw_path: &str,
    path: &str,
    query: Option<&str>,
) -> Response {
    let Some(rest) = path.strip_prefix("/v2/") else {
        return message(404, "Not found");
    };
    if let Err(resp) = authenticate(state, req, raw_path, query) {
        return resp;
    }
    let method = req.method.as_str();
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["elastic-ip"]) => {
            let list: Vec<Value> = state
                .eips
                .iter()
                .map(|(id, (ip, _))| eip_json(id, ip))
                .collect();
            Response::json(200, &json!({ "elastic-ips": list }))
        }
        ("GET", ["elastic-ip", id]) => match state.eips.get(*id) {
            Some((ip, _)) => Response::json(200, &eip_json(id, ip)),
            None => message(404, &format!("Elastic IP {id} not found")),
        },
        ("PUT", ["elastic-ip", action]) => {
            let (id, attach) = if let Some(id) = action.strip_suffix(":attach") {
                (id, true)
            } else if let Some(id) = action.strip_suffix(":detach") {
                (id, false)
            } else {
                return message(404, "Not found");
            };
            start_operation(state, req, id, attach)
        }
        ("GET", ["instance"]) => {
            let list: Vec<Value> = state
                .instances
                .iter()
                .map(|(id, name)| instance_json(id, name, None))
                .collect();
            Response::json(200, &json!({ "instances": list }))
        }
        ("GET", ["instance", id]) => match state.instances.get(*id) {
            Some(name) => {
                let eips: Vec<Value> = state
                    .eips
                    .iter()
                    .filter(|(_, (_, set))| set.contains(*id))
                    .map(|(eip, _)| json!({ "id": eip }))
                    .collect();
                Response::json(200, &instance_json(id, name, Some(eips)))
            }
            None => message(404, &format!("Instance {id} not found")),
        },
        ("GET", ["operation", id]) => match state.operations.get(*id) {
            Some(op) => Response::json(200, &operation_json(op)),
            None => message(404, &format!("Operation {id} not found")),
        },
        (_, ["elastic-ip" | "instance" | "operation", ..]) => message(405, "Method not allowed"),
        _ => message(404, "Not found"),
    }
}

fn start_operation(state: &mut State, req: &RawRequest, eip: &str, attach: bool) -> Response {
    let content_type = req.header("content-type").unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return message(415, &format!("Unsupported media type \"{content_type}\""));
    }
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => return message(400, &format!("Invalid JSON: {e}")),
    };
    let Some(instance) = body
        .get("instance")
        .and_then(|i| i.get("id"))
        .and_then(Value::as_str)
    else {
        return message(400, "Missing instance.id");
    };
    let Some((_, holders)) = state.eips.get(eip) else {
        return message(404, &format!("Elastic IP {eip} not found"));
    };
    if !state.instances.contains_key(instance) {
        return message(404, &format!("Instance {instance} not found"));
    }
    if attach && holders.contains(instance) {
        return message(400, "Elastic IP is already attached to this instance");
    }
    if !attach && !holders.contains(instance) {
        return message(400, "Elastic IP is not attached to this instance");
    }
    let id = state.new_id(0x0be7);
    let fail = state.failing_ops > 0;
    state.failing_ops = state.failing_ops.saturating_sub(1);
    let op = Operation {
        id: id.clone(),
        done_at: Instant::now() + state.op_delay,
        change: (attach, eip.to_string(), instance.to_string()),
        fail,
        state: "pending",
        reason: None,
    };
    let answer = operation_json(&op);
    state.operations.insert(id, op);
    // A zero delay still answers `pending`: the client must poll.
    Response::json(200, &answer)
}

fn operation_json(op: &Operation) -> Value {
    let mut v = json!({
        "id": op.id,
        "state": op.state,
        "reference": {"id": op.change.1, "link": format!("/v2/elastic-ip/{}", op.change.1), "command": "elastic-ip"},
        "message": "",
    });
    if let Some(r) = &op.reason {
        v["reason"] = json!(r);
        v["message"] = json!(r);
    }
    v
}

fn eip_json(id: &str, ip: &IpAddr) -> Value {
    json!({
        "id": id,
        "ip": ip.to_string(),
        "addressfamily": if ip.is_ipv6() { "inet6" } else { "inet4" },
        "cidr": format!("{ip}/{}", if ip.is_ipv6() { 128 } else { 32 }),
        "description": "",
        "labels": {},
    })
}

fn instance_json(id: &str, name: &str, eips: Option<Vec<Value>>) -> Value {
    let mut v = json!({
        "id": id,
        "name": name,
        "state": "running",
        "public-ip": "198.51.100.1",
        "instance-type": {"id": "b6cd1ff5-3a2f-4e9d-a4d1-8988c1191fe8"},
        "created-at": "2024-01-01T00:00:00Z",
    });
    if let Some(e) = eips {
        v["elastic-ips"] = json!(e);
    }
    v
}
