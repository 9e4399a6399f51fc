//! The notify-path benchmark behind docs/PERFORMANCE.md. Not a test: it
//! measures and reports, it asserts nothing about time.
//!
//!     cargo bench --bench notify            # release build, ~30 s
//!
//! Measures, against the local mock cloudscale API over real HTTP:
//! - exec of a MASTER notify call → first PATCH arriving at the API;
//! - handoff: a BACKUP call, from exec until it returns with the MASTER
//!   refresher gone;
//! - resident memory of an idle refresher;
//! - the same first-PATCH latency for a plain `curl` notify script.

// The tests' scaffolding; this uses only part of it.
#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

#[path = "common/stats.rs"]
mod stats;
use stats::{median, p90, rss_kib};
use support::*;

const RUNS: usize = 40;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let config = w.config.to_string_lossy().into_owned();

    let mut first_patch = Vec::new();
    let mut handoff = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..RUNS {
        let seen = mock.requests().len();
        let t0 = Instant::now();
        let status = Command::new(bin())
            .args([
                "--log-target",
                "stderr",
                &config,
                "INSTANCE",
                "VI_1",
                "MASTER",
                "150",
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run floaty");
        assert!(status.success());
        let ok = mock.wait_for(Duration::from_secs(5), |s| s.requests().len() > seen);
        assert!(ok, "no PATCH arrived");
        let at = mock.requests()[seen].at;
        first_patch.push(at.duration_since(t0).as_secs_f64() * 1000.0);
        let pid = w.refreshers()[0];
        // Idle: the first write is done; the next one is an interval away.
        if let Some(kib) = rss_kib(pid) {
            rss.push(kib as f64);
        }
        let t1 = Instant::now();
        let status = Command::new(bin())
            .args([
                "--log-target",
                "stderr",
                &config,
                "INSTANCE",
                "VI_1",
                "BACKUP",
                "150",
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run floaty");
        handoff.push(t1.elapsed().as_secs_f64() * 1000.0);
        assert!(status.success() && !alive(pid));
    }

    // The baseline: what a hand-written curl notify script costs.
    let script = w.path("curl-notify.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec curl -s -o /dev/null -X PATCH -H 'Authorization: Bearer {TOKEN}' \
             -H 'Content-Type: application/json' -d '{{\"server\":\"{SERVER_A}\"}}' \
             {}v1/floating-ips/192.0.2.10\n",
            mock.url()
        ),
    )
    .expect("write script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let mut curl = Vec::new();
    let have_curl = Command::new("curl").arg("--version").output().is_ok();
    for _ in 0..if have_curl { RUNS } else { 0 } {
        let seen = mock.requests().len();
        let t0 = Instant::now();
        let status = Command::new(&script).status().expect("run curl script");
        assert!(status.success());
        mock.wait_for(Duration::from_secs(5), |s| s.requests().len() > seen);
        let at = mock.requests()[seen].at;
        curl.push(at.duration_since(t0).as_secs_f64() * 1000.0);
    }

    println!("floaty notify benchmark, {RUNS} runs each, mock cloudscale on 127.0.0.1");
    println!("| measure | median | p90 |");
    println!("|---|---|---|");
    println!(
        "| exec MASTER call → first PATCH at the API | {:.2} ms | {:.2} ms |",
        median(&mut first_patch),
        p90(&mut first_patch)
    );
    println!(
        "| handoff: BACKUP call returns, refresher gone | {:.2} ms | {:.2} ms |",
        median(&mut handoff),
        p90(&mut handoff)
    );
    if !rss.is_empty() {
        println!(
            "| idle refresher RSS | {:.0} KiB | {:.0} KiB |",
            median(&mut rss),
            p90(&mut rss)
        );
    }
    if !curl.is_empty() {
        let c = median(&mut curl);
        println!(
            "| plain curl notify script → PATCH | {c:.2} ms | {:.2} ms |",
            p90(&mut curl)
        );
        println!();
        println!(
            "floaty / curl first-PATCH ratio (medians): {:.2}",
            median(&mut first_patch) / c
        );
    }
}
