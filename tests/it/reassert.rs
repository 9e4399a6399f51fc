//! Split-brain repair through the binary: `MASTER_RX_LOWER_PRI` (the
//! notify call `notify_master_rx_lower_pri` makes, or the FIFO line) makes
//! the running refresher read the address at once and take it back when
//! it is elsewhere, long before its refresh-interval (1h here).

use std::fs;
use std::time::Duration;

use crate::fifo::{holder, mkfifo, send, writer, Daemon};
use crate::support::*;

const T: Duration = Duration::from_secs(10);
const VIP: &str = "192.0.2.10";
const REASSERT: [&str; 3] = ["INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI"];
/// The refresher's line when a burst starts.
const BURST: &str = "re-asserting the address";
/// Absence of a reaction has no event to wait on: this long without one
/// counts as none (the reaction, when there is one, takes milliseconds).
const HOLD: Duration = Duration::from_millis(500);

/// Whether `pid` has a SIGUSR1 handler (`SigCgt`): a refresher installs it
/// before it reports running.
fn catches_usr1(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let m = s.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
            u64::from_str_radix(m.trim(), 16).ok()
        })
        .is_some_and(|mask| mask & (1 << (libc::SIGUSR1 - 1)) != 0)
}

/// A notify-mode refresher of VI_1 that has pointed the address here;
/// its PID.
fn refresher_pointed_here(mock: &mock_cloud::Cloudscale, w: &World) -> i32 {
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        mock.wait_for(T, |s| s.server_of(VIP) == Some(SERVER_A)),
        "{}",
        w.log_text()
    );
    let pids = w.refreshers();
    assert_eq!(pids.len(), 1, "{}", w.log_text());
    assert!(wait_until(T, || catches_usr1(pids[0])));
    pids[0]
}

/// floaty processes of this world other than `except`: a call must not
/// leave one behind.
fn floaty_processes(w: &World, except: &[i32]) -> Vec<i32> {
    let config = w.config.to_string_lossy().into_owned();
    pids()
        .into_iter()
        .filter(|p| !except.contains(p) && alive(*p))
        .filter(|p| cmdline(*p).contains(&config))
        .collect()
}

#[test]
fn a_lower_priority_call_makes_the_refresher_take_the_address_back() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let pid = refresher_pointed_here(&mock, &w);
    // The loser of a split brain moved it, behind this refresher's back.
    mock.add_floating_ip(VIP, Some(SERVER_B));
    let before = mock.requests().len();

    let out = w.notify(&REASSERT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        mock.wait_for(T, |s| s.server_of(VIP) == Some(SERVER_A)),
        "the refresher did not take the address back; log:\n{}",
        w.log_text()
    );
    // A read first (the address is most likely here), then the write.
    let methods: Vec<String> = mock.requests()[before..]
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods[..2], ["GET", "PATCH"], "{methods:?}");
    assert!(w.wait_log("re-pointed here", T), "{}", w.log_text());
    assert_eq!(w.log_text().matches(BURST).count(), 1, "{}", w.log_text());
    // The same refresher, still running: the call stopped nothing.
    assert_eq!(w.refreshers(), [pid]);
    assert_eq!(floaty_processes(&w, &[pid]), Vec::<i32>::new());
    w.backup_ends_the_refresher();
}

#[test]
fn a_sync_group_members_refresher_is_found_by_its_instance_name() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let out = w.notify(&["GROUP", "G1", "MASTER", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = ["192.0.2.10", "192.0.2.20", "192.0.2.21"];
    assert!(mock.wait_for(T, |s| all
        .iter()
        .all(|ip| s.server_of(ip) == Some(SERVER_A))));
    let mut pids = w.refreshers();
    pids.sort_unstable();
    assert_eq!(pids.len(), 2);
    assert!(wait_until(T, || pids.iter().all(|p| catches_usr1(*p))));
    mock.add_floating_ip("192.0.2.21", Some(SERVER_B));
    let before = mock.requests().len();

    // keepalived names the member, quoted as keepalived.conf has it.
    let out = w.notify(&["INSTANCE", "'VI.b'", "MASTER_RX_LOWER_PRI", "100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        mock.wait_for(T, |s| s.server_of("192.0.2.21") == Some(SERVER_A)),
        "{}",
        w.log_text()
    );
    // Only 'VI.b''s refresher was asked: no request for VI_1's address.
    let paths: Vec<String> = mock.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(
        paths.iter().all(|p| !p.ends_with("192.0.2.10")),
        "{paths:?}"
    );
    let mut now = w.refreshers();
    now.sort_unstable();
    assert_eq!(now, pids, "both refreshers still run");
}

#[test]
fn a_lower_priority_call_with_no_refresher_starts_nothing() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI", "150"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no refresher runs for this instance"),
        "{}",
        stderr(&out)
    );
    assert!(w.refreshers().is_empty());
    assert!(
        !w.lock_path("VI_1").exists(),
        "the call created (took) the lock"
    );
    assert_eq!(floaty_processes(&w, &[]), Vec::<i32>::new());
    assert_eq!(mock.requests(), [], "the call talked to the API");
}

