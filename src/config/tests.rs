//! The config module's tests: what each key accepts, what it refuses and how it says so.

use super::*;

const FILE: &str = "/etc/floaty.yml";

/// No environment: a `FLOATY_*` variable set where the tests run must
/// not change what they see.
fn no_env(_: &str) -> Option<String> {
    None
}

fn ok(yaml: &str) -> Config {
    parse_with_env(yaml, Path::new(FILE), &no_env).unwrap_or_else(|e| panic!("{e}"))
}

fn err(yaml: &str) -> String {
    let e = parse_with_env(yaml, Path::new(FILE), &no_env).expect_err("should fail");
    let s = e.to_string();
    assert!(!s.contains('\n'), "not one line: {s}");
    assert!(s.starts_with(&format!("{FILE}: ")), "{s}");
    s
}

#[test]
fn a_key_spanning_lines_is_reported_on_one_line() {
    // Found by the config_yaml fuzzer: a flow-mapping key with newlines.
    let e = err("provider: cloudscale\nback-off: {multi\n\n\nplier x: 1}\n");
    assert!(e.contains("unknown key") && e.contains("\\n"), "{e}");
}

#[test]
fn defaults() {
    let c = ok("provider: cloudscale\n");
    assert_eq!(c.path, Path::new(FILE));
    assert_eq!(c.lock_file_template.as_str(), "/run/floaty/floaty.%s.lock");
    assert!(!c.lock_template_from_file);
    assert_eq!(c.lock_timeout, Duration::from_secs(10));
    assert_eq!(
        c.keepalived_config,
        Path::new("/etc/keepalived/keepalived.conf")
    );
    assert_eq!(c.keepalived_config_id, None);
    assert!(c.managed_addresses.is_empty());
    assert_eq!(c.refresh_interval, Duration::from_secs(60));
    assert_eq!(c.refresh_timeout, Duration::from_secs(10));
    assert_eq!(c.back_off, BackOff::default());
    assert_eq!(c.back_off.initial_interval, Duration::from_secs(1));
    assert_eq!(c.back_off.multiplier, 1.1);
    assert_eq!(c.back_off.max_interval, Duration::from_secs(10));
    assert_eq!(c.back_off.max_elapsed_time, None);
    assert_eq!(c.provider, ProviderKind::Cloudscale);
    assert_eq!(c.cloudscale.endpoint, "https://api.cloudscale.ch/");
    assert!(c.cloudscale.token.is_none());
    assert!(c.cloudscale.server_uuid.is_none());
    assert!(c.cloudscale.hostname_to_server_uuid.is_empty());
    assert!(c.exoscale.key.is_none() && c.exoscale.endpoint.is_none());
}

#[test]
fn exoscale_refresh_timeout_default_is_15s() {
    assert_eq!(
        ok("provider: exoscale").refresh_timeout,
        Duration::from_secs(15)
    );
    let c = ok("provider: exoscale\nrefresh-timeout: 3s\n");
    assert_eq!(c.refresh_timeout, Duration::from_secs(3));
}

#[test]
fn vshn_floaty_example_loads_unchanged() {
    let c = ok("provider: cloudscale\ncloudscale:\n  token: fake-token\nmanaged-addresses:\n  - 192.0.2.10\n");
    assert_eq!(c.cloudscale.token.as_ref().unwrap().expose(), "fake-token");
    assert_eq!(
        c.managed_addresses,
        vec!["192.0.2.10".parse::<Vip>().unwrap()]
    );
    c.run_credentials().unwrap();
}

const EVERYTHING: &str = r#"# every key
lock-file-template: "/run/floaty/%s.lock"
lock-timeout: 5s
keepalived-config: conf/keepalived.conf
keepalived-config-id: node-a
managed-addresses:
  - 192.0.2.10
  - 192.0.2.11/24
  - 2001:db8::10/64
refresh-interval: 1m30s
refresh-timeout: 20s
back-off:
  initial-interval: 500ms
  multiplier: 2
  max-interval: 1m
  max-elapsed-time: 1h
provider: cloudscale
cloudscale:
  endpoint: http://127.0.0.1:8080/api
  token: 'tok-en'
  server-uuid: 6c1c8e4e-8f2a-4b0e-9a53-3c1e8f0a2b7d
  hostname-to-server-uuid:
    node-a: 11111111-2222-3333-4444-555555555555
    node-b: "{aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee}"
exoscale:
  endpoint: https://api.exoscale.com/v1
  zone: ch-gva-2
  key: EXOabc
  secret: s3cr3t
  instance-id: 6c1c8e4e-8f2a-4b0e-9a53-3c1e8f0a2b7d
"#;

#[test]
fn every_key() {
    let c = parse(EVERYTHING, Path::new("/etc/floaty/floaty.yml")).unwrap();
    assert_eq!(c.lock_file_template.as_str(), "/run/floaty/%s.lock");
    assert_eq!(c.lock_timeout, Duration::from_secs(5));
    assert_eq!(
        c.keepalived_config,
        Path::new("/etc/floaty/conf/keepalived.conf")
    );
    assert_eq!(c.keepalived_config_id.as_deref(), Some("node-a"));
    let addrs: Vec<String> = c.managed_addresses.iter().map(|v| v.to_string()).collect();
    assert_eq!(addrs, ["192.0.2.10", "192.0.2.11/24", "2001:db8::10/64"]);
    assert_eq!(c.refresh_interval, Duration::from_secs(90));
    assert_eq!(c.refresh_timeout, Duration::from_secs(20));
    assert_eq!(
        c.back_off,
        BackOff {
            initial_interval: Duration::from_millis(500),
            multiplier: 2.0,
            max_interval: Duration::from_secs(60),
            max_elapsed_time: Some(Duration::from_secs(3600)),
        }
    );
    assert_eq!(c.provider, ProviderKind::Cloudscale);
    assert_eq!(c.cloudscale.endpoint, "http://127.0.0.1:8080/api/");
    assert_eq!(c.cloudscale.token.as_ref().unwrap().expose(), "tok-en");
    assert_eq!(
        c.cloudscale.server_uuid.unwrap().to_string(),
        "6c1c8e4e-8f2a-4b0e-9a53-3c1e8f0a2b7d"
    );
    assert_eq!(c.cloudscale.hostname_to_server_uuid.len(), 2);
    assert_eq!(
        c.cloudscale.hostname_to_server_uuid["node-b"].to_string(),
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    );
    assert_eq!(
        c.exoscale.endpoint.as_deref(),
        Some("https://api.exoscale.com/v1")
    );
    assert_eq!(c.exoscale.zone.as_deref(), Some("ch-gva-2"));
    assert_eq!(c.exoscale.key.as_ref().unwrap().expose(), "EXOabc");
    assert_eq!(c.exoscale.secret.as_ref().unwrap().expose(), "s3cr3t");
    assert!(c.exoscale.instance_id.is_some());
    // Absolute keepalived paths are kept as they are.
    let c = ok("provider: exoscale\nkeepalived-config: /x/k.conf\n");
    assert_eq!(c.keepalived_config, Path::new("/x/k.conf"));
}

