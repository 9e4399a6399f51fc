//! A mock of DigitalOcean's API v2, as far as floaty uses it: Reserved IPs
//! (IPv4 under `/v2/reserved_ips`, also under their old name
//! `/v2/floating_ips`, and IPv6 under `/v2/reserved_ipv6`), droplets,
//! asynchronous actions, Bearer tokens and the per-token request window
//! (`docs/cloud-apis-next.md` §2 is the contract).
//!
//! Strict where a lenient mock would hide client bugs:
//! - the path key is the address itself, and the address moves only when
//!   its action completes, after a number of polls (or, unpolled, after a
//!   few seconds); until then the reserved IP reads `locked: true`;
//! - every assign that DigitalOcean refuses with 422 is refused: to the
//!   droplet that already holds the address, to a droplet that holds
//!   another one, while an action is pending; a client that does not
//!   re-read after a 422 is caught;
//! - the terminal success status can be set to `done` (seen in 2021)
//!   instead of `completed`, so a client that waits for one word only is
//!   caught;
//! - every answer counts against its token's window and says so in the
//!   `ratelimit-*` headers; a full window is 429 with `retry-after`.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::clock;
use crate::fault::{self, Fault, FaultRule};
use crate::http::{
    is_json, lock, percent_decode, query_pairs, Handler, RawRequest, Reply, Response, Served,
    Watched,
};
use crate::ids;
use crate::ratelimit::SlidingWindow;
use crate::Request;

/// GETs of an action that answer `in-progress` before it completes,
/// unless told otherwise.
pub const DEFAULT_ACTION_POLLS: usize = 2;
/// A pending action completes by itself after this long even if nobody
/// polls, so a client that gave up does not leave the address locked.
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(5);
/// DigitalOcean's documented budget: 5000 requests per hour and token,
/// each counted for an hour on its own timer.
pub const DEFAULT_RATE_LIMIT: u64 = 5000;
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(3600);
/// What a completed action says, unless told otherwise.
pub const DEFAULT_DONE_STATUS: &str = "completed";

/// Action ids start above 2^31, as droplet ids in the tests do, so a
/// client that keeps them in 32 bits breaks at once.
const FIRST_ACTION_ID: u64 = 2_600_000_001;
/// IPv6 reserved IPs have no integer form to use as their actions'
/// `resource_id` (an IPv4 one's is the address as a number); these are
/// made up.
const FIRST_V6_RESOURCE_ID: u64 = 8_000_000_001;
/// Filler addresses come from the benchmarking range 198.18.0.0/15.
const FILLER_BASE: u32 = 0xc612_0000;
const DEFAULT_PER_PAGE: usize = 20;
const MAX_PER_PAGE: usize = 200;
/// The project of the published action example.
const PROJECT_ID: &str = "746c6152-2fa2-11ed-92d3-27aaa54e4988";
const CREATED: &str = "2024-01-01T00:00:00Z";
const ALREADY_ASSIGNED: &str = "The droplet already has a reserved IP assigned.";
/// The text doctl#493 shows, from the days the resource was a floating IP.
const PENDING_EVENT: &str = "The floating IP already has a pending event.";

/// The three paths one address can be reached under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Reserved,
    /// `/v2/floating_ips`: the old name, kept by the API (godo still has
    /// it).
    Floating,
    ReservedV6,
}

impl Family {
    fn from_segment(s: &str) -> Option<Family> {
        match s {
            "reserved_ips" => Some(Family::Reserved),
            "floating_ips" => Some(Family::Floating),
            "reserved_ipv6" => Some(Family::ReservedV6),
            _ => None,
        }
    }

    fn collection(self) -> &'static str {
        match self {
            Family::Reserved => "reserved_ips",
            Family::Floating => "floating_ips",
            Family::ReservedV6 => "reserved_ipv6",
        }
    }

    /// The root key of one object; also the actions' `resource_type`.
    fn one(self) -> &'static str {
        match self {
            Family::Reserved => "reserved_ip",
            Family::Floating => "floating_ip",
            Family::ReservedV6 => "reserved_ipv6",
        }
    }

    /// The root key of a list.
    fn many(self) -> &'static str {
        match self {
            Family::Reserved => "reserved_ips",
            Family::Floating => "floating_ips",
            Family::ReservedV6 => "reserved_ipv6s",
        }
    }

    fn v6(self) -> bool {
        self == Family::ReservedV6
    }
}

#[derive(Debug, Clone)]
struct ReservedIp {
    droplet: Option<u64>,
    resource_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    InProgress,
    /// Completed, with the word [`DigitalOcean::set_done_status`] gave at
    /// the time.
    Done(String),
    Errored,
}

