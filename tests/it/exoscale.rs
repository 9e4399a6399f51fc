//! Notify mode through the binary against the mock Exoscale API.

use std::time::Duration;

use mock_cloud::{Exoscale, Metadata};

use crate::support::*;

const T: Duration = Duration::from_secs(10);
pub const KEY: &str = "EXOfloatytest0123456789abcdef";
/// Distinctive, so a grep of the logs cannot miss it.
pub const SECRET: &str = "exo-s3cr3t-ZmxvYXR5LXRlc3Qtc2VjcmV0LXZhbHVl";

/// The mock with our two instances and the test addresses, each attached
/// to b.
fn mock() -> Exoscale {
    mock_exoscale(KEY, SECRET)
}

/// The exoscale part of a floaty.yml, for this test file and the lab.
pub fn exoscale_yaml(endpoint: &str, secret: &str, instance: Option<&str>) -> String {
    let mut y = format!(
        "provider: exoscale\nexoscale:\n  endpoint: {endpoint}\n  key: {KEY}\n  secret: {secret}\n"
    );
    if let Some(i) = instance {
        y.push_str(&format!("  instance-id: {i}\n"));
    }
    y
}

/// A World whose config talks to `m` as instance `instance`.
fn world(m: &Exoscale, instance: Option<&str>, extra_yaml: &str) -> World {
    world_with_secret(m, SECRET, instance, extra_yaml)
}