#[test]
fn null_values_mean_default_and_empty_secrets_mean_missing() {
    let c = ok("provider: cloudscale\nlock-timeout:\nback-off:\ncloudscale:\n  token: ''\n  server-uuid: 00000000-0000-0000-0000-000000000000\nexoscale:\n  key: ~\n  zone: ''\nmanaged-addresses:\n");
    assert_eq!(c.lock_timeout, Duration::from_secs(10));
    assert!(c.cloudscale.token.is_none());
    assert!(c.cloudscale.server_uuid.is_none());
    assert!(c.exoscale.key.is_none() && c.exoscale.zone.is_none());
    assert!(c.managed_addresses.is_empty());
    let e = c.run_credentials().unwrap_err().to_string();
    assert_eq!(
            e,
            "/etc/floaty.yml: cloudscale.token: missing; set it to a cloudscale API token with write access (or use cloudscale.token-file or FLOATY_CLOUDSCALE_TOKEN)"
        );
}

#[test]
fn exoscale_credentials_required_unless_dry_run() {
    let c = ok("provider: exoscale\n");
    let e = c.run_credentials().unwrap_err().to_string();
    assert!(
        e.starts_with("/etc/floaty.yml: exoscale.key: missing; "),
        "{e}"
    );
    let c = ok("provider: exoscale\nexoscale:\n  key: EXO1\n");
    let e = c.run_credentials().unwrap_err().to_string();
    assert!(
        e.starts_with("/etc/floaty.yml: exoscale.secret: missing; "),
        "{e}"
    );
    ok("provider: exoscale\nexoscale:\n  key: EXO1\n  secret: x\n")
        .run_credentials()
        .unwrap();
}

#[test]
fn numeric_token_is_text_as_in_go() {
    let c = ok("provider: cloudscale\ncloudscale:\n  token: 0123456\n");
    assert_eq!(c.cloudscale.token.unwrap().expose(), "0123456");
}

#[test]
fn provider_errors() {
    assert_eq!(
        err("lock-timeout: 5s\n"),
        "/etc/floaty.yml: provider: missing; set `provider: NAME` (cloudscale, exoscale, hetzner, digitalocean or aws)"
    );
    assert!(err("provider: ''\n").contains("provider: missing"));
    let e = err("provider: gcp\n");
    assert_eq!(
            e,
            "/etc/floaty.yml: line 1, column 11: provider: \"gcp\" is not a supported provider (write cloudscale, exoscale, hetzner, digitalocean or aws)"
        );
    assert!(err("provider: Cloudscale\n").contains("did you mean `cloudscale`?"));
}

#[test]
fn uuid_error() {
    let e = err("provider: cloudscale\ncloudscale:\n  token: t\n  server-uuid: abc\n");
    assert_eq!(
            e,
            "/etc/floaty.yml: line 4, column 16: cloudscale.server-uuid: \"abc\" is not a UUID (expected 8-4-4-4-12 hex digits, e.g. 6c1c8e4e-8f2a-4b0e-9a53-3c1e8f0a2b7d)"
        );
    let e = err("provider: cloudscale\ncloudscale:\n  hostname-to-server-uuid:\n    node1: nope\n");
    assert!(
        e.contains(
            "line 4, column 12: cloudscale.hostname-to-server-uuid.node1: \"nope\" is not a UUID"
        ),
        "{e}"
    );
    let e = err("provider: exoscale\nexoscale:\n  instance-id: 1234\n");
    assert!(
        e.contains("line 3, column 16: exoscale.instance-id: \"1234\" is not a UUID"),
        "{e}"
    );
}

#[test]
fn unknown_keys() {
    let e = err("provider: cloudscale\nlock-timout: 5s\n");
    assert!(
            e.starts_with("/etc/floaty.yml: line 2, column 1: unknown key `lock-timout` (known keys: lock-file-template, lock-timeout,"),
            "{e}"
        );
    assert!(e.ends_with("; did you mean `lock-timeout`?)"), "{e}");
    let e = err("provider: cloudscale\ncloudscale:\n  tokn: abcdefgh\n");
    assert!(e.contains("line 3, column 3: unknown key `cloudscale.tokn` (known keys in `cloudscale`: endpoint, token, token-file, server-uuid, hostname-to-server-uuid; did you mean `cloudscale.token`?)"), "{e}");
    let e = err("provider: cloudscale\ntoken: abcdefgh\n");
    assert!(
        e.contains("did you mean `cloudscale.token` or `hetzner.token` or `digitalocean.token`?"),
        "{e}"
    );
    assert!(!e.contains("abcdefgh"), "{e}");
    let e = err("provider: exoscale\nback-off:\n  multiplyer: 2\n");
    assert!(e.contains("did you mean `back-off.multiplier`?"), "{e}");
    let e = err("provider: exoscale\nfrobnicate: 2\n");
    assert!(!e.contains("did you mean"), "{e}");
}

#[test]
fn duplicate_key() {
    let e = err("provider: cloudscale\nprovider: exoscale\n");
    assert_eq!(
        e,
        "/etc/floaty.yml: line 2, column 1: `provider` is set twice; keep one"
    );
    let e = err("provider: cloudscale\ncloudscale:\n  # c\n  token: abcd\n\n  'token': efgh\nexoscale: {}\n");
    assert_eq!(
        e,
        "/etc/floaty.yml: line 6, column 3: `cloudscale.token` is set twice; keep one"
    );
    let e = err("provider: cloudscale\ncloudscale: {token: a, token: b}\n");
    assert!(
        // At the second `token`, not the mapping's start: the position
        // comes from the parser's marks, flow mappings included.
        e.contains("line 2, column 24: `cloudscale.token` is set twice"),
        "{e}"
    );
}

#[test]
fn duration_errors() {
    let e = err("provider: cloudscale\nlock-timeout: 10\n");
    assert_eq!(
        e,
        "/etc/floaty.yml: line 2, column 15: lock-timeout: `10` has no unit: write 10s"
    );
    let e = err("provider: cloudscale\nrefresh-interval: 0\n");
    assert!(
        e.contains("line 2, column 19: refresh-interval: `0` is zero"),
        "{e}"
    );
    let e = err("provider: cloudscale\nrefresh-timeout: -3s\n");
    assert!(e.contains("refresh-timeout: `-3s` is negative"), "{e}");
    let e = err("provider: cloudscale\nback-off:\n  initial-interval: 0s\n");
    assert!(
        e.contains("line 3, column 21: back-off.initial-interval: `0s` is zero"),
        "{e}"
    );
    let e = err("provider: cloudscale\nback-off:\n  max-interval: 5 minutes\n");
    assert!(
        e.contains("back-off.max-interval: `5 minutes`: unknown unit"),
        "{e}"
    );
    let e = err("provider: cloudscale\nlock-timeout: [1s]\n");
    assert!(
        e.contains("lock-timeout: expected a duration like 10s, found a list"),
        "{e}"
    );
    let c = ok("provider: cloudscale\nback-off:\n  max-elapsed-time: 0\n");
    assert_eq!(c.back_off.max_elapsed_time, None);
}

