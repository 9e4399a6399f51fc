//! The provider against the mock, over real sockets.

use std::net::IpAddr;
use std::time::Duration;

use mock_cloud::{ExoscalePaths, Fault, Metadata};

use super::*;
use crate::test_gate::Gate;

const KEY: &str = "EXOa1b2c3d4e5f6a7b8c9d0e1f2";
const SECRET: &str = "s3cr3t-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
const HERE: &str = "11111111-2222-4333-8444-555555555555";
const THERE: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const V4: &str = "192.0.2.10";

fn mock() -> mock_cloud::Exoscale {
    let m = mock_cloud::Exoscale::start(KEY, SECRET).expect("mock starts");
    m.add_instance(HERE, "db1");
    m.add_instance(THERE, "db2");
    m.add_elastic_ip(V4, &[THERE]);
    m.add_elastic_ip("2001:db8::cafe", &[]);
    m.set_operation_delay(Duration::from_millis(20));
    m
}

fn here() -> uuid::Uuid {
    uuid::Uuid::parse_str(HERE).expect("uuid")
}

fn settings(m: &mock_cloud::Exoscale, secret: &str) -> Settings {
    Settings {
        endpoint: Some(format!("{}/", m.url())),
        zone: None,
        key: Secret::new(KEY),
        secret: Secret::new(secret),
        instance: Some(here()),
        metadata_url: "http://127.0.0.1:9/".into(),
        timeout: Duration::from_secs(10),
        ca: None,
    }
}

