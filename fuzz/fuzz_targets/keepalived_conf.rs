//! The keepalived.conf reader (`floaty::keepalived::load`) over arbitrary
//! bytes. It reads files, not buffers (includes are resolved relative to
//! the file), so each input is written to `keepalived.conf` in a scratch
//! directory that also holds files to include: a plain one, one that
//! includes another, one that includes itself, an executable one and
//! `d/1.conf`, which includes `d/2.conf`.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use floaty::keepalived::{load, LoadOptions};
use floaty_fuzz::{one_line, scratch, write};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        scratch("keepalived_conf", |d| {
            let vi = b"vrrp_instance VI_inc {\n  state MASTER\n  virtual_ipaddress {\n    192.0.2.50/24 dev eth0\n  }\n}\n";
            write(d, "inc.conf", vi, 0o644);
            write(d, "nested.conf", b"include inc.conf\n", 0o644);
            write(d, "loop.conf", b"include loop.conf\n", 0o644);
            write(d, "exec.conf", vi, 0o755);
            std::fs::create_dir_all(d.join("d")).expect("mkdir");
            write(d, "d/1.conf", b"include 2.conf\n", 0o644);
            write(d, "d/2.conf", b"vrrp_instance VI_d { virtual_ipaddress { 192.0.2.60 } }\n", 0o644);
        })
    })
}

/// An `include` reaching outside the scratch directory could read any host
/// file, such as a blocking one in /proc, and `include` and the path can
/// both be spelled through `$NAME` definitions. So every `/` must be
/// followed by a digit (as in `192.0.2.1/24`), and other inputs are
/// skipped: no absolute path but `$_PWD` (the scratch directory) can then
/// be written, and no `../` either.
fn confined(data: &[u8]) -> bool {
    data.windows(2)
        .all(|w| w[0] != b'/' || w[1].is_ascii_digit())
        && data.last() != Some(&b'/')
}

fuzz_target!(|data: &[u8]| {
    if !confined(data) {
        return;
    }
    let path = dir().join("keepalived.conf");
    std::fs::write(&path, data).expect("write keepalived.conf");
    let opts = LoadOptions {
        config_id: Some("node".into()),
    };
    match load(&path, &opts) {
        Ok(conf) => {
            // What notify and --check then do with it.
            for i in &conf.instances {
                let _ = i.addresses();
                let _ = conf.instance(&i.name);
            }
            for g in &conf.sync_groups {
                let _ = conf.group(&g.name);
            }
        }
        Err(e) => one_line("keepalived.conf", &e.to_string()),
    }
});