#[test]
fn multiplier_errors() {
    for bad in ["0.5", "0", "-2", ".inf", ".nan"] {
        let e = err(&format!(
            "provider: cloudscale\nback-off:\n  multiplier: {bad}\n"
        ));
        assert!(
            e.contains("line 3, column 15: back-off.multiplier: ") && e.contains("at least 1"),
            "{e}"
        );
    }
    let e = err("provider: cloudscale\nback-off:\n  multiplier: fast\n");
    assert!(
        e.contains("back-off.multiplier: expected a number of at least 1"),
        "{e}"
    );
    assert_eq!(
        ok("provider: cloudscale\nback-off: {multiplier: 1}")
            .back_off
            .multiplier,
        1.0
    );
}

#[test]
fn address_errors() {
    let e = err("provider: cloudscale\nmanaged-addresses:\n  - 192.0.2.10\n  - 192.0.2.300\n");
    assert!(
        e.contains("line 4, column 5: managed-addresses[1]: `192.0.2.300` is not an IP address"),
        "{e}"
    );
    let e = err("provider: cloudscale\nmanaged-addresses: 192.0.2.10\n");
    assert!(
        e.contains("managed-addresses: expected a list, found string \"192.0.2.10\""),
        "{e}"
    );
    assert!(e.contains("one `- 192.0.2.10` line"), "{e}");
}

#[test]
fn endpoint_errors_and_normalisation() {
    let e = err("provider: cloudscale\ncloudscale:\n  endpoint: api.cloudscale.ch\n");
    assert!(
        e.contains(
            "line 3, column 13: cloudscale.endpoint: \"api.cloudscale.ch\" is not an http(s) URL"
        ),
        "{e}"
    );
    for bad in ["ftp://x/", "https://", "http:///x", "https://a b/"] {
        err(&format!(
            "provider: cloudscale\ncloudscale:\n  endpoint: '{bad}'\n"
        ));
    }
    let e = err("provider: cloudscale\ncloudscale:\n  endpoint: https://x/?a=b\n");
    assert!(e.contains("query or fragment"), "{e}");
    let c = ok("provider: cloudscale\ncloudscale:\n  endpoint: ~\n");
    assert_eq!(c.cloudscale.endpoint, "https://api.cloudscale.ch/");
    let c = ok("provider: cloudscale\ncloudscale:\n  endpoint: HTTPS://api.example/v1/\n");
    assert_eq!(c.cloudscale.endpoint, "HTTPS://api.example/v1/");
}

#[test]
fn lock_template_errors() {
    for (template, want) in [
        ("/var/lock/floaty.lock", "has no %s"),
        ("/var/lock/%s.%s.lock", "has 2 %s"),
        ("/var/lock/%d.lock", "contains `%d`"),
        ("/var/lock/%s.lock%", "lone %"),
        ("", "has no %s"),
    ] {
        let e = err(&format!(
            "provider: cloudscale\nlock-file-template: '{template}'\n"
        ));
        assert!(e.contains("line 2, column 21: lock-file-template: "), "{e}");
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn other_value_errors() {
    let e = err("provider: cloudscale\nkeepalived-config: ''\n");
    assert!(
        e.contains("keepalived-config: empty; remove the key"),
        "{e}"
    );
    let e = err("provider: cloudscale\nkeepalived-config-id: ''\n");
    assert!(e.contains("keepalived-config-id: empty"), "{e}");
    let e = err("provider: cloudscale\nback-off: 5s\n");
    assert!(
        e.contains("back-off: expected a mapping with initial-interval"),
        "{e}"
    );
}

#[test]
fn whole_file_errors() {
    for empty in ["", "\n", "# just a comment\n", "---\n"] {
        let e = err(empty);
        assert!(e.contains("the file is empty"), "{e}");
    }
    let e = err("- provider: cloudscale\n");
    assert!(
            e.contains("line 1, column 1: expected a mapping of settings such as `provider: cloudscale`, found a list"),
            "{e}"
        );
    let e = err("provider cloudscale\n");
    assert!(e.contains("expected a mapping"), "{e}");
    let e = err("provider: cloudscale\n- x\n");
    assert!(e.contains("line 2") && e.contains("invalid YAML"), "{e}");
    let e = err("provider: cloudscale\n---\nprovider: exoscale\n");
    assert!(e.contains("more than one YAML document"), "{e}");
    let e = err("provider: 'cloudscale\n");
    assert!(e.contains("invalid YAML"), "{e}");
}

#[test]
fn secrets_never_in_errors_or_debug() {
    let secret = "SUPERSECRETVALUE";
    // Wrong type: described, not quoted.
    for yaml in [
        format!("provider: cloudscale\ncloudscale:\n  token: [{secret}]\n"),
        format!("provider: cloudscale\ncloudscale:\n  token: {{a: {secret}}}\n"),
        format!("provider: exoscale\nexoscale:\n  key: [{secret}]\n  secret: {secret}\n"),
        format!("provider: exoscale\nexoscale:\n  secret: {{{secret}: 1}}\n"),
        format!("provider: exoscale\nexoscale:\n  secret: {secret}\n  instance-id: x{secret}\n"),
        format!("provider: cloudscale\ncloudscale:\n  token: {secret}\n  bogus: 1\n"),
    ] {
        let e = parse(&yaml, Path::new(FILE)).unwrap_err();
        assert!(!e.to_string().contains(secret), "{e}");
        assert!(!format!("{e:?}").contains(secret), "{e:?}");
    }
    let c = ok(&format!(
            "provider: exoscale\ncloudscale:\n  token: {secret}\nexoscale:\n  key: EXO{secret}\n  secret: {secret}\n"
        ));
    assert!(!format!("{c:?}").contains(secret));
}

#[test]
fn display_shows_effective_settings_without_secrets() {
    let c = ok("provider: cloudscale\ncloudscale:\n  token: SUPERSECRET\n  hostname-to-server-uuid:\n    a: 11111111-2222-3333-4444-555555555555\n");
    let s = c.to_string();
    assert!(s.contains("\nlock-timeout: 10s\n"), "{s}");
    assert!(s.contains("\nrefresh-interval: 1m0s\n"), "{s}");
    assert!(s.contains("\n  token: ***\n"), "{s}");
    assert!(
        s.contains("\n    a: 11111111-2222-3333-4444-555555555555"),
        "{s}"
    );
    assert!(!s.contains("SUPERSECRET"), "{s}");
    let s =
        ok("provider: exoscale\nexoscale: {key: EXOSUPERSECRET, secret: SUPERSECRET}").to_string();
    assert!(s.contains("\n  key: ***\n  secret: ***\n"), "{s}");
    assert!(s.contains("\nrefresh-timeout: 15s\n"), "{s}");
    assert!(!s.contains("SUPERSECRET"), "{s}");
}

#[test]
fn fixtures_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
    let c = load(&dir.join("vshn-floaty-example.yaml")).unwrap();
    assert_eq!(c.provider, ProviderKind::Cloudscale);
    c.run_credentials().unwrap();
    let c = load(&dir.join("everything.yaml")).unwrap();
    assert_eq!(c.keepalived_config, dir.join("keepalived.conf"));
    assert_eq!(c.managed_addresses.len(), 3);
    c.run_credentials().unwrap();
}

#[test]
fn io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yml");
    let e = load(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    let s = e.to_string();
    assert!(
        s.starts_with(&format!("{}: cannot read config file: ", missing.display())),
        "{s}"
    );
    assert!(s.contains("No such file"), "{s}");
    let s = load(dir.path()).unwrap_err().to_string();
    assert!(s.contains("is a directory"), "{s}");
    let file = dir.path().join("floaty.yml");
    std::fs::write(&file, "provider: exoscale\nkeepalived-config: k.conf\n").unwrap();
    let c = load(&file).unwrap();
    assert_eq!(c.keepalived_config, dir.path().join("k.conf"));
    std::fs::write(&file, "provider: nope\n").unwrap();
    let s = load(&file).unwrap_err().to_string();
    assert!(
        s.starts_with(&format!(
            "{}: line 1, column 11: provider: ",
            file.display()
        )),
        "{s}"
    );
}

#[test]
fn lock_paths_are_confined() {
    let t = LockTemplate::default();
    let p = |name: &str| t.path_for(name).to_string_lossy().into_owned();
    assert_eq!(p("VI_1"), "/run/floaty/floaty.VI_1.lock");
    assert_eq!(p("'VI.a'"), "/run/floaty/floaty.%27VI.a%27.lock");
    assert_eq!(p("a/b"), "/run/floaty/floaty.a%2Fb.lock");
    assert_eq!(
        p("../../etc/passwd"),
        "/run/floaty/floaty...%2F..%2Fetc%2Fpasswd.lock"
    );
    assert_eq!(p("VI 1"), "/run/floaty/floaty.VI%201.lock");
    assert_eq!(p("ü"), "/run/floaty/floaty.%C3%BC.lock");
    assert_eq!(p("50%"), "/run/floaty/floaty.50%25.lock");
    let dir = LockTemplate::new("/run/floaty/%s").unwrap();
    assert_eq!(dir.path_for(".."), Path::new("/run/floaty/%2E%2E"));
    assert_eq!(dir.path_for("."), Path::new("/run/floaty/%2E"));
    for name in ["..", ".", "a/../..", "/", "\0", "x\ny"] {
        let path = dir.path_for(name);
        assert_eq!(path.parent(), Some(Path::new("/run/floaty")), "{name:?}");
    }
    let pct = LockTemplate::new("/run/100%%/%s.lock").unwrap();
    assert_eq!(pct.path_for("a"), Path::new("/run/100%/a.lock"));
}

/// A config reading the token from `token` next to it (see
/// [`secret_setup`]).
const TOKEN_FILE_YAML: &str = "provider: cloudscale\ncloudscale:\n  token-file: token\n";

/// A scratch dir with `floaty.yml` (mode 0600) and a secret file.
fn secret_setup(content: &[u8], mode: u32) -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, content).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    (dir, file)
}

