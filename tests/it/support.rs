//! Shared scaffolding for behaviour tests: a scratch directory with a
//! floaty config, keepalived.conf and lock directory; running the built
//! binary; waiting for refreshers to appear and go.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The floaty binary under test: the one cargo built, or `FLOATY_BIN`
/// (the benchmarks measure the shipped static build that way).
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("FLOATY_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_floaty").to_string())
    })
}
pub const TOKEN: &str = "s3cr3t-t0ken-floaty-test";
pub const SERVER_A: &str = "11111111-2222-4333-8444-555555555555";
pub const SERVER_B: &str = "66666666-7777-4888-9999-000000000000";

pub const KEEPALIVED_CONF: &str = r#"
global_defs { router_id test }
vrrp_sync_group G1 {
    group {
        VI_1
        'VI.b'
    }
}
vrrp_instance VI_1 {
    state BACKUP
    interface veth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.10/24 dev veth0
    }
}
vrrp_instance 'VI.b' {
    state BACKUP
    interface veth0
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        192.0.2.20
        192.0.2.21/32
    }
}
"#;

/// A scratch world for one test. Dropping it stops every refresher it
/// started (through the lock files) and removes the files.
pub struct World {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl World {
    /// A config for the mock at `endpoint`, acting as server `server`.
    pub fn new(endpoint: &str, server: &str, extra_yaml: &str) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let kconf = dir.path().join("keepalived.conf");
        fs::write(&kconf, KEEPALIVED_CONF).expect("write keepalived.conf");
        fs::create_dir(dir.path().join("lock")).expect("lock dir");
        fs::create_dir(dir.path().join("state")).expect("state dir");
        let config = dir.path().join("floaty.yml");
        let mut yaml = format!(
            "provider: cloudscale\n\
             cloudscale:\n  endpoint: {endpoint}\n  token: {TOKEN}\n  server-uuid: {server}\n\
             keepalived-config: {}\n\
             lock-file-template: {}/lock/floaty.%s.lock\n\
             state-dir: state\n\
             back-off:\n  initial-interval: 20ms\n  max-interval: 50ms\n\
             {extra_yaml}",
            kconf.display(),
            dir.path().display(),
        );
        // The test addresses (192.0.2.x) are on no local interface, so the
        // split-brain guard (verify-master) would hold every write; the
        // tests of the guard set it themselves.
        if !extra_yaml.contains("verify-master:") {
            yaml.push_str("verify-master: off\n");
        }
        // A long interval unless the test asks for another: retries then
        // come only from the back-off, which tests can count.
        if !extra_yaml.contains("refresh-interval:") {
            yaml.push_str("refresh-interval: 1h\n");
        }
        fs::write(&config, yaml).expect("write config");
        let log = dir.path().join("floaty.log");
        World { dir, config, log }
    }

    /// Like [`World::new`], talking to another cloud: `provider_yaml` is
    /// the `provider:` line and that provider's section, which replace
    /// cloudscale's.
    pub fn for_provider(provider_yaml: &str, extra_yaml: &str) -> World {
        let w = World::new("http://127.0.0.1:9/", SERVER_A, extra_yaml);
        let text = fs::read_to_string(&w.config).expect("config");
        let mut in_cloudscale = false;
        let rest: String = text
            .lines()
            .filter(|l| {
                if l.starts_with("cloudscale:") {
                    in_cloudscale = true;
                    return false;
                }
                if !l.starts_with("  ") {
                    in_cloudscale = false;
                }
                !(in_cloudscale || l.starts_with("provider:"))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(&w.config, format!("{provider_yaml}{rest}")).expect("config");
        w
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn lock_path(&self, instance_encoded: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("lock/floaty.{instance_encoded}.lock"))
    }

    /// Run floaty with `args` after the config path. stderr goes to the
    /// shared log file: a pipe would be held open by the refresher.
    pub fn notify(&self, args: &[&str]) -> Output {
        self.notify_env(&[], args)
    }

    /// Like [`World::notify`], with extra environment variables
    /// (credentials, `FLOATY_METADATA_URL`).
    pub fn notify_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let config = self.config.to_string_lossy().into_owned();
        let mut all = vec![config.as_str()];
        all.extend_from_slice(args);
        self.run_verbose(env, &all)
    }

    /// Run floaty at `--verbose`, logging to stderr, with `args` after
    /// that and extra environment variables.
    pub fn run_verbose(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut all = vec!["--log-target", "stderr", "-v"];
        all.extend_from_slice(args);
        self.run_env(env, &all)
    }

    /// Run floaty with exactly `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(&[], args)
    }

