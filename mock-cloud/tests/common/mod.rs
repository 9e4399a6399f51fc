//! A raw HTTP client for the mock tests, so that what is on the wire is
//! exactly what a test wrote: reqwest would normalise away the malformed
//! and odd requests the mocks must survive.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use mock_cloud::{Cloudscale, DigitalOcean, Ec2, Exoscale, Hetzner, Imds};

// Only the Hetzner and DigitalOcean tests compare with published examples.
#[allow(dead_code)]
pub mod shape;
// Only the AWS tests sign requests.
#[allow(dead_code)]
pub mod sigv4;

/// Where a raw request goes: a mock, or a `host:port` as text.
pub trait Addr {
    fn socket_addr(&self) -> SocketAddr;
}

impl Addr for Cloudscale {
    fn socket_addr(&self) -> SocketAddr {
        self.addr()
    }
}

impl Addr for Exoscale {
    fn socket_addr(&self) -> SocketAddr {
        self.addr()
    }
}

impl Addr for Hetzner {
    fn socket_addr(&self) -> SocketAddr {
        self.addr()
    }
}

impl Addr for DigitalOcean {
    fn socket_addr(&self) -> SocketAddr {
        self.addr()
    }
}

impl Addr for Ec2 {
    fn socket_addr(&self) -> SocketAddr {
        self.addr()
    }
}

impl Addr for Imds {
    fn socket_addr(&self) -> SocketAddr {
        self.addr()
    }
}

impl Addr for str {
    fn socket_addr(&self) -> SocketAddr {
        self.parse()
            .unwrap_or_else(|e| panic!("not an address: {self:?}: {e}"))
    }
}

/// An answer with its headers, for the mocks whose headers are part of
/// the contract (rate limits, request ids).
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub status: u16,
    /// In the order received, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

// Each test binary uses a part of this module.
#[allow(dead_code)]
impl Answer {
    /// The first header named `name` (case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A header as a number; panics (failing the test) when absent or not
    /// one.
    pub fn number(&self, name: &str) -> u64 {
        let v = self
            .header(name)
            .unwrap_or_else(|| panic!("no {name} in {self:?}"));
        v.parse().unwrap_or_else(|e| panic!("{name}: {v:?}: {e}"))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// Sends raw bytes, reads until the server closes; the answer with its
/// headers (status 0 when there was none).
pub fn raw_answer(to: &(impl Addr + ?Sized), bytes: &[u8]) -> Answer {
    let mut s = TcpStream::connect(to.socket_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(bytes).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Answer::default();
    };
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Sends raw bytes, reads until the server closes; returns (status, body).
#[allow(dead_code)]
pub fn raw(to: &(impl Addr + ?Sized), bytes: &[u8]) -> (u16, String) {
    let a = raw_answer(to, bytes);
    (a.status, a.body)
}

/// One request on its own connection, with the extra `headers` and a body
/// sent as it is (no `Content-Type` unless among `headers`).
#[allow(dead_code)]
pub fn send(
    to: &(impl Addr + ?Sized),
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (n, v) in headers {
        r.push_str(&format!("{n}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    r.push_str(body);
    raw_answer(to, r.as_bytes())
}

/// One request on its own connection, with a JSON body if any.
#[allow(dead_code)]
pub fn req(
    to: &(impl Addr + ?Sized),
    method: &str,
    target: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    if let Some(a) = auth {
        r.push_str(&format!("Authorization: {a}\r\n"));
    }
    if let Some(b) = body {
        r.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ));
    } else {
        r.push_str("\r\n");
    }
    raw(to, r.as_bytes())
}