fn parse_in(
    dir: &Path,
    yaml: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, String> {
    parse_with_env(yaml, &dir.join("floaty.yml"), env).map_err(|e| {
        let s = e.to_string();
        assert!(!s.contains('\n'), "not one line: {s}");
        s
    })
}

#[test]
fn secrets_from_files_trimmed_and_relative_to_the_config() {
    let (dir, _) = secret_setup(b"tok-from-file\n", 0o600);
    std::fs::write(dir.path().join("key"), "EXOkey\r\n").unwrap();
    std::fs::write(dir.path().join("sec"), "sec-from-file").unwrap();
    let c = parse_in(dir.path(), TOKEN_FILE_YAML, &no_env).unwrap();
    assert_eq!(
        c.cloudscale.token.as_ref().unwrap().expose(),
        "tok-from-file"
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(!c.inline_secret);
    let abs = dir.path().join("token");
    let c = parse_in(
        Path::new("/nonexistent"),
        &format!(
            "provider: cloudscale\ncloudscale:\n  token-file: {}\n",
            abs.display()
        ),
        &no_env,
    )
    .unwrap();
    assert_eq!(c.cloudscale.token.unwrap().expose(), "tok-from-file");
    let c = parse_in(
        dir.path(),
        "provider: exoscale\nexoscale:\n  key-file: key\n  secret-file: sec\n",
        &no_env,
    )
    .unwrap();
    assert_eq!(c.exoscale.key.as_ref().unwrap().expose(), "EXOkey");
    assert_eq!(
        c.exoscale.secret.as_ref().unwrap().expose(),
        "sec-from-file"
    );
    // Display and Debug never show what came from a file either.
    assert!(!format!("{c:?}").contains("sec-from-file"));
}

#[test]
fn secret_file_errors_are_one_line_and_never_quote_the_content() {
    let (dir, file) = secret_setup(b"", 0o600);
    let yaml = TOKEN_FILE_YAML;
    let shown = file.display().to_string();
    let e = parse_in(dir.path(), yaml, &no_env).unwrap_err();
    assert_eq!(
        e,
        format!(
            "{}/floaty.yml: cloudscale.token-file: {shown} is empty; it should hold the credential",
            dir.path().display()
        )
    );
    std::fs::write(&file, "\n\r\n").unwrap();
    assert!(parse_in(dir.path(), yaml, &no_env)
        .unwrap_err()
        .contains("is empty"));
    std::fs::write(&file, "TOPSECRET\nsecond line\n").unwrap();
    let e = parse_in(dir.path(), yaml, &no_env).unwrap_err();
    assert!(
        e.contains("more than one line") && !e.contains("TOPSECRET"),
        "{e}"
    );
    std::fs::write(&file, b"\xffTOPSECRET").unwrap();
    let e = parse_in(dir.path(), yaml, &no_env).unwrap_err();
    assert!(e.contains("not UTF-8") && !e.contains("TOPSECRET"), "{e}");
    std::fs::remove_file(&file).unwrap();
    let e = parse_in(dir.path(), yaml, &no_env).unwrap_err();
    assert!(
        e.contains(&format!(
            "cloudscale.token-file: cannot read {shown}: No such file"
        )),
        "{e}"
    );
    std::fs::create_dir(&file).unwrap();
    let e = parse_in(dir.path(), yaml, &no_env).unwrap_err();
    assert!(e.contains("is a directory, not a regular file"), "{e}");
    let e = parse_in(
        dir.path(),
        "provider: exoscale\nexoscale:\n  secret-file: ''\n",
        &no_env,
    )
    .unwrap_err();
    assert!(e.contains("exoscale.secret-file: empty"), "{e}");
}

#[test]
fn inline_and_file_together_name_both_keys() {
    let (dir, _) = secret_setup(b"x\n", 0o600);
    let e = parse_in(
        dir.path(),
        "provider: cloudscale\ncloudscale:\n  token: TOPSECRET\n  token-file: token\n",
        &no_env,
    )
    .unwrap_err();
    assert!(
        e.ends_with("cloudscale.token: set together with `cloudscale.token-file`; keep one"),
        "{e}"
    );
    let e = parse_in(
        dir.path(),
        "provider: exoscale\nexoscale:\n  key: EXOa\n  key-file: token\n",
        &no_env,
    )
    .unwrap_err();
    assert!(
        e.contains("exoscale.key: set together with `exoscale.key-file`"),
        "{e}"
    );
}

#[test]
fn environment_is_used_only_when_the_file_sets_neither() {
    let env = |name: &str| {
        Some(match name {
            ENV_CLOUDSCALE_TOKEN => "tok-env\n".to_string(),
            ENV_EXOSCALE_KEY => "EXOenv".to_string(),
            ENV_EXOSCALE_SECRET => "sec-env".to_string(),
            _ => return None,
        })
    };
    let (dir, _) = secret_setup(b"tok-file", 0o600);
    for (yaml, want) in [
        ("provider: cloudscale\n", "tok-env"),
        (
            "provider: cloudscale\ncloudscale: {token: tok-yaml}\n",
            "tok-yaml",
        ),
        (
            "provider: cloudscale\ncloudscale: {token-file: token}\n",
            "tok-file",
        ),
    ] {
        let c = parse_in(dir.path(), yaml, &env).unwrap();
        assert_eq!(c.cloudscale.token.unwrap().expose(), want, "{yaml}");
    }
    let c = parse_in(
        dir.path(),
        "provider: exoscale\nexoscale: {secret: s-yaml}\n",
        &env,
    )
    .unwrap();
    assert_eq!(c.exoscale.key.unwrap().expose(), "EXOenv");
    assert_eq!(c.exoscale.secret.unwrap().expose(), "s-yaml");
    // An empty variable counts as unset.
    let empty = |_: &str| Some(String::new());
    let c = parse_in(dir.path(), "provider: cloudscale\n", &empty).unwrap();
    assert!(c.cloudscale.token.is_none());
    assert!(c
        .run_credentials()
        .unwrap_err()
        .to_string()
        .contains("FLOATY_CLOUDSCALE_TOKEN"));
}

#[test]
fn warns_once_about_secret_files_others_can_read() {
    let (dir, file) = secret_setup(b"tok\n", 0o640);
    let c = parse_in(dir.path(), TOKEN_FILE_YAML, &no_env).unwrap();
    assert_eq!(
            c.warnings,
            vec![format!(
                "{} holds a credential and is readable by group or others (mode 0640); run chmod 600 on it",
                file.display()
            )]
        );
    for (mode, warned) in [(0o604, true), (0o400, false), (0o600, false)] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let c = parse_in(dir.path(), TOKEN_FILE_YAML, &no_env).unwrap();
        assert_eq!(c.warnings.len(), usize::from(warned), "mode {mode:o}");
    }
}

#[test]
fn warns_about_a_readable_yaml_only_when_it_holds_a_secret() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("floaty.yml");
    std::fs::write(
        &yaml,
        "provider: cloudscale\ncloudscale:\n  token: TOPSECRET\n",
    )
    .unwrap();
    std::fs::set_permissions(&yaml, std::fs::Permissions::from_mode(0o644)).unwrap();
    let c = load(&yaml).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("holds a credential inline") && c.warnings[0].contains("0644"));
    assert!(!c.warnings[0].contains("TOPSECRET"));
    std::fs::set_permissions(&yaml, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(load(&yaml).unwrap().warnings.is_empty());
    std::fs::write(&yaml, "provider: cloudscale\n").unwrap();
    std::fs::set_permissions(&yaml, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(load(&yaml).unwrap().warnings.is_empty());
}

#[test]
fn verify_master_values() {
    assert_eq!(
        ok("provider: cloudscale\n").verify_master,
        VerifyMaster::Auto
    );
    for (v, want) in [
        ("auto", VerifyMaster::Auto),
        ("always", VerifyMaster::Always),
        ("off", VerifyMaster::Off),
        ("'off'", VerifyMaster::Off),
        ("false", VerifyMaster::Off),
    ] {
        let c = ok(&format!("provider: cloudscale\nverify-master: {v}\n"));
        assert_eq!(c.verify_master, want, "{v}");
    }
    let e = err("provider: cloudscale\nverify-master: sometimes\n");
    assert_eq!(
            e,
            "/etc/floaty.yml: line 2, column 16: verify-master: \"sometimes\" is not one of auto, always, off"
        );
    let e = err("provider: cloudscale\nverify-master: true\n");
    assert!(e.contains("verify-master: `true` is ambiguous"), "{e}");
    let e = err("provider: cloudscale\nverify-master: [x]\n");
    assert!(
        e.contains("verify-master: expected auto, always or off"),
        "{e}"
    );
    assert!(ok("provider: cloudscale\nverify-master: off\n")
        .to_string()
        .contains("\nverify-master: off\n"));
}

/// A one-line error from `yaml` with environment `env`, checked not
/// to show `secret`.
fn err_env(yaml: &str, env: &dyn Fn(&str) -> Option<String>, secret: &str) -> String {
    let e = parse_with_env(yaml, Path::new(FILE), env)
        .expect_err("should fail")
        .to_string();
    assert!(!e.contains('\n'), "not one line: {e}");
    assert!(!e.contains(secret), "secret shown: {e}");
    e
}

#[test]
fn credentials_must_be_one_word() {
    // Inline, in every YAML spelling of a newline, space or control.
    for (value, why) in [
        ("\"SECRET\\nTOKEN\"", "holds a line break"),
        ("\"SECRET\\rTOKEN\"", "holds a line break"),
        ("|\n    SECRET\n    TOKEN", "holds a line break"),
        ("'SECRET TOKEN'", "holds whitespace"),
        ("\"SECRET\\tTOKEN\"", "holds a control character"),
        ("\"SECRET\\u00a0TOKEN\"", "holds whitespace"),
        ("\"SECRET\\eTOKEN\"", "holds a control character"),
    ] {
        let e = err_env(
            &format!("provider: cloudscale\ncloudscale:\n  token: {value}\n"),
            &no_env,
            "SECRET",
        );
        assert!(
            e.starts_with("/etc/floaty.yml: cloudscale.token: the value ") && e.contains(why),
            "{value}: {e}"
        );
        let e = err_env(
            &format!("provider: exoscale\nexoscale:\n  key: EXOa\n  secret: {value}\n"),
            &no_env,
            "SECRET",
        );
        assert!(e.contains("exoscale.secret: the value "), "{e}");
    }
    // A `|` block keeps one trailing newline: that one is trimmed, as
    // from a file or the environment.
    let c = ok("provider: cloudscale\ncloudscale:\n  token: |\n    tok\n");
    assert_eq!(c.cloudscale.token.unwrap().expose(), "tok");
    // From the environment: the variable is named.
    let env = |name: &str| (name == ENV_CLOUDSCALE_TOKEN).then(|| "SECRET\nTOKEN\n".to_string());
    let e = err_env("provider: cloudscale\n", &env, "SECRET");
    assert!(
            e.contains("FLOATY_CLOUDSCALE_TOKEN (environment, for cloudscale.token): the value holds a line break"),
            "{e}"
        );
    let env = |name: &str| (name == ENV_CLOUDSCALE_TOKEN).then(|| "tok\r\n".to_string());
    let c = parse_with_env("provider: cloudscale\n", Path::new(FILE), &env).unwrap();
    assert_eq!(c.cloudscale.token.unwrap().expose(), "tok");
    // From a file: the file key and the file are named.
    let (dir, file) = secret_setup(b"SECRET TOKEN\n", 0o600);
    let e = parse_in(dir.path(), TOKEN_FILE_YAML, &no_env).unwrap_err();
    assert!(
        e.contains(&format!(
            "cloudscale.token-file: {} holds whitespace",
            file.display()
        )) && !e.contains("SECRET"),
        "{e}"
    );
    // The section of the provider not in use is not checked: it is
    // never sent anywhere.
    ok("provider: cloudscale\nexoscale:\n  key: 'not an EXO key'\n");
    let env = |name: &str| (name == ENV_EXOSCALE_KEY).then(|| "x y".to_string());
    parse_with_env("provider: cloudscale\n", Path::new(FILE), &env).unwrap();
}

#[test]
fn exoscale_keys_start_with_exo_wherever_they_come_from() {
    let e = err_env(
        "provider: exoscale\nexoscale:\n  key: SECRETKEY\n  secret: s\n",
        &no_env,
        "SECRETKEY",
    );
    assert_eq!(
            e,
            "/etc/floaty.yml: exoscale.key: the value does not start with EXO, as every Exoscale API key does; check that key and secret are not swapped"
        );
    // Checked at load, so also under --dry-run (which skips only the
    // "missing" check): a key is checked whenever it is given.
    let env = |name: &str| (name == ENV_EXOSCALE_KEY).then(|| "SECRETKEY".to_string());
    let e = err_env("provider: exoscale\n", &env, "SECRETKEY");
    assert!(e.contains("FLOATY_EXOSCALE_KEY (environment, for exoscale.key): the value does not start with EXO"), "{e}");
    let (dir, _) = secret_setup(b"SECRETKEY\n", 0o600);
    let e = parse_in(
        dir.path(),
        "provider: exoscale\nexoscale:\n  key-file: token\n",
        &no_env,
    )
    .unwrap_err();
    assert!(
        e.contains("exoscale.key-file: ") && e.contains("does not start with EXO"),
        "{e}"
    );
    assert!(!e.contains("SECRETKEY"), "{e}");
    let e = err_env(
        "provider: exoscale\nexoscale:\n  key: EXO,SECRET\n",
        &no_env,
        "SECRET",
    );
    assert!(
        e.contains("exoscale.key: the value contains spaces, commas"),
        "{e}"
    );
    ok("provider: exoscale\nexoscale:\n  key: EXOabc\n");
}

#[test]
fn endpoints_are_checked_as_urls() {
    for section in ["cloudscale", "exoscale"] {
        let yaml = |url: &str| format!("provider: {section}\n{section}:\n  endpoint: '{url}'\n");
        let e = err(&yaml("http://127.0.0.1:99999/"));
        assert!(
                e.contains(&format!("line 3, column 13: {section}.endpoint: \"http://127.0.0.1:99999/\" is not a valid URL: invalid port number")),
                "{e}"
            );
        let e = err(&yaml(""));
        assert!(
            e.ends_with(&format!(
                "{section}.endpoint: empty; remove the key to use the default"
            )),
            "{e}"
        );
        for url in [
            "http://admin:pw1234@host/",
            "https://admin@host/v2",
            "http://u:pw1234@host:1/",
        ] {
            let e = err(&yaml(url));
            assert!(e.contains("credentials do not belong in the URL"), "{e}");
            assert!(!e.contains("pw1234") && !e.contains("admin"), "{e}");
            assert!(e.contains("***@host"), "{e}");
        }
        // A password is not shown even where the URL does not parse.
        let e = err(&yaml("http://admin:pw1234@host:99999/"));
        assert!(!e.contains("pw1234") && e.contains("invalid port"), "{e}");
        ok(&yaml("http://[::1]:8080/v2"));
        ok(&yaml("https://host:65535"));
    }
}

#[test]
fn durations_have_floors() {
    for (key, below, floor) in [
        ("refresh-interval", "999ms", "1s"),
        ("refresh-interval", "1ns", "1s"),
        ("refresh-timeout", "99ms", "100ms"),
        ("lock-timeout", "50ms", "100ms"),
        ("back-off:\n  initial-interval", "9ms", "10ms"),
        ("back-off:\n  max-interval", "1us", "10ms"),
    ] {
        let e = err(&format!("provider: cloudscale\n{key}: {below}\n"));
        let dotted = key.replace(":\n  ", ".");
        assert!(
            e.contains(&format!(
                "{dotted}: `{below}` is below the minimum of {floor}; write at least {floor}"
            )),
            "{e}"
        );
        ok(&format!("provider: cloudscale\n{key}: {floor}\n"));
    }
    // What the behaviour tests use stays valid.
    let c = ok("provider: cloudscale\nlock-timeout: 400ms\nrefresh-timeout: 300ms\nback-off:\n  initial-interval: 20ms\n  max-interval: 50ms\n");
    assert_eq!(c.back_off.initial_interval, Duration::from_millis(20));
}

#[test]
fn a_relative_lock_template_is_relative_to_the_config_file() {
    let c = parse_with_env(
        "provider: cloudscale\nlock-file-template: locks/floaty.%s.lock\n",
        Path::new("/etc/floaty/floaty.yml"),
        &no_env,
    )
    .unwrap();
    assert!(c.lock_template_from_file);
    assert_eq!(
        c.lock_file_template.path_for("VI_1"),
        Path::new("/etc/floaty/locks/floaty.VI_1.lock")
    );
    // A `%` in the directory is text, not a directive.
    let c = parse_with_env(
        "provider: cloudscale\nlock-file-template: '%s.lock'\n",
        Path::new("/srv/100%s/floaty.yml"),
        &no_env,
    )
    .unwrap();
    assert_eq!(
        c.lock_file_template.path_for("VI_1"),
        Path::new("/srv/100%s/VI_1.lock")
    );
    let c = ok("provider: cloudscale\nlock-file-template: /abs/%s\n");
    assert_eq!(c.lock_file_template.as_str(), "/abs/%s");
    assert_eq!(LEGACY_LOCK_FILE_TEMPLATE, "/var/lock/floaty.%s.lock");
}

#[test]
fn config_paths_that_are_no_regular_file_or_too_big_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("floaty.yml");
    crate::readfile::mkfifo(&fifo);
    // Before: blocked here for ever.
    let e = load(&fifo).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: is a FIFO, not a regular file; CONFIG must be floaty's YAML file",
            fifo.display()
        )
    );
    let e = load(Path::new("/dev/zero")).unwrap_err().to_string();
    assert_eq!(
        e,
        "/dev/zero: is a character device, not a regular file; CONFIG must be floaty's YAML file"
    );
    let big = dir.path().join("big.yml");
    let mut text = b"provider: cloudscale\n".to_vec();
    text.resize(MAX_CONFIG_FILE as usize + 1, b'#');
    std::fs::write(&big, &text).unwrap();
    let e = load(&big).unwrap_err().to_string();
    assert!(
            e.ends_with("big.yml: is larger than 1 MiB; that cannot be the right file; CONFIG must be floaty's YAML file"),
            "{e}"
        );
    text.truncate(MAX_CONFIG_FILE as usize);
    std::fs::write(&big, &text).unwrap();
    load(&big).unwrap();
    std::fs::write(&big, b"provider: cloudscale\n# \xff\n").unwrap();
    let e = load(&big).unwrap_err().to_string();
    assert!(e.contains("not UTF-8"), "{e}");
    // A newline in the path does not split the message.
    let odd = dir.path().join("a\nb.yml");
    let e = load(&odd).unwrap_err().to_string();
    assert!(!e.contains('\n') && e.contains("a\\nb.yml"), "{e}");
}

