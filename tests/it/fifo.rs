//! FIFO mode through the binary: a FIFO the test writes to, the mock
//! cloudscale API, and the lock files as the record of who refreshes.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const T: Duration = Duration::from_secs(10);
/// The lock file name of `'VI.b'` (percent-encoded by floaty).
pub const VI_B_LOCK: &str = "%27VI.b%27";

pub fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Writes all of `bytes` to the non-blocking FIFO writer `f`, waiting with
/// poll(2) whenever the pipe is full (the daemon drains it).
pub fn write_fully(f: &mut File, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match f.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut pfd = libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for the duration of the call.
                let ready = unsafe { libc::poll(&mut pfd, 1, 10_000) };
                assert!(
                    ready > 0,
                    "the FIFO stayed full for 10 s: is the daemon reading?"
                );
            }
            Err(e) => panic!("write to the FIFO: {e}"),
        }
    }
}

/// The writing side, opened read-write so that opening never blocks (as
/// keepalived does).
pub fn writer(path: &Path) -> File {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .expect("open the FIFO")
}

pub fn send(w: &mut File, lines: &[&str]) {
    for l in lines {
        write_fully(w, format!("{l}\n").as_bytes());
    }
}

/// A running `floaty --fifo`, killed on drop.
pub struct Daemon {
    pub child: Child,
}

impl Daemon {
    pub fn start(w: &World, fifo: &Path) -> Daemon {
        Daemon::spawn(w, &mut Command::new(bin()), fifo)
    }

    pub fn spawn(w: &World, cmd: &mut Command, fifo: &Path) -> Daemon {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&w.log)
            .expect("log");
        let child = cmd
            .args(["--log-target", "stderr", "-v", "--fifo"])
            .arg(&w.config)
            .arg(fifo)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start floaty --fifo");
        Daemon { child }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for the exit; Some(time taken) or None after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        wait_until(timeout, || matches!(self.child.try_wait(), Ok(Some(_)))).then(|| t0.elapsed())
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Who holds the lock of `instance` (encoded name) according to its file.
pub fn holder(w: &World, instance: &str) -> Option<i32> {
    refresher_pid(&w.lock_path(instance))
}

fn setup(extra: &str) -> (mock_cloud::Cloudscale, World, PathBuf) {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, extra);
    let fifo = w.path("keepalived.fifo");
    mkfifo(&fifo);
    (mock, w, fifo)
}

fn events_seen(w: &World) -> usize {
    w.log_text().matches("keepalived event").count()
}

#[test]
fn master_points_the_address_here_and_backup_stops() {
    let (mock, w, fifo) = setup("refresh-interval: 1s\n");
    let mut fw = writer(&fifo);
    let d = Daemon::start(&w, &fifo);
    send(&mut fw, &["INSTANCE \"VI_1\" BACKUP 100"]);
    assert!(wait_until(T, || events_seen(&w) == 1), "{}", w.log_text());
    assert_eq!(holder(&w, "VI_1"), None, "BACKUP must not refresh");

    let sent = Instant::now();
    send(&mut fw, &["INSTANCE \"VI_1\" MASTER 100"]);
    assert!(
        mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)),
        "{}",
        w.log_text()
    );
    if let Some(patch) = mock.requests().iter().find(|r| r.method == "PATCH") {
        eprintln!(
            "fifo: MASTER line -> first PATCH: {:?}",
            patch.at.saturating_duration_since(sent)
        );
    }
    assert!(wait_until(T, || holder(&w, "VI_1") == Some(d.pid())));
    if let Ok(status) = fs::read_to_string(format!("/proc/{}/status", d.pid())) {
        if let Some(rss) = status.lines().find(|l| l.starts_with("VmRSS")) {
            eprintln!("fifo: daemon refreshing one instance: {rss}");
        }
    }
    // Refreshes keep coming while MASTER (1s interval, the minimum).
    let n = mock.requests().len();
    assert!(mock.wait_for(T, |s| s.requests().len() >= n + 2));

    send(&mut fw, &["INSTANCE \"VI_1\" BACKUP 100"]);
    assert!(
        wait_until(T, || holder(&w, "VI_1").is_none()),
        "{}",
        w.log_text()
    );
    // Nothing refreshes any more: the address moved away stays away.
    mock.add_floating_ip("192.0.2.10", Some(SERVER_B));
    let n = mock.requests().len();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(mock.requests().len(), n, "requests after BACKUP");
    assert_eq!(mock.server_of("192.0.2.10").as_deref(), Some(SERVER_B));
}

