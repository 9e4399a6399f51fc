//! A two-node keepalived lab in network namespaces, for end-to-end tests
//! (and a later try-it lab): each node is a namespace with a veth link to
//! the other, runs a real keepalived whose `notify` program is floaty, and
//! reaches one shared mock cloudscale API on its own loopback.
//!
//! Ground truth comes from the kernel and the mock, never from logs: the
//! MASTER is the node whose running keepalived holds the virtual IP on its
//! interface, and the API points wherever the mock says.
//!
//! Everything is torn down by `Drop`, even on panic: keepalived daemons,
//! refreshers recorded in the node lock directories, namespaces (and with
//! them the veth pair), files.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::exoscale::{KEY as EXO_KEY, SECRET as EXO_SECRET};
use crate::support::{alive, bin, pids, refresher_pid, stat_fields, SERVER_A, SERVER_B, TOKEN};

/// The virtual IP both nodes fight over (TEST-NET-3, only ever inside the
/// lab namespaces).
pub const VIP: &str = "203.0.113.10";
pub const INSTANCE: &str = "VI_1";
pub const VRID: u8 = 51;
/// Most instances a lab can have (virtual_router_id and the VIP's last
/// octet must stay in range).
pub const MAX_INSTANCES: usize = 100;

/// The name of the lab's `i`-th instance (from 0): `VI_1`, `VI_2`, ...
pub fn instance_name(i: usize) -> String {
    format!("VI_{}", i + 1)
}

/// The VIP of the lab's `i`-th instance (from 0): [`VIP`], then upwards.
pub fn vip_of(i: usize) -> String {
    format!("203.0.113.{}", 10 + i)
}
/// How long a keepalived may take to exit after SIGTERM (it gives a STOP
/// notify one second, then kills it).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Set this variable to keep the lab's files and print its report even
/// when all went well.
pub const KEEP: &str = "FLOATY_LAB_KEEP";
/// How often conditions that need a process spawn (`ip addr`) are polled.
const POLL: Duration = Duration::from_millis(25);

/// Why the lab cannot run here. The tests that need the lab are ignored
/// when the build found this host unable to run it (build.rs), and fail
/// with this reason when it cannot run all the same.
#[derive(Debug)]
pub struct Skip(pub String);

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether this host can run the lab: root, `ip` and `keepalived`.
pub fn preflight() -> Result<(), Skip> {
    if unsafe { libc::geteuid() } != 0 {
        return Err(Skip("not root (network namespaces need it)".into()));
    }
    for tool in ["ip", "keepalived"] {
        if which(tool).is_none() {
            return Err(Skip(format!("`{tool}` is not installed")));
        }
    }
    Ok(())
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Runs `ip ARGS`, failing with its stderr.
pub fn ip(args: &[&str]) -> io::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(name: &str) -> io::Result<Netns> {
        ip(&["netns", "add", name])?;
        let ns = Netns { name: name.into() };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A listener on this namespace's 127.0.0.1 and a free port. The
    /// network namespace is per thread, and a socket stays in the one it
    /// was created in: bind from a short-lived thread that entered it.
    pub fn bind_loopback(&self) -> io::Result<TcpListener> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = fs::File::open(&path)?;
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                TcpListener::bind("127.0.0.1:0")
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("bind thread panicked")))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("lab: cannot delete namespace {}: {e}", self.name);
        }
    }
}

/// One load balancer: a namespace, its files, and (while started) its
/// keepalived.
pub struct Node {
    pub name: &'static str,
    /// The cloud's id of this node: a UUID on cloudscale and Exoscale, a
    /// number on Hetzner and DigitalOcean.
    pub id: &'static str,
    pub priority: u8,
    /// Shell `export` lines the node's scripts run floaty with (AWS: the
    /// node's own instance metadata service).
    pub env: String,
    pub ns: Netns,
    /// veth address, e.g. 192.0.2.1
    pub addr: String,
    pub dir: PathBuf,
    pub conf: PathBuf,
    keepalived: Option<Child>,
    starts: usize,
    /// States whose notify calls wait in their script (see [`Node::hold`]).
    held: Vec<String>,
}

impl Node {
    pub fn floaty_config(&self) -> PathBuf {
        self.dir.join("floaty.yml")
    }

