//! What a stop needs from floaty.yml, read leniently.
//!
//! BACKUP, FAULT, STOP and DELETED must end the refresher of an instance
//! even when the config has broken since its MASTER call (a typo such as
//! `lock-timout`, a removed token, a file that cannot be read at all): a
//! refresher left running keeps pulling the address back to a node that
//! is no longer MASTER. A stop needs only where the lock lives and how
//! long to wait for it, plus keepalived.conf to expand a group, so this
//! reads just those keys, each on its own: one that is valid is used, one
//! that is not (or the whole file) falls back to the default. It never
//! fails; the strict [`super::load`] still reports what is wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    values::{min_duration, Timeout},
    LockTemplate, DEFAULT_KEEPALIVED_CONFIG, DEFAULT_LOCK_TIMEOUT, MAX_CONFIG_FILE,
};

/// The settings a stop uses; see [`stop_settings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSettings {
    /// Resolved against the YAML file's directory; the default when the
    /// key is absent or invalid.
    pub lock_file_template: LockTemplate,
    /// Whether `lock_file_template` came from the file. When it did not, a
    /// stop should also look at [`super::LEGACY_LOCK_FILE_TEMPLATE`].
    pub template_from_file: bool,
    pub lock_timeout: Duration,
    pub keepalived_config: PathBuf,
    pub keepalived_config_id: Option<String>,
}

impl Default for StopSettings {
    fn default() -> Self {
        StopSettings {
            lock_file_template: LockTemplate::default(),
            template_from_file: false,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            keepalived_config: PathBuf::from(DEFAULT_KEEPALIVED_CONFIG),
            keepalived_config_id: None,
        }
    }
}

impl super::Config {
    /// The same view as [`stop_settings`] of a config that loaded: both
    /// roads must find the same lock, or a stop after a config edit would
    /// look in the wrong place.
    pub fn stop_settings(&self) -> StopSettings {
        StopSettings {
            lock_file_template: self.lock_file_template.clone(),
            template_from_file: self.lock_template_from_file,
            lock_timeout: self.lock_timeout,
            keepalived_config: self.keepalived_config.clone(),
            keepalived_config_id: self.keepalived_config_id.clone(),
        }
    }
}

/// The stop settings of the config at `path`, whatever state it is in.
/// Refuses to read what is not a regular file or is larger than
/// [`MAX_CONFIG_FILE`] (a FIFO would block the stop for ever), giving the
/// defaults then. When the YAML does not parse, each key is looked for on
/// a line of its own at the top level (`key: value`), so a syntax error
/// elsewhere in the file does not lose the lock path.
pub fn stop_settings(path: &Path) -> StopSettings {
    let Ok((bytes, _)) = crate::readfile::read_regular(path, MAX_CONFIG_FILE) else {
        return StopSettings::default();
    };
    let text = String::from_utf8_lossy(&bytes);
    let lookup = Lookup::new(&text);
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut out = StopSettings::default();
    let template = lookup
        .get("lock-file-template")
        .and_then(|t| LockTemplate::new(&t).ok())
        .and_then(|t| t.relative_to(dir).ok());
    if let Some(t) = template {
        out.lock_file_template = t;
        out.template_from_file = true;
    }
    if let Some(Ok(t)) = lookup.get("lock-timeout").map(|t| min_duration(&t)) {
        let t: Timeout = t;
        out.lock_timeout = t.0;
    }
    if let Some(k) = lookup.get("keepalived-config").filter(|k| !k.is_empty()) {
        out.keepalived_config = dir.join(k);
    }
    out.keepalived_config_id = lookup
        .get("keepalived-config-id")
        .filter(|id| !id.is_empty());
    out
}

/// Top-level scalar values: from the parsed YAML when it parses as a
/// mapping, else from `key: value` lines.
pub(super) enum Lookup<'a> {
    Yaml(serde_yaml::Mapping),
    Lines(&'a str),
}

impl<'a> Lookup<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        match serde_yaml::from_str::<serde_yaml::Value>(text) {
            Ok(serde_yaml::Value::Mapping(m)) => Lookup::Yaml(m),
            _ => Lookup::Lines(text),
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<String> {
        match self {
            Lookup::Yaml(m) => match m.get(key)? {
                serde_yaml::Value::String(s) => Some(s.clone()),
                serde_yaml::Value::Number(n) => Some(n.to_string()),
                _ => None,
            },
            Lookup::Lines(text) => text.lines().find_map(|line| {
                let value = line.strip_prefix(key)?.strip_prefix(':')?;
                // `key: value  # comment`; a `#` inside the value needs
                // a blank before it to start a comment, as in YAML.
                let value = match value.find(" #") {
                    Some(i) => &value[..i],
                    None => value,
                };
                Some(unquote(value.trim()).to_string())
            }),
        }
    }
}

