//! A mock of the Hetzner Cloud API, as far as floaty uses it: Floating
//! IPs, servers, asynchronous actions, Bearer tokens and the project's
//! request budget (`docs/cloud-apis-next.md` §1 is the contract).
//!
//! Strict where a lenient mock would hide client bugs:
//! - ids are above 2^31, so a client that keeps them in 32 bits breaks at
//!   once instead of in a large project;
//! - an assign moves nothing when it is answered: the Floating IP's
//!   `server` changes only when its action ends, after a number of polls
//!   (or, unpolled, after a few seconds), and an action can end in
//!   `error`; a client that trusts the 201 is caught;
//! - a second action on a Floating IP while one runs is 423 `locked`;
//! - every answer spends from the token bucket and says what is left in
//!   the `RateLimit-*` headers; an empty bucket is 429 without
//!   `Retry-After`, as Hetzner documents none.
//!
//! When 422 `floating_ip_assigned` fires is unverified, so it is a setting
//! ([`AssignedConflict`]) and a client can be tested against each reading.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::clock;
use crate::fault::{self, Fault, FaultRule};
use crate::http::{
    is_json, percent_decode, query_pairs, Handler, RawRequest, Reply, Response, Served, Watched,
};
use crate::ids;
use crate::ratelimit::TokenBucket;
use crate::Request;

/// GETs of an action that answer `running` before it ends, unless told
/// otherwise: two make a client that stops at the first poll visible.
pub const DEFAULT_ACTION_POLLS: usize = 2;
/// A running action ends by itself after this long even if nobody polls,
/// so a client that gave up does not leave the Floating IP locked for
/// the rest of a test (or a lab).
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Hetzner's documented budget: 3600 requests per project, one more
/// every second.
pub const DEFAULT_RATE_LIMIT: u64 = 3600;
pub const DEFAULT_REFILL: Duration = Duration::from_secs(1);

/// Ids start above 2^31 (and apart, so a client that mixes up a Floating
/// IP id with an action id asks for something that does not exist).
const FIRST_FLOATING_IP_ID: u64 = 4_000_000_001;
const FIRST_ACTION_ID: u64 = 6_000_000_001;
/// Filler Floating IPs come from the benchmarking range 198.18.0.0/15.
const FILLER_BASE: u32 = 0xc612_0000;
const DEFAULT_PER_PAGE: usize = 25;
const MAX_PER_PAGE: usize = 50;
const CREATED: &str = "2024-01-01T00:00:00+00:00";

/// When an assign is refused with 422 `floating_ip_assigned` ("The
/// Floating IP is already assigned"): the real API's rule is unverified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssignedConflict {
    /// When assigning to the server that already holds it (the likely
    /// reading, and what DigitalOcean does).
    #[default]
    SameServer,
    /// Whenever it is assigned to any server: a client must unassign
    /// first.
    AnyServer,
    /// Never: assigning to the holder just succeeds (an action that
    /// changes nothing).
    Never,
}

#[derive(Debug, Clone)]
struct FloatingIp {
    id: u64,
    /// An IPv4 address, or an IPv6 network as `2001:db8:1::/64`: the
    /// `ip` field as the API sends it, and the key tests use.
    ip: String,
    v6: bool,
    name: String,
    server: Option<u64>,
    blocked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    Success,
    Error,
}

impl Status {
    fn text(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Success => "success",
            Status::Error => "error",
        }
    }
}

#[derive(Debug, Clone)]
struct Action {
    id: u64,
    command: &'static str,
    fip: u64,
    /// Where the Floating IP points once the action succeeds (None:
    /// unassigned).
    target: Option<u64>,
    resources: Vec<(u64, &'static str)>,
    status: Status,
    progress: u64,
    /// GETs answered `running` so far.
    polls: usize,
    /// Ends in `error` (see [`Hetzner::fail_actions`]).
    fail: bool,
    started: SystemTime,
    started_at: Instant,
    finished: Option<SystemTime>,
}

/// Everything the mock knows, readable by [`Hetzner::wait_for`]
/// predicates.
#[derive(Debug)]
pub struct HetznerState {
    servers: BTreeMap<u64, String>,
    fips: BTreeMap<u64, FloatingIp>,
    /// token → may write
    tokens: HashMap<String, bool>,
    actions: BTreeMap<u64, Action>,
    next_fip: u64,
    next_action: u64,
    fillers: u32,
    action_polls: usize,
    action_timeout: Duration,
    failing_actions: usize,
    conflict: AssignedConflict,
    bucket: TokenBucket,
    requests: Vec<Request>,
    /// Floating IP id → assign POSTs received.
    assigns: HashMap<u64, usize>,
    generation: u64,
    fault: Option<FaultRule>,
}

impl HetznerState {
    fn new() -> HetznerState {
        HetznerState {
            servers: BTreeMap::new(),
            fips: BTreeMap::new(),
            tokens: HashMap::new(),
            actions: BTreeMap::new(),
            next_fip: FIRST_FLOATING_IP_ID,
            next_action: FIRST_ACTION_ID,
            fillers: 0,
            action_polls: DEFAULT_ACTION_POLLS,
            action_timeout: DEFAULT_ACTION_TIMEOUT,
            failing_actions: 0,
            conflict: AssignedConflict::default(),
            bucket: TokenBucket::new(DEFAULT_RATE_LIMIT, DEFAULT_REFILL, Instant::now()),
            requests: Vec::new(),
            assigns: HashMap::new(),
            generation: 0,
            fault: None,
        }
    }

