//! The health track file with the real keepalived pair: keepalived reads
//! what floaty writes (`track_file`, weight 1) and elects accordingly.
//!
//! One lab, the scenarios in order (each starts from the one before):
//! common-mode API trouble changes nothing; a's token revoked demotes a,
//! b takes over and a never writes again; a restarted with its broken
//! token does not take over; the token back, a preempts; drain and
//! undrain move the address; a SIGKILLed prober or keepalived leaves no
//! process and a free lock. Meanwhile an inotify watch checks that no
//! track file is ever deleted or seen half-written.
//!
//! Needs root, `ip` and `keepalived`: ignored when the build found them
//! missing (build.rs), failing when they are missing at run time.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mock_cloud::Fault;

use crate::pair::lab::{secs, Lab, Skip, INSTANCE};
use crate::support::{alive, bin, poll_until, TOKEN};

const CONVERGE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);
/// a's own token, so the mock can refuse a alone.
const TOKEN_A: &str = "t0ken-of-node-a-only";

#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn keepalived_elects_by_what_the_track_file_says() {
    let mut lab = match Lab::new() {
        Ok(lab) => lab,
        Err(Skip(why)) => panic!("cannot run the health end-to-end test: {why}"),
    };
    let dirs = enable_health(&mut lab);
    let mut times = Vec::new();
    let mut watch = None;
    let result = scenarios(&mut lab, &dirs, &mut watch, &mut times);
    eprintln!("health e2e timings:");
    for (what, d) in &times {
        eprintln!("  {what}: {}", secs(*d));
    }
    let seen = watch.map(Watch::stop).unwrap_or_default();
    if let Err(e) = result {
        panic!("{e}"); // Lab's Drop prints both nodes' logs.
    }
    assert!(seen.writes > 0, "the watch saw no write at all");
    assert!(
        seen.problems.is_empty(),
        "track files deleted or seen half-written: {:?}",
        seen.problems
    );
}