#[test]
fn a_lower_priority_call_with_a_bad_config_exits_2_and_signals_nothing() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let pid = refresher_pointed_here(&mock, &w);
    mock.add_floating_ip(VIP, Some(SERVER_B));
    let good = fs::read_to_string(&w.config).unwrap();
    fs::write(&w.config, format!("{good}refresh-intervall: 1h\n")).unwrap();
    let before = mock.requests().len();

    let out = w.notify(&REASSERT);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("refresh-intervall"), "{err}");
    std::thread::sleep(HOLD);
    assert_eq!(mock.requests().len(), before, "the refresher was poked");
    assert!(!w.log_text().contains(BURST), "{}", w.log_text());
    assert_eq!(w.refreshers(), [pid], "the refresher must keep running");

    // The same call with the config fixed does reach it: the check above
    // would have seen a poke.
    fs::write(&w.config, good).unwrap();
    assert!(w.notify(&REASSERT).status.success());
    assert!(
        mock.wait_for(T, |s| s.server_of(VIP) == Some(SERVER_A)),
        "{}",
        w.log_text()
    );
}

#[test]
fn a_lower_priority_call_for_an_unknown_instance_exits_2() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let out = w.notify(&["INSTANCE", "VI_9", "MASTER_RX_LOWER_PRI"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no vrrp_instance `VI_9`"),
        "{}",
        stderr(&out)
    );
    let out = w.notify(&["GROUP", "G1", "MASTER_RX_LOWER_PRI"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(mock.requests(), []);
}

#[test]
fn the_fifo_daemon_takes_the_address_back_on_a_lower_priority_line() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let fifo = w.path("keepalived.fifo");
    mkfifo(&fifo);
    let mut fw = writer(&fifo);
    let d = Daemon::start(&w, &fifo);

    // No refresher runs yet: the line changes nothing. keepalived's
    // priority-change lines are skipped quietly. The BACKUP line after
    // them shows they were all read.
    send(
        &mut fw,
        &[
            "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 150",
            "INSTANCE \"VI_1\" MASTER_PRIORITY 100",
            "INSTANCE \"VI_1\" BACKUP_PRIORITY 90",
            "INSTANCE \"VI_1\" BACKUP 150",
        ],
    );
    assert!(w.wait_log("keepalived event", T), "{}", w.log_text());
    assert!(
        !w.log_text().contains("FIFO: skipped a line"),
        "{}",
        w.log_text()
    );
    assert_eq!(mock.requests(), []);

    send(&mut fw, &["INSTANCE \"VI_1\" MASTER 150"]);
    assert!(mock.wait_for(T, |s| s.server_of(VIP) == Some(SERVER_A)));
    assert!(wait_until(T, || holder(&w, "VI_1") == Some(d.pid())));
    mock.add_floating_ip(VIP, Some(SERVER_B));
    let before = mock.requests().len();

    send(&mut fw, &["INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 150"]);
    assert!(
        mock.wait_for(T, |s| s.server_of(VIP) == Some(SERVER_A)),
        "the daemon did not take the address back; log:\n{}",
        w.log_text()
    );
    let methods: Vec<String> = mock.requests()[before..]
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods[..2], ["GET", "PATCH"], "{methods:?}");
    assert_eq!(w.log_text().matches(BURST).count(), 1, "{}", w.log_text());

    // The notify call, when the daemon holds the lock, leaves it alone.
    let out = w.notify(&REASSERT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("the FIFO daemon refreshes this instance"));
    assert_eq!(holder(&w, "VI_1"), Some(d.pid()));
}

#[test]
fn a_prober_is_not_poked_and_the_refresher_it_becomes_is() {
    let mock = mock_cloudscale();
    let w = World::new(
        &mock.url(),
        SERVER_A,
        "track-file-template: health/%s.health\nhealth-interval: 1h\n",
    );
    let health = w.path("health");
    fs::create_dir(&health).unwrap();
    fs::set_permissions(&health, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert!(w.notify(&["INSTANCE", "VI_1", "BACKUP"]).status.success());
    let prober = w.refreshers();
    assert_eq!(prober.len(), 1, "{}", w.log_text());
    // A prober writes nothing: nothing to re-assert, nothing signalled.
    let out = w.notify(&REASSERT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no refresher runs for this instance"),
        "{}",
        stderr(&out)
    );

    // MASTER hands the instance to the prober, which refreshes from now on.
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(mock.wait_for(T, |s| s.server_of(VIP) == Some(SERVER_A)));
    assert_eq!(w.refreshers(), prober, "the prober took over");
    mock.add_floating_ip(VIP, Some(SERVER_B));
    let out = w.notify(&REASSERT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        mock.wait_for(T, |s| s.server_of(VIP) == Some(SERVER_A)),
        "the refresher the prober became did not take the address back; log:\n{}",
        w.log_text()
    );
    assert_eq!(w.log_text().matches(BURST).count(), 1, "{}", w.log_text());
}