    /// The server `ip` points at; None when unassigned or unknown. `ip` is
    /// an IPv4 address or an IPv6 network as given to
    /// [`Hetzner::add_floating_ip`]; an IPv6 address finds the network
    /// that contains it.
    pub fn server_of(&self, ip: &str) -> Option<u64> {
        self.find(ip)?.server
    }

    pub fn floating_ip_id(&self, ip: &str) -> Option<u64> {
        self.find(ip).map(|f| f.id)
    }

    /// Every Floating IP (its `ip` text) and the server it points at, by id.
    pub fn floating_ips(&self) -> impl Iterator<Item = (&str, Option<u64>)> {
        self.fips.values().map(|f| (f.ip.as_str(), f.server))
    }

    /// The request log, oldest first.
    pub fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// Assign POSTs received for `ip`, whatever they were answered with
    /// (faults included): "did the client try to write?".
    pub fn assign_count(&self, ip: &str) -> usize {
        self.find(ip)
            .and_then(|f| self.assigns.get(&f.id))
            .copied()
            .unwrap_or(0)
    }

    /// Actions still `running`.
    pub fn running_actions(&self) -> usize {
        self.actions
            .values()
            .filter(|a| a.status == Status::Running)
            .count()
    }

    /// Bumped whenever a Floating IP changes hands.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn find(&self, ip: &str) -> Option<&FloatingIp> {
        let (key, v6) = parse_floating_ip(ip)?;
        let exact = self.fips.values().find(|f| f.ip == key);
        if exact.is_some() || !v6 {
            return exact;
        }
        let addr: Ipv6Addr = ip.split('/').next()?.parse().ok()?;
        self.fips
            .values()
            .find(|f| f.v6 && v6_contains(&f.ip, addr))
    }

    fn find_mut(&mut self, ip: &str) -> Option<&mut FloatingIp> {
        let id = self.find(ip)?.id;
        self.fips.get_mut(&id)
    }

    /// Ends the actions nobody polled to the end in time.
    fn settle(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .actions
            .values()
            .filter(|a| {
                a.status == Status::Running
                    && now.saturating_duration_since(a.started_at) >= self.action_timeout
            })
            .map(|a| a.id)
            .collect();
        for id in due {
            self.finish(id);
        }
    }

    /// Ends a running action; the Floating IP moves now, and only on
    /// success.
    fn finish(&mut self, id: u64) {
        let Some(a) = self.actions.get_mut(&id) else {
            return;
        };
        if a.status != Status::Running {
            return;
        }
        a.progress = 100;
        a.finished = Some(SystemTime::now());
        if a.fail {
            a.status = Status::Error;
            return;
        }
        a.status = Status::Success;
        let (fip, target) = (a.fip, a.target);
        if let Some(f) = self.fips.get_mut(&fip) {
            f.server = target;
            self.generation += 1;
        }
    }

    /// One GET of action `id`: it answers `running` `action_polls` times,
    /// then ends. None when there is no such action.
    fn poll(&mut self, id: u64) -> Option<Value> {
        let polls = self.action_polls;
        let a = self.actions.get_mut(&id)?;
        let ends = a.status == Status::Running && a.polls >= polls;
        if a.status == Status::Running && !ends {
            a.polls += 1;
            a.progress = (a.polls * 100 / (polls + 1)) as u64;
        }
        if ends {
            self.finish(id);
        }
        self.actions.get(&id).map(action_json)
    }

    fn running_on(&self, fip: u64) -> Option<u64> {
        self.actions
            .values()
            .find(|a| a.fip == fip && a.status == Status::Running)
            .map(|a| a.id)
    }
}

/// An IPv4 address (optionally `/32`), or an IPv6 address or network:
/// the key text (`203.0.113.1`, `2001:db8:1::/64`) and whether it is v6.
/// A bare IPv6 address stands for its /64, the size Hetzner hands out.
fn parse_floating_ip(text: &str) -> Option<(String, bool)> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            (a, Some(p.parse::<u8>().ok()?))
        }
        Some(_) => return None,
        None => (text, None),
    };
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => (prefix.unwrap_or(32) == 32).then(|| (a.to_string(), false)),
        IpAddr::V6(a) => {
            let p = prefix.unwrap_or(64);
            (p <= 128).then(|| (format!("{}/{p}", v6_mask(a, p)), true))
        }
    }
}

fn v6_mask(a: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    Ipv6Addr::from(u128::from(a) & mask)
}

fn v6_contains(network: &str, a: Ipv6Addr) -> bool {
    let Some((net, prefix)) = network.split_once('/') else {
        return false;
    };
    match (net.parse::<Ipv6Addr>(), prefix.parse::<u8>()) {
        (Ok(net), Ok(p)) if p <= 128 => v6_mask(a, p) == net,
        _ => false,
    }
}