fn scenarios(
    lab: &mut Lab,
    dirs: &[PathBuf],
    watch: &mut Option<Watch>,
    times: &mut Vec<(&'static str, Duration)>,
) -> Result<(), String> {
    let io = |r: std::io::Result<()>| r.map_err(|e| e.to_string());
    io(lab.node("a").start())?;
    io(lab.node("b").start())?;
    wait_on(lab, "a", "start")?;
    for n in ["a", "b"] {
        if !poll_until(CONVERGE, POLL, || value(lab, n) == Some(0)) {
            return Err(format!(
                "{n}'s track file never said 0: {:?}",
                value(lab, n)
            ));
        }
    }
    // From here on every write is floaty's (keepalived's init_file, which
    // created the files, renames an empty file in and then writes it).
    *watch = Some(Watch::start(dirs));

    // Common-mode trouble (both nodes see it): no VRRP change at all.
    for fault in [
        Fault::Status(500, "{\"detail\":\"Internal server error\"}".into()),
        Fault::Reset,
    ] {
        lab.mock.set_fault(fault.clone());
        let before = lab.mock.requests().len();
        // Every probe of both nodes, three rounds (health-interval 1 s).
        let rounds = poll_until(CONVERGE, POLL, || {
            if lab.masters() != ["a"] {
                return true;
            }
            lab.mock.requests().len() >= before + 6
        });
        if !rounds || lab.masters() != ["a"] {
            return Err(format!("under {fault:?}: masters {:?}", lab.masters()));
        }
        for n in ["a", "b"] {
            if value(lab, n) != Some(0) {
                return Err(format!("under {fault:?}: {n} demoted: {:?}", value(lab, n)));
            }
        }
    }
    lab.mock.clear_fault();

    // a's credentials rejected: a tells keepalived, b takes over.
    let t0 = Instant::now();
    lab.mock.revoke_token(TOKEN_A);
    if !poll_until(CONVERGE, POLL, || value(lab, "a") == Some(-100)) {
        return Err(format!("a never demoted: {:?}", value(lab, "a")));
    }
    times.push(("token revoked -> a's track file -100", t0.elapsed()));
    wait_on(lab, "b", "a's token revoked")?;
    times.push(("token revoked -> address on b", t0.elapsed()));
    hold_on(lab, "b", Duration::from_secs(4), "a demoted")?;
    let a_wrote = lab
        .mock
        .requests()
        .iter()
        .filter(|r| r.at > t0 && r.method == "PATCH")
        .filter(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN_A}")))
        .any(|r| r.status.is_some_and(|s| s < 300));
    if a_wrote {
        return Err("a wrote with its revoked token".into());
    }

    // a restarted with its broken credentials and the higher priority: it
    // must not take over (the track file still says -100 at its start).
    io(lab.node("a").stop().map(drop))?;
    io(lab.node("a").start())?;
    hold_on(lab, "b", Duration::from_secs(6), "a restarted broken")?;

    // As after a reboot: /run is empty, so the track file and its state are
    // gone and keepalived's init_file starts a at 0. Its prober, started by
    // the first BACKUP call, demotes it (two reads, 1 s apart) before
    // keepalived's down timer (3 × advert_int + skew) would make it MASTER.
    io(lab.node("a").stop().map(drop))?;
    // The watch pauses: these deletions are the test's, and keepalived's
    // init_file then writes the new file its own way (see above).
    let paused = watch.take().map(Watch::stop).unwrap_or_default();
    let dir = health_dir(lab, "a");
    for name in [
        format!("{INSTANCE}.health"),
        format!("{INSTANCE}.health.state"),
    ] {
        fs::remove_file(dir.join(name)).map_err(|e| e.to_string())?;
    }
    let t0 = std::time::SystemTime::now();
    io(lab.node("a").start())?;
    hold_on(lab, "b", Duration::from_secs(6), "a booted broken")?;
    // When floaty wrote the −100 (the file's last change).
    let written = fs::metadata(dir.join(format!("{INSTANCE}.health")))
        .and_then(|m| m.modified())
        .map_err(|e| e.to_string())?;
    if value(lab, "a") != Some(-100) {
        return Err(format!("a booted broken: track file {:?}", value(lab, "a")));
    }
    *watch = Some(Watch::start_after(dirs, paused));
    let demoted = written.duration_since(t0).unwrap_or_default();
    times.push((
        "a booted broken (empty /run): keepalived start -> -100",
        demoted,
    ));

    // The token back: a is ready again and preempts.
    let t0 = Instant::now();
    lab.mock.add_token(TOKEN_A, true);
    wait_on(lab, "a", "a's token back")?;
    times.push(("token back -> address on a (preempt)", t0.elapsed()));

    // Drain a: FAULT at once, the peer takes over; undrain: a takes it back.
    let t0 = Instant::now();
    floaty(lab, "a", "--drain")?;
    wait_on(lab, "b", "drain a")?;
    times.push(("drain a -> address on b", t0.elapsed()));
    let t0 = Instant::now();
    floaty(lab, "a", "--undrain")?;
    wait_on(lab, "a", "undrain a")?;
    times.push(("undrain a -> address on a", t0.elapsed()));

    // b's prober SIGKILLed: nothing left, the lock free. (b's BACKUP call,
    // which replaces its refresher by a prober, may still be under way
    // when a is MASTER: wait for the lock record to name a prober.)
    let record = lab
        .node("b")
        .lock_dir()
        .join(format!("floaty.{INSTANCE}.lock"));
    let prober_holds =
        || fs::read_to_string(&record).is_ok_and(|r| r.starts_with("floaty-prober "));
    if !poll_until(CONVERGE, POLL, prober_holds) {
        return Err("b: no prober holds the lock after a took over".into());
    }
    let prober = match lab.node("b").refreshers().as_slice() {
        [pid] => *pid,
        other => return Err(format!("b: expected one prober, found {other:?}")),
    };
    unsafe { libc::kill(prober, libc::SIGKILL) };
    if !poll_until(CONVERGE, POLL, || {
        !alive(prober) && lab.node("b").refreshers().is_empty()
    }) {
        return Err(format!("b's prober {prober} or its lock survived SIGKILL"));
    }
    // keepalived on b restarted (a BACKUP call starts a new prober), then
    // SIGKILLed: the prober ends with it.
    io(lab.node("b").stop().map(drop))?;
    io(lab.node("b").start())?;
    if !poll_until(CONVERGE, POLL, || lab.node("b").refreshers().len() == 1) {
        return Err("b's restarted keepalived started no prober".into());
    }
    let prober = lab.node("b").refreshers()[0];
    lab.node("b").kill();
    if !poll_until(CONVERGE, POLL, || {
        !alive(prober) && lab.node("b").refreshers().is_empty()
    }) {
        return Err(format!("b's prober {prober} outlived its keepalived"));
    }
    Ok(())
}

/// Waits until `node` alone holds the VIP and the API points at it.
fn wait_on(lab: &mut Lab, node: &str, step: &str) -> Result<(), String> {
    let ok = poll_until(CONVERGE, POLL, || {
        lab.masters() == [node] && lab.api_points_to() == Some(node)
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{step}: not on {node} within {CONVERGE:?}: masters {:?}, API at {:?}",
            lab.masters(),
            lab.api_points_to()
        ))
    }
}

