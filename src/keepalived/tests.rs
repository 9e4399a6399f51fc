//! The fixtures of the differential test, read through `load()` directly.
//! Expected values are what keepalived 2.2.7 itself dumped for them.

use std::path::{Path, PathBuf};

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keepalived")
        .join(name)
}

fn load_id(path: &Path, id: &str) -> KeepalivedConfig {
    load(
        path,
        &LoadOptions {
            config_id: Some(id.into()),
        },
    )
    .unwrap()
}

fn addrs(c: &KeepalivedConfig, name: &str) -> Vec<String> {
    c.instance(name)
        .unwrap_or_else(|| panic!("no instance {name}"))
        .addresses()
        .iter()
        .map(|v| v.to_string())
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn tricky_syntax() {
    let c = load_id(&fixture("tricky.conf"), "main");
    let names: Vec<&str> = c.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["VI_1", "'VI.a'"]);
    assert_eq!(
        addrs(&c, "VI_1"),
        [
            "192.0.2.10/24",
            "192.0.2.11",
            "192.0.2.12",
            "192.0.2.13/24",
            "192.0.2.14",
            "192.0.2.15",
            "192.0.2.18",
            "192.0.2.19/28",
            "2001:db8::2/64",
            "198.51.100.7"
        ]
    );
    let a = c.instance("VI.a").unwrap();
    assert_eq!(a.interface.as_deref(), Some("eth1"));
    assert_eq!(
        addrs(&c, "\"'VI.a'\""),
        ["2001:db8:1::10/64", "2001:db8:1::11"]
    );
    let vi1 = c.instance("VI_1").unwrap();
    assert_eq!(vi1.interface.as_deref(), Some("eth0"));
    assert!(vi1.location.ends_with("tricky.conf:7"), "{}", vi1.location);
    let g = c.group("G1").unwrap();
    assert_eq!(g.members, ["VI_1", "'VI.a'"]);
    assert!(c.warnings.iter().any(|w| w.contains("already defined")));
}

#[test]
fn definitions_sequences_and_conditionals() {
    let c = load_id(&fixture("defs.conf"), "main");
    assert_eq!(
        addrs(&c, "VI_MASTER"),
        [
            "192.0.2.101",
            "10.1.1.1",
            "10.8.0.1",
            "10.8.0.2",
            "10.8.0.3",
            "10.7.0.11",
            "10.7.0.12",
            "10.5.0.1"
        ]
    );
    assert_eq!(
        c.instance("VI_MASTER").unwrap().interface.as_deref(),
        Some("eth0")
    );
    let c = load_id(&fixture("defs.conf"), "other");
    assert_eq!(c.instances.len(), 1);
    assert_eq!(
        addrs(&c, "VI_BACKUP"),
        [
            "192.0.2.101",
            "10.1.1.1",
            "10.8.0.1",
            "10.8.0.2",
            "10.8.0.3",
            "10.7.0.11",
            "10.7.0.12",
            "10.5.0.2",
            "10.5.0.3"
        ]
    );
}

#[test]
fn includes_with_globs_and_braces() {
    let c = load_id(&fixture("includes/main.conf"), "main");
    let names: Vec<&str> = c.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["VI_a", "VI_b", "VI_main"]);
    assert_eq!(addrs(&c, "VI_b"), ["10.70.0.2/16"]);
    assert_eq!(addrs(&c, "VI_main"), ["10.70.1.1", "10.70.1.2"]);
}

#[test]
fn include_loop_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.conf", "include b.conf\n");
    write(dir.path(), "b.conf", "\n\ninclude a.conf\n");
    let e = load(&a, &LoadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("b.conf:3"), "{e}");
    assert!(e.contains("include loop"), "{e}");
}

#[test]
fn runaway_sequence_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.conf", "~SEQ(n, 1, 100000000) x $n\n");
    let e = load(&a, &LoadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("a.conf:1"), "{e}");
}

/// Long generated lines full of addresses hit the text bound after some
/// eight thousand lines; a million of them took 5 s in a release build
/// (found by the keepalived_conf fuzz target).
#[test]
fn runaway_text_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let vips = "192.0.2.1 ".repeat(100);
    let text = format!(
        "$VIPS={vips}\nvrrp_instance V {{\n  virtual_ipaddress {{\n    ~SEQ(n, 1, 2000000) $VIPS\n  }}\n}}\n"
    );
    let a = write(dir.path(), "a.conf", &text);
    let e = load(&a, &LoadOptions::default()).unwrap_err().to_string();
    assert!(
        e.contains("a.conf:4: definition substitution expands to more than 8 MiB of text"),
        "{e}"
    );
}

