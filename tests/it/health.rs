//! Health reporting through keepalived's track file, through the binary:
//! the prober on BACKUP, the refresher on MASTER, the FIFO daemon, drain
//! and undrain, and `--check`'s word on keepalived.conf.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use mock_cloud::Fault;

use crate::fifo::{mkfifo, send, writer, Daemon};
use crate::support::*;

const T: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(20);

/// A world with `track-file-template` in its own 0755 directory, probing
/// every second.
fn world(mock: &mock_cloud::Cloudscale, extra: &str) -> (World, PathBuf) {
    let probe = format!("track-file-template: health/%s.health\nhealth-interval: 1s\n{extra}");
    let w = World::new(&mock.url(), SERVER_A, &probe);
    let dir = w.path("health");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    (w, dir)
}

fn value(dir: &std::path::Path, instance: &str) -> Option<i32> {
    fs::read_to_string(dir.join(format!("{instance}.health")))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn gets(mock: &mock_cloud::Cloudscale) -> usize {
    mock.requests().iter().filter(|r| r.method == "GET").count()
}

#[test]
fn a_backup_probes_and_a_revoked_token_demotes_then_recovers() {
    let mock = mock_cloudscale();
    let (w, dir) = world(&mock, "");
    let out = w.notify(&["INSTANCE", "VI_1", "BACKUP", "100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(w.refreshers().len(), 1, "the prober holds the lock");
    assert!(poll_until(T, POLL, || value(&dir, "VI_1") == Some(0)));
    assert!(mock.wait_for(T, |s| s.requests().iter().any(|r| r.method == "GET")));
    assert_eq!(
        mock.requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count(),
        0,
        "a prober never writes"
    );
    mock.revoke_token(TOKEN);
    assert!(
        poll_until(T, POLL, || value(&dir, "VI_1") == Some(-100)),
        "never demoted; log:\n{}",
        w.log_text()
    );
    mock.add_token(TOKEN, true);
    assert!(
        poll_until(T, POLL, || value(&dir, "VI_1") == Some(0)),
        "never recovered; log:\n{}",
        w.log_text()
    );
    assert!(w.log_text().contains("this node cannot move the address"));
    // MASTER: the prober refreshes now; STOP ends it, the file stays
    // (deleted would read as "ready").
    let prober = w.refreshers();
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)));
    assert!(w.notify(&["INSTANCE", "VI_1", "STOP"]).status.success());
    assert!(!alive(prober[0]));
    assert!(w.refreshers().is_empty());
    assert_eq!(value(&dir, "VI_1"), Some(0));
}

#[test]
fn api_trouble_that_the_peer_shares_never_demotes() {
    let mock = mock_cloudscale();
    let (w, dir) = world(&mock, "");
    assert!(w.notify(&["INSTANCE", "VI_1", "BACKUP"]).status.success());
    assert!(poll_until(T, POLL, || value(&dir, "VI_1") == Some(0)));
    mock.set_fault(Fault::Status(500, "{\"detail\":\"boom\"}".into()));
    let before = gets(&mock);
    assert!(mock.wait_for(T, |s| s
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count()
        >= before + 3));
    mock.set_fault(Fault::Reset);
    let before = gets(&mock);
    assert!(mock.wait_for(T, |s| s
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count()
        >= before + 3));
    assert_eq!(value(&dir, "VI_1"), Some(0), "log:\n{}", w.log_text());
}

#[test]
fn a_master_with_a_revoked_token_demotes_itself() {
    let mock = mock_cloudscale();
    let (w, dir) = world(&mock, "");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)));
    assert_eq!(value(&dir, "VI_1"), Some(0));
    mock.revoke_token(TOKEN);
    assert!(
        poll_until(T, POLL, || value(&dir, "VI_1") == Some(-100)),
        "a 1h refresh-interval must not delay the health read; log:\n{}",
        w.log_text()
    );
}

