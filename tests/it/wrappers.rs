//! The shell wrappers in `wrapper-scripts/`, run as keepalived, a
//! container runtime or a monitoring system would run them, with the built
//! floaty behind them and the mock cloudscale API in front.

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const T: Duration = Duration::from_secs(10);

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("wrapper-scripts")
        .join(name)
}

/// Run a wrapper with `env` and keepalived's stdin and stderr (/dev/null;
/// a pipe would be held open by the refresher the call forks).
fn run_script(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(script(name))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .expect("run the wrapper script")
}

/// Datagrams on `sock` until one contains `needle` or `timeout` passes.
fn recv_until(sock: &UnixDatagram, needle: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("read timeout");
        let Ok(n) = sock.recv(&mut buf) else { break };
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        let found = line.contains(needle);
        seen.push(line);
        if found {
            break;
        }
    }
    seen
}

#[test]
fn floaty_notify_runs_floaty_and_logs_to_syslog() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let sock_path = w.path("syslog.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind the syslog socket");
    let config = w.config.to_str().unwrap();
    let env = [
        ("FLOATY", bin()),
        ("FLOATY_CONFIG", config),
        ("FLOATY_SYSLOG_SOCKET", sock_path.to_str().unwrap()),
    ];

    let out = run_script(
        "floaty-notify",
        &["INSTANCE", "VI_1", "MASTER", "150"],
        &env,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)),
        "the wrapper's MASTER call never moved the address"
    );
    let lines = recv_until(&sock, "address pointed here", T);
    let moved = lines
        .iter()
        .find(|l| l.contains("address pointed here"))
        .unwrap_or_else(|| panic!("no syslog line about the move; got {lines:#?}"));
    // RFC 3164 framing, facility daemon, tagged floaty.
    assert!(moved.starts_with("<30>floaty["), "{moved}");
    assert!(
        moved.contains("VI_1") && moved.contains("192.0.2.10"),
        "{moved}"
    );
    assert_eq!(w.refreshers().len(), 1);

    let out = run_script(
        "floaty-notify",
        &["INSTANCE", "VI_1", "BACKUP", "150"],
        &env,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        w.refreshers().is_empty(),
        "BACKUP left the refresher running"
    );
    let rest = recv_until(&sock, "refresher stops", T);
    assert!(
        lines.iter().chain(&rest).all(|l| !l.contains(TOKEN)),
        "the token reached syslog"
    );
}

#[test]
fn floaty_docker_puts_flags_first_and_logs_json_to_pid_1() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let (out_path, err_path) = (w.path("pid1.out"), w.path("pid1.err"));
    let config = w.config.to_str().unwrap();
    let env = [
        ("FLOATY", bin()),
        ("FLOATY_CONFIG", config),
        ("FLOATY_STDOUT", out_path.to_str().unwrap()),
        ("FLOATY_STDERR", err_path.to_str().unwrap()),
    ];

    // A flag given after the wrapper lands before CONFIG, where floaty reads it.
    let out = run_script("floaty-docker", &["--check"], &env);
    assert!(out.status.success(), "{:?}", fs::read_to_string(&err_path));
    let report = fs::read_to_string(&out_path).expect("stdout file");
    let json: serde_json::Value = serde_json::from_str(&report).expect("--check prints JSON");
    assert_eq!(json["provider"], "cloudscale");

    let out = run_script(
        "floaty-docker",
        &["INSTANCE", "VI_1", "MASTER", "150"],
        &env,
    );
    assert!(out.status.success(), "{:?}", fs::read_to_string(&err_path));
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)));
    assert!(
        wait_until(T, || fs::read_to_string(&err_path)
            .is_ok_and(|t| t.contains("address pointed here"))),
        "the refresher's log never reached PID 1's stderr"
    );
    let out = run_script(
        "floaty-docker",
        &["INSTANCE", "VI_1", "BACKUP", "150"],
        &env,
    );
    assert!(out.status.success());
    assert!(w.refreshers().is_empty());

    let log = fs::read_to_string(&err_path).expect("stderr file");
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v.get("level").is_some(), "{line}");
        assert!(!line.contains(TOKEN), "the token reached the log");
    }
}