/// A path id: decimal digits only (no sign, no spaces) and within int64,
/// the API's id type.
fn parse_id(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>()
        .ok()
        .filter(|n| i64::try_from(*n).is_ok())
}

struct Shared {
    state: Watched<HetznerState>,
}

/// A running mock; clones share it, and it stops when the last clone is
/// dropped.
#[derive(Clone)]
pub struct Hetzner {
    shared: Arc<Shared>,
    served: Arc<Served>,
}

impl std::fmt::Debug for Hetzner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hetzner")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Hetzner {
    /// Starts on `127.0.0.1` and a free port; `token` may read and write.
    pub fn start(token: &str) -> io::Result<Hetzner> {
        Hetzner::start_on(TcpListener::bind("127.0.0.1:0")?, token)
    }

    /// Serves on a listener the caller bound (inside a network namespace,
    /// on a fixed port, ...).
    pub fn start_on(listener: TcpListener, token: &str) -> io::Result<Hetzner> {
        Hetzner::serve(listener, token, false)
    }

    /// Like [`Hetzner::start`], over HTTPS with a certificate from a CA
    /// made for this mock alone ([`Hetzner::ca_pem`]).
    pub fn start_tls(token: &str) -> io::Result<Hetzner> {
        Hetzner::start_tls_on(TcpListener::bind("127.0.0.1:0")?, token)
    }

    /// [`Hetzner::start_tls`] on a listener the caller bound; the
    /// certificate also names the listener's address.
    pub fn start_tls_on(listener: TcpListener, token: &str) -> io::Result<Hetzner> {
        Hetzner::serve(listener, token, true)
    }

    /// The text the mock files a Floating IP under (`203.0.113.1`,
    /// `2001:db8:1::/64`), or None when `text` is neither an IPv4 address
    /// nor an IPv6 address or network: what [`Hetzner::add_floating_ip`]
    /// takes without panicking.
    pub fn floating_ip_key(text: &str) -> Option<String> {
        parse_floating_ip(text).map(|(key, _)| key)
    }

    fn serve(listener: TcpListener, token: &str, tls: bool) -> io::Result<Hetzner> {
        let shared = Arc::new(Shared {
            state: Watched::new(HetznerState::new()),
        });
        shared.state.lock().tokens.insert(token.to_string(), true);
        let api = Arc::new(Api(Arc::clone(&shared)));
        let served = if tls {
            Served::start_tls(listener, api)?
        } else {
            Served::start(listener, api)?
        };
        Ok(Hetzner {
            shared,
            served: Arc::new(served),
        })
    }

    /// Also serves `listener` (say, bound inside another network namespace)
    /// from the same state: every node of a lab sees one API.
    ///
    /// # Panics
    /// If no thread can be spawned.
    pub fn also_listen(&self, listener: TcpListener) {
        self.served.also_listen(listener);
    }

    /// The API base, `http://127.0.0.1:PORT/v1` without a trailing slash:
    /// what floaty's `endpoint` takes, as `https://api.hetzner.cloud/v1`.
    pub fn url(&self) -> String {
        format!("{}v1", self.served.url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.served.addr()
    }

    /// The PEM of the CA behind the HTTPS certificate
    /// ([`Hetzner::start_tls`]); None for a mock in the clear.
    pub fn ca_pem(&self) -> Option<String> {
        self.served.ca_pem()
    }

    /// Accepts another token; a read-only one gets 403 `token_readonly` on
    /// every POST.
    pub fn add_token(&self, token: &str, read_write: bool) {
        self.shared.state.change(|s| {
            s.tokens.insert(token.to_string(), read_write);
        });
    }

    /// From now on `token` gets 401 `unauthorized`, as a deleted token does.
    pub fn revoke_token(&self, token: &str) {
        self.shared.state.change(|s| {
            s.tokens.remove(token);
        });
    }

    pub fn add_server(&self, id: u64, name: &str) {
        self.shared.state.change(|s| {
            s.servers.insert(id, name.to_string());
        });
    }

    /// Adds a Floating IP pointing at `server` and returns its id. `ip` is
    /// an IPv4 address (`type: ipv4`) or an IPv6 network such as
    /// `2001:db8:1::/64` (`type: ipv6`; a bare address stands for its /64).
    /// Adding an address again replaces where it points and keeps its id.
    ///
    /// # Panics
    /// If `ip` is neither (a test bug).
    pub fn add_floating_ip(&self, ip: &str, server: Option<u64>) -> u64 {
        let Some((key, v6)) = parse_floating_ip(ip) else {
            panic!("not an IPv4 address or IPv6 network: {ip}");
        };
        let mut id = 0;
        self.shared.state.change(|s| {
            if let Some(f) = s.fips.values_mut().find(|f| f.ip == key) {
                f.server = server;
                id = f.id;
            } else {
                id = s.next_fip;
                s.next_fip += 1;
                s.fips.insert(
                    id,
                    FloatingIp {
                        id,
                        name: format!("fip-{id}"),
                        ip: key,
                        v6,
                        server,
                        blocked: false,
                    },
                );
            }
            s.generation += 1;
        });
        id
    }

    /// Adds `n` more unassigned IPv4 Floating IPs (198.18.x.y, named
    /// `filler-N`): enough of them force a client through several pages.
    pub fn add_filler_floating_ips(&self, n: usize) {
        self.shared.state.change(|s| {
            for _ in 0..n {
                s.fillers += 1;
                let id = s.next_fip;
                s.next_fip += 1;
                s.fips.insert(
                    id,
                    FloatingIp {
                        id,
                        name: format!("filler-{}", s.fillers),
                        ip: Ipv4Addr::from(FILLER_BASE + s.fillers).to_string(),
                        v6: false,
                        server: None,
                        blocked: false,
                    },
                );
            }
        });
    }

    /// The `name` the API shows (and `?name=` filters on); `fip-{id}` by
    /// default.
    pub fn set_floating_ip_name(&self, ip: &str, name: &str) {
        self.shared.state.change(|s| {
            if let Some(f) = s.find_mut(ip) {
                f.name = name.to_string();
            }
        });
    }

    /// The `blocked` flag the API shows (Hetzner blocks an address after
    /// abuse); nothing else changes.
    pub fn set_blocked(&self, ip: &str, blocked: bool) {
        self.shared.state.change(|s| {
            if let Some(f) = s.find_mut(ip) {
                f.blocked = blocked;
            }
        });
    }

    pub fn server_of(&self, ip: &str) -> Option<u64> {
        self.with_state(|s| s.server_of(ip))
    }

    /// Moves `ip` behind the client's back (another node, someone's tool,
    /// the web console), at once and without an action.
    pub fn set_server_of(&self, ip: &str, server: Option<u64>) {
        self.shared.state.change(|s| {
            if let Some(f) = s.find_mut(ip) {
                f.server = server;
                s.generation += 1;
            }
        });
    }

    pub fn floating_ip_id(&self, ip: &str) -> Option<u64> {
        self.with_state(|s| s.floating_ip_id(ip))
    }

    /// How many GETs of an action (by either action route) answer
    /// `running` before the next one ends it. 0: the first GET ends it.
    pub fn set_action_polls(&self, n: usize) {
        self.shared.state.change(|s| s.action_polls = n);
    }

    /// How long an action runs when nobody polls it to the end
    /// ([`DEFAULT_ACTION_TIMEOUT`]).
    pub fn set_action_timeout(&self, timeout: Duration) {
        self.shared.state.change(|s| s.action_timeout = timeout);
    }

    /// The next `n` assign actions end with status `error` (error
    /// `action_failed`) and leave the address where it was; their 201 looks
    /// like any other, as the real API's does.
    pub fn fail_actions(&self, n: usize) {
        self.shared.state.change(|s| s.failing_actions = n);
    }

    pub fn set_assigned_conflict(&self, mode: AssignedConflict) {
        self.shared.state.change(|s| s.conflict = mode);
    }

    /// A full bucket of `limit` requests, one more every `refill_every`.
    pub fn set_rate_limit(&self, limit: u64, refill_every: Duration) {
        self.shared
            .state
            .change(|s| s.bucket = TokenBucket::new(limit, refill_every, Instant::now()));
    }

    /// Requests left in the bucket now.
    pub fn rate_remaining(&self) -> u64 {
        self.shared.state.lock().bucket.remaining(Instant::now())
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.state.lock().requests.clone()
    }

    pub fn assign_count(&self, ip: &str) -> usize {
        self.with_state(|s| s.assign_count(ip))
    }

    /// Runs `f` on the state under the lock (for reads the helpers miss).
    pub fn with_state<T>(&self, f: impl FnOnce(&HetznerState) -> T) -> T {
        let mut s = self.shared.state.lock();
        s.settle(Instant::now());
        f(&s)
    }

    /// Waits until `pred` holds, re-checking after every request and state
    /// change (and every few milliseconds, as actions also end by the
    /// clock); false on timeout.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&HetznerState) -> bool) -> bool {
        let poll = Some(Duration::from_millis(20));
        self.shared.state.wait_until(timeout, poll, |s| {
            s.settle(Instant::now());
            pred(s)
        })
    }

    /// Every request from now on suffers `fault` (until replaced;
    /// `Fault::None` clears). Faults come before the budget, the token
    /// check and routing, like a load balancer's.
    pub fn set_fault(&self, fault: Fault) {
        self.set_fault_rule(fault, None, None);
    }

    /// Only the next `times` requests suffer `fault`.
    pub fn set_fault_times(&self, fault: Fault, times: usize) {
        self.set_fault_rule(fault, Some(times), None);
    }

    /// Only requests with `method` suffer `fault`, for the next `times` of
    /// them or (None) until replaced.
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
            let (response, left) = answer(&mut state, &req, &path, query.as_deref(), at);
            remaining = Some(left);
            Reply::now(response)
        });
        if let Some(fip) = assign_target(&req, &path) {
            if state.fips.contains_key(&fip) {
                *state.assigns.entry(fip).or_insert(0) += 1;
            }
        }
        let mut logged = Request::new(&req, path, query, at, reply.status());
        logged.rate_remaining = remaining;
        logged.log(&mut state.requests);
        drop(state);
        self.0.state.notify();
        reply
    }
}