/// A real CA certificate: the HTTPS mock's own test CA.
fn test_ca_pem() -> String {
    let mock = mock_cloud::Cloudscale::start_tls("t").expect("mock");
    mock.ca_pem().expect("CA")
}

const CA_FILE_YAML: &str = "provider: cloudscale\nca-file: ca.pem\n";

/// The error `parse_in` gives with `ca.pem` (next to the YAML) holding
/// `content`, and the file's path as shown.
fn ca_file_error(content: &[u8]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, content).unwrap();
    let e = parse_in(dir.path(), CA_FILE_YAML, &no_env).unwrap_err();
    (e, file.display().to_string())
}

#[test]
fn ca_file_relative_to_the_config_and_in_the_dump() {
    let dir = tempfile::tempdir().unwrap();
    let pem = test_ca_pem();
    std::fs::write(dir.path().join("ca.pem"), format!("{pem}{pem}")).unwrap();
    let c = parse_in(dir.path(), CA_FILE_YAML, &no_env).unwrap();
    let ca = c.ca_file.as_ref().expect("ca-file");
    assert_eq!(ca.path, dir.path().join("ca.pem"));
    assert_eq!(ca.bundle.len(), 2);
    let dump = c.to_string();
    assert!(
        dump.contains(&format!(
            "\nca-file: {} # 2 certificates on top of the built-in roots\n",
            ca.path.display()
        )),
        "{dump}"
    );
    // It reaches the provider, and a changed bundle is a changed spec.
    let c = ok_with_token(dir.path());
    let spec = crate::provider::Spec::from_config(&c, false).unwrap();
    let crate::provider::Spec::Cloudscale(settings) = &spec else {
        panic!("{spec:?}")
    };
    assert_eq!(settings.ca.as_ref().map(|b| b.len()), Some(2));
    std::fs::write(dir.path().join("ca.pem"), &pem).unwrap();
    let changed = crate::provider::Spec::from_config(&ok_with_token(dir.path()), false).unwrap();
    assert_ne!(spec, changed);
    // An absolute path is taken as it is.
    let abs = format!(
        "provider: cloudscale\nca-file: {}\n",
        dir.path().join("ca.pem").display()
    );
    let c = parse_in(Path::new("/nonexistent"), &abs, &no_env).unwrap();
    assert_eq!(c.ca_file.unwrap().bundle.len(), 1);
    // Without the key: the built-in roots only.
    let c = ok("provider: cloudscale\n");
    assert!(c.ca_file.is_none());
    assert!(c
        .to_string()
        .contains("\nca-file: (not set) # the built-in roots only\n"));
}

