//! Bad input: exit status 2, one clear line, and no side effect at all
//! (no lock file, no API call, no process signalled).

use std::fs;

use crate::support::*;

/// Run and check the contract; returns the one error line.
fn rejected(w: &World, mock: &mock_cloud::Cloudscale, args: &[&str]) -> String {
    let out = w.run(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "args {args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no message for {args:?}");
    assert!(
        !err.contains("panicked")
            && !err.contains("RUST_BACKTRACE")
            && !err.contains("stack backtrace"),
        "{err}"
    );
    assert!(
        mock.requests().is_empty(),
        "an API call was made for {args:?}"
    );
    let locks: Vec<_> = fs::read_dir(w.path("lock")).unwrap().collect();
    assert!(locks.is_empty(), "a lock file was created for {args:?}");
    assert!(!err.contains(TOKEN), "token leaked: {err}");
    lines.last().map(|s| s.to_string()).unwrap_or_default()
}

#[test]
fn wrong_argument_counts() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let cfg = w.config.to_str().unwrap();
    for args in [
        vec![],
        vec![cfg],
        vec![cfg, "INSTANCE", "VI_1"],
        vec![cfg, "INSTANCE", "VI_1", "MASTER", "100", "extra"],
        vec!["-T"],
        vec!["--check"],
    ] {
        rejected(&w, &mock, &args);
    }
}

#[test]
fn unknown_state_kind_priority_instance_and_group() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let cfg = w.config.to_str().unwrap();
    let msg = rejected(&w, &mock, &[cfg, "INSTANCE", "VI_1", "PRIMARY"]);
    assert!(msg.contains("PRIMARY"), "{msg}");
    rejected(&w, &mock, &[cfg, "VRRP", "VI_1", "MASTER"]);
    rejected(&w, &mock, &[cfg, "INSTANCE", "VI_1", "MASTER", "high"]);
    let msg = rejected(&w, &mock, &[cfg, "INSTANCE", "VI_9", "MASTER"]);
    assert!(msg.contains("VI_9"), "{msg}");
    let msg = rejected(&w, &mock, &[cfg, "GROUP", "G9", "MASTER"]);
    assert!(msg.contains("G9"), "{msg}");
}

#[test]
fn missing_unreadable_malformed_and_unknown_key_configs() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let missing = w.path("nope.yml");
    let msg = rejected(
        &w,
        &mock,
        &[missing.to_str().unwrap(), "INSTANCE", "VI_1", "MASTER"],
    );
    assert!(msg.contains("nope.yml"), "{msg}");

    let dir = w.path("lock");
    let msg = rejected(
        &w,
        &mock,
        &[dir.to_str().unwrap(), "INSTANCE", "VI_1", "MASTER"],
    );
    assert!(msg.contains("lock"), "{msg}");

    let bad = w.path("bad.yml");
    fs::write(&bad, "provider: [cloudscale\n").unwrap();
    let msg = rejected(
        &w,
        &mock,
        &[bad.to_str().unwrap(), "INSTANCE", "VI_1", "MASTER"],
    );
    assert!(msg.contains("bad.yml"), "{msg}");

    let original = fs::read_to_string(&w.config).unwrap();
    fs::write(&w.config, format!("{original}lock-timout: 5s\n")).unwrap();
    let msg = rejected(
        &w,
        &mock,
        &[w.config.to_str().unwrap(), "INSTANCE", "VI_1", "MASTER"],
    );
    assert!(msg.contains("lock-timout"), "{msg}");

    let with_bad_kconf = original.replace("keepalived.conf", "missing-keepalived.conf");
    fs::write(&w.config, with_bad_kconf).unwrap();
    let msg = rejected(
        &w,
        &mock,
        &[w.config.to_str().unwrap(), "INSTANCE", "VI_1", "MASTER"],
    );
    assert!(msg.contains("missing-keepalived.conf"), "{msg}");
}

#[test]
fn fifo_mode_checks_its_input_before_starting() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let dir = w.dir.path().to_str().unwrap();
    let msg = rejected(&w, &mock, &["-fifo", w.config.to_str().unwrap(), dir]);
    assert!(msg.contains("not a FIFO"), "{msg}");
    let msg = rejected(&w, &mock, &["-fifo", "/nonexistent.yml", "/tmp/nope.fifo"]);
    assert!(msg.contains("/nonexistent.yml"), "{msg}");
}

#[test]
fn help_and_version_exit_zero() {
    let out = std::process::Command::new(BIN)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("floaty "));
    let out = std::process::Command::new(BIN)
        .arg("-help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).contains("INSTANCE|GROUP"));
}