#[derive(Debug, Clone)]
struct Action {
    id: u64,
    ip: IpAddr,
    kind: &'static str,
    /// Where the address points once the action completes (None:
    /// unassigned).
    target: Option<u64>,
    resource_type: &'static str,
    resource_id: u64,
    status: Status,
    /// GETs answered `in-progress` so far.
    polls: usize,
    fail: bool,
    started: SystemTime,
    started_at: Instant,
    completed: Option<SystemTime>,
}

/// Everything the mock knows, readable by [`DigitalOcean::wait_for`]
/// predicates.
#[derive(Debug)]
pub struct DigitalOceanState {
    droplets: BTreeMap<u64, String>,
    ips: BTreeMap<IpAddr, ReservedIp>,
    /// token → may write
    tokens: HashMap<String, bool>,
    actions: BTreeMap<u64, Action>,
    next_action: u64,
    next_v6_resource: u64,
    fillers: u32,
    action_polls: usize,
    action_timeout: Duration,
    failing_actions: usize,
    done_status: String,
    server_errors: usize,
    limit: u64,
    window: Duration,
    /// One window per token presented (an unknown or missing one too:
    /// DigitalOcean counts per token, and a mock that let bad requests
    /// through uncounted would hide a client hammering with them).
    windows: HashMap<String, SlidingWindow>,
    requests: Vec<Request>,
    assigns: HashMap<IpAddr, usize>,
    generation: u64,
    fault: Option<FaultRule>,
}

impl DigitalOceanState {
    fn new() -> DigitalOceanState {
        DigitalOceanState {
            droplets: BTreeMap::new(),
            ips: BTreeMap::new(),
            tokens: HashMap::new(),
            actions: BTreeMap::new(),
            next_action: FIRST_ACTION_ID,
            next_v6_resource: FIRST_V6_RESOURCE_ID,
            fillers: 0,
            action_polls: DEFAULT_ACTION_POLLS,
            action_timeout: DEFAULT_ACTION_TIMEOUT,
            failing_actions: 0,
            done_status: DEFAULT_DONE_STATUS.to_string(),
            server_errors: 0,
            limit: DEFAULT_RATE_LIMIT,
            window: DEFAULT_WINDOW,
            windows: HashMap::new(),
            requests: Vec::new(),
            assigns: HashMap::new(),
            generation: 0,
            fault: None,
        }
    }

    /// The droplet `ip` points at; None when unassigned or unknown.
    pub fn droplet_of(&self, ip: &str) -> Option<u64> {
        self.ips.get(&ip.parse::<IpAddr>().ok()?)?.droplet
    }

    /// Every reserved IP (IPv4 first) and the droplet it points at.
    pub fn reserved_ips(&self) -> impl Iterator<Item = (IpAddr, Option<u64>)> + '_ {
        self.ips.iter().map(|(ip, r)| (*ip, r.droplet))
    }

    /// The request log, oldest first.
    pub fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// Action POSTs with `"type": "assign"` received for `ip`, whatever
    /// they were answered with (faults included).
    pub fn assign_count(&self, ip: &str) -> usize {
        ip.parse::<IpAddr>()
            .ok()
            .and_then(|ip| self.assigns.get(&ip))
            .copied()
            .unwrap_or(0)
    }

    /// Actions still `in-progress`.
    pub fn pending_actions(&self) -> usize {
        self.actions
            .values()
            .filter(|a| a.status == Status::InProgress)
            .count()
    }

    /// Bumped whenever an address changes hands.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn settle(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .actions
            .values()
            .filter(|a| {
                a.status == Status::InProgress
                    && now.saturating_duration_since(a.started_at) >= self.action_timeout
            })
            .map(|a| a.id)
            .collect();
        for id in due {
            self.finish(id);
        }
    }

    /// Completes a pending action; the address moves now, and only when
    /// it did not fail.
    fn finish(&mut self, id: u64) {
        let done = self.done_status.clone();
        let Some(a) = self.actions.get_mut(&id) else {
            return;
        };
        if a.status != Status::InProgress {
            return;
        }
        a.completed = Some(SystemTime::now());
        if a.fail {
            a.status = Status::Errored;
            return;
        }
        a.status = Status::Done(done);
        let (ip, target) = (a.ip, a.target);
        if let Some(r) = self.ips.get_mut(&ip) {
            r.droplet = target;
            self.generation += 1;
        }
    }

    /// One GET of action `id`: `in-progress` `action_polls` times, then
    /// complete.
    fn poll(&mut self, id: u64) -> Option<Value> {
        let polls = self.action_polls;
        let a = self.actions.get_mut(&id)?;
        let pending = a.status == Status::InProgress;
        let ends = pending && a.polls >= polls;
        if pending && !ends {
            a.polls += 1;
        }
        if ends {
            self.finish(id);
        }
        self.actions.get(&id).map(action_json)
    }

    fn pending_on(&self, ip: IpAddr) -> Option<&Action> {
        self.actions
            .values()
            .find(|a| a.ip == ip && a.status == Status::InProgress)
    }
}