fn ok_with_token(dir: &Path) -> Config {
    let yaml = format!("{CA_FILE_YAML}cloudscale:\n  token: t0ken\n  server-uuid: 6c1c8e4e-8f2a-4b0e-9a53-3c1e8f0a2b7d\n");
    parse_in(dir, &yaml, &no_env).unwrap()
}

#[test]
fn ca_file_errors_name_the_file_the_key_and_the_fix() {
    let fix = "point ca-file at a PEM file of CA certificates";
    let (e, shown) = ca_file_error(b"");
    assert!(
        e.ends_with(&format!(
            "/floaty.yml: ca-file: {shown} holds no PEM certificate (no -----BEGIN CERTIFICATE----- block); {fix} (a DER file converts with `openssl x509 -inform der -in FILE -out FILE.pem`)"
        )),
        "{e}"
    );
    let (e, _) = ca_file_error(b"\x30\x82\x01\x0a binary DER");
    assert!(e.contains("holds no PEM certificate"), "{e}");
    let (e, shown) =
        ca_file_error(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n");
    assert!(
        e.contains(&format!(
            "ca-file: {shown}: certificate 1 is not valid PEM: "
        )) && e.ends_with("; fix or remove that certificate"),
        "{e}"
    );
    let pem = test_ca_pem();
    let (e, shown) = ca_file_error(
        format!("{pem}-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n")
            .as_bytes(),
    );
    assert!(
        e.contains(&format!(
            "ca-file: {shown}: certificate 2 does not parse as an X.509 certificate: "
        )),
        "{e}"
    );
    let (e, shown) = ca_file_error(&vec![b'#'; (MAX_CA_FILE + 1) as usize]);
    assert!(
        e.ends_with(&format!(
            "ca-file: {shown} is larger than 1 MiB; that cannot be the right file; {fix}"
        )),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pem");
    let shown = file.display().to_string();
    let e = parse_in(dir.path(), CA_FILE_YAML, &no_env).unwrap_err();
    assert!(
        e.contains(&format!("ca-file: cannot read {shown}: No such file")) && e.ends_with(fix),
        "{e}"
    );
    std::fs::create_dir(&file).unwrap();
    let e = parse_in(dir.path(), CA_FILE_YAML, &no_env).unwrap_err();
    assert!(
        e.ends_with(&format!(
            "ca-file: {shown} is a directory, not a regular file; {fix}"
        )),
        "{e}"
    );
    std::fs::remove_dir(&file).unwrap();
    crate::readfile::mkfifo(&file);
    let e = parse_in(dir.path(), CA_FILE_YAML, &no_env).unwrap_err();
    assert!(e.contains("is a FIFO, not a regular file"), "{e}");
    // (A mode-000 file is the same I/O error path as the missing one; as
    // root, who runs these tests, it would read fine.)
    let e = parse_in(dir.path(), "provider: cloudscale\nca-file: ''\n", &no_env).unwrap_err();
    assert!(e.contains("ca-file: empty"), "{e}");
}

#[test]
fn hetzner_and_digitalocean_sections() {
    let c = ok("provider: hetzner\n\
                hetzner:\n  token: hc-tok-123\n  server-id: 4294967301\n  \
                hostname-to-server-id:\n    lb1: 4294967301\n    lb2: 42\n");
    assert_eq!(c.provider, ProviderKind::Hetzner);
    assert_eq!(c.hetzner.endpoint, "https://api.hetzner.cloud/v1");
    assert_eq!(c.hetzner.server_id, Some(4_294_967_301), "64-bit ids");
    assert_eq!(c.hetzner.hostname_to_server_id.get("lb2"), Some(&42));
    assert_eq!(
        c.refresh_timeout,
        Duration::from_secs(15),
        "an action to wait for"
    );
    assert!(matches!(
        c.run_credentials(),
        Ok(RunCredentials::Hetzner { token }) if token.expose() == "hc-tok-123"
    ));
    let c = ok("provider: digitalocean\n\
                digitalocean:\n  endpoint: http://127.0.0.1:9/v2\n  droplet-id: 3000000001\n");
    assert_eq!(c.digitalocean.endpoint, "http://127.0.0.1:9/v2");
    assert_eq!(c.digitalocean.droplet_id, Some(3_000_000_001));
    let e = c.run_credentials().expect_err("no token").to_string();
    assert!(
        e.contains("digitalocean.token: missing")
            && e.contains("digitalocean.token-file")
            && e.contains("FLOATY_DIGITALOCEAN_TOKEN"),
        "{e}"
    );
    let env = |name: &str| (name == "FLOATY_HETZNER_TOKEN").then(|| "from-env".to_string());
    let c = parse_with_env("provider: hetzner\n", Path::new(FILE), &env).expect("config");
    assert!(matches!(
        c.run_credentials(),
        Ok(RunCredentials::Hetzner { token }) if token.expose() == "from-env"
    ));
}

#[test]
fn hetzner_and_digitalocean_mistakes_are_named() {
    let e = err("provider: hetzner\nhetzner:\n  server-id: lb1\n");
    assert!(
        e.contains("line 3") && e.contains("hetzner.server-id") && e.contains("not an id"),
        "{e}"
    );
    let e = err("provider: digitalocean\ndigitalocean:\n  droplet-id: 0\n");
    assert!(e.contains("0 is no id"), "{e}");
    let e = err("provider: hetzner\nhetzner:\n  server-uuid: 42\n");
    assert!(e.contains("unknown key") && e.contains("server-id"), "{e}");
    let e = err("provider: hcloud\n");
    assert!(e.contains("did you mean `hetzner`"), "{e}");
    let e = err("provider: DigitalOcean\n");
    assert!(e.contains("did you mean `digitalocean`"), "{e}");
    let e = err("provider: hetzner\nhetzner:\n  endpoint: ftp://x\n");
    assert!(
        e.contains("hetzner.endpoint") && e.contains("not an http(s) URL"),
        "{e}"
    );
    let e = err("provider: hetzner\nhetzner:\n  token: \"a b\"\n");
    assert!(
        e.contains("hetzner.token") && e.contains("whitespace"),
        "{e}"
    );
    assert!(!e.contains("a b"), "the token is never quoted: {e}");
}

#[test]
fn aws_section_and_its_credentials() {
    use floaty_providers::aws::{AddressMode, Credentials};
    let c = ok(
        "provider: aws\naws:\n  region: eu-central-1\n  mode: secondary-private-ip\n  \
                instance-id: i-0123456789abcdef0\n  network-interface-id: eni-0123456789abcdef0\n",
    );
    assert_eq!(c.provider, ProviderKind::Aws);
    assert_eq!(c.aws.mode, AddressMode::SecondaryPrivateIp);
    assert_eq!(c.aws.instance_id.as_deref(), Some("i-0123456789abcdef0"));
    assert!(matches!(
        c.run_credentials(),
        Ok(RunCredentials::Aws {
            credentials: Credentials::InstanceRole
        })
    ));
    let c = ok(
        "provider: aws\naws:\n  access-key-id: AKIAIOSFODNN7EXAMPLE\n  \
                secret-access-key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    );
    assert_eq!(c.aws.mode, AddressMode::ElasticIp, "the default");
    assert!(matches!(
        c.run_credentials(),
        Ok(RunCredentials::Aws {
            credentials: Credentials::Static {
                session_token: None,
                ..
            }
        })
    ));
    // The environment, with the session token that goes with it.
    let env = |name: &str| {
        match name {
            "AWS_ACCESS_KEY_ID" => Some("ASIAIOSFODNN7EXAMPLE"),
            "AWS_SECRET_ACCESS_KEY" => Some("secret/from/env"),
            "AWS_SESSION_TOKEN" => Some("FQoGZXIvYXdzEXAMPLETOKEN"),
            _ => None,
        }
        .map(str::to_string)
    };
    let c = parse_with_env("provider: aws\n", Path::new(FILE), &env).expect("config");
    assert!(matches!(
        c.run_credentials(),
        Ok(RunCredentials::Aws { credentials: Credentials::Static { session_token: Some(t), .. } })
            if t.expose() == "FQoGZXIvYXdzEXAMPLETOKEN"
    ));
}

#[test]
fn aws_mistakes_are_named() {
    let e = err("provider: aws\naws:\n  access-key-id: AKIAIOSFODNN7EXAMPLE\n");
    assert!(
        e.contains("aws.secret-access-key: missing") && e.contains("instance role"),
        "{e}"
    );
    let e = err("provider: aws\naws:\n  instance-id: web-1\n");
    assert!(
        e.contains("aws.instance-id") && e.contains("not an id like i-0123456789abcdef0"),
        "{e}"
    );
    let e = err("provider: aws\naws:\n  mode: eip\n");
    assert!(
        e.contains("write elastic-ip (the default) or secondary-private-ip"),
        "{e}"
    );
    let e = err("provider: aws\naws:\n  region: Frankfurt\n");
    assert!(
        e.contains("aws.region") && e.contains("not a region"),
        "{e}"
    );
    let e = err("provider: aws\naws:\n  access-key-id: not-a-key\n  secret-access-key: x1234\n");
    assert!(
        e.contains("aws.access-key-id") && e.contains("not an access key id"),
        "{e}"
    );
    assert!(!e.contains("not-a-key"), "never quoted: {e}");
    let e = err("provider: ec2\n");
    assert!(e.contains("did you mean `aws`"), "{e}");
}
