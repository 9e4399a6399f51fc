//! Split-brain repair with the real keepalived pair: a one-way partition
//! makes b MASTER while a stays MASTER (a still hears b, b no longer hears
//! a), and b's refresher moves the address to b. keepalived tells a only
//! through `MASTER_RX_LOWER_PRI` (and, once the partition heals, not even
//! a new MASTER event: keepalived#1884), so with a refresh-interval of 1h
//! on both nodes nothing but that event can bring the address back to a.
//! It must come back, and stay once the partition healed; how long it took
//! is printed (docs/PERFORMANCE.md), never asserted.
//!
//! Needs root, `ip` and `keepalived`: ignored when the build found them
//! missing (build.rs), failing when they are missing at run time.

use std::time::{Duration, Instant};

use crate::pair::lab::{secs, wait_until, Lab, Skip};
use crate::support::{SERVER_A, SERVER_B};

const CONVERGE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(25);
/// Longer than a burst's read period (2 s): a refresher still fighting
/// over the address after the heal would show.
const HOLD: Duration = Duration::from_millis(2500);
/// The refresher's line when MASTER_RX_LOWER_PRI starts a burst.
const BURST: &str = "re-asserting the address";

#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn a_partition_heal_brings_the_address_back_in_notify_mode() {
    run(Mode::Notify);
}

#[test]
#[cfg_attr(not(floaty_root_tests), ignore = "needs root, keepalived and ip")]
fn a_partition_heal_brings_the_address_back_in_fifo_mode() {
    run(Mode::Fifo);
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Notify,
    Fifo,
}

fn run(mode: Mode) {
    let mut lab = match Lab::new() {
        Ok(lab) => lab,
        Err(Skip(why)) => panic!("cannot run the partition end-to-end test: {why}"),
    };
    if let Err(e) = scenario(&mut lab, mode) {
        panic!("{e}"); // Lab's Drop prints both nodes' logs.
    }
}

/// When the mock got the first PATCH moving the VIP to `server` after `since`.
fn patched_to(lab: &Lab, server: &str, since: Instant) -> Option<Instant> {
    lab.mock
        .requests()
        .iter()
        .find(|r| r.method == "PATCH" && r.at >= since && r.body.contains(server))
        .map(|r| r.at)
}

fn scenario(lab: &mut Lab, mode: Mode) -> Result<(), String> {
    let e = |e: std::io::Error| e.to_string();
    for name in ["a", "b"] {
        let node = lab.node(name);
        node.set_refresh_interval("1h").map_err(e)?;
        if let Mode::Notify = mode {
            node.notify_on_lower_priority().map_err(e)?;
        }
    }
    if let Mode::Fifo = mode {
        crate::pair::fifo_e2e::use_fifo(lab, false);
    }
    lab.node("a").start().map_err(e)?;
    lab.node("b").start().map_err(e)?;
    lab.wait_converged("a", CONVERGE)?;

    let a_addr = lab.node("a").addr.clone();
    let partitioned = Instant::now();
    lab.node("b").partition_from(&a_addr).map_err(e)?;
    if !wait_until(CONVERGE, POLL, || lab.masters() == ["a", "b"]) {
        return Err(format!(
            "the partition made no split brain: masters {:?}",
            lab.masters()
        ));
    }
    let split = partitioned.elapsed();
    // b's refresher moves the address: the split brain the cloud sees.
    if !lab.mock.wait_for(CONVERGE, |s| {
        s.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.at >= partitioned && r.body.contains(SERVER_B))
    }) {
        return Err("b, MASTER too, never moved the address".into());
    }
    let moved = patched_to(lab, SERVER_B, partitioned).ok_or("b's PATCH vanished")?;
    // Only MASTER_RX_LOWER_PRI can tell a (refresh-interval 1h).
    let back = lab.mock.wait_for(CONVERGE, |s| {
        s.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.at > moved && r.body.contains(SERVER_A))
    });
    if !back {
        return Err(format!(
            "a never took the address back during the partition (API: {:?})",
            lab.api_points_to()
        ));
    }
    let taken_back = patched_to(lab, SERVER_A, moved).ok_or("a's PATCH vanished")?;
    let log = lab.node("a").floaty_log();
    if !log.contains(BURST) {
        return Err(format!("a's floaty never logged `{BURST}`"));
    }

    let at_heal = lab.api_points_to();
    lab.node("b").heal_partition(&a_addr).map_err(e)?;
    let converged = lab.wait_converged("a", CONVERGE)?;
    lab.holds("a", HOLD)?;
    eprintln!(
        "partition ({mode:?} mode): split brain {} after the partition; b's write -> a's write back: {}; \
         heal -> converged on a: {} (the API pointed at {} at the heal)",
        secs(split),
        secs(taken_back.saturating_duration_since(moved)),
        secs(converged),
        at_heal.unwrap_or("nothing"),
    );
    Ok(())
}