struct Shared {
    state: Watched<DigitalOceanState>,
    /// The API base as [`DigitalOcean::url`] gives it, for `links`.
    base: Mutex<String>,
}

/// A running mock; clones share it, and it stops when the last clone is
/// dropped.
#[derive(Clone)]
pub struct DigitalOcean {
    shared: Arc<Shared>,
    served: Arc<Served>,
}

impl std::fmt::Debug for DigitalOcean {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigitalOcean")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl DigitalOcean {
    /// Starts on `127.0.0.1` and a free port; `token` may read and write.
    pub fn start(token: &str) -> io::Result<DigitalOcean> {
        DigitalOcean::start_on(TcpListener::bind("127.0.0.1:0")?, token)
    }

    /// Serves on a listener the caller bound (inside a network namespace,
    /// on a fixed port, ...).
    pub fn start_on(listener: TcpListener, token: &str) -> io::Result<DigitalOcean> {
        DigitalOcean::serve(listener, token, false)
    }

    /// Like [`DigitalOcean::start`], over HTTPS with a certificate from a
    /// CA made for this mock alone ([`DigitalOcean::ca_pem`]).
    pub fn start_tls(token: &str) -> io::Result<DigitalOcean> {
        DigitalOcean::start_tls_on(TcpListener::bind("127.0.0.1:0")?, token)
    }

    /// [`DigitalOcean::start_tls`] on a listener the caller bound.
    pub fn start_tls_on(listener: TcpListener, token: &str) -> io::Result<DigitalOcean> {
        DigitalOcean::serve(listener, token, true)
    }

    fn serve(listener: TcpListener, token: &str, tls: bool) -> io::Result<DigitalOcean> {
        let shared = Arc::new(Shared {
            state: Watched::new(DigitalOceanState::new()),
            base: Mutex::new(String::new()),
        });
        shared.state.lock().tokens.insert(token.to_string(), true);
        let api = Arc::new(Api(Arc::clone(&shared)));
        let served = if tls {
            Served::start_tls(listener, api)?
        } else {
            Served::start(listener, api)?
        };
        *lock(&shared.base) = format!("{}v2", served.url());
        Ok(DigitalOcean {
            shared,
            served: Arc::new(served),
        })
    }

    /// Also serves `listener` (say, bound inside another network namespace)
    /// from the same state.
    ///
    /// # Panics
    /// If no thread can be spawned.
    pub fn also_listen(&self, listener: TcpListener) {
        self.served.also_listen(listener);
    }

