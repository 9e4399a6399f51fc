//! What SREs see (`status/`): the state file and Prometheus textfile the
//! refresher keeps, moving with the mock's faults; `--status` and its
//! monitoring-plugin exit codes, on state a refresher wrote and on state
//! written by hand; bad `state-dir`/`metrics-dir` values.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mock_cloud::Fault;
use serde_json::Value;

use crate::support::*;

const T: Duration = Duration::from_secs(15);
const VIP: &str = "192.0.2.10";

fn mock() -> mock_cloud::Cloudscale {
    let mock = mock_cloud::Cloudscale::start(TOKEN).expect("mock");
    mock.add_server(SERVER_A, "lb-a");
    mock.add_server(SERVER_B, "lb-b");
    mock.add_floating_ip(VIP, Some(SERVER_B));
    mock
}

/// A world that refreshes every second and writes metrics.
fn world(mock: &mock_cloud::Cloudscale) -> World {
    let w = World::new(
        &mock.url(),
        SERVER_A,
        "refresh-interval: 1s\nrefresh-timeout: 300ms\nmetrics-dir: metrics\n",
    );
    fs::create_dir(w.path("metrics")).unwrap();
    w
}

fn state(w: &World) -> Value {
    fs::read(w.path("state/VI_1.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

fn metrics(w: &World) -> String {
    fs::read_to_string(w.path("metrics/floaty_VI_1.prom")).unwrap_or_default()
}

fn address(s: &Value) -> &Value {
    &s["addresses"][0]
}

/// The value of the one sample of `name` whose labels contain `labels`.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[track_caller]
fn promtool_accepts(file: &Path) {
    if let Err(e) = promtool_check_metrics(file) {
        panic!("{e}");
    }
}

/// Every request the mock saw, against every call the state counted:
/// the state and metrics cost no API call of their own.
#[track_caller]
fn calls_match(w: &World, mock: &mock_cloud::Cloudscale) {
    let s = state(w);
    let counted: u64 = address(&s)["calls"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    let seen = mock.requests().len() as u64;
    // A request may be in flight between the two reads: at most one more.
    assert!(
        seen == counted || seen == counted + 1,
        "the mock saw {seen} requests, the state counts {counted}: {s:#}"
    );
}

#[test]
#[cfg_attr(
    not(floaty_promtool_tests),
    ignore = "needs promtool (Debian's prometheus package)"
)]
fn the_owner_match_follows_the_cloud_and_the_correction_is_counted() {
    let mock = mock();
    let w = world(&mock);
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        wait_until(T, || address(&state(&w))["owner_is_here"] == true
            && sample(&metrics(&w), "floaty_address_owner_match", VIP)
                == Some(1.0)),
        "never pointed here: {:#}\n{}",
        state(&w),
        w.log_text()
    );
    let s = state(&w);
    assert_eq!(s["role"], "refresher");
    assert_eq!(s["keepalived_state"], "MASTER");
    assert_eq!(s["event_source"], "notify");
    assert_eq!(
        s["pid"].as_i64(),
        w.refreshers().first().map(|p| i64::from(*p))
    );
    assert!(s["failover"]["count"].as_u64() == Some(1), "{s:#}");
    promtool_accepts(&w.path("metrics/floaty_VI_1.prom"));

    // Another server takes the address, and writes fail for a while: the
    // next read sees it elsewhere.
    mock.set_fault_on(
        "PATCH",
        Fault::Status(500, r#"{"detail":"boom"}"#.into()),
        None,
    );
    mock.add_floating_ip(VIP, Some(SERVER_B));
    assert!(
        wait_until(T, || sample(
            &metrics(&w),
            "floaty_address_owner_match",
            VIP
        ) == Some(0.0)),
        "the owner match never went to 0: {}",
        metrics(&w)
    );
    let s = state(&w);
    assert_eq!(address(&s)["owner_is_here"], false);
    assert!(address(&s)["errors"]["5xx"].as_u64() >= Some(1), "{s:#}");
    promtool_accepts(&w.path("metrics/floaty_VI_1.prom"));

    // The API heals: the refresher re-points it, and counts a correction.
    mock.clear_fault();
    assert!(
        wait_until(T, || sample(
            &metrics(&w),
            "floaty_address_owner_match",
            VIP
        ) == Some(1.0)
            && sample(&metrics(&w), "floaty_address_corrections_total", VIP)
                >= Some(1.0)),
        "no correction counted: {}",
        metrics(&w)
    );
    assert_eq!(mock.server_of(VIP).as_deref(), Some(SERVER_A));
    promtool_accepts(&w.path("metrics/floaty_VI_1.prom"));
    calls_match(&w, &mock);

    // --status says OK, --nagios too, in one line with perfdata.
    let out = w.run(&["--status", w.config.to_str().unwrap(), "VI_1"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.starts_with("VI_1: OK - MASTER"), "{text}");
    assert!(text.contains(&format!("  {VIP}: points here")), "{text}");
    let out = w.run(&["--status", "--nagios", w.config.to_str().unwrap(), "VI_1"]);
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        line.starts_with("FLOATY OK - 1 instance(s) OK | 'VI_1 192.0.2.10 failures'=0"),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);

    // BACKUP: the calling process stops the refresher and says so.
    w.backup_ends_the_refresher();
    let s = state(&w);
    assert_eq!(
        (s["role"].as_str(), s["keepalived_state"].as_str()),
        (Some("none"), Some("BACKUP"))
    );
    assert_eq!(s["events"]["MASTER/notify"], 1);
    assert_eq!(s["events"]["BACKUP/notify"], 1);
    assert!(
        address(&s)["corrections"].as_u64() >= Some(1),
        "counters carried on: {s:#}"
    );
}

#[test]
fn errors_are_counted_by_reason() {
    let mock = mock();
    let w = world(&mock);
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wait_until(T, || address(&state(&w))["owner_is_here"] == true));
    let errors = |reason: &str| address(&state(&w))["errors"][reason].as_u64().unwrap_or(0);
    for (reason, fault) in [
        ("5xx", Fault::Status(500, r#"{"detail":"boom"}"#.into())),
        (
            "429",
            Fault::TooMany {
                retry_after_secs: 0,
            },
        ),
        ("timeout", Fault::Hang),
    ] {
        mock.set_fault_times(fault, 1);
        // The state file is written first, the metrics right after it.
        let label = format!("reason=\"{reason}\"");
        assert!(
            wait_until(T, || errors(reason) >= 1
                && sample(&metrics(&w), "floaty_refresh_errors_total", &label)
                    >= Some(1.0)),
            "no {reason} counted: {:#}\n{}",
            state(&w),
            metrics(&w)
        );
    }
    // Credentials revoked: `auth`, and --status is CRITICAL.
    mock.revoke_token(TOKEN);
    assert!(wait_until(T, || errors("auth") >= 1), "{:#}", state(&w));
    let out = w.run(&["--status", w.config.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("credentials rejected"), "{text}");
    let s = state(&w).to_string();
    assert!(!s.contains(TOKEN), "the token leaked into the state: {s}");
}

/// A record for VI_1 as a refresher would write it, with `edit` applied.
fn hand_written(w: &World, edit: impl FnOnce(&mut Value)) {
    let me = std::process::id();
    // Field 22, starttime: the 20th after the command name.
    let start: u64 = stat_fields(me as i32).unwrap()[19].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut v = serde_json::json!({
        "schema": 1, "instance": "VI_1", "provider": "cloudscale",
        "keepalived_state": "MASTER", "keepalived_since": now - 100.0, "event_source": "notify",
        "role": "refresher", "pid": me, "pid_start_time": start, "role_since": now - 100.0,
        "refresh_interval_seconds": 60.0, "drained": null, "health_value": null, "updated": now,
        "addresses": [{
            "address": VIP, "owner": null, "owner_is_here": true, "mismatch_since": null,
            "last_read": now - 5.0, "last_write": now - 100.0, "last_success": now - 5.0,
            "consecutive_failures": 0, "last_error": null, "calls": {"get": 2, "assign": 1},
            "last_latency_seconds": 0.01, "refreshes": 3, "errors": {}, "corrections": 0
        }],
        "events": {"MASTER/notify": 1}, "split_brain_repairs": 0, "master_since": null,
        "failover": {"buckets": [], "sum": 0.0, "count": 0}, "api": {}
    });
    edit(&mut v);
    fs::write(w.path("state/VI_1.json"), v.to_string()).unwrap();
}

#[test]
fn status_exit_codes_follow_the_plugin_guidelines() {
    let w = World::new("http://127.0.0.1:9/", SERVER_A, "");
    let cfg = w.config.to_str().unwrap().to_string();
    let status = |w: &World| {
        let out = w.run(&["--status", &cfg, "VI_1"]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // No state: UNKNOWN.
    assert_eq!(status(&w).0, Some(3), "{}", status(&w).1);
    hand_written(&w, |_| {});
    assert_eq!(status(&w).0, Some(0), "{}", status(&w).1);
    // Retrying: WARNING.
    hand_written(&w, |v| {
        v["addresses"][0]["consecutive_failures"] = 2.into();
        v["addresses"][0]["last_error"] =
            serde_json::json!({"reason": "5xx", "message": "HTTP 503", "at": 0.0});
    });
    let (code, text) = status(&w);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("retrying (2 failure(s), last: 5xx HTTP 503)"),
        "{text}"
    );
    // Last success older than twice the refresh interval: WARNING.
    hand_written(&w, |v| {
        let now = v["updated"].as_f64().unwrap();
        v["addresses"][0]["last_success"] = (now - 200.0).into();
    });
    assert_eq!(status(&w).0, Some(1), "{}", status(&w).1);
    // MASTER, the cloud elsewhere for longer than a refresh: CRITICAL.
    hand_written(&w, |v| {
        let now = v["updated"].as_f64().unwrap();
        v["addresses"][0]["owner_is_here"] = false.into();
        v["addresses"][0]["mismatch_since"] = (now - 90.0).into();
    });
    let (code, text) = status(&w);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("the cloud points elsewhere"), "{text}");
    // MASTER whose refresher is gone (a PID that is not ours any more).
    hand_written(&w, |v| v["pid_start_time"] = 1.into());
    let (code, text) = status(&w);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("MASTER without a refresher"), "{text}");
    // Credentials rejected: CRITICAL.
    hand_written(&w, |v| {
        v["addresses"][0]["consecutive_failures"] = 1.into();
        v["addresses"][0]["last_error"] =
            serde_json::json!({"reason": "auth", "message": "HTTP 401: Invalid token.", "at": 0.0});
    });
    assert_eq!(status(&w).0, Some(2), "{}", status(&w).1);
    // A schema this floaty does not know: UNKNOWN.
    hand_written(&w, |v| v["schema"] = 99.into());
    assert_eq!(status(&w).0, Some(3), "{}", status(&w).1);
    // --json: the level and the record, for machines.
    hand_written(&w, |_| {});
    let out = w.run(&["--status", "--json", &cfg]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    // 'VI.b' (quotes and all: keepalived keeps single quotes) has no
    // state: UNKNOWN overall.
    assert_eq!(
        (v["status"].as_str(), v["code"].as_u64()),
        (Some("UNKNOWN"), Some(3))
    );
    assert_eq!(out.status.code(), Some(3));
    let names: Vec<&str> = v["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["instance"].as_str())
        .collect();
    assert_eq!(names, ["VI_1", "'VI.b'"]);
    // An instance keepalived.conf does not know: a usage error.
    let out = w.run(&["--status", &cfg, "VI_9"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn names_with_quotes_dots_and_spaces_stay_one_line_each() {
    let w = World::new("http://127.0.0.1:9/", SERVER_A, "");
    let kconf = w.path("keepalived.conf");
    fs::write(
        &kconf,
        "vrrp_instance \"VI 2\" {\n  state BACKUP\n  interface eth0\n  virtual_router_id 2\n  priority 100\n  virtual_ipaddress {\n    192.0.2.30\n  }\n}\n\
         vrrp_instance it's.x {\n  state BACKUP\n  interface eth0\n  virtual_router_id 3\n  priority 100\n  virtual_ipaddress {\n    192.0.2.31\n  }\n}\n",
    )
    .unwrap();
    let cfg = w.config.to_str().unwrap().to_string();
    let out = w.run(&["--status", &cfg]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(3), "{text}{}", stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("\"VI 2\": UNKNOWN"), "{text}");
    assert!(lines[1].starts_with("\"it's.x\": UNKNOWN"), "{text}");
    let out = w.run(&["--status", "--nagios", &cfg]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn a_missing_state_or_metrics_dir_is_a_usage_error_before_any_side_effect() {
    for key in ["state-dir", "metrics-dir"] {
        let mock = mock();
        let w = World::new(&mock.url(), SERVER_A, "");
        let yaml = fs::read_to_string(&w.config).unwrap();
        let yaml = if key == "state-dir" {
            yaml.replace("state-dir: state\n", "state-dir: nowhere\n")
        } else {
            format!("{yaml}metrics-dir: nowhere\n")
        };
        fs::write(&w.config, yaml).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&w.config, fs::Permissions::from_mode(0o600)).unwrap();
        let cfg = w.config.to_str().unwrap().to_string();
        let out = w.run(&["--check", &cfg]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(key) && err.contains("does not exist"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(!w.lock_path("VI_1").exists(), "a lock was taken");
        assert!(mock.requests().is_empty(), "an API call was made");
    }
}

#[test]
fn a_metrics_dir_that_goes_away_is_logged_once_and_the_refreshing_goes_on() {
    let mock = mock();
    let w = world(&mock);
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wait_until(T, || !metrics(&w).is_empty()));
    fs::rename(w.path("metrics"), w.path("gone")).unwrap();
    let patches = mock.patch_count(VIP);
    mock.add_floating_ip(VIP, Some(SERVER_B));
    assert!(
        wait_until(T, || mock.server_of(VIP).as_deref() == Some(SERVER_A)
            && mock.patch_count(VIP) > patches),
        "the refresher stopped refreshing: {}",
        w.log_text()
    );
    assert!(
        w.wait_log("cannot write metrics file", T),
        "{}",
        w.log_text()
    );
    assert_eq!(w.log_text().matches("cannot write metrics file").count(), 1);
    assert!(!w.path("metrics").exists(), "the directory was recreated");
}

/// The shipped alert rules load, and fire on the series floaty writes
/// (tests/promtool/floaty-alerts.test.yml: a MASTER the cloud disagrees
/// with, a stale success, a demoted BACKUP) and not on a healthy BACKUP.
#[test]
#[cfg_attr(
    not(floaty_promtool_tests),
    ignore = "needs promtool (Debian's prometheus package)"
)]
fn the_shipped_alert_rules_load_and_fire() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for args in [
        vec!["check", "rules", "examples/floaty-alerts.yml"],
        vec!["test", "rules", "tests/promtool/floaty-alerts.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(root)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// The FIFO daemon's `/metrics`: every instance it handles in one
/// answer, each family once (promtool checks), the BACKUP instance too.
#[test]
#[cfg_attr(
    not(floaty_promtool_tests),
    ignore = "needs promtool (Debian's prometheus package)"
)]
fn the_fifo_daemon_serves_every_instance_on_metrics_listen() {
    use crate::fifo::{mkfifo, send, writer, Daemon};
    let mock = mock();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let w = World::new(
        &mock.url(),
        SERVER_A,
        &format!("refresh-interval: 1s\nmetrics-listen: 127.0.0.1:{port}\n"),
    );
    let fifo = w.path("keepalived.fifo");
    mkfifo(&fifo);
    let mut fw = writer(&fifo);
    let _d = Daemon::start(&w, &fifo);
    send(
        &mut fw,
        &[
            "INSTANCE \"VI.b\" BACKUP 100",
            "INSTANCE \"VI_1\" MASTER 100",
        ],
    );
    assert!(
        wait_until(T, || {
            let (code, body) = get(port, "/metrics");
            code == 200
                && sample(&body, "floaty_address_owner_match", VIP) == Some(1.0)
                && body.contains("floaty_keepalived_state{vrrp_instance=\"'VI.b'\"} 1")
        }),
        "{:?}\n{}",
        get(port, "/metrics"),
        w.log_text()
    );
    let (_, body) = get(port, "/metrics");
    assert_eq!(
        body.matches("# TYPE floaty_keepalived_state gauge").count(),
        1,
        "{body}"
    );
    assert!(
        body.contains(
            "floaty_events_total{vrrp_instance=\"VI_1\",state=\"MASTER\",source=\"fifo\"} 1"
        ),
        "{body}"
    );
    let file = w.path("scrape.prom");
    fs::write(&file, &body).unwrap();
    promtool_accepts(&file);
    assert_eq!(get(port, "/").0, 404);
}