#[test]
fn drain_and_undrain_last_across_probes() {
    let mock = mock_cloudscale();
    let (w, dir) = world(&mock, "demote-by: 60\n");
    assert!(w.notify(&["INSTANCE", "VI_1", "BACKUP"]).status.success());
    assert!(poll_until(T, POLL, || value(&dir, "VI_1") == Some(0)));
    let config = w.config.to_string_lossy().into_owned();
    let out = w.run(&["--drain", &config, "VI_1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("VI_1: drained"), "{}", stdout(&out));
    assert_eq!(value(&dir, "VI_1"), Some(-254));
    // Probes go on and find the node healthy: the drain stays.
    let before = gets(&mock);
    assert!(mock.wait_for(T, |s| s
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count()
        >= before + 2));
    assert_eq!(value(&dir, "VI_1"), Some(-254));
    // A new prober (another BACKUP) keeps it too.
    assert!(w.notify(&["INSTANCE", "VI_1", "BACKUP"]).status.success());
    assert_eq!(value(&dir, "VI_1"), Some(-254));
    let check = w.run(&["--check", &config]);
    assert!(
        stdout(&check).contains("\"drained\":true"),
        "{}",
        stdout(&check)
    );
    // Undrain goes back to what was measured: demoted, here.
    mock.revoke_token(TOKEN);
    assert!(w.wait_log("this node cannot move the address", T));
    let out = w.run(&["--undrain", &config]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(value(&dir, "VI_1"), Some(-60));
    assert_eq!(value(&dir, "'VI.b'").or(value(&dir, "%27VI.b%27")), Some(0));
}

#[test]
fn drain_without_a_track_file_or_with_an_unknown_name_does_nothing() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let config = w.config.to_string_lossy().into_owned();
    let out = w.run(&["--drain", &config]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("--drain needs `track-file-template`"), "{e}");
    let errors: Vec<&str> = e.lines().filter(|l| !l.contains(" WARN ")).collect();
    assert_eq!(errors.len(), 1, "{e}");

    let (w, dir) = world(&mock, "");
    let config = w.config.to_string_lossy().into_owned();
    let out = w.run(&["--drain", &config, "VI_1", "VI_nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("VI_nope"), "{}", stderr(&out));
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written when one name is wrong"
    );
    assert!(mock.requests().is_empty());
}

#[test]
fn a_missing_track_directory_is_an_error_before_any_side_effect() {
    let mock = mock_cloudscale();
    let w = World::new(
        &mock.url(),
        SERVER_A,
        "track-file-template: nowhere/%s.health\n",
    );
    for state in ["MASTER", "BACKUP"] {
        let out = w.notify(&["INSTANCE", "VI_1", state]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("does not exist; create it before keepalived starts"),
            "{}",
            stderr(&out)
        );
        // (A BACKUP still stops what runs: the stop road may open the lock.)
        if state == "MASTER" {
            assert!(!w.lock_path("VI_1").exists(), "no lock taken");
        }
    }
    assert!(!w.path("nowhere").exists(), "the directory is never made");
    assert!(mock.requests().is_empty(), "no API call");
}

#[test]
fn check_says_whether_keepalived_reads_the_file() {
    let mock = mock_cloudscale();
    let (w, dir) = world(&mock, "");
    let config = w.config.to_string_lossy().into_owned();
    let out = w.run(&["--check", &config]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("no track_file in keepalived.conf reads"),
        "{}",
        stdout(&out)
    );
    let file = dir.join("VI_1.health");
    let conf = KEEPALIVED_CONF.replace(
        "vrrp_instance VI_1 {",
        &format!(
            "track_file floaty_VI_1 {{\n    file \"{}\"\n    weight 1\n}}\nvrrp_instance VI_1 {{\n    track_file {{\n        floaty_VI_1\n    }}",
            file.display()
        ),
    );
    fs::write(w.path("keepalived.conf"), &conf).unwrap();
    let out = w.run(&["--check", &config]);
    assert!(
        stdout(&out).contains("\"keepalived\":\"watched, weight 1\""),
        "{}",
        stdout(&out)
    );
    fs::write(
        w.path("keepalived.conf"),
        conf.replace("floaty_VI_1\n    }", "floaty_VI_1 weight 1 reverse\n    }"),
    )
    .unwrap();
    let out = w.run(&["--check", &config]);
    assert!(stdout(&out).contains("reverse"), "{}", stdout(&out));
    assert!(mock.requests().is_empty(), "--check calls no API");
}

#[test]
fn the_fifo_daemon_probes_every_instance_that_is_not_master() {
    let mock = mock_cloudscale();
    let (w, dir) = world(&mock, "");
    let fifo = w.path("keepalived.fifo");
    mkfifo(&fifo);
    let mut fw = writer(&fifo);
    let _d = Daemon::start(&w, &fifo);
    assert!(
        poll_until(T, POLL, || value(&dir, "VI_1") == Some(0)
            && value(&dir, "%27VI.b%27") == Some(0)),
        "log:\n{}",
        w.log_text()
    );
    send(&mut fw, &["INSTANCE \"VI_1\" MASTER 150"]);
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)));
    mock.revoke_token(TOKEN);
    assert!(
        poll_until(T, POLL, || value(&dir, "VI_1") == Some(-100)
            && value(&dir, "%27VI.b%27") == Some(-100)),
        "log:\n{}",
        w.log_text()
    );
    assert_eq!(
        mock.patch_count("192.0.2.20"),
        0,
        "the prober of 'VI.b' never wrote"
    );
}

