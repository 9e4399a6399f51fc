//! floaty's YAML config file.
//!
//! The keys, defaults and value syntax are vshn/floaty's, so a file written
//! for the Go tool loads unchanged. What differs is how mistakes are
//! reported: this file is usually edited on a production router in a hurry,
//! so every error is one line naming the file, the line, the key as a dotted
//! path and what to write instead.
//!
//! How: every value with a rule (durations, UUIDs, addresses, URLs, the lock
//! template, the multiplier) is a newtype whose `Deserialize` does the check,
//! so serde_yaml attaches position and key path to our message for free.
//! [`ConfigError`] then takes serde_yaml's text apart and puts it back in our
//! one-line shape. Only checks that span keys (provider-dependent defaults,
//! required credentials) run after deserializing and carry no line.
//!
//! To add a key: add a field to the matching `Raw*` struct (serde's
//! "unknown key" message picks it up by itself), and copy it into the public
//! struct in [`build`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use floaty_providers::Secret;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use uuid::Uuid;

use crate::address::Vip;
use crate::duration;

#[path = "config_stop.rs"]
mod stop;
pub use stop::{stop_settings, StopSettings};

/// In a directory of floaty's own that other users cannot write, not in
/// `/var/lock`: that is `/run/lock`, mode 1777, where any local user could
/// create, hold or forge floaty's lock files.
pub const DEFAULT_LOCK_FILE_TEMPLATE: &str = "/run/floaty/floaty.%s.lock";
/// The default of older floaty versions (and of vshn/floaty). A stop must also
/// look there: a refresher started by an older floaty, before an upgrade,
/// holds its lock in this place and must still be found and ended.
pub const LEGACY_LOCK_FILE_TEMPLATE: &str = "/var/lock/floaty.%s.lock";
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_KEEPALIVED_CONFIG: &str = "/etc/keepalived/keepalived.conf";
const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
/// Exoscale's API is slower to answer than cloudscale's; vshn/floaty's
/// documentation recommends 15s there, so that is what an absent key means.
const DEFAULT_EXOSCALE_REFRESH_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_CLOUDSCALE_ENDPOINT: &str = "https://api.cloudscale.ch/";

/// The whole configuration, defaults applied and every value checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, for messages that point the user back to it.
    pub path: PathBuf,
    /// Relative templates already resolved against the file's directory.
    pub lock_file_template: LockTemplate,
    /// Whether `lock-file-template` was set (else it is the default, and a
    /// stop also looks at [`LEGACY_LOCK_FILE_TEMPLATE`]).
    pub lock_template_from_file: bool,
    pub lock_timeout: Duration,
    pub keepalived_config: PathBuf,
    /// keepalived's `-i`/`--config-id`: picks the `@id`-prefixed lines of a
    /// config shared by several nodes. `None` means keepalived's default.
    pub keepalived_config_id: Option<String>,
    /// Empty means: manage the VIPs found in keepalived's config.
    pub managed_addresses: Vec<Vip>,
    pub refresh_interval: Duration,
    pub refresh_timeout: Duration,
    pub back_off: BackOff,
    pub provider: ProviderKind,
    pub cloudscale: Cloudscale,
    pub exoscale: Exoscale,
    /// Commands run on events (`rules:`), context already filled in.
    pub rules: Vec<crate::rules::Rule>,
    /// The split-brain guard (see `vip.rs`).
    pub verify_master: VerifyMaster,
    /// Whether the YAML itself holds a credential (`token`, `key`,
    /// `secret`), so [`load`] can warn when the file is readable by others.
    pub inline_secret: bool,
    /// One-line warnings found while loading (secret files readable by
    /// group or others); [`load`] logs each once.
    pub warnings: Vec<String>,
}

/// The effective settings, defaults included, in the file's own syntax:
/// what `floaty check` and debug logs show so an operator can see what a
/// missing key turned into. Credentials print as `***` or `(not set)`.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = duration::format;
        let secret = |s: &Option<Secret>| match s {
            Some(_) => "***",
            None => "(not set)",
        };
        let opt = |o: Option<String>| o.unwrap_or_else(|| "(not set)".to_string());
        writeln!(f, "# {}", self.path.display())?;
        writeln!(f, "lock-file-template: {}", self.lock_file_template)?;
        writeln!(f, "lock-timeout: {}", d(self.lock_timeout))?;
        writeln!(f, "keepalived-config: {}", self.keepalived_config.display())?;
        writeln!(
            f,
            "keepalived-config-id: {}",
            opt(self.keepalived_config_id.clone())
        )?;
        if self.managed_addresses.is_empty() {
            writeln!(f, "managed-addresses: [] # the VIPs in keepalived-config")?;
        } else {
            writeln!(f, "managed-addresses:")?;
            for vip in &self.managed_addresses {
                writeln!(f, "  - {vip}")?;
            }
        }
        writeln!(f, "refresh-interval: {}", d(self.refresh_interval))?;
        writeln!(f, "refresh-timeout: {}", d(self.refresh_timeout))?;
        let b = &self.back_off;
        writeln!(f, "back-off:")?;
        writeln!(f, "  initial-interval: {}", d(b.initial_interval))?;
        writeln!(f, "  multiplier: {}", b.multiplier)?;
        writeln!(f, "  max-interval: {}", d(b.max_interval))?;
        writeln!(
            f,
            "  max-elapsed-time: {}",
            b.max_elapsed_time
                .map_or("0 # retry for ever".to_string(), d)
        )?;
        writeln!(f, "verify-master: {}", self.verify_master.as_str())?;
        writeln!(f, "provider: {}", self.provider)?;
        match self.provider {
            ProviderKind::Cloudscale => {
                let c = &self.cloudscale;
                writeln!(f, "cloudscale:")?;
                writeln!(f, "  endpoint: {}", c.endpoint)?;
                writeln!(f, "  token: {}", secret(&c.token))?;
                writeln!(
                    f,
                    "  server-uuid: {}",
                    opt(c.server_uuid.map(|u| u.to_string()))
                )?;
                write!(f, "  hostname-to-server-uuid:")?;
                if c.hostname_to_server_uuid.is_empty() {
                    write!(f, " {{}}")?;
                }
                for (host, uuid) in &c.hostname_to_server_uuid {
                    write!(f, "\n    {host}: {uuid}")?;
                }
                Ok(())
            }
            ProviderKind::Exoscale => {
                let e = &self.exoscale;
                writeln!(f, "exoscale:")?;
                writeln!(f, "  endpoint: {}", opt(e.endpoint.clone()))?;
                writeln!(f, "  zone: {}", opt(e.zone.clone()))?;
                writeln!(f, "  key: {}", secret(&e.key))?;
                writeln!(f, "  secret: {}", secret(&e.secret))?;
                write!(
                    f,
                    "  instance-id: {}",
                    opt(e.instance_id.map(|u| u.to_string()))
                )
            }
        }
    }
}

