//! Bad input: exit status 2, one clear line, and no side effect at all
//! (no lock file, no API call, no process signalled).

use std::fs;

use crate::support::*;

/// Run and check the contract; returns the one error line.
fn rejected(w: &World, mock: &mock_cloud::Cloudscale, args: &[&str]) -> String {
    rejected_lines(w, mock, args).pop().unwrap_or_default()
}

/// Run and check the contract; returns the non-empty lines of stderr.
fn rejected_lines(w: &World, mock: &mock_cloud::Cloudscale, args: &[&str]) -> Vec<String> {
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
    lines.iter().map(|s| s.to_string()).collect()
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
    let out = std::process::Command::new(bin())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("floaty "));
    let out = std::process::Command::new(bin())
        .arg("-help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).contains("INSTANCE|GROUP"));
}

/// [`rejected`], and the message is exactly one non-empty line.
fn rejected_one_line(w: &World, mock: &mock_cloud::Cloudscale, args: &[&str]) -> String {
    let mut lines = rejected_lines(w, mock, args);
    assert_eq!(lines.len(), 1, "args {args:?}: not one line: {lines:?}");
    lines.pop().unwrap_or_default()
}

/// A world whose config only the owner can read: no "readable by
/// others" warning besides the one error line.
fn private_world(mock: &mock_cloud::Cloudscale, extra: &str) -> World {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new(&mock.url(), SERVER_A, extra);
    fs::set_permissions(&w.config, fs::Permissions::from_mode(0o600)).unwrap();
    w
}

/// The world's config with `from` replaced by `to`.
fn edit(w: &World, from: &str, to: &str) {
    let yaml = fs::read_to_string(&w.config).unwrap();
    assert!(yaml.contains(from), "{yaml}");
    fs::write(&w.config, yaml.replacen(from, to, 1)).unwrap();
}

const MASTER: [&str; 3] = ["INSTANCE", "VI_1", "MASTER"];