#[test]
fn group_events_apply_to_members_and_quoted_names_match() {
    let (mock, w, fifo) = setup("");
    let mut fw = writer(&fifo);
    let d = Daemon::start(&w, &fifo);
    send(&mut fw, &["GROUP \"G1\" MASTER 0"]);
    assert!(
        mock.wait_for(T, |s| ["192.0.2.10", "192.0.2.20", "192.0.2.21"]
            .iter()
            .all(|ip| s.server_of(ip) == Some(SERVER_A))),
        "{}",
        w.log_text()
    );
    assert!(wait_until(T, || holder(&w, "VI_1") == Some(d.pid())
        && holder(&w, VI_B_LOCK) == Some(d.pid())));
    // keepalived's FIFO quoting of the single-quoted name.
    send(&mut fw, &["INSTANCE \"'VI.b'\" STOP 100"]);
    assert!(wait_until(T, || holder(&w, VI_B_LOCK).is_none()));
    assert_eq!(holder(&w, "VI_1"), Some(d.pid()));
    send(&mut fw, &["GROUP \"G1\" FAULT 0"]);
    assert!(wait_until(T, || holder(&w, "VI_1").is_none()));
}

#[test]
fn backlog_waiting_at_open_is_applied_in_order() {
    let (mock, w, fifo) = setup("");
    let mut fw = writer(&fifo);
    send(
        &mut fw,
        &[
            "INSTANCE \"'VI.b'\" MASTER 100",
            "MASTER_RX_LOWER_PRI \"VI_1\" 100",
            "INSTANCE \"VI_1\" BACKUP 100",
            "INSTANCE \"'VI.b'\" BACKUP 100",
            "BACKUP_PRIORITY \"VI_1\" 90",
            "INSTANCE \"VI_1\" MASTER 100",
        ],
    );
    let d = Daemon::start(&w, &fifo);
    assert!(wait_until(T, || events_seen(&w) == 4), "{}", w.log_text());
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)));
    assert!(wait_until(T, || holder(&w, "VI_1") == Some(d.pid())));
    assert_eq!(holder(&w, VI_B_LOCK), None, "'VI.b' ended as BACKUP");
}

#[test]
fn junk_huge_and_half_lines_are_skipped() {
    let (mock, w, fifo) = setup("");
    let mut fw = writer(&fifo);
    let mut d = Daemon::start(&w, &fifo);
    // 200 KiB without a newline: more than the pipe holds, so write it
    // from a thread while the daemon drains it.
    let mut fw2 = fw.try_clone().unwrap();
    let big = std::thread::spawn(move || {
        write_fully(&mut fw2, &vec![b'A'; 200 * 1024]);
        write_fully(&mut fw2, b" INSTANCE \"VI_1\" STOP 1\n");
    });
    big.join().unwrap();
    write_fully(
        &mut fw,
        b"\xff\xfe\x00garbage\n\nINSTANCE \"nope\" MASTER 1\nINSTANCE \"VI_1\" PRIMARY 1\nVS FWM 5 UP\nINST",
    );
    write_fully(&mut fw, b"ANCE \"VI_1\" MASTER 100\n");
    assert!(
        mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)),
        "{}",
        w.log_text()
    );
    assert!(d.running());
    let log = w.log_text();
    assert!(log.contains("longer than 4096 bytes"), "{log}");
    assert!(log.contains("no vrrp_instance `nope`"), "{log}");
    assert!(log.contains("unknown state `PRIMARY`"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        !log.contains("state=STOP"),
        "the oversized line's tail was applied: {log}"
    );
}