/// Retry policy for failed cloud API calls (the same knobs as the Go
/// `cenkalti/backoff` library vshn/floaty used).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackOff {
    pub initial_interval: Duration,
    pub multiplier: f64,
    pub max_interval: Duration,
    /// `None` = retry for ever (`max-elapsed-time: 0`, the default).
    pub max_elapsed_time: Option<Duration>,
}

impl Default for BackOff {
    fn default() -> Self {
        BackOff {
            initial_interval: Duration::from_secs(1),
            multiplier: 1.1,
            max_interval: Duration::from_secs(10),
            max_elapsed_time: None,
        }
    }
}

/// `verify-master`: whether a refresher checks that this node holds the
/// instance's virtual IPs before each write (the split-brain guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyMaster {
    /// On for instances with `virtual_ipaddress` in keepalived.conf.
    #[default]
    Auto,
    /// On; an instance without VIPs is a config error.
    Always,
    Off,
}

impl VerifyMaster {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMaster::Auto => "auto",
            VerifyMaster::Always => "always",
            VerifyMaster::Off => "off",
        }
    }
}

impl<'de> Deserialize<'de> for VerifyMaster {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // YAML 1.1 reads a bare `off` as a boolean; accept it as meant.
        struct V;
        impl Visitor<'_> for V {
            type Value = VerifyMaster;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("auto, always or off")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<VerifyMaster, E> {
                match s {
                    "auto" => Ok(VerifyMaster::Auto),
                    "always" => Ok(VerifyMaster::Always),
                    "off" => Ok(VerifyMaster::Off),
                    other => Err(E::custom(format!(
                        "{other:?} is not one of auto, always, off"
                    ))),
                }
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<VerifyMaster, E> {
                if b {
                    Err(E::custom("`true` is ambiguous; write auto, always or off"))
                } else {
                    Ok(VerifyMaster::Off)
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Cloudscale,
    Exoscale,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Cloudscale => "cloudscale",
            ProviderKind::Exoscale => "exoscale",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Cloudscale {
    /// Always an http(s) URL ending in `/`, so API paths can be appended.
    pub endpoint: String,
    pub token: Option<Secret>,
    pub server_uuid: Option<Uuid>,
    pub hostname_to_server_uuid: BTreeMap<String, Uuid>,
}

impl Default for Cloudscale {
    fn default() -> Self {
        Cloudscale {
            endpoint: DEFAULT_CLOUDSCALE_ENDPOINT.to_string(),
            token: None,
            server_uuid: None,
            hostname_to_server_uuid: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Exoscale {
    pub endpoint: Option<String>,
    pub zone: Option<String>,
    pub key: Option<Secret>,
    pub secret: Option<Secret>,
    pub instance_id: Option<Uuid>,
}

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

fn encode_name(name: &str) -> String {
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

/// A config that cannot be used. Always the user's to fix, so the caller
/// treats every variant as a usage error (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read config file: {source}", shown_path(path))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a file floaty reads at all (a FIFO would block for ever, a
    /// device never end), so it is refused before it is read.
    #[error("{}: {problem}; CONFIG must be floaty's YAML file", shown_path(path))]
    File {
        path: PathBuf,
        #[source]
        problem: crate::readfile::ReadError,
    },
    #[error("{}", render(path, *line, *column, key.as_deref(), message))]
    Invalid {
        path: PathBuf,
        /// 1-based, where serde_yaml knows it.
        line: Option<usize>,
        column: Option<usize>,
        /// Dotted key path such as `back-off.multiplier`.
        key: Option<String>,
        message: String,
    },
}

fn render(
    path: &Path,
    line: Option<usize>,
    column: Option<usize>,
    key: Option<&str>,
    message: &str,
) -> String {
    let mut s = format!("{}: ", path.display());
    match (line, column) {
        (Some(l), Some(c)) => s.push_str(&format!("line {l}, column {c}: ")),
        (Some(l), None) => s.push_str(&format!("line {l}: ")),
        _ => {}
    }
    if let Some(key) = key {
        s.push_str(key);
        s.push_str(": ");
    }
    s.push_str(message);
    // Errors are one line, always: a key or value can hold newlines (a
    // quoted or flow-style YAML key can span lines), and a multi-line
    // message breaks every log pipeline and the "one clear line" promise.
    crate::event::shown(&s)
}

impl ConfigError {
    fn invalid(path: &Path, key: Option<&str>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line: None,
            column: None,
            key: key.map(str::to_string),
            message: message.into(),
        }
    }
}

/// floaty.yml is a few KiB; a file beyond this is the wrong file (or
/// `/dev/zero` behind a symlink), not a config.
pub const MAX_CONFIG_FILE: u64 = 1 << 20;

/// A path in a message, control characters escaped so it stays one line.
fn shown_path(path: &Path) -> String {
    crate::event::shown(&path.display().to_string())
}

/// The text of the YAML at `path`, refusing what is not a regular file or
/// is larger than [`MAX_CONFIG_FILE`].
fn read_config(path: &Path) -> Result<String, ConfigError> {
    use crate::readfile::{read_regular, ReadError};
    let (bytes, _) = read_regular(path, MAX_CONFIG_FILE).map_err(|e| match e {
        ReadError::Io(source) => ConfigError::Read {
            path: path.to_path_buf(),
            source,
        },
        problem => ConfigError::File {
            path: path.to_path_buf(),
            problem,
        },
    })?;
    String::from_utf8(bytes).map_err(|_| {
        ConfigError::invalid(
            path,
            None,
            "the file is not UTF-8 text; save it as UTF-8 (or plain ASCII)",
        )
    })
}

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = read_config(path)?;
    let mut config = parse(&text, path)?;
    if config.inline_secret {
        if let Some(w) = readable_by_others(path, "holds a credential inline") {
            config.warnings.insert(0, w);
        }
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

/// The environment variables that can carry credentials, so the YAML (often
/// world-readable, often in git) need not.
pub const ENV_CLOUDSCALE_TOKEN: &str = "FLOATY_CLOUDSCALE_TOKEN";
pub const ENV_EXOSCALE_KEY: &str = "FLOATY_EXOSCALE_KEY";
pub const ENV_EXOSCALE_SECRET: &str = "FLOATY_EXOSCALE_SECRET";

/// A secret file larger than this is not a token: refuse it rather than
/// send megabytes in a header.
const MAX_SECRET_FILE: u64 = 64 << 10;

/// A warning when `file` can be read by group or others (mode & 0o077).
fn readable_by_others(file: &Path, what: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} {what} and is readable by group or others (mode {mode:04o}); run chmod 600 on it",
            file.display()
        )
    })
}

/// The names one credential goes by: `section.key` inline in the YAML,
/// `section.key-file`, and an environment variable. One table, so the
/// loader and the "missing" hint cannot disagree about them.
struct Credential {
    section: &'static str,
    key: &'static str,
    env_var: &'static str,
    /// What this provider demands of the value beyond being one word;
    /// the message must not quote it.
    check: fn(&str) -> Result<(), String>,
}

const CLOUDSCALE_TOKEN: Credential = Credential {
    section: "cloudscale",
    key: "token",
    env_var: ENV_CLOUDSCALE_TOKEN,
    check: |_| Ok(()),
};
const EXOSCALE_KEY: Credential = Credential {
    section: "exoscale",
    key: "key",
    env_var: ENV_EXOSCALE_KEY,
    check: floaty_providers::exoscale::check_key,
};
const EXOSCALE_SECRET: Credential = Credential {
    section: "exoscale",
    key: "secret",
    env_var: ENV_EXOSCALE_SECRET,
    check: |_| Ok(()),
};

/// Why `value` cannot be a credential, without quoting it. A token with a
/// newline or space in it (a pasted line break, quotes around a two-word
/// copy) passed every check before and then failed in the refresher on
/// every request, long after the MASTER call had reported success.
fn credential_problem(value: &str) -> Option<&'static str> {
    if value.contains(['\n', '\r']) {
        Some("holds a line break; a credential is a single word (check for a pasted newline)")
    } else if value.chars().any(char::is_control) {
        Some("holds a control character; a credential is a single word of printable characters")
    } else if value.chars().any(char::is_whitespace) {
        Some("holds whitespace; a credential is a single word (check for spaces or tabs copied along)")
    } else {
        None
    }
}

impl Credential {
    fn key(&self) -> String {
        format!("{}.{}", self.section, self.key)
    }

    /// Where the credential comes from: the inline key, its `-file` key,
    /// or the environment variable, in that order of being looked at.
    /// Inline and file together is ambiguous and refused; the environment
    /// is used only when the YAML sets neither, so what the file says
    /// always wins. `used` says whether the configured provider needs this
    /// credential: only then is its value checked (an unused section may
    /// hold anything, as it never leaves the machine).
    fn resolve(
        &self,
        inline: Option<Secret>,
        file: Option<String>,
        config: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        used: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Secret>, ConfigError> {
        let key = self.key();
        let file_key = format!("{key}-file");
        let check = |secret: &Secret, name: &str, what: &str| {
            if !used {
                return Ok(());
            }
            let value = secret.expose();
            match credential_problem(value) {
                Some(why) => Err(why.to_string()),
                None => (self.check)(value),
            }
            .map_err(|why| ConfigError::invalid(config, Some(name), format!("{what}{why}")))
        };
        match (inline, file) {
            (Some(_), Some(_)) => Err(ConfigError::invalid(
                config,
                Some(&key),
                format!("set together with `{file_key}`; keep one"),
            )),
            (Some(inline), None) => {
                check(&inline, &key, "the value ")?;
                Ok(Some(inline))
            }
            (None, Some(file)) => {
                // Relative to the YAML file, like keepalived-config.
                let file = config.parent().unwrap_or(Path::new("")).join(file);
                let secret = read_secret_file(&file)
                    .map_err(|why| ConfigError::invalid(config, Some(&file_key), why))?;
                check(&secret, &file_key, &format!("{} ", file.display()))?;
                warnings.extend(readable_by_others(&file, "holds a credential"));
                Ok(Some(secret))
            }
            (None, None) => {
                let Some(value) = env(self.env_var).filter(|v| !v.is_empty()) else {
                    return Ok(None);
                };
                let secret = Secret::new(value.trim_end_matches(['\n', '\r']));
                check(
                    &secret,
                    &format!("{} (environment, for {key})", self.env_var),
                    "the value ",
                )?;
                Ok(Some(secret))
            }
        }
    }

    /// The error for a run without the credential; `what` says what it is,
    /// the hint names the other two places it could come from.
    fn missing(&self, config: &Path, what: &str) -> ConfigError {
        let key = self.key();
        ConfigError::invalid(
            config,
            Some(&key),
            format!(
                "missing; set it to {what} (or use {key}-file or {})",
                self.env_var
            ),
        )
    }
}

/// Reads a credential from a file: one line, the trailing newline dropped.
/// Messages name the file, never its content.
fn read_secret_file(file: &Path) -> Result<Secret, String> {
    use crate::readfile::{read_regular, ReadError};
    let shown = file.display();
    let (bytes, _) = read_regular(file, MAX_SECRET_FILE).map_err(|e| match e {
        ReadError::Io(e) => format!("cannot read {shown}: {e}"),
        ReadError::TooLarge { .. } => format!(
            "{shown} is larger than {MAX_SECRET_FILE} bytes; it should hold only the credential"
        ),
        other => format!("{shown} {other}"),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8 text"))?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(format!("{shown} is empty; it should hold the credential"));
    }
    if value.contains(['\n', '\r']) {
        return Err(format!(
            "{shown} holds more than one line; it should hold only the credential"
        ));
    }
    Ok(Secret::new(value))
}

pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_with_env(text, path, &|name| std::env::var(name).ok())
}

/// [`parse`] with the environment given, so tests need not change the
/// process's own.
pub fn parse_with_env(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    // A first, position-less look: to tell "empty" from "broken", and to learn
    // the secret values so no error message can ever echo them.
    let secrets = match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(serde_yaml::Value::Null) => return Err(ConfigError::invalid(
            path,
            None,
            "the file is empty; it needs at least `provider: cloudscale` or `provider: exoscale`",
        )),
        Ok(value) => secret_values(&value),
        Err(_) => Vec::new(),
    };
    let raw: RawConfig = serde_yaml::from_str(text).map_err(|e| {
        let err = yaml_error(&e, text, path, &secrets);
        name_the_rule(err, text)
    })?;
    build(raw, path, text, env)
}

/// An error inside `rules[N]` also names the rule, as people know rules by
/// name rather than by position.
fn name_the_rule(err: ConfigError, text: &str) -> ConfigError {
    let ConfigError::Invalid {
        path,
        line,
        column,
        key,
        message,
    } = err
    else {
        return err;
    };
    // The key, or for unknown keys the message, holds `rules[N]`.
    let name = key
        .as_deref()
        .and_then(|k| k.strip_prefix("rules["))
        .or_else(|| message.split_once("`rules[").map(|(_, rest)| rest))
        .and_then(|k| k.split(']').next())
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| {
            let value: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
            let name = value.get("rules")?.get(i)?.get("name")?;
            name.as_str().map(str::to_string)
        });
    let message = match name {
        Some(n) => format!("rule `{n}`: {message}"),
        None => message,
    };
    ConfigError::Invalid {
        path,
        line,
        column,
        key,
        message,
    }
}

impl Config {
    /// Credentials are only needed to talk to the cloud; `--dry-run` and
    /// tooling that just reads the file must work without them.
    pub fn validate_for_run(&self, dry_run: bool) -> Result<(), ConfigError> {
        if dry_run {
            return Ok(());
        }
        match self.provider {
            ProviderKind::Cloudscale => {
                if self.cloudscale.token.is_none() {
                    return Err(CLOUDSCALE_TOKEN
                        .missing(&self.path, "a cloudscale API token with write access"));
                }
            }
            ProviderKind::Exoscale => {
                if self.exoscale.key.is_none() {
                    return Err(EXOSCALE_KEY.missing(&self.path, "your Exoscale API key (EXO...)"));
                }
                if self.exoscale.secret.is_none() {
                    return Err(EXOSCALE_SECRET.missing(&self.path, "your Exoscale API secret"));
                }
            }
        }
        Ok(())
    }
}

fn build(
    raw: RawConfig,
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let provider = raw.provider.and_then(|p| p.0).ok_or_else(|| {
        ConfigError::invalid(
            path,
            Some("provider"),
            "missing; set `provider: cloudscale` or `provider: exoscale`",
        )
    })?;
    let keepalived_config = match raw.keepalived_config {
        // Relative to the YAML file, not to wherever floaty was started from
        // (keepalived runs notify scripts with cwd `/`).
        Some(p) => path.parent().unwrap_or(Path::new("")).join(p.0),
        None => PathBuf::from(DEFAULT_KEEPALIVED_CONFIG),
    };
    let default_timeout = match provider {
        ProviderKind::Exoscale => DEFAULT_EXOSCALE_REFRESH_TIMEOUT,
        ProviderKind::Cloudscale => DEFAULT_REFRESH_TIMEOUT,
    };
    let back_off = raw.back_off.unwrap_or_default();
    let defaults = BackOff::default();
    let cloudscale = raw.cloudscale.unwrap_or_default();
    let exoscale = raw.exoscale.unwrap_or_default();
    let inline = |s: &Option<SecretValue>| s.as_ref().and_then(|s| s.0.clone());
    let inline_secret = inline(&cloudscale.token).is_some()
        || inline(&exoscale.key).is_some()
        || inline(&exoscale.secret).is_some();
    let mut warnings = Vec::new();
    let mut resolve = |credential: &Credential,
                       value: &Option<SecretValue>,
                       file: Option<NonEmpty>,
                       used: ProviderKind| {
        credential.resolve(
            inline(value),
            file.map(|f| f.0),
            path,
            env,
            used == provider,
            &mut warnings,
        )
    };
    let token = resolve(
        &CLOUDSCALE_TOKEN,
        &cloudscale.token,
        cloudscale.token_file,
        ProviderKind::Cloudscale,
    )?;
    let exoscale_key = resolve(
        &EXOSCALE_KEY,
        &exoscale.key,
        exoscale.key_file,
        ProviderKind::Exoscale,
    )?;
    let exoscale_secret = resolve(
        &EXOSCALE_SECRET,
        &exoscale.secret,
        exoscale.secret_file,
        ProviderKind::Exoscale,
    )?;
    let context: BTreeMap<String, String> = raw
        .context
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let rules = crate::rules::build(raw.rules.unwrap_or_default(), &context).map_err(
        |(index, name, message)| {
            // Point at the offending line: the `{context.KEY}` use, else the name.
            let line = message
                .split('`')
                .nth(1)
                .and_then(|needle| text.lines().position(|l| l.contains(needle)))
                .or_else(|| {
                    text.lines()
                        .enumerate()
                        .filter(|(_, l)| l.contains("name:") && l.contains(name.as_str()))
                        .map(|(i, _)| i)
                        .nth(usize::from(message.starts_with("another rule")))
                });
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line: line.map(|l| l + 1),
                column: None,
                key: Some(format!("rules[{index}]")),
                message: format!("rule `{name}`: {message}"),
            }
        },
    )?;
    Ok(Config {
        path: path.to_path_buf(),
        lock_template_from_file: raw.lock_file_template.is_some(),
        lock_file_template: match raw.lock_file_template {
            Some(t) => t
                .relative_to(path.parent().unwrap_or(Path::new("")))
                .map_err(|m| ConfigError::invalid(path, Some("lock-file-template"), m))?,
            None => LockTemplate::default(),
        },
        lock_timeout: raw.lock_timeout.map_or(DEFAULT_LOCK_TIMEOUT, |d| d.0),
        keepalived_config,
        keepalived_config_id: raw.keepalived_config_id.map(|s| s.0),
        managed_addresses: raw
            .managed_addresses
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.0)
            .collect(),
        refresh_interval: raw
            .refresh_interval
            .map_or(DEFAULT_REFRESH_INTERVAL, |d| d.0),
        refresh_timeout: raw.refresh_timeout.map_or(default_timeout, |d| d.0),
        back_off: BackOff {
            initial_interval: back_off
                .initial_interval
                .map_or(defaults.initial_interval, |d| d.0),
            multiplier: back_off.multiplier.map_or(defaults.multiplier, |m| m.0),
            max_interval: back_off.max_interval.map_or(defaults.max_interval, |d| d.0),
            max_elapsed_time: match back_off.max_elapsed_time {
                Some(AnyDuration(d)) if !d.is_zero() => Some(d),
                _ => None,
            },
        },
        provider,
        cloudscale: Cloudscale {
            endpoint: cloudscale
                .endpoint
                .map_or_else(|| DEFAULT_CLOUDSCALE_ENDPOINT.to_string(), |e| e.0),
            token,
            server_uuid: cloudscale.server_uuid.and_then(|u| u.0),
            hostname_to_server_uuid: cloudscale
                .hostname_to_server_uuid
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(host, u)| Some((host, u.0?)))
                .collect(),
        },
        exoscale: Exoscale {
            endpoint: exoscale.endpoint.map(|e| e.0),
            zone: exoscale.zone.and_then(|z| z.0),
            key: exoscale_key,
            secret: exoscale_secret,
            instance_id: exoscale.instance_id.and_then(|u| u.0),
        },
        rules,
        verify_master: raw.verify_master.unwrap_or_default(),
        inline_secret,
        warnings,
    })
}

