//! A mock of cloudscale.ch's API, as far as floaty uses it: floating IPs
//! and servers, Bearer tokens, Django-REST-framework-style error bodies.
//!
//! It is strict where a lenient mock would hide client bugs: floating IPs
//! are found only under their RFC 5952 form (`2001:db8::1`, never
//! `2001:0db8:0:0::1`), a PATCH with a body must say it is JSON, and an
//! unknown server is a field error, as the real API answers.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fault::{self, Fault, FaultRule};
use crate::http::{lock, percent_decode, Handler, RawRequest, Reply, Response, Served, Watched};
use crate::Request;

const CREATED_AT: &str = "2024-01-01T00:00:00.000000Z";

/// Everything the mock knows, readable by [`Cloudscale::wait_for`]
/// predicates.
#[derive(Debug, Default)]
pub struct State {
    servers: BTreeMap<String, String>,
    floating_ips: BTreeMap<String, Option<String>>,
    /// token → may write
    tokens: HashMap<String, bool>,
    requests: Vec<Request>,
    patches: HashMap<String, usize>,
    generation: u64,
    fault: Option<FaultRule>,
}

impl State {
    /// The server UUID `ip` points at (None: unassigned or unknown address).
    pub fn server_of(&self, ip: &str) -> Option<&str> {
        self.floating_ips.get(&canonical(ip))?.as_deref()
    }

    /// Every floating IP and the server it points at, sorted by address.
    pub fn floating_ips(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.floating_ips
            .iter()
            .map(|(ip, s)| (ip.as_str(), s.as_deref()))
    }

    /// The request log, oldest first.
    pub fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// PATCH requests received for `ip`, whatever they were answered with
    /// (faults included): "did the client try to write?".
    pub fn patch_count(&self, ip: &str) -> usize {
        self.patches.get(&canonical(ip)).copied().unwrap_or(0)
    }

    /// Bumped on every change of where an address points; lets watchers
    /// notice changes without diffing.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// Addresses are keyed by their RFC 5952 text when they parse.
fn canonical(ip: &str) -> String {
    ip.parse::<IpAddr>()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| ip.to_string())
}

struct Shared {
    state: Watched<State>,
    base_url: Mutex<String>,
}

/// A running mock; clones share it, and it stops when the last clone is
/// dropped.
#[derive(Clone)]
pub struct Cloudscale {
    shared: Arc<Shared>,
    served: Arc<Served>,
}