/// The Floating IP id an assign POST names, if it is one.
fn assign_target(req: &RawRequest, path: &str) -> Option<u64> {
    if req.method != "POST" {
        return None;
    }
    let id = path
        .strip_prefix("/v1/floating_ips/")?
        .strip_suffix("/actions/assign")?;
    parse_id(id)
}

/// Spends from the bucket, answers, and adds the headers every answer
/// carries; also returns the `RateLimit-Remaining` sent.
fn answer(
    state: &mut HetznerState,
    req: &RawRequest,
    path: &str,
    query: Option<&str>,
    now: Instant,
) -> (Response, u64) {
    let limit = state.bucket.limit();
    let (response, remaining) = match state.bucket.take(now) {
        Ok(left) => (api(state, req, path, query), left),
        Err(()) => {
            let message = format!("limit of {limit} requests per hour reached");
            (error(429, "rate_limit_exceeded", &message), 0)
        }
    };
    let reset = clock::unix_secs_at(state.bucket.full_at(now), now);
    let response = response
        .with_header("RateLimit-Limit", &limit.to_string())
        .with_header("RateLimit-Remaining", &remaining.to_string())
        .with_header("RateLimit-Reset", &reset.to_string())
        .with_header("X-Correlation-Id", &ids::hex());
    (response, remaining)
}

