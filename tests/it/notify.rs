//! Notify mode through the binary against the mock cloudscale API.

use std::time::Duration;

use mock_cloud::Fault;

use crate::support::*;

const T: Duration = Duration::from_secs(10);

#[test]
fn master_points_the_address_here_and_backup_stops_the_refresher() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)),
        "address never moved here; log:\n{}",
        w.log_text()
    );
    // The host address is PATCHed, never the network (vshn/floaty's bug).
    let patch = mock
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("a PATCH");
    assert_eq!(patch.path, "/v1/floating-ips/192.0.2.10");
    assert_eq!(patch.body, format!("{{\"server\":\"{SERVER_A}\"}}"));
    w.backup_ends_the_refresher();
}

#[test]
fn a_second_master_replaces_the_first_refresher() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    let first = w.refreshers();
    assert_eq!(first.len(), 1);
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    let second = w.refreshers();
    assert_eq!(second.len(), 1);
    assert_ne!(first, second);
    assert!(!alive(first[0]));
}

#[test]
fn group_events_apply_to_every_member() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let out = w.notify(&["GROUP", "G1", "MASTER", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        mock.wait_for(T, |s| ["192.0.2.10", "192.0.2.20", "192.0.2.21"]
            .iter()
            .all(|ip| s.server_of(ip) == Some(SERVER_A)))
    );
    assert_eq!(w.refreshers().len(), 2, "one refresher per member instance");
    // FIFO-style quoting of a single-quoted name finds the same instance.
    let out = w.notify(&["INSTANCE", "\"'VI.b'\"", "STOP", "100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(w.refreshers().len(), 1);
    assert!(w.notify(&["GROUP", "G1", "FAULT"]).status.success());
    assert!(w.refreshers().is_empty());
}

#[test]
fn steady_state_reads_first_and_corrects_a_moved_address() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "refresh-interval: 1s\n");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)));
    // Wait for a verify round that finds it here and writes nothing.
    assert!(mock.wait_for(T, |s| s.requests().iter().any(|r| r.method == "GET")));
    assert_eq!(
        mock.patch_count("192.0.2.10"),
        1,
        "a GET that finds the address here must not PATCH"
    );
    // Someone else takes the address: the next round takes it back.
    mock.add_floating_ip("192.0.2.10", Some(SERVER_B));
    assert!(mock.wait_for(T, |s| s.patch_count("192.0.2.10") == 2));
    assert!(w.wait_log("re-pointed here", T), "{}", w.log_text());
    assert!(
        w.log_text().contains(SERVER_B) || w.log_text().contains("lb-b"),
        "{}",
        w.log_text()
    );
}

#[test]
fn server_errors_are_retried_on_the_back_off() {
    let mock = mock_cloudscale();
    mock.set_fault_times(Fault::Status(500, r#"{"detail":"boom"}"#.into()), 3);
    let w = World::new(&mock.url(), SERVER_A, "");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(
        mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)),
        "never recovered: {}",
        w.log_text()
    );
    assert_eq!(mock.patch_count("192.0.2.10"), 4);
    assert!(w.log_text().contains("retrying in"), "{}", w.log_text());
}

#[test]
fn client_errors_wait_for_the_next_interval() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    // A wrong token: 401. With a 1h interval and a 20ms back-off, a retry
    // would show up within a few back-off steps.
    let yaml = std::fs::read_to_string(&w.config)
        .unwrap()
        .replace(TOKEN, "wrong-token");
    std::fs::write(&w.config, yaml).unwrap();
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(
        w.wait_log("next try in one refresh interval", T),
        "{}",
        w.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        mock.requests().len(),
        1,
        "a 401 must not be retried before the next interval"
    );
    assert!(
        !w.log_text().contains("wrong-token"),
        "the token leaked into the log"
    );
}

#[test]
fn too_many_requests_honours_retry_after() {
    let mock = mock_cloudscale();
    mock.set_fault_times(
        Fault::TooMany {
            retry_after_secs: 1,
        },
        1,
    );
    let w = World::new(&mock.url(), SERVER_A, "");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)));
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at.duration_since(reqs[0].at);
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, before Retry-After"
    );
}

#[test]
fn sigterm_during_a_hung_request_exits_promptly() {
    let mock = mock_cloudscale();
    mock.set_fault(Fault::Hang);
    let w = World::new(&mock.url(), SERVER_A, "refresh-timeout: 1m\n");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(mock.wait_for(T, |s| !s.requests().is_empty()));
    let pid = w.refreshers()[0];
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(
        wait_until(Duration::from_secs(1), || !alive(pid)),
        "refresher outlived SIGTERM by 1 s"
    );
}

#[test]
fn a_killed_refresher_leaves_a_lock_the_next_call_takes() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    let pid = w.refreshers()[0];
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_until(T, || !alive(pid)));
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(w.refreshers().len(), 1);
}

#[test]
fn a_reused_pid_in_the_lock_file_is_never_signalled() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "lock-timeout: 400ms\n");
    let lock = w.lock_path("VI_1");
    // An innocent process, named in the lock file with the wrong start time,
    // while someone else (flock(1)) holds the lock.
    let mut innocent = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = innocent.id() as i32;
    let start = start_time(pid).unwrap();
    std::fs::write(
        &lock,
        format!("floaty-refresher {pid} {} VI_1\n", start + 1),
    )
    .unwrap();
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    assert!(wait_until(T, || {
        std::fs::File::open(&lock).is_ok_and(|f| f.try_lock().is_err())
    }));
    let out = w.notify(&["INSTANCE", "VI_1", "BACKUP"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("still held"), "{}", stderr(&out));
    assert!(alive(pid), "an unrelated process was signalled");
    let _ = holder.kill();
    let _ = innocent.kill();
    let _ = holder.wait();
    let _ = innocent.wait();
}

#[test]
fn dry_run_makes_no_api_call() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let out = w.run(&[
        "--dry-run",
        "--log-target",
        "stderr",
        w.config.to_str().unwrap(),
        "INSTANCE",
        "VI_1",
        "MASTER",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(w.wait_log("dry-run", T), "{}", w.log_text());
    assert!(mock.requests().is_empty());
}

#[test]
fn check_lists_instances_and_addresses() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let out = w.run(&["--check", w.config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"provider": "cloudscale", "instances": {
            "VI_1": ["192.0.2.10/24"],
            // A full-length prefix reads as the bare address, as keepalived shows it.
            "'VI.b'": ["192.0.2.20", "192.0.2.21"],
        }})
    );
    assert!(mock.requests().is_empty());
}

#[test]
fn self_test_reports_server_and_addresses() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let out = w.run(&["-T", w.config.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("lb-a"), "{}", stdout(&out));
    let yaml = std::fs::read_to_string(&w.config)
        .unwrap()
        .replace(TOKEN, "wrong-token");
    std::fs::write(&w.config, yaml).unwrap();
    let out = w.run(&["--test", w.config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(!stdout(&out).contains("wrong-token") && !stderr(&out).contains("wrong-token"));
}