    /// The notify program keepalived runs: floaty, its log kept (keepalived
    /// gives notify programs /dev/null for stderr), and the hold
    /// ([`Node::hold`]: $3 is the state).
    fn write_notify_script(&self) {
        let log = self.floaty_log_path();
        let script = format!(
            "#!/bin/sh\n\
             {env}\
             echo \"$(date +%T.%N) ===== notify $* =====\" >>{log}\n\
             hold={dir}/hold-$3\n\
             if [ -p \"$hold\" ]; then read _ <\"$hold\"; echo \"$(date +%T.%N) ===== released $* =====\" >>{log}; fi\n\
             exec {floaty} --log-target stderr -v {yml} \"$@\" 2>>{log}\n",
            env = self.env,
            floaty = bin(),
            log = log.display(),
            yml = self.floaty_config().display(),
            dir = self.dir.display(),
        );
        let notify = self.dir.join("notify");
        fs::write(&notify, script).expect("notify script");
        fs::set_permissions(&notify, fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    pub fn floaty_log_path(&self) -> PathBuf {
        self.dir.join("floaty.log")
    }

    pub fn keepalived_log_path(&self) -> PathBuf {
        self.dir.join("keepalived.log")
    }

    pub fn lock_dir(&self) -> PathBuf {
        self.dir.join("lock")
    }

    pub fn floaty_log(&self) -> String {
        fs::read_to_string(self.floaty_log_path()).unwrap_or_default()
    }

    pub fn keepalived_log(&self) -> String {
        fs::read_to_string(self.keepalived_log_path()).unwrap_or_default()
    }

    /// Starts keepalived in the node's namespace, in the foreground (`-n`)
    /// and in a process group of its own, so that [`Node::kill`] can kill
    /// all its processes at once (notify programs get groups of their own).
    pub fn start(&mut self) -> io::Result<()> {
        if self.running() {
            return Err(io::Error::other(format!(
                "keepalived on {} already runs",
                self.name
            )));
        }
        self.starts += 1;
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.keepalived_log_path())?;
        io::Write::write_all(
            &mut log,
            format!(
                "===== lab: start #{} of keepalived on node {} =====\n",
                self.starts, self.name
            )
            .as_bytes(),
        )?;
        let d = &self.dir;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns.name, "keepalived"])
            .args(["-n", "-l", "-D", "--vrrp"])
            .arg("-f")
            .arg(&self.conf)
            .arg("-p")
            .arg(d.join("keepalived.pid"))
            .arg("-r")
            .arg(d.join("vrrp.pid"))
            .arg("-c")
            .arg(d.join("checkers.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()?;
        self.keepalived = Some(child);
        Ok(())
    }

    /// Whether the keepalived this node started still runs (reaps it when
    /// not).
    pub fn running(&mut self) -> bool {
        match &mut self.keepalived {
            Some(child) => match child.try_wait() {
                Ok(None) => true,
                _ => {
                    self.keepalived = None;
                    false
                }
            },
            None => false,
        }
    }

    pub fn keepalived_pid(&self) -> Option<i32> {
        self.keepalived.as_ref().map(|c| c.id() as i32)
    }

    /// Graceful stop: SIGTERM to keepalived (which sends STOP to the
    /// notify program), then waits until it exited. Returns how long that
    /// took.
    pub fn stop(&mut self) -> io::Result<Duration> {
        let t0 = Instant::now();
        self.terminate();
        self.wait_exit(STOP_TIMEOUT)?;
        Ok(t0.elapsed())
    }

    /// Stops and starts keepalived three times in quick succession,
    /// without waiting for VRRP to settle in between, so notify calls
    /// overlap and race. The different pauses land the next stop in
    /// different phases of the node's startup (before and after its first
    /// BACKUP notify).
    pub fn flap(&mut self) -> io::Result<()> {
        for pause in [
            Duration::ZERO,
            Duration::from_millis(300),
            Duration::from_millis(900),
        ] {
            self.stop()?;
            self.start()?;
            std::thread::sleep(pause);
        }
        Ok(())
    }

    /// Sends SIGTERM to keepalived and returns at once.
    pub fn terminate(&mut self) {
        if let Some(pid) = self.keepalived_pid() {
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }

    /// Waits until keepalived exited; after `timeout`, kills it and fails.
    pub fn wait_exit(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.running() {
            if Instant::now() >= deadline {
                self.kill();
                return Err(io::Error::other(format!(
                    "keepalived on {} still ran {timeout:?} after SIGTERM",
                    self.name
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// SIGKILL to every keepalived process of this node at once (its
    /// process group): no STOP notify, VIPs stay on the interface.
    pub fn kill(&mut self) {
        let Some(mut child) = self.keepalived.take() else {
            return;
        };
        let pgid = child.id() as i32;
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = child.wait();
        // The VRRP child was reparented; make sure it is gone too.
        wait_until(Duration::from_secs(5), Duration::from_millis(5), || {
            group_members(pgid).is_empty()
        });
    }

    /// Whether the VIP is on this node's interface (whether or not its
    /// keepalived still runs: a killed one leaves it there).
    pub fn has_vip(&self) -> bool {
        self.ns
            .ip(&["-o", "-4", "addr", "show", "dev", "veth0"])
            .map(|out| out.contains(&format!("inet {VIP}/")))
            .unwrap_or(false)
    }

    /// Every lab VIP on this node's interface, from one `ip addr`.
    pub fn vips_held(&self) -> std::collections::BTreeSet<String> {
        let out = self
            .ns
            .ip(&["-o", "-4", "addr", "show", "dev", "veth0"])
            .unwrap_or_default();
        out.split_whitespace()
            .filter_map(|w| w.strip_suffix("/24").or_else(|| w.strip_suffix("/32")))
            .filter(|a| a.starts_with("203.0.113."))
            .map(str::to_string)
            .collect()
    }

    /// Live holders of this node's instance locks, by lock file name: a
    /// notify-mode refresher's PID, or the FIFO daemon's for each instance
    /// it refreshes.
    pub fn lock_holders(&self) -> std::collections::BTreeMap<String, i32> {
        let mut held = std::collections::BTreeMap::new();
        if let Ok(entries) = fs::read_dir(self.lock_dir()) {
            for entry in entries.flatten() {
                if let Some(pid) = refresher_pid(&entry.path()).filter(|&p| alive(p)) {
                    held.insert(entry.file_name().to_string_lossy().into_owned(), pid);
                }
            }
        }
        held
    }

    /// Makes this node's notify calls for `state` (`BACKUP`, ...) wait in
    /// the notify script, after its `===== notify` log line, until
    /// [`Node::release`]: a slow notify call, which keepalived allows (it
    /// does not wait for them), made reproducible. The wait is a read of a
    /// FIFO, so the release is an event, not a timer.
    pub fn hold(&mut self, state: &str) -> io::Result<()> {
        let path = self.dir.join(format!("hold-{state}"));
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(io::Error::other)?;
        if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
            return Err(io::Error::last_os_error());
        }
        self.held.push(state.to_string());
        Ok(())
    }

    /// Lets the notify call waiting in [`Node::hold`] go on (waiting up to
    /// `timeout` for one to arrive), and stops holding `state`.
    pub fn release(&mut self, state: &str, timeout: Duration) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir.join(format!("hold-{state}"));
        self.held.retain(|s| s != state);
        let mut released = false;
        // Opening the write end without blocking fails (ENXIO) until the
        // script has opened the read end.
        wait_until(timeout, Duration::from_millis(5), || {
            released = fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path)
                .and_then(|mut f| io::Write::write_all(&mut f, b"go\n"))
                .is_ok();
            released
        });
        let _ = fs::remove_file(&path);
        if released {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "no {state} notify call waited on node {} within {timeout:?}",
                self.name
            )))
        }
    }

    /// Runs floaty by hand in this node's namespace with its config, the
    /// way keepalived would (`ARGS` are the event), logging to its log.
    pub fn floaty(&self, event: &[&str]) -> io::Result<std::process::ExitStatus> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.floaty_log_path())?;
        Command::new("ip")
            .args(["netns", "exec", &self.ns.name])
            .arg(bin())
            .args(["--log-target", "stderr", "-v"])
            .arg(self.floaty_config())
            .args(event)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .status()
    }