#[test]
fn floaty_self_test_speaks_the_nagios_plugin_exit_codes() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let config = w.config.to_str().unwrap();

    let ok = run_script("floaty-self-test", &[config], &[("FLOATY", bin())]);
    let text = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(text.starts_with("OK - "), "{text}");

    let bad = w.path("bad-token.yml");
    let yaml = fs::read_to_string(&w.config)
        .unwrap()
        .replace(TOKEN, "wrong-token");
    fs::write(&bad, yaml).unwrap();
    let crit = run_script(
        "floaty-self-test",
        &[bad.to_str().unwrap()],
        &[("FLOATY", bin())],
    );
    let text = String::from_utf8_lossy(&crit.stdout).into_owned();
    assert_eq!(crit.status.code(), Some(2), "{text}");
    assert!(text.starts_with("CRITICAL - "), "{text}");
    assert!(!text.contains("wrong-token"), "{text}");

    let missing = w.path("missing.yml");
    let crit = run_script(
        "floaty-self-test",
        &[missing.to_str().unwrap()],
        &[("FLOATY", bin())],
    );
    let text = String::from_utf8_lossy(&crit.stdout).into_owned();
    assert_eq!(
        crit.status.code(),
        Some(2),
        "a broken config is critical: {text}"
    );
    assert!(text.contains("missing.yml"), "{text}");

    let unknown = run_script(
        "floaty-self-test",
        &[config],
        &[("FLOATY", "/nonexistent/floaty")],
    );
    let text = String::from_utf8_lossy(&unknown.stdout).into_owned();
    assert_eq!(unknown.status.code(), Some(3), "{text}");
    assert!(text.starts_with("UNKNOWN - "), "{text}");
}

#[test]
fn floaty_status_speaks_the_nagios_plugin_exit_codes() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let config = w.config.to_str().unwrap();

    // Nothing handled yet: UNKNOWN, in the plugin's one line.
    let unknown = run_script("floaty-status", &[config, "VI_1"], &[("FLOATY", bin())]);
    let text = String::from_utf8_lossy(&unknown.stdout).into_owned();
    assert_eq!(unknown.status.code(), Some(3), "{text}");
    assert!(
        text.starts_with("FLOATY UNKNOWN - VI_1: no state file"),
        "{text}"
    );

    // A MASTER whose refresher points the address here: OK.
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wait_until(Duration::from_secs(15), || {
        run_script("floaty-status", &[config, "VI_1"], &[("FLOATY", bin())])
            .status
            .code()
            == Some(0)
    }));
    let ok = run_script("floaty-status", &[config, "VI_1"], &[("FLOATY", bin())]);
    let text = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(
        text.starts_with("FLOATY OK - 1 instance(s) OK | "),
        "{text}"
    );

    // The refresher killed behind keepalived's back: CRITICAL.
    for pid in w.refreshers() {
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
    }
    let crit = run_script("floaty-status", &[config, "VI_1"], &[("FLOATY", bin())]);
    let text = String::from_utf8_lossy(&crit.stdout).into_owned();
    assert_eq!(crit.status.code(), Some(2), "{text}");
    assert!(text.contains("MASTER without a refresher"), "{text}");

    // A broken config is UNKNOWN, not a false CRITICAL.
    let missing = w.path("missing.yml");
    let broken = run_script(
        "floaty-status",
        &[missing.to_str().unwrap()],
        &[("FLOATY", bin())],
    );
    let text = String::from_utf8_lossy(&broken.stdout).into_owned();
    assert_eq!(broken.status.code(), Some(3), "{text}");
    assert!(
        text.starts_with("UNKNOWN - floaty --status exited 2"),
        "{text}"
    );
}
