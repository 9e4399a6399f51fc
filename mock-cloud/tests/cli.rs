//! The `floaty-mock-cloud` binary's command line: `--help` is an answer,
//! not an error; a usage error is one line and exit status 2.

use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_floaty-mock-cloud");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        // A pipe that is closed at once: were the mock to start serving
        // after all, it would stop at end of input instead of hanging.
        .stdin(Stdio::piped())
        .output()
        .expect("run floaty-mock-cloud")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_prints_the_usage_and_succeeds() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["cloudscale", "--help"],
        &["exoscale", "--key", "EXOk", "-h"],
    ] {
        let out = run(args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stdout.starts_with("usage:\n"), "{args:?}: {stdout}");
        for command in ["cloudscale", "metadata", "exoscale", "exoscale-metadata"] {
            assert!(
                stdout.contains(&format!("floaty-mock-cloud {command} [")),
                "{args:?}: {command} missing from {stdout}"
            );
        }
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    for (args, needle) in [
        (&["--bogus"][..], "unknown command: --bogus"),
        (&["frobnicate"], "unknown command: frobnicate"),
        (&[], "missing command"),
        (&["cloudscale", "--bogus", "1"], "unknown argument: --bogus"),
        (&["cloudscale", "--token"], "--token needs a value"),
        (
            &["cloudscale", "--floating-ip", "nope"],
            "not an address: nope",
        ),
    ] {
        let out = run(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("floaty-mock-cloud: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }
}

#[test]
fn tls_ca_out_serves_https_and_writes_the_ca() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let dir = std::env::temp_dir().join(format!("mock-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ca = dir.join("ca.pem");
    let mut child = Command::new(BIN)
        .args(["cloudscale", "--token", "t", "--tls-ca-out"])
        .arg(&ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn");
    let mut url = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut url).expect("url");
    // Closing stdin ends the mock.
    drop(child.stdin.take());
    let status = child.wait().expect("wait");
    let pem = std::fs::read_to_string(&ca).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(status.success(), "{status:?}");
}