    /// `floaty --status CONFIG ARGS...` for this node (its state-dir is
    /// its directory): the exit code and what it printed.
    pub fn status(&self, args: &[&str]) -> (Option<i32>, String) {
        match Command::new(bin())
            .arg("--status")
            .arg(self.floaty_config())
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        {
            Ok(out) => (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            ),
            Err(e) => (None, e.to_string()),
        }
    }

    /// Live refreshers recorded in this node's lock directory (zombies
    /// not counted: here PID 1 may take a second or two to reap them).
    pub fn refreshers(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        if let Ok(entries) = fs::read_dir(self.lock_dir()) {
            for entry in entries.flatten() {
                if let Some(pid) = refresher_pid(&entry.path()).filter(|&p| alive(p)) {
                    pids.push(pid);
                }
            }
        }
        pids.sort_unstable();
        pids
    }
}

/// Live (not zombie) PIDs whose process group is `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    pids()
        .into_iter()
        .filter(|&pid| {
            // state ppid pgrp ...
            stat_fields(pid).is_some_and(|f| {
                f.first().is_some_and(|s| s != "Z")
                    && f.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid)
            })
        })
        .collect()
}

/// What the lab looks like at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Nodes whose running keepalived holds the VIP.
    pub masters: Vec<&'static str>,
    /// Live refreshers per node, in node order.
    pub refreshers: Vec<(&'static str, Vec<i32>)>,
    /// The node the API points the VIP at (`Some("?")`: an unknown UUID).
    pub api: Option<&'static str>,
}

impl std::fmt::Display for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "masters {:?}, refreshers", self.masters)?;
        for (node, pids) in &self.refreshers {
            write!(f, " {node}:{pids:?}")?;
        }
        write!(f, ", API points to {:?}", self.api)
    }
}

/// Which cloud the lab's nodes talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Cloudscale,
    Exoscale,
    Hetzner,
    DigitalOcean,
    /// An Elastic IP.
    AwsElasticIp,
    /// A secondary private IP, confirmed in each node's own IMDS.
    AwsSecondaryIp,
}

/// The mock that serves the nodes when it is not cloudscale's.
pub enum OtherApi {
    Exoscale(mock_cloud::Exoscale),
    Hetzner(mock_cloud::Hetzner),
    DigitalOcean(mock_cloud::DigitalOcean),
    /// EC2 and the metadata services of the nodes, in node order.
    Aws {
        ec2: mock_cloud::Ec2,
        imds: Vec<mock_cloud::Imds>,
        secondary: bool,
    },
}

/// AWS instance ids of the nodes; their ENIs are `eni-` and the same hex.
pub const INSTANCE_A: &str = "i-0aaaaaaaaaaaaaaa1";
pub const INSTANCE_B: &str = "i-0bbbbbbbbbbbbbbb2";
pub const AWS_KEY_ID: &str = "AKIAFLOATYLABEXAMPLE";
pub const AWS_SECRET: &str = "lab/secret/aws/0123456789abcdefEXAMPLE";

fn eni_of(instance: &str) -> String {
    format!("eni-{}", instance.trim_start_matches("i-"))
}

/// Hetzner server and DigitalOcean droplet ids of the nodes: above 2^31,
/// as real ones are.
pub const ID_A: &str = "4294967301";
pub const ID_B: &str = "4294967302";

fn numeric(id: &str) -> u64 {
    id.parse().expect("a numeric id")
}

