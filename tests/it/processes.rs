//! Processes and files: the lock file's mode, symlinks and missing
//! directories through the binary, and many overlapping notify calls.
//! (kill -9 and PID reuse are in notify.rs.)

use crate::support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

#[test]
fn the_lock_file_is_created_0600_whatever_the_umask() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    // keepalived runs notify programs with umask 0177; a sloppy 0 must not
    // widen the mode either.
    let config = w.config.to_str().unwrap().to_string();
    let log = fs::File::create(w.path("umask.log")).unwrap();
    let status = Command::new("sh")
        .args(["-c", "umask 0; exec \"$0\" \"$@\""])
        .arg(bin())
        .args([config.as_str(), "INSTANCE", "VI_1", "BACKUP"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .unwrap();
    assert!(status.success());
    let mode = fs::metadata(w.lock_path("VI_1"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}

#[test]
fn a_symlink_at_the_lock_path_is_refused_and_not_followed() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let victim = w.path("victim");
    fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, w.lock_path("VI_1")).unwrap();
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(!errors.is_empty(), "{err}");
    for line in &errors {
        assert!(
            line.contains(&format!(
                "lock file {} is a symbolic link; floaty never follows one",
                w.lock_path("VI_1").display()
            )),
            "{err}"
        );
    }
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(w.refreshers().is_empty());
    assert!(mock.requests().is_empty());
}

/// A missing lock directory whose parent is safe is made on first use
/// (`/run` is a tmpfs emptied at boot, so the default `/run/floaty` must
/// be); one that cannot be made is found at run time (exit 1), not when the
/// config is loaded, so `--check` on a build host does not fail for it.
#[test]
fn a_missing_lock_directory_is_made_or_one_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    fs::remove_dir(w.path("lock")).unwrap();
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = fs::metadata(w.path("lock")).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o755);
    w.backup_ends_the_refresher();

    let deeper = w.path("gone/deeper");
    let yaml = fs::read_to_string(&w.config).unwrap().replace(
        &format!("{}/lock/", w.dir.path().display()),
        &format!("{}/", deeper.display()),
    );
    fs::write(&w.config, yaml).unwrap();
    let requests = mock.requests().len();
    let out = w.notify(&["INSTANCE", "VI_1", "MASTER"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let want = format!(
        "lock directory {} does not exist and cannot be created",
        deeper.display()
    );
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(
        !errors.is_empty() && errors.iter().all(|l| l.contains(&want)),
        "{err}"
    );
    assert_eq!(mock.requests().len(), requests);
    let out = w.run(&["--check", w.config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Live (not zombie) processes started from this World's config: the
/// refreshers, whatever the lock files say.
fn floaty_processes(w: &World) -> Vec<i32> {
    let needle = w.config.to_string_lossy().into_owned();
    pids()
        .into_iter()
        .filter(|&pid| cmdline(pid).contains(&needle) && alive(pid))
        .collect()
}

/// 20 MASTER/BACKUP calls for one instance, each started while the
/// previous ones still run, as keepalived does when VRRP flaps. They reach
/// the lock in any order; the last one started decides: exactly one
/// refresher when it was MASTER, none when BACKUP, none left unrecorded.
/// (Without the lock file's ticket, 13 of 20 such runs ended wrong.)
#[test]
fn twenty_overlapping_alternations_end_in_the_last_state() {
    let mock = mock_cloudscale();
    let w = World::new(&mock.url(), SERVER_A, "");
    let config = w.config.to_str().unwrap().to_string();
    for last in ["BACKUP", "MASTER", "BACKUP", "MASTER"] {
        let mut calls: Vec<Child> = Vec::new();
        for i in 0..20 {
            let state = match (i % 2 == 1, last) {
                (true, s) => s,
                (false, "MASTER") => "BACKUP",
                (false, _) => "MASTER",
            };
            let log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&w.log)
                .unwrap();
            calls.push(
                Command::new(bin())
                    .args([
                        "--log-target",
                        "stderr",
                        "-v",
                        &config,
                        "INSTANCE",
                        "VI_1",
                        state,
                    ])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .unwrap(),
            );
        }
        for mut c in calls {
            let status = c.wait().unwrap();
            assert!(status.success(), "{status}: {}", w.log_text());
        }
        let want = usize::from(last == "MASTER");
        let recorded = w.refreshers();
        assert_eq!(recorded.len(), want, "last {last}: {}", w.log_text());
        assert_eq!(
            floaty_processes(&w),
            recorded,
            "a refresher the lock file does not name"
        );
    }
    assert!(
        w.log_text().contains("this event is outdated"),
        "{}",
        w.log_text()
    );
}
