//! The provider against the mock, over real sockets.

use std::net::{IpAddr, TcpListener};
use std::time::Duration;

use mock_cloud::{Fault, Metadata};

use super::*;
use crate::test_gate::Gate;

const TOKEN: &str = "tok-9f8e7d6c5b4a";
const HERE: &str = "11111111-2222-4333-8444-555555555555";
const THERE: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const V4: &str = "192.0.2.10";
const V6: &str = "2001:db8::cafe";

fn mock() -> mock_cloud::Cloudscale {
    let m = mock_cloud::Cloudscale::start(TOKEN).expect("mock starts");
    m.add_server(HERE, "db1");
    m.add_server(THERE, "db2");
    m.add_floating_ip(V4, Some(THERE));
    m.add_floating_ip(V6, None);
    m
}

fn here() -> uuid::Uuid {
    uuid::Uuid::parse_str(HERE).expect("uuid")
}

fn settings(endpoint: &str, token: &str) -> Settings {
    Settings {
        endpoint: endpoint.to_string(),
        token: Secret::new(token),
        server: ServerSource::Uuid(here()),
        ca: None,
    }
}

async fn provider(m: &mock_cloud::Cloudscale) -> Cloudscale {
    // Without the trailing slash on purpose: it must be normalised.
    let url = m.url();
    Cloudscale::new(settings(url.trim_end_matches('/'), TOKEN))
        .await
        .expect("provider")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// Every error must be safe to log.
fn assert_no_token(e: &ProviderError) {
    let text = format!("{e} {e:?}");
    eprintln!("error as logged: {e}");
    assert!(!text.contains(TOKEN), "token leaked: {text}");
    assert!(!text.contains('\n'), "not one line: {text}");
}

#[tokio::test]
async fn write_patches_at_once() {
    let m = mock();
    let p = provider(&m).await;
    let out = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("refresh");
    assert_eq!(out, Outcome::Moved { previous: None });
    assert_eq!(m.server_of(V4).as_deref(), Some(HERE));
    let log = m.requests();
    assert_eq!(log.len(), 1, "no read before the write: {log:?}");
    let r = &log[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.status),
        ("PATCH", "/v1/floating-ips/192.0.2.10", Some(204))
    );
    assert_eq!(
        r.authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(r.body, format!(r#"{{"server":"{HERE}"}}"#));
    assert!(r
        .user_agent
        .as_deref()
        .is_some_and(|ua| ua.starts_with("floaty/")));
    assert_eq!((p.name(), p.target()), ("cloudscale", HERE.to_string()));
}

#[tokio::test]
async fn verify_reads_and_leaves_alone_when_here() {
    let m = mock();
    m.add_floating_ip(V4, Some(HERE));
    let p = provider(&m).await;
    assert_eq!(
        p.refresh(ip(V4), Mode::Verify, &crate::Open)
            .await
            .expect("refresh"),
        Outcome::AlreadyHere
    );
    assert_eq!(m.patch_count(V4), 0);
    assert_eq!(m.requests().len(), 1);
}

#[tokio::test]
async fn verify_moves_and_reports_previous() {
    let m = mock();
    let p = provider(&m).await;
    let out = p
        .refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect("refresh");
    assert_eq!(
        out,
        Outcome::Moved {
            previous: Some(THERE.to_string())
        }
    );
    assert_eq!(m.server_of(V4).as_deref(), Some(HERE));
    assert_eq!(m.patch_count(V4), 1);
    // Unassigned before: "nowhere". Also the IPv6 path in RFC 5952 form.
    let out = p
        .refresh(ip("2001:0db8:0:0::cafe"), Mode::Verify, &crate::Open)
        .await
        .expect("refresh v6");
    assert_eq!(
        out,
        Outcome::Moved {
            previous: Some("nowhere".to_string())
        }
    );
    assert_eq!(m.server_of(V6).as_deref(), Some(HERE));
    assert!(m
        .requests()
        .iter()
        .any(|r| r.method == "PATCH" && r.path == "/v1/floating-ips/2001:db8::cafe"));
    // And then it is here.
    assert_eq!(
        p.refresh(ip(V6), Mode::Verify, &crate::Open)
            .await
            .expect("again"),
        Outcome::AlreadyHere
    );
}

#[tokio::test]
async fn rejections_carry_the_api_detail() {
    let m = mock();
    let p = provider(&m).await;

    let bad = Cloudscale::new(settings(&m.url(), "wrong-token"))
        .await
        .expect("provider");
    let e = bad
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("401");
    assert!(
        matches!(&e, ProviderError::Rejected { status: 401, message, .. } if message == "Invalid token."),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "PATCH v1/floating-ips/192.0.2.10: HTTP 401: Invalid token."
    );
    assert!(!e.is_transient());

    m.add_token("read-only", false);
    let ro = Cloudscale::new(settings(&m.url(), "read-only"))
        .await
        .expect("provider");
    let e = ro
        .refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect_err("403");
    assert!(
        matches!(&e, ProviderError::Rejected { status: 403, message, .. } if message.contains("permission")),
        "{e:?}"
    );

    let e = p
        .refresh(ip("192.0.2.99"), Mode::Verify, &crate::Open)
        .await
        .expect_err("404");
    assert_eq!(
        e.to_string(),
        "GET v1/floating-ips/192.0.2.99: HTTP 404: Not found."
    );

    // A server UUID the API does not know: a field error, as a list.
    let stranger = Cloudscale::new(Settings {
        server: ServerSource::Uuid(uuid::Uuid::nil()),
        ..settings(&m.url(), TOKEN)
    })
    .await
    .expect("provider");
    let e = stranger
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("400");
    assert!(
        matches!(&e, ProviderError::Rejected { status: 400, message, .. } if message.starts_with("server: Object with uuid=")),
        "{e:?}"
    );

    // A field error as a plain string, and a non-JSON body.
    m.set_fault_times(Fault::Status(400, r#"{"server": "bad server"}"#.into()), 1);
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("400");
    assert!(
        matches!(&e, ProviderError::Rejected { message, .. } if message == "server: bad server"),
        "{e:?}"
    );
    m.set_fault_times(
        Fault::Status(418, format!("<html>{}</html>", "x".repeat(1000))),
        1,
    );
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("418");
    assert!(
        matches!(&e, ProviderError::Rejected { status: 418, message, .. } if message.chars().count() <= 201),
        "{e:?}"
    );
    assert_no_token(&e);
}

#[tokio::test]
async fn server_trouble_is_transient_with_retry_after() {
    let m = mock();
    let p = provider(&m).await;
    let cases = [
        (
            Fault::Status(500, r#"{"detail":"Internal error."}"#.into()),
            None,
            "HTTP 500: Internal error.",
        ),
        (
            Fault::Maintenance503,
            None,
            "HTTP 503: The API is currently unavailable",
        ),
        (
            Fault::TooMany {
                retry_after_secs: 7,
            },
            Some(Duration::from_secs(7)),
            "HTTP 429",
        ),
        (
            Fault::Unavailable {
                retry_after: "Thu, 01 Jan 1970 00:00:00 GMT".into(),
            },
            Some(Duration::ZERO),
            "HTTP 503",
        ),
        (
            Fault::Status(502, String::new()),
            None,
            "HTTP 502 Bad Gateway",
        ),
    ];
    for (fault, retry_after, text) in cases {
        m.set_fault_times(fault.clone(), 1);
        let e = p
            .refresh(ip(V4), Mode::Write, &crate::Open)
            .await
            .expect_err("fails");
        assert!(e.is_transient(), "{fault:?}: {e:?}");
        assert_eq!(e.retry_after(), retry_after, "{fault:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("PATCH v1/floating-ips/192.0.2.10: {text}")),
            "{e}"
        );
        assert_no_token(&e);
    }
    // The next try goes through.
    assert!(p.refresh(ip(V4), Mode::Write, &crate::Open).await.is_ok());
}

#[tokio::test]
async fn broken_answers() {
    let m = mock();
    let p = provider(&m).await;
    // A 2xx PATCH moved the address, whatever its body says.
    m.set_fault_on("PATCH", Fault::Garbage, Some(1));
    assert_eq!(
        p.refresh(ip(V4), Mode::Write, &crate::Open)
            .await
            .expect("ok"),
        Outcome::Moved { previous: None }
    );
    // A GET that cannot be understood is worth retrying.
    m.set_fault_on("GET", Fault::Garbage, Some(1));
    let e = p
        .refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect_err("garbage");
    assert!(
        e.is_transient()
            && e.to_string()
                .starts_with("GET v1/floating-ips/192.0.2.10: unexpected answer"),
        "{e}"
    );
    // Connection closed without an answer.
    m.set_fault_times(Fault::Reset, 1);
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("reset");
    assert!(e.is_transient(), "{e:?}");
    assert_no_token(&e);
    // No answer at all: the caller's timeout is what ends it.
    m.set_fault_times(Fault::Hang, 1);
    let r = tokio::time::timeout(
        Duration::from_millis(300),
        p.refresh(ip(V4), Mode::Write, &crate::Open),
    )
    .await;
    assert!(
        r.is_err(),
        "a hung request must wait for the caller's timeout"
    );
    assert!(p.refresh(ip(V4), Mode::Write, &crate::Open).await.is_ok());
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let p = Cloudscale::new(settings(&format!("http://127.0.0.1:{port}/"), TOKEN))
        .await
        .expect("provider");
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("refused");
    assert!(e.is_transient(), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("PATCH v1/floating-ips/192.0.2.10: cannot connect"),
        "{e}"
    );
    assert_no_token(&e);
}

#[tokio::test]
async fn token_never_shows() {
    let m = mock();
    // A proxy echoing the Authorization header back in its error body.
    m.set_fault(Fault::Status(
        403,
        format!(r#"{{"detail":"bad header Bearer {TOKEN}"}}"#),
    ));
    let p = provider(&m).await;
    let e = p
        .refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect_err("403");
    assert_no_token(&e);
    assert!(e.to_string().contains("Bearer ***"), "{e}");
    for check in p.self_test().await {
        assert!(!check.to_string().contains(TOKEN));
    }
    let debug = format!("{p:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    let s = settings(&m.url(), TOKEN);
    assert!(!format!("{s:?}").contains(TOKEN));
}

#[tokio::test]
async fn bad_settings() {
    for (endpoint, token) in [
        ("ftp://x/", TOKEN),
        ("not a url", TOKEN),
        ("http://127.0.0.1/", " "),
        ("http://127.0.0.1/", "a\nb"),
    ] {
        let e = Cloudscale::new(settings(endpoint, token))
            .await
            .expect_err("setup");
        assert!(matches!(e, ProviderError::Setup(_)), "{e:?}");
        assert!(!e.to_string().contains("a\nb"));
    }
}

#[tokio::test]
async fn self_test_reports_server_and_addresses() {
    let m = mock();
    m.add_floating_ip(V6, Some(HERE));
    let p = provider(&m).await;
    let checks = p.self_test().await;
    assert_eq!(checks.len(), 2);
    assert_eq!(
        checks[0].result,
        Ok("server \"db1\", status running".to_string())
    );
    assert_eq!(
        checks[1].result,
        Ok(format!("2 floating IPs visible, 1 pointing here: {V6}"))
    );
    let bad = Cloudscale::new(settings(&m.url(), "nope"))
        .await
        .expect("provider");
    let checks = bad.self_test().await;
    assert!(checks.iter().all(|c| c.result.is_err()), "{checks:?}");
    assert!(checks[0]
        .to_string()
        .starts_with("FAIL cloudscale GET v1/servers/"));
}

#[tokio::test]
async fn server_uuid_from_metadata() {
    let m = mock();
    let md = Metadata::start(HERE).expect("metadata");
    // Down for the first two tries, as right after boot.
    md.set_fault_times(Fault::Reset, 2);
    let p = Cloudscale::new(Settings {
        server: ServerSource::Metadata {
            base_url: md.url().trim_end_matches('/').to_string(),
        },
        ..settings(&m.url(), TOKEN)
    })
    .await
    .expect("provider");
    assert_eq!(p.server(), here());
    assert_eq!(md.requests().len(), 3);
    assert!(
        md.requests().iter().all(|r| r.authorization.is_none()),
        "the token must not go to the metadata service"
    );

    // Down for good: a Setup error after the (here shortened) budget.
    md.set_fault(Fault::Status(503, String::new()));
    let s = Settings {
        server: ServerSource::Metadata { base_url: md.url() },
        ..settings(&m.url(), TOKEN)
    };
    let e = Cloudscale::with_metadata_budget(s.clone(), Duration::from_millis(600))
        .await
        .expect_err("down");
    assert!(
        matches!(&e, ProviderError::Setup(msg) if msg.contains("meta_data.json") && msg.contains("HTTP 503")),
        "{e:?}"
    );

    // Not a cloudscale server: fails at once, no retries.
    md.clear_fault();
    md.set_uuid(None);
    let before = md.requests().len();
    let e = Cloudscale::with_metadata_budget(s.clone(), Duration::from_secs(5))
        .await
        .expect_err("no uuid");
    assert!(
        matches!(&e, ProviderError::Setup(msg) if msg.contains("cloudscale_uuid")),
        "{e:?}"
    );
    assert_eq!(md.requests().len(), before + 1);

    let typo = Settings {
        server: ServerSource::Metadata {
            base_url: "169.254.169.254".into(),
        },
        ..settings(&m.url(), TOKEN)
    };
    let started = std::time::Instant::now();
    let e = Cloudscale::new(typo).await.expect_err("typo");
    assert!(
        matches!(e, ProviderError::Setup(_)) && started.elapsed() < Duration::from_secs(1),
        "{e:?}"
    );

    // Nothing listening at all.
    drop(md);
    let e = Cloudscale::with_metadata_budget(s, Duration::from_millis(300))
        .await
        .expect_err("refused");
    assert!(matches!(e, ProviderError::Setup(_)), "{e:?}");
}

#[tokio::test]
async fn a_closed_gate_stops_the_write_and_nothing_else() {
    let m = mock();
    let p = provider(&m).await;
    // Write mode: the PATCH is the first request; none is sent.
    let gate = Gate::open_for(0);
    let e = p
        .refresh(ip(V4), Mode::Write, &gate)
        .await
        .expect_err("withheld");
    assert!(matches!(e, ProviderError::Withheld { .. }), "{e:?}");
    assert!(!e.is_transient());
    assert!(
        e.to_string().contains("PATCH v1/floating-ips/192.0.2.10"),
        "{e}"
    );
    assert_eq!(gate.asked(), 1);
    assert!(m.requests().is_empty(), "{:?}", m.requests());
    // Verify mode: the read goes out (it changes nothing), the write does
    // not: the gate is asked after the read, right before the PATCH.
    let e = p
        .refresh(ip(V4), Mode::Verify, &gate)
        .await
        .expect_err("withheld");
    assert!(matches!(e, ProviderError::Withheld { .. }), "{e:?}");
    let log = m.requests();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].method, "GET");
    assert_eq!(m.patch_count(V4), 0);
    assert_eq!(m.server_of(V4).as_deref(), Some(THERE));
    // Nothing to write, nothing to ask.
    m.add_floating_ip(V6, Some(HERE));
    let gate = Gate::open_for(0);
    assert_eq!(
        p.refresh(ip(V6), Mode::Verify, &gate).await.expect("here"),
        Outcome::AlreadyHere
    );
    assert_eq!(gate.asked(), 0);
}

/// The mock over HTTPS, its certificate signed by a CA of its own.
fn tls_mock() -> mock_cloud::Cloudscale {
    let m = mock_cloud::Cloudscale::start_tls(TOKEN).expect("mock starts");
    m.add_server(HERE, "db1");
    m.add_floating_ip(V4, Some(THERE));
    m
}

#[tokio::test]
async fn https_with_the_ca_bundle_moves_the_address() {
    let m = tls_mock();
    assert!(m.url().starts_with("https://127.0.0.1:"), "{}", m.url());
    let pem = m.ca_pem().expect("CA");
    let p = Cloudscale::new(Settings {
        ca: Some(crate::CaBundle::from_pem(pem.as_bytes()).expect("bundle")),
        ..settings(&m.url(), TOKEN)
    })
    .await
    .expect("provider");
    // Faults and the request log work over TLS as in the clear.
    m.set_fault_times(Fault::Status(503, String::new()), 1);
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("503");
    assert!(e.to_string().contains("HTTP 503"), "{e}");
    m.set_fault_times(Fault::Reset, 1);
    p.refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("reset");
    let out = p.refresh(ip(V4), Mode::Write, &crate::Open).await;
    assert_eq!(out.expect("moved"), Outcome::Moved { previous: None });
    assert_eq!(m.server_of(V4).as_deref(), Some(HERE));
    assert_eq!(m.patch_count(V4), 3);
    let statuses: Vec<Option<u16>> = m.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(503), None, Some(204)]);
    assert!(m
        .requests()
        .iter()
        .all(|r| r.method == "PATCH" && r.authorization.is_some()));
}

#[tokio::test]
async fn https_without_the_ca_fails_verification_and_sends_nothing() {
    let m = tls_mock();
    let p = Cloudscale::new(settings(&m.url(), TOKEN))
        .await
        .expect("provider");
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("unknown issuer");
    assert_no_token(&e);
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("certificate"), "{e}");
    // Another CA's bundle does not help either.
    let other = mock_cloud::Cloudscale::start_tls(TOKEN).expect("mock");
    let wrong = crate::CaBundle::from_pem(other.ca_pem().unwrap_or_default().as_bytes());
    let p = Cloudscale::new(Settings {
        ca: Some(wrong.expect("bundle")),
        ..settings(&m.url(), TOKEN)
    })
    .await
    .expect("provider");
    p.refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("other CA");
    assert!(m.requests().is_empty(), "{:?}", m.requests());
    assert_eq!(m.server_of(V4).as_deref(), Some(THERE));
}
