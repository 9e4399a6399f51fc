//! A deliberately small HTTP/1.1 server on std sockets and one thread per
//! connection.
//!
//! Why not hyper: the mocks must run inside plain `#[test]`s, inside network
//! namespaces and as a standalone binary without pulling an async runtime
//! into every test binary, and they must be able to misbehave on purpose
//! (hang, reset, send garbage), which a real server framework fights.
//!
//! It speaks just enough HTTP for reqwest and curl: keep-alive, pipelining,
//! `Content-Length` bodies, in the clear or over TLS (`tls.rs`). It never panics on what a peer sends: anything
//! it does not understand is answered with a 4xx/5xx and the connection is
//! closed.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Request line plus headers; larger heads are answered with 431.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Request bodies above this are answered with 413.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// Locks a mutex even if a thread panicked while holding it: a mock that
/// wedges after one bad test would hide the real failure behind a cascade.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A mock's state and the condition its `wait_for` sleeps on: changes go
/// through [`Watched::change`] (or are followed by [`Watched::notify`]), so
/// no waiter misses one.
pub(crate) struct Watched<S> {
    state: Mutex<S>,
    cond: Condvar,
}

impl<S> Watched<S> {
    pub fn new(state: S) -> Watched<S> {
        Watched {
            state: Mutex::new(state),
            cond: Condvar::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, S> {
        lock(&self.state)
    }

    pub fn notify(&self) {
        self.cond.notify_all();
    }

    pub fn change(&self, f: impl FnOnce(&mut S)) {
        f(&mut self.lock());
        self.notify();
    }

    /// Waits until `done` holds, re-checking after every notification and,
    /// with `poll`, at least that often (for state that changes by the
    /// clock rather than by an event); false on timeout.
    pub fn wait_until(
        &self,
        timeout: Duration,
        poll: Option<Duration>,
        mut done: impl FnMut(&mut S) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if done(&mut state) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wait = poll.map_or(deadline - now, |p| (deadline - now).min(p));
            state = match self.cond.wait_timeout(state, wait) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// One parsed request, as the engine hands it to a mock.
#[derive(Debug, Clone)]
pub(crate) struct RawRequest {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: value.to_string().into_bytes(),
        }
    }

    /// The flat `{"detail": "..."}` error body cloudscale (Django REST
    /// framework) answers with.
    pub fn detail(status: u16, message: &str) -> Response {
        Response::json(status, &serde_json::json!({ "detail": message }))
    }

    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What a mock decided to do with a request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Answer, after `delay` if any.
    Respond {
        response: Response,
        delay: Option<Duration>,
    },
    /// Close the connection without answering.
    Close,
    /// Never answer; hold the connection until the peer gives up or the
    /// server stops.
    Hang,
}

impl Reply {
    pub fn now(response: Response) -> Reply {
        Reply::Respond {
            response,
            delay: None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Reply::Respond { response, .. } => Some(response.status),
            Reply::Close | Reply::Hang => None,
        }
    }
}

pub(crate) trait Handler: Send + Sync + 'static {
    fn handle(&self, request: RawRequest) -> Reply;
}

/// Shared between the engine handle, the accept thread and the connection
/// threads, so that stopping can reach every blocked thread.
struct Stop {
    stopped: Mutex<bool>,
    cond: Condvar,
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
}

impl Stop {
    fn is_stopped(&self) -> bool {
        *lock(&self.stopped)
    }

