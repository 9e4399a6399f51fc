//! The cloudscale mock over real sockets, with a raw client so that what is
//! on the wire is exactly what the test wrote.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use mock_cloud::{Cloudscale, Fault, Metadata};

use common::{raw, req};

const TOKEN: &str = "s3cr3t-token";
const A: &str = "11111111-2222-4333-8444-555555555555";
const B: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";

fn mock() -> Cloudscale {
    let m = Cloudscale::start(TOKEN).expect("mock starts");
    m.add_server(A, "db1");
    m.add_server(B, "db2");
    m.add_floating_ip("192.0.2.10", Some(A));
    m.add_floating_ip("2001:db8::cafe", None);
    m
}

fn bearer() -> Option<&'static str> {
    Some("Bearer s3cr3t-token")
}

#[test]
fn authentication_like_drf() {
    let m = mock();
    let cases = [
        (None, "Authentication credentials were not provided."),
        (
            Some("Basic abc"),
            "Authentication credentials were not provided.",
        ),
        (
            Some("Bearer"),
            "Invalid token header. No credentials provided.",
        ),
        (
            Some("Bearer a b"),
            "Invalid token header. Token string should not contain spaces.",
        ),
        (Some("Bearer wrong"), "Invalid token."),
    ];
    for (auth, detail) in cases {
        let (status, body) = req(&m, "GET", "/v1/floating-ips", auth, None);
        assert_eq!(status, 401, "{auth:?}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["detail"], detail);
    }
    assert_eq!(
        req(
            &m,
            "GET",
            "/v1/floating-ips",
            Some("bearer s3cr3t-token"),
            None
        )
        .0,
        200
    );
}

#[test]
fn floating_ip_objects() {
    let m = mock();
    let (status, body) = req(&m, "GET", "/v1/floating-ips", bearer(), None);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let list = v.as_array().expect("array");
    assert_eq!(list.len(), 2);
    let (_, one) = req(&m, "GET", "/v1/floating-ips/192.0.2.10", bearer(), None);
    let one: serde_json::Value = serde_json::from_str(&one).expect("json");
    assert_eq!(one["network"], "192.0.2.10/32");
    assert_eq!(one["ip_version"], 4);
    assert_eq!(one["server"]["uuid"], A);
    assert_eq!(one["server"]["name"], "db1");
    assert_eq!(one["type"], "regional");
    assert_eq!(one["region"]["slug"], "lpg");
    assert!(one["load_balancer"].is_null());
    assert!(one["href"]
        .as_str()
        .expect("href")
        .ends_with("/v1/floating-ips/192.0.2.10"));
    let (_, six) = req(&m, "GET", "/v1/floating-ips/2001:db8::cafe", bearer(), None);
    let six: serde_json::Value = serde_json::from_str(&six).expect("json");
    assert_eq!(six["network"], "2001:db8::cafe/128");
    assert!(six["server"].is_null());
    // Percent-encoded colons are the same path; non-RFC-5952 text is not.
    assert_eq!(
        req(
            &m,
            "GET",
            "/v1/floating-ips/2001%3Adb8%3A%3Acafe",
            bearer(),
            None
        )
        .0,
        200
    );
    assert_eq!(
        req(
            &m,
            "GET",
            "/v1/floating-ips/2001:0db8::cafe",
            bearer(),
            None
        )
        .0,
        404
    );
    let (status, body) = req(&m, "GET", "/v1/floating-ips/192.0.2.99", bearer(), None);
    assert_eq!((status, body.as_str()), (404, r#"{"detail":"Not found."}"#));
    let (status, body) = req(&m, "GET", &format!("/v1/servers/{A}"), bearer(), None);
    assert_eq!(status, 200);
    assert!(body.contains("\"status\":\"running\""));
    assert_eq!(req(&m, "GET", "/v1/servers/nope", bearer(), None).0, 404);
}

#[test]
fn patch_moves_and_validates() {
    let m = mock();
    let path = "/v1/floating-ips/192.0.2.10";
    let (status, body) = req(
        &m,
        "PATCH",
        path,
        bearer(),
        Some(&format!(r#"{{"server":"{B}"}}"#)),
    );
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(m.server_of("192.0.2.10").as_deref(), Some(B));
    let (status, body) = req(&m, "PATCH", path, bearer(), Some(r#"{"server":"nope"}"#));
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(v["server"][0]
        .as_str()
        .expect("field error")
        .contains("nope"));
    assert_eq!(
        req(&m, "PATCH", path, bearer(), Some(r#"{"server":null}"#)).0,
        400
    );
    let (status, body) = req(&m, "PATCH", path, bearer(), Some("{not json"));
    assert_eq!(status, 400);
    assert!(body.contains("JSON parse error"));
    assert_eq!(req(&m, "PATCH", path, bearer(), Some("[1]")).0, 400);
    let plain = format!("PATCH {path} HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}");
    assert_eq!(raw(&m, plain.as_bytes()).0, 415);
    assert_eq!(
        req(
            &m,
            "PATCH",
            "/v1/floating-ips/192.0.2.99",
            bearer(),
            Some("{}")
        )
        .0,
        404
    );
    let (status, body) = req(&m, "DELETE", path, bearer(), None);
    assert_eq!(
        (status, body.as_str()),
        (405, r#"{"detail":"Method \"DELETE\" not allowed."}"#)
    );
    assert_eq!(m.server_of("192.0.2.10").as_deref(), Some(B));
    assert_eq!(m.patch_count("192.0.2.10"), 6);
    m.add_token("ro", false);
    assert_eq!(req(&m, "PATCH", path, Some("Bearer ro"), Some("{}")).0, 403);
    assert_eq!(req(&m, "GET", path, Some("Bearer ro"), None).0, 200);
}

#[test]
fn keep_alive_and_pipelining() {
    let m = mock();
    let mut s = TcpStream::connect(m.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let one = format!("GET /v1/servers/{A} HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    let body = format!(r#"{{"server":"{B}"}}"#);
    let two = format!(
        "PATCH /v1/floating-ips/192.0.2.10 HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(format!("{one}{two}").as_bytes())
        .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert_eq!(out.matches("HTTP/1.1 ").count(), 2, "{out}");
    assert!(out.contains("HTTP/1.1 204"));
    assert_eq!(m.server_of("192.0.2.10").as_deref(), Some(B));
}

#[test]
fn malformed_requests_get_4xx_not_panics() {
    let m = mock();
    for bad in [
        &b"garbage\r\n\r\n"[..],
        b"GET / HTTP/9\r\n\r\n",
        b"GET /v1/floating-ips HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /v1/floating-ips HTTP/1.1\r\nContent-Length: 9999999999\r\n\r\n",
    ] {
        let (status, _) = raw(&m, bad);
        assert!(
            (400..=505).contains(&status),
            "{status} for {:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // A huge head.
    let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
    big.resize(100_000, b'a');
    assert_eq!(raw(&m, &big).0, 431);
    // Still serving.
    assert_eq!(req(&m, "GET", "/v1/floating-ips", bearer(), None).0, 200);
}

#[test]
fn faults() {
    let m = mock();
    m.set_fault_times(
        Fault::TooMany {
            retry_after_secs: 7,
        },
        1,
    );
    let mut s = TcpStream::connect(m.addr()).expect("connect");
    s.write_all(b"GET /v1/floating-ips HTTP/1.1\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 429"));
    assert!(out.contains("Retry-After: 7\r\n"));
    assert_eq!(req(&m, "GET", "/v1/floating-ips", bearer(), None).0, 200);

    m.set_fault_on("PATCH", Fault::Maintenance503, None);
    assert_eq!(req(&m, "GET", "/v1/floating-ips", bearer(), None).0, 200);
    assert_eq!(
        req(
            &m,
            "PATCH",
            "/v1/floating-ips/192.0.2.10",
            bearer(),
            Some("{}")
        )
        .0,
        503
    );
    m.set_fault(Fault::Reset);
    assert_eq!(req(&m, "GET", "/v1/floating-ips", bearer(), None).0, 0);
    m.set_fault(Fault::Garbage);
    let (status, body) = req(&m, "GET", "/v1/floating-ips", bearer(), None);
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&body).is_err());
    m.set_fault(Fault::Status(500, r#"{"detail":"boom"}"#.into()));
    assert_eq!(
        req(&m, "GET", "/v1/floating-ips", bearer(), None),
        (500, r#"{"detail":"boom"}"#.into())
    );
    m.set_fault(Fault::Hang);
    let mut s = TcpStream::connect(m.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    s.write_all(b"GET /v1/floating-ips HTTP/1.1\r\n\r\n")
        .expect("write");
    let mut buf = [0u8; 16];
    assert!(s.read(&mut buf).is_err(), "a hung request gets no answer");
    m.clear_fault();
    let log = m.requests();
    assert_eq!(log.last().map(|r| r.status), Some(None));
}

#[test]
fn control_endpoints() {
    let m = mock();
    assert_eq!(
        req(
            &m,
            "PUT",
            "/_mock/floating-ips/192.0.2.10",
            None,
            Some(&format!(r#"{{"server":"{B}"}}"#))
        )
        .0,
        204
    );
    assert_eq!(m.server_of("192.0.2.10").as_deref(), Some(B));
    assert_eq!(
        req(
            &m,
            "PUT",
            "/_mock/fault",
            None,
            Some(r#"{"fault":"status","status":502,"times":1}"#)
        )
        .0,
        204
    );
    assert_eq!(req(&m, "GET", "/v1/floating-ips", bearer(), None).0, 502);
    assert_eq!(req(&m, "GET", "/v1/floating-ips", bearer(), None).0, 200);
    assert_eq!(
        req(
            &m,
            "PUT",
            "/_mock/fault",
            None,
            Some(r#"{"fault":"bogus"}"#)
        )
        .0,
        400
    );
    let (status, body) = req(&m, "GET", "/_mock/state", None, None);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["floating_ips"]["192.0.2.10"], B);
}

#[test]
fn wait_for_sees_changes_from_other_threads() {
    let m = mock();
    let other = m.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        req(
            &other,
            "PATCH",
            "/v1/floating-ips/2001:db8::cafe",
            bearer(),
            Some(&format!(r#"{{"server":"{A}"}}"#)),
        )
    });
    assert!(
        m.wait_for(Duration::from_secs(5), |s| s.server_of("2001:db8::cafe")
            == Some(A))
    );
    assert_eq!(t.join().expect("thread").0, 204);
    assert!(!m.wait_for(Duration::from_millis(20), |s| s
        .patch_count("2001:db8::cafe")
        > 1));
}

#[test]
fn stops_on_drop() {
    let m = mock();
    let addr = m.addr();
    // An idle keep-alive connection must not keep the server alive.
    let mut idle = TcpStream::connect(addr).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    drop(m);
    let mut buf = [0u8; 1];
    assert!(matches!(idle.read(&mut buf), Ok(0) | Err(_)));
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn metadata_service() {
    let md = Metadata::start(A).expect("starts");
    let url = md.url();
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let get = |path: &str| {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let ok = get("/openstack/latest/meta_data.json");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains(&format!(r#""cloudscale_uuid":"{A}""#)));
    assert!(get("/latest/meta-data/instance-id").starts_with("HTTP/1.1 404"));
    md.set_uuid(None);
    assert!(!get("/openstack/latest/meta_data.json").contains("cloudscale_uuid"));
    md.set_fault(Fault::Status(404, "nope".into()));
    assert!(get("/openstack/latest/meta_data.json").starts_with("HTTP/1.1 404"));
    assert_eq!(md.requests().len(), 4);
}
