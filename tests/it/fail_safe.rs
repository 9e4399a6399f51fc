//! Fail safe: a stop always stops, lock files nobody else can forge or
//! block, and a MASTER call that holds none of its caller's pipes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::fifo::{mkfifo, send, writer, Daemon};
use crate::support::*;

const T: Duration = Duration::from_secs(10);

/// A MASTER call for VI_1 and its running refresher.
fn master(w: &World) -> i32 {
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pids = w.refreshers();
    assert_eq!(pids.len(), 1, "{}", w.log_text());
    pids[0]
}

fn rewrite(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn a_stop_for_an_instance_keepalived_conf_no_longer_names_still_stops_it() {
    for state in ["FAULT", "STOP", "DELETED", "BACKUP"] {
        let mock = mock_cloudscale();
        let w = World::new(&mock.url(), SERVER_A, "");
        let pid = master(&w);
        // keepalived's reload that removes VI_1 reports it as FAULT (or
        // DELETED); keepalived.conf no longer has it.
        rewrite(
            &w.path("keepalived.conf"),
            "vrrp_instance VI_1 {",
            "vrrp_instance VI_9 {",
        );
        let out = w.notify(&["INSTANCE", "VI_1", state, "150"]);
        assert_eq!(out.status.code(), Some(2), "{state}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no vrrp_instance `VI_1`"),
            "{}",
            stderr(&out)
        );
        assert!(!alive(pid), "{state}: the refresher kept running");
        assert!(w.refreshers().is_empty());
    }
}

#[test]
fn a_stop_with_a_broken_floaty_yml_still_stops_and_then_reports() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let pid = master(&w);
    let mut yaml = fs::read_to_string(&w.config).unwrap();
    yaml.push_str("lock-timout: 5s\n");
    fs::write(&w.config, yaml).unwrap();
    let out = w.notify(&["INSTANCE", "VI_1", "BACKUP", "150"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("lock-timout"), "the error is reported: {err}");
    assert!(!alive(pid), "the refresher kept running: {err}");
    assert!(w.refreshers().is_empty());

    // Missing credentials since the MASTER call: the same.
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let pid = master(&w);
    rewrite(&w.config, &format!("  token: {TOKEN}\n"), "");
    let out = w.notify(&["INSTANCE", "VI_1", "FAULT", "150"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!alive(pid));
    assert!(!stderr(&out).contains(TOKEN));
}

#[test]
fn a_group_stop_finds_its_members_in_the_lock_records() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let out = w.notify(&["GROUP", "G1", "MASTER", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pids = w.refreshers();
    assert_eq!(pids.len(), 2, "{}", w.log_text());
    let record = fs::read_to_string(w.lock_path("VI_1")).unwrap();
    assert!(record.contains("\ngroup G1\n"), "{record}");
    // keepalived.conf no longer parses and floaty.yml has a typo: neither
    // can name the members, the records still do.
    fs::write(w.path("keepalived.conf"), "vrrp_sync_group G1 {\n").unwrap();
    let mut yaml = fs::read_to_string(&w.config).unwrap();
    yaml.push_str("refresh-intervall: 1s\n");
    fs::write(&w.config, yaml).unwrap();
    let out = w.notify(&["GROUP", "G1", "STOP", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    for pid in pids {
        assert!(!alive(pid), "member refresher {pid} kept running");
    }
}

#[test]
fn the_fifo_daemon_stops_an_instance_keepalived_conf_no_longer_names() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let fifo = w.path("keepalived.fifo");
    mkfifo(&fifo);
    let mut fw = writer(&fifo);
    let d = Daemon::start(&w, &fifo);
    send(&mut fw, &["INSTANCE \"VI_1\" MASTER 100"]);
    assert!(
        wait_until(T, || refresher_pid(&w.lock_path("VI_1")) == Some(d.pid())),
        "{}",
        w.log_text()
    );
    rewrite(
        &w.path("keepalived.conf"),
        "vrrp_instance VI_1 {",
        "vrrp_instance VI_9 {",
    );
    // And floaty.yml broke too, so the daemon's reread fails.
    let mut yaml = fs::read_to_string(&w.config).unwrap();
    yaml.push_str("lock-timout: 5s\n");
    fs::write(&w.config, yaml).unwrap();
    send(&mut fw, &["INSTANCE \"VI_1\" FAULT 100"]);
    assert!(
        wait_until(T, || refresher_pid(&w.lock_path("VI_1")).is_none()),
        "the daemon kept refreshing VI_1: {}",
        w.log_text()
    );
}

/// Holds `path`'s flock from this test process (not a refresher: floaty
/// must wait for it, never signal it).
fn hold_lock(path: &Path) -> fs::File {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    f.lock().unwrap();
    f
}

/// Runs floaty with `args` (after the config) in the background and waits
/// for it up to `limit`; None when it was still running then (and is
/// killed): a liveness bound, not a timing assertion.
fn run_bounded(w: &World, args: &[&str], limit: Duration) -> Option<(Option<i32>, String)> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&w.log)
        .unwrap();
    let before = fs::metadata(&w.log).map(|m| m.len()).unwrap_or(0) as usize;
    let mut child = Command::new(bin())
        .args(["--log-target", "stderr"])
        .arg(&w.config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let done = wait_until(limit, || matches!(child.try_wait(), Ok(Some(_))));
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    let code = child.wait().unwrap().code();
    let text = fs::read(&w.log).unwrap_or_default();
    Some((
        code,
        String::from_utf8_lossy(text.get(before..).unwrap_or_default()).into_owned(),
    ))
}

#[test]
fn a_stop_gives_up_in_time_when_the_lock_is_held_by_something_else() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "lock-timeout: 1h\n");
    let _held = hold_lock(&w.lock_path("VI_1"));
    for state in ["STOP", "DELETED"] {
        // keepalived kills a STOP call after 1 s; with a 1 h lock-timeout
        // the old code waited the hour.
        let (code, err) = run_bounded(&w, &["INSTANCE", "VI_1", state, "150"], T)
            .unwrap_or_else(|| panic!("{state} still waiting for the lock"));
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("kills a STOP call after 1 s"), "{err}");
        assert_eq!(
            err.lines().filter(|l| l.contains("ERROR")).count(),
            1,
            "{err}"
        );
    }
}