#[test]
fn missing_file_names_the_path() {
    let e = load(
        Path::new("/nonexistent/keepalived.conf"),
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("/nonexistent/keepalived.conf"), "{e}");
}

#[test]
fn missing_interface_name_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.conf", "vrrp_instance X {\n  interface\n}\n");
    let e = load(&a, &LoadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("a.conf:2"), "{e}");
}

#[test]
fn self_referencing_definition_stops_like_keepalived() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.conf",
        "$A=$A x\nvrrp_instance X {\n virtual_ipaddress {\n 10.0.0.1 $A\n }\n}\n",
    );
    let c = load(&a, &LoadOptions::default()).unwrap();
    assert_eq!(addrs(&c, "X"), ["10.0.0.1"]);
}

#[test]
fn unknown_blocks_are_skipped_whole() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.conf",
        "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url { path / }\n  }\n }\n}\n\
         vrrp_instance X\n{\n track_interface {\n  eth1\n }\n virtual_ipaddress\n {\n 10.0.0.9\n }\n}\n",
    );
    let c = load(&a, &LoadOptions::default()).unwrap();
    assert_eq!(c.instances.len(), 1);
    assert_eq!(addrs(&c, "X"), ["10.0.0.9"]);
}

#[test]
fn never_panics_on_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let inputs: &[&[u8]] = &[
        b"{{{{}}}}}}}",
        b"vrrp_instance",
        b"vrrp_instance \"unterminated {",
        b"~SEQ(",
        b"~SEQ(n",
        b"~SEQ(n,",
        b"~SEQx(n, -1, 3) a",
        b"~LST(",
        b"~LST({a,b}, {1,2,3}) x",
        b"~LST(a, ) x",
        b"$",
        b"$=",
        b"$A=\\\n\n$A\n",
        b"${_RANDOM 1 5} ${_RANDOM} $_PWD $_INSTANCE",
        b"@",
        b"@^",
        b"include",
        b"include ",
        b"include \x00\xff",
        b"vrrp_instance X { virtual_ipaddress { / /1 : 1.2.3.4/ 1.2.3.4 peer } }",
        b"vrrp_sync_group { group { } }\nvrrp_sync_group G { group { A } group { B } }",
        b"\\",
        b"\"",
        b"\xff\xfe\x00",
    ];
    for (i, input) in inputs.iter().enumerate() {
        let p = dir.path().join(format!("g{i}.conf"));
        std::fs::write(&p, input).unwrap();
        let _ = load(&p, &LoadOptions::default());
    }
    let long = "a".repeat(5000);
    let p = write(
        dir.path(),
        "long.conf",
        &format!("{long}\n$X={long}\n$X $X\n"),
    );
    let _ = load(&p, &LoadOptions::default());
}

#[test]
fn runaway_substitution_is_bounded() {
    // Found by the keepalived_conf fuzz target: definitions that use each
    // other rewrite every line thousands of times while producing little
    // text; before the bound this 2 KiB file took 37 s (release build).
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/keepalived/runaway-substitution.conf");
    let e = load(&path, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("runaway-substitution.conf:36: more than 200000 `$NAME` substitutions"),
        "{e}"
    );
}

#[test]
fn fifos_devices_and_huge_files_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.conf");
    crate::readfile::mkfifo(&fifo);
    let e = load(&fifo, &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, KeepalivedError::NotRegularFile { .. }), "{e}");
    let e = load(Path::new("/dev/zero"), &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, KeepalivedError::NotRegularFile { .. }), "{e}");
    // An included FIFO is skipped, as keepalived skips it.
    let main = write(
        dir.path(),
        "main.conf",
        "include fifo.conf\nvrrp_instance A {\n  interface eth0\n}\n",
    );
    let c = load(&main, &LoadOptions::default()).unwrap();
    assert!(c.instance("A").is_some());
    assert!(
        c.warnings.iter().any(|w| w.contains("fifo.conf")),
        "{:?}",
        c.warnings
    );
    // Sparse, so the test costs no disk: 16 MiB and one byte.
    let big = dir.path().join("big.conf");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(state::MAX_FILE_BYTES + 1).unwrap();
    let e = load(&big, &LoadOptions::default()).unwrap_err().to_string();
    assert!(
        e.ends_with("big.conf: larger than 16 MiB; that is no keepalived config (check the path and the include patterns)"),
        "{e}"
    );
    let main = write(dir.path(), "inc.conf", "include big.conf\n");
    let e = load(&main, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("big.conf: larger than 16 MiB"), "{e}");
}