// ---------------------------------------------------------------------------
// What the YAML holds. Every field is an Option so that `key:` with no value
// means "default", as it did with Go's yaml.v2.

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping of settings such as `provider: cloudscale`"
)]
struct RawConfig {
    lock_file_template: Option<LockTemplate>,
    lock_timeout: Option<Timeout>,
    keepalived_config: Option<NonEmpty>,
    keepalived_config_id: Option<NonEmpty>,
    managed_addresses: Option<Vec<VipValue>>,
    refresh_interval: Option<RefreshInterval>,
    refresh_timeout: Option<Timeout>,
    back_off: Option<RawBackOff>,
    provider: Option<ProviderValue>,
    verify_master: Option<VerifyMaster>,
    cloudscale: Option<RawCloudscale>,
    exoscale: Option<RawExoscale>,
    rules: Option<Vec<crate::rules::RawRule>>,
    /// Free user strings for rule templates (`{context.KEY}`).
    context: Option<BTreeMap<String, crate::rules::ContextValue>>,
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with initial-interval, multiplier, max-interval, max-elapsed-time"
)]
struct RawBackOff {
    initial_interval: Option<BackOffInterval>,
    multiplier: Option<Multiplier>,
    max_interval: Option<BackOffInterval>,
    max_elapsed_time: Option<AnyDuration>,
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with endpoint, token, token-file, server-uuid, hostname-to-server-uuid"
)]
struct RawCloudscale {
    endpoint: Option<Endpoint>,
    token: Option<SecretValue>,
    /// A file holding the token (the rest of the YAML can then be public).
    token_file: Option<NonEmpty>,
    server_uuid: Option<UuidValue>,
    hostname_to_server_uuid: Option<BTreeMap<String, UuidValue>>,
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping with endpoint, zone, key, key-file, secret, secret-file, instance-id"
)]
struct RawExoscale {
    endpoint: Option<ExoscaleEndpoint>,
    zone: Option<OptionalText>,
    key: Option<SecretValue>,
    key_file: Option<NonEmpty>,
    secret: Option<SecretValue>,
    secret_file: Option<NonEmpty>,
    instance_id: Option<UuidValue>,
}