#[test]
fn end_of_file_and_a_recreated_fifo_are_followed() {
    let (mock, w, fifo) = setup("");
    let mut fw = writer(&fifo);
    let mut d = Daemon::start(&w, &fifo);
    send(&mut fw, &["INSTANCE \"VI_1\" MASTER 100"]);
    assert!(wait_until(T, || holder(&w, "VI_1") == Some(d.pid())));
    // The writer goes away: end of file. The daemon keeps refreshing.
    drop(fw);
    let mut fw = writer(&fifo);
    send(&mut fw, &["INSTANCE \"'VI.b'\" MASTER 100"]);
    assert!(
        wait_until(T, || holder(&w, VI_B_LOCK) == Some(d.pid())),
        "{}",
        w.log_text()
    );
    // keepalived's reload: close, remove, a new FIFO (new inode) later.
    drop(fw);
    fs::remove_file(&fifo).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(d.running(), "the daemon ended when its FIFO went away");
    mkfifo(&fifo);
    let mut fw = writer(&fifo);
    send(&mut fw, &["INSTANCE \"VI_1\" BACKUP 100"]);
    assert!(
        wait_until(T, || holder(&w, "VI_1").is_none()),
        "{}",
        w.log_text()
    );
    assert_eq!(
        holder(&w, VI_B_LOCK),
        Some(d.pid()),
        "dropped a refresher on reopen"
    );
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.20") == Some(SERVER_A)));
    // The same once more with the old FIFO replaced while nobody writes.
    fs::remove_file(&fifo).unwrap();
    mkfifo(&fifo);
    drop(fw);
    let mut fw = writer(&fifo);
    send(&mut fw, &["INSTANCE \"'VI.b'\" BACKUP 100"]);
    assert!(
        wait_until(T, || holder(&w, VI_B_LOCK).is_none()),
        "{}",
        w.log_text()
    );
}

#[test]
fn sigterm_reads_the_last_lines_then_stops_everything_within_a_second() {
    let (_mock, w, fifo) = setup("");
    let mut fw = writer(&fifo);
    let mut d = Daemon::start(&w, &fifo);
    send(&mut fw, &["GROUP \"G1\" MASTER 0"]);
    assert!(wait_until(T, || holder(&w, "VI_1") == Some(d.pid())
        && holder(&w, VI_B_LOCK) == Some(d.pid())));
    let t0 = Instant::now();
    d.signal(libc::SIGTERM);
    // keepalived writes its STOP lines after the SIGTERM.
    send(&mut fw, &["INSTANCE \"VI_1\" STOP 100"]);
    let took = d
        .wait_exit(Duration::from_secs(5))
        .expect("still running 5 s after SIGTERM");
    eprintln!("fifo: exit after SIGTERM took {:?}", took);
    assert!(t0.elapsed() < Duration::from_secs(1), "took {took:?}");
    let log = w.log_text();
    assert!(
        log.contains("state=STOP"),
        "the STOP line after SIGTERM was not read: {log}"
    );
    for lock in ["VI_1", VI_B_LOCK] {
        assert_eq!(
            fs::read_to_string(w.lock_path(lock)).unwrap(),
            "",
            "{lock} not released"
        );
    }
}

#[test]
fn sighup_reloads_without_dropping_unchanged_refreshers() {
    let (mock, w, fifo) = setup("");
    let mut fw = writer(&fifo);
    let d = Daemon::start(&w, &fifo);
    send(&mut fw, &["GROUP \"G1\" MASTER 0"]);
    assert!(mock.wait_for(T, |s| s.patch_count("192.0.2.10") == 1
        && s.patch_count("192.0.2.20") == 1));
    let kconf = w.path("keepalived.conf");
    let text = fs::read_to_string(&kconf).unwrap();
    // 'VI.b' loses an address; VI_1 is unchanged.
    fs::write(&kconf, text.replace("192.0.2.21/32\n", "")).unwrap();
    d.signal(libc::SIGHUP);
    assert!(
        w.wait_log("kept=1 restarted=1 stopped=0", T),
        "{}",
        w.log_text()
    );
    // The restarted one writes again at once; the kept one does not.
    assert!(mock.wait_for(T, |s| s.patch_count("192.0.2.20") == 2));
    assert_eq!(mock.patch_count("192.0.2.10"), 1, "VI_1 was restarted");
    assert_eq!(holder(&w, "VI_1"), Some(d.pid()));

    // A broken config changes nothing.
    let yml = fs::read_to_string(&w.config).unwrap();
    fs::write(&w.config, format!("{yml}bogus-key: 1\n")).unwrap();
    d.signal(libc::SIGHUP);
    assert!(w.wait_log("reload failed", T), "{}", w.log_text());
    assert_eq!(holder(&w, "VI_1"), Some(d.pid()));
    fs::write(&w.config, yml).unwrap();

    // VI_1 removed from keepalived.conf: its refresher stops.
    let text = fs::read_to_string(&kconf).unwrap();
    let cut = text.find("vrrp_instance VI_1").unwrap();
    let end = cut + text[cut..].find("\n}\n").unwrap() + 3;
    fs::write(&kconf, format!("{}{}", &text[..cut], &text[end..])).unwrap();
    d.signal(libc::SIGHUP);
    assert!(
        w.wait_log("kept=1 restarted=0 stopped=1", T),
        "{}",
        w.log_text()
    );
    assert_eq!(holder(&w, "VI_1"), None);
    assert_eq!(holder(&w, VI_B_LOCK), Some(d.pid()));
}