fn world_with_secret(
    m: &Exoscale,
    secret: &str,
    instance: Option<&str>,
    extra_yaml: &str,
) -> World {
    let w = World::new("http://127.0.0.1:9/", SERVER_A, extra_yaml);
    let text = std::fs::read_to_string(&w.config).expect("config");
    // Keep everything but the cloudscale part.
    let rest: String = text
        .lines()
        .filter(|l| {
            !(l.starts_with("provider:") || l.starts_with("cloudscale:") || l.starts_with("  "))
                || l.starts_with("  initial-interval")
                || l.starts_with("  max-interval")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&w.config, exoscale_yaml(&m.url(), secret, instance) + &rest).expect("config");
    w
}

fn here_only(m: &Exoscale, ip: &str) -> bool {
    m.with_state(|s| s.holders(ip) == [SERVER_A])
}

#[test]
fn master_attaches_here_detaches_the_previous_holder_and_backup_stops() {
    let m = mock();
    let w = world(&m, Some(SERVER_A), "");
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        m.wait_for(T, |s| s.holders("192.0.2.10") == [SERVER_A]),
        "never attached here only; log:\n{}",
        w.log_text()
    );
    // The host address's Elastic IP, never a network's.
    let reqs = m.requests();
    let attach = reqs
        .iter()
        .find(|r| r.path.ends_with(":attach"))
        .expect("an attach");
    assert_eq!(
        attach.body,
        format!(r#"{{"instance":{{"id":"{SERVER_A}"}}}}"#)
    );
    let detach = reqs
        .iter()
        .find(|r| r.path.ends_with(":detach"))
        .expect("a detach");
    assert_eq!(
        detach.body,
        format!(r#"{{"instance":{{"id":"{SERVER_B}"}}}}"#)
    );
    assert!(
        w.wait_log("detached from the previous holder", T),
        "{}",
        w.log_text()
    );
    w.backup_ends_the_refresher();
    // BACKUP detaches nothing: the new MASTER does that.
    assert_eq!(m.holders("192.0.2.10"), vec![SERVER_A.to_string()]);
}

#[test]
fn an_address_without_elastic_ip_is_a_clear_error() {
    let m = mock();
    m.remove_elastic_ip("192.0.2.21");
    let w = world(&m, Some(SERVER_A), "");
    let out = w.notify(&["INSTANCE", "'VI.b'", "MASTER"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The other address of the instance is still served.
    assert!(m.wait_for(T, |s| s.holders("192.0.2.20") == [SERVER_A]));
    assert!(
        w.wait_log("no Elastic IP with address 192.0.2.21", T),
        "{}",
        w.log_text()
    );
    assert!(
        w.log_text().contains("next try in one refresh interval"),
        "{}",
        w.log_text()
    );
}

/// Steady state: every request after the last non-verify one, once enough
/// verify rounds ran. Returns (requests until steady, steady requests,
/// steady rounds as the refresher logged them).
fn steady_state(instances: usize) -> (usize, usize, usize) {
    let m = Exoscale::start(KEY, SECRET).expect("start mock");
    m.add_instance(SERVER_A, "lb-a");
    if instances > 1 {
        m.add_instance(SERVER_B, "lb-b");
        m.add_filler_instances(instances - 2);
        m.add_elastic_ip("192.0.2.10", &[SERVER_B]);
    } else {
        m.add_elastic_ip("192.0.2.10", &[]);
    }
    let w = world(&m, Some(SERVER_A), "refresh-interval: 1s\n");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    let me = format!("/v2/instance/{SERVER_A}");
    // At the 1s minimum refresh-interval: enough rounds to see that each
    // is one request, few enough to keep the test short.
    let steady = 4;
    assert!(
        m.wait_for(Duration::from_secs(30), |s| {
            s.requests()
                .iter()
                .filter(|r| r.method == "GET" && r.path == me)
                .count()
                >= steady
        }),
        "no steady state with {instances} instances; log:\n{}",
        w.log_text()
    );
    // Freeze the log: stop the refresher.
    assert!(w.notify(&["INSTANCE", "VI_1", "BACKUP"]).status.success());
    let reqs = m.requests();
    let last_other = reqs
        .iter()
        .rposition(|r| !(r.method == "GET" && r.path == me))
        .expect("a start-up request");
    let tail = &reqs[last_other + 1..];
    assert!(tail.iter().all(|r| r.status == Some(200)));
    assert!(here_only(&m, "192.0.2.10"));
    let rounds = w.log_text().matches("address points here").count();
    // For docs/PERFORMANCE.md, never asserted.
    eprintln!(
        "exoscale {instances} instances: start-up requests took {:?}",
        reqs[last_other].at.duration_since(reqs[0].at)
    );
    (last_other + 1, tail.len(), rounds)
}

#[test]
fn steady_state_costs_the_same_with_1_and_500_instances() {
    let (start_1, steady_1, rounds_1) = steady_state(1);
    let (start_500, steady_500, rounds_500) = steady_state(500);
    eprintln!(
        "exoscale requests: start-up {start_1} (1 instance) vs {start_500} (500 instances); \
         steady state {steady_1}/{rounds_1} vs {steady_500}/{rounds_500} per refresh"
    );
    // Every steady-state refresh is exactly one read of this instance (one
    // more request than logged rounds: BACKUP may have cut the last round
    // between its answer and its log line).
    for (steady, rounds) in [(steady_1, rounds_1), (steady_500, rounds_500)] {
        assert!(rounds >= 3, "{rounds} rounds");
        assert!(
            (rounds..=rounds + 1).contains(&steady),
            "{steady} requests for {rounds} rounds"
        );
    }
    // The wide scan ran once, at start-up, and read every other instance.
    assert!(start_500 >= start_1 + 499, "{start_1} vs {start_500}");
}

#[test]
fn self_test_reads_the_instance_and_lists_elastic_ips() {
    let m = mock();
    let w = world(&m, Some(SERVER_A), "");
    let out = w.run(&["--test", w.config.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("lb-a") && text.contains("3 Elastic IPs visible"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("OK ")).count(),
        2,
        "{text}"
    );
    let bad = world_with_secret(&m, "wrong-exo-secret", Some(SERVER_A), "");
    let out = bad.run(&["-T", bad.config.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("Invalid request signature"),
        "{}",
        stdout(&out)
    );
    assert!(
        !stdout(&out).contains("wrong-exo-secret") && !stderr(&out).contains("wrong-exo-secret")
    );
}

#[test]
fn the_secret_never_reaches_a_log_line() {
    let m = mock();
    // Failures first (their messages carry server text), then success.
    m.set_fault_times(
        mock_cloud::Fault::Status(500, format!(r#"{{"message":"echo {SECRET}"}}"#)),
        2,
    );
    m.fail_operations(1);
    let w = world(&m, Some(SERVER_A), "refresh-interval: 1s\n");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(
        m.wait_for(T, |s| s.holders("192.0.2.10") == [SERVER_A]),
        "{}",
        w.log_text()
    );
    assert!(w.wait_log("retrying in", T));
    let out = w.run(&["--test", "-v", w.config.to_str().expect("utf-8")]);
    assert!(out.status.success());
    let out = w.run(&["--check", "-v", w.config.to_str().expect("utf-8")]);
    assert!(out.status.success());
    assert!(w.notify(&["INSTANCE", "VI_1", "BACKUP"]).status.success());
    let log = w.log_text();
    assert!(log.contains("ended in failure"), "{log}");
    assert!(
        log.contains("echo ***"),
        "the echoed secret is redacted: {log}"
    );
    assert!(!log.contains(SECRET), "secret in the log:\n{log}");
}

#[test]
fn instance_and_zone_come_from_the_metadata_service() {
    let m = mock();
    let meta = Metadata::exoscale(Some(SERVER_A), Some("ch-gva-2")).expect("metadata");
    let w = world(&m, None, "");
    let out = w.notify_env(
        &[("FLOATY_METADATA_URL", &meta.url())],
        &["INSTANCE", "VI_1", "MASTER"],
    );
    assert!(out.status.success());
    assert!(
        m.wait_for(T, |s| s.holders("192.0.2.10") == [SERVER_A]),
        "{}",
        w.log_text()
    );
    assert!(
        w.wait_log("instance id from metadata", T),
        "{}",
        w.log_text()
    );
    assert!(meta
        .requests()
        .iter()
        .any(|r| r.path == "/1.0/meta-data/instance-id"));
}

#[test]
fn missing_credentials_and_bad_keys_are_config_errors() {
    let m = mock();
    let w = world(&m, Some(SERVER_A), "");
    let yaml = std::fs::read_to_string(&w.config).expect("config");
    std::fs::write(
        &w.config,
        yaml.replace(&format!("  secret: {SECRET}\n"), ""),
    )
    .expect("w");
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("exoscale.secret: missing"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&w.config, yaml.replace(KEY, "\"EXO with spaces\"")).expect("w");
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("exoscale.key:"), "{}", stderr(&out));
    assert!(w.refreshers().is_empty());
    assert!(m.requests().is_empty());
}

#[test]
fn steady_state_takes_a_moved_address_back() {
    let m = mock();
    let w = world(&m, Some(SERVER_A), "refresh-interval: 1s\n");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(w.wait_log("address points here", T), "{}", w.log_text());
    let mutations = m.with_state(|s| s.mutations());
    // The web console moves it to b (attach there, detach here).
    m.set_holders("192.0.2.10", &[SERVER_B]);
    assert!(w.wait_log("re-pointed here", T), "{}", w.log_text());
    assert!(m.wait_for(T, |s| s.holders("192.0.2.10") == [SERVER_A]));
    assert!(
        w.log_text().contains(&format!("was on {SERVER_B}")),
        "{}",
        w.log_text()
    );
    // One attach here, one detach from b.
    assert_eq!(m.with_state(|s| s.mutations()), mutations + 2);
}
