//! A misbehaving cloud API, through the binary: every fault the mocks can
//! inject, checked against the configured back-off (from the mock's
//! request timestamps), the log (one clear line per failure) and recovery
//! once the API heals. Prints the measured numbers (run with
//! `--nocapture`); docs/RELIABILITY.md records them.
//!
//! Already covered in notify.rs and not repeated here: the retry count for
//! 500s, 429's Retry-After as a lower bound, 4xx waiting for the next
//! interval, SIGTERM during a hung request.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use mock_cloud::{Fault, Metadata, Request};

use crate::support::*;

const T: Duration = Duration::from_secs(15);
/// The policy under test: 100 ms, doubling, capped at 400 ms; each wait
/// randomised by ±50 % (vshn/floaty's semantics).
const BACK_OFF: &str =
    "back-off:\n  initial-interval: 100ms\n  multiplier: 2\n  max-interval: 400ms\n";
const INITIAL: f64 = 0.1;
const MULTIPLIER: f64 = 2.0;
const MAX: f64 = 0.4;
const TIMEOUT: f64 = 0.3;
/// Waits may not be shorter than the policy (timers fire late, never
/// early; 10 ms for clock granularity) ...
const EARLY: f64 = 0.010;
/// ... and may be longer by scheduling on a loaded 2-core CI machine.
const LATE: f64 = 0.400;

fn world(mock: &mock_cloud::Cloudscale) -> World {
    world_with(mock, "")
}

fn world_with(mock: &mock_cloud::Cloudscale, extra: &str) -> World {
    let w = World::new(
        &mock.url(),
        SERVER_A,
        &format!("refresh-timeout: 300ms\n{extra}"),
    );
    let yaml = std::fs::read_to_string(&w.config).unwrap().replace(
        "back-off:\n  initial-interval: 20ms\n  max-interval: 50ms\n",
        BACK_OFF,
    );
    assert!(yaml.contains("multiplier: 2"), "{yaml}");
    std::fs::write(&w.config, yaml).unwrap();
    w
}

/// The back-off window after the `n`th consecutive failure (0-based).
fn window(n: usize) -> (f64, f64) {
    let current = (INITIAL * MULTIPLIER.powi(n as i32)).min(MAX);
    (current * 0.5, current * 1.5)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Checks each gap between consecutive failed requests against the
/// window, plus `answer` (the time a failing request takes to fail:
/// 0, or refresh-timeout when the API never answers in time) and any
/// Retry-After. Returns the gaps.
fn check_gaps(name: &str, reqs: &[Request], answer: f64, retry_after: f64) -> Vec<f64> {
    let mut gaps = Vec::new();
    for (n, pair) in reqs.windows(2).enumerate() {
        let gap = secs(pair[1].at.duration_since(pair[0].at));
        let (low, high) = window(n);
        let low = (answer + low).max(retry_after);
        let high = (answer + high).max(retry_after);
        assert!(
            gap >= low - EARLY && gap <= high + LATE,
            "{name}: retry {n} came {gap:.3}s after the previous try; the policy says {low:.3}..{high:.3}s"
        );
        gaps.push(gap);
    }
    gaps
}

/// The log lines of failed refreshes: exactly one per failed try, each a
/// single line that says what happened, no debug dump or backtrace.
fn check_log(name: &str, w: &World, failed: usize, needle: &str) {
    let log = w.log_text();
    for bad in [
        "panicked",
        "backtrace",
        "Caused by",
        "{ kind:",
        "Error {",
        "source:",
    ] {
        assert!(!log.contains(bad), "{name}: `{bad}` in the log:\n{log}");
    }
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("refresh failed"))
        .collect();
    assert_eq!(lines.len(), failed, "{name}: one line per failure:\n{log}");
    for l in &lines {
        assert!(l.contains(needle), "{name}: `{needle}` missing from: {l}");
        assert!(l.contains("retrying in") && l.len() < 500, "{name}: {l}");
    }
}

struct Case {
    name: &'static str,
    fault: Fault,
    /// How long a failing try takes before floaty gives up on it.
    answer: f64,
    retry_after: f64,
    /// What the log line must say.
    needle: &'static str,
    /// Only requests of this method fail (None: all).
    method: Option<&'static str>,
}