/// Checks that `node` stays sole MASTER with the address for `period`.
fn hold_on(lab: &mut Lab, node: &str, period: Duration, step: &str) -> Result<(), String> {
    let t0 = Instant::now();
    while t0.elapsed() < period {
        let (masters, api) = (lab.masters(), lab.api_points_to());
        if masters != [node] || api != Some(node) {
            return Err(format!(
                "{step}: after {:?} masters {masters:?}, API at {api:?}",
                t0.elapsed()
            ));
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

fn health_dir(lab: &mut Lab, node: &str) -> PathBuf {
    lab.node(node).dir.join("health")
}

fn value(lab: &mut Lab, node: &str) -> Option<i32> {
    let file = health_dir(lab, node).join(format!("{INSTANCE}.health"));
    fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn floaty(lab: &mut Lab, node: &str, flag: &str) -> Result<(), String> {
    let config = lab.node(node).floaty_config();
    let out = Command::new(bin())
        .arg(flag)
        .arg(&config)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "floaty {flag} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Each node: a 0755 health directory (before keepalived starts: it
/// watches the directory), the track file in keepalived.conf as the
/// shipped example has it, `track-file-template` in floaty.yml; a gets a
/// token of its own. Returns the health directories.
fn enable_health(lab: &mut Lab) -> Vec<PathBuf> {
    lab.mock.add_token(TOKEN_A, true);
    let mut dirs = Vec::new();
    for n in ["a", "b"] {
        let dir = health_dir(lab, n);
        fs::create_dir(&dir).expect("health directory");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let node = lab.node(n);
        let file = dir.join(format!("{INSTANCE}.health"));
        let conf = fs::read_to_string(&node.conf).expect("keepalived.conf");
        let conf = conf.replacen(
            &format!("vrrp_instance {INSTANCE} {{"),
            &format!(
                "track_file floaty_{INSTANCE} {{\n    file \"{}\"\n    weight 1\n    init_file 0\n}}\n\
                 vrrp_instance {INSTANCE} {{\n    track_file {{\n        floaty_{INSTANCE}\n    }}",
                file.display()
            ),
            1,
        );
        fs::write(&node.conf, conf).expect("keepalived.conf");
        let yml = node.floaty_config();
        let mut text = fs::read_to_string(&yml).expect("floaty.yml");
        if n == "a" {
            text = text.replace(&format!("token: {TOKEN}"), &format!("token: {TOKEN_A}"));
        }
        text.push_str(&format!(
            "track-file-template: {}/%s.health\nhealth-interval: 1s\n",
            dir.display()
        ));
        fs::write(&yml, text).expect("floaty.yml");
        dirs.push(dir);
    }
    dirs
}

/// What the inotify watch saw.
#[derive(Debug, Default)]
struct Seen {
    writes: usize,
    problems: Vec<String>,
}

/// An inotify watch on the health directories, as keepalived has one: on
/// every close-after-write or rename onto a track file, the file is read
/// and must hold one whole number and a newline; a delete or a move away
/// is a problem (keepalived reads both as 0).
struct Watch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    /// A watch that reports what `earlier` saw too.
    fn start_after(dirs: &[PathBuf], earlier: Seen) -> Watch {
        let w = Watch::start(dirs);
        *w.seen.lock().unwrap() = earlier;
        w
    }

    fn start(dirs: &[PathBuf]) -> Watch {
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify_init1");
        let mut wds = Vec::new();
        for dir in dirs {
            let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
            let mask =
                libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_MOVED_FROM | libc::IN_DELETE;
            let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), mask) };
            assert!(wd >= 0, "inotify_add_watch {}", dir.display());
            wds.push((wd, dir.clone()));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (s, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || watch_loop(fd, &wds, &s, &seen2));
        Watch {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn watch_loop(fd: i32, wds: &[(i32, PathBuf)], stop: &AtomicBool, seen: &Mutex<Seen>) {
    let mut buf = vec![0u8; 64 * 1024];
    let track = format!("{INSTANCE}.health");
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // The timeout only bounds how late a stop is noticed.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            continue;
        }
        let mut at = 0usize;
        while at + 16 <= n as usize {
            let field = |o: usize| u32::from_ne_bytes(buf[at + o..at + o + 4].try_into().unwrap());
            let (wd, mask, len) = (field(0) as i32, field(4), field(12) as usize);
            let name_bytes = &buf[at + 16..at + 16 + len];
            let name = String::from_utf8_lossy(name_bytes)
                .trim_end_matches('\0')
                .to_string();
            at += 16 + len;
            if name != track {
                continue;
            }
            let Some((_, dir)) = wds.iter().find(|(w, _)| *w == wd) else {
                continue;
            };
            let mut s = seen.lock().unwrap();
            if mask & (libc::IN_DELETE | libc::IN_MOVED_FROM) != 0 {
                s.problems
                    .push(format!("{}: deleted or moved away", dir.display()));
            } else {
                s.writes += 1;
                let text = fs::read_to_string(dir.join(&track)).unwrap_or_default();
                if !whole(&text) {
                    s.problems.push(format!("{}: read {text:?}", dir.display()));
                }
            }
        }
    }
    unsafe { libc::close(fd) };
}

/// One integer and a newline, as floaty writes it (keepalived's own
/// init_file writes the same).
fn whole(text: &str) -> bool {
    text.strip_suffix('\n')
        .is_some_and(|n| n.parse::<i32>().is_ok())
}

/// The shipped example, as shipped: `keepalived -t` accepts it, silently,
/// in a private mount namespace where `/run/floaty` exists and
/// `/usr/bin/floaty` is a root-owned stub (script security checks both),
/// so the host is not touched.
#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn the_shipped_health_example_passes_keepalived_t() {
    let example = fs::canonicalize("examples/keepalived-health.conf").expect("the example");
    let stub = tempfile::tempdir().expect("tempdir");
    fs::write(stub.path().join("floaty"), "#!/bin/sh\nexit 0\n").unwrap();
    for p in [stub.path().join("floaty"), stub.path().to_path_buf()] {
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let script = format!(
        "mount -t tmpfs none /run && mkdir -p /run/floaty && mount --bind {} /usr/bin && exec /usr/sbin/keepalived -t -l -f {}",
        stub.path().display(),
        example.display()
    );
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            &script,
        ])
        .output()
        .expect("unshare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "keepalived -t refused it: {text}");
    assert!(text.trim().is_empty(), "keepalived -t complained: {text}");
}
