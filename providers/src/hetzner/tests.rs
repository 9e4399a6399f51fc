//! The provider against the mock, over real sockets.

use std::net::IpAddr;
use std::time::Duration;

use mock_cloud::{AssignedConflict, Fault, Metadata};

use super::*;
use crate::test_gate::Gate;
use crate::Reason;

const TOKEN: &str = "hcloud-tok-5b4a3c2d1e";
/// Above 2^31 on purpose: real ids are.
const HERE: u64 = 4_294_967_301;
const THERE: u64 = 4_294_967_302;
const V4: &str = "203.0.113.10";
const V6_NET: &str = "2001:db8:1::/64";
const V6: &str = "2001:db8:1::cafe";

fn mock() -> mock_cloud::Hetzner {
    let m = mock_cloud::Hetzner::start(TOKEN).expect("mock starts");
    m.add_server(HERE, "lb1");
    m.add_server(THERE, "lb2");
    m.add_floating_ip(V4, Some(THERE));
    m.add_floating_ip(V6_NET, None);
    m
}

fn settings(endpoint: &str, token: &str) -> Settings {
    Settings {
        endpoint: endpoint.to_string(),
        token: Secret::new(token),
        server: ServerSource::Id(HERE),
        timeout: Duration::from_secs(10),
        ca: None,
    }
}

async fn provider(m: &mock_cloud::Hetzner) -> Hetzner {
    Hetzner::new(settings(&m.url(), TOKEN))
        .await
        .expect("provider")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// Every error must be safe to log.
fn assert_no_token(e: &ProviderError) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains(TOKEN), "token leaked: {text}");
    assert!(!text.contains('\n'), "not one line: {text}");
}

fn calls(m: &mock_cloud::Hetzner) -> Vec<(String, String)> {
    m.requests()
        .iter()
        .map(|r| {
            let query = r
                .query
                .as_deref()
                .map_or(String::new(), |q| format!("?{q}"));
            (r.method.clone(), format!("{}{query}", r.path))
        })
        .collect()
}

