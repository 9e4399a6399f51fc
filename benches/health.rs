//! The health and warm-MASTER benchmark behind docs/PERFORMANCE.md. Not a
//! test: it measures and reports, it asserts nothing about time.
//!
//!     cargo bench --bench health            # release build, ~1 min; needs gcc for the floor
//!
//! 1. keepalived MASTER → first write, over HTTPS to the mock cloudscale API
//!    behind a TCP proxy that delays every chunk by 10 ms each way (20 ms of
//!    round trip; this kernel has no netem): warm (the BACKUP call's prober
//!    takes over on its open connection), cold (no track file: fork, runtime,
//!    client, TCP and TLS handshakes), and a `curl` notify script.
//! 2. A cold MASTER call on loopback (plain HTTP) → first byte of its first
//!    request, against the floor: a static C program that only reads the
//!    endpoint, connects and sends (benches/floor.c), timed the same way.
//! 3. Resident memory of an idle prober and refresher, and of a FIFO daemon
//!    probing and refreshing with everything on.

#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "common/stats.rs"]
mod stats;
use stats::{median, p90, rss_kib};
use support::*;

const RUNS: usize = 20;

const ONE_WAY: Duration = Duration::from_millis(10);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A TCP proxy that holds every chunk `delay` before passing it on, in
/// both directions, without limiting throughput: a link with latency.
struct DelayProxy {
    addr: SocketAddr,
}

impl DelayProxy {
    fn start(upstream: SocketAddr, delay: Duration) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    delay,
                );
                pump(server, client, delay);
            }
        });
        DelayProxy { addr }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if to.write_all(&bytes).is_err() {
                return;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

/// Accepts connections, notes when the first byte of each arrives, and
/// answers every request with 204 (enough for floaty to go idle).
struct FirstByte {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Instant>>>,
}

impl FirstByte {
    fn start() -> FirstByte {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    let mut first = true;
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        if first {
                            s.lock().unwrap().push(Instant::now());
                            first = false;
                        }
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            let _ = conn
                                .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
                        }
                    }
                });
            }
        });
        FirstByte { addr, seen }
    }

    fn after(&self, t0: Instant) -> Option<Instant> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(t) = self.seen.lock().unwrap().iter().copied().find(|t| *t > t0) {
                return Some(t);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        None
    }
}

fn floaty(config: &str, args: &[&str]) {
    // FLOATY_BENCH_LOG=FILE keeps the calls' (and their refreshers') logs.
    let log = match std::env::var_os("FLOATY_BENCH_LOG") {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("log file"),
        ),
        None => Stdio::null(),
    };
    let status = Command::new(bin())
        .args(["--log-target", "stderr", "-v", config])
        .args(args)
        .stdin(Stdio::null())
        .stderr(log)
        .status()
        .expect("run floaty");
    assert!(status.success(), "floaty {args:?} failed");
}

fn first_patch_after(mock: &mock_cloud::Cloudscale, t0: Instant) -> Duration {
    let ok = mock.wait_for(Duration::from_secs(10), |s| {
        s.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.at > t0)
    });
    assert!(ok, "no PATCH arrived");
    let at = mock
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH" && r.at > t0)
        .unwrap()
        .at;
    at.duration_since(t0)
}