    /// Sleeps for `d` unless the server stops first; true if it stopped.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut stopped = lock(&self.stopped);
        loop {
            if *stopped {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = match self.cond.wait_timeout(stopped, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// A running server. Dropping it stops accepting, closes every connection
/// and joins the accept thread; connection threads end on their own within
/// moments because their sockets were shut down.
pub(crate) struct Engine {
    addr: SocketAddr,
    stop: Arc<Stop>,
    accept: Option<JoinHandle<()>>,
    https: bool,
}

/// The server side of TLS, shared by every connection of an engine.
type TlsConfig = Arc<rustls::ServerConfig>;

impl Engine {
    pub fn start(listener: TcpListener, handler: Arc<dyn Handler>) -> io::Result<Engine> {
        Engine::start_with(listener, handler, None)
    }

    /// [`Engine::start`], serving TLS with `tls` when given.
    fn start_with(
        listener: TcpListener,
        handler: Arc<dyn Handler>,
        tls: Option<TlsConfig>,
    ) -> io::Result<Engine> {
        let addr = listener.local_addr()?;
        let https = tls.is_some();
        let stop = Arc::new(Stop {
            stopped: Mutex::new(false),
            cond: Condvar::new(),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        });
        let accept_stop = Arc::clone(&stop);
        let accept = thread::Builder::new()
            .name("mock-accept".into())
            .spawn(move || accept_loop(listener, handler, tls, accept_stop))?;
        Ok(Engine {
            addr,
            stop,
            accept: Some(accept),
            https,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A base URL a client on this host can reach, ending with `/`.
    pub fn url(&self) -> String {
        let addr = reachable(self.addr);
        let scheme = if self.https { "https" } else { "http" };
        match addr.ip() {
            IpAddr::V4(ip) => format!("{scheme}://{}:{}/", ip, addr.port()),
            IpAddr::V6(ip) => format!("{scheme}://[{}]:{}/", ip, addr.port()),
        }
    }
}

/// One mock's engines: the first listener's (whose URL is the mock's) and
/// those [`Served::also_listen`] added, so that every node of a lab, each
/// in its own network namespace, sees one API with one state. Dropping it
/// stops them all.
pub(crate) struct Served {
    handler: Arc<dyn Handler>,
    first: Engine,
    more: Mutex<Vec<Engine>>,
    /// Every listener serves TLS with this, when set.
    tls: Option<TlsConfig>,
    ca_pem: Option<String>,
}

impl Served {
    pub fn start(listener: TcpListener, handler: Arc<dyn Handler>) -> io::Result<Served> {
        Served::start_with(listener, handler, None)
    }

    /// [`Served::start`] over HTTPS, with a certificate from a new test CA
    /// (see [`Served::ca_pem`]).
    pub fn start_tls(listener: TcpListener, handler: Arc<dyn Handler>) -> io::Result<Served> {
        let tls = crate::tls::Tls::new(Some(listener.local_addr()?.ip()))?;
        Served::start_with(listener, handler, Some(tls))
    }

    fn start_with(
        listener: TcpListener,
        handler: Arc<dyn Handler>,
        tls: Option<crate::tls::Tls>,
    ) -> io::Result<Served> {
        let (config, ca_pem) = match tls {
            Some(t) => (Some(t.config), Some(t.ca_pem)),
            None => (None, None),
        };
        let first = Engine::start_with(listener, Arc::clone(&handler), config.clone())?;
        Ok(Served {
            handler,
            first,
            more: Mutex::new(Vec::new()),
            tls: config,
            ca_pem,
        })
    }

    /// The PEM of the CA that signed the HTTPS certificate; None in the
    /// clear.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// # Panics
    /// If no thread can be spawned: the mocks' callers are tests and a lab,
    /// which cannot go on without the listener anyway.
    pub fn also_listen(&self, listener: TcpListener) {
        match Engine::start_with(listener, Arc::clone(&self.handler), self.tls.clone()) {
            Ok(engine) => lock(&self.more).push(engine),
            Err(e) => panic!("cannot serve another listener: {e}"),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.first.addr()
    }

    /// The first listener's base URL, ending with `/`.
    pub fn url(&self) -> String {
        self.first.url()
    }
}

/// A wildcard bind cannot be connected to as such; use loopback instead.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

impl Drop for Engine {
    fn drop(&mut self) {
        *lock(&self.stop.stopped) = true;
        self.stop.cond.notify_all();
        for (_, conn) in lock(&self.stop.conns).drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
        // std cannot interrupt a blocking accept(); a connection does.
        let woke =
            TcpStream::connect_timeout(&reachable(self.addr), Duration::from_secs(1)).is_ok();
        if let Some(accept) = self.accept.take() {
            if woke {
                let _ = accept.join();
            }
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    tls: Option<TlsConfig>,
    stop: Arc<Stop>,
) {
    loop {
        let accepted = listener.accept();
        if stop.is_stopped() {
            return;
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors and the like: back off instead of
                // spinning; the condition usually clears.
                if stop.sleep(Duration::from_millis(50)) {
                    return;
                }
                continue;
            }
        };
        let handler = Arc::clone(&handler);
        let stop = Arc::clone(&stop);
        let tls = tls.clone();
        let _ = thread::Builder::new()
            .name("mock-conn".into())
            .spawn(move || connection(stream, handler, tls, stop));
    }
}

fn connection(
    stream: TcpStream,
    handler: Arc<dyn Handler>,
    tls: Option<TlsConfig>,
    stop: Arc<Stop>,
) {
    let id = stop.next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut conns = lock(&stop.conns);
        if stop.is_stopped() {
            return;
        }
        match stream.try_clone() {
            Ok(clone) => {
                conns.insert(id, clone);
            }
            Err(_) => return,
        }
    }
    let _ = stream.set_nodelay(true);
    match tls {
        None => serve(&mut { stream }, handler.as_ref(), &stop),
        // The handshake runs inside the first read: a client that refuses
        // the certificate ends the connection there, before any request
        // is logged, as with a real server.
        Some(config) => {
            if let Ok(conn) = rustls::ServerConnection::new(config) {
                let mut tls = rustls::StreamOwned::new(conn, stream);
                serve(&mut tls, handler.as_ref(), &stop);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        }
    }
    lock(&stop.conns).remove(&id);
}

fn serve(stream: &mut (impl Read + Write), handler: &dyn Handler, stop: &Stop) {
    let mut buf = Vec::new();
    loop {
        let request = match read_request(stream, &mut buf) {
            Ok(Some(r)) => r,
            Ok(None) | Err(ReadError::Io) => return,
            Err(ReadError::Bad(status, message)) => {
                let resp = Response::detail(status, message);
                let _ = write_response(stream, &resp, true, false);
                return;
            }
        };
        if stop.is_stopped() {
            return;
        }
        let keep_alive = wants_keep_alive(&request);
        let head_only = request.method == "HEAD";
        match handler.handle(request) {
            Reply::Respond { response, delay } => {
                if let Some(d) = delay {
                    if stop.sleep(d) {
                        return;
                    }
                }
                if write_response(stream, &response, !keep_alive, head_only).is_err() || !keep_alive
                {
                    return;
                }
            }
            Reply::Close => return,
            Reply::Hang => {
                // Block until the peer closes or the engine shuts the socket
                // down; no timer, no polling.
                let mut sink = [0u8; 4096];
                loop {
                    match stream.read(&mut sink) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            }
        }
    }
}

#[derive(Debug)]
enum ReadError {
    Io,
    Bad(u16, &'static str),
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn fill(stream: &mut impl Read, buf: &mut Vec<u8>) -> Result<usize, ReadError> {
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(ReadError::Io),
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads one request; `buf` carries bytes of pipelined requests over.
/// `Ok(None)` is a clean close between requests.
fn read_request(
    stream: &mut impl Read,
    buf: &mut Vec<u8>,
) -> Result<Option<RawRequest>, ReadError> {
    let head_end = loop {
        // RFC 9112 §2.2: ignore empty lines before a request line.
        while buf.starts_with(b"\r\n") {
            buf.drain(..2);
        }
        if let Some(pos) = find(buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Bad(431, "Request header fields too large."));
        }
        if fill(stream, buf)? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Io)
            };
        }
    };
    if head_end > MAX_HEAD {
        return Err(ReadError::Bad(431, "Request header fields too large."));
    }
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| ReadError::Bad(400, "Bad request: head is not UTF-8."))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) => (m, t, v),
        _ => return Err(ReadError::Bad(400, "Bad request line.")),
    };
    if !is_token(method) || target.is_empty() || !target.starts_with('/') {
        return Err(ReadError::Bad(400, "Bad request line."));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(ReadError::Bad(505, "HTTP version not supported.")),
    };
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or(ReadError::Bad(400, "Bad header line."))?;
        // Whitespace before the colon or a folded line: RFC 9112 says reject.
        if !is_token(name) {
            return Err(ReadError::Bad(400, "Bad header name."));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    if http10 {
        headers.push(("X-Mock-Http10".into(), "1".into()));
    }
    if headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
    {
        return Err(ReadError::Bad(
            501,
            "Transfer-Encoding is not supported by this mock.",
        ));
    }
    let mut length: Option<usize> = None;
    for (_, v) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ReadError::Bad(400, "Bad Content-Length."));
        }
        let n = v
            .parse::<usize>()
            .map_err(|_| ReadError::Bad(413, "Request body too large."))?;
        if length.is_some_and(|l| l != n) {
            return Err(ReadError::Bad(400, "Conflicting Content-Length."));
        }
        length = Some(n);
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY {
        return Err(ReadError::Bad(413, "Request body too large."));
    }
    let method = method.to_string();
    let target = target.to_string();
    let body_start = head_end + 4;
    while buf.len() < body_start + length {
        if fill(stream, buf)? == 0 {
            return Err(ReadError::Io);
        }
    }
    let body = buf[body_start..body_start + length].to_vec();
    buf.drain(..body_start + length);
    Ok(Some(RawRequest {
        method,
        target,
        headers,
        body,
    }))
}

fn wants_keep_alive(request: &RawRequest) -> bool {
    let has = |token: &str| {
        request
            .header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if request.header("x-mock-http10").is_some() {
        has("keep-alive")
    } else {
        !has("close")
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        423 => "Locked",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

fn write_response(
    stream: &mut impl Write,
    response: &Response,
    close: bool,
    head_only: bool,
) -> io::Result<()> {
    let status = response.status;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nServer: floaty-mock-cloud\r\n",
        status,
        reason(status)
    );
    for (name, value) in &response.headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    // 204 and 304 carry neither a body nor a Content-Length (RFC 9110).
    let bodiless = status == 204 || status == 304 || (100..200).contains(&status);
    if !bodiless {
        out.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !bodiless && !head_only {
        bytes.extend_from_slice(&response.body);
    }
    stream.write_all(&bytes)?;
    stream.flush()
}

/// Decodes `%XX` escapes; invalid escapes are kept literally, as most
/// servers do, rather than rejected.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a query string into decoded pairs, in order (repeated names,
/// as in Hetzner's `?id=1&id=2`, stay separate).
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&n.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// Whether a request's `Content-Type` says JSON (parameters such as
/// `charset` aside).
pub(crate) fn is_json(req: &RawRequest) -> bool {
    let content_type = req.header("content-type").unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case("application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<RawRequest>, ReadError> {
        let mut buf = Vec::new();
        read_request(&mut &bytes[..], &mut buf)
    }

    #[test]
    fn parses_pipelined_requests() {
        let data = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPATCH /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET";
        let mut src = &data[..];
        let mut buf = Vec::new();
        let a = read_request(&mut src, &mut buf).ok().flatten();
        assert_eq!(a.map(|r| r.target), Some("/a".to_string()));
        let b = read_request(&mut src, &mut buf).ok().flatten();
        let b = b.expect("second request");
        assert_eq!(b.method, "PATCH");
        assert_eq!(b.body, b"abc");
        // A truncated third request is an I/O error, not a panic.
        assert!(matches!(
            read_request(&mut src, &mut buf),
            Err(ReadError::Io)
        ));
    }

    #[test]
    fn rejects_malformed_heads() {
        for bad in [
            &b"GET\r\n\r\n"[..],
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET nopath HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nNo colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n folded: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"\xff\xfe / HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(parse(bad), Err(ReadError::Bad(..))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(parse(b""), Ok(None)));
        assert!(matches!(parse(b"\r\n\r\n"), Ok(None)));
    }

    #[test]
    fn never_panics_on_noise() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..400 {
            let mut data = b"PATCH /v1/x HTTP/1.1\r\n".to_vec();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let alphabet = b"\r\n: %0aZ-9\xff";
                data.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = parse(&data);
            let _ = percent_decode(&String::from_utf8_lossy(&data));
        }
    }

    #[test]
    fn query_pairs_keep_order_and_repeats() {
        assert_eq!(
            query_pairs(Some("id=1&id=2&name=a+b%2Fc&flag")),
            [
                ("id".to_string(), "1".to_string()),
                ("id".into(), "2".into()),
                ("name".into(), "a b/c".into()),
                ("flag".into(), String::new()),
            ]
        );
        assert!(query_pairs(None).is_empty());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("2001%3Adb8%3a%3A1"), "2001:db8::1");
        assert_eq!(percent_decode("a%zz%4"), "a%zz%4");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
