//! Where an instance's lock file lives: `lock-file-template` and the
//! encoding that keeps a name from keepalived inside its directory.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::config::DEFAULT_LOCK_FILE_TEMPLATE;

/// Where the per-VRRP-instance lock file lives: a path with one `%s` for the
/// instance name (vshn/floaty's `lock-file-template`, a Go `Sprintf` format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockTemplate(String);

impl LockTemplate {
    /// Only `%s` (once) and `%%` are accepted: the Go tool fed this to
    /// `Sprintf`, where any other directive produced a garbage file name
    /// like `%!d(string=VI_1)`; better to refuse it up front.
    pub fn new(template: &str) -> Result<Self, String> {
        let mut placeholders = 0;
        let mut chars = template.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                continue;
            }
            match chars.next() {
                Some('s') => placeholders += 1,
                Some('%') => {}
                Some(other) => {
                    return Err(format!(
                        "{template:?} contains `%{other}`; only %s (the instance name) and %% (a literal %) are allowed"
                    ))
                }
                None => {
                    return Err(format!(
                        "{template:?} ends in a lone %; write %% for a literal %"
                    ))
                }
            }
        }
        match placeholders {
            1 => Ok(LockTemplate(template.to_string())),
            0 => Err(format!(
                "{template:?} has no %s; it needs one for the instance name, e.g. {DEFAULT_LOCK_FILE_TEMPLATE}"
            )),
            n => Err(format!(
                "{template:?} has {n} %s; it needs exactly one, e.g. {DEFAULT_LOCK_FILE_TEMPLATE}"
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A relative template made absolute against `dir` (the YAML file's
    /// directory), as `keepalived-config` is: keepalived runs notify
    /// programs from `/`, so "relative to the caller" meant `/` there and
    /// the shell's directory when tried by hand.
    pub fn relative_to(self, dir: &Path) -> Result<LockTemplate, String> {
        if Path::new(&self.0).is_absolute() || dir.as_os_str().is_empty() {
            return Ok(self);
        }
        let Some(dir) = dir.to_str() else {
            return Err(format!(
                "{:?} is relative and the config file's directory is not UTF-8; write an absolute path",
                self.0
            ));
        };
        // The directory is literal text: a `%` in it is not a directive.
        let dir = dir.replace('%', "%%");
        let joined = Path::new(&dir).join(&self.0);
        Ok(LockTemplate(joined.to_string_lossy().into_owned()))
    }

    /// The lock file for one VRRP instance or group. The name comes from
    /// keepalived, i.e. from whoever wrote keepalived.conf, so it is
    /// percent-encoded down to `[A-Za-z0-9._~-]`: no `/`, no `..`, no
    /// spaces or quotes can move the lock out of its directory.
    pub fn path_for(&self, instance_name: &str) -> PathBuf {
        let name = encode_name(instance_name);
        let mut out = String::with_capacity(self.0.len() + name.len());
        let mut chars = self.0.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            // `new` guarantees only %s and %% occur.
            match chars.next() {
                Some('s') => out.push_str(&name),
                _ => out.push('%'),
            }
        }
        PathBuf::from(out)
    }
}

impl Default for LockTemplate {
    fn default() -> Self {
        LockTemplate(DEFAULT_LOCK_FILE_TEMPLATE.to_string())
    }
}

impl fmt::Display for LockTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub fn encode_name(name: &str) -> String {
    // "." and ".." are made of safe bytes but still mean "this directory" and
    // "the parent" when the template is e.g. `/run/floaty/%s`.
    match name {
        "." => return "%2E".to_string(),
        ".." => return "%2E%2E".to_string(),
        _ => {}
    }
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl<'de> Deserialize<'de> for LockTemplate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::text::text(d, "a path with one %s", LockTemplate::new)
    }
}
