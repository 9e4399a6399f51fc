//! The split-brain guard with the real keepalived pair: a stale MASTER
//! call on the BACKUP node starts a refresher that must not write, and
//! that must start writing, with no further event, once its node really
//! becomes MASTER.
//!
//! The lab test needs root, `ip` and `keepalived`: ignored when the build
//! found them missing (build.rs), failing when they are missing at run time.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::lab::{secs, wait_until, Lab, Skip, INSTANCE};
use crate::support::SERVER_B;

const CONVERGE: Duration = Duration::from_secs(15);
/// Longer than the refresher's first write would take (milliseconds) and
/// than its guard's poll (1 s): had it written, the API would show it.
const HOLD: Duration = Duration::from_millis(2500);
const POLL: Duration = Duration::from_millis(25);

fn patches_from_b(lab: &Lab) -> usize {
    lab.mock
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.body.contains(SERVER_B))
        .count()
}

#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn a_stale_master_call_writes_only_once_its_node_holds_the_vip() {
    let mut lab = match Lab::new() {
        Ok(lab) => lab,
        Err(Skip(why)) => panic!("cannot run the split-brain end-to-end test: {why}"),
    };
    if let Err(e) = scenario(&mut lab) {
        panic!("{e}"); // Lab's Drop prints both nodes' logs.
    }
}

fn scenario(lab: &mut Lab) -> Result<(), String> {
    // b's keepalived calls no notify program: whatever b's floaty does
    // from here on, no event from keepalived told it.
    let b_conf = lab.node("b").conf.clone();
    let conf = fs::read_to_string(&b_conf).map_err(|e| e.to_string())?;
    let without_notify: String = conf
        .lines()
        .filter(|l| !l.trim_start().starts_with("notify "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(conf, without_notify, "b's config had a notify line");
    fs::write(&b_conf, without_notify).map_err(|e| e.to_string())?;

    lab.node("a").start().map_err(|e| e.to_string())?;
    lab.node("b").start().map_err(|e| e.to_string())?;
    lab.wait_master("a", CONVERGE)?;
    if !wait_until(CONVERGE, POLL, || lab.api_points_to() == Some("a")) {
        return Err("the API never pointed at a".into());
    }

    // The stale MASTER call, by hand, in b's namespace, with b's config.
    let b = lab.node("b");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(b.floaty_log_path())
        .map_err(|e| e.to_string())?;
    let status = Command::new("ip")
        .args(["netns", "exec", &b.ns.name])
        .arg(crate::support::BIN)
        .args(["--log-target", "stderr", "-v"])
        .arg(b.floaty_config())
        .args(["INSTANCE", INSTANCE, "MASTER", "100"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the stale MASTER call failed: {status}"));
    }
    if lab.node("b").refreshers().len() != 1 {
        return Err("the stale call started no refresher on b".into());
    }
    let t0 = Instant::now();
    while t0.elapsed() < HOLD {
        if patches_from_b(lab) != 0 || lab.api_points_to() != Some("a") {
            return Err("b's refresher wrote while b was BACKUP".into());
        }
        std::thread::sleep(POLL);
    }
    let refused = |lab: &mut Lab| {
        lab.node("b")
            .floaty_log()
            .lines()
            .filter(|l| l.contains("not writing: this node does not hold"))
            .count()
    };
    if refused(lab) != 1 {
        return Err(format!(
            "expected one 'not writing' error on b, found {}",
            refused(lab)
        ));
    }

    // a stops (STOP stops a's refresher); b takes over, no notify on b.
    lab.node("a").stop().map_err(|e| e.to_string())?;
    let t1 = Instant::now();
    if !wait_until(CONVERGE, POLL, || lab.node("b").has_vip()) {
        return Err("b never took the VIP".into());
    }
    let vip_on_b = t1.elapsed();
    if !wait_until(CONVERGE, POLL, || lab.api_points_to() == Some("b")) {
        return Err("b's refresher never wrote after b became MASTER".into());
    }
    let written = t1.elapsed();
    let log = lab.node("b").floaty_log();
    if !log.contains("now holds its virtual IPs: writing again") {
        return Err("no 'writing again' line on b".into());
    }
    if refused(lab) != 1 {
        return Err("the 'not writing' error was repeated".into());
    }
    if log.matches("keepalived event").count() != 1 {
        return Err("b's floaty saw another event".into());
    }
    eprintln!(
        "split-brain: b held the VIP {} after a stopped; the stale refresher wrote {} after a stopped ({} after the VIP appeared)",
        secs(vip_on_b),
        secs(written),
        secs(written.saturating_sub(vip_on_b))
    );
    Ok(())
}

/// Without the lab: the World's VIPs (192.0.2.x) are on no interface here,
/// so with the guard on (the default, `auto`) a MASTER call starts a
/// refresher that writes nothing and says why, once.
#[test]
fn without_its_vips_a_refresher_does_not_write() {
    use crate::support::*;
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "verify-master: auto\n");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert_eq!(w.refreshers().len(), 1);
    assert!(
        w.wait_log(
            "not writing: this node does not hold",
            Duration::from_secs(10)
        ),
        "{}",
        w.log_text()
    );
    // Two more polls of the guard: still nothing sent, still one line.
    assert!(!w.wait_log("now holds", Duration::from_millis(2200)));
    assert!(mock.requests().is_empty(), "{:?}", mock.requests());
    let log = w.log_text();
    assert_eq!(log.matches("not writing").count(), 1, "{log}");
    assert!(log.contains("vips=192.0.2.10"), "{log}");
    // verify-master: off writes as before.
    let w = World::new(&mock.url(), SERVER_A, "verify-master: off\n");
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(
        mock.wait_for(Duration::from_secs(10), |s| s.server_of("192.0.2.10")
            == Some(SERVER_A))
    );
}

/// `always` on an instance without `virtual_ipaddress` is a config error
/// found before anything happens.
#[test]
fn verify_master_always_needs_vips() {
    use crate::support::*;
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "verify-master: always\n");
    fs::write(
        w.path("keepalived.conf"),
        "vrrp_instance VI_1 {\n  interface veth0\n  virtual_router_id 1\n  priority 100\n}\n",
    )
    .unwrap();
    let yaml = fs::read_to_string(&w.config).unwrap() + "managed-addresses:\n  - 192.0.2.10\n";
    fs::write(&w.config, yaml).unwrap();
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    let errors: Vec<&str> = err.lines().filter(|l| !l.contains(" WARN ")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].starts_with("floaty: "), "{err}");
    assert!(
        err.contains("verify-master: `always`, but vrrp_instance `VI_1` has no virtual_ipaddress"),
        "{err}"
    );
    assert!(w.refreshers().is_empty());
    assert!(mock.requests().is_empty());
}

#[test]
fn the_fifo_daemon_does_not_write_without_the_vips_either() {
    use crate::fifo::{send, writer, Daemon};
    use crate::support::*;
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "verify-master: auto\n");
    let fifo = w.path("keepalived.fifo");
    crate::fifo::mkfifo(&fifo);
    let mut fw = writer(&fifo);
    let _daemon = Daemon::start(&w, &fifo);
    send(&mut fw, &["INSTANCE \"VI_1\" MASTER 100"]);
    assert!(
        w.wait_log(
            "not writing: this node does not hold",
            Duration::from_secs(10)
        ),
        "{}",
        w.log_text()
    );
    assert!(mock.requests().is_empty(), "{:?}", mock.requests());
}