#[test]
fn a_token_file_gone_demotes_the_prober_and_its_return_restores() {
    let mock = mock_cloudscale();
    let (w, dir) = world(&mock, "");
    // The token from a file instead of inline.
    let token = w.path("token");
    fs::write(&token, format!("{TOKEN}\n")).unwrap();
    fs::set_permissions(&token, fs::Permissions::from_mode(0o600)).unwrap();
    let yaml = fs::read_to_string(&w.config).unwrap().replace(
        &format!("  token: {TOKEN}\n"),
        &format!("  token-file: {}\n", token.display()),
    );
    fs::write(&w.config, yaml).unwrap();
    assert!(w.notify(&["INSTANCE", "VI_1", "BACKUP"]).status.success());
    assert!(poll_until(T, POLL, || value(&dir, "VI_1") == Some(0)));
    let away = w.path("token.away");
    fs::rename(&token, &away).unwrap();
    assert!(
        poll_until(T, POLL, || value(&dir, "VI_1") == Some(-100)),
        "log:\n{}",
        w.log_text()
    );
    assert!(w.log_text().contains("a MASTER call here would fail"));
    fs::rename(&away, &token).unwrap();
    assert!(poll_until(T, POLL, || value(&dir, "VI_1") == Some(0)));
}

#[test]
fn master_hands_the_instance_to_the_running_prober() {
    let mock = mock_cloudscale();
    let (w, dir) = world(&mock, "");
    assert!(w.notify(&["INSTANCE", "VI_1", "BACKUP"]).status.success());
    let prober = w.refreshers();
    assert_eq!(prober.len(), 1);
    let record = || fs::read_to_string(w.lock_path("VI_1")).unwrap_or_default();
    assert!(record().starts_with("floaty-prober "), "{}", record());
    assert!(mock.wait_for(T, |s| s.requests().iter().any(|r| r.method == "GET")));
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the running prober took over"),
        "{}",
        stderr(&out)
    );
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)));
    assert_eq!(w.refreshers(), prober, "the same process refreshes");
    assert!(
        record().starts_with(&format!("floaty-refresher {} ", prober[0])),
        "{}",
        record()
    );
    // It is a refresher now: BACKUP stops it (and starts a new prober).
    assert!(w.notify(&["INSTANCE", "VI_1", "BACKUP"]).status.success());
    assert!(!alive(prober[0]));
    assert!(record().starts_with("floaty-prober "), "{}", record());
    assert_eq!(value(&dir, "VI_1"), Some(0));
}

#[test]
fn a_prober_that_does_not_answer_is_replaced_by_a_cold_refresher() {
    let mock = mock_cloudscale();
    let (w, _dir) = world(&mock, "lock-timeout: 2s\n");
    assert!(w.notify(&["INSTANCE", "VI_1", "BACKUP"]).status.success());
    let prober = w.refreshers();
    assert_eq!(prober.len(), 1);
    unsafe { libc::kill(prober[0], libc::SIGSTOP) };
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("took over"), "{}", stderr(&out));
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)));
    let now = w.refreshers();
    assert_eq!(now.len(), 1);
    assert_ne!(now, prober);
    assert!(!alive(prober[0]), "the stopped prober was killed");
}