/// Each fault stays on until at least four tries have failed, then the API
/// heals; floaty must keep trying within the policy and point the address
/// here within one back-off step (plus one refresh-timeout) of the heal.
#[test]
fn every_fault_is_retried_within_the_policy_and_recovers_after_one_step() {
    let cases = [
        Case {
            name: "500",
            fault: Fault::Status(500, r#"{"detail":"boom"}"#.into()),
            answer: 0.0,
            retry_after: 0.0,
            needle: "500",
            method: None,
        },
        Case {
            name: "429 Retry-After: 1",
            fault: Fault::TooMany {
                retry_after_secs: 1,
            },
            answer: 0.0,
            retry_after: 1.0,
            needle: "429",
            method: None,
        },
        Case {
            name: "slow (2 s > refresh-timeout)",
            fault: Fault::Slow(Duration::from_secs(2)),
            answer: TIMEOUT,
            retry_after: 0.0,
            needle: "no answer within refresh-timeout",
            method: None,
        },
        Case {
            name: "hang",
            fault: Fault::Hang,
            answer: TIMEOUT,
            retry_after: 0.0,
            needle: "no answer within refresh-timeout",
            method: None,
        },
        Case {
            name: "connection reset",
            fault: Fault::Reset,
            answer: 0.0,
            retry_after: 0.0,
            needle: "refresh failed: ",
            method: None,
        },
        // A write needs no answer body (cloudscale answers 204), so the
        // garbage matters where a body is read: the verify rounds' GET.
        Case {
            name: "garbage body (verify GET)",
            fault: Fault::Garbage,
            answer: 0.0,
            retry_after: 0.0,
            needle: "refresh failed: ",
            method: Some("GET"),
        },
    ];
    for case in cases {
        let mock = mock_cloudscale();
        let w = match case.method {
            None => world(&mock),
            Some(_) => world_with(&mock, "refresh-interval: 1s\n"),
        };
        match case.method {
            Some(m) => mock.set_fault_on(m, case.fault.clone(), None),
            None => mock.set_fault(case.fault.clone()),
        }
        assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
        let tries = if case.retry_after > 0.0 { 2 } else { 4 };
        let ours = |r: &Request| case.method.is_none_or(|m| r.method == m);
        assert!(
            mock.wait_for(T, |s| s.requests().iter().filter(|r| ours(r)).count()
                >= tries),
            "{}: {}",
            case.name,
            w.log_text()
        );
        let healed = Instant::now();
        mock.clear_fault();
        assert!(
            mock.wait_for(T, |s| s
                .requests()
                .iter()
                .any(|r| matches!(r.status, Some(200..=299)) && r.at > healed)),
            "{}: never recovered: {:?} healed {healed:?} {}",
            case.name,
            mock.requests()
                .iter()
                .map(|r| (r.status, r.at))
                .collect::<Vec<_>>(),
            w.log_text()
        );
        let reqs: Vec<Request> = mock.requests().into_iter().filter(|r| ours(r)).collect();
        let first_ok = reqs
            .iter()
            .position(|r| matches!(r.status, Some(200..=299)) && r.at > healed)
            .unwrap();
        let failed = &reqs[..first_ok];
        let write_or_read = case.method.unwrap_or("PATCH");
        assert!(
            failed.iter().all(|r| r.method == write_or_read),
            "{failed:?}"
        );
        let gaps = check_gaps(case.name, &reqs[..=first_ok], case.answer, case.retry_after);
        // The try in flight at the heal may still fail (a hung one times
        // out); the one after it must succeed: one back-off step.
        let recovery = secs(reqs[first_ok].at.duration_since(healed));
        let (_, high) = window(first_ok.saturating_sub(1));
        let bound = case.answer + high.max(case.retry_after) + case.answer + LATE;
        assert!(
            recovery <= bound,
            "{}: recovered {recovery:.3}s after the heal; at most one step ({bound:.3}s) allowed",
            case.name
        );
        assert!(
            w.wait_log("address pointed here", T),
            "{}: {}",
            case.name,
            w.log_text()
        );
        if case.method.is_some() {
            assert!(w.wait_log("address points here", T), "{}", w.log_text());
        }
        check_log(case.name, &w, first_ok, case.needle);
        assert_eq!(w.refreshers().len(), 1, "{}: the refresher died", case.name);
        eprintln!(
            "fault {:<30} failed tries {first_ok}, gaps {:?} s, recovery {recovery:.3} s after heal",
            case.name,
            gaps.iter().map(|g| (g * 1000.0).round() / 1000.0).collect::<Vec<_>>()
        );
    }
}

/// A fault that never heals: floaty keeps trying at max-interval for as
/// long as it runs (max-elapsed-time 0), never gives the address up.
#[test]
fn an_api_that_stays_down_is_retried_for_ever_at_max_interval() {
    let mock = mock_cloudscale();
    mock.set_fault(Fault::Status(503, String::new()));
    let w = world(&mock);
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(
        mock.wait_for(T, |s| s.requests().len() >= 10),
        "{}",
        w.log_text()
    );
    let reqs = mock.requests();
    let gaps = check_gaps("503 for ever", &reqs[..10], 0.0, 0.0);
    // From the third wait on, the interval is capped: 200..600 ms.
    assert!(gaps[3..].iter().all(|g| *g >= 0.2 - EARLY), "{gaps:?}");
    assert!(!w.log_text().contains("max-elapsed-time spent"));
    assert_eq!(w.refreshers().len(), 1);
}

/// A MASTER call whose World learns its server from the metadata
/// service at `url` (no `server-uuid` in the YAML).
fn master_via_metadata(mock: &mock_cloud::Cloudscale, url: &str) -> World {
    let w = world(mock);
    let yaml = std::fs::read_to_string(&w.config)
        .unwrap()
        .replace(&format!("  server-uuid: {SERVER_A}\n"), "");
    std::fs::write(&w.config, yaml).unwrap();
    let out = w.notify_env(
        &[("FLOATY_METADATA_URL", url)],
        &["INSTANCE", "VI_1", "MASTER"],
    );
    assert!(out.status.success());
    w
}

/// Once the metadata service is back at `healed`: the address comes here,
/// the first API call no later than one metadata retry step (2 s) after.
/// Returns that delay.
#[track_caller]
fn recovers_within_a_step(mock: &mock_cloud::Cloudscale, w: &World, healed: Instant) -> f64 {
    assert!(
        mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)),
        "{}",
        w.log_text()
    );
    let recovery = secs(mock.requests()[0].at.duration_since(healed));
    assert!(
        recovery <= 2.0 + LATE,
        "recovered {recovery:.3}s after the heal"
    );
    recovery
}