/// Hetzner's error body: always `code`, `message` and `details`.
fn error(status: u16, code: &str, message: &str) -> Response {
    Response::json(
        status,
        &json!({"error": {"code": code, "message": message, "details": {}}}),
    )
}

/// `invalid_input` with the field at fault in `details.fields`.
fn field_error(status: u16, field: &str, message: &str) -> Response {
    Response::json(
        status,
        &json!({"error": {
            "code": "invalid_input",
            "message": format!("invalid input in field '{field}'"),
            "details": {"fields": [{"name": field, "messages": [message]}]},
        }}),
    )
}

fn not_found(what: &str) -> Response {
    error(404, "not_found", &format!("{what} not found"))
}

/// Test-only controls under `/_mock/`, never faulted, charged or logged,
/// so that tests driving the binary can do what library users do with
/// methods:
/// - `GET /_mock/state` → `{"IP": server-id|null, ...}`
/// - `PUT /_mock/fault` with a fault description (see `fault::rule_from_json`)
/// - `PUT /_mock/floating_ips/{ip}` with `{"server": id|null}`: move an
///   address behind the client's back.
fn control_api(state: &mut HetznerState, req: &RawRequest, path: &str) -> Response {
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(_) if req.body.is_empty() => Value::Null,
        Err(e) => return error(400, "invalid_input", &format!("invalid JSON: {e}")),
    };
    match (req.method.as_str(), path) {
        ("GET", "state") => {
            let map: serde_json::Map<String, Value> = state
                .floating_ips()
                .map(|(ip, server)| (ip.to_string(), json!(server)))
                .collect();
            Response::json(200, &Value::Object(map))
        }
        ("PUT", "fault") => match fault::rule_from_json(&body) {
            Ok(rule) => {
                state.fault = rule;
                Response::empty(204)
            }
            Err(e) => error(400, "invalid_input", &e),
        },
        ("PUT", p) if p.starts_with("floating_ips/") => {
            let ip = p.trim_start_matches("floating_ips/");
            let server = body.get("server").and_then(Value::as_u64);
            match state.find_mut(ip) {
                Some(f) => {
                    f.server = server;
                    state.generation += 1;
                    Response::empty(204)
                }
                None => not_found("floating_ip"),
            }
        }
        _ => not_found("control route"),
    }
}

