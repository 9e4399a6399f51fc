//! `floaty --status` on two real keepalived nodes: what each node's
//! refresher or notify call recorded, judged with the plugin's exit codes
//! as keepalived moves the address.

use std::time::Duration;

use crate::pair::lab::{Lab, Skip, INSTANCE};
use crate::support::{alive, promtool_check_metrics, wait_until};

const CONVERGE: Duration = Duration::from_secs(15);

#[test]
#[cfg_attr(
    not(all(floaty_root_tests, floaty_promtool_tests)),
    ignore = "needs root, keepalived, ip and promtool"
)]
fn status_follows_a_real_keepalived_pair() {
    let mut lab = match Lab::new() {
        Ok(lab) => lab,
        Err(Skip(why)) => panic!("cannot run the status test: {why}"),
    };
    if let Err(e) = scenario(&mut lab) {
        panic!("{e}\n{}", lab.report());
    }
}

fn scenario(lab: &mut Lab) -> Result<(), String> {
    for n in ["a", "b"] {
        lab.node(n).start().map_err(|e| e.to_string())?;
    }
    lab.wait_converged("a", CONVERGE)?;
    // a: MASTER, its refresher has pointed the address here; b: BACKUP
    // (its BACKUP call recorded that), nothing to refresh.
    for n in ["a", "b"] {
        if !wait_until(CONVERGE, || lab.node(n).status(&[INSTANCE]).0 == Some(0)) {
            return Err(format!(
                "{n} never OK: {:?}",
                lab.node(n).status(&[INSTANCE])
            ));
        }
    }
    let (_, a) = lab.node("a").status(&[INSTANCE]);
    if !a.starts_with("VI_1: OK - MASTER") || !a.contains("points here") {
        return Err(format!("a's status: {a}"));
    }
    let (_, b) = lab.node("b").status(&[INSTANCE]);
    if !b.starts_with("VI_1: OK - BACKUP") || !b.contains("no refresher") {
        return Err(format!("b's status: {b}"));
    }
    // a's refresher dies behind keepalived's back: a is MASTER without one.
    for pid in lab.node("a").refreshers() {
        unsafe { libc::kill(pid, libc::SIGKILL) };
        if !wait_until(CONVERGE, || !alive(pid)) {
            return Err(format!("refresher {pid} did not die"));
        }
    }
    let (code, a) = lab.node("a").status(&[INSTANCE]);
    if code != Some(2) || !a.contains("MASTER without a refresher") {
        return Err(format!("a without its refresher: {code:?} {a}"));
    }
    // keepalived on a stops: b takes over and is OK once it has written.
    lab.node("a").stop().map_err(|e| e.to_string())?;
    lab.wait_converged("b", CONVERGE)?;
    if !wait_until(CONVERGE, || lab.node("b").status(&[INSTANCE]).0 == Some(0)) {
        return Err(format!(
            "b as MASTER: {:?}",
            lab.node("b").status(&[INSTANCE])
        ));
    }
    let (_, b) = lab.node("b").status(&[INSTANCE]);
    if !b.starts_with("VI_1: OK - MASTER") {
        return Err(format!("b's status: {b}"));
    }
    // Every metrics file the pair wrote is valid text format.
    for n in ["a", "b"] {
        let file = lab.node(n).dir.join("floaty_VI_1.prom");
        promtool_check_metrics(&file)?;
    }
    Ok(())
}
