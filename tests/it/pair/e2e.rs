//! End to end: two real keepalived daemons in network namespaces run the
//! real floaty as their notify program against one mock cloudscale API.
//! After every event the lab must converge on the rule floaty exists for:
//! the VRRP MASTER (the node holding the VIP) alone runs a refresher, and
//! the API points the address at it.
//!
//! Needs root, `ip` and `keepalived`: ignored when the build found them
//! missing (build.rs), failing when they are missing at run time.

use std::time::{Duration, Instant};

use crate::pair::lab::{secs, wait_until, Cloud, Lab, Skip};
use crate::support::alive;

/// Longest a convergence may take: VRRP's master-down interval with
/// advert_int 1 is ~3.6 s, floaty's part well under a second.
const CONVERGE: Duration = Duration::from_secs(15);
/// How long a converged state must hold: more than one refresh interval
/// (2 s), so that a stray refresher elsewhere would have moved the address.
const HOLD: Duration = Duration::from_millis(2500);
/// floaty promises its refresher notices a dead keepalived within 2 s.
const WATCH: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Timings(Vec<(String, Duration)>);

impl Timings {
    fn note(&mut self, what: impl Into<String>, d: Duration) {
        let what = what.into();
        eprintln!("e2e: {what}: {}", secs(d));
        self.0.push((what, d));
    }
}

impl std::fmt::Display for Timings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (what, d) in &self.0 {
            writeln!(f, "  {:<58} {:>8}", what, secs(*d))?;
        }
        Ok(())
    }
}

#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn keepalived_failover_moves_the_address_and_the_refresher() {
    failover(Cloud::Cloudscale);
}

/// The same scenarios against the Exoscale mock: "points at" means the
/// Elastic IP is attached to the MASTER and to no other instance.
#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn keepalived_failover_moves_the_exoscale_elastic_ip() {
    failover(Cloud::Exoscale);
}

/// Hetzner: the assign is an action the mock completes only after a few
/// polls, so "points at" is reached later than on cloudscale.
#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn keepalived_failover_moves_the_hetzner_floating_ip() {
    failover(Cloud::Hetzner);
}

/// DigitalOcean: an action to poll, and a 422 for an address already on
/// the droplet.
#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn keepalived_failover_moves_the_digitalocean_reserved_ip() {
    failover(Cloud::DigitalOcean);
}

/// AWS, an Elastic IP: read first (a remap may be billed), then
/// AssociateAddress, signed with SigV4.
#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn keepalived_failover_moves_the_aws_elastic_ip() {
    failover(Cloud::AwsElasticIp);
}

/// AWS, a secondary private IP: AssignPrivateIpAddresses, confirmed in
/// each node's own IMDSv2 once the asynchronous remap shows.
#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn keepalived_failover_moves_the_aws_secondary_private_ip() {
    failover(Cloud::AwsSecondaryIp);
}

fn failover(cloud: Cloud) {
    let mut lab = match Lab::for_cloud(cloud) {
        Ok(lab) => lab,
        Err(Skip(why)) => panic!("cannot run the keepalived end-to-end test: {why}"),
    };
    let mut t = Timings::default();
    let result = scenarios(&mut lab, &mut t);
    eprintln!(
        "e2e timings ({cloud:?}) after {}:\n{t}",
        secs(lab.elapsed())
    );
    if let Err(e) = result {
        // Lab's Drop prints both nodes' logs and the API's request log.
        panic!("{e}");
    }
    let t0 = Instant::now();
    drop(lab);
    eprintln!("e2e: teardown took {}", secs(t0.elapsed()));
}

fn scenarios(lab: &mut Lab, t: &mut Timings) -> Result<(), String> {
    initial(lab, t)?;
    graceful_stop(lab, t)?;
    preemption(lab, t)?;
    flaps(lab, t)?;
    sigkill(lab, t)?;
    Ok(())
}