fn api(state: &mut HetznerState, req: &RawRequest, path: &str, query: Option<&str>) -> Response {
    let Some(rest) = path.strip_prefix("/v1/") else {
        return not_found("route");
    };
    let may_write = match authenticate(state, req) {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let method = match req.method.as_str() {
        "HEAD" => "GET",
        m => m,
    };
    let pairs = query_pairs(query);
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["floating_ips"]) => list_floating_ips(state, &pairs),
        ("GET", ["floating_ips", "actions", action]) => {
            get_action(state, parse_id(action), |_| true)
        }
        // A non-numeric id names no resource, so it is answered as an
        // unknown one (404 `not_found`) rather than as bad input: the
        // id is part of the path, and one answer for "no such Floating
        // IP" however it is spelled keeps the client's handling simple.
        ("GET", ["floating_ips", id]) => match parse_id(id).and_then(|i| state.fips.get(&i)) {
            Some(f) => Response::json(200, &json!({ "floating_ip": fip_json(f) })),
            None => not_found("floating_ip"),
        },
        ("GET", ["floating_ips", id, "actions", action]) => match parse_id(id) {
            Some(fip) if state.fips.contains_key(&fip) => {
                get_action(state, parse_id(action), |a| a.fip == fip)
            }
            _ => not_found("floating_ip"),
        },
        ("POST", ["floating_ips", id, "actions", command @ ("assign" | "unassign")]) => {
            if !may_write {
                return error(403, "token_readonly", "The token is read-only");
            }
            start_action(state, req, id, *command == "assign")
        }
        ("GET", ["actions"]) => list_actions(state, &pairs),
        ("GET", ["actions", id]) => get_action(state, parse_id(id), |_| true),
        ("GET", ["servers"]) => list_servers(state, &pairs),
        ("GET", ["servers", id]) => match parse_id(id) {
            Some(id) if state.servers.contains_key(&id) => {
                Response::json(200, &json!({ "server": server_json(state, id) }))
            }
            _ => not_found("server"),
        },
        // A known resource with a method the mock does not serve (the
        // real API deletes and updates Floating IPs; the mock refuses
        // rather than pretend). The code is inferred.
        (m, ["floating_ips" | "actions" | "servers", ..]) if m != "GET" => {
            error(405, "method_not_allowed", "method not allowed")
        }
        _ => not_found("route"),
    }
}

/// `Authorization: Bearer <token>`: Ok(may write) or the 401.
fn authenticate(state: &HetznerState, req: &RawRequest) -> Result<bool, Response> {
    let header = req.header("authorization").unwrap_or_default();
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match token.and_then(|t| state.tokens.get(t)) {
        Some(w) => Ok(*w),
        None => Err(error(401, "unauthorized", "unable to authenticate")),
    }
}

/// Hetzner's `page` (default 1) and `per_page` (default 25, at most 50:
/// more is cut to 50 rather than refused, so a client that asks for 100
/// and ignores `next_page` misses entries, as it would for real): the
/// slice of `total` items to answer and `meta`, or the 400 for a bad
/// parameter.
fn paginate(
    pairs: &[(String, String)],
    total: usize,
) -> Result<(std::ops::Range<usize>, Value), Response> {
    let number = |name: &str, default: usize| match pairs.iter().find(|(n, _)| n == name) {
        None => Ok(default),
        Some((_, v)) => parse_id(v)
            .filter(|n| *n >= 1)
            .map(|n| n as usize)
            .ok_or_else(|| field_error(400, name, "must be a positive integer")),
    };
    let page = number("page", 1)?;
    let per_page = number("per_page", DEFAULT_PER_PAGE)?.min(MAX_PER_PAGE);
    let last_page = total.div_ceil(per_page).max(1);
    let start = (page - 1).saturating_mul(per_page).min(total);
    let end = start.saturating_add(per_page).min(total);
    let meta = json!({"pagination": {
        "page": page,
        "per_page": per_page,
        "previous_page": (page > 1).then(|| page - 1),
        "next_page": (page < last_page).then(|| page + 1),
        "last_page": last_page,
        "total_entries": total,
    }});
    Ok((start..end, meta))
}

/// `name` filters exactly; `label_selector` and `sort` are accepted and
/// ignored (the order is by id, which is what an unsorted list shows).
fn list_floating_ips(state: &HetznerState, pairs: &[(String, String)]) -> Response {
    let name = pairs.iter().find(|(n, _)| n == "name").map(|(_, v)| v);
    let matching: Vec<&FloatingIp> = state
        .fips
        .values()
        .filter(|f| name.is_none_or(|n| f.name == *n))
        .collect();
    match paginate(pairs, matching.len()) {
        Ok((range, meta)) => {
            let page: Vec<Value> = matching[range].iter().map(|f| fip_json(f)).collect();
            Response::json(200, &json!({"floating_ips": page, "meta": meta}))
        }
        Err(resp) => resp,
    }
}

fn list_servers(state: &HetznerState, pairs: &[(String, String)]) -> Response {
    let name = pairs.iter().find(|(n, _)| n == "name").map(|(_, v)| v);
    let matching: Vec<u64> = state
        .servers
        .iter()
        .filter(|(_, n)| name.is_none_or(|want| *n == want))
        .map(|(id, _)| *id)
        .collect();
    match paginate(pairs, matching.len()) {
        Ok((range, meta)) => {
            let page: Vec<Value> = matching[range]
                .iter()
                .map(|id| server_json(state, *id))
                .collect();
            Response::json(200, &json!({"servers": page, "meta": meta}))
        }
        Err(resp) => resp,
    }
}

/// One GET of an action, if it exists and `belongs` (to the Floating IP
/// in the path).
fn get_action(
    state: &mut HetznerState,
    id: Option<u64>,
    belongs: impl Fn(&Action) -> bool,
) -> Response {
    let found = id.filter(|i| state.actions.get(i).is_some_and(&belongs));
    match found.and_then(|i| state.poll(i)) {
        Some(action) => Response::json(200, &json!({ "action": action })),
        None => not_found("action"),
    }
}

