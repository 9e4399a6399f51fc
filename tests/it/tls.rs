//! TLS as enterprises run it: the API behind a CA of their own
//! (`ca-file`) and reached through an HTTP CONNECT proxy (`HTTPS_PROXY`),
//! against the HTTPS mock, through the built binary.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::support::*;

const T: Duration = Duration::from_secs(10);
const MASTER: [&str; 3] = ["INSTANCE", "VI_1", "MASTER"];

/// A World for the HTTPS `mock`, trusting its CA through `ca-file` (a
/// relative path: next to the YAML) when `trust` says so.
fn world(mock: &mock_cloud::Cloudscale, trust: bool) -> World {
    let extra = if trust { "ca-file: test-ca.pem\n" } else { "" };
    let w = World::new(&mock.url(), SERVER_A, extra);
    let pem = mock.ca_pem().expect("an HTTPS mock has a CA");
    std::fs::write(w.path("test-ca.pem"), pem).expect("write CA");
    w
}

#[track_caller]
fn moved_here(mock: &mock_cloud::Cloudscale, w: &World) {
    assert!(
        mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)),
        "address never moved here; log:\n{}",
        w.log_text()
    );
    assert_eq!(mock.patch_count("192.0.2.10"), 1);
}

#[test]
fn master_over_https_trusts_the_ca_file() {
    let mock = mock_cloudscale_tls();
    assert!(mock.url().starts_with("https://"), "{}", mock.url());
    let w = world(&mock, true);
    let out = w.notify(&MASTER);
    assert!(out.status.success(), "{}", stderr(&out));
    moved_here(&mock, &w);
    w.backup_ends_the_refresher();
}

#[test]
fn without_the_ca_file_the_refresher_fails_tls_verification_and_sends_nothing() {
    let mock = mock_cloudscale_tls();
    let w = world(&mock, false);
    let out = w.notify(&MASTER);
    // The MASTER call itself succeeds: the refresher owns the API.
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        w.wait_log("refresh failed", T),
        "no failed refresh logged:\n{}",
        w.log_text()
    );
    let log = w.log_text();
    assert!(
        log.contains("invalid peer certificate: UnknownIssuer"),
        "the log does not say why: {log}"
    );
    assert!(mock.requests().is_empty(), "{:?}", mock.requests());
    assert_eq!(mock.server_of("192.0.2.10").as_deref(), Some(SERVER_B));
}

#[test]
fn self_test_over_https_works_with_the_ca_file_only() {
    let mock = mock_cloudscale_tls();
    let w = world(&mock, true);
    let out = w.run(&["-T", w.config.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("lb-a"), "{}", stdout(&out));

    let untrusting = world(&mock, false);
    let out = untrusting.run(&["-T", untrusting.config.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("UnknownIssuer"),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn a_broken_ca_file_is_a_config_error_before_any_side_effect() {
    let mock = mock_cloudscale_tls();
    let w = world(&mock, true);
    std::fs::write(w.path("test-ca.pem"), "not a certificate\n").expect("write");
    let out = w.notify(&MASTER);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert!(
        line.contains("ca-file: ")
            && line.contains(&w.path("test-ca.pem").display().to_string())
            && line.contains("holds no PEM certificate")
            && line.contains("point ca-file at a PEM file of CA certificates"),
        "{err}"
    );
    assert!(mock.requests().is_empty());
    assert!(w.refreshers().is_empty());
    let locks = std::fs::read_dir(w.path("lock")).expect("lock dir").count();
    assert_eq!(locks, 0, "a lock file was created");
}

/// A tiny HTTP CONNECT proxy on loopback: counts the tunnels it opened
/// and every other request (which it refuses with 502), and relays bytes
/// both ways. Stops accepting when dropped.
struct Proxy {
    port: u16,
    connects: Arc<AtomicUsize>,
    others: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let connects = Arc::new(AtomicUsize::new(0));
        let others = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, o, s) = (connects.clone(), others.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (c, o) = (c.clone(), o.clone());
                thread::spawn(move || {
                    let _ = tunnel(conn, &c, &o);
                });
            }
        });
        Proxy {
            port,
            connects,
            others,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn connects(&self) -> usize {
        self.connects.load(Ordering::SeqCst)
    }

    fn others(&self) -> usize {
        self.others.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One client connection: `CONNECT host:port` opens a tunnel, anything
/// else is counted and refused.
fn tunnel(mut client: TcpStream, connects: &AtomicUsize, others: &AtomicUsize) -> io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte so that nothing after the head is swallowed.
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
        others.fetch_add(1, Ordering::SeqCst);
        return client.write_all(
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let upstream = TcpStream::connect(target)?;
    connects.fetch_add(1, Ordering::SeqCst);
    client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")?;
    let (mut up_read, mut client_write) = (upstream.try_clone()?, client.try_clone()?);
    let back = thread::spawn(move || {
        let _ = io::copy(&mut up_read, &mut client_write);
        let _ = client_write.shutdown(Shutdown::Write);
    });
    let mut up_write = upstream;
    let _ = io::copy(&mut client, &mut up_write);
    let _ = up_write.shutdown(Shutdown::Write);
    let _ = back.join();
    Ok(())
}

#[test]
fn https_proxy_carries_the_api_calls_through_a_connect_tunnel() {
    let mock = mock_cloudscale_tls();
    let proxy = Proxy::start();
    let w = world(&mock, true);
    let url = proxy.url();
    let out = w.notify_env(&[("HTTPS_PROXY", &url)], &MASTER);
    assert!(out.status.success(), "{}", stderr(&out));
    moved_here(&mock, &w);
    assert!(
        proxy.connects() >= 1,
        "the PATCH did not go through the proxy"
    );
    assert_eq!(proxy.others(), 0);
}

#[test]
fn no_proxy_sends_the_api_calls_direct() {
    let mock = mock_cloudscale_tls();
    let proxy = Proxy::start();
    let w = world(&mock, true);
    let url = proxy.url();
    let out = w.notify_env(&[("HTTPS_PROXY", &url), ("NO_PROXY", "127.0.0.1")], &MASTER);
    assert!(out.status.success(), "{}", stderr(&out));
    moved_here(&mock, &w);
    assert_eq!(
        proxy.connects() + proxy.others(),
        0,
        "went through the proxy"
    );
}

#[test]
fn the_metadata_service_is_asked_direct_whatever_the_proxy_variables_say() {
    let mock = mock_cloudscale_tls();
    let meta = mock_cloud::Metadata::start(SERVER_A).expect("metadata mock");
    let proxy = Proxy::start();
    let w = world(&mock, true);
    let yaml = std::fs::read_to_string(&w.config)
        .expect("config")
        .replace(&format!("  server-uuid: {SERVER_A}\n"), "");
    std::fs::write(&w.config, yaml).expect("config");
    let url = proxy.url();
    let meta_url = meta.url();
    let env = [
        ("HTTPS_PROXY", url.as_str()),
        ("HTTP_PROXY", url.as_str()),
        ("ALL_PROXY", url.as_str()),
        ("FLOATY_METADATA_URL", meta_url.as_str()),
    ];
    let out = w.notify_env(&env, &MASTER);
    assert!(out.status.success(), "{}", stderr(&out));
    moved_here(&mock, &w);
    assert!(!meta.requests().is_empty(), "metadata never asked");
    assert_eq!(proxy.others(), 0, "the metadata lookup went to the proxy");
    assert!(proxy.connects() >= 1, "the API call did not use the proxy");
}