/// Keys that belong in a section, for the hint when one is written at the top.
const SECTION_KEYS: &[(&str, &[&str])] = &[
    (
        "back-off",
        &[
            "initial-interval",
            "multiplier",
            "max-interval",
            "max-elapsed-time",
        ],
    ),
    (
        "cloudscale",
        &[
            "endpoint",
            "token",
            "token-file",
            "server-uuid",
            "hostname-to-server-uuid",
        ],
    ),
    (
        "exoscale",
        &[
            "endpoint",
            "zone",
            "key",
            "key-file",
            "secret",
            "secret-file",
            "instance-id",
        ],
    ),
];

// ---------------------------------------------------------------------------
// Checked values. Each `Deserialize` reads the scalar as text (serde_yaml
// hands every scalar over as a string, so `token: 1234` works as in Go) and
// returns our message; serde_yaml adds line and key.

/// Reads a scalar as text and checks it. Non-text input from other formats
/// is described by its type only: the value might be a secret.
struct TextVisitor<T> {
    expecting: &'static str,
    check: fn(&str) -> Result<T, String>,
}

impl<T> Visitor<'_> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.check)(v).map_err(E::custom)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
        Err(E::custom(format!(
            "expected {}, found a boolean",
            self.expecting
        )))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<T, E> {
        Err(E::custom(format!(
            "expected {}, found a number",
            self.expecting
        )))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<T, E> {
        Err(E::custom(format!(
            "expected {}, found a number",
            self.expecting
        )))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
        Err(E::custom(format!(
            "expected {}, found a number",
            self.expecting
        )))
    }
}

