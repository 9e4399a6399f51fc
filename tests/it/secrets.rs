//! Credentials outside the YAML (`token-file`, `key-file`, `secret-file`,
//! `FLOATY_*` variables), permission warnings, and the leak check: every
//! scenario at `--verbose`, every log line and all output grepped for the
//! credentials.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use mock_cloud::{Exoscale, Fault};

use crate::fifo::{mkfifo, send, writer, Daemon};
use crate::support::*;

const T: Duration = Duration::from_secs(10);
const EXO_KEY: &str = "EXOsecretsk3y0123456789abcdef";
const EXO_SECRET: &str = "exo-s3cr3t-file-c2VjcmV0cy10ZXN0LXNlY3JldA";
/// Wrong credentials are secrets too: a typo'd token is one character away
/// from the real one.
const WRONG_TOKEN: &str = "wr0ng-t0ken-floaty-secrets-test";
const WRONG_SECRET: &str = "wr0ng-exo-s3cr3t-floaty-secrets-test";

/// Every value that must never appear in output.
const SECRETS: &[&str] = &[TOKEN, WRONG_TOKEN, EXO_SECRET, WRONG_SECRET];

fn write_secret(path: &Path, value: &str, mode: u32) {
    fs::write(path, format!("{value}\n")).expect("secret file");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A cloudscale World whose YAML holds `creds` instead of the inline token.
fn cloudscale_world(mock: &mock_cloud::Cloudscale, creds: &str, extra: &str) -> World {
    let w = World::new(&mock.url(), SERVER_A, extra);
    let yaml = fs::read_to_string(&w.config).expect("config");
    let yaml = yaml.replace(&format!("  token: {TOKEN}\n"), creds);
    assert!(!yaml.contains(TOKEN), "{yaml}");
    fs::write(&w.config, yaml).expect("config");
    fs::set_permissions(&w.config, fs::Permissions::from_mode(0o644)).expect("chmod");
    w
}

pub fn exoscale_mock() -> Exoscale {
    mock_exoscale(EXO_KEY, EXO_SECRET)
}

/// An Exoscale World reading key and secret from `key` and `secret` files.
pub fn exoscale_world(m: &Exoscale) -> World {
    let w = World::new("http://127.0.0.1:9/", SERVER_A, "");
    write_secret(&w.path("exo.key"), EXO_KEY, 0o600);
    write_secret(&w.path("exo.secret"), EXO_SECRET, 0o600);
    let yaml = format!(
        "provider: exoscale\nexoscale:\n  endpoint: {}\n  key-file: exo.key\n  secret-file: exo.secret\n  instance-id: {SERVER_A}\n\
         keepalived-config: {}\nlock-file-template: {}/lock/floaty.%s.lock\n\
         back-off:\n  initial-interval: 20ms\n  max-interval: 50ms\nrefresh-interval: 1h\nverify-master: off\n",
        m.url(),
        w.path("keepalived.conf").display(),
        w.dir.path().display(),
    );
    fs::write(&w.config, yaml).expect("config");
    w
}

fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} holds a credential:\n{text}");
    }
}

#[test]
fn token_file_is_read_trimmed_and_used() {
    let mock = mock_cloudscale();
    let w = cloudscale_world(&mock, "  token-file: token\n", "");
    write_secret(&w.path("token"), TOKEN, 0o600);
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)),
        "{}",
        w.log_text()
    );
    let auth = mock.requests()[0].authorization.clone();
    assert_eq!(auth.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    assert!(
        !w.log_text().contains("readable by group"),
        "{}",
        w.log_text()
    );
}