    /// The API base, `http://127.0.0.1:PORT/v2` without a trailing slash,
    /// as `https://api.digitalocean.com/v2`.
    pub fn url(&self) -> String {
        format!("{}v2", self.served.url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.served.addr()
    }

    /// The PEM of the CA behind the HTTPS certificate; None in the clear.
    pub fn ca_pem(&self) -> Option<String> {
        self.served.ca_pem()
    }

    /// Accepts another token; a read-only one gets 403 `forbidden` on
    /// every POST.
    pub fn add_token(&self, token: &str, read_write: bool) {
        self.shared.state.change(|s| {
            s.tokens.insert(token.to_string(), read_write);
        });
    }

    /// From now on `token` gets 401 `unauthorized`.
    pub fn revoke_token(&self, token: &str) {
        self.shared.state.change(|s| {
            s.tokens.remove(token);
        });
    }

    pub fn add_droplet(&self, id: u64, name: &str) {
        self.shared.state.change(|s| {
            s.droplets.insert(id, name.to_string());
        });
    }

    /// Adds a reserved IP in nyc3 pointing at `droplet`: an IPv4 address
    /// is served under `/v2/reserved_ips` (and `/v2/floating_ips`), an
    /// IPv6 one under `/v2/reserved_ipv6`. Adding it again only changes
    /// where it points.
    ///
    /// # Panics
    /// If `ip` is not an address (a test bug).
    pub fn add_reserved_ip(&self, ip: &str, droplet: Option<u64>) {
        let Ok(addr) = ip.parse::<IpAddr>() else {
            panic!("not an address: {ip}");
        };
        self.shared.state.change(|s| {
            let resource_id = match addr {
                IpAddr::V4(a) => u64::from(u32::from(a)),
                IpAddr::V6(_) => {
                    s.next_v6_resource += 1;
                    s.next_v6_resource - 1
                }
            };
            s.ips
                .entry(addr)
                .and_modify(|r| r.droplet = droplet)
                .or_insert(ReservedIp {
                    droplet,
                    resource_id,
                });
            s.generation += 1;
        });
    }

    /// Adds `n` more unassigned reserved IPv4 addresses (198.18.x.y), to
    /// force a client through several pages.
    pub fn add_filler_reserved_ips(&self, n: usize) {
        self.shared.state.change(|s| {
            for _ in 0..n {
                s.fillers += 1;
                let a = Ipv4Addr::from(FILLER_BASE + s.fillers);
                s.ips.insert(
                    IpAddr::V4(a),
                    ReservedIp {
                        droplet: None,
                        resource_id: u64::from(u32::from(a)),
                    },
                );
            }
        });
    }

    pub fn droplet_of(&self, ip: &str) -> Option<u64> {
        self.with_state(|s| s.droplet_of(ip))
    }

    /// Moves `ip` behind the client's back, at once and without an action.
    pub fn set_droplet_of(&self, ip: &str, droplet: Option<u64>) {
        let Ok(addr) = ip.parse::<IpAddr>() else {
            return;
        };
        self.shared.state.change(|s| {
            if let Some(r) = s.ips.get_mut(&addr) {
                r.droplet = droplet;
                s.generation += 1;
            }
        });
    }

    /// How many GETs of an action (by either route) answer `in-progress`
    /// before the next one completes it. 0: the first GET does.
    pub fn set_action_polls(&self, n: usize) {
        self.shared.state.change(|s| s.action_polls = n);
    }

    /// How long an action stays pending when nobody polls it to the end
    /// ([`DEFAULT_ACTION_TIMEOUT`]).
    pub fn set_action_timeout(&self, timeout: Duration) {
        self.shared.state.change(|s| s.action_timeout = timeout);
    }

    /// The next `n` actions end `errored` and leave the address where it
    /// was.
    pub fn fail_actions(&self, n: usize) {
        self.shared.state.change(|s| s.failing_actions = n);
    }

    /// The status a successful action ends with: `completed` by default;
    /// `done` is what a 2021 report saw.
    pub fn set_done_status(&self, status: &str) {
        self.shared
            .state
            .change(|s| s.done_status = status.to_string());
    }

    /// The next `n` API requests (after the rate limit) answer 500
    /// `server_error`, in DigitalOcean's body with a `request_id`, which a
    /// [`Fault`] cannot give.
    pub fn set_server_errors(&self, n: usize) {
        self.shared.state.change(|s| s.server_errors = n);
    }

    /// `limit` requests per token within any `window`; every token's
    /// window starts empty again.
    pub fn set_rate_limit(&self, limit: u64, window: Duration) {
        self.shared.state.change(|s| {
            s.limit = limit;
            s.window = window;
            s.windows.clear();
        });
    }

    /// Requests `token` has left in its window now.
    pub fn rate_remaining(&self, token: &str) -> u64 {
        let mut s = self.shared.state.lock();
        let limit = s.limit;
        match s.windows.get_mut(token) {
            Some(w) => w.remaining(Instant::now()),
            None => limit,
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.state.lock().requests.clone()
    }

    pub fn assign_count(&self, ip: &str) -> usize {
        self.with_state(|s| s.assign_count(ip))
    }

    /// Runs `f` on the state under the lock (for reads the helpers miss).
    pub fn with_state<T>(&self, f: impl FnOnce(&DigitalOceanState) -> T) -> T {
        let mut s = self.shared.state.lock();
        s.settle(Instant::now());
        f(&s)
    }

    /// Waits until `pred` holds, re-checking after every request and state
    /// change (and every few milliseconds, as actions also complete by the
    /// clock); false on timeout.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&DigitalOceanState) -> bool) -> bool {
        let poll = Some(Duration::from_millis(20));
        self.shared.state.wait_until(timeout, poll, |s| {
            s.settle(Instant::now());
            pred(s)
        })
    }

    /// Every request from now on suffers `fault` (until replaced;
    /// `Fault::None` clears). Faults come before the rate limit, the token
    /// check and routing.
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
        self.shared
            .state
            .change(|s| s.fault = FaultRule::new(fault, times, method));
    }
}

struct Api(Arc<Shared>);

impl Handler for Api {
    fn handle(&self, req: RawRequest) -> Reply {
        let at = Instant::now();
        let base = lock(&self.0.base).clone();
        let (path, query) = match req.target.split_once('?') {
            Some((p, q)) => (percent_decode(p), Some(q.to_string())),
            None => (percent_decode(&req.target), None),
        };
        let mut state = self.0.state.lock();
        state.settle(at);
        if let Some(control) = path.strip_prefix("/_mock/") {
            let response = control_api(&mut state, &req, control);
            drop(state);
            self.0.state.notify();
            return Reply::now(response);
        }
        let fault = fault::take(&mut state.fault, &req.method);
        let mut remaining = None;
        let reply = fault::apply(fault, || {
            let (response, left) = answer(&mut state, &base, &req, &path, query.as_deref(), at);
            remaining = Some(left);
            Reply::now(response)
        });
        if let Some(ip) = assign_target(&req, &path) {
            *state.assigns.entry(ip).or_insert(0) += 1;
        }
        let mut logged = Request::new(&req, path, query, at, reply.status());
        logged.rate_remaining = remaining;
        logged.log(&mut state.requests);
        drop(state);
        self.0.state.notify();
        reply
    }
}

