//! The YAML config loader (`floaty::config::parse_with_env`, what `load`
//! calls after reading the file), then what `floaty --check` prints and
//! the checks before a run. The config lives in a scratch directory with
//! credential files to name (`token`, `empty`, `two-lines`, `big`,
//! `binary`, a directory `dir`); an input holding `#env` also gets
//! FLOATY_CLOUDSCALE_TOKEN and FLOATY_EXOSCALE_KEY set.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use floaty::config::{parse_with_env, ENV_CLOUDSCALE_TOKEN, ENV_EXOSCALE_KEY};
use floaty_fuzz::{contains, one_line, scratch, write};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        scratch("config_yaml", |d| {
            write(d, "token", b"secret-token\n", 0o600);
            write(d, "empty", b"", 0o600);
            write(d, "two-lines", b"a\nb\n", 0o600);
            write(d, "big", &vec![b'x'; 70 << 10], 0o600);
            write(d, "binary", b"\xff\xfe\n", 0o644);
            std::fs::create_dir_all(d.join("dir")).expect("mkdir");
        })
    })
}

/// A `*-file` key with a `/` in its value could read any host file (such
/// as a blocking one in /proc). Skipped: inputs with a backslash (a YAML
/// escape can spell the key and the `/`), and inputs naming a `file` with a
/// `/` or a `binary` tag (base64 can spell a `/`). Other file names resolve
/// inside the scratch directory.
fn confined(data: &[u8]) -> bool {
    let named_file = contains(data, b"file");
    !(data.contains(&b'\\') || (named_file && (data.contains(&b'/') || contains(data, b"binary"))))
}

fuzz_target!(|data: &[u8]| {
    if !confined(data) {
        return;
    }
    let text = String::from_utf8_lossy(data);
    let with_env = text.contains("#env");
    let env = |name: &str| {
        (with_env && (name == ENV_CLOUDSCALE_TOKEN || name == ENV_EXOSCALE_KEY))
            .then(|| format!("from-env-{name}"))
    };
    match parse_with_env(&text, &dir().join("floaty.yml"), &env) {
        Ok(cfg) => {
            // What `floaty --check` prints must not fail either.
            let _ = cfg.to_string();
            if let Err(e) = cfg.run_credentials() {
                one_line("floaty.yml", &e.to_string());
            }
        }
        Err(e) => one_line("floaty.yml", &e.to_string()),
    }
});