/// Deserializes a scalar as text and checks it with `check`; `expecting`
/// names what was wanted. Shared with `rules.rs`, so rule values and
/// settings read and report alike.
pub(crate) fn text<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    d.deserialize_str(TextVisitor { expecting, check })
}

impl<'de> Deserialize<'de> for LockTemplate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a path with one %s", LockTemplate::new)
    }
}

/// Intervals and timeouts, with a floor of `MIN_MS` milliseconds: zero
/// would mean a busy loop or an instant failure, and values just above it
/// nearly the same (`refresh-interval: 1ns` made 115 API requests in 5 s).
/// The floors are in [`MIN_REFRESH_INTERVAL`] and its neighbours.
struct MinDuration<const MIN_MS: u64>(Duration);

/// The lower bounds, documented in docs/BAD-INPUT.md and the README.
/// refresh-interval: one API read per second per instance is already more
/// than any cloud API wants to see for an address that is not moving.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// refresh-timeout and lock-timeout: below this a request or a stopping
/// refresher cannot finish even on a fast path; it is a typo, not a policy.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// back-off intervals: retries closer than this only hammer a failing API.
pub const MIN_BACK_OFF: Duration = Duration::from_millis(10);

type RefreshInterval = MinDuration<{ MIN_REFRESH_INTERVAL.as_millis() as u64 }>;
type Timeout = MinDuration<{ MIN_TIMEOUT.as_millis() as u64 }>;
type BackOffInterval = MinDuration<{ MIN_BACK_OFF.as_millis() as u64 }>;