/// The address an assign POST names, if it is one.
fn assign_target(req: &RawRequest, path: &str) -> Option<IpAddr> {
    if req.method != "POST" {
        return None;
    }
    let rest = path.strip_prefix("/v2/")?.strip_suffix("/actions")?;
    let (family, ip) = rest.split_once('/')?;
    Family::from_segment(family)?;
    let body: Value = serde_json::from_slice(&req.body).ok()?;
    if body.get("type").and_then(Value::as_str) != Some("assign") {
        return None;
    }
    ip.parse().ok()
}

fn bearer(req: &RawRequest) -> Option<&str> {
    req.header("authorization")?
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
}

/// Counts the request in its token's window, answers, and adds the
/// headers every answer carries; also returns the `ratelimit-remaining`
/// sent.
fn answer(
    state: &mut DigitalOceanState,
    base: &str,
    req: &RawRequest,
    path: &str,
    query: Option<&str>,
    now: Instant,
) -> (Response, u64) {
    let rid = ids::uuid();
    let (limit, window) = (state.limit, state.window);
    let w = state
        .windows
        .entry(bearer(req).unwrap_or_default().to_string())
        .or_insert_with(|| SlidingWindow::new(limit, window));
    let taken = w.take(now);
    let reset = clock::unix_secs_at(w.oldest_expiry(now), now);
    let (response, remaining) = match taken {
        Ok(left) => (api(state, base, &rid, req, path, query), left),
        Err(wait) => {
            // Whole seconds, rounded up, never 0: a client that sleeps
            // that long must find room.
            let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            let refused = error(&rid, 429, "too_many_requests", "API rate limit exceeded.")
                .with_header("retry-after", &secs.to_string());
            (refused, 0)
        }
    };
    let response = response
        .with_header("ratelimit-limit", &limit.to_string())
        .with_header("ratelimit-remaining", &remaining.to_string())
        .with_header("ratelimit-reset", &reset.to_string())
        .with_header("x-request-id", &rid);
    (response, remaining)
}

/// DigitalOcean's error body: `id`, `message`, and the request's id.
fn error(rid: &str, status: u16, id: &str, message: &str) -> Response {
    Response::json(
        status,
        &json!({"id": id, "message": message, "request_id": rid}),
    )
}

fn not_found(rid: &str) -> Response {
    error(
        rid,
        404,
        "not_found",
        "The resource you requested could not be found.",
    )
}

fn unprocessable(rid: &str, message: &str) -> Response {
    error(rid, 422, "unprocessable_entity", message)
}

/// Test-only controls under `/_mock/`, never faulted, counted or logged:
/// - `GET /_mock/state` → `{"IP": droplet-id|null, ...}`
/// - `PUT /_mock/fault` with a fault description (see `fault::rule_from_json`)
/// - `PUT /_mock/reserved_ips/{ip}` with `{"droplet": id|null}`: move an
///   address behind the client's back.
fn control_api(state: &mut DigitalOceanState, req: &RawRequest, path: &str) -> Response {
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(_) if req.body.is_empty() => Value::Null,
        Err(e) => return error("mock", 400, "bad_request", &format!("invalid JSON: {e}")),
    };
    match (req.method.as_str(), path) {
        ("GET", "state") => {
            let map: serde_json::Map<String, Value> = state
                .reserved_ips()
                .map(|(ip, droplet)| (ip.to_string(), json!(droplet)))
                .collect();
            Response::json(200, &Value::Object(map))
        }
        ("PUT", "fault") => match fault::rule_from_json(&body) {
            Ok(rule) => {
                state.fault = rule;
                Response::empty(204)
            }
            Err(e) => error("mock", 400, "bad_request", &e),
        },
        ("PUT", p) if p.starts_with("reserved_ips/") => {
            let ip = p.trim_start_matches("reserved_ips/").parse::<IpAddr>();
            match ip.ok().and_then(|ip| state.ips.get_mut(&ip)) {
                Some(r) => {
                    r.droplet = body.get("droplet").and_then(Value::as_u64);
                    state.generation += 1;
                    Response::empty(204)
                }
                None => not_found("mock"),
            }
        }
        _ => not_found("mock"),
    }
}