#[test]
fn environment_variables_carry_credentials() {
    let mock = mock_cloudscale();
    let w = cloudscale_world(&mock, "", "");
    let out = w.notify_env(
        &[("FLOATY_CLOUDSCALE_TOKEN", TOKEN)],
        &["INSTANCE", "VI_1", "MASTER"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)));

    let m = exoscale_mock();
    let w = exoscale_world(&m);
    let yaml = fs::read_to_string(&w.config)
        .unwrap()
        .replace("  key-file: exo.key\n  secret-file: exo.secret\n", "");
    fs::write(&w.config, yaml).unwrap();
    let env = [
        ("FLOATY_EXOSCALE_KEY", EXO_KEY),
        ("FLOATY_EXOSCALE_SECRET", EXO_SECRET),
    ];
    let out = w.notify_env(&env, &["INSTANCE", "VI_1", "MASTER"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        m.wait_for(T, |s| s.holders("192.0.2.10") == [SERVER_A]),
        "{}",
        w.log_text()
    );
    // Without the variables: the usual missing-credential error, exit 2.
    let out = w.notify(&["INSTANCE", "VI_1", "BACKUP"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("exoscale.key: missing; ")
            && stderr(&out).contains("FLOATY_EXOSCALE_KEY"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unreadable_or_empty_secret_file_is_a_one_line_config_error() {
    let mock = mock_cloudscale();
    let w = cloudscale_world(&mock, "  token-file: token\n", "");
    let file = w.path("token");
    let check = |want: &str| {
        let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(
            lines[0].contains(&format!("cloudscale.token-file: {}", "")) && lines[0].contains(want),
            "{err}"
        );
        assert!(lines[0].contains(&file.display().to_string()), "{err}");
    };
    check("No such file");
    fs::write(&file, "\n").unwrap();
    check("is empty");
    // Mode 000 is readable by root anyway; a directory is not, for anyone.
    fs::remove_file(&file).unwrap();
    fs::create_dir(&file).unwrap();
    check("not a regular file");
    fs::remove_dir(&file).unwrap();
    // Both the inline key and its file: which one did you mean?
    write_secret(&file, TOKEN, 0o600);
    let yaml = fs::read_to_string(&w.config).unwrap().replace(
        "  token-file: token\n",
        &format!("  token-file: token\n  token: {WRONG_TOKEN}\n"),
    );
    fs::write(&w.config, yaml).unwrap();
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cloudscale.token: set together with `cloudscale.token-file`"),
        "{}",
        stderr(&out)
    );
    assert!(w.refreshers().is_empty());
    assert!(mock.requests().is_empty());
    assert_no_secret("the log", &w.log_text());
}

#[test]
fn secret_files_and_yaml_readable_by_others_are_warned_about_once() {
    let mock = mock_cloudscale();
    let w = cloudscale_world(&mock, "  token-file: token\n", "");
    write_secret(&w.path("token"), TOKEN, 0o640);
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)));
    let log = w.log_text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("readable by group or others"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("WARN") && warnings[0].contains("mode 0640"),
        "{log}"
    );

    // The YAML itself holding the token, mode 0644: warned about.
    let inline = World::new(&mock.url(), SERVER_A, "");
    fs::set_permissions(&inline.config, fs::Permissions::from_mode(0o644)).unwrap();
    let out = inline.run_verbose(&[], &["--check", inline.config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("holds a credential inline and is readable by group or others"),
        "{}",
        stderr(&out)
    );
    // The same YAML at 0600: silent.
    fs::set_permissions(&inline.config, fs::Permissions::from_mode(0o600)).unwrap();
    let out = inline.run_verbose(&[], &["--check", inline.config.to_str().unwrap()]);
    assert!(!stderr(&out).contains("readable by"), "{}", stderr(&out));
}

/// The whole suite's main scenarios at `--verbose`, failures included
/// (their messages carry server text that may echo what we sent), then
/// every byte floaty wrote is searched for every credential.
#[test]
fn no_scenario_logs_a_credential() {
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut keep = |what: &str, out: &Output| {
        outputs.push((format!("{what} stdout"), stdout(out)));
        outputs.push((format!("{what} stderr"), stderr(out)));
    };

    // cloudscale, token from a file; a 500 that echoes the token first.
    let mock = mock_cloudscale();
    mock.set_fault_times(
        Fault::Status(500, format!(r#"{{"detail":"echo Bearer {TOKEN}"}}"#)),
        2,
    );
    let w = cloudscale_world(&mock, "  token-file: token\n", "refresh-interval: 1s\n");
    write_secret(&w.path("token"), TOKEN, 0o600);
    let cfg = w.config.to_str().unwrap().to_string();
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    keep("cloudscale MASTER", &out);
    assert!(out.status.success());
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)));
    assert!(w.wait_log("retrying in", T), "{}", w.log_text());
    // A verify round, then BACKUP.
    assert!(mock.wait_for(T, |s| s.requests().iter().any(|r| r.method == "GET")));
    let out = w.notify(&["INSTANCE", "VI_1", "BACKUP", "150"]);
    keep("cloudscale BACKUP", &out);
    for args in [
        vec!["--test", cfg.as_str()],
        vec!["--check", cfg.as_str()],
        vec!["--dry-run", cfg.as_str(), "INSTANCE", "VI_1", "MASTER"],
    ] {
        let out = w.run_verbose(&[], &args);
        keep(&args.join(" "), &out);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    // A wrong token from the environment: 401 on every path.
    let bad = cloudscale_world(&mock, "", "");
    let env = [("FLOATY_CLOUDSCALE_TOKEN", WRONG_TOKEN)];
    let out = bad.notify_env(&env, &["INSTANCE", "VI_1", "MASTER"]);
    keep("cloudscale bad token MASTER", &out);
    assert!(
        bad.wait_log("next try in one refresh interval", T),
        "{}",
        bad.log_text()
    );
    let bad_cfg = bad.config.to_str().unwrap().to_string();
    let out = bad.run_verbose(&env, &["--test", &bad_cfg]);
    keep("cloudscale bad token --test", &out);
    assert_eq!(out.status.code(), Some(1));
    let out = bad.notify_env(&env, &["INSTANCE", "VI_1", "STOP"]);
    keep("cloudscale bad token STOP", &out);

    // Exoscale, key and secret from files; a 500 echoing the secret first.
    let m = exoscale_mock();
    m.set_fault_times(
        Fault::Status(500, format!(r#"{{"message":"echo {EXO_SECRET}"}}"#)),
        2,
    );
    let e = exoscale_world(&m);
    let ecfg = e.config.to_str().unwrap().to_string();
    let out = e.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    keep("exoscale MASTER", &out);
    assert!(
        m.wait_for(T, |s| s.holders("192.0.2.10") == [SERVER_A]),
        "{}",
        e.log_text()
    );
    let out = e.notify(&["INSTANCE", "VI_1", "BACKUP", "150"]);
    keep("exoscale BACKUP", &out);
    for args in [
        vec!["--test", ecfg.as_str()],
        vec!["--check", ecfg.as_str()],
        vec!["--dry-run", ecfg.as_str(), "INSTANCE", "VI_1", "MASTER"],
    ] {
        let out = e.run_verbose(&[], &args);
        keep(&args.join(" "), &out);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    write_secret(&e.path("exo.secret"), WRONG_SECRET, 0o600);
    let out = e.notify(&["INSTANCE", "VI_1", "MASTER"]);
    keep("exoscale bad secret MASTER", &out);
    assert!(
        e.wait_log("next try in one refresh interval", T),
        "{}",
        e.log_text()
    );
    let out = e.run_verbose(&[], &["--test", &ecfg]);
    keep("exoscale bad secret --test", &out);
    assert_eq!(out.status.code(), Some(1));
    let out = e.notify(&["INSTANCE", "VI_1", "BACKUP"]);
    keep("exoscale bad secret BACKUP", &out);

    // FIFO daemon, token from the environment.
    let f = cloudscale_world(&mock, "", "");
    let fifo = f.path("keepalived.fifo");
    mkfifo(&fifo);
    let mut fw = writer(&fifo);
    let mut cmd = Command::new(bin());
    cmd.env("FLOATY_CLOUDSCALE_TOKEN", TOKEN);
    let mut d = Daemon::spawn(&f, &mut cmd, &fifo);
    send(&mut fw, &["INSTANCE \"VI_1\" MASTER 150"]);
    assert!(f.wait_log("address pointed here", T), "{}", f.log_text());
    send(&mut fw, &["INSTANCE \"VI_1\" BACKUP 150"]);
    assert!(f.wait_log("refresher stopped", T), "{}", f.log_text());
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(T).is_some());

    let mut lines = 0;
    for (what, text) in outputs
        .iter()
        .map(|(w, t)| (w.as_str(), t.as_str()))
        .chain([
            ("cloudscale log", w.log_text().as_str()),
            ("bad-token log", bad.log_text().as_str()),
            ("exoscale log", e.log_text().as_str()),
            ("fifo log", f.log_text().as_str()),
        ])
    {
        assert_no_secret(what, text);
        lines += text.lines().count();
    }
    // The search must have had something to search: debug lines included.
    assert!(lines > 50, "only {lines} lines");
    assert!(w.log_text().contains("DEBUG"), "{}", w.log_text());
    // And the redaction did happen (the servers did echo the credentials).
    assert!(w.log_text().contains("echo Bearer ***"), "{}", w.log_text());
    assert!(e.log_text().contains("echo ***"), "{}", e.log_text());
}
