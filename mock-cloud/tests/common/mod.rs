//! A raw HTTP client for the mock tests, so that what is on the wire is
//! exactly what a test wrote: reqwest would normalise away the malformed
//! and odd requests the mocks must survive.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use mock_cloud::{Cloudscale, Exoscale};

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

impl Addr for str {
    fn socket_addr(&self) -> SocketAddr {
        self.parse()
            .unwrap_or_else(|e| panic!("not an address: {self:?}: {e}"))
    }
}

/// Sends raw bytes, reads until the server closes; returns (status, body).
pub fn raw(to: &(impl Addr + ?Sized), bytes: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(to.socket_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(bytes).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// One request on its own connection, with a JSON body if any.
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