fn api(
    state: &mut DigitalOceanState,
    base: &str,
    rid: &str,
    req: &RawRequest,
    path: &str,
    query: Option<&str>,
) -> Response {
    let Some(rest) = path.strip_prefix("/v2/") else {
        return not_found(rid);
    };
    if state.server_errors > 0 {
        state.server_errors -= 1;
        return error(rid, 500, "server_error", "Unexpected server-side error");
    }
    let may_write = match bearer(req).and_then(|t| state.tokens.get(t)) {
        Some(w) => *w,
        None => return error(rid, 401, "unauthorized", "Unable to authenticate you."),
    };
    let method = match req.method.as_str() {
        "HEAD" => "GET",
        m => m,
    };
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let family = segments.first().and_then(|s| Family::from_segment(s));
    match (method, family, segments.as_slice()) {
        ("GET", Some(f), [_]) => list(state, base, rid, f, &query_pairs(query)),
        ("GET", Some(f), [_, ip]) => match find(state, f, ip) {
            Some(ip) => get_one(state, base, f, ip),
            None => not_found(rid),
        },
        ("POST", Some(f), [_, ip, "actions"]) => {
            if !may_write {
                return error(
                    rid,
                    403,
                    "forbidden",
                    "You do not have access for the attempted action.",
                );
            }
            match find(state, f, ip) {
                Some(ip) => post_action(state, rid, req, f, ip),
                None => not_found(rid),
            }
        }
        ("GET", Some(f), [_, ip, "actions", action]) => {
            let ip = find(state, f, ip);
            let id = parse_id(action);
            match (ip, id) {
                (Some(ip), Some(id)) if state.actions.get(&id).is_some_and(|a| a.ip == ip) => {
                    poll(state, rid, id)
                }
                _ => not_found(rid),
            }
        }
        ("GET", None, ["actions", id]) => match parse_id(id) {
            Some(id) => poll(state, rid, id),
            None => not_found(rid),
        },
        ("GET", None, ["droplets", id]) => {
            match parse_id(id).filter(|i| state.droplets.contains_key(i)) {
                Some(id) => Response::json(200, &json!({"droplet": droplet_json(state, id)})),
                None => not_found(rid),
            }
        }
        // A known resource with a method the mock does not serve (the
        // real API creates and deletes reserved IPs; the mock refuses
        // rather than pretend). The id is inferred.
        (m, Some(_), _) | (m, None, ["actions" | "droplets", ..]) if m != "GET" => {
            error(rid, 405, "method_not_allowed", "Method not allowed.")
        }
        _ => not_found(rid),
    }
}

/// A path id: decimal digits only (no sign), as the API's integers.
fn parse_id(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The address in a path, if it exists under this family's path: IPv4
/// under `reserved_ips` and `floating_ips`, IPv6 under `reserved_ipv6`.
fn find(state: &DigitalOceanState, family: Family, text: &str) -> Option<IpAddr> {
    let ip = text.parse::<IpAddr>().ok()?;
    (ip.is_ipv6() == family.v6() && state.ips.contains_key(&ip)).then_some(ip)
}

fn poll(state: &mut DigitalOceanState, rid: &str, id: u64) -> Response {
    match state.poll(id) {
        Some(action) => Response::json(200, &json!({ "action": action })),
        None => not_found(rid),
    }
}

/// `page` (default 1) and `per_page` (default 20, at most 200: more is cut
/// to 200): the slice of `total` entries and the `links`, or the 400 for a
/// bad parameter (what DigitalOcean answers there is inferred). `links`
/// has `pages` only when there is more than one, and in it only the links
/// that apply, as the API's.
fn paginate(
    base: &str,
    collection: &str,
    rid: &str,
    pairs: &[(String, String)],
    total: usize,
) -> Result<(std::ops::Range<usize>, Value), Response> {
    let number = |name: &str, default: usize| match pairs.iter().find(|(n, _)| n == name) {
        None => Ok(default),
        Some((_, v)) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1 && v.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                let message = format!("{name} must be a positive integer");
                error(rid, 400, "bad_request", &message)
            }),
    };
    let page = number("page", 1)?;
    let per_page = number("per_page", DEFAULT_PER_PAGE)?.min(MAX_PER_PAGE);
    let last = total.div_ceil(per_page).max(1);
    let start = (page - 1).saturating_mul(per_page).min(total);
    let end = start.saturating_add(per_page).min(total);
    let link = |p: usize| format!("{base}/{collection}?page={p}&per_page={per_page}");
    let mut pages = serde_json::Map::new();
    if page > 1 {
        pages.insert("first".into(), json!(link(1)));
        pages.insert("prev".into(), json!(link((page - 1).min(last))));
    }
    if page < last {
        pages.insert("next".into(), json!(link(page + 1)));
        pages.insert("last".into(), json!(link(last)));
    }
    let links = if pages.is_empty() {
        json!({})
    } else {
        json!({ "pages": pages })
    };
    Ok((start..end, links))
}

fn list(
    state: &DigitalOceanState,
    base: &str,
    rid: &str,
    family: Family,
    pairs: &[(String, String)],
) -> Response {
    let matching: Vec<IpAddr> = state
        .ips
        .keys()
        .filter(|ip| ip.is_ipv6() == family.v6())
        .copied()
        .collect();
    match paginate(base, family.collection(), rid, pairs, matching.len()) {
        Ok((range, links)) => {
            let page: Vec<Value> = matching[range]
                .iter()
                .map(|ip| reserved_ip_json(state, family, *ip))
                .collect();
            let mut body = serde_json::Map::new();
            body.insert(family.many().into(), json!(page));
            body.insert("links".into(), links);
            body.insert("meta".into(), json!({"total": matching.len()}));
            Response::json(200, &Value::Object(body))
        }
        Err(resp) => resp,
    }
}