/// `GET /v1/actions?id=1&id=2`: each action named counts as one poll;
/// unknown ids are left out of the answer (hcloud-go's waiter notices).
/// Without an `id`, 400: listing every action was removed in January
/// 2025.
fn list_actions(state: &mut HetznerState, pairs: &[(String, String)]) -> Response {
    let mut ids = BTreeSet::new();
    for (name, value) in pairs.iter().filter(|(n, _)| n == "id") {
        match parse_id(value) {
            Some(id) => ids.insert(id),
            None => return field_error(400, name, "must be an integer"),
        };
    }
    if ids.is_empty() {
        return field_error(400, "id", "is required");
    }
    let found: Vec<Value> = ids.into_iter().filter_map(|id| state.poll(id)).collect();
    match paginate(pairs, found.len()) {
        Ok((range, meta)) => Response::json(200, &json!({"actions": &found[range], "meta": meta})),
        Err(resp) => resp,
    }
}

/// A write's JSON body; an empty body is `{}` (unassign has none) and
/// needs no `Content-Type`. A body that is not declared JSON is refused
/// with 400 `invalid_input`, not 415: every Hetzner error carries a code
/// from its documented table, which has none for a media type, and 400
/// `invalid_input` is what that table gives for a request it cannot take.
fn json_body(req: &RawRequest) -> Result<Value, Response> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    if !is_json(req) {
        let declared = req.header("content-type").unwrap_or("none");
        let message = format!("Content-Type must be application/json, not {declared}");
        return Err(error(400, "invalid_input", &message));
    }
    let body: Value = serde_json::from_slice(&req.body).map_err(|e| {
        Response::json(
            400,
            &json!({"error": {
                "code": "invalid_input",
                "message": format!("request body is not valid JSON: {e}"),
                "details": {"fields": []},
            }}),
        )
    })?;
    if !body.is_object() {
        return Err(Response::json(
            400,
            &json!({"error": {
                "code": "invalid_input",
                "message": "request body must be a JSON object",
                "details": {"fields": []},
            }}),
        ));
    }
    Ok(body)
}

