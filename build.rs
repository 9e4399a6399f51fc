//! Decides at build time which of the behaviour tests can run on this
//! host, so that one that cannot is reported by libtest as *ignored*
//! (`#[cfg_attr(not(CFG), ignore = "...")]` on the test) instead of
//! passing by returning early. libtest has no run-time skip; this is the
//! next best thing, and it keeps the counts honest.
//!
//! - `floaty_root_tests`: the build runs as root (effective UID 0) and both
//!   `keepalived` and `ip` (iproute2) are found on PATH or in /usr/sbin,
//!   /sbin. The tests that build network namespaces and run real keepalived
//!   daemons in them need all three.
//! - `floaty_systemd_analyze_tests`: `systemd-analyze` is installed (where
//!   the unit test looks for it: /usr/bin or /bin).
//! - `floaty_promtool_tests`: `promtool` (Debian's `prometheus` package)
//!   is in /usr/bin or /bin, to check the metrics files and alert rules.
//!
//! A test that runs with its cfg set still checks its preconditions and
//! fails (not passes) when one is missing after all.
//!
//! When is this decided again? Cargo reruns this script when this file or
//! PATH changes, when a tool it found changes (upgraded, removed), and,
//! while a tool is missing, when a system directory it would be installed
//! in changes (`SYSTEM_DIRS`): installing keepalived later (apt-get) adds
//! `keepalived` to /usr/sbin, which changes that directory's modification
//! time (whatever the mtime dpkg gives the file itself), so the next
//! `cargo test` reruns this script and builds the root tests as runnable
//! (recompiling the floaty package, whose targets all get the cfg).
//! Other PATH directories are searched but not watched (Cargo would scan
//! each one whole on every build, and PATH may hold big trees): a tool
//! dropped into one of those later needs `touch build.rs`. Cargo cannot
//! see a change of user either: building as a user and then running `sudo
//! cargo test` reruns this only because sudo changes USER and SUDO_UID,
//! listed below; after `su` or `setpriv`, `touch build.rs`.

use std::env;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const ROOT_TESTS: &str = "floaty_root_tests";
const SYSTEMD_ANALYZE_TESTS: &str = "floaty_systemd_analyze_tests";
const PROMTOOL_TESTS: &str = "floaty_promtool_tests";
/// Where packages install the tools: watched while one is missing.
const SYSTEM_DIRS: [&str; 6] = [
    "/usr/sbin",
    "/sbin",
    "/usr/local/sbin",
    "/usr/bin",
    "/bin",
    "/usr/local/bin",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["PATH", "USER", "SUDO_UID"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    for cfg in [ROOT_TESTS, SYSTEMD_ANALYZE_TESTS, PROMTOOL_TESTS] {
        println!("cargo:rustc-check-cfg=cfg({cfg})");
    }

    let root = effective_uid() == Some(0);
    let path_dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    let sbin = [PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")];
    let search: Vec<PathBuf> = path_dirs
        .into_iter()
        .filter(|d| d.is_absolute())
        .chain(sbin)
        .collect();
    let keepalived = find("keepalived", &search);
    let ip = find("ip", &search);
    if root && keepalived && ip {
        println!("cargo:rustc-cfg={ROOT_TESTS}");
    }

    let bin = [PathBuf::from("/usr/bin"), PathBuf::from("/bin")];
    if find("systemd-analyze", &bin) {
        println!("cargo:rustc-cfg={SYSTEMD_ANALYZE_TESTS}");
    }
    if find("promtool", &bin) {
        println!("cargo:rustc-cfg={PROMTOOL_TESTS}");
    }
}

/// The effective UID of this build, from the `Uid:` line of
/// /proc/self/status (real, effective, saved, filesystem).
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Whether an executable `tool` is in one of `dirs`, with the
/// `rerun-if-changed` lines that notice it changing or appearing: the
/// file when found, the system directories among `dirs` otherwise.
fn find(tool: &str, dirs: &[PathBuf]) -> bool {
    match dirs.iter().map(|d| d.join(tool)).find(|p| executable(p)) {
        Some(found) => {
            println!("cargo:rerun-if-changed={}", found.display());
            true
        }
        None => {
            let mut watched: Vec<&PathBuf> = Vec::new();
            for dir in dirs {
                let system = SYSTEM_DIRS.iter().any(|s| dir.as_os_str() == *s);
                if system && dir.is_dir() && !watched.contains(&dir) {
                    println!("cargo:rerun-if-changed={}", dir.display());
                    watched.push(dir);
                }
            }
            false
        }
    }
}

fn executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