fn health_dir(w: &World) {
    use std::os::unix::fs::PermissionsExt;
    let dir = w.path("health");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut rows: Vec<String> = Vec::new();

    // 1. Over HTTPS, 20 ms away.
    let mock = mock_cloud::Cloudscale::start_tls(TOKEN).expect("start the TLS mock");
    mock.add_server(SERVER_A, "lb-a");
    mock.add_server(SERVER_B, "lb-b");
    for ip in ["192.0.2.10", "192.0.2.20", "192.0.2.21"] {
        mock.add_floating_ip(ip, Some(SERVER_B));
    }
    let proxy = DelayProxy::start(mock.addr(), ONE_WAY);
    let endpoint = format!("https://127.0.0.1:{}/", proxy.addr.port());
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ca_dir.path().join("ca.pem");
    std::fs::write(&ca, mock.ca_pem().expect("the mock's CA")).unwrap();
    let tls = format!("ca-file: {}\nrefresh-timeout: 5s\n", ca.display());
    let warm_world = World::new(
        &endpoint,
        SERVER_A,
        &format!(
            "{tls}track-file-template: health/%s.health\nhealth-interval: 1s\nmetrics-dir: metrics\n"
        ),
    );
    health_dir(&warm_world);
    // The prober and refresher measured with everything on: metrics too.
    std::fs::create_dir(warm_world.path("metrics")).unwrap();
    let cold_world = World::new(&endpoint, SERVER_A, &tls);
    let (warm_cfg, cold_cfg) = (
        warm_world.config.to_string_lossy().into_owned(),
        cold_world.config.to_string_lossy().into_owned(),
    );
    let (mut warm, mut cold, mut curl) = (Vec::new(), Vec::new(), Vec::new());
    let (mut prober_rss, mut refresher_rss) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        // Warm: the BACKUP call's prober reads once (its connection then
        // stays open), then MASTER hands it the instance.
        let t_backup = Instant::now();
        floaty(&warm_cfg, &["INSTANCE", "VI_1", "BACKUP"]);
        // The second probe (health-interval 1 s): the first one's answer,
        // 10 ms behind the proxy, has surely come back, and the
        // connection is idle in the prober's pool.
        let probes = |s: &mock_cloud::State| {
            let gets = s.requests().iter();
            gets.filter(|r| r.method == "GET" && r.at > t_backup)
                .count()
        };
        assert!(mock.wait_for(Duration::from_secs(10), |s| probes(s) >= 2));
        // Its answer is still on the way back (a MASTER now would abort
        // that probe, and with it the connection): let it arrive.
        let second = mock
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.at > t_backup)
            .nth(1)
            .map(|r| r.at);
        if let Some(at) = second {
            let back = at + ONE_WAY * 3;
            std::thread::sleep(back.saturating_duration_since(Instant::now()));
        }
        if let Some(pid) = warm_world.refreshers().first() {
            prober_rss.extend(rss_kib(*pid).map(|k| k as f64));
        }
        let t0 = Instant::now();
        floaty(&warm_cfg, &["INSTANCE", "VI_1", "MASTER", "150"]);
        warm.push(ms(first_patch_after(&mock, t0)));
        if let Some(pid) = warm_world.refreshers().first() {
            refresher_rss.extend(rss_kib(*pid).map(|k| k as f64));
        }
        floaty(&warm_cfg, &["INSTANCE", "VI_1", "STOP"]);

        // Cold: no prober, a refresher forked from scratch.
        let t0 = Instant::now();
        floaty(&cold_cfg, &["INSTANCE", "VI_1", "MASTER", "150"]);
        cold.push(ms(first_patch_after(&mock, t0)));
        floaty(&cold_cfg, &["INSTANCE", "VI_1", "BACKUP"]);

        // The curl notify script, the same way.
        let t0 = Instant::now();
        let status = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "--cacert"])
            .arg(&ca)
            .args(["-X", "PATCH", "-H"])
            .arg(format!("Authorization: Bearer {TOKEN}"))
            .args(["-H", "Content-Type: application/json", "-d"])
            .arg(format!("{{\"server\":\"{SERVER_A}\"}}"))
            .arg(format!("{endpoint}v1/floating-ips/192.0.2.10"))
            .status();
        if status.is_ok_and(|s| s.success()) {
            curl.push(ms(first_patch_after(&mock, t0)));
        }
    }
    let rtt = ms(ONE_WAY * 2);
    rows.push(format!(
        "| MASTER → first PATCH, HTTPS, {rtt:.0} ms RTT: warm (prober takes over) | {:.1} ms | {:.1} ms | ≤ {:.1} ms (0.6 RTT + 3 ms) |",
        median(&mut warm),
        p90(&mut warm),
        0.6 * rtt + 3.0
    ));
    rows.push(format!(
        "| … cold (no track file: fork, runtime, TCP + TLS handshakes) | {:.1} ms | {:.1} ms | ≤ {:.1} ms (2.6 RTT + 5 ms) |",
        median(&mut cold),
        p90(&mut cold),
        2.6 * rtt + 5.0
    ));
    if !curl.is_empty() {
        rows.push(format!(
            "| … `curl` notify script (same run) | {:.1} ms | {:.1} ms | |",
            median(&mut curl),
            p90(&mut curl)
        ));
    }
    if !prober_rss.is_empty() {
        rows.push(format!(
            "| idle prober RSS (TLS, `ca-file`, state and metrics files) | {:.0} KiB | {:.0} KiB | ≤ 4096 KiB |",
            median(&mut prober_rss),
            p90(&mut prober_rss)
        ));
    }
    if !refresher_rss.is_empty() {
        rows.push(format!(
            "| refresher RSS right after its first PATCH (taken over) | {:.0} KiB | {:.0} KiB | ≤ 4096 KiB |",
            median(&mut refresher_rss),
            p90(&mut refresher_rss)
        ));
    }

    // 2. Loopback, plain HTTP: cold floaty against the static C floor.
    let fb = FirstByte::start();
    let lo = World::new(
        &format!("http://127.0.0.1:{}/", fb.addr.port()),
        SERVER_A,
        "",
    );
    let lo_cfg = lo.config.to_string_lossy().into_owned();
    let floor = build_floor(lo.dir.path());
    let (mut cold_lo, mut floor_t) = (Vec::new(), Vec::new());
    for _ in 0..RUNS * 2 {
        let t0 = Instant::now();
        floaty(&lo_cfg, &["INSTANCE", "VI_1", "MASTER", "150"]);
        cold_lo.push(ms(fb
            .after(t0)
            .expect("floaty's first byte")
            .duration_since(t0)));
        floaty(&lo_cfg, &["INSTANCE", "VI_1", "BACKUP"]);
        if let Some(floor) = &floor {
            let t0 = Instant::now();
            let ok = Command::new(floor)
                .arg(&lo.config)
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                floor_t.push(ms(fb
                    .after(t0)
                    .expect("the floor's first byte")
                    .duration_since(t0)));
            }
        }
    }
    let c = median(&mut cold_lo);
    rows.push(format!(
        "| cold MASTER call, loopback, exec → first byte | {c:.2} ms | {:.2} ms | |",
        p90(&mut cold_lo)
    ));
    if !floor_t.is_empty() {
        let f = median(&mut floor_t);
        rows.push(format!(
            "| floor: static C, reads the endpoint, connects, sends | {f:.2} ms | {:.2} ms | |",
            p90(&mut floor_t)
        ));
        rows.push(format!(
            "| floaty / floor (medians) | {:.2}× | | ≤ 1.5× |",
            c / f
        ));
    }

    // 3. The FIFO daemon with everything on: both instances probed over
    // TLS, one of them refreshed.
    let fifo = warm_world.path("keepalived.fifo");
    let c_path = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
    unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
    let mut writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .expect("open the FIFO");
    // metrics-listen on too (port 0: any free one; it is never scraped
    // here, the listener is what costs memory).
    let mut yaml = std::fs::read_to_string(&warm_world.config).unwrap();
    yaml.push_str("metrics-listen: 127.0.0.1:0\n");
    std::fs::write(&warm_world.config, yaml).unwrap();
    let mut daemon = Command::new(bin())
        .args(["--log-target", "stderr", "--fifo", &warm_cfg])
        .arg(&fifo)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon");
    let t0 = Instant::now();
    writer.write_all(b"INSTANCE \"VI_1\" MASTER 150\n").unwrap();
    first_patch_after(&mock, t0);
    // A few probe rounds of both instances.
    let t1 = Instant::now();
    mock.wait_for(Duration::from_secs(10), |s| {
        s.requests()
            .iter()
            .filter(|r| r.at > t1 && r.method == "GET")
            .count()
            >= 6
    });
    if let Some(kib) = rss_kib(daemon.id() as i32) {
        rows.push(format!(
            "| FIFO daemon RSS, 2 instances probed + 1 refreshed over TLS, metrics-dir and metrics-listen | {kib} KiB | | ≤ 5120 KiB |"
        ));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();

    println!("| measure | median | p90 | budget |");
    println!("|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}

/// benches/floor.c, built static; None (and a note) without gcc.
fn build_floor(dir: &Path) -> Option<std::path::PathBuf> {
    let out = dir.join("floor");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/floor.c");
    let built = Command::new("gcc")
        .args(["-O2", "-static", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    if built {
        Some(out)
    } else {
        eprintln!("no gcc (or no static libc): the floor is not measured");
        None
    }
}