fn io<T>(r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

fn only_refresher(lab: &mut Lab, node: &str) -> Result<i32, String> {
    match lab.node(node).refreshers().as_slice() {
        [pid] => Ok(*pid),
        other => Err(format!(
            "node {node}: expected one refresher, found {other:?}"
        )),
    }
}

/// Scenario 1: Both start as BACKUP; a (priority 150) becomes MASTER.
fn initial(lab: &mut Lab, t: &mut Timings) -> Result<(), String> {
    let t0 = Instant::now();
    io(lab.node("a").start())?;
    io(lab.node("b").start())?;
    t.note(
        "1 initial: a MASTER (VIP on a)",
        lab.wait_master("a", CONVERGE)?,
    );
    lab.wait_converged("a", CONVERGE)
        .map_err(|e| format!("1 initial: {e}"))?;
    t.note("1 initial: converged on a (from start)", t0.elapsed());
    lab.holds("a", HOLD).map_err(|e| format!("1 initial: {e}"))
}

/// Scenario 2: SIGTERM to a's keepalived: it sends STOP (floaty stops a's
/// refresher), b takes over.
fn graceful_stop(lab: &mut Lab, t: &mut Timings) -> Result<(), String> {
    let refresher = only_refresher(lab, "a")?;
    let t0 = Instant::now();
    lab.node("a").terminate();
    lab.wait_master("b", CONVERGE)
        .map_err(|e| format!("2 stop a: {e}"))?;
    t.note("2 stop a: failover, VIP on b (from SIGTERM)", t0.elapsed());
    io(lab.node("a").wait_exit(Duration::from_secs(10)))?;
    t.note("2 stop a: keepalived a exited (from SIGTERM)", t0.elapsed());
    // keepalived waits for the STOP call (up to 1 s) before it exits.
    if !wait_until(Duration::from_millis(500), Duration::from_millis(5), || {
        !alive(refresher)
    }) {
        return Err(format!(
            "2 stop a: a's refresher {refresher} outlived a's keepalived (STOP did not stop it)"
        ));
    }
    if !lab
        .node("a")
        .floaty_log()
        .contains("notify INSTANCE VI_1 STOP")
    {
        return Err("2 stop a: keepalived a never called floaty with STOP".into());
    }
    lab.wait_converged("b", CONVERGE)
        .map_err(|e| format!("2 stop a: {e}"))?;
    t.note("2 stop a: converged on b (from SIGTERM)", t0.elapsed());
    lab.holds("b", HOLD).map_err(|e| format!("2 stop a: {e}"))
}

/// Scenario 3: a comes back and preempts b: BACKUP on b must stop b's refresher.
fn preemption(lab: &mut Lab, t: &mut Timings) -> Result<(), String> {
    let refresher = only_refresher(lab, "b")?;
    let t0 = Instant::now();
    io(lab.node("a").start())?;
    lab.wait_master("a", CONVERGE)
        .map_err(|e| format!("3 restart a: {e}"))?;
    t.note(
        "3 restart a: preempted, VIP on a (from start)",
        t0.elapsed(),
    );
    lab.wait_converged("a", CONVERGE)
        .map_err(|e| format!("3 restart a: {e}"))?;
    t.note("3 restart a: converged on a (from start)", t0.elapsed());
    if alive(refresher) {
        return Err(format!("3 restart a: b's refresher {refresher} still runs"));
    }
    lab.holds("a", HOLD)
        .map_err(|e| format!("3 restart a: {e}"))
}

/// Scenario 4: Stop and start a three times in quick succession, without waiting
/// for VRRP to settle in between: notify calls overlap and race.
fn flaps(lab: &mut Lab, t: &mut Timings) -> Result<(), String> {
    let t0 = Instant::now();
    io(lab.node("a").flap())?;
    t.note("4 flaps: three stop/start cycles of a took", t0.elapsed());
    let t1 = Instant::now();
    lab.wait_converged("a", CONVERGE)
        .map_err(|e| format!("4 flaps: {e}"))?;
    t.note("4 flaps: converged on a (from last start)", t1.elapsed());
    lab.holds("a", HOLD).map_err(|e| format!("4 flaps: {e}"))
}

/// Scenario 5: SIGKILL every keepalived process of a: no STOP is sent, the VIP
/// stays on a's interface; a's refresher must notice by itself, b takes
/// over after the master-down interval.
fn sigkill(lab: &mut Lab, t: &mut Timings) -> Result<(), String> {
    let refresher = only_refresher(lab, "a")?;
    let t0 = Instant::now();
    lab.node("a").kill();
    if !wait_until(
        WATCH + Duration::from_secs(2),
        Duration::from_millis(5),
        || !alive(refresher),
    ) {
        return Err(format!(
            "5 kill a: a's refresher {refresher} still runs {} after keepalived was SIGKILLed",
            secs(t0.elapsed())
        ));
    }
    let gone = t0.elapsed();
    t.note("5 kill a: a's refresher exited (from SIGKILL)", gone);
    if gone > WATCH + Duration::from_millis(500) {
        return Err(format!(
            "5 kill a: a's refresher took {} to notice keepalived died (promised {})",
            secs(gone),
            secs(WATCH)
        ));
    }
    lab.wait_master("b", CONVERGE)
        .map_err(|e| format!("5 kill a: {e}"))?;
    t.note("5 kill a: failover, VIP on b (from SIGKILL)", t0.elapsed());
    lab.wait_converged("b", CONVERGE)
        .map_err(|e| format!("5 kill a: {e}"))?;
    t.note("5 kill a: converged on b (from SIGKILL)", t0.elapsed());
    lab.holds("b", HOLD).map_err(|e| format!("5 kill a: {e}"))
}