#[test]
fn notify_mode_and_the_daemon_never_refresh_one_instance_at_once() {
    let (mock, w, fifo) = setup("lock-timeout: 400ms\n");
    // A notify-mode refresher runs first.
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    let forked = holder(&w, "VI_1").expect("notify-mode refresher");
    let mut fw = writer(&fifo);
    let d = Daemon::start(&w, &fifo);
    send(&mut fw, &["INSTANCE \"VI_1\" MASTER 100"]);
    // The daemon stops it the way notify mode would, and takes the lock.
    assert!(
        wait_until(T, || holder(&w, "VI_1") == Some(d.pid())),
        "{}",
        w.log_text()
    );
    assert!(
        wait_until(T, || !alive(forked)),
        "notify-mode refresher survived"
    );
    assert!(mock.wait_for(T, |s| s.patch_count("192.0.2.10") == 2));
    // A notify call now waits for the daemon instead of signalling it.
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("floaty --fifo daemon pid"),
        "{}",
        stderr(&out)
    );
    assert!(alive(d.pid()));
    assert_eq!(holder(&w, "VI_1"), Some(d.pid()));
    // BACKUP over the FIFO frees it; notify mode works again.
    send(&mut fw, &["INSTANCE \"VI_1\" BACKUP 100"]);
    assert!(wait_until(T, || holder(&w, "VI_1").is_none()));
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
}

#[test]
fn socket_activation_takes_fd_3_and_reports_ready() {
    let (mock, w, fifo) = setup("");
    let fw = writer(&fifo);
    let sock_path = w.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(T)).unwrap();
    let fd = fw.as_raw_fd();
    let mut cmd = Command::new("sh");
    // LISTEN_PID must be the PID that execs floaty: the shell's own.
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"")
        .arg(bin())
        .env("NOTIFY_SOCKET", &sock_path);
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // The path is wrong on purpose: only fd 3 can deliver events.
    let d = Daemon::spawn(&w, &mut cmd, &w.path("no-such.fifo"));
    let mut buf = [0u8; 128];
    let n = sock.recv(&mut buf).expect("no READY=1 from floaty");
    assert_eq!(&buf[..n], b"READY=1");
    let mut fw = fw;
    send(&mut fw, &["INSTANCE \"VI_1\" MASTER 100"]);
    assert!(
        mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)),
        "{}",
        w.log_text()
    );
    assert_eq!(holder(&w, "VI_1"), Some(d.pid()));
    assert!(w.log_text().contains("source=\"systemd\"") || w.log_text().contains("source=systemd"));
}

#[test]
fn bad_fifo_arguments_exit_2_without_side_effects() {
    let (mock, w, _fifo) = setup("");
    let cfg = w.config.to_str().unwrap();
    let dir = w.dir.path().to_str().unwrap();
    for (args, needle) in [
        (vec!["--fifo", cfg], "--fifo takes CONFIG FIFO"),
        (vec!["--fifo", cfg, dir], "not a FIFO"),
        (vec!["--fifo", "/nonexistent.yml", dir], "/nonexistent.yml"),
    ] {
        let out = w.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    assert!(mock.requests().is_empty());
    assert_eq!(fs::read_dir(w.path("lock")).unwrap().count(), 0);
}

#[test]
#[cfg_attr(not(floaty_systemd_analyze_tests), ignore = "needs systemd-analyze")]
fn systemd_units_pass_systemd_analyze_verify() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        panic!("systemd-analyze is not installed (apt-get install systemd)");
    };
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let dir = tempfile::tempdir().unwrap();
    for unit in ["floaty-fifo.service", "floaty-fifo.socket"] {
        // ExecStart must name an existing binary: use the one just built.
        let text = fs::read_to_string(units.join(unit)).unwrap();
        fs::write(
            dir.path().join(unit),
            text.replace("/usr/bin/floaty", bin()),
        )
        .unwrap();
    }
    let out = Command::new(analyze)
        .arg("verify")
        .arg(dir.path().join("floaty-fifo.socket"))
        .arg(dir.path().join("floaty-fifo.service"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Units named in After=/PartOf= may be missing on a build host.
    let problems: Vec<&str> = err.lines().filter(|l| l.contains("floaty-fifo")).collect();
    assert!(out.status.success() && problems.is_empty(), "{err}");
}

#[test]
fn shipped_fifo_example_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/floaty-fifo.yml");
    let out = Command::new(bin())
        .arg("--check")
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"VI_1\""));
}