fn min_duration<const MIN_MS: u64>(s: &str) -> Result<MinDuration<MIN_MS>, String> {
    let min = Duration::from_millis(MIN_MS);
    match duration::parse(s).map_err(|e| e.to_string())? {
        d if d.is_zero() => Err(format!(
            "`{s}` is zero; it must be longer than that, e.g. 10s"
        )),
        d if d < min => Err(format!(
            "`{s}` is below the minimum of {}; write at least {}",
            duration::format(min),
            duration::format(min)
        )),
        d => Ok(MinDuration(d)),
    }
}

impl<'de, const MIN_MS: u64> Deserialize<'de> for MinDuration<MIN_MS> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a duration like 10s", min_duration::<MIN_MS>)
    }
}

/// `max-elapsed-time`, where 0 has a meaning (no limit).
struct AnyDuration(Duration);

impl<'de> Deserialize<'de> for AnyDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        duration::deserialize(d).map(AnyDuration)
    }
}

struct Multiplier(f64);

impl<'de> Deserialize<'de> for Multiplier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Multiplier;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of at least 1, e.g. 1.5")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Multiplier, E> {
                // Below 1 the waits would shrink: hammering a failing API.
                if v.is_finite() && v >= 1.0 {
                    Ok(Multiplier(v))
                } else {
                    Err(E::custom(format!(
                        "{v} is not allowed; the multiplier must be a number of at least 1, e.g. 1.5"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Multiplier, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Multiplier, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_f64(V)
    }
}

struct VipValue(Vip);

impl<'de> Deserialize<'de> for VipValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "an address like 192.0.2.10 or 2001:db8::10/64", |s| {
            s.parse().map(VipValue).map_err(|e| format!("{e}"))
        })
    }
}

/// `None` for the nil UUID: vshn/floaty treated all-zeros as "not set".
struct UuidValue(Option<Uuid>);

impl<'de> Deserialize<'de> for UuidValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a UUID", |s| {
            match Uuid::parse_str(s.trim()) {
            Ok(u) if u.is_nil() => Ok(UuidValue(None)),
            Ok(u) => Ok(UuidValue(Some(u))),
            Err(_) => Err(format!(
                "{s:?} is not a UUID (expected 8-4-4-4-12 hex digits, e.g. 6c1c8e4e-8f2a-4b0e-9a53-3c1e8f0a2b7d)"
            )),
        }
        })
    }
}

/// Empty means absent, as with Go's zero-value strings.
struct SecretValue(Option<Secret>);

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The check must never quote its input.
        text(d, "a string", |s| {
            // A block scalar (`token: |`) ends in a newline; dropped as it
            // is from a file or the environment.
            let s = s.trim_end_matches(['\n', '\r']);
            Ok(SecretValue((!s.is_empty()).then(|| Secret::new(s))))
        })
    }
}

struct OptionalText(Option<String>);

impl<'de> Deserialize<'de> for OptionalText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a string", |s| {
            Ok(OptionalText((!s.is_empty()).then(|| s.to_string())))
        })
    }
}

/// Paths and ids where an empty string can only be a mistake.
struct NonEmpty(String);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a non-empty string", |s| {
            if s.is_empty() {
                Err("empty; remove the key to use the default".to_string())
            } else {
                Ok(NonEmpty(s.to_string()))
            }
        })
    }
}

/// cloudscale's base URL, normalised to end in `/` so API paths can be
/// appended.
struct Endpoint(String);

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "an http(s) URL", |s| {
            let mut url = check_url(s)?;
            if !url.ends_with('/') {
                url.push('/');
            }
            Ok(Endpoint(url))
        })
    }
}

/// Exoscale's endpoint is the whole API base (`https://api-ZONE.exoscale.com/v2`);
/// the provider drops a trailing `/` and ignores vshn/floaty's v1 URLs.
struct ExoscaleEndpoint(String);

impl<'de> Deserialize<'de> for ExoscaleEndpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "an http(s) URL", |s| check_url(s).map(ExoscaleEndpoint))
    }
}

/// `s` with any `user:password@` before the host replaced by `***@`, for
/// quoting a URL in a message: a password in a URL is a secret too.
fn without_userinfo(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => s.to_string(),
    }
}

/// The endpoint as written, once it is certain to work as a base URL.
/// Checked here rather than at the first request: a bad port or a
/// `user:pw@` only showed in the refresher's log, failing for ever (and
/// the userinfo made reqwest send Basic auth instead of the token).
fn check_url(s: &str) -> Result<String, String> {
    if s.is_empty() {
        // Was silently the production API: surprising for someone who
        // meant to point floaty at a test endpoint.
        return Err("empty; remove the key to use the default".to_string());
    }
    let quoted = crate::event::shown(&without_userinfo(s));
    let bad =
        || format!("\"{quoted}\" is not an http(s) URL (write e.g. {DEFAULT_CLOUDSCALE_ENDPOINT})");
    let lower = s.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty()
        || host.starts_with(':')
        || s.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    let url = url::Url::parse(s).map_err(|e| {
        format!("\"{quoted}\" is not a valid URL: {e} (write e.g. {DEFAULT_CLOUDSCALE_ENDPOINT})")
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "\"{quoted}\" holds credentials (`user:password@`); credentials do not belong in the URL: remove them, floaty sends the API credentials itself"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    if s.contains(['?', '#']) {
        return Err(format!(
            "\"{quoted}\" has a query or fragment; give only the base URL, e.g. {DEFAULT_CLOUDSCALE_ENDPOINT}"
        ));
    }
    Ok(s.to_string())
}

/// `provider:`; empty counts as missing, like in vshn/floaty.
struct ProviderValue(Option<ProviderKind>);

impl<'de> Deserialize<'de> for ProviderValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "cloudscale or exoscale", |s| match s {
            "" => Ok(ProviderValue(None)),
            "cloudscale" => Ok(ProviderValue(Some(ProviderKind::Cloudscale))),
            "exoscale" => Ok(ProviderValue(Some(ProviderKind::Exoscale))),
            other => {
                let hint = match other.trim().to_ascii_lowercase().as_str() {
                    "cloudscale" => "; did you mean `cloudscale`?",
                    "exoscale" => "; did you mean `exoscale`?",
                    _ => "",
                };
                Err(format!(
                    "{other:?} is not a supported provider (write cloudscale or exoscale{hint})"
                ))
            }
        })
    }
}