impl std::fmt::Debug for Cloudscale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloudscale")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Cloudscale {
    /// Starts on `127.0.0.1` and a free port; `token` may read and write.
    pub fn start(token: &str) -> io::Result<Cloudscale> {
        Cloudscale::try_start_on(TcpListener::bind("127.0.0.1:0")?, token)
    }

    /// Serves on a listener the caller bound (inside a network namespace,
    /// on a fixed port, ...).
    ///
    /// # Panics
    /// Only if the listener has no local address or no thread can be
    /// spawned; [`Cloudscale::try_start_on`] reports those instead.
    pub fn start_on(listener: TcpListener, token: &str) -> Cloudscale {
        match Cloudscale::try_start_on(listener, token) {
            Ok(mock) => mock,
            Err(e) => panic!("cannot start the cloudscale mock: {e}"),
        }
    }

    pub fn try_start_on(listener: TcpListener, token: &str) -> io::Result<Cloudscale> {
        Cloudscale::serve(listener, token, false)
    }

    /// Like [`Cloudscale::start`], over HTTPS: the certificate comes from a
    /// CA made for this mock alone, whose PEM [`Cloudscale::ca_pem`] gives
    /// (what floaty's `ca-file` should hold). Faults and the request log
    /// work as in the clear.
    pub fn start_tls(token: &str) -> io::Result<Cloudscale> {
        Cloudscale::try_start_tls_on(TcpListener::bind("127.0.0.1:0")?, token)
    }

    /// [`Cloudscale::start_tls`] on a listener the caller bound; the
    /// certificate also names the listener's address.
    pub fn try_start_tls_on(listener: TcpListener, token: &str) -> io::Result<Cloudscale> {
        Cloudscale::serve(listener, token, true)
    }

    fn serve(listener: TcpListener, token: &str, tls: bool) -> io::Result<Cloudscale> {
        let shared = Arc::new(Shared {
            state: Watched::new(State::default()),
            base_url: Mutex::new(String::new()),
        });
        shared.state.lock().tokens.insert(token.to_string(), true);
        let api = Arc::new(Api(Arc::clone(&shared)));
        let served = if tls {
            Served::start_tls(listener, api)?
        } else {
            Served::start(listener, api)?
        };
        *lock(&shared.base_url) = served.url();
        Ok(Cloudscale {
            shared,
            served: Arc::new(served),
        })
    }

    /// Also serves `listener` (say, bound inside another network namespace)
    /// from the same state: every node of a lab sees one API. Its URL is
    /// `http://{listener's address}/`; [`Cloudscale::url`] stays the first.
    ///
    /// # Panics
    /// If no thread can be spawned.
    pub fn also_listen(&self, listener: TcpListener) {
        self.served.also_listen(listener);
    }

    /// Base URL, ending with `/`: what `cloudscale.endpoint` should be.
    pub fn url(&self) -> String {
        self.served.url()
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.served.addr()
    }

    /// The PEM of the CA behind the HTTPS certificate ([`Cloudscale::start_tls`]);
    /// None for a mock in the clear.
    pub fn ca_pem(&self) -> Option<String> {
        self.served.ca_pem()
    }

    /// Accepts another token; a read-only one gets 403 on PATCH, as a real
    /// read-only API token does.
    pub fn add_token(&self, token: &str, read_write: bool) {
        self.shared.state.change(|s| {
            s.tokens.insert(token.to_string(), read_write);
        });
    }

    /// Revokes a token: from now on it gets 401, as a deleted API token does.
    pub fn revoke_token(&self, token: &str) {
        self.shared.state.change(|s| {
            s.tokens.remove(token);
        });
    }

    pub fn add_server(&self, uuid: &str, name: &str) {
        self.shared.state.change(|s| {
            s.servers.insert(uuid.to_string(), name.to_string());
        });
    }

    /// `ip` is a host address; its network is `ip/32` or `ip/128`.
    pub fn add_floating_ip(&self, ip: &str, server: Option<&str>) {
        self.shared.state.change(|s| {
            s.floating_ips
                .insert(canonical(ip), server.map(str::to_string));
            s.generation += 1;
        });
    }

    pub fn server_of(&self, ip: &str) -> Option<String> {
        self.shared.state.lock().server_of(ip).map(str::to_string)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.state.lock().requests.clone()
    }

    pub fn patch_count(&self, ip: &str) -> usize {
        self.shared.state.lock().patch_count(ip)
    }

    /// Runs `f` on the state under the lock (for reads the helpers miss).
    pub fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.shared.state.lock())
    }

    /// Waits until `pred` holds, re-checking after every request and state
    /// change; false on timeout.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&State) -> bool) -> bool {
        self.shared.state.wait_until(timeout, None, |s| pred(s))
    }

    /// Every request from now on suffers `fault` (until replaced;
    /// `Fault::None` clears).
    pub fn set_fault(&self, fault: Fault) {
        self.set_fault_rule(fault, None, None);
    }

    /// Only the next `times` requests suffer `fault`.
    pub fn set_fault_times(&self, fault: Fault, times: usize) {
        self.set_fault_rule(fault, Some(times), None);
    }

    /// Only requests with `method` (`"PATCH"`, `"GET"`) suffer `fault`, for
    /// the next `times` of them or (None) until replaced.
    pub fn set_fault_on(&self, method: &str, fault: Fault, times: Option<usize>) {
        self.set_fault_rule(fault, times, Some(method));
    }

    pub fn clear_fault(&self) {
        self.set_fault(Fault::None);
    }

    fn set_fault_rule(&self, fault: Fault, times: Option<usize>, method: Option<&str>) {
        self.shared
            .state
            .change(|s| s.fault = FaultRule::new(fault, times, method));
    }
}

struct Api(Arc<Shared>);

