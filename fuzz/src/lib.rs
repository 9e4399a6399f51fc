//! What the fuzz targets share: the property they check and the scratch
//! directories that keep file-reading parsers away from the host's files.

use std::path::{Path, PathBuf};

/// The property of every target: an error is one non-empty line, because
/// floaty prints it as one log line (`floaty: MESSAGE`). A panic anywhere
/// is a crash too; libFuzzer reports both.
pub fn one_line(what: &str, message: &str) {
    assert!(!message.is_empty(), "{what}: empty error");
    assert!(
        !message.contains(['\n', '\r']),
        "{what}: error is not one line: {message:?}"
    );
}

/// A fresh directory for this process (`fuzz/target/scratch/NAME-PID`),
/// filled by `fill`. Under `fuzz/target/` rather than /tmp: `fuzz/run-all`
/// removes it, and a pattern built from the directory's own path (for
/// keepalived.conf, `$_PWD*`) matches nothing outside it.
pub fn scratch(name: &str, fill: impl FnOnce(&Path)) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/scratch")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    fill(&dir);
    dir
}

/// Writes a scratch file with the given mode.
pub fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write a scratch file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .expect("chmod a scratch file");
}

/// Whether `needle` occurs in `hay`, ASCII case ignored.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}
