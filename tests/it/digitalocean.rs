//! Notify mode through the binary against the mock DigitalOcean API.

use std::io::{Read, Write};
use std::time::Duration;

use mock_cloud::DigitalOcean;

use crate::support::*;

const T: Duration = Duration::from_secs(15);
/// Above 2^31, as real droplet ids are.
pub const HERE: u64 = 3_000_000_001;
pub const THERE: u64 = 3_000_000_002;

fn mock() -> DigitalOcean {
    let m = DigitalOcean::start(TOKEN).expect("mock");
    m.add_droplet(HERE, "lb-a");
    m.add_droplet(THERE, "lb-b");
    m.add_reserved_ip("192.0.2.10", Some(THERE));
    m
}

fn world(m: &DigitalOcean, token: &str, extra_yaml: &str) -> World {
    World::for_provider(
        &format!(
            "provider: digitalocean\ndigitalocean:\n  endpoint: {}\n  token: {token}\n  droplet-id: {HERE}\n",
            m.url()
        ),
        extra_yaml,
    )
}

/// The requests since `from`, one per line, for failure messages.
fn shown(m: &DigitalOcean, from: usize) -> String {
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
    let w = world(&m, TOKEN, "managed-addresses:\n  - 192.0.2.10\n");
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        m.wait_for(T, |s| s.droplet_of("192.0.2.10") == Some(HERE)),
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
        let m = DigitalOcean::start(TOKEN).expect("mock");
        m.add_droplet(HERE, "lb-a");
        let addresses: Vec<String> = (1..=n).map(|i| format!("198.51.100.{i}")).collect();
        for a in &addresses {
            m.add_reserved_ip(a, Some(HERE));
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
        // here already).
        assert!(
            wait_until(T, || w.log_text().matches("address points here").count()
                >= n),
            "the first round did not end; log:\n{}",
            w.log_text()
        );
        let from = m.requests().len();
        let reads = |m: &DigitalOcean| m.requests()[from..].len();
        assert!(
            wait_until(Duration::from_secs(10), || reads(&m) >= 4),
            "{n} addresses: fewer than 4 reads in 10 s:\n{}",
            shown(&m, from)
        );
        let steady = m.requests()[from..].to_vec();
        eprintln!("{n} addresses, steady state:\n{}", shown(&m, from));
        let one = |r: &mock_cloud::Request| {
            if n == 1 {
                r.path.starts_with("/v2/reserved_ips/") && !r.path.contains("actions")
            } else {
                r.path == "/v2/reserved_ips"
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
    m.set_droplet_of("192.0.2.10", Some(HERE));
    let w = world(&m, TOKEN, "managed-addresses:\n  - 192.0.2.10\n");
    let out = w.run(&["--test", w.config.to_str().expect("utf-8")]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.contains("OK   digitalocean GET droplets/3000000001"),
        "{text}"
    );
    assert!(text.contains("1 pointing here: 192.0.2.10"), "{text}");
    let w = world(&m, "not-the-token-at-all", "");
    let out = w.run(&["--test", w.config.to_str().expect("utf-8")]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains("FAIL") && text.contains("Unable to authenticate you"),
        "{text}"
    );
    assert!(!text.contains("not-the-token-at-all"), "{text}");
}

/// Another user of the token spends most of the budget: the refresher
/// reads less often instead of running into 429s.
#[test]
fn a_token_budget_spent_by_others_slows_the_refresher_before_any_429() {
    let m = mock();
    m.set_droplet_of("192.0.2.10", Some(HERE));
    // 30 requests per 10 s window, each counted on its own timer.
    m.set_rate_limit(30, Duration::from_secs(10));
    let w = world(
        &m,
        TOKEN,
        "refresh-interval: 1s\nmanaged-addresses:\n  - 192.0.2.10\n",
    );
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(w.wait_log("address points here", T), "{}", w.log_text());
    // A dashboard, say: 20 reads of its own.
    for _ in 0..20 {
        let mut s = std::net::TcpStream::connect(m.addr()).expect("connect");
        write!(
            s,
            "GET /v2/reserved_ips HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
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
    // Once only the write reserve is left, the next read waits for the
    // oldest request to stop counting: up to the whole window.
    let from = m.requests().len();
    assert!(
        wait_until(Duration::from_secs(25), || m.requests().len() >= from + 5),
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

#[test]
fn an_errored_action_is_logged_and_retried() {
    let m = mock();
    m.fail_actions(1);
    let w = world(&m, TOKEN, "managed-addresses:\n  - 192.0.2.10\n");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(
        m.wait_for(T, |s| s.droplet_of("192.0.2.10") == Some(HERE)),
        "never retried; log:\n{}",
        w.log_text()
    );
    assert!(
        w.log_text().contains("ended in errored; retrying"),
        "{}",
        w.log_text()
    );
    assert_eq!(m.assign_count("192.0.2.10"), 2, "{}", shown(&m, 0));
}

#[test]
fn the_droplet_id_comes_from_the_metadata_service() {
    let m = mock();
    let md = mock_cloud::Metadata::digitalocean(HERE).expect("metadata");
    let w = World::for_provider(
        &format!(
            "provider: digitalocean\ndigitalocean:\n  endpoint: {}\n  token: {TOKEN}\n",
            m.url()
        ),
        "managed-addresses:\n  - 192.0.2.10\n",
    );
    let out = w.notify_env(
        &[("FLOATY_METADATA_URL", &md.url())],
        &["INSTANCE", "VI_1", "MASTER"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        m.wait_for(T, |s| s.droplet_of("192.0.2.10") == Some(HERE)),
        "{}",
        w.log_text()
    );
    assert!(
        w.log_text().contains("droplet id from metadata"),
        "{}",
        w.log_text()
    );
}