/// One reserved IP with `links`: while an action is pending, `links.actions`
/// names it, as the published "assigning" example does.
fn get_one(state: &DigitalOceanState, base: &str, family: Family, ip: IpAddr) -> Response {
    let links = match state.pending_on(ip) {
        Some(a) if !family.v6() => json!({"actions": [{
            "id": a.id,
            "rel": a.kind,
            "href": format!("{base}/actions/{}", a.id),
        }]}),
        _ => json!({}),
    };
    let mut body = serde_json::Map::new();
    body.insert(family.one().into(), reserved_ip_json(state, family, ip));
    body.insert("links".into(), links);
    Response::json(200, &Value::Object(body))
}

/// The checks, in order: the body (400 when it is not JSON, 422 when its
/// fields are wrong), the droplet (422), a pending action (422), then the
/// 422s DigitalOcean gives for an assign that would change nothing or put
/// a second reserved IP on a droplet; then an `in-progress` action, 201.
fn post_action(
    state: &mut DigitalOceanState,
    rid: &str,
    req: &RawRequest,
    family: Family,
    ip: IpAddr,
) -> Response {
    // godo declares every write JSON; a body that is not declared or not
    // JSON is refused with 400 `bad_request` (inferred: the documented
    // answers of this endpoint are 201, 401, 404, 429, 500, and 422 is for
    // well-formed requests).
    let body: Value = if req.body.is_empty() {
        json!({})
    } else if !is_json(req) {
        let declared = req.header("content-type").unwrap_or("none");
        let message = format!("Content-Type must be application/json, not {declared}.");
        return error(rid, 400, "bad_request", &message);
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => {
                return error(rid, 400, "bad_request", &format!("Invalid JSON: {e}."));
            }
        }
    };
    let assign = match body.get("type").and_then(Value::as_str) {
        Some("assign") => true,
        Some("unassign") => false,
        _ => return unprocessable(rid, "type must be one of assign, unassign."),
    };
    let target = if assign {
        let Some(droplet) = body.get("droplet_id").and_then(Value::as_u64) else {
            return unprocessable(rid, "droplet_id is required and must be an integer.");
        };
        if !state.droplets.contains_key(&droplet) {
            return unprocessable(rid, "Droplet not found.");
        }
        Some(droplet)
    } else {
        None
    };
    if state.pending_on(ip).is_some() {
        return unprocessable(rid, PENDING_EVENT);
    }
    let current = state.ips.get(&ip).and_then(|r| r.droplet);
    match target {
        // DigitalOcean answers 422 even for the address the droplet
        // already has (flipop's comment), and for a droplet that holds
        // another reserved address of the same kind (one per droplet,
        // implied by flipop).
        Some(d) if current == Some(d) => return unprocessable(rid, ALREADY_ASSIGNED),
        Some(d)
            if state
                .ips
                .iter()
                .any(|(other, r)| r.droplet == Some(d) && other.is_ipv6() == ip.is_ipv6()) =>
        {
            return unprocessable(rid, ALREADY_ASSIGNED);
        }
        // Unassigning what is not assigned: 422 is inferred.
        None if current.is_none() => {
            return unprocessable(rid, "The reserved IP is not assigned to a Droplet.");
        }
        _ => {}
    }
    let fail = state.failing_actions > 0;
    if fail {
        state.failing_actions -= 1;
    }
    let resource_id = state.ips.get(&ip).map_or(0, |r| r.resource_id);
    let id = state.next_action;
    state.next_action += 1;
    let action = Action {
        id,
        ip,
        kind: if assign { "assign_ip" } else { "unassign_ip" },
        target,
        resource_type: family.one(),
        resource_id,
        status: Status::InProgress,
        polls: 0,
        fail,
        started: SystemTime::now(),
        started_at: Instant::now(),
        completed: None,
    };
    let answer = action_json(&action);
    state.actions.insert(id, action);
    Response::json(201, &json!({ "action": answer }))
}

fn action_json(a: &Action) -> Value {
    let status = match &a.status {
        Status::InProgress => "in-progress",
        Status::Done(word) => word.as_str(),
        Status::Errored => "errored",
    };
    json!({
        "id": a.id,
        "status": status,
        "type": a.kind,
        "started_at": clock::rfc3339_z(a.started),
        "completed_at": a.completed.map(clock::rfc3339_z),
        "resource_id": a.resource_id,
        "resource_type": a.resource_type,
        "region": region_json(),
        "region_slug": "nyc3",
        "project_id": PROJECT_ID,
    })
}