/// Every shipped floaty config example loads and passes `--check` as it
/// is: an SRE copies them.
#[test]
fn every_shipped_config_example_passes_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // Prometheus alerting rules, checked by promtool (tests/promtool).
        if !name.ends_with(".yml") || name == "floaty-alerts.yml" {
            continue;
        }
        let out = Command::new(bin())
            .arg("--check")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        seen.push(name);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "aws.yml",
            "digitalocean.yml",
            "exoscale.yml",
            "floaty-fifo.yml",
            "floaty.yml",
            "hetzner.yml"
        ]
    );
}

#[test]
fn an_instance_added_to_keepalived_conf_later_is_found() {
    let (mock, w, fifo) = setup("");
    mock.add_floating_ip("192.0.2.30", Some(SERVER_B));
    let mut fw = writer(&fifo);
    let d = Daemon::start(&w, &fifo);
    send(&mut fw, &["INSTANCE \"VI_1\" MASTER 100"]);
    assert!(wait_until(T, || holder(&w, "VI_1") == Some(d.pid())));
    // keepalived reloaded with a new instance; nobody sent floaty SIGHUP.
    let kconf = w.path("keepalived.conf");
    let text = fs::read_to_string(&kconf).unwrap();
    fs::write(
        &kconf,
        format!(
            "{text}vrrp_instance VI_3 {{\n    interface veth0\n    virtual_router_id 53\n    \
             priority 100\n    virtual_ipaddress {{\n        192.0.2.30\n    }}\n}}\n"
        ),
    )
    .unwrap();
    send(&mut fw, &["INSTANCE \"VI_3\" MASTER 100"]);
    assert!(
        mock.wait_for(T, |s| s.server_of("192.0.2.30") == Some(SERVER_A)),
        "{}",
        w.log_text()
    );
    assert_eq!(holder(&w, "VI_3"), Some(d.pid()));
    assert_eq!(holder(&w, "VI_1"), Some(d.pid()), "VI_1 was dropped");
    assert_eq!(mock.patch_count("192.0.2.10"), 1, "VI_1 was restarted");
}

/// A daemon started while keepalived runs (a restart of floaty) takes an
/// instance as MASTER only when every one of its VIPs is here, the
/// split-brain guard's rule; one VIP of several is not MASTER. Runs in a
/// network namespace of its own, where a process called keepalived (a copy
/// of `sleep`) is what the daemon finds: in this one it would be found by
/// every other FIFO test's daemon too.
#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn at_start_only_an_instance_holding_all_its_vips_is_adopted() {
    use std::os::unix::fs::PermissionsExt;
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "verify-master: auto\n");
    fs::write(
        w.path("keepalived.conf"),
        "vrrp_instance ALL { interface lo\n virtual_router_id 61\n priority 100\n virtual_ipaddress { 127.0.0.1/32 }\n}\n\
         vrrp_instance SOME { interface lo\n virtual_router_id 62\n priority 100\n virtual_ipaddress { 127.0.0.1/32\n 192.0.2.77/32 }\n}\n",
    )
    .unwrap();
    let fake = w.path("keepalived");
    fs::copy("/bin/sleep", &fake).unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let fifo = w.path("keepalived.fifo");
    mkfifo(&fifo);
    // unshare execs sh, which execs floaty: the daemon keeps this PID.
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "--", "sh", "-c"])
        .arg("ip link set lo up && { \"$FAKE\" 60 & } && exec \"$FLOATY\" \"$0\" \"$@\"")
        .env("FAKE", &fake)
        .env("FLOATY", bin());
    let d = Daemon::spawn(&w, &mut cmd, &fifo);
    let adopted = wait_until(T, || holder(&w, "ALL") == Some(d.pid()));
    drop(d);
    for pid in pids() {
        if fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == fake) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let log = w.log_text();
    assert!(adopted, "{log}");
    let starts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("at start: MASTER"))
        .collect();
    assert_eq!(starts.len(), 1, "{log}");
    assert!(starts[0].contains("instance=ALL"), "{log}");
    assert!(!log.contains("instance=SOME"), "{log}");
}
