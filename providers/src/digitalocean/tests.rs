//! The provider against the mock, over real sockets.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use mock_cloud::{Fault, Metadata};

use super::*;
use crate::test_gate::Gate;
use crate::Reason;

const TOKEN: &str = "dop_v1_0123456789abcdef";
/// Above 2^31 on purpose: real ids are.
const HERE: u64 = 3_000_000_001;
const THERE: u64 = 3_000_000_002;
const V4: &str = "45.55.96.47";
const V6: &str = "2604:a880:800:14::4:1000";

fn mock() -> mock_cloud::DigitalOcean {
    let m = mock_cloud::DigitalOcean::start(TOKEN).expect("mock starts");
    m.add_droplet(HERE, "lb1");
    m.add_droplet(THERE, "lb2");
    m.add_reserved_ip(V4, Some(THERE));
    m
}

fn settings(endpoint: &str, token: &str) -> Settings {
    Settings {
        endpoint: endpoint.to_string(),
        token: Secret::new(token),
        droplet: DropletSource::Id(HERE),
        timeout: Duration::from_secs(10),
        ca: None,
    }
}

async fn provider(m: &mock_cloud::DigitalOcean) -> DigitalOcean {
    DigitalOcean::new(settings(&m.url(), TOKEN))
        .await
        .expect("provider")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn assert_no_token(e: &ProviderError) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains(TOKEN), "token leaked: {text}");
    assert!(!text.contains('\n'), "not one line: {text}");
}

fn calls(m: &mock_cloud::DigitalOcean) -> Vec<String> {
    m.requests()
        .iter()
        .map(|r| format!("{} {} -> {:?}", r.method, r.path, r.status))
        .collect()
}

