//! Notify mode through the binary against the mock Hetzner Cloud API.

use std::io::{Read, Write};
use std::time::Duration;

use mock_cloud::Hetzner;

use crate::support::*;

const T: Duration = Duration::from_secs(15);
/// Above 2^31, as real server ids are.
pub const HERE: u64 = 4_294_967_301;
pub const THERE: u64 = 4_294_967_302;

fn mock() -> Hetzner {
    let m = Hetzner::start(TOKEN).expect("mock");
    m.add_server(HERE, "lb-a");
    m.add_server(THERE, "lb-b");
    for ip in ["192.0.2.10", "192.0.2.20", "192.0.2.21"] {
        m.add_floating_ip(ip, Some(THERE));
    }
    m
}

fn world(m: &Hetzner, token: &str, extra_yaml: &str) -> World {
    World::for_provider(
        &format!(
            "provider: hetzner\nhetzner:\n  endpoint: {}\n  token: {token}\n  server-id: {HERE}\n",
            m.url()
        ),
        extra_yaml,
    )
}

/// The requests since `from`, one per line, for failure messages.
fn shown(m: &Hetzner, from: usize) -> String {
    m.requests()[from..]
        .iter()
        .map(|r| {
            format!(
                "{} {}{} -> {:?} remaining {:?}\n",
                r.method,
                r.path,
                r.query
                    .as_deref()
                    .map_or(String::new(), |q| format!("?{q}")),
                r.status,
                r.rate_remaining
            )
        })
        .collect()
}

#[test]
fn master_assigns_here_and_backup_stops() {
    let m = mock();
    let w = world(&m, TOKEN, "");
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        m.wait_for(T, |s| s.server_of("192.0.2.10") == Some(HERE)),
        "never assigned here; log:\n{}\nrequests:\n{}",
        w.log_text(),
        shown(&m, 0)
    );
    assert!(w.wait_log("address pointed here", T), "{}", w.log_text());
    w.backup_ends_the_refresher();
    assert!(!w.log_text().contains(TOKEN), "the token was logged");
}

/// Steady state, counted at the mock: after the first round every refresh
/// is one call, whether the instance has 1 address or 50.
#[test]
fn a_steady_state_refresh_is_one_call_with_one_and_with_fifty_addresses() {
    for n in [1usize, 50] {
        let m = Hetzner::start(TOKEN).expect("mock");
        m.add_server(HERE, "lb-a");
        let addresses: Vec<String> = (1..=n).map(|i| format!("198.51.100.{i}")).collect();
        for a in &addresses {
            m.add_floating_ip(a, Some(HERE));
        }
        let managed: String = addresses.iter().map(|a| format!("  - {a}\n")).collect();
        let w = world(
            &m,
            TOKEN,
            &format!("refresh-interval: 1s\nmanaged-addresses:\n{managed}"),
        );
        let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
        assert!(out.status.success(), "{}", stderr(&out));
        // The first round: a blind assign of each (a 422 read away: it is
        // here already), the listing that resolves the ids.
        assert!(
            wait_until(T, || w.log_text().matches("address points here").count()
                >= n),
            "the first round did not end; log:\n{}",
            w.log_text()
        );
        let from = m.requests().len();
        let reads = |m: &Hetzner| m.requests()[from..].len();
        assert!(
            wait_until(Duration::from_secs(10), || reads(&m) >= 4),
            "{n} addresses: fewer than 4 reads in 10 s:\n{}",
            shown(&m, from)
        );
        let steady = m.requests()[from..].to_vec();
        eprintln!("{n} addresses, steady state:\n{}", shown(&m, from));
        let one = |r: &mock_cloud::Request| {
            if n == 1 {
                r.path.starts_with("/v1/floating_ips/") && !r.path.contains("actions")
            } else {
                r.path == "/v1/floating_ips"
            }
        };
        assert!(
            steady.iter().all(|r| r.method == "GET" && one(r)),
            "{n} addresses: each refresh must be one read:\n{}",
            shown(&m, from)
        );
        // One call per beat: consecutive reads are a beat apart, not a
        // burst of one per address.
        let gaps: Vec<Duration> = steady.windows(2).map(|p| p[1].at - p[0].at).collect();
        assert!(
            gaps.iter().all(|g| *g > Duration::from_millis(500)),
            "{n} addresses: reads in a burst: {gaps:?}"
        );
    }
}

#[test]
fn self_test_with_good_and_bad_tokens() {
    let m = mock();
    m.set_server_of("192.0.2.10", Some(HERE));
    let w = world(&m, TOKEN, "");
    let out = w.run(&["--test", w.config.to_str().expect("utf-8")]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.contains("OK   hetzner GET servers/4294967301"),
        "{text}"
    );
    assert!(text.contains("1 pointing here: 192.0.2.10"), "{text}");
    let w = world(&m, "not-the-token-at-all", "");
    let out = w.run(&["--test", w.config.to_str().expect("utf-8")]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains("FAIL") && text.contains("unauthorized"),
        "{text}"
    );
    assert!(!text.contains("not-the-token-at-all"), "{text}");
}