fn region_json() -> Value {
    json!({
        "name": "New York 3",
        "slug": "nyc3",
        "features": ["private_networking", "backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"],
        "available": true,
        "sizes": ["s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb"],
    })
}

/// IPv4 (both names): `ip`, `region`, `droplet`, `locked`, `project_id`.
/// IPv6: `ip`, `region_slug`, `reserved_at`, `droplet`, as the API
/// describes it: no `locked`, so a client must not count on one there.
fn reserved_ip_json(state: &DigitalOceanState, family: Family, ip: IpAddr) -> Value {
    let droplet = state
        .ips
        .get(&ip)
        .and_then(|r| r.droplet)
        .map(|d| droplet_json(state, d));
    if family.v6() {
        return json!({
            "ip": ip.to_string(),
            "region_slug": "nyc3",
            "reserved_at": CREATED,
            "droplet": droplet,
        });
    }
    json!({
        "ip": ip.to_string(),
        "region": region_json(),
        "droplet": droplet,
        "locked": state.pending_on(ip).is_some(),
        "project_id": PROJECT_ID,
    })
}

/// A droplet as the API nests it in a reserved IP. A droplet the mock
/// does not know (pointed at with `add_reserved_ip`) still gets one, named
/// `unknown`, rather than a broken body.
fn droplet_json(state: &DigitalOceanState, id: u64) -> Value {
    let name = state.droplets.get(&id).map_or("unknown", String::as_str);
    let host = (id % 250 + 1) as u8;
    json!({
        "id": id,
        "name": name,
        "memory": 1024,
        "vcpus": 1,
        "disk": 25,
        "locked": false,
        "status": "active",
        "kernel": null,
        "created_at": CREATED,
        "features": ["droplet_agent", "private_networking"],
        "backup_ids": [],
        "next_backup_window": null,
        "snapshot_ids": [],
        "image": {"id": 129_211_873, "name": "22.04 (LTS) x64", "distribution": "Ubuntu", "slug": "ubuntu-22-04-x64", "public": true},
        "volume_ids": [],
        "size": {"slug": "s-1vcpu-1gb", "memory": 1024, "vcpus": 1, "disk": 25, "transfer": 1.0, "price_monthly": 6.0, "price_hourly": 0.00893},
        "size_slug": "s-1vcpu-1gb",
        "networks": {
            "v4": [
                {"ip_address": format!("10.108.0.{host}"), "netmask": "255.255.240.0", "gateway": "10.108.0.1", "type": "private"},
                {"ip_address": format!("198.51.100.{host}"), "netmask": "255.255.255.0", "gateway": "198.51.100.254", "type": "public"},
            ],
            "v6": [],
        },
        "region": region_json(),
        "tags": [],
        "vpc_uuid": "5a4981aa-9653-4bd1-bef5-d6bff52042e4",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with_action(fail: bool) -> DigitalOceanState {
        let mut s = DigitalOceanState::new();
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        s.droplets.insert(9, "a".into());
        s.ips.insert(
            ip,
            ReservedIp {
                droplet: None,
                resource_id: 1,
            },
        );
        s.actions.insert(
            1,
            Action {
                id: 1,
                ip,
                kind: "assign_ip",
                target: Some(9),
                resource_type: "reserved_ip",
                resource_id: 1,
                status: Status::InProgress,
                polls: 0,
                fail,
                started: SystemTime::now(),
                started_at: Instant::now(),
                completed: None,
            },
        );
        s
    }

    #[test]
    fn actions_complete_with_the_done_word_and_move_then() {
        let mut s = state_with_action(false);
        s.action_polls = 1;
        s.done_status = "done".into();
        assert_eq!(
            s.poll(1).map(|a| a["status"].clone()),
            Some(json!("in-progress"))
        );
        assert_eq!(s.droplet_of("203.0.113.7"), None);
        let done = s.poll(1).expect("action");
        assert_eq!(done["status"], "done");
        assert!(done["completed_at"].is_string());
        assert_eq!(s.droplet_of("203.0.113.7"), Some(9));
        // Later word changes do not rewrite history.
        s.done_status = "completed".into();
        assert_eq!(s.poll(1).map(|a| a["status"].clone()), Some(json!("done")));
    }

    #[test]
    fn failed_and_unpolled_actions() {
        let mut s = state_with_action(true);
        s.action_polls = 0;
        assert_eq!(
            s.poll(1).map(|a| a["status"].clone()),
            Some(json!("errored"))
        );
        assert_eq!(s.droplet_of("203.0.113.7"), None);
        let mut s = state_with_action(false);
        s.action_timeout = Duration::ZERO;
        assert_eq!(s.pending_actions(), 1);
        s.settle(Instant::now());
        assert_eq!(s.pending_actions(), 0);
        assert_eq!(s.droplet_of("203.0.113.7"), Some(9));
    }
}
