//! Where a credential comes from (inline, a file, the environment), and
//! the checks that keep a pasted secret from reaching a request.

use std::path::Path;

use floaty_providers::Secret;

use super::ConfigError;

/// The environment variables that can carry credentials, so the YAML (often
/// world-readable, often in git) need not.
pub const ENV_CLOUDSCALE_TOKEN: &str = "FLOATY_CLOUDSCALE_TOKEN";
pub const ENV_EXOSCALE_KEY: &str = "FLOATY_EXOSCALE_KEY";
pub const ENV_EXOSCALE_SECRET: &str = "FLOATY_EXOSCALE_SECRET";
pub const ENV_HETZNER_TOKEN: &str = "FLOATY_HETZNER_TOKEN";
pub const ENV_DIGITALOCEAN_TOKEN: &str = "FLOATY_DIGITALOCEAN_TOKEN";
/// AWS's own names: every AWS tool reads them, so floaty does too.
pub const ENV_AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const ENV_AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const ENV_AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";

/// A secret file larger than this is not a token: refuse it rather than
/// send megabytes in a header.
pub(super) const MAX_SECRET_FILE: u64 = 64 << 10;

/// A warning when `file` can be read by group or others (mode & 0o077).
pub(super) fn readable_by_others(file: &Path, what: &str) -> Option<String> {
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
pub(super) struct Credential {
    pub(super) section: &'static str,
    pub(super) key: &'static str,
    pub(super) env_var: &'static str,
    /// What this provider demands of the value beyond being one word;
    /// the message must not quote it.
    pub(super) check: fn(&str) -> Result<(), String>,
}

pub(super) const CLOUDSCALE_TOKEN: Credential = Credential {
    section: "cloudscale",
    key: "token",
    env_var: ENV_CLOUDSCALE_TOKEN,
    check: |_| Ok(()),
};
pub(super) const EXOSCALE_KEY: Credential = Credential {
    section: "exoscale",
    key: "key",
    env_var: ENV_EXOSCALE_KEY,
    check: floaty_providers::exoscale::check_key,
};
pub(super) const EXOSCALE_SECRET: Credential = Credential {
    section: "exoscale",
    key: "secret",
    env_var: ENV_EXOSCALE_SECRET,
    check: |_| Ok(()),
};
pub(super) const HETZNER_TOKEN: Credential = Credential {
    section: "hetzner",
    key: "token",
    env_var: ENV_HETZNER_TOKEN,
    check: |_| Ok(()),
};
pub(super) const AWS_ACCESS_KEY_ID: Credential = Credential {
    section: "aws",
    key: "access-key-id",
    env_var: ENV_AWS_ACCESS_KEY_ID,
    check: |v| {
        if v.len() >= 16
            && v.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            Ok(())
        } else {
            Err("is not an access key id (20 capitals and digits, AKIA… or ASIA…)".into())
        }
    },
};
pub(super) const AWS_SECRET_ACCESS_KEY: Credential = Credential {
    section: "aws",
    key: "secret-access-key",
    env_var: ENV_AWS_SECRET_ACCESS_KEY,
    check: |_| Ok(()),
};
pub(super) const DIGITALOCEAN_TOKEN: Credential = Credential {
    section: "digitalocean",
    key: "token",
    env_var: ENV_DIGITALOCEAN_TOKEN,
    check: |_| Ok(()),
};

/// Why `value` cannot be a credential, without quoting it. A token with a
/// newline or space in it (a pasted line break, quotes around a two-word
/// copy) passed every check before and then failed in the refresher on
/// every request, long after the MASTER call had reported success.
pub(super) fn credential_problem(value: &str) -> Option<&'static str> {
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
    pub(super) fn key(&self) -> String {
        format!("{}.{}", self.section, self.key)
    }

    /// Where the credential comes from: the inline key, its `-file` key,
    /// or the environment variable, in that order of being looked at.
    /// Inline and file together is ambiguous and refused; the environment
    /// is used only when the YAML sets neither, so what the file says
    /// always wins. `used` says whether the configured provider needs this
    /// credential: only then is its value checked (an unused section may
    /// hold anything, as it never leaves the machine).
    pub(super) fn resolve(
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
    pub(super) fn missing(&self, config: &Path, what: &str) -> ConfigError {
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
pub(super) fn read_secret_file(file: &Path) -> Result<Secret, String> {
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