// ---------------------------------------------------------------------------
// serde_yaml's error text, reshaped.

/// serde_yaml prints `KEY.PATH: MESSAGE at line L column C` (no path at the
/// top level). The position is available as data; the key path only as
/// text, so it is cut off the front where it looks like one.
fn yaml_error(
    err: &serde_yaml::Error,
    source: &str,
    path: &Path,
    secrets: &[String],
) -> ConfigError {
    let location = err.location();
    let mut text = err.to_string();
    if let Some(loc) = &location {
        let at = format!(" at line {} column {}", loc.line(), loc.column());
        text = text.replacen(&at, "", 1);
    }
    let (key, message) = split_key(&text);
    let mut position = location.as_ref().map(|l| (l.line(), l.column()));
    // serde_yaml places a duplicate at the start of its mapping; point at the
    // second occurrence instead, where the user has to look.
    if let (Some(m), Some((line, column))) = (message, position) {
        if let Some(name) = m
            .strip_prefix("duplicate field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            position = second_occurrence(source, line, column, name).or(position);
        }
    }
    let (key, message) = match message {
        Some(m) => reword(key, m),
        None if location.is_some() => (None, syntax_error(&text)),
        None if text.contains("more than one document") => (
            None,
            "the file holds more than one YAML document (a second `---`); floaty reads exactly one"
                .to_string(),
        ),
        None => (None, format!("invalid YAML: {text}")),
    };
    let redact = |s: String| {
        secrets
            .iter()
            .fold(s, |acc, secret| acc.replace(secret.as_str(), "***"))
    };
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line: position.map(|p| p.0),
        column: position.map(|p| p.1),
        key: key.map(redact),
        message: redact(message),
    }
}

/// The line and column of the second `name:` in the block mapping whose
/// first key sits at (`line`, `column`). Flow mappings (`{a: 1, a: 2}`) are
/// not searched; the caller keeps serde_yaml's position then.
fn second_occurrence(text: &str, line: usize, column: usize, name: &str) -> Option<(usize, usize)> {
    let indent = column.checked_sub(1)?;
    let mut seen = 0;
    for (i, l) in text.lines().enumerate().skip(line.checked_sub(1)?) {
        let (lead, rest) = l.split_at(l.len() - l.trim_start_matches(' ').len());
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        if lead.len() < indent && i + 1 > line {
            break; // left the mapping
        }
        if lead.len() != indent {
            continue;
        }
        let rest = rest.strip_prefix("- ").unwrap_or(rest);
        let key_end = ["\"", "'"]
            .iter()
            .find_map(|q| rest.strip_prefix(q)?.strip_prefix(name)?.strip_prefix(q))
            .or_else(|| rest.strip_prefix(name));
        if key_end.is_some_and(|r| r.trim_start().starts_with(':')) {
            seen += 1;
            if seen == 2 {
                return Some((i + 1, indent + 1));
            }
        }
    }
    None
}

/// Returns (key path, message) for a deserialization error, or (None, None)
/// for syntax and other errors that are not about a key's value.
fn split_key(text: &str) -> (Option<String>, Option<&str>) {
    const SERDE: &[&str] = &[
        "unknown field `",
        "invalid type: ",
        "invalid value: ",
        "duplicate field `",
        "missing field `",
        "invalid length ",
        "unknown variant `",
    ];
    if SERDE.iter().any(|p| text.starts_with(p)) {
        return (None, Some(text));
    }
    if let Some((prefix, message)) = text.split_once(": ") {
        // Our own messages and serde's never have a space, quote or backtick
        // before their first ": "; a key path does not have one either.
        let looks_like_path = !prefix.is_empty()
            && !prefix
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '`' | '"' | '\''));
        if looks_like_path {
            return (Some(prefix.to_string()), Some(message));
        }
    }
    (None, None)
}

/// Returns the key to print before the message (none when the message
/// names it itself) and the message in our words.
fn reword(key: Option<String>, message: &str) -> (Option<String>, String) {
    let full = |name: &str| match &key {
        Some(parent) => format!("{parent}.{name}"),
        None => name.to_string(),
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        return (None, unknown_key(key.as_deref(), rest));
    }
    if let Some(rest) = message.strip_prefix("duplicate field `") {
        let name = rest.strip_suffix('`').unwrap_or(rest);
        return (None, format!("`{}` is set twice; keep one", full(name)));
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.split_once(", expected ") {
            let yaml_word = |s: &str| match s {
                "sequence" | "a sequence" => "a list".to_string(),
                "map" | "a map" => "a mapping".to_string(),
                other => other.to_string(),
            };
            let mut m = format!(
                "expected {}, found {}",
                yaml_word(expected),
                yaml_word(found)
            );
            if key.as_deref() == Some("managed-addresses") {
                m.push_str(" (write one `- 192.0.2.10` line per address)");
            }
            return (key, m);
        }
    }
    (key, message.to_string())
}

/// libyaml's "PROBLEM, while CONTEXT" plus the advice that fixes nearly all
/// of them.
fn syntax_error(text: &str) -> String {
    let text = match text.split_once(", while ") {
        Some((problem, context)) => format!("{problem} (while {context})"),
        None => text.to_string(),
    };
    format!("invalid YAML: {text}; check the indentation and that each `key: value` has a space after the colon")
}