/// The metadata service answering 503, then not listening at all: the
/// refresher waits for it (its own pauses: 250 ms doubling to 2 s), makes
/// no API call meanwhile, and points the address here once it is back.
#[test]
fn metadata_service_down_is_waited_for() {
    let mock = mock_cloudscale();
    let meta = Metadata::start(SERVER_A).unwrap();
    meta.set_fault(Fault::Status(503, String::new()));
    let w = master_via_metadata(&mock, &meta.url());
    assert!(
        wait_until(T, || meta.requests().len() >= 3),
        "{}",
        w.log_text()
    );
    let reqs = meta.requests();
    for (n, pair) in reqs.windows(2).enumerate() {
        let gap = secs(pair[1].at.duration_since(pair[0].at));
        let low = (0.25 * 2f64.powi(n as i32)).min(2.0);
        assert!(
            gap >= low - EARLY,
            "metadata retry {n} after {gap:.3}s < {low}s"
        );
    }
    assert!(
        mock.requests().is_empty(),
        "an API call without knowing the server"
    );
    let healed = Instant::now();
    meta.clear_fault();
    let recovery = recovers_within_a_step(&mock, &w, healed);
    eprintln!(
        "metadata 503: {} tries, recovery {recovery:.3} s after heal",
        reqs.len()
    );

    // Not listening at all (connection refused), then back on the same port.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mock = mock_cloudscale();
    let w = master_via_metadata(&mock, &format!("http://{port}/"));
    assert!(
        w.wait_log("metadata not available yet, retrying", T),
        "{}",
        w.log_text()
    );
    assert_eq!(w.refreshers().len(), 1);
    let healed = Instant::now();
    let meta = Metadata::start_on(TcpListener::bind(port).unwrap(), SERVER_A).unwrap();
    let recovery = recovers_within_a_step(&mock, &w, healed);
    assert!(!meta.requests().is_empty());
    let log = w.log_text();
    for l in log.lines().filter(|l| l.contains("metadata not available")) {
        assert!(l.len() < 500 && !l.contains("{ kind:"), "{l}");
    }
    eprintln!("metadata down: recovery {recovery:.3} s after it listens again");
}

/// The same loop with the Exoscale provider: resets, then 500s, each
/// failed try retried within the policy, one line each, recovery within a
/// step.
#[test]
fn exoscale_faults_are_retried_within_the_policy() {
    for (name, fault) in [
        ("exoscale reset", Fault::Reset),
        (
            "exoscale 500",
            Fault::Status(500, r#"{"message":"boom"}"#.into()),
        ),
    ] {
        let m = crate::secrets::exoscale_mock();
        m.set_fault(fault);
        let w = crate::secrets::exoscale_world(&m);
        let yaml = std::fs::read_to_string(&w.config).unwrap().replace(
            "back-off:\n  initial-interval: 20ms\n  max-interval: 50ms\n",
            &format!("{BACK_OFF}refresh-timeout: 300ms\n"),
        );
        assert!(yaml.contains("multiplier: 2"), "{yaml}");
        std::fs::write(&w.config, yaml).unwrap();
        assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
        assert!(
            m.wait_for(T, |s| s.requests().len() >= 4),
            "{name}: {}",
            w.log_text()
        );
        let healed = Instant::now();
        m.clear_fault();
        assert!(
            m.wait_for(T, |s| s.holders("192.0.2.10") == [SERVER_A]),
            "{name}: {}",
            w.log_text()
        );
        let reqs = m.requests();
        let first_ok = reqs
            .iter()
            .position(|r| matches!(r.status, Some(200..=299)) && r.at > healed)
            .unwrap();
        check_gaps(name, &reqs[..=first_ok], 0.0, 0.0);
        let recovery = secs(reqs[first_ok].at.duration_since(healed));
        let (_, high) = window(first_ok.saturating_sub(1));
        assert!(
            recovery <= high + LATE,
            "{name}: recovered {recovery:.3}s after the heal"
        );
        check_log(name, &w, first_ok, "refresh failed: ");
        assert_eq!(w.refreshers().len(), 1, "{name}: the refresher died");
        eprintln!("fault {name:<30} failed tries {first_ok}, recovery {recovery:.3} s after heal");
    }
}