impl Handler for Api {
    fn handle(&self, req: RawRequest) -> Reply {
        let at = Instant::now();
        let base = lock(&self.0.base_url).clone();
        let (path, query) = match req.target.split_once('?') {
            Some((p, q)) => (percent_decode(p), Some(q.to_string())),
            None => (percent_decode(&req.target), None),
        };
        let mut state = self.0.state.lock();
        if let Some(control) = path.strip_prefix("/_mock/") {
            let response = control_api(&mut state, &req, control);
            drop(state);
            self.0.state.notify();
            return Reply::now(response);
        }
        let fault = fault::take(&mut state.fault, &req.method);
        let reply = fault::apply(fault, || route(&mut state, &base, &req, &path));
        if req.method == "PATCH" {
            if let Some(ip) = path.trim_end_matches('/').strip_prefix("/v1/floating-ips/") {
                *state.patches.entry(canonical(ip)).or_insert(0) += 1;
            }
        }
        Request::new(&req, path, query, at, reply.status()).log(&mut state.requests);
        drop(state);
        self.0.state.notify();
        reply
    }
}

/// Test-only controls under `/_mock/`, never faulted nor logged, so that
/// tests driving the binary (another process) can do what library users do
/// with methods:
/// - `GET /_mock/state` → `{"floating_ips": {ip: uuid|null}, "patches": {ip: n}, "requests": n}`
/// - `PUT /_mock/fault` with a fault description (see `rule_from_json`)
/// - `PUT /_mock/floating-ips/{ip}` with `{"server": uuid|null}`: move an
///   address behind the client's back (another node, the web console).
fn control_api(state: &mut State, req: &RawRequest, path: &str) -> Response {
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(_) if req.body.is_empty() => Value::Null,
        Err(e) => return Response::detail(400, &format!("JSON parse error - {e}")),
    };
    match (req.method.as_str(), path) {
        ("GET", "state") => {
            let ips: serde_json::Map<String, Value> = state
                .floating_ips
                .iter()
                .map(|(ip, s)| (ip.clone(), json!(s)))
                .collect();
            Response::json(
                200,
                &json!({"floating_ips": ips, "patches": state.patches, "requests": state.requests.len()}),
            )
        }
        ("PUT", "fault") => match fault::rule_from_json(&body) {
            Ok(rule) => {
                state.fault = rule;
                Response::empty(204)
            }
            Err(e) => Response::detail(400, &e),
        },
        ("PUT", p) if p.starts_with("floating-ips/") => {
            let ip = canonical(p.trim_start_matches("floating-ips/"));
            let server = body
                .get("server")
                .and_then(Value::as_str)
                .map(str::to_string);
            state.floating_ips.insert(ip, server);
            state.generation += 1;
            Response::empty(204)
        }
        _ => Response::detail(404, "Not found."),
    }
}

fn route(state: &mut State, base: &str, req: &RawRequest, path: &str) -> Reply {
    Reply::now(api(state, base, req, path))
}

fn api(state: &mut State, base: &str, req: &RawRequest, path: &str) -> Response {
    let Some(rest) = path.strip_prefix("/v1/") else {
        return Response::detail(404, "Not found.");
    };
    let may_write = match authenticate(state, req) {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let method = req.method.as_str();
    let get = method == "GET" || method == "HEAD";
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        ["floating-ips"] if get => {
            let list: Vec<Value> = state
                .floating_ips
                .iter()
                .map(|(ip, server)| floating_ip_json(state, base, ip, server.as_deref()))
                .collect();
            Response::json(200, &Value::Array(list))
        }
        ["floating-ips"] => not_allowed(method, "GET, POST, HEAD, OPTIONS"),
        ["floating-ips", ip] => {
            let allow = "GET, PUT, PATCH, DELETE, HEAD, OPTIONS";
            if !get && method != "PATCH" {
                return not_allowed(method, allow);
            }
            let Some(server) = state.floating_ips.get(*ip).cloned() else {
                return Response::detail(404, "Not found.");
            };
            if get {
                return Response::json(200, &floating_ip_json(state, base, ip, server.as_deref()));
            }
            if !may_write {
                return Response::detail(403, "You do not have permission to perform this action.");
            }
            patch_floating_ip(state, req, ip)
        }
        ["servers"] if get => {
            let list: Vec<Value> = state
                .servers
                .iter()
                .map(|(uuid, name)| server_json(base, uuid, name))
                .collect();
            Response::json(200, &Value::Array(list))
        }
        ["servers"] => not_allowed(method, "GET, POST, HEAD, OPTIONS"),
        ["servers", uuid] => {
            if !get {
                return not_allowed(method, "GET, PUT, PATCH, DELETE, HEAD, OPTIONS");
            }
            match state.servers.get(*uuid) {
                Some(name) => Response::json(200, &server_json(base, uuid, name)),
                None => Response::detail(404, "Not found."),
            }
        }
        _ => Response::detail(404, "Not found."),
    }
}