/// The checks, in the order the mock makes them: the Floating IP (404),
/// the body (400), the server (422), a running action (423), then
/// [`AssignedConflict`] (422); then a `running` action, 201.
fn start_action(state: &mut HetznerState, req: &RawRequest, id: &str, assign: bool) -> Response {
    let Some(fip) = parse_id(id).filter(|i| state.fips.contains_key(i)) else {
        return not_found("floating_ip");
    };
    let body = match json_body(req) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let target = if assign {
        let server = match body.get("server") {
            None => return field_error(400, "server", "Missing data for required field."),
            Some(v) => match v.as_u64().filter(|n| i64::try_from(*n).is_ok()) {
                Some(n) => n,
                None => return field_error(400, "server", "Not a valid integer."),
            },
        };
        // The doc does not say what assigning to a server that does not
        // exist answers; 422 `invalid_input` with a field error is
        // inferred (the body is well-formed, its value unusable).
        if !state.servers.contains_key(&server) {
            return field_error(422, "server", &format!("server with ID {server} not found"));
        }
        Some(server)
    } else {
        None
    };
    if let Some(running) = state.running_on(fip) {
        let message = format!("floating_ip {fip} is locked by running action {running}");
        return error(423, "locked", &message);
    }
    let current = state.fips.get(&fip).and_then(|f| f.server);
    if let Some(server) = target {
        let conflict = match state.conflict {
            AssignedConflict::SameServer => current == Some(server),
            AssignedConflict::AnyServer => current.is_some(),
            AssignedConflict::Never => false,
        };
        if conflict {
            return error(
                422,
                "floating_ip_assigned",
                "The Floating IP is already assigned",
            );
        }
    }
    let fail = assign && state.failing_actions > 0;
    if fail {
        state.failing_actions -= 1;
    }
    let server_resource = if assign { target } else { current };
    let mut resources: Vec<(u64, &'static str)> =
        server_resource.map(|s| (s, "server")).into_iter().collect();
    resources.push((fip, "floating_ip"));
    let id = state.next_action;
    state.next_action += 1;
    let action = Action {
        id,
        command: if assign {
            "assign_floating_ip"
        } else {
            "unassign_floating_ip"
        },
        fip,
        target,
        resources,
        status: Status::Running,
        progress: 0,
        polls: 0,
        fail,
        started: SystemTime::now(),
        started_at: Instant::now(),
        finished: None,
    };
    let answer = action_json(&action);
    state.actions.insert(id, action);
    // Even with zero polls the answer says `running`: the client must poll.
    Response::json(201, &json!({ "action": answer }))
}

fn action_json(a: &Action) -> Value {
    let error = (a.status == Status::Error)
        .then(|| json!({"code": "action_failed", "message": "Floating IP assignment failed"}));
    let resources: Vec<Value> = a
        .resources
        .iter()
        .map(|(id, kind)| json!({"id": id, "type": kind}))
        .collect();
    json!({
        "id": a.id,
        "command": a.command,
        "status": a.status.text(),
        "progress": a.progress,
        "started": clock::rfc3339_offset(a.started),
        "finished": a.finished.map(clock::rfc3339_offset),
        "resources": resources,
        "error": error,
    })
}

/// Falkenstein, exactly as in the published example.
fn home_location() -> Value {
    json!({
        "id": 1,
        "name": "fsn1",
        "description": "Falkenstein DC Park 1",
        "country": "DE",
        "city": "Falkenstein",
        "latitude": 50.47612,
        "longitude": 12.370071,
        "network_zone": "eu-central",
    })
}

fn fip_json(f: &FloatingIp) -> Value {
    // Hetzner's default reverse name for an IPv4 address; IPv6 networks
    // have none until set.
    let dns_ptr = if f.v6 {
        json!([])
    } else {
        let reversed: Vec<&str> = f.ip.rsplit('.').collect();
        json!([{"ip": f.ip, "dns_ptr": format!("static.{}.clients.your-server.de", reversed.join("."))}])
    };
    json!({
        "id": f.id,
        "name": f.name,
        "description": f.name,
        "ip": f.ip,
        "type": if f.v6 { "ipv6" } else { "ipv4" },
        "server": f.server,
        "dns_ptr": dns_ptr,
        "home_location": home_location(),
        "blocked": f.blocked,
        "protection": {"delete": false},
        "labels": {},
        "created": CREATED,
    })
}

fn server_json(state: &HetznerState, id: u64) -> Value {
    let name = state.servers.get(&id).map(String::as_str).unwrap_or("");
    let fips: Vec<u64> = state
        .fips
        .values()
        .filter(|f| f.server == Some(id))
        .map(|f| f.id)
        .collect();
    json!({
        "id": id,
        "name": name,
        "status": "running",
        "created": CREATED,
        "public_net": {"floating_ips": fips},
        "labels": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floating_ip_keys() {
        assert_eq!(
            parse_floating_ip("203.0.113.1"),
            Some(("203.0.113.1".into(), false))
        );
        assert_eq!(
            parse_floating_ip("203.0.113.1/32"),
            Some(("203.0.113.1".into(), false))
        );
        assert_eq!(parse_floating_ip("203.0.113.1/24"), None);
        assert_eq!(
            parse_floating_ip("2001:0db8:1:0::/64"),
            Some(("2001:db8:1::/64".into(), true))
        );
        // A bare address stands for its /64.
        assert_eq!(
            parse_floating_ip("2001:db8:1::5"),
            Some(("2001:db8:1::/64".into(), true))
        );
        assert_eq!(
            parse_floating_ip("2001:db8:1:2:3::/80"),
            Some(("2001:db8:1:2:3::/80".into(), true))
        );
        for bad in [
            "",
            "nope",
            "2001:db8::/129",
            "2001:db8::/",
            "1.2.3.4/x",
            "::/+1",
        ] {
            assert_eq!(parse_floating_ip(bad), None, "{bad}");
        }
        assert!(v6_contains(
            "2001:db8:1::/64",
            "2001:db8:1::ffff".parse().expect("v6")
        ));
        assert!(!v6_contains(
            "2001:db8:1::/64",
            "2001:db8:2::1".parse().expect("v6")
        ));
        assert!(v6_contains("::/0", "2001:db8:2::1".parse().expect("v6")));
    }

    #[test]
    fn path_ids() {
        assert_eq!(parse_id("4000000001"), Some(4_000_000_001));
        assert_eq!(parse_id("9223372036854775807"), Some(i64::MAX as u64));
        for bad in ["", "+1", "-1", "1 ", "0x10", "9223372036854775808", "abc"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn actions_end_after_the_polls_and_move_only_on_success() {
        let mut s = HetznerState::new();
        s.servers.insert(7, "a".into());
        s.fips.insert(
            1,
            FloatingIp {
                id: 1,
                ip: "203.0.113.1".into(),
                v6: false,
                name: "x".into(),
                server: None,
                blocked: false,
            },
        );
        let mk = |id: u64, fail: bool| Action {
            id,
            command: "assign_floating_ip",
            fip: 1,
            target: Some(7),
            resources: vec![(7, "server"), (1, "floating_ip")],
            status: Status::Running,
            progress: 0,
            polls: 0,
            fail,
            started: SystemTime::now(),
            started_at: Instant::now(),
            finished: None,
        };
        s.actions.insert(10, mk(10, true));
        s.action_polls = 1;
        assert_eq!(
            s.poll(10).map(|a| a["status"].clone()),
            Some(json!("running"))
        );
        let failed = s.poll(10).expect("action");
        assert_eq!(failed["status"], "error");
        assert_eq!(failed["error"]["code"], "action_failed");
        assert_eq!(s.server_of("203.0.113.1"), None);
        s.actions.insert(11, mk(11, false));
        s.action_polls = 0;
        assert_eq!(s.poll(11).map(|a| a["progress"].clone()), Some(json!(100)));
        assert_eq!(s.server_of("203.0.113.1"), Some(7));
        // Unpolled actions end by the clock.
        s.actions.insert(12, mk(12, false));
        s.action_timeout = Duration::ZERO;
        assert_eq!(s.running_actions(), 1);
        s.settle(Instant::now());
        assert_eq!(s.running_actions(), 0);
    }
}
