//! End to end in FIFO mode: two real keepalived daemons in network
//! namespaces write `vrrp_notify_fifo` and start floaty as their
//! `vrrp_notify_fifo_script`. After every event the lab must converge on
//! the MASTER alone refreshing (holding the instance lock) and the API
//! pointing at it, and rules must have seen the events in keepalived's
//! order.
//!
//! Needs root, `ip` and `keepalived`: ignored when the build found them
//! missing (build.rs), failing when they are missing at run time.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::pair::lab::{secs, wait_until, Cloud, Lab, Skip};
use crate::support::{alive, bin, cmdline, pids};

const CONVERGE: Duration = Duration::from_secs(15);
/// More than one refresh interval (2 s): a stray refresher would show.
const HOLD: Duration = Duration::from_millis(2500);

/// Switch the lab's nodes from `notify` to the FIFO: keepalived writes
/// `DIR/keepalived.fifo` and starts floaty on it; with `record`, a rule
/// records every event in `DIR/rules.log`.
pub fn use_fifo(lab: &mut Lab, record: bool) {
    for node in &mut lab.nodes {
        let dir = node.dir.clone();
        let floaty = bin();
        let script = dir.join("fifo-script");
        // keepalived gives its scripts /dev/null for stderr: keep the log.
        fs::write(
            &script,
            format!(
                "#!/bin/sh\n\
                 {env}\
                 echo \"$(date +%T.%N) ===== fifo script $* =====\" >>{log}\n\
                 exec {floaty} --log-target stderr -v \"$@\" 2>>{log}\n",
                env = node.env,
                log = node.floaty_log_path().display(),
            ),
        )
        .expect("fifo script");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
        let conf = fs::read_to_string(&node.conf).expect("keepalived.conf");
        // script_user must come before the FIFO lines (keepalived 2.2.7
        // drops them on reload otherwise). keepalived appends the FIFO path
        // to the script's own arguments.
        let fifo_lines = format!(
            "    script_user root\n    vrrp_notify_fifo {}\n    vrrp_notify_fifo_script \"{} --fifo {}\"\n",
            dir.join("keepalived.fifo").display(),
            script.display(),
            node.floaty_config().display(),
        );
        assert!(conf.contains("    script_user root\n"), "{conf}");
        let conf: String = conf
            .replacen("    script_user root\n", &fifo_lines, 1)
            .lines()
            .filter(|l| !l.trim_start().starts_with("notify "))
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(&node.conf, conf).expect("keepalived.conf");
        if !record {
            continue;
        }
        let yml = fs::read_to_string(node.floaty_config()).expect("floaty.yml");
        fs::write(
            node.floaty_config(),
            format!(
                "{yml}rules:\n  - name: record\n    exec: [sh, -c, 'echo \"$FLOATY_TYPE $FLOATY_INSTANCE $FLOATY_STATE\" >>{}']\n",
                dir.join("rules.log").display()
            ),
        )
        .expect("floaty.yml");
    }
}

fn rules_log(lab: &mut Lab, node: &str) -> Vec<String> {
    fs::read_to_string(lab.node(node).dir.join("rules.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The FIFO daemons of a node (floaty processes reading its FIFO).
pub fn daemons(lab: &mut Lab, node: &str) -> Vec<i32> {
    let fifo = lab.node(node).dir.join("keepalived.fifo");
    let fifo = fifo.to_string_lossy().into_owned();
    pids()
        .into_iter()
        .filter(|&pid| {
            let args = cmdline(pid);
            args.first().is_some_and(|a| a == bin())
                && args.iter().any(|a| a == "--fifo")
                && args.last().is_some_and(|a| *a == fifo)
                && alive(pid)
        })
        .collect()
}

#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn keepalived_pair_feeds_the_fifo_daemon() {
    fifo(Cloud::Cloudscale);
}

#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn keepalived_pair_feeds_the_fifo_daemon_on_hetzner() {
    fifo(Cloud::Hetzner);
}

#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn keepalived_pair_feeds_the_fifo_daemon_on_digitalocean() {
    fifo(Cloud::DigitalOcean);
}

#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn keepalived_pair_feeds_the_fifo_daemon_on_aws_elastic_ips() {
    fifo(Cloud::AwsElasticIp);
}

#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn keepalived_pair_feeds_the_fifo_daemon_on_aws_secondary_ips() {
    fifo(Cloud::AwsSecondaryIp);
}