/// Another tool of the project spends most of the budget: the refresher
/// reads less often instead of running into 429s.
#[test]
fn a_project_budget_spent_by_others_slows_the_refresher_before_any_429() {
    let m = mock();
    m.set_server_of("192.0.2.10", Some(HERE));
    // 30 requests, one back per second.
    m.set_rate_limit(30, Duration::from_secs(1));
    let w = world(&m, TOKEN, "refresh-interval: 1s\n");
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(w.wait_log("address points here", T), "{}", w.log_text());
    // terraform, say: 22 reads of its own.
    for _ in 0..22 {
        let mut s = std::net::TcpStream::connect(m.addr()).expect("connect");
        write!(
            s,
            "GET /v1/floating_ips HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
    }
    assert!(
        w.wait_log("read deferred: the API's request budget is low", T),
        "never slowed down; log:\n{}\nrequests:\n{}",
        w.log_text(),
        shown(&m, 0)
    );
    let from = m.requests().len();
    assert!(
        wait_until(T, || m.requests().len() >= from + 5),
        "the refresher stopped reading:\n{}",
        shown(&m, 0)
    );
    eprintln!("requests:\n{}", shown(&m, 0));
    assert!(
        m.requests().iter().all(|r| r.status != Some(429)),
        "ran into a 429:\n{}",
        shown(&m, 0)
    );
}

fn track_value(w: &World) -> Option<i32> {
    std::fs::read_to_string(w.path("health/VI_1.health"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn with_track_file(m: &Hetzner, token: &str, extra: &str) -> World {
    let w = world(
        m,
        token,
        &format!("track-file-template: health/%s.health\nhealth-interval: 1s\n{extra}"),
    );
    std::fs::create_dir(w.path("health")).expect("health dir");
    w
}

#[test]
fn an_action_that_ends_in_error_is_logged_and_retried() {
    let m = mock();
    m.fail_actions(1);
    let w = world(&m, TOKEN, "");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(
        m.wait_for(T, |s| s.server_of("192.0.2.10") == Some(HERE)),
        "never retried; log:\n{}",
        w.log_text()
    );
    let log = w.log_text();
    assert!(
        log.contains("ended in error: action_failed: Floating IP assignment failed; retrying"),
        "{log}"
    );
    assert_eq!(m.assign_count("192.0.2.10"), 2, "{}", shown(&m, 0));
}

/// 423 `locked` (an action still running) is the API being busy: the
/// track file stays 0, so keepalived never demotes the node for it.
#[test]
fn locked_never_demotes_the_node() {
    let m = mock();
    m.set_action_polls(100_000);
    m.set_action_timeout(Duration::from_secs(3600));
    let w = with_track_file(&m, TOKEN, "refresh-timeout: 1s\n");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(
        wait_until(T, || m
            .requests()
            .iter()
            .filter(|r| r.status == Some(423))
            .count()
            >= 3),
        "no 423s; requests:\n{}",
        shown(&m, 0)
    );
    assert!(w.log_text().contains("locked"), "{}", w.log_text());
    assert_eq!(track_value(&w), Some(0), "log:\n{}", w.log_text());
    // A status that names it: the reason is `locked`, not this node's.
    let out = w.run(&["--status", w.config.to_str().expect("utf-8")]);
    assert!(stdout(&out).contains("locked"), "{}", stdout(&out));
}

/// A token that can read but not write is found out by the first move;
/// with a track file the node then leaves the election.
#[test]
fn a_read_only_token_demotes_the_master() {
    let m = mock();
    m.add_token("read-only-token-value", false);
    let w = with_track_file(&m, "read-only-token-value", "");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(
        wait_until(T, || track_value(&w) == Some(-100)),
        "never demoted; log:\n{}",
        w.log_text()
    );
    let log = w.log_text();
    assert!(log.contains("token_readonly"), "{log}");
    assert!(log.contains("create one with Read & Write"), "{log}");
    assert!(
        !log.contains("read-only-token-value"),
        "the token was logged"
    );
    assert_eq!(m.server_of("192.0.2.10"), Some(THERE));
}

#[test]
fn the_server_id_comes_from_the_metadata_service() {
    let m = mock();
    let md = mock_cloud::Metadata::hetzner(HERE).expect("metadata");
    let w = World::for_provider(
        &format!(
            "provider: hetzner\nhetzner:\n  endpoint: {}\n  token: {TOKEN}\n",
            m.url()
        ),
        "",
    );
    let out = w.notify_env(
        &[("FLOATY_METADATA_URL", &md.url())],
        &["INSTANCE", "VI_1", "MASTER"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        m.wait_for(T, |s| s.server_of("192.0.2.10") == Some(HERE)),
        "{}",
        w.log_text()
    );
    assert!(
        w.log_text().contains("server id from metadata"),
        "{}",
        w.log_text()
    );
}