fn notify_args<'a>(w: &'a World, flags: &[&'a str]) -> Vec<&'a str> {
    let mut args = flags.to_vec();
    args.push(w.config.to_str().unwrap());
    args.extend(MASTER);
    args
}

#[test]
fn credentials_that_are_not_one_word_are_config_errors() {
    let mock = mock_cloudscale();
    // Inline, with a newline (a quoted YAML string).
    let w = private_world(&mock, "");
    edit(
        &w,
        &format!("token: {TOKEN}"),
        &format!("token: \"{TOKEN}\\nx\""),
    );
    let msg = rejected_one_line(&w, &mock, &notify_args(&w, &[]));
    assert!(
        msg.contains("cloudscale.token: the value holds a line break"),
        "{msg}"
    );
    // From the environment (the trailing newline alone is fine).
    let w = private_world(&mock, "");
    edit(&w, &format!("  token: {TOKEN}\n"), "");
    let out = w.run_env(
        &[("FLOATY_CLOUDSCALE_TOKEN", &format!("{TOKEN}\nx"))],
        &notify_args(&w, &[]),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("FLOATY_CLOUDSCALE_TOKEN") && !err.contains(TOKEN),
        "{err}"
    );
    assert!(mock.requests().is_empty() && w.refreshers().is_empty());
    // From a file, with a space inside.
    let w = private_world(&mock, "");
    edit(&w, &format!("token: {TOKEN}"), "token-file: token");
    fs::write(w.path("token"), format!("{TOKEN} x\n")).unwrap();
    let msg = rejected_one_line(&w, &mock, &notify_args(&w, &[]));
    assert!(
        msg.contains("cloudscale.token-file: ") && msg.contains("holds whitespace"),
        "{msg}"
    );
}

#[test]
fn an_exoscale_key_must_start_with_exo_also_in_a_dry_run() {
    let mock = mock_cloudscale();
    let w = private_world(&mock, "");
    edit(
        &w,
        "provider: cloudscale\n",
        "provider: exoscale\nexoscale:\n  key: NOTAKEY0123\n  secret: s\n",
    );
    for flags in [&[][..], &["--dry-run"], &["--check"]] {
        let args = if flags == ["--check"] {
            vec!["--check", w.config.to_str().unwrap()]
        } else {
            notify_args(&w, flags)
        };
        let msg = rejected_one_line(&w, &mock, &args);
        assert!(
            msg.contains("exoscale.key: the value does not start with EXO")
                && !msg.contains("NOTAKEY"),
            "{flags:?}: {msg}"
        );
    }
}

#[test]
fn endpoints_with_a_bad_port_no_text_or_credentials_are_config_errors() {
    let mock = mock_cloudscale();
    let url = mock.url();
    let hostport = url.trim_start_matches("http://").trim_end_matches('/');
    for (endpoint, want) in [
        ("http://127.0.0.1:99999/".to_string(), "invalid port number"),
        (
            "''".to_string(),
            "cloudscale.endpoint: empty; remove the key to use the default",
        ),
        (
            format!("http://admin:pw0rd1234@{hostport}/"),
            "credentials do not belong in the URL",
        ),
    ] {
        let w = private_world(&mock, "");
        edit(
            &w,
            &format!("endpoint: {url}"),
            &format!("endpoint: {endpoint}"),
        );
        for flags in [&[][..], &["--dry-run"]] {
            let msg = rejected_one_line(&w, &mock, &notify_args(&w, flags));
            assert!(msg.contains(want), "{endpoint}: {msg}");
            assert!(!msg.contains("pw0rd1234"), "password shown: {msg}");
        }
    }
}

#[test]
fn a_refresh_interval_below_one_second_is_a_config_error() {
    let mock = mock_cloudscale();
    let w = private_world(&mock, "refresh-interval: 1ns\n");
    let msg = rejected_one_line(&w, &mock, &notify_args(&w, &[]));
    assert!(
        msg.contains("refresh-interval: `1ns` is below the minimum of 1s; write at least 1s"),
        "{msg}"
    );
    let w = private_world(&mock, "lock-timeout: 1ms\n");
    let msg = rejected_one_line(&w, &mock, &notify_args(&w, &[]));
    assert!(
        msg.contains("lock-timeout: `1ms` is below the minimum of 100ms"),
        "{msg}"
    );
}

/// Runs floaty, killing it if it takes longer than `limit` (a config that
/// is a FIFO used to block for ever). Returns status and stderr.
fn run_limited(args: &[&str], limit: std::time::Duration) -> (Option<i32>, String) {
    use std::io::Read;
    let mut child = std::process::Command::new(bin())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("floaty {args:?} still ran after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[test]
fn a_config_path_that_is_a_fifo_or_too_large_is_refused_at_once() {
    let mock = mock_cloudscale();
    let w = private_world(&mock, "");
    let fifo = w.path("fifo.yml");
    crate::fifo::mkfifo(&fifo);
    let limit = std::time::Duration::from_secs(5);
    let (code, err) = run_limited(
        // MASTER: a stop would still stop (at the default lock place)
        // before reporting, by design (fail_safe.rs).
        &[fifo.to_str().unwrap(), "INSTANCE", "VI_1", "MASTER"],
        limit,
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err.trim(),
        format!(
            "floaty: {}: is a FIFO, not a regular file; CONFIG must be floaty's YAML file",
            fifo.display()
        )
    );
    let big = w.path("big.yml");
    let mut text = fs::read(&w.config).unwrap();
    text.resize((1 << 20) + 1, b'#');
    fs::write(&big, text).unwrap();
    let msg = rejected_one_line(
        &w,
        &mock,
        &[big.to_str().unwrap(), "INSTANCE", "VI_1", "MASTER"],
    );
    assert!(msg.ends_with("big.yml: is larger than 1 MiB; that cannot be the right file; CONFIG must be floaty's YAML file"), "{msg}");
}

#[test]
fn a_relative_lock_template_is_found_next_to_the_config_from_any_directory() {
    let mock = mock_cloudscale();
    let w = private_world(&mock, "");
    let abs = format!(
        "lock-file-template: {}/lock/floaty.%s.lock",
        w.dir.path().display()
    );
    edit(&w, &abs, "lock-file-template: lock/floaty.%s.lock");
    // keepalived runs notify programs from `/`.
    let out = std::process::Command::new(bin())
        .current_dir("/")
        .args([w.config.to_str().unwrap(), "INSTANCE", "VI_1", "MASTER"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(out.success(), "MASTER from / failed");
    assert!(w.lock_path("VI_1").exists(), "no lock next to the config");
    w.backup_ends_the_refresher();
}

#[test]
fn usage_errors_are_one_line_naming_what_was_wrong() {
    let mock = mock_cloudscale();
    let w = private_world(&mock, "");
    let cfg = w.config.to_str().unwrap();
    let msg = rejected_one_line(
        &w,
        &mock,
        &["--log-target", "bogus", cfg, "INSTANCE", "VI_1", "MASTER"],
    );
    assert_eq!(msg, "floaty: invalid value 'bogus' for '--log-target <TARGET>' (possible values: stderr, journald, syslog); floaty --help shows the usage");
    let msg = rejected_one_line(&w, &mock, &["--check", "--test", cfg]);
    assert!(
        msg.contains("'--check' cannot be used with '--test'"),
        "{msg}"
    );
    let msg = rejected_one_line(&w, &mock, &["--bogus", cfg, "INSTANCE", "VI_1", "MASTER"]);
    assert_eq!(
        msg,
        "floaty: unknown flag `--bogus`; floaty --help lists the flags"
    );
    // A NAME starting with `-` is still a NAME.
    let msg = rejected_one_line(&w, &mock, &[cfg, "INSTANCE", "-VI_9", "MASTER"]);
    assert!(msg.contains("no vrrp_instance `-VI_9`"), "{msg}");
    // A NAME with a newline does not split the message.
    let msg = rejected_one_line(&w, &mock, &[cfg, "INSTANCE", "VI\n9", "MASTER"]);
    assert!(msg.contains("no vrrp_instance `VI\\n9`"), "{msg}");
    let msg = rejected_one_line(&w, &mock, &[cfg, "GROUP", "G\n9", "MASTER"]);
    assert!(msg.contains("no vrrp_sync_group `G\\n9`"), "{msg}");
}

#[test]
fn under_json_log_the_error_is_one_json_line() {
    let mock = mock_cloudscale();
    let w = private_world(&mock, "");
    let cfg = w.config.to_str().unwrap();
    for args in [
        vec![
            "--json-log",
            "--log-target",
            "bogus",
            cfg,
            "INSTANCE",
            "VI_1",
            "MASTER",
        ],
        vec!["-json-log", "--bogus", cfg, "INSTANCE", "VI_1", "MASTER"],
        vec!["--json-log", "--check", "--test", cfg],
        vec![
            "--json-log",
            "--log-target",
            "stderr",
            cfg,
            "INSTANCE",
            "VI\n9",
            "MASTER",
        ],
    ] {
        let msg = rejected_one_line(&w, &mock, &args);
        let v: serde_json::Value = serde_json::from_str(&msg)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {msg}"));
        assert_eq!(v["level"], "ERROR", "{msg}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{msg}"
        );
    }
}