/// A process of root's that a forged record names: it must survive.
fn victim() -> Child {
    Command::new("sleep")
        .arg("300")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// As user nobody: create `lock`, write a record naming `pid` as VI_1's
/// refresher with its real start time, and hold the file's flock.
fn forge_as_nobody(lock: &Path, pid: i32) -> Child {
    let record = format!(
        "floaty-refresher {pid} {} VI_1\n",
        start_time(pid).expect("victim's start time")
    );
    let child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args([
            "sh",
            "-c",
            "printf '%s' \"$2\" > \"$1\" && exec flock \"$1\" sleep 300",
        ])
        .arg("forge")
        .arg(lock)
        .arg(record)
        // Its own process group, killed whole by [`Reap`] (flock's `sleep`
        // child included), and no pipe of the test harness held open.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("setpriv");
    assert!(
        wait_until(T, || fs::read_to_string(lock)
            .is_ok_and(|t| t.contains("floaty-refresher"))),
        "the forged record was not written"
    );
    child
}

/// The flock held by the forger's `flock`: wait until it is taken.
fn wait_held(lock: &Path) {
    assert!(wait_until(T, || {
        fs::File::open(lock)
            .is_ok_and(|f| matches!(f.try_lock_shared(), Err(fs::TryLockError::WouldBlock)))
    }));
}

/// Kills a process group when dropped, so a failing test leaves none of
/// its helpers behind (a leftover would hold the harness's pipes open).
struct KillGroup(i32);

impl Drop for KillGroup {
    fn drop(&mut self) {
        unsafe { libc::kill(-self.0, libc::SIGKILL) };
    }
}

struct Reap(Vec<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        for c in &mut self.0 {
            // A forger leads its own group: end all of it.
            unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn a_non_root_user_can_neither_forge_a_lock_nor_block_floaty() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test runs as root (CI does)"
    );
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "lock-timeout: 1h\n");
    // nobody must reach the directories below to try anything at all.
    fs::set_permissions(w.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let mut reap = Reap(Vec::new());
    let root_process = victim();
    let victim_pid = root_process.id() as i32;
    reap.0.push(root_process);

    // 1. A world-writable lock directory, like /run/lock or /tmp.
    let open = w.path("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
    rewrite(
        &w.config,
        &format!("{}/lock/", w.dir.path().display()),
        &format!("{}/", open.display()),
    );
    let forged = open.join("floaty.VI_1.lock");
    reap.0.push(forge_as_nobody(&forged, victim_pid));
    wait_held(&forged);
    for state in ["BACKUP", "STOP", "MASTER"] {
        let (code, err) = run_bounded(&w, &["INSTANCE", "VI_1", state, "150"], T)
            .unwrap_or_else(|| panic!("{state}: blocked by the forged lock"));
        assert_eq!(code, Some(2), "{state}: {err}");
        assert!(err.contains("writable by other users"), "{state}: {err}");
        assert!(
            alive(victim_pid),
            "{state}: root floaty signalled the forged record's process"
        );
    }
    assert!(mock.requests().is_empty());

    // 2. A safe directory with a lock file another user owns (left there
    //    by someone, held by them, naming a root process).
    rewrite(
        &w.config,
        &format!("{}/", open.display()),
        &format!("{}/lock/", w.dir.path().display()),
    );
    let theirs = w.lock_path("VI_1");
    fs::write(&theirs, "").unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    // nobody may write the file they own (not create it: the directory is root's).
    fs::set_permissions(w.path("lock"), fs::Permissions::from_mode(0o755)).unwrap();
    reap.0.push(forge_as_nobody(&theirs, victim_pid));
    wait_held(&theirs);
    for state in ["BACKUP", "MASTER"] {
        let (code, err) = run_bounded(&w, &["INSTANCE", "VI_1", state, "150"], T)
            .unwrap_or_else(|| panic!("{state}: blocked by a lock file nobody owns"));
        assert_eq!(code, Some(1), "{state}: {err}");
        assert!(
            err.contains("is not floaty's: it is owned by uid 65534"),
            "{state}: {err}"
        );
        assert!(
            alive(victim_pid),
            "{state}: root floaty signalled the forged record's process"
        );
    }
    assert!(mock.requests().is_empty());
    // And nobody cannot create a lock file in floaty's own directory.
    let tried = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["sh", "-c", "echo x > \"$1\""])
        .arg("try")
        .arg(w.lock_path("VI_2"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!tried.success());
}

#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn an_older_floatys_refresher_in_var_lock_is_stopped_after_an_upgrade() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test runs as root (CI does)"
    );
    let name = format!("floaty-upgrade-test-{}", std::process::id());
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    // The default lock-file-template: no key in floaty.yml.
    let yaml = fs::read_to_string(&w.config).unwrap();
    let yaml: String = yaml
        .lines()
        .filter(|l| !l.starts_with("lock-file-template:"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&w.config, yaml + "managed-addresses:\n  - 192.0.2.10\n").unwrap();
    fs::remove_file(w.path("keepalived.conf")).unwrap();
    let legacy = PathBuf::from(format!("/var/lock/floaty.{name}.lock"));
    let current = PathBuf::from(format!("/run/floaty/floaty.{name}.lock"));
    struct Cleanup(Vec<PathBuf>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = fs::remove_file(p);
            }
        }
    }
    let _cleanup = Cleanup(vec![legacy.clone(), current.clone()]);
    // An old refresher: holds the legacy lock file open and locked, and
    // the file (root's, 0600, as old floaty made it) names it.
    let mut old = Command::new("flock")
        .arg(&legacy)
        .args(["sleep", "300"])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _group = KillGroup(old.id() as i32);
    assert!(wait_until(T, || legacy.exists()));
    fs::set_permissions(&legacy, fs::Permissions::from_mode(0o600)).unwrap();
    let flock_pid = old.id() as i32;
    let mut sleeper = None;
    assert!(wait_until(T, || {
        sleeper = fs::read_to_string(format!("/proc/{flock_pid}/task/{flock_pid}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse::<i32>().ok());
        sleeper.is_some()
    }));
    let sleeper = sleeper.unwrap();
    wait_held(&legacy);
    let record = format!(
        "floaty-refresher {sleeper} {} {name}\n",
        start_time(sleeper).unwrap()
    );
    fs::write(&legacy, record).unwrap();
    let out = w.notify(&["INSTANCE", &name, "BACKUP", "100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        wait_until(T, || !alive(sleeper)),
        "the older floaty's refresher kept running: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("stopped a refresher found in an older floaty's lock place"));
    let _ = old.wait();
    assert!(current.exists(), "the new default place is used");
}

#[test]
fn a_master_call_holds_none_of_its_callers_pipes() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let syslog = w.path("syslog.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&syslog).unwrap();
    listener.set_read_timeout(Some(T)).unwrap();
    // `$(floaty … MASTER 2>&1)`: both pipes read to their end.
    let child = Command::new(bin())
        .arg(&w.config)
        .args(["INSTANCE", "VI_1", "MASTER", "150"])
        .env("FLOATY_SYSLOG_SOCKET", &syslog)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let got = rx.recv_timeout(T);
    let refreshers = w.refreshers();
    assert_eq!(refreshers.len(), 1, "{}", w.log_text());
    let out = got
        .expect("the caller's pipes stayed open while the refresher ran")
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the refresher logs to syslog"),
        "{}",
        stderr(&out)
    );
    // The refresher's own lines arrive on syslog.
    let mut buf = [0u8; 4096];
    let mut seen = String::new();
    while !seen.contains("address pointed here") {
        let n = listener
            .recv(&mut buf)
            .expect("no refresher line on syslog");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let out = w.notify(&["INSTANCE", "VI_1", "BACKUP", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!alive(refreshers[0]));
}