#[tokio::test]
async fn write_assigns_and_waits_for_the_action() {
    let m = mock();
    let p = provider(&m).await;
    let id = m.floating_ip_id(V4).expect("id");
    let out = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("refresh");
    assert_eq!(out, Outcome::Moved { previous: None });
    assert_eq!(m.server_of(V4), Some(HERE), "moved once the action ended");
    let log = m.requests();
    let post = log
        .iter()
        .find(|r| r.method == "POST")
        .expect("an assign was sent");
    assert_eq!(post.path, format!("/v1/floating_ips/{id}/actions/assign"));
    assert_eq!(post.body, format!(r#"{{"server":{HERE}}}"#), "a 64-bit id");
    assert_eq!(post.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        post.authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(post.status, Some(201));
    let polls = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/v1/actions/"))
        .count();
    assert!(
        polls >= 2,
        "the action was polled to its end: {:?}",
        calls(&m)
    );
    assert_eq!(m.assign_count(V4), 1);
    assert_eq!((p.name(), p.target()), ("hetzner", HERE.to_string()));
}

#[tokio::test]
async fn the_address_is_resolved_once_by_a_paginated_listing() {
    let m = mock();
    // 120 more: three pages of 50, the address on none in particular.
    m.add_filler_floating_ips(120);
    let p = provider(&m).await;
    p.refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("first");
    let listings = |m: &mock_cloud::Hetzner| {
        m.requests()
            .iter()
            .filter(|r| r.path == "/v1/floating_ips")
            .count()
    };
    assert_eq!(listings(&m), 3, "every page once: {:?}", calls(&m));
    assert!(m
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/floating_ips")
        .all(|r| r
            .query
            .as_deref()
            .is_some_and(|q| q.contains("per_page=50"))));
    p.share.age();
    assert_eq!(
        p.refresh(ip(V4), Mode::Verify, &crate::Open)
            .await
            .expect("verify"),
        Outcome::AlreadyHere
    );
    assert_eq!(listings(&m), 3, "no new listing: {:?}", calls(&m));
}

#[tokio::test]
async fn steady_state_costs_one_get() {
    let m = mock();
    m.set_server_of(V4, Some(HERE));
    let p = provider(&m).await;
    // The first round resolves (one listing, which also says where it points).
    assert_eq!(
        p.refresh(ip(V4), Mode::Verify, &crate::Open)
            .await
            .expect("1"),
        Outcome::AlreadyHere
    );
    let before = m.requests().len();
    for _ in 0..3 {
        p.share.age();
        assert_eq!(
            p.refresh(ip(V4), Mode::Verify, &crate::Open)
                .await
                .expect("n"),
            Outcome::AlreadyHere
        );
    }
    let log = m.requests();
    let id = m.floating_ip_id(V4).expect("id");
    let after: Vec<_> = log[before..].iter().map(|r| r.path.as_str()).collect();
    assert_eq!(after, vec![format!("/v1/floating_ips/{id}"); 3]);
}

#[tokio::test]
async fn fifty_addresses_read_together_cost_one_call() {
    let m = mock_cloud::Hetzner::start(TOKEN).expect("mock");
    m.add_server(HERE, "lb1");
    let addresses: Vec<IpAddr> = (1..=50).map(|i| ip(&format!("203.0.113.{i}"))).collect();
    for a in &addresses {
        m.add_floating_ip(&a.to_string(), Some(HERE));
    }
    let p = std::sync::Arc::new(provider(&m).await);
    // One task per address, woken together, as the refresher runs them.
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
    round().await;
    let first = m.requests().len();
    assert_eq!(first, 1, "resolving 50 is one listing: {:?}", calls(&m));
    for n in 1..=3 {
        p.share.age();
        round().await;
        assert_eq!(
            m.requests().len(),
            first + n,
            "one listing per round: {:?}",
            calls(&m)
        );
    }
}

#[tokio::test]
async fn an_ipv6_floating_ip_is_a_network_and_any_address_in_it_counts() {
    let m = mock();
    let p = provider(&m).await;
    let out = p
        .refresh(ip(V6), Mode::Verify, &crate::Open)
        .await
        .expect("refresh");
    assert_eq!(
        out,
        Outcome::Moved {
            previous: Some("nowhere".into())
        }
    );
    assert_eq!(m.server_of(V6_NET), Some(HERE));
    let e = p
        .refresh(ip("2001:db8:2::1"), Mode::Verify, &crate::Open)
        .await
        .expect_err("outside the /64");
    assert_eq!(e.reason(), Some(Reason::NotFound), "{e}");
}

#[tokio::test]
async fn verify_moves_it_back_and_names_where_it_was() {
    let m = mock();
    m.set_server_of(V4, Some(HERE));
    let p = provider(&m).await;
    p.refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect("here");
    m.set_server_of(V4, Some(THERE));
    p.share.age();
    let out = p
        .refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect("moved back");
    assert_eq!(
        out,
        Outcome::Moved {
            previous: Some(format!("server {THERE}"))
        }
    );
    assert_eq!(m.server_of(V4), Some(HERE));
}

#[tokio::test]
async fn an_action_that_ends_in_error_is_a_transient_failure_and_moves_nothing() {
    let m = mock();
    m.fail_actions(1);
    let p = provider(&m).await;
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("the action failed");
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(e.reason(), Some(Reason::Protocol));
    assert!(e.to_string().contains("action_failed"), "{e}");
    assert_eq!(m.server_of(V4), Some(THERE));
    // The retry goes through.
    p.refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("retried");
    assert_eq!(m.server_of(V4), Some(HERE));
}

#[tokio::test]
async fn locked_while_an_action_runs_is_transient_and_not_this_nodes_fault() {
    let m = mock();
    m.set_action_polls(1000);
    let p = Hetzner::new(Settings {
        timeout: Duration::from_millis(1200),
        ..settings(&m.url(), TOKEN)
    })
    .await
    .expect("provider");
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("still running");
    assert_eq!(e.reason(), Some(Reason::Timeout), "{e}");
    assert!(e.to_string().contains("still running"), "{e}");
    let e = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("locked");
    assert_eq!(e.reason(), Some(Reason::Locked), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
    assert!(m.requests().iter().any(|r| r.status == Some(423)));
    assert_no_token(&e);
}

#[tokio::test]
async fn already_assigned_here_is_success() {
    let m = mock();
    m.set_server_of(V4, Some(HERE));
    m.set_assigned_conflict(AssignedConflict::SameServer);
    let p = provider(&m).await;
    let out = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("422 read away");
    assert_eq!(out, Outcome::AlreadyHere);
    assert!(m.requests().iter().any(|r| r.status == Some(422)));
}

#[tokio::test]
async fn an_api_that_wants_it_unassigned_first_gets_that() {
    let m = mock();
    m.set_assigned_conflict(AssignedConflict::AnyServer);
    let p = provider(&m).await;
    let out = p
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("unassign, assign");
    assert_eq!(out, Outcome::Moved { previous: None });
    assert_eq!(m.server_of(V4), Some(HERE));
    let posts: Vec<String> = m
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(posts, ["assign", "unassign", "assign"]);
}

#[tokio::test]
async fn bad_and_read_only_tokens_are_this_nodes_failure_with_a_clear_message() {
    let m = mock();
    let bad = Hetzner::new(settings(&m.url(), "wrong-token"))
        .await
        .expect("provider");
    let e = bad
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("401");
    assert_eq!(e.reason(), Some(Reason::Auth), "{e}");
    assert!(e.to_string().contains("unauthorized"), "{e}");
    assert_no_token(&e);

    m.add_token("read-only-tok", false);
    let ro = Hetzner::new(settings(&m.url(), "read-only-tok"))
        .await
        .expect("provider");
    let e = ro
        .refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect_err("403");
    assert_eq!(e.reason(), Some(Reason::Auth), "{e}");
    assert!(e.to_string().contains("read-only"), "{e}");
    assert_eq!(m.server_of(V4), Some(THERE));
}

#[tokio::test]
async fn an_address_not_in_the_project_is_not_found_and_not_listed_again_at_once() {
    let m = mock();
    let p = provider(&m).await;
    for _ in 0..3 {
        let e = p
            .refresh(ip("203.0.113.99"), Mode::Verify, &crate::Open)
            .await
            .expect_err("404");
        assert_eq!(e.reason(), Some(Reason::NotFound), "{e}");
        assert!(e.to_string().contains("no Floating IP 203.0.113.99"), "{e}");
    }
    assert_eq!(m.requests().len(), 1, "one listing: {:?}", calls(&m));
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
    assert_eq!(gate.asked(), 1);
    assert_eq!(m.assign_count(V4), 0);
}

#[tokio::test]
async fn a_429_without_retry_after_waits_by_the_budget() {
    let m = mock();
    let p = provider(&m).await;
    p.refresh(ip(V4), Mode::Write, &crate::Open)
        .await
        .expect("resolve and move");
    m.set_fault_times(
        Fault::Status(
            429,
            r#"{"error":{"code":"rate_limit_exceeded","message":"limit reached"}}"#.into(),
        ),
        1,
    );
    p.share.age();
    let e = p
        .refresh(ip(V4), Mode::Verify, &crate::Open)
        .await
        .expect_err("429");
    assert_eq!(e.reason(), Some(Reason::RateLimited), "{e}");
    assert!(e.retry_after().is_some_and(|w| w >= Duration::from_secs(1)));
}

#[tokio::test]
async fn a_low_budget_slows_reads_down_before_any_429() {
    let m = mock();
    m.set_server_of(V4, Some(HERE));
    // 20 requests, one back every 100 ms: reading as fast as we can would
    // spend it in a blink.
    m.set_rate_limit(20, Duration::from_millis(100));
    let p = provider(&m).await;
    let mut deferred = 0;
    let started = std::time::Instant::now();
    let mut reads = 0;
    while reads < 40 {
        p.share.age();
        match p.refresh(ip(V4), Mode::Verify, &crate::Open).await {
            Ok(Outcome::AlreadyHere) => reads += 1,
            Err(ProviderError::Deferred { wait, why, .. }) => {
                assert!(why.contains("budget is low"), "{why}");
                deferred += 1;
                // What the refresher does: wait as told.
                tokio::time::sleep(wait).await;
            }
            other => panic!("{other:?}"),
        }
    }
    let log = m.requests();
    for r in &log {
        eprintln!(
            "{:>7.3}s {} {}{} -> {:?} remaining {:?}",
            r.at.duration_since(log[0].at).as_secs_f64(),
            r.method,
            r.path,
            r.query
                .as_deref()
                .map_or(String::new(), |q| format!("?{q}")),
            r.status,
            r.rate_remaining
        );
    }
    assert!(deferred > 0, "the budget never slowed reads down");
    assert!(
        log.iter().all(|r| r.status != Some(429)),
        "ran into a 429 anyway"
    );
    assert!(
        log.iter().all(|r| r.rate_remaining.is_some_and(|n| n >= 1)),
        "spent the write reserve"
    );
    // 40 reads with 20 in the bucket and ~10 back per second: well over
    // a second of pacing, not a burst.
    assert!(started.elapsed() > Duration::from_secs(1));
}

#[tokio::test]
async fn the_server_id_comes_from_metadata() {
    let m = mock();
    let md = Metadata::hetzner(HERE).expect("metadata");
    let p = Hetzner::new(Settings {
        server: ServerSource::Metadata { base_url: md.url() },
        ..settings(&m.url(), TOKEN)
    })
    .await
    .expect("provider");
    assert_eq!(p.server(), HERE);
    assert!(md
        .requests()
        .iter()
        .any(|r| r.path == "/hetzner/v1/metadata/instance-id"));
}

#[tokio::test]
async fn self_test_reports_the_server_and_what_points_here() {
    let m = mock();
    m.set_server_of(V4, Some(HERE));
    let p = provider(&m).await;
    let checks = p.self_test().await;
    assert_eq!(checks.len(), 2);
    assert!(
        checks[0].result.as_ref().is_ok_and(|s| s.contains("lb1")),
        "{checks:?}"
    );
    assert!(
        checks[1]
            .result
            .as_ref()
            .is_ok_and(|s| s.contains("1 pointing here: 203.0.113.10")),
        "{checks:?}"
    );
    m.set_fault(Fault::Status(
        503,
        r#"{"error":{"code":"unavailable","message":"down"}}"#.into(),
    ));
    let checks = p.self_test().await;
    assert!(checks.iter().all(|c| c.result.is_err()), "{checks:?}");
}

#[test]
fn networks_contain_what_they_should() {
    let net = Net::parse("2001:db8:1::/64").expect("v6 net");
    assert!(net.contains(ip("2001:db8:1::1")));
    assert!(net.contains(ip("2001:db8:1:0:ffff::1")));
    assert!(!net.contains(ip("2001:db8:1:1::1")));
    assert!(!net.contains(ip("203.0.113.1")));
    let v4 = Net::parse("203.0.113.1").expect("v4");
    assert!(v4.contains(ip("203.0.113.1")));
    assert!(!v4.contains(ip("203.0.113.2")));
    assert_eq!(Net::parse("203.0.113.1/32"), Some(v4));
    assert_eq!(Net::parse("nonsense"), None);
    assert_eq!(Net::parse("2001:db8::/129"), None);
    assert!(Net::parse("::/0").expect("all").contains(ip("2001:db8::1")));
}