    /// Run floaty with exactly `args` and extra environment variables.
    pub fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let before = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let mut out = without_proxies(&mut Command::new(bin()))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .output()
            .expect("run floaty");
        // Hand back just what this call (and refreshers meanwhile) logged.
        let text = fs::read(&self.log).unwrap_or_default();
        out.stderr = text.get(before as usize..).unwrap_or_default().to_vec();
        out
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log_text().contains(needle))
    }

    /// PIDs of live refreshers recorded in this world's lock files.
    pub fn refreshers(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        let Ok(entries) = fs::read_dir(self.dir.path().join("lock")) else {
            return pids;
        };
        for entry in entries.flatten() {
            if let Some(pid) = refresher_pid(&entry.path()) {
                pids.push(pid);
            }
        }
        pids
    }

    /// With the one refresher of VI_1 running: a BACKUP call stops it
    /// before it returns, and leaves none behind.
    #[track_caller]
    pub fn backup_ends_the_refresher(&self) {
        let pids = self.refreshers();
        assert_eq!(pids.len(), 1, "one refresher runs");
        let out = self.notify(&["INSTANCE", "VI_1", "BACKUP", "150"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            !alive(pids[0]),
            "BACKUP returned while the refresher still ran"
        );
        assert!(self.refreshers().is_empty());
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for pid in self.refreshers() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The live refresher a lock file names, if any: a notify-mode refresher,
/// or the FIFO daemon refreshing that instance.
pub fn refresher_pid(lock: &Path) -> Option<i32> {
    let text = fs::read_to_string(lock).ok()?;
    let mut parts = text.split(' ');
    if !matches!(
        parts.next()?,
        "floaty-refresher" | "floaty-daemon" | "floaty-prober"
    ) {
        return None;
    }
    let pid: i32 = parts.next()?.parse().ok()?;
    let start: u64 = parts.next()?.parse().ok()?;
    // A killed refresher may linger as a zombie until PID 1 reaps it.
    (start_time(pid)? == start && alive(pid)).then_some(pid)
}

pub fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Whether `pid` is alive (and not a zombie).
pub fn alive(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s != "Z"))
}

/// The fields of /proc/PID/stat after the command name (state, ppid,
/// pgrp, ...): the name may hold spaces and parentheses, so split at the
/// last `)`.
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Every PID in /proc, for tests that look for processes by what they
/// are rather than by what a lock file says.
pub fn pids() -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// The arguments `pid` was started with (none when it is gone).
pub fn cmdline(pid: i32) -> Vec<String> {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if cmdline.is_empty() {
        return Vec::new();
    }
    cmdline
        .strip_suffix(&[0])
        .unwrap_or(&cmdline)
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Poll `cond` until it holds or `timeout` passes. For conditions with no
/// event to wait on (a process gone, a file written by another process).
pub fn wait_until(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    poll_until(timeout, Duration::from_millis(5), cond)
}

/// Polls `cond` every `every` until it holds or `timeout` passes.
pub fn poll_until(timeout: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The proxy variables reqwest reads (curl's), upper and lower case.
pub const PROXY_VARS: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// `cmd` without the proxy variables of wherever the tests run: a CI
/// runner's `HTTP_PROXY` would send floaty's requests to the loopback
/// mocks through it. Tests of proxies set theirs after this.
pub fn without_proxies(cmd: &mut Command) -> &mut Command {
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// The mock cloudscale API with our two servers and the test addresses.
pub fn mock_cloudscale() -> mock_cloud::Cloudscale {
    with_test_servers(mock_cloud::Cloudscale::start(TOKEN).expect("start mock"))
}

/// [`mock_cloudscale`] over HTTPS, its certificate from a test CA of its
/// own (`ca_pem()`).
pub fn mock_cloudscale_tls() -> mock_cloud::Cloudscale {
    with_test_servers(mock_cloud::Cloudscale::start_tls(TOKEN).expect("start mock"))
}

fn with_test_servers(mock: mock_cloud::Cloudscale) -> mock_cloud::Cloudscale {
    mock.add_server(SERVER_A, "lb-a");
    mock.add_server(SERVER_B, "lb-b");
    for ip in ["192.0.2.10", "192.0.2.20", "192.0.2.21"] {
        mock.add_floating_ip(ip, Some(SERVER_B));
    }
    mock
}

/// The mock Exoscale API with our two instances and the test addresses,
/// each attached to b.
pub fn mock_exoscale(key: &str, secret: &str) -> mock_cloud::Exoscale {
    let m = mock_cloud::Exoscale::start(key, secret).expect("start mock");
    m.add_instance(SERVER_A, "lb-a");
    m.add_instance(SERVER_B, "lb-b");
    for ip in ["192.0.2.10", "192.0.2.20", "192.0.2.21"] {
        m.add_elastic_ip(ip, &[SERVER_B]);
    }
    m
}

/// `promtool check metrics` (Debian's prometheus package) on `file`: Err
/// with what it said, and the text, when it refuses it.
pub fn promtool_check_metrics(file: &Path) -> Result<(), String> {
    let text = fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(fs::File::open(file).map_err(|e| e.to_string())?)
        .output()
        .map_err(|e| format!("promtool (Debian's prometheus package): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics refused {}: {}{}\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&text)
        ))
    }
}