async fn provider(m: &mock_cloud::Exoscale) -> Exoscale {
    Exoscale::new(settings(m, SECRET)).await.expect("provider")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn calls(m: &mock_cloud::Exoscale) -> Vec<String> {
    m.requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// Every error must be safe to log.
fn assert_no_secret(e: &ProviderError) {
    let text = format!("{e} {e:?}");
    eprintln!("error as logged: {e}");
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    assert!(!text.contains('\n'), "not one line: {text}");
}

#[tokio::test]
async fn write_attaches_here_then_detaches_the_previous_holder() {
    let m = mock();
    let p = provider(&m).await;
    let out = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("refresh");
    assert_eq!(
        out,
        Outcome::Moved {
            previous: Some(THERE.to_string())
        }
    );
    assert_eq!(m.holders(V4), vec![HERE.to_string()]);
    let log = calls(&m);
    // List once, attach here first (failover), then the scan and detach.
    assert_eq!(log[0], "GET /v2/elastic-ip");
    assert!(log[1].starts_with("PUT /v2/elastic-ip/") && log[1].ends_with(":attach"));
    let scan = log
        .iter()
        .position(|c| c == "GET /v2/instance")
        .expect("scan");
    assert!(
        log[2..scan]
            .iter()
            .all(|c| c.starts_with("GET /v2/operation/")),
        "{log:?}"
    );
    assert_eq!(log[scan + 1], format!("GET /v2/instance/{THERE}"));
    assert!(log[scan + 2].ends_with(":detach"), "{log:?}");
    // Every request signed; bodies are the exact compact JSON, declared.
    let reqs = m.requests();
    assert!(reqs.iter().all(|r| r.status == Some(200)), "{reqs:?}");
    assert!(reqs
        .iter()
        .all(|r| r.authorization.as_deref().is_some_and(
            |a| a.starts_with(&format!("EXO2-HMAC-SHA256 credential={KEY},expires="))
        )));
    let attach = &reqs[1];
    assert_eq!(attach.content_type.as_deref(), Some("application/json"));
    assert_eq!(attach.body, format!(r#"{{"instance":{{"id":"{HERE}"}}}}"#));
    let detach = reqs
        .iter()
        .find(|r| r.path.ends_with(":detach"))
        .expect("detach");
    assert_eq!(detach.body, format!(r#"{{"instance":{{"id":"{THERE}"}}}}"#));
    assert_eq!((p.name(), p.target()), ("exoscale", HERE.to_string()));
}

#[tokio::test]
async fn steady_state_is_one_read_whatever_the_number_of_instances() {
    for fillers in [0, 499] {
        let m = mock();
        m.add_filler_instances(fillers);
        let p = provider(&m).await;
        p.refresh(ip(V4), Mode::Write, &crate::Open)
            .await
            .expect("write");
        let before = m.requests().len();
        for _ in 0..3 {
            assert_eq!(
                p.refresh(ip(V4), Mode::Verify, &crate::Open)
                    .await
                    .expect("verify"),
                Outcome::AlreadyHere
            );
        }
        let steady: Vec<String> = calls(&m)[before..].to_vec();
        assert_eq!(
            steady,
            vec![format!("GET /v2/instance/{HERE}"); 3],
            "with {} instances",
            fillers + 2
        );
        assert_eq!(m.with_state(|s| s.mutations()), 2);
    }
}

#[tokio::test]
async fn verify_takes_the_address_back_and_names_the_holder() {
    let m = mock();
    let p = provider(&m).await;
    p.refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("write");
    m.set_holders(V4, &[THERE]);
    let out = p
        .refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect("verify");
    assert_eq!(
        out,
        Outcome::Moved {
            previous: Some(THERE.to_string())
        }
    );
    assert_eq!(m.holders(V4), vec![HERE.to_string()]);
    // Detached everywhere: re-attached, "nowhere" before.
    m.set_holders(V4, &[]);
    let out = p
        .refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect("verify");
    assert_eq!(
        out,
        Outcome::Moved {
            previous: Some("nowhere".into())
        }
    );
    assert_eq!(m.holders(V4), vec![HERE.to_string()]);
    // IPv6 Elastic IPs work alike, written in any form.
    p.refresh(ip("2001:0db8::0:cafe"), Mode::Write, &crate::Open)
        .await
        .expect("v6");
    assert_eq!(m.holders("2001:db8::cafe"), vec![HERE.to_string()]);
}

#[tokio::test]
async fn write_when_already_attached_here_still_evicts_others() {
    let m = mock();
    m.set_holders(V4, &[HERE, THERE]);
    let p = provider(&m).await;
    let out = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("refresh");
    assert_eq!(
        out,
        Outcome::Moved {
            previous: Some(THERE.to_string())
        }
    );
    assert_eq!(m.holders(V4), vec![HERE.to_string()]);
    // The refused attach was checked with a read, not taken as failure.
    assert!(m
        .requests()
        .iter()
        .any(|r| r.path.ends_with(":attach") && r.status == Some(400)));
    // Alone here: a write has nothing to evict.
    let out = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("again");
    assert_eq!(out, Outcome::Moved { previous: None });
}

#[tokio::test]
async fn an_address_without_elastic_ip_is_a_clear_error() {
    let m = mock();
    let p = provider(&m).await;
    let e = p
        .refresh(ip("192.0.2.99"), Mode::Write, &crate::Open)
        .await
        .expect_err("no such EIP");
    assert!(!e.is_transient());
    let text = e.to_string();
    assert!(
        text.contains("no Elastic IP with address 192.0.2.99")
            && text.contains("2 Elastic IPs visible"),
        "{text}"
    );
    assert_eq!(m.with_state(|s| s.mutations()), 0);
    // Not cached as missing: created later, found by the next refresh.
    m.add_elastic_ip("192.0.2.99", &[]);
    p.refresh(ip("192.0.2.99"), Mode::Write, &crate::Open)
        .await
        .expect("now");
    assert_eq!(m.holders("192.0.2.99"), vec![HERE.to_string()]);
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_and_never_shown() {
    let m = mock();
    let bad = Exoscale::new(settings(&m, "wrong-secret-value"))
        .await
        .expect("provider");
    let e = bad
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("403");
    assert!(
        matches!(&e, ProviderError::Rejected { status: 403, message, .. } if message == "Invalid request signature"),
        "{e:?}"
    );
    assert!(!format!("{e} {e:?} {bad:?}").contains("wrong-secret-value"));
    let p = provider(&m).await;
    assert!(!format!("{p:?}").contains(SECRET), "{p:?}");
}

#[tokio::test]
async fn server_errors_and_throttling_are_transient() {
    let m = mock();
    let p = provider(&m).await;
    m.set_fault_times(Fault::Status(500, r#"{"message":"boom"}"#.into()), 1);
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("500");
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("HTTP 500: boom"), "{e}");
    assert_no_secret(&e);
    m.set_fault_times(
        Fault::TooMany {
            retry_after_secs: 7,
        },
        1,
    );
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("429");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    m.set_fault_on(
        "PUT",
        Fault::Status(400, r#"{"detail":"bad thing"}"#.into()),
        Some(1),
    );
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("400");
    // A 400 on attach is re-checked with a read; not attached: rejected.
    assert!(
        matches!(&e, ProviderError::Rejected { status: 400, message, .. } if message == "bad thing"),
        "{e:?}"
    );
    p.refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("recovers");
}

#[tokio::test]
async fn failed_and_slow_operations_are_transient() {
    let m = mock();
    let p = provider(&m).await;
    m.fail_operations(1);
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("failure");
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("ended in failure"), "{e}");
    assert_eq!(m.holders(V4), vec![THERE.to_string()]);

    m.set_operation_delay(Duration::from_secs(60));
    let mut s = settings(&m, SECRET);
    s.timeout = Duration::from_millis(600);
    let short = Exoscale::new(s).await.expect("provider");
    let e = short
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("pending");
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("still pending"), "{e}");
    // Polling starts fast and slows down: a few polls, not hundreds.
    let polls = calls(&m)
        .iter()
        .filter(|c| c.starts_with("GET /v2/operation/"))
        .count();
    assert!((1..=8).contains(&polls), "{polls} polls");
}

#[tokio::test]
async fn a_replaced_elastic_ip_is_looked_up_again() {
    let m = mock();
    let p = provider(&m).await;
    p.refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("write");
    // Deleted and re-created behind our back: same address, new id.
    m.remove_elastic_ip(V4);
    let new_id = m.add_elastic_ip(V4, &[THERE]);
    let out = p
        .refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect("verify");
    assert_eq!(
        out,
        Outcome::Moved {
            previous: Some(THERE.to_string())
        }
    );
    assert_eq!(m.holders(V4), vec![HERE.to_string()]);
    assert!(m
        .requests()
        .iter()
        .any(|r| r.path == format!("/v2/elastic-ip/{new_id}:attach") && r.status == Some(200)));
}

#[tokio::test]
async fn instance_and_zone_from_metadata_on_either_path() {
    let m = mock();
    let meta = Metadata::exoscale(Some(HERE), Some("ch-gva-2")).expect("metadata");
    for paths in [ExoscalePaths::OneDotZero, ExoscalePaths::Latest] {
        meta.set_exoscale_paths(paths);
        let mut s = settings(&m, SECRET);
        s.instance = None;
        s.metadata_url = meta.url();
        let p = Exoscale::new(s.clone()).await.expect("provider");
        assert_eq!(p.instance(), here());
        assert_eq!(p.endpoint(), m.url());
        s.endpoint = None;
        let p = Exoscale::new(s).await.expect("provider");
        assert_eq!(p.endpoint(), "https://api-ch-gva-2.exoscale.com/v2");
    }
    let paths: Vec<String> = meta.requests().iter().map(|r| r.path.clone()).collect();
    assert!(paths.contains(&"/1.0/meta-data/instance-id".to_string()));
    assert!(paths.contains(&"/latest/meta-data/availability-zone".to_string()));
}

#[tokio::test]
async fn metadata_trouble_is_a_clear_setup_error() {
    let m = mock();
    let meta = Metadata::exoscale(None, Some("ch-gva-2")).expect("metadata");
    let mut s = settings(&m, SECRET);
    s.instance = None;
    s.metadata_url = meta.url();
    let e = Exoscale::with_metadata_budget(s.clone(), Duration::from_millis(300))
        .await
        .expect_err("no instance id");
    let text = e.to_string();
    assert!(
        text.contains("cannot learn this instance's instance-id")
            && text.contains("exoscale.instance-id"),
        "{text}"
    );
    // Comes up after boot: retried.
    let meta = Metadata::exoscale(Some(HERE), None).expect("metadata");
    meta.set_fault_times(Fault::Reset, 3);
    s.metadata_url = meta.url();
    let p = Exoscale::new(s.clone()).await.expect("after retries");
    assert_eq!(p.instance(), here());
    // Garbage is not retried for ten seconds.
    let meta = Metadata::exoscale(Some("not-a-uuid"), None).expect("metadata");
    s.metadata_url = meta.url();
    let e = Exoscale::new(s).await.expect_err("garbage");
    assert!(e.to_string().contains("is not a UUID"), "{e}");
}

#[tokio::test]
async fn bad_settings_fail_early() {
    let m = mock();
    for (key, secret, endpoint) in [
        ("", SECRET, None),
        (KEY, " ", None),
        ("EXO with space", SECRET, None),
        (KEY, SECRET, Some("ftp://x")),
    ] {
        let mut s = settings(&m, secret);
        s.key = Secret::new(key);
        if let Some(e) = endpoint {
            s.endpoint = Some(e.into());
        }
        let e = Exoscale::new(s).await.expect_err("bad");
        assert!(matches!(e, ProviderError::Setup(_)), "{e:?}");
        assert_no_secret(&e);
    }
}

#[tokio::test]
async fn self_test_reads_the_instance_and_lists_elastic_ips() {
    let m = mock();
    m.set_holders(V4, &[HERE]);
    let p = provider(&m).await;
    let checks = p.self_test().await;
    assert_eq!(checks.len(), 2);
    assert!(checks.iter().all(|c| c.result.is_ok()), "{checks:?}");
    assert!(checks[0].to_string().contains("db1"), "{}", checks[0]);
    assert!(
        checks[1]
            .to_string()
            .contains("2 Elastic IPs visible, 1 attached here: 192.0.2.10"),
        "{}",
        checks[1]
    );
    let bad = Exoscale::new(settings(&m, "nope")).await.expect("provider");
    let checks = bad.self_test().await;
    assert!(checks.iter().all(|c| c.result.is_err()), "{checks:?}");
}

#[tokio::test]
async fn refreshes_started_together_share_one_scan() {
    let m = mock();
    m.add_elastic_ip("192.0.2.20", &[THERE]);
    m.add_filler_instances(20);
    let p = provider(&m).await;
    let (a, b) = tokio::join!(
        p.refresh(ip(V4), Mode::Write, &crate::Open),
        p.refresh(ip("192.0.2.20"), Mode::Write, &crate::Open)
    );
    a.expect("first");
    b.expect("second");
    assert_eq!(m.holders(V4), vec![HERE.to_string()]);
    assert_eq!(m.holders("192.0.2.20"), vec![HERE.to_string()]);
    let log = calls(&m);
    assert_eq!(
        log.iter().filter(|c| *c == "GET /v2/instance").count(),
        1,
        "{log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|c| *c == &format!("GET /v2/instance/{THERE}"))
            .count(),
        1
    );
    // A later refresh that needs a scan does not trust the old one.
    m.set_holders(V4, &[THERE]);
    p.refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect("verify");
    assert_eq!(m.holders(V4), vec![HERE.to_string()]);
    assert_eq!(
        calls(&m)
            .iter()
            .filter(|c| *c == "GET /v2/instance")
            .count(),
        2
    );
}

#[test]
fn check_key_wants_an_exo_key() {
    assert_eq!(check_key(KEY), Ok(()));
    assert_eq!(check_key(&format!(" {KEY}\n")), Ok(()));
    // Before: only spaces, commas and `=` were refused, so a secret pasted
    // into `key` passed until the first request.
    for bad in ["abcdef0123", "exoabc", "EX", ""] {
        let e = check_key(bad).unwrap_err();
        assert!(e.contains("does not start with EXO"), "{bad}: {e}");
    }
    assert!(check_key("EXO a").unwrap_err().contains("spaces"));
}

#[tokio::test]
async fn the_gate_is_asked_before_the_attach_and_before_every_detach() {
    let m = mock();
    let p = provider(&m).await;
    // Closed: the id look-up is a read and goes out; no PUT does.
    let gate = Gate::open_for(0);
    let e = p
        .refresh(ip(V4), Mode::Write, &gate)
        .await
        .expect_err("withheld");
    assert!(matches!(e, ProviderError::Withheld { .. }), "{e:?}");
    assert!(e.to_string().contains(":attach"), "{e}");
    assert_eq!(gate.asked(), 1);
    let log = calls(&m);
    assert!(log.iter().all(|c| c.starts_with("GET ")), "{log:?}");
    assert_eq!(m.holders(V4), vec![THERE.to_string()]);
    // Open for the attach, closed by the time of the detach (the VIP left
    // during the scan): attached here, the previous holder not detached.
    let gate = Gate::open_for(1);
    let e = p
        .refresh(ip(V4), Mode::Write, &gate)
        .await
        .expect_err("withheld");
    assert!(e.to_string().contains(":detach"), "{e}");
    assert_eq!(gate.asked(), 2);
    let log = calls(&m);
    assert_eq!(log.iter().filter(|c| c.ends_with(":attach")).count(), 1);
    assert_eq!(log.iter().filter(|c| c.ends_with(":detach")).count(), 0);
}

#[tokio::test]
async fn https_trusts_the_ca_bundle_and_nothing_else() {
    let m = mock_cloud::Exoscale::start_tls(KEY, SECRET).expect("mock starts");
    m.add_instance(HERE, "db1");
    m.add_instance(THERE, "db2");
    m.add_elastic_ip(V4, &[THERE]);
    m.set_operation_delay(Duration::from_millis(20));
    assert!(m.url().starts_with("https://"), "{}", m.url());
    let untrusted = provider(&m).await;
    let e = untrusted
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("unknown issuer");
    assert_no_secret(&e);
    assert!(e.to_string().contains("certificate"), "{e}");
    assert!(m.requests().is_empty(), "{:?}", m.requests());

    let pem = m.ca_pem().expect("CA");
    let p = Exoscale::new(Settings {
        ca: Some(crate::CaBundle::from_pem(pem.as_bytes()).expect("bundle")),
        ..settings(&m, SECRET)
    })
    .await
    .expect("provider");
    p.refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("moved");
    assert_eq!(m.holders(V4), vec![HERE.to_string()]);
}
