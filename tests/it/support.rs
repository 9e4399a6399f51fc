//! Shared scaffolding for behaviour tests: a scratch directory with a
//! floaty config, keepalived.conf and lock directory; running the built
//! binary; waiting for refreshers to appear and go.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_floaty");
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
        let config = dir.path().join("floaty.yml");
        let mut yaml = format!(
            "provider: cloudscale\n\
             cloudscale:\n  endpoint: {endpoint}\n  token: {TOKEN}\n  server-uuid: {server}\n\
             keepalived-config: {}\n\
             lock-file-template: {}/lock/floaty.%s.lock\n\
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
        let mut all = vec!["--log-target", "stderr", "-v"];
        let config = self.config.to_string_lossy().into_owned();
        all.push(&config);
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// Run floaty with exactly `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let before = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let mut out = Command::new(BIN)
            .args(args)
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
    if !matches!(parts.next()?, "floaty-refresher" | "floaty-daemon") {
        return None;
    }
    let pid: i32 = parts.next()?.parse().ok()?;
    let start: u64 = parts.next()?.parse().ok()?;
    // A killed refresher may linger as a zombie until PID 1 reaps it.
    (start_time(pid)? == start && alive(pid)).then_some(pid)
}

pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is alive (and not a zombie).
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat.get(i + 2..i + 3))
            .is_some_and(|s| s != "Z"),
        Err(_) => false,
    }
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

/// The mock cloudscale API with our two servers and the test addresses.
pub fn mock_cloudscale() -> mock_cloud::Cloudscale {
    let mock = mock_cloud::Cloudscale::start(TOKEN).expect("start mock");
    mock.add_server(SERVER_A, "lb-a");
    mock.add_server(SERVER_B, "lb-b");
    for ip in ["192.0.2.10", "192.0.2.20", "192.0.2.21"] {
        mock.add_floating_ip(ip, Some(SERVER_B));
    }
    mock
}