#[tokio::test]
async fn write_assigns_and_waits_for_the_action() {
    let m = mock();
    let p = provider(&m).await;
    let out = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("refresh");
    assert_eq!(out, Outcome::Moved { previous: None });
    assert_eq!(m.droplet_of(V4), Some(HERE));
    let log = m.requests();
    let post = &log[0];
    assert_eq!(
        (post.method.as_str(), post.path.as_str(), post.status),
        ("POST", "/v2/reserved_ips/45.55.96.47/actions", Some(201)),
        "a blind assign first: {:?}",
        calls(&m)
    );
    assert_eq!(
        post.body,
        format!(r#"{{"type":"assign","droplet_id":{HERE}}}"#)
    );
    assert_eq!(
        post.authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert!(
        log[1..]
            .iter()
            .all(|r| r.method == "GET"
                && r.path.starts_with("/v2/reserved_ips/45.55.96.47/actions/")),
        "then only polls: {:?}",
        calls(&m)
    );
    assert!(log.len() >= 3, "polled until done: {:?}", calls(&m));
    assert_eq!((p.name(), p.target()), ("digitalocean", HERE.to_string()));
}

#[tokio::test]
async fn a_422_for_an_address_already_here_is_success() {
    let m = mock();
    m.set_droplet_of(V4, Some(HERE));
    let p = provider(&m).await;
    let out = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("422 read away");
    assert_eq!(out, Outcome::AlreadyHere);
    assert_eq!(
        m.requests().iter().map(|r| r.status).collect::<Vec<_>>(),
        [Some(422), Some(200)],
        "{:?}",
        calls(&m)
    );
}

#[tokio::test]
async fn verify_reads_once_and_names_where_it_was() {
    let m = mock();
    let p = provider(&m).await;
    let out = p
        .refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect("moved");
    assert_eq!(
        out,
        Outcome::Moved {
            previous: Some(format!("droplet {THERE}"))
        }
    );
    p.share.age();
    let before = m.requests().len();
    assert_eq!(
        p.refresh(ip(V4), Mode::Verify, &crate::Open)
            .await
            .expect("here"),
        Outcome::AlreadyHere
    );
    let log = m.requests();
    assert_eq!(log.len(), before + 1, "{:?}", calls(&m));
    assert_eq!(log[before].path, "/v2/reserved_ips/45.55.96.47");
}

#[tokio::test]
async fn ipv6_reserved_ips_are_their_own_resource() {
    let m = mock();
    m.add_reserved_ip(V6, None);
    let p = provider(&m).await;
    let out = p
        .refresh(ip(V6), Mode::Verify, &crate::Open)
        .await
        .expect("moved");
    assert_eq!(
        out,
        Outcome::Moved {
            previous: Some("nowhere".into())
        }
    );
    assert_eq!(m.droplet_of(V6), Some(HERE));
    assert!(m
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path == format!("/v2/reserved_ipv6/{V6}/actions")));
}

#[tokio::test]
async fn locked_on_read_is_transient_and_not_this_nodes_fault() {
    let m = mock();
    m.set_action_polls(1000);
    let other = DigitalOcean::new(Settings {
        droplet: DropletSource::Id(THERE),
        timeout: Duration::from_millis(1200),
        ..settings(&m.url(), TOKEN)
    })
    .await
    .expect("provider");
    // Someone else's action is pending (here: an assign that never ends).
    m.set_droplet_of(V4, None);
    let _ = other.refresh(ip(V4), Mode::Write, &crate::Open).await;
    let p = provider(&m).await;
    let e = p
        .refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect_err("locked");
    assert_eq!(e.reason(), Some(Reason::Locked), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(m.assign_count(V4), 1, "no assign while locked");
    // A blind write meets the pending event: 422, read, locked.
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("locked");
    assert_eq!(e.reason(), Some(Reason::Locked), "{e}");
}

#[tokio::test]
async fn errored_is_a_failure_and_any_other_final_status_success() {
    let m = mock();
    m.fail_actions(1);
    let p = provider(&m).await;
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("errored");
    assert!(e.is_transient());
    assert_eq!(e.reason(), Some(Reason::Protocol));
    assert!(e.to_string().contains("errored"), "{e}");
    assert_eq!(m.droplet_of(V4), Some(THERE));
    m.set_done_status("done");
    p.refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("done is done");
    assert_eq!(m.droplet_of(V4), Some(HERE));
}

#[tokio::test]
async fn fifty_addresses_read_together_cost_one_call() {
    let m = mock_cloud::DigitalOcean::start(TOKEN).expect("mock");
    m.add_droplet(HERE, "lb1");
    m.add_filler_reserved_ips(30);
    let addresses: Vec<IpAddr> = (1..=50).map(|i| ip(&format!("198.51.100.{i}"))).collect();
    for a in &addresses {
        m.add_reserved_ip(&a.to_string(), Some(HERE));
    }
    let p = Arc::new(provider(&m).await);
    let round = || async {
        let mut set = tokio::task::JoinSet::new();
        for a in addresses.iter().copied() {
            let p = p.clone();
            set.spawn(async move { p.refresh(a, Mode::Verify, &crate::Open).await });
        }
        while let Some(out) = set.join_next().await {
            assert_eq!(out.expect("task").expect("refresh"), Outcome::AlreadyHere);
        }
    };
    for n in 1..=3 {
        let before = m.requests().len();
        round().await;
        let log = m.requests();
        // The very first read of the first round is the lone address's
        // GET (one address known then); every other is a listing.
        let sent: Vec<&str> = log[before..].iter().map(|r| r.path.as_str()).collect();
        assert!(
            sent.len() <= 2 && sent.iter().filter(|p| **p == "/v2/reserved_ips").count() == 1,
            "round {n}: {sent:?}"
        );
        p.share.age();
    }
    let before = m.requests().len();
    round().await;
    assert_eq!(
        m.requests().len(),
        before + 1,
        "steady state: {:?}",
        calls(&m)
    );
}

#[tokio::test]
async fn bad_and_read_only_tokens_are_this_nodes_failure_with_a_clear_message() {
    let m = mock();
    let bad = DigitalOcean::new(settings(&m.url(), "wrong-token"))
        .await
        .expect("provider");
    let e = bad
        .refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect_err("401");
    assert_eq!(e.reason(), Some(Reason::Auth), "{e}");
    assert!(e.to_string().contains("Unable to authenticate you"), "{e}");
    assert_no_token(&e);

    m.add_token("read-only-tok", false);
    let ro = DigitalOcean::new(settings(&m.url(), "read-only-tok"))
        .await
        .expect("provider");
    let e = ro
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("403");
    assert_eq!(e.reason(), Some(Reason::Auth), "{e}");
    assert!(e.to_string().contains("read-only token cannot"), "{e}");
    assert_eq!(m.droplet_of(V4), Some(THERE));
}

#[tokio::test]
async fn an_unknown_address_is_not_found() {
    let m = mock();
    let p = provider(&m).await;
    let e = p
        .refresh(ip("45.55.96.99"), Mode::Verify, &crate::Open)
        .await
        .expect_err("404");
    assert_eq!(e.reason(), Some(Reason::NotFound), "{e}");
}

#[tokio::test]
async fn a_closed_gate_sends_no_write() {
    let m = mock();
    let p = provider(&m).await;
    let gate = Gate::open_for(0);
    let e = p
        .refresh(ip(V4), Mode::Verify, &gate)
        .await
        .expect_err("withheld");
    assert!(matches!(e, ProviderError::Withheld { .. }), "{e:?}");
    assert_eq!(m.assign_count(V4), 0);
}

#[tokio::test]
async fn a_429_keeps_the_servers_retry_after() {
    let m = mock();
    let p = provider(&m).await;
    m.set_fault_times(
        Fault::TooMany {
            retry_after_secs: 7,
        },
        1,
    );
    let e = p
        .refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect_err("429");
    assert_eq!(e.reason(), Some(Reason::RateLimited), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn a_low_budget_slows_reads_down_before_any_429() {
    let m = mock();
    m.set_droplet_of(V4, Some(HERE));
    // 20 requests per 2 s window.
    m.set_rate_limit(20, Duration::from_secs(2));
    let p = provider(&m).await;
    let mut deferred = 0;
    let mut reads = 0;
    while reads < 40 {
        p.share.age();
        match p.refresh(ip(V4), Mode::Verify, &crate::Open).await {
            Ok(Outcome::AlreadyHere) => reads += 1,
            Err(ProviderError::Deferred { wait, .. }) => {
                deferred += 1;
                tokio::time::sleep(wait).await;
            }
            other => panic!("{other:?}"),
        }
    }
    let log = m.requests();
    for r in &log {
        eprintln!(
            "{:>7.3}s {} {} -> {:?} remaining {:?}",
            r.at.duration_since(log[0].at).as_secs_f64(),
            r.method,
            r.path,
            r.status,
            r.rate_remaining
        );
    }
    assert!(deferred > 0, "the budget never slowed reads down");
    assert!(log.iter().all(|r| r.status != Some(429)), "ran into a 429");
    assert!(
        log.iter().all(|r| r.rate_remaining.is_some_and(|n| n >= 1)),
        "spent the write reserve"
    );
}

#[tokio::test]
async fn the_droplet_id_comes_from_metadata() {
    let m = mock();
    let md = Metadata::digitalocean(HERE).expect("metadata");
    let p = DigitalOcean::new(Settings {
        droplet: DropletSource::Metadata { base_url: md.url() },
        ..settings(&m.url(), TOKEN)
    })
    .await
    .expect("provider");
    assert_eq!(p.droplet(), HERE);
    assert!(md.requests().iter().any(|r| r.path == "/metadata/v1/id"));
}

#[tokio::test]
async fn self_test_lists_what_points_here() {
    let m = mock();
    m.set_droplet_of(V4, Some(HERE));
    let p = provider(&m).await;
    let checks = p.self_test().await;
    assert!(
        checks[0].result.as_ref().is_ok_and(|s| s.contains("lb1")),
        "{checks:?}"
    );
    assert!(
        checks[1]
            .result
            .as_ref()
            .is_ok_and(|s| s.contains("1 pointing here: 45.55.96.47")),
        "{checks:?}"
    );
}
