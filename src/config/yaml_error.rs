//! serde_yaml's error text, reshaped into floaty's one-line messages.

use std::path::Path;

use super::locate::{locate, KeyPath, Target};
use super::raw::SECTION_KEYS;
use super::ConfigError;

/// serde_yaml's messages are `PATH: MESSAGE at line L column C`; the path
/// and position come as data (serde_path_to_error, `Error::location`), so
/// only serde's own MESSAGE is read as text, to say it in our words.
pub(super) fn yaml_error(
    err: &serde_path_to_error::Error<serde_yaml::Error>,
    source: &str,
    path: &Path,
    secrets: &[String],
) -> ConfigError {
    let key_path = KeyPath::from_serde(err.path());
    let inner = err.inner();
    let location = inner.location();
    let mut text = inner.to_string();
    if let Some(loc) = &location {
        let at = format!(" at line {} column {}", loc.line(), loc.column());
        text = text.replacen(&at, "", 1);
    }
    // serde_yaml names the node it was reading: the value's own path, or
    // for a key (unknown, duplicate, missing) the mapping's.
    let prefixed = [key_path.clone(), key_path.parent()]
        .into_iter()
        .filter(|p| !p.is_empty())
        .find_map(|p| {
            let message = text.strip_prefix(&format!("{p}: "))?.to_string();
            Some((p, message))
        });
    let (key, message) = match prefixed {
        Some((p, m)) => (Some(p), Some(m)),
        None if is_serde_message(&text) => (None, Some(text.clone())),
        None => (None, None),
    };
    let mut position = location.as_ref().map(|l| (l.line(), l.column()));
    // serde_yaml places a duplicate at the start of its mapping; point at the
    // second occurrence instead, where the user has to look.
    if let Some(name) = message
        .as_deref()
        .and_then(|m| m.strip_prefix("duplicate field `"))
        .and_then(|r| r.strip_suffix('`'))
    {
        let mapping = key.clone().unwrap_or_default();
        let second = Target::Key {
            name: name.to_string(),
            nth: 1,
        };
        position = locate(source, &mapping, &second).or(position);
    }
    let (key, message) = match message {
        Some(m) => reword(key.map(|k| k.to_string()), &m),
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

/// serde's own messages for a value that does not fit the schema (as
/// opposed to libyaml's syntax errors, which have none of these openings).
fn is_serde_message(text: &str) -> bool {
    const SERDE: &[&str] = &[
        "unknown field `",
        "invalid type: ",
        "invalid value: ",
        "duplicate field `",
        "missing field `",
        "invalid length ",
        "unknown variant `",
    ];
    SERDE.iter().any(|p| text.starts_with(p))
}

/// Returns the key to print before the message (none when the message
/// names it itself) and the message in our words.
pub(super) fn reword(key: Option<String>, message: &str) -> (Option<String>, String) {
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
pub(super) fn syntax_error(text: &str) -> String {
    let text = match text.split_once(", while ") {
        Some((problem, context)) => format!("{problem} (while {context})"),
        None => text.to_string(),
    };
    format!("invalid YAML: {text}; check the indentation and that each `key: value` has a space after the colon")
}

/// `rest` is serde's text after "unknown field `": "NAME`, expected one of
/// `a`, `b`" (or "`, expected `a`", "`, there are no fields").
pub(super) fn unknown_key(parent: Option<&str>, rest: &str) -> String {
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

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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
pub(super) fn secret_values(root: &serde_yaml::Value) -> Vec<String> {
    let mut out = Vec::new();
    for (section, key) in [
        ("cloudscale", "token"),
        ("exoscale", "key"),
        ("exoscale", "secret"),
        ("hetzner", "token"),
        ("digitalocean", "token"),
        ("aws", "secret-access-key"),
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

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("lock-timout", "lock-timeout"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