/// Django REST framework's TokenAuthentication, keyword `Bearer`:
/// Ok(may write) or the 401 it would answer.
fn authenticate(state: &State, req: &RawRequest) -> Result<bool, Response> {
    let unauthorized = |detail: &str| {
        Err(Response::detail(401, detail).with_header("WWW-Authenticate", "Bearer realm=\"api\""))
    };
    let header = req.header("authorization").unwrap_or_default();
    let mut words = header.split_ascii_whitespace();
    match words.next() {
        Some(k) if k.eq_ignore_ascii_case("bearer") => {}
        _ => return unauthorized("Authentication credentials were not provided."),
    }
    let Some(token) = words.next() else {
        return unauthorized("Invalid token header. No credentials provided.");
    };
    if words.next().is_some() {
        return unauthorized("Invalid token header. Token string should not contain spaces.");
    }
    match state.tokens.get(token) {
        Some(w) => Ok(*w),
        None => unauthorized("Invalid token."),
    }
}

fn not_allowed(method: &str, allow: &str) -> Response {
    Response::detail(405, &format!("Method \"{method}\" not allowed.")).with_header("Allow", allow)
}

fn patch_floating_ip(state: &mut State, req: &RawRequest, ip: &str) -> Response {
    let data: Value = if req.body.is_empty() {
        json!({})
    } else {
        let content_type = req.header("content-type").unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return Response::detail(
                415,
                &format!("Unsupported media type \"{content_type}\" in request."),
            );
        }
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => return Response::detail(400, &format!("JSON parse error - {e}")),
        }
    };
    let Some(fields) = data.as_object() else {
        return Response::json(
            400,
            &json!({"non_field_errors": ["Invalid data. Expected a dictionary."]}),
        );
    };
    match fields.get("server") {
        None => Response::empty(204),
        Some(Value::Null) => {
            Response::json(400, &json!({"server": ["This field may not be null."]}))
        }
        Some(Value::String(uuid)) if state.servers.contains_key(uuid) => {
            state
                .floating_ips
                .insert(ip.to_string(), Some(uuid.clone()));
            state.generation += 1;
            Response::empty(204)
        }
        Some(Value::String(uuid)) => Response::json(
            400,
            &json!({"server": [format!("Object with uuid={uuid} does not exist.")]}),
        ),
        Some(_) => Response::json(
            400,
            &json!({"server": ["Incorrect type. Expected pk value."]}),
        ),
    }
}

fn server_json(base: &str, uuid: &str, name: &str) -> Value {
    json!({
        "href": format!("{base}v1/servers/{uuid}"),
        "uuid": uuid,
        "name": name,
        "status": "running",
        "zone": {"slug": "lpg1"},
        "flavor": {"slug": "flex-4-2", "name": "Flex-4-2", "vcpu_count": 2, "memory_gb": 4},
        "image": {"slug": "debian-12", "name": "Debian 12", "operating_system": "Debian"},
        "volumes": [],
        "interfaces": [],
        "ssh_fingerprints": [],
        "ssh_host_keys": [],
        "anti_affinity_with": [],
        "server_groups": [],
        "tags": {},
        "created_at": CREATED_AT,
    })
}

fn floating_ip_json(state: &State, base: &str, ip: &str, server: Option<&str>) -> Value {
    let v6 = ip.contains(':');
    let server = server.map(|uuid| {
        json!({
            "href": format!("{base}v1/servers/{uuid}"),
            "uuid": uuid,
            "name": state.servers.get(uuid).map(String::as_str).unwrap_or(""),
        })
    });
    json!({
        "href": format!("{base}v1/floating-ips/{ip}"),
        "created_at": CREATED_AT,
        "network": format!("{ip}/{}", if v6 { 128 } else { 32 }),
        "ip_version": if v6 { 6 } else { 4 },
        "next_hop": if v6 { "2001:db8:ffff::1" } else { "203.0.113.1" },
        "server": server,
        "load_balancer": null,
        "type": "regional",
        "region": {"slug": "lpg"},
        "reverse_ptr": format!("{ip}.cust.cloudscale.ch"),
        "tags": {},
    })
}