fn fifo(cloud: Cloud) {
    let mut lab = match Lab::for_cloud(cloud) {
        Ok(lab) => lab,
        Err(Skip(why)) => panic!("cannot run the keepalived FIFO end-to-end test: {why}"),
    };
    use_fifo(&mut lab, true);
    let result = scenarios(&mut lab);
    eprintln!("fifo e2e ({cloud:?}) took {}", secs(lab.elapsed()));
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn io<T>(r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

fn note(what: &str, d: Duration) {
    eprintln!("fifo e2e: {what}: {}", secs(d));
}

fn converge(lab: &mut Lab, master: &str, step: &str, t0: Instant) -> Result<(), String> {
    lab.wait_converged(master, CONVERGE)
        .map_err(|e| format!("{step}: {e}"))?;
    note(&format!("{step}: converged on {master}"), t0.elapsed());
    lab.holds(master, HOLD).map_err(|e| format!("{step}: {e}"))
}

fn scenarios(lab: &mut Lab) -> Result<(), String> {
    // 1: both start as BACKUP, a (priority 150) becomes MASTER.
    let t0 = Instant::now();
    io(lab.node("a").start())?;
    io(lab.node("b").start())?;
    converge(lab, "a", "1 initial", t0)?;
    let (da, db) = (daemons(lab, "a"), daemons(lab, "b"));
    if da.len() != 1 || db.len() != 1 {
        return Err(format!("1 initial: FIFO daemons a: {da:?}, b: {db:?}"));
    }
    let (a, b) = (rules_log(lab, "a"), rules_log(lab, "b"));
    if a != ["INSTANCE VI_1 BACKUP", "INSTANCE VI_1 MASTER"] || b != ["INSTANCE VI_1 BACKUP"] {
        return Err(format!("1 initial: rules saw a: {a:?}, b: {b:?}"));
    }

    // 2: graceful stop of a: STOP on a's FIFO (read after the SIGTERM
    // keepalived sends its FIFO script), b takes over.
    let t0 = Instant::now();
    lab.node("a").terminate();
    io(lab.node("a").wait_exit(Duration::from_secs(10)))?;
    note("2 stop a: keepalived a exited", t0.elapsed());
    if !wait_until(Duration::from_secs(2), Duration::from_millis(10), || {
        daemons(lab, "a").is_empty()
    }) {
        return Err("2 stop a: a's FIFO daemon outlived its keepalived".into());
    }
    converge(lab, "b", "2 stop a", t0)?;
    let (a, b) = (rules_log(lab, "a"), rules_log(lab, "b"));
    if a.last().map(String::as_str) != Some("INSTANCE VI_1 STOP")
        || b != ["INSTANCE VI_1 BACKUP", "INSTANCE VI_1 MASTER"]
    {
        return Err(format!("2 stop a: rules saw a: {a:?}, b: {b:?}"));
    }

    // 3: a comes back and preempts b.
    let t0 = Instant::now();
    io(lab.node("a").start())?;
    converge(lab, "a", "3 restart a", t0)?;
    let b = rules_log(lab, "b");
    if b.last().map(String::as_str) != Some("INSTANCE VI_1 BACKUP") {
        return Err(format!("3 restart a: rules on b saw {b:?}"));
    }

    // 4: quick flaps of a, without waiting for VRRP in between.
    let t0 = Instant::now();
    io(lab.node("a").flap())?;
    converge(lab, "a", "4 flaps", t0)?;

    // 5: keepalived reload on the MASTER: the FIFO is recreated and the
    // FIFO script restarted; states that did not change are not resent.
    let before = daemons(lab, "a");
    let t0 = Instant::now();
    if let Some(pid) = lab.node("a").keepalived_pid() {
        unsafe { libc::kill(pid, libc::SIGHUP) };
    }
    // Wait until the reload is visible (a new daemon), then for convergence.
    if before.len() != 1
        || !wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            let now = daemons(lab, "a");
            now.len() == 1 && now != before
        })
    {
        return Err(format!(
            "5 reload a: keepalived did not replace its FIFO daemon {before:?}: {:?}",
            daemons(lab, "a")
        ));
    }
    converge(lab, "a", "5 reload a", t0)?;

    // 6: SIGKILL of a's keepalived: no STOP; a's daemon sees its parent
    // go and stops refreshing; b takes over after the master-down interval.
    let t0 = Instant::now();
    lab.node("a").kill();
    if !wait_until(Duration::from_secs(3), Duration::from_millis(10), || {
        lab.node("a").refreshers().is_empty() && daemons(lab, "a").is_empty()
    }) {
        return Err(format!(
            "6 kill a: 3 s after keepalived was SIGKILLed, a still refreshes ({:?}) or its daemon runs ({:?})",
            lab.node("a").refreshers(),
            daemons(lab, "a")
        ));
    }
    note("6 kill a: a stopped refreshing", t0.elapsed());
    converge(lab, "b", "6 kill a", t0)?;
    Ok(())
}