/// `rest` is serde's text after "unknown field `": "NAME`, expected one of
/// `a`, `b`" (or "`, expected `a`", "`, there are no fields").
fn unknown_key(parent: Option<&str>, rest: &str) -> String {
    let end = rest
        .find("`, expected ")
        .or_else(|| rest.find("`, there are no fields"));
    let (name, known) = match end {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest.trim_end_matches('`'), ""),
    };
    let known: Vec<&str> = known.split('`').skip(1).step_by(2).collect();
    let full = match parent {
        Some(p) => format!("{p}.{name}"),
        None => name.to_string(),
    };
    let mut m = format!("unknown key `{full}` (known keys");
    if let Some(p) = parent {
        m.push_str(&format!(" in `{p}`"));
    }
    m.push_str(": ");
    m.push_str(&known.join(", "));
    let suggestion = known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|&(d, k)| d <= (k.len() / 3).max(1))
        .min()
        .map(|(_, k)| match parent {
            Some(p) => format!("{p}.{k}"),
            None => k.to_string(),
        })
        .or_else(|| {
            // A section's key written at the top level (missing indentation).
            parent.is_none().then_some(())?;
            let sections: Vec<String> = SECTION_KEYS
                .iter()
                .filter(|(_, keys)| keys.contains(&name))
                .map(|(section, _)| format!("{section}.{name}"))
                .collect();
            (!sections.is_empty()).then(|| sections.join("` or `"))
        });
    if let Some(s) = suggestion {
        m.push_str(&format!("; did you mean `{s}`?"));
    }
    m.push(')');
    m
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The raw text of every credential, for redaction.
fn secret_values(root: &serde_yaml::Value) -> Vec<String> {
    let mut out = Vec::new();
    for (section, key) in [
        ("cloudscale", "token"),
        ("exoscale", "key"),
        ("exoscale", "secret"),
    ] {
        let value = root.get(section).and_then(|s| s.get(key));
        let text = match value {
            Some(serde_yaml::Value::String(s)) => s.clone(),
            Some(serde_yaml::Value::Number(n)) => n.to_string(),
            Some(serde_yaml::Value::Bool(b)) => b.to_string(),
            _ => continue,
        };
        // Shorter "secrets" would mangle every message and protect nothing.
        if text.len() >= 4 {
            out.push(text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
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
        c.validate_for_run(false).unwrap();
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
        let e = c.validate_for_run(false).unwrap_err().to_string();
        assert_eq!(
            e,
            "/etc/floaty.yml: cloudscale.token: missing; set it to a cloudscale API token with write access (or use cloudscale.token-file or FLOATY_CLOUDSCALE_TOKEN)"
        );
        c.validate_for_run(true).unwrap();
    }

    #[test]
    fn exoscale_credentials_required_unless_dry_run() {
        let c = ok("provider: exoscale\n");
        let e = c.validate_for_run(false).unwrap_err().to_string();
        assert!(
            e.starts_with("/etc/floaty.yml: exoscale.key: missing; "),
            "{e}"
        );
        let c = ok("provider: exoscale\nexoscale:\n  key: EXO1\n");
        let e = c.validate_for_run(false).unwrap_err().to_string();
        assert!(
            e.starts_with("/etc/floaty.yml: exoscale.secret: missing; "),
            "{e}"
        );
        c.validate_for_run(true).unwrap();
        ok("provider: exoscale\nexoscale:\n  key: EXO1\n  secret: x\n")
            .validate_for_run(false)
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
            "/etc/floaty.yml: provider: missing; set `provider: cloudscale` or `provider: exoscale`"
        );
        assert!(err("provider: ''\n").contains("provider: missing"));
        let e = err("provider: aws\n");
        assert_eq!(
            e,
            "/etc/floaty.yml: line 1, column 11: provider: \"aws\" is not a supported provider (write cloudscale or exoscale)"
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
        let e =
            err("provider: cloudscale\ncloudscale:\n  hostname-to-server-uuid:\n    node1: nope\n");
        assert!(
            e.contains("line 4, column 12: cloudscale.hostname-to-server-uuid.node1: \"nope\" is not a UUID"),
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
        assert!(e.contains("did you mean `cloudscale.token`?"), "{e}");
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
            e.contains("line 2, column 13: `cloudscale.token` is set twice"),
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
            e.contains(
                "line 4, column 5: managed-addresses[1]: `192.0.2.300` is not an IP address"
            ),
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
            e.contains("line 3, column 13: cloudscale.endpoint: \"api.cloudscale.ch\" is not an http(s) URL"),
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
            format!(
                "provider: exoscale\nexoscale:\n  secret: {secret}\n  instance-id: x{secret}\n"
            ),
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
        let s = ok("provider: exoscale\nexoscale: {key: EXOSUPERSECRET, secret: SUPERSECRET}")
            .to_string();
        assert!(s.contains("\n  key: ***\n  secret: ***\n"), "{s}");
        assert!(s.contains("\nrefresh-timeout: 15s\n"), "{s}");
        assert!(!s.contains("SUPERSECRET"), "{s}");
    }

    #[test]
    fn fixtures_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
        let c = load(&dir.join("vshn-floaty-example.yaml")).unwrap();
        assert_eq!(c.provider, ProviderKind::Cloudscale);
        c.validate_for_run(false).unwrap();
        let c = load(&dir.join("everything.yaml")).unwrap();
        assert_eq!(c.keepalived_config, dir.join("keepalived.conf"));
        assert_eq!(c.managed_addresses.len(), 3);
        c.validate_for_run(false).unwrap();
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
            format!("{}/floaty.yml: cloudscale.token-file: {shown} is empty; it should hold the credential", dir.path().display())
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
            .validate_for_run(false)
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
        assert!(
            c.warnings[0].contains("holds a credential inline") && c.warnings[0].contains("0644")
        );
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
        let env =
            |name: &str| (name == ENV_CLOUDSCALE_TOKEN).then(|| "SECRET\nTOKEN\n".to_string());
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
            let yaml =
                |url: &str| format!("provider: {section}\n{section}:\n  endpoint: '{url}'\n");
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
        assert_eq!(without_userinfo("http://a:b@c@d/x@y"), "http://***@d/x@y");
        assert_eq!(without_userinfo("http://d/x@y"), "http://d/x@y");
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

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("lock-timout", "lock-timeout"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