/// One pair of matching quotes removed. Escapes are not interpreted: a
/// value that needs them is beyond what this fallback promises.
pub(super) fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::super::{load, DEFAULT_LOCK_FILE_TEMPLATE};
    use super::*;

    const GOOD: &str =
        "provider: cloudscale\nlock-file-template: /run/x/%s.lock\nlock-timeout: 2s\n\
                        keepalived-config: k.conf\nkeepalived-config-id: node-a\n";

    fn write(dir: &Path, body: &[u8]) -> PathBuf {
        let file = dir.join("floaty.yml");
        std::fs::write(&file, body).unwrap();
        file
    }

    fn expected(dir: &Path) -> StopSettings {
        StopSettings {
            lock_file_template: LockTemplate::new("/run/x/%s.lock").unwrap(),
            template_from_file: true,
            lock_timeout: Duration::from_secs(2),
            keepalived_config: dir.join("k.conf"),
            keepalived_config_id: Some("node-a".to_string()),
        }
    }

    #[test]
    fn both_roads_agree_on_a_valid_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), GOOD.as_bytes());
        let strict = load(&file).unwrap().stop_settings();
        assert_eq!(strict, expected(dir.path()));
        assert_eq!(stop_settings(&file), strict);
        // Defaults and a relative template too.
        let file = write(dir.path(), b"provider: exoscale\n");
        assert_eq!(stop_settings(&file), load(&file).unwrap().stop_settings());
        assert!(!stop_settings(&file).template_from_file);
        let file = write(
            dir.path(),
            b"provider: exoscale\nlock-file-template: l/%s\n",
        );
        let strict = load(&file).unwrap().stop_settings();
        assert_eq!(
            strict.lock_file_template.path_for("VI_1"),
            dir.path().join("l/VI_1")
        );
        assert_eq!(stop_settings(&file), strict);
    }

    #[test]
    fn a_broken_config_still_yields_the_template_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let broken: [&[u8]; 5] = [
            // The typo from issue 10: unknown key.
            b"lock-timout: 5s\n",
            // A bad value elsewhere, and no credentials.
            b"refresh-interval: 1ns\ncloudscale:\n  endpoint: ''\n",
            // Not YAML at all after the good lines.
            b"rules: [\n\t- {oops\n",
            // Garbage bytes, invalid UTF-8.
            b"\xff\xfe\x00garbage\x1b[2J\n",
            // Wrong type of section.
            b"back-off: 5s\nexoscale: [1, 2]\n",
        ];
        for tail in broken {
            let mut body = GOOD.as_bytes().to_vec();
            body.extend_from_slice(tail);
            let file = write(dir.path(), &body);
            assert!(load(&file).is_err(), "{:?}", String::from_utf8_lossy(tail));
            assert_eq!(
                stop_settings(&file),
                expected(dir.path()),
                "{:?}",
                String::from_utf8_lossy(tail)
            );
        }
        // Comments and quotes in the line fallback.
        let file = write(
            dir.path(),
            b"lock-file-template: '/run/x/%s.lock'  # mine\nlock-timeout: \"2s\"\n: [\n",
        );
        let s = stop_settings(&file);
        assert_eq!(s.lock_file_template.as_str(), "/run/x/%s.lock");
        assert_eq!(s.lock_timeout, Duration::from_secs(2));
    }

    #[test]
    fn each_key_falls_back_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            b"lock-file-template: /run/x/%d.lock\nlock-timeout: 1ns\nkeepalived-config: ''\n\
              keepalived-config-id: node-b\n",
        );
        let s = stop_settings(&file);
        assert_eq!(s.lock_file_template.as_str(), DEFAULT_LOCK_FILE_TEMPLATE);
        assert!(!s.template_from_file);
        assert_eq!(s.lock_timeout, DEFAULT_LOCK_TIMEOUT);
        assert_eq!(s.keepalived_config, Path::new(DEFAULT_KEEPALIVED_CONFIG));
        assert_eq!(s.keepalived_config_id.as_deref(), Some("node-b"));
    }

    #[test]
    fn unreadable_files_give_the_defaults_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            stop_settings(&dir.path().join("missing.yml")),
            StopSettings::default()
        );
        let fifo = dir.path().join("fifo.yml");
        crate::readfile::mkfifo(&fifo);
        assert_eq!(stop_settings(&fifo), StopSettings::default());
        assert_eq!(stop_settings(dir.path()), StopSettings::default());
        assert_eq!(
            stop_settings(Path::new("/dev/zero")),
            StopSettings::default()
        );
        let mut big = GOOD.as_bytes().to_vec();
        big.resize(MAX_CONFIG_FILE as usize + 1, b'\n');
        let file = write(dir.path(), &big);
        assert_eq!(stop_settings(&file), StopSettings::default());
    }
}
