//! Rules through the binary: commands run on events, in event order, in
//! both modes; failures and timeouts are logged and change nothing else.

use std::fs;
use std::time::{Duration, Instant};

use crate::fifo::{mkfifo, send, writer, Daemon};
use crate::support::*;

const T: Duration = Duration::from_secs(10);

/// Rules that append `TYPE NAME STATE PRIO` to `events.txt`; the first
/// one is slow on MASTER, so a rule run out of order would show.
fn rules_yaml(w: &World) -> String {
    let out = w.path("events.txt");
    format!(
        "context:\n  out: {}\n\
         rules:\n\
         \x20 - name: slow-master\n\
         \x20   state: MASTER\n\
         \x20   exec: sleep 0.3\n\
         \x20 - name: record\n\
         \x20   exec: [sh, -c, 'echo \"$0 $1 $2 $3\" >>\"$4\"', \"{{type}}\", \"{{instance}}\", \"{{state}}\", \"{{priority}}\", \"{{context.out}}\"]\n\
         \x20 - name: vi1-only\n\
         \x20   type: INSTANCE\n\
         \x20   instance: VI_1\n\
         \x20   state: [BACKUP, FAULT]\n\
         \x20   exec: sh -c 'echo vi1 $FLOATY_STATE >>{{context.out}}; echo to-stdout; echo to-stderr >&2; exit 3'\n",
        out.display()
    )
}

fn world_with_rules() -> (mock_cloud::Cloudscale, World) {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let yml = fs::read_to_string(&w.config).unwrap();
    fs::write(&w.config, format!("{yml}{}", rules_yaml(&w))).unwrap();
    (mock, w)
}

fn recorded(w: &World) -> Vec<String> {
    fs::read_to_string(w.path("events.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn rules_fire_in_event_order_in_fifo_mode() {
    let (mock, w) = world_with_rules();
    let fifo = w.path("keepalived.fifo");
    mkfifo(&fifo);
    let mut fw = writer(&fifo);
    let _d = Daemon::start(&w, &fifo);
    send(
        &mut fw,
        &[
            "INSTANCE \"VI_1\" MASTER 150",
            "INSTANCE \"VI_1\" BACKUP 150",
            "MASTER_RX_LOWER_PRI \"VI_1\" 150",
            "GROUP \"G1\" FAULT 0",
            "INSTANCE \"'VI.b'\" MASTER 100",
            "INSTANCE \"VI_1\" FAULT 150",
        ],
    );
    let want = [
        "INSTANCE VI_1 MASTER 150",
        "INSTANCE VI_1 BACKUP 150",
        "vi1 BACKUP",
        "GROUP G1 FAULT 0",
        "INSTANCE 'VI.b' MASTER 100",
        "INSTANCE VI_1 FAULT 150",
        "vi1 FAULT",
    ];
    assert!(
        wait_until(T, || recorded(&w).len() >= want.len()),
        "{:?}\n{}",
        recorded(&w),
        w.log_text()
    );
    assert_eq!(recorded(&w), want);
    // Refreshers are not held up by the slow rule, nor stopped by the
    // failing one: 'VI.b' is MASTER and refreshed.
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.20") == Some(SERVER_A)));
    let log = w.log_text();
    assert!(log.contains("rule failed: exit status: 3"), "{log}");
    assert!(
        log.contains("to-stdout") && log.contains("to-stderr"),
        "{log}"
    );
    assert!(log.contains("rule=vi1-only"), "{log}");
}

#[test]
fn rules_fire_in_notify_mode_after_the_refresher_is_handled() {
    let (mock, w) = world_with_rules();
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER", "150"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(recorded(&w), ["INSTANCE VI_1 MASTER 150"]);
    assert_eq!(w.refreshers().len(), 1);
    assert!(mock.wait_for(T, |s| s.server_of("192.0.2.10") == Some(SERVER_A)));
    let out = w.notify(&["INSTANCE", "VI_1", "BACKUP"]);
    // The failing rule does not fail the call.
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(w.refreshers().is_empty());
    assert_eq!(
        recorded(&w),
        [
            "INSTANCE VI_1 MASTER 150",
            "INSTANCE VI_1 BACKUP ",
            "vi1 BACKUP"
        ]
    );
}

#[test]
fn a_stop_call_with_a_slow_rule_still_ends_within_a_second() {
    let mock = mock_cloudscale();
    let w = World::new(
        &mock.url(),
        SERVER_A,
        "rules:\n  - name: hangs\n    state: STOP\n    exec: sh -c 'sleep 30'\n",
    );
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    let t0 = Instant::now();
    let out = w.notify(&["INSTANCE", "VI_1", "STOP", "100"]);
    let took = t0.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    eprintln!("rules: STOP call with a hanging rule took {took:?}");
    // keepalived SIGKILLs a STOP call after 1 s.
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(w.refreshers().is_empty());
    assert!(stderr(&out).contains("rule killed"), "{}", stderr(&out));
}

#[test]
fn bad_rules_are_config_errors_before_anything_happens() {
    let mock = mock_cloudscale();
    let w = World::new(
        &mock.url(),
        SERVER_A,
        "rules:\n  - name: web\n    exec: systemctl start {context.svc}\n",
    );
    let fifo = w.path("keepalived.fifo");
    mkfifo(&fifo);
    for args in [
        vec![w.config.to_str().unwrap(), "INSTANCE", "VI_1", "MASTER"],
        vec!["--fifo", w.config.to_str().unwrap(), fifo.to_str().unwrap()],
    ] {
        let out = w.run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("rule `web`") && err.contains("line ") && err.contains("context.svc"),
            "{err}"
        );
    }
    assert!(mock.requests().is_empty());
    assert_eq!(fs::read_dir(w.path("lock")).unwrap().count(), 0);
}