/// Two nodes, one mock API.
pub struct Lab {
    pub mock: mock_cloud::Cloudscale,
    /// Set for every cloud but cloudscale: then this mock serves the nodes.
    pub other: Option<OtherApi>,
    /// Clones of the listeners inside the namespaces, see `Drop`.
    listeners: Vec<TcpListener>,
    pub nodes: Vec<Node>,
    pub dir: tempfile::TempDir,
    started: Instant,
    /// How many VRRP instances each node runs (`VI_1` ... `VI_n`).
    pub instances: usize,
    /// One lab at a time (see [`ONE_AT_A_TIME`]); the last field, so it
    /// is let go after the teardown.
    _turn: std::sync::MutexGuard<'static, ()>,
}

static LABS: AtomicUsize = AtomicUsize::new(0);

/// Labs run one after the other, not side by side. Two labs at once (four
/// keepalived daemons, with the 50-instance one adding 100 addresses in a
/// burst) made `ip monitor` miss address events in a full test run: the
/// watch then saw a node write an address it had never seen it hold.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Lab {
    /// Namespaces `fl<pid>a`/`fl<pid>b` (a counter is added for a second
    /// lab in the same process), a veth pair `veth0` between them, the
    /// mock listening on the host's and each namespace's loopback, and the
    /// files of each node. keepalived is not started yet.
    pub fn new() -> Result<Lab, Skip> {
        Lab::for_cloud(Cloud::Cloudscale)
    }

    /// Like [`Lab::new`], the nodes talking to `cloud`'s mock.
    pub fn for_cloud(cloud: Cloud) -> Result<Lab, Skip> {
        Lab::with_instances(cloud, 1)
    }

    /// Like [`Lab::for_cloud`], each node running `instances` VRRP
    /// instances (`VI_1` with [`VIP`], `VI_2` with the next address, ...),
    /// every address pointing at b at first.
    pub fn with_instances(cloud: Cloud, instances: usize) -> Result<Lab, Skip> {
        assert!(
            (1..=MAX_INSTANCES).contains(&instances),
            "{instances} instances"
        );
        preflight()?;
        // A lab whose test panicked poisons the lock; the next may go on.
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let seq = LABS.fetch_add(1, Ordering::Relaxed);
        let prefix = match seq {
            0 => format!("fl{}", std::process::id()),
            n => format!("fl{}-{n}", std::process::id()),
        };
        let dir = tempfile::Builder::new()
            .prefix("floaty-lab-")
            .tempdir()
            .map_err(|e| Skip(format!("no temporary directory: {e}")))?;
        let mock = mock_cloud::Cloudscale::start(TOKEN).expect("start the mock API");
        mock.add_server(SERVER_A, "lb-a");
        mock.add_server(SERVER_B, "lb-b");
        // Pointing at b: node a's first MASTER has to move it.
        for i in 0..instances {
            mock.add_floating_ip(&vip_of(i), Some(SERVER_B));
        }
        let other = match cloud {
            Cloud::Cloudscale => None,
            Cloud::Exoscale => {
                let m =
                    mock_cloud::Exoscale::start(EXO_KEY, EXO_SECRET).expect("start the mock API");
                m.add_instance(SERVER_A, "lb-a");
                m.add_instance(SERVER_B, "lb-b");
                for i in 0..instances {
                    m.add_elastic_ip(&vip_of(i), &[SERVER_B]);
                }
                Some(OtherApi::Exoscale(m))
            }
            Cloud::Hetzner => {
                let m = mock_cloud::Hetzner::start(TOKEN).expect("start the mock API");
                m.add_server(numeric(ID_A), "lb-a");
                m.add_server(numeric(ID_B), "lb-b");
                for i in 0..instances {
                    m.add_floating_ip(&vip_of(i), Some(numeric(ID_B)));
                }
                Some(OtherApi::Hetzner(m))
            }
            Cloud::DigitalOcean => {
                let m = mock_cloud::DigitalOcean::start(TOKEN).expect("start the mock API");
                m.add_droplet(numeric(ID_A), "lb-a");
                m.add_droplet(numeric(ID_B), "lb-b");
                for i in 0..instances {
                    m.add_reserved_ip(&vip_of(i), Some(numeric(ID_B)));
                }
                Some(OtherApi::DigitalOcean(m))
            }
            Cloud::AwsElasticIp | Cloud::AwsSecondaryIp => {
                let m = mock_cloud::Ec2::start(AWS_KEY_ID, AWS_SECRET).expect("start the mock API");
                for (i, id) in [INSTANCE_A, INSTANCE_B].into_iter().enumerate() {
                    m.add_instance(
                        id,
                        &eni_of(id),
                        &format!("0a:00:00:00:00:0{}", i + 1),
                        &format!("10.0.0.{}", i + 5),
                    );
                }
                for i in 0..instances {
                    if cloud == Cloud::AwsElasticIp {
                        m.add_elastic_ip(
                            &vip_of(i),
                            &format!("eipalloc-0{i:016x}"),
                            Some(INSTANCE_B),
                        );
                    } else {
                        m.add_secondary_ip(&vip_of(i), Some(&eni_of(INSTANCE_B)));
                    }
                }
                Some(OtherApi::Aws {
                    ec2: m,
                    imds: Vec::new(),
                    secondary: cloud == Cloud::AwsSecondaryIp,
                })
            }
        };
        let (id_a, id_b) = match cloud {
            Cloud::Cloudscale | Cloud::Exoscale => (SERVER_A, SERVER_B),
            Cloud::Hetzner | Cloud::DigitalOcean => (ID_A, ID_B),
            Cloud::AwsElasticIp | Cloud::AwsSecondaryIp => (INSTANCE_A, INSTANCE_B),
        };

        // Namespaces first, so that a failure below still deletes them.
        let ns_a = Netns::create(&format!("{prefix}a"))
            .map_err(|e| Skip(format!("cannot create a network namespace: {e}")))?;
        let ns_b = Netns::create(&format!("{prefix}b")).expect("second namespace");
        let mut lab = Lab {
            mock,
            other,
            listeners: Vec::new(),
            nodes: Vec::new(),
            dir,
            started: Instant::now(),
            instances,
            _turn: turn,
        };
        // Created inside the namespaces: nothing ever lands in the host's.
        ns_a.ip(&[
            "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", &ns_b.name,
        ])
        .expect("veth pair");
        for (i, (name, uuid, priority, ns)) in [("a", id_a, 150, ns_a), ("b", id_b, 100, ns_b)]
            .into_iter()
            .enumerate()
        {
            let addr = format!("192.0.2.{}", i + 1);
            ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "veth0"])
                .expect("veth address");
            ns.ip(&["link", "set", "veth0", "up"]).expect("veth up");
            let listener = ns.bind_loopback().expect("listen in the namespace");
            let port = listener.local_addr().expect("local address").port();
            lab.listeners
                .push(listener.try_clone().expect("clone listener"));
            match &lab.other {
                Some(OtherApi::Exoscale(m)) => m.also_listen(listener),
                Some(OtherApi::Hetzner(m)) => m.also_listen(listener),
                Some(OtherApi::DigitalOcean(m)) => m.also_listen(listener),
                Some(OtherApi::Aws { ec2, .. }) => ec2.also_listen(listener),
                None => lab.mock.also_listen(listener),
            }
            // Each AWS node has a metadata service of its own.
            let mut env = String::new();
            if let Some(OtherApi::Aws { ec2, imds, .. }) = &mut lab.other {
                let listener = ns.bind_loopback().expect("listen in the namespace");
                let port = listener.local_addr().expect("local address").port();
                lab.listeners
                    .push(listener.try_clone().expect("clone listener"));
                imds.push(ec2.imds_on(listener, uuid).expect("imds"));
                env = format!("export FLOATY_METADATA_URL=http://127.0.0.1:{port}/\n");
            }
            let mut node = lab.node_files(name, uuid, priority, ns, addr, port);
            node.env = env;
            node.write_notify_script();
            lab.nodes.push(node);
        }
        // A keepalived started before its link has carrier enters FAULT
        // first ("interface veth0 down"), which tests that check the exact
        // sequence of states would see. Both ends report UP once both are
        // up; wait for that instead of racing it.
        for node in &lab.nodes {
            let up = wait_until(Duration::from_secs(10), POLL, || {
                node.ns
                    .ip(&["-o", "link", "show", "veth0"])
                    .is_ok_and(|l| l.contains("state UP"))
            });
            if !up {
                return Err(Skip(format!(
                    "veth0 in {} never came up: {:?}",
                    node.ns.name,
                    node.ns.ip(&["-o", "link", "show", "veth0"])
                )));
            }
        }
        Ok(lab)
    }

    fn node_files(
        &self,
        name: &'static str,
        id: &'static str,
        priority: u8,
        ns: Netns,
        addr: String,
        port: u16,
    ) -> Node {
        let dir = self.dir.path().join(format!("node-{name}"));
        fs::create_dir_all(dir.join("lock")).expect("node directory");
        let notify = dir.join("notify");
        let conf = dir.join("keepalived.conf");
        let yml = dir.join("floaty.yml");
        let mut kconf =
            format!("global_defs {{\n    router_id lab-{name}\n    script_user root\n}}\n");
        // One instance: the VIP as always. Several: /32 each, so that one
        // instance's VIP is not the primary address of the others' subnet
        // (removing a primary removes its secondaries with it).
        let prefix = if self.instances == 1 { 24 } else { 32 };
        for i in 0..self.instances {
            let _ = write!(
                kconf,
                "vrrp_instance {} {{\n    state BACKUP\n    interface veth0\n    \
                 virtual_router_id {}\n    priority {priority}\n    advert_int 1\n    \
                 virtual_ipaddress {{\n        {}/{prefix} dev veth0\n    }}\n    \
                 notify \"{}\"\n}}\n",
                instance_name(i),
                usize::from(VRID) + i,
                vip_of(i),
                notify.display()
            );
        }
        fs::write(&conf, kconf).expect("keepalived.conf");
        let api = match self.other {
            Some(OtherApi::Exoscale(_)) => crate::exoscale::exoscale_yaml(
                &format!("\"http://127.0.0.1:{port}/v2\""),
                EXO_SECRET,
                Some(id),
            ),
            Some(OtherApi::Hetzner(_)) => format!(
                "provider: hetzner\n\
                 hetzner:\n  endpoint: \"http://127.0.0.1:{port}/v1\"\n  token: {TOKEN}\n  server-id: {id}\n"
            ),
            Some(OtherApi::DigitalOcean(_)) => format!(
                "provider: digitalocean\n\
                 digitalocean:\n  endpoint: \"http://127.0.0.1:{port}/v2\"\n  token: {TOKEN}\n  droplet-id: {id}\n"
            ),
            // The region and, for a secondary IP, the ENI come from the
            // node's metadata service; the instance id is given.
            Some(OtherApi::Aws { secondary, .. }) => format!(
                "provider: aws\n\
                 aws:\n  endpoint: \"http://127.0.0.1:{port}/\"\n  mode: {}\n  instance-id: {id}\n  \
                 access-key-id: {AWS_KEY_ID}\n  secret-access-key: {AWS_SECRET}\n\
                 managed-addresses:\n{}",
                if secondary { "secondary-private-ip" } else { "elastic-ip" },
                (0..self.instances).map(|i| format!("  - {}\n", vip_of(i))).collect::<String>()
            ),
            None => format!(
                "provider: cloudscale\n\
                 cloudscale:\n  endpoint: \"http://127.0.0.1:{port}/\"\n  token: {TOKEN}\n  server-uuid: {id}\n"
            ),
        };
        let yaml = format!(
            "{api}\
             keepalived-config: {}\n\
             lock-file-template: {}/floaty.%s.lock\n\
             state-dir: {}\n\
             metrics-dir: {}\n\
             refresh-interval: 2s\n\
             back-off:\n  initial-interval: 50ms\n  max-interval: 200ms\n",
            conf.display(),
            dir.join("lock").display(),
            dir.display(),
            dir.display(),
        );
        fs::write(&yml, yaml).expect("floaty.yml");
        Node {
            name,
            id,
            priority,
            env: String::new(),
            ns,
            addr,
            dir,
            conf,
            keepalived: None,
            starts: 0,
            held: Vec::new(),
        }
    }

    pub fn node(&mut self, name: &str) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Nodes whose running keepalived holds the VIP: the MASTER, as far as
    /// the kernel knows. More than one means split brain.
    pub fn masters(&mut self) -> Vec<&'static str> {
        self.nodes
            .iter_mut()
            .filter_map(|n| (n.running() && n.has_vip()).then_some(n.name))
            .collect()
    }

    /// The node the API points the VIP at.
    /// For Exoscale: the sole instance the Elastic IP is attached to
    /// (`Some("many")` when several).
    pub fn api_points_to(&self) -> Option<&'static str> {
        let id = match &self.other {
            Some(OtherApi::Exoscale(exo)) => match exo.holders(VIP).as_slice() {
                [] => return None,
                [one] => one.clone(),
                _ => return Some("many"),
            },
            Some(OtherApi::Hetzner(m)) => m.server_of(VIP)?.to_string(),
            Some(OtherApi::DigitalOcean(m)) => m.droplet_of(VIP)?.to_string(),
            Some(OtherApi::Aws {
                ec2,
                secondary: false,
                ..
            }) => ec2.eip_instance(VIP)?,
            Some(OtherApi::Aws {
                ec2,
                secondary: true,
                ..
            }) => format!("i-{}", ec2.secondary_eni(VIP)?.trim_start_matches("eni-")),
            None => self.mock.server_of(VIP)?,
        };
        Some(
            self.nodes
                .iter()
                .find(|n| n.id == id)
                .map_or("?", |n| n.name),
        )
    }

    /// The request log of the mock that serves the nodes.
    pub fn requests(&self) -> Vec<mock_cloud::Request> {
        match &self.other {
            Some(OtherApi::Exoscale(m)) => m.requests(),
            Some(OtherApi::Hetzner(m)) => m.requests(),
            Some(OtherApi::DigitalOcean(m)) => m.requests(),
            Some(OtherApi::Aws { ec2, .. }) => ec2.requests(),
            None => self.mock.requests(),
        }
    }

    pub fn snapshot(&mut self) -> Snapshot {
        let masters = self.masters();
        let refreshers = self
            .nodes
            .iter()
            .map(|n| (n.name, n.refreshers()))
            .collect();
        Snapshot {
            masters,
            refreshers,
            api: self.api_points_to(),
        }
    }

    /// The rule floaty must establish: `master` alone holds the VIP, runs
    /// exactly one refresher, no other node runs any, and the API points
    /// at `master`.
    pub fn converged_on(snap: &Snapshot, master: &str) -> bool {
        snap.masters == [master]
            && snap.api == Some(master)
            && snap
                .refreshers
                .iter()
                .all(|(n, pids)| pids.len() == usize::from(*n == master))
    }

    /// Polls until the lab converged on `master`; Ok(time taken) or Err
    /// with the last snapshot.
    pub fn wait_converged(&mut self, master: &str, timeout: Duration) -> Result<Duration, String> {
        let t0 = Instant::now();
        let mut last = self.snapshot();
        while !Lab::converged_on(&last, master) {
            if t0.elapsed() >= timeout {
                return Err(format!(
                    "no convergence on {master} within {timeout:?}; last seen: {last}"
                ));
            }
            std::thread::sleep(POLL);
            last = self.snapshot();
        }
        Ok(t0.elapsed())
    }

    /// Checks that the converged state on `master` holds for `period`
    /// (at least one refresh interval: a stray refresher would move the
    /// address back).
    pub fn holds(&mut self, master: &str, period: Duration) -> Result<(), String> {
        let t0 = Instant::now();
        while t0.elapsed() < period {
            let snap = self.snapshot();
            if !Lab::converged_on(&snap, master) {
                return Err(format!(
                    "converged on {master}, but {:?} later: {snap}",
                    t0.elapsed()
                ));
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    /// Polls until only `master` holds the VIP (ground truth of VRRP
    /// alone); Ok(time taken).
    pub fn wait_master(&mut self, master: &str, timeout: Duration) -> Result<Duration, String> {
        let t0 = Instant::now();
        loop {
            let masters = self.masters();
            if masters == [master] {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() >= timeout {
                return Err(format!(
                    "{master} not sole MASTER within {timeout:?}: {masters:?}"
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Everything useful after a failure: logs of both nodes, the API's
    /// request log, the state.
    pub fn report(&mut self) -> String {
        let mut out = String::new();
        let snap = self.snapshot();
        let _ = writeln!(
            out,
            "===== lab state after {:?}: {snap}",
            self.started.elapsed()
        );
        for node in &self.nodes {
            let _ = writeln!(
                out,
                "===== node {} ({}, {}, id {}): keepalived output =====\n{}",
                node.name,
                node.ns.name,
                node.addr,
                node.id,
                node.keepalived_log()
            );
            let _ = writeln!(
                out,
                "===== node {}: floaty.log =====\n{}",
                node.name,
                node.floaty_log()
            );
        }
        let _ = writeln!(out, "===== mock API requests =====");
        let t0 = self.started;
        for r in self.requests() {
            let at = r.at.saturating_duration_since(t0);
            let _ = writeln!(
                out,
                "{:>8.3}s {} {} -> {:?} {}",
                at.as_secs_f64(),
                r.method,
                r.path,
                r.status,
                r.body
            );
        }
        out
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os(KEEP).is_some() {
            eprintln!("{}", self.report());
        }
        for node in &mut self.nodes {
            node.kill();
            // A notify call still waiting in a hold would outlive the lab.
            for state in node.held.clone() {
                let _ = node.release(state.as_str(), Duration::ZERO);
            }
        }
        // A notify call in flight when keepalived died may still start a
        // refresher; it would stop on its own (keepalived is gone), but
        // don't leave it to that.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let pids: Vec<i32> = self.nodes.iter().flat_map(|n| n.refreshers()).collect();
            for &pid in &pids {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            if pids.is_empty() || Instant::now() >= deadline {
                break;
            }
            wait_until(Duration::from_secs(1), Duration::from_millis(5), || {
                pids.iter().all(|&p| !alive(p))
            });
        }
        // The mock wakes its accept threads on drop by connecting to them,
        // but from this thread's namespace: it cannot reach the listeners
        // inside the lab's. Shutting a listening socket down makes a
        // blocked accept() fail, and the accept thread then sees the stop.
        for listener in &self.listeners {
            unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
        }
        // Namespaces go with the nodes, the directory with `dir`.
        if std::env::var_os(KEEP).is_some() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
            eprintln!("lab: {KEEP} is set; kept {}", dir.keep().display());
        }
    }
}

pub use crate::support::poll_until as wait_until;

/// Seconds with milliseconds, for timing reports.
pub fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// One change of a lab VIP on a node, as the kernel reported it.
#[derive(Debug, Clone)]
pub struct AddressChange {
    /// When the test read the report (within a millisecond or so of the
    /// change: `ip monitor` prints each netlink message as it comes).
    pub at: Instant,
    /// The same moment by the wall clock, to compare with log timestamps.
    pub wall: std::time::SystemTime,
    pub node: &'static str,
    pub vip: String,
    pub present: bool,
}

/// Every VIP change on every node, recorded as it happens by an `ip
/// monitor address` per namespace: the ground truth a write's time is
/// compared with. Stops the monitors on drop.
pub struct AddressWatch {
    children: Vec<Child>,
    changes: std::sync::Arc<std::sync::Mutex<Vec<AddressChange>>>,
}

impl Lab {
    /// Starts watching, and returns once every monitor has reported a
    /// probe address (so no later change can be missed).
    pub fn watch_addresses(&self) -> io::Result<AddressWatch> {
        use std::io::BufRead;
        let changes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut watch = AddressWatch {
            children: Vec::new(),
            changes: changes.clone(),
        };
        for node in &self.nodes {
            let mut child = Command::new("ip")
                .args(["-o", "-n", &node.ns.name, "monitor", "address"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            let out = child
                .stdout
                .take()
                .ok_or_else(|| io::Error::other("no stdout"))?;
            watch.children.push(child);
            let (name, changes) = (node.name, changes.clone());
            std::thread::spawn(move || {
                for line in io::BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    let (at, wall) = (Instant::now(), std::time::SystemTime::now());
                    let present = !line.starts_with("Deleted");
                    let Some(addr) = line
                        .split_whitespace()
                        .skip_while(|w| *w != "inet")
                        .nth(1)
                        .and_then(|a| a.split('/').next())
                    else {
                        continue;
                    };
                    let change = AddressChange {
                        at,
                        wall,
                        node: name,
                        vip: addr.to_string(),
                        present,
                    };
                    changes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(change);
                }
            });
        }
        const PROBE: &str = "198.51.100.77";
        for node in &self.nodes {
            // `ip monitor` subscribes some time after it was spawned (later
            // on a loaded machine): a change made before that is never
            // reported. So add and remove the probe address until one is.
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut seen = false;
            while !seen && Instant::now() < deadline {
                node.ns
                    .ip(&["addr", "add", &format!("{PROBE}/32"), "dev", "lo"])?;
                seen = wait_until(Duration::from_millis(250), Duration::from_millis(5), || {
                    watch
                        .changes()
                        .iter()
                        .any(|c| c.node == node.name && c.vip == PROBE)
                });
                node.ns
                    .ip(&["addr", "del", &format!("{PROBE}/32"), "dev", "lo"])?;
            }
            if !seen {
                return Err(io::Error::other(format!(
                    "ip monitor in {} reported nothing",
                    node.ns.name
                )));
            }
        }
        Ok(watch)
    }
}

impl AddressWatch {
    pub fn changes(&self) -> Vec<AddressChange> {
        self.changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How long before `at` `node` lost `vip` (None: it held it then).
    /// A node that never held it lost it at the start of the watch.
    /// The reports come a little after the changes (`slack` at most): an
    /// addition reported up to `slack` after `at` counts as before it.
    pub fn gone_for(
        &self,
        node: &str,
        vip: &str,
        at: Instant,
        since: Instant,
        slack: Duration,
    ) -> Option<Duration> {
        let mine: Vec<AddressChange> = self
            .changes()
            .into_iter()
            .filter(|c| c.node == node && c.vip == vip)
            .collect();
        if mine
            .iter()
            .any(|c| c.present && c.at > at && c.at <= at + slack)
        {
            return None;
        }
        match mine.iter().rfind(|c| c.at <= at) {
            Some(c) if c.present => None,
            Some(c) => Some(at.saturating_duration_since(c.at)),
            None => Some(at.saturating_duration_since(since)),
        }
    }
}

impl Drop for AddressWatch {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The link a partitioned node's route to its peer goes down instead of
/// `veth0` (see [`Node::partition_from`]).
const DEAD_LINK: &str = "dead0";

impl Node {
    /// A one-way partition: this node stops hearing `peer` (a veth
    /// address) while `peer` still hears it. Strict reverse-path filtering
    /// plus a route to `peer` over a second veth that leads nowhere: the
    /// kernel drops what comes from `peer` on `veth0`, and nothing else
    /// changes (docs: keepalived-health.md §0; this kernel has no netem,
    /// and no nftables or iptables here).
    pub fn partition_from(&self, peer: &str) -> io::Result<()> {
        if self.ns.ip(&["-o", "link", "show", DEAD_LINK]).is_err() {
            self.ns.ip(&[
                "link", "add", DEAD_LINK, "type", "veth", "peer", "name", "dead1",
            ])?;
            self.ns.ip(&["link", "set", "dead1", "up"])?;
            self.ns.ip(&["link", "set", DEAD_LINK, "up"])?;
        }
        for key in ["all", "veth0"] {
            self.sysctl(&format!("net.ipv4.conf.{key}.rp_filter=1"))?;
        }
        self.ns
            .ip(&["route", "add", &format!("{peer}/32"), "dev", DEAD_LINK])?;
        Ok(())
    }

    /// Ends [`Node::partition_from`]: the route to `peer` goes back to
    /// `veth0`.
    pub fn heal_partition(&self, peer: &str) -> io::Result<()> {
        self.ns.ip(&["route", "del", &format!("{peer}/32")])?;
        Ok(())
    }

    fn sysctl(&self, setting: &str) -> io::Result<()> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns.name,
                "sysctl",
                "-q",
                "-w",
                setting,
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0)
            .output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "sysctl {setting} in {}: {}",
                self.ns.name,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// Sets floaty's refresh-interval on this node (`1h`: only events
    /// move the address).
    pub fn set_refresh_interval(&self, interval: &str) -> io::Result<()> {
        let yml = fs::read_to_string(self.floaty_config())?;
        let changed = yml.replace(
            "refresh-interval: 2s\n",
            &format!("refresh-interval: {interval}\n"),
        );
        if changed == yml {
            return Err(io::Error::other("floaty.yml has no refresh-interval: 2s"));
        }
        fs::write(self.floaty_config(), changed)
    }

    /// Adds `notify_master_rx_lower_pri` to every instance of this node's
    /// keepalived.conf, the way the README says: the notify program with
    /// the event baked in (keepalived appends no arguments to it).
    pub fn notify_on_lower_priority(&self) -> io::Result<()> {
        let conf = fs::read_to_string(&self.conf)?;
        let mut out = String::new();
        let mut instance = None;
        for line in conf.lines() {
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix("vrrp_instance ") {
                instance = rest.split_whitespace().next().map(str::to_string);
            }
            out.push_str(line);
            out.push('\n');
            if let (Some(program), Some(name)) = (
                trimmed
                    .strip_prefix("notify \"")
                    .and_then(|p| p.strip_suffix('"')),
                instance.as_deref(),
            ) {
                out.push_str(&format!(
                    "    notify_master_rx_lower_pri \"{program} INSTANCE {name} MASTER_RX_LOWER_PRI\"\n"
                ));
            }
        }
        if !out.contains("notify_master_rx_lower_pri") {
            return Err(io::Error::other("keepalived.conf has no notify line"));
        }
        fs::write(&self.conf, out)
    }
}
