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
        for command in [
            "cloudscale",
            "metadata",
            "exoscale",
            "exoscale-metadata",
            "hetzner",
            "hetzner-metadata",
            "digitalocean",
            "digitalocean-metadata",
            "aws",
        ] {
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
        (
            &["hetzner", "--server", "lb-a"],
            "--server: not an id: lb-a",
        ),
        (
            &["digitalocean", "--reserved-ip", "203.0.113.1=x"],
            "--reserved-ip: not an id: x",
        ),
        (
            &["aws", "--instance", "i-1=eni-1=10.0.0.1"],
            "--instance: not ID=ENI=MAC=PRIVATE-IP",
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
fn a_missing_required_flag_is_a_failure_not_a_usage_error() {
    for (args, needle) in [
        (&["hetzner"][..], "hetzner needs --token"),
        (
            &["digitalocean", "--droplet", "1"],
            "digitalocean needs --token",
        ),
        (&["hetzner-metadata"], "hetzner-metadata needs --id"),
        (
            &["digitalocean-metadata"],
            "digitalocean-metadata needs --id",
        ),
        (&["aws", "--secret", "s"], "aws needs --access-key-id"),
        (
            &[
                "aws",
                "--access-key-id",
                "k",
                "--secret",
                "s",
                "--elastic-ip",
                "203.0.113.5=eipalloc-1=i-9",
            ],
            "--elastic-ip 203.0.113.5: no --instance i-9",
        ),
    ] {
        let out = run(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end(), format!("floaty-mock-cloud: {needle}"));
        assert!(out.stdout.is_empty(), "{args:?}");
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

/// Starts the binary with `args`; its first line (the URL) and the child,
/// which ends when its stdin is dropped.
fn spawn(args: &[&str]) -> (String, std::process::Child) {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn");
    let mut url = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut url).expect("url");
    (url.trim_end().to_string(), child)
}

/// Starts the binary with `args`; its first `n` lines and the child.
fn spawn_lines(args: &[&str], n: usize) -> (Vec<String>, std::process::Child) {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(lines.next().and_then(Result::ok).unwrap_or_default());
    }
    (out, child)
}

/// One raw request against the host and port of `url`: (status, body).
fn call(url: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use std::io::{Read, Write};
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// `GET path` against the host and port of `url`: (status, body).
fn get(url: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    let auth = auth.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    s.write_all(format!("GET {path} HTTP/1.1\r\nConnection: close\r\n{auth}\r\n").as_bytes())
        .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn stop(mut child: std::process::Child) {
    drop(child.stdin.take());
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}

#[test]
fn hetzner_serves_its_api_base_and_state() {
    let (url, child) = spawn(&[
        "hetzner",
        "--token",
        "t",
        "--read-only-token",
        "ro",
        "--server",
        "3000000001=lb-a",
        "--floating-ip",
        "203.0.113.1=3000000001",
        "--floating-ip",
        "2001:db8:1::/64",
    ]);
    let (state, floating_ips, readonly) = (
        get(&url, "/_mock/state", None),
        get(&url, "/v1/floating_ips", Some("t")),
        get(&url, "/v1/servers/3000000001", Some("ro")),
    );
    stop(child);
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/v1"),
        "{url}"
    );
    assert_eq!(state.0, 200);
    let state: serde_json::Value = serde_json::from_str(&state.1).expect("json");
    assert_eq!(
        state,
        serde_json::json!({"203.0.113.1": 3_000_000_001_u64, "2001:db8:1::/64": null})
    );
    assert_eq!(floating_ips.0, 200);
    assert!(
        floating_ips.1.contains(r#""total_entries":2"#),
        "{}",
        floating_ips.1
    );
    assert_eq!(readonly.0, 200);
    assert!(readonly.1.contains(r#""name":"lb-a""#), "{}", readonly.1);
}

#[test]
fn digitalocean_serves_its_api_base_and_state() {
    let (url, child) = spawn(&[
        "digitalocean",
        "--token",
        "t",
        "--droplet",
        "3000000001=lb-a",
        "--reserved-ip",
        "203.0.113.2=3000000001",
        "--reserved-ip",
        "2001:db8::2",
    ]);
    let (state, one) = (
        get(&url, "/_mock/state", None),
        get(&url, "/v2/reserved_ips/203.0.113.2", Some("t")),
    );
    stop(child);
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/v2"),
        "{url}"
    );
    let state: serde_json::Value = serde_json::from_str(&state.1).expect("json");
    assert_eq!(
        state,
        serde_json::json!({"203.0.113.2": 3_000_000_001_u64, "2001:db8::2": null})
    );
    assert_eq!(one.0, 200);
    assert!(one.1.contains(r#""name":"lb-a""#), "{}", one.1);
}

#[test]
fn metadata_commands_serve_the_id() {
    for (command, path) in [
        ("hetzner-metadata", "/hetzner/v1/metadata/instance-id"),
        ("digitalocean-metadata", "/metadata/v1/id"),
    ] {
        let (url, child) = spawn(&[command, "--id", "3000000001"]);
        let answer = get(&url, path, None);
        stop(child);
        assert_eq!(answer, (200, "3000000001".to_string()), "{command}");
    }
}

#[test]
fn aws_serves_ec2_and_the_first_instances_imds() {
    let (urls, child) = spawn_lines(
        &[
            "aws",
            "--access-key-id",
            "AKIDEXAMPLE",
            "--secret",
            "s",
            "--region",
            "eu-central-1",
            "--instance",
            "i-1=eni-1=02:00:00:00:00:01=10.0.0.11",
            "--instance",
            "i-2=eni-2=02:00:00:00:00:02=10.0.0.12",
            "--elastic-ip",
            "203.0.113.5=eipalloc-1=i-1",
            "--elastic-ip",
            "203.0.113.6=eipalloc-2",
            "--secondary-ip",
            "10.0.0.100=eni-1",
            "--role",
            "floaty=ASIA1=sec=tok",
        ],
        2,
    );
    let (ec2, imds) = (urls[0].clone(), urls[1].clone());
    let state = call(&ec2, "GET", "/_mock/state", &[]);
    let unsigned = call(
        &ec2,
        "GET",
        "/?Action=DescribeAddresses&Version=2016-11-15",
        &[],
    );
    let (_, token) = call(
        &imds,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
    );
    let with = [("X-aws-ec2-metadata-token", token.as_str())];
    let id = call(&imds, "GET", "/latest/meta-data/instance-id", &with);
    let region = call(&imds, "GET", "/latest/meta-data/placement/region", &with);
    let ips = call(
        &imds,
        "GET",
        "/latest/meta-data/network/interfaces/macs/02:00:00:00:00:01/local-ipv4s",
        &with,
    );
    let role = call(
        &imds,
        "GET",
        "/latest/meta-data/iam/security-credentials/floaty",
        &with,
    );
    stop(child);
    for url in [&ec2, &imds] {
        assert!(
            url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
            "{url}"
        );
    }
    assert_ne!(ec2, imds);
    assert_eq!(state.0, 200);
    let state: serde_json::Value = serde_json::from_str(&state.1).expect("json");
    assert_eq!(
        state,
        serde_json::json!({
            "elastic_ips": {"203.0.113.5": "i-1", "203.0.113.6": null},
            "secondary_ips": {"10.0.0.100": "eni-1"},
        })
    );
    assert_eq!(unsigned.0, 403, "{}", unsigned.1);
    assert!(
        unsigned
            .1
            .contains("<Code>MissingAuthenticationToken</Code>"),
        "{}",
        unsigned.1
    );
    assert_eq!(id, (200, "i-1".to_string()));
    assert_eq!(region, (200, "eu-central-1".to_string()));
    assert_eq!(ips, (200, "10.0.0.11\n10.0.0.100".to_string()));
    assert_eq!(role.0, 200, "{}", role.1);
    assert!(role.1.contains(r#""AccessKeyId" : "ASIA1""#), "{}", role.1);
}
