//! Text in and out: user input quoted in one-line messages, clipped for
//! logs, and YAML scalars read as text (serde_yaml hands every scalar over
//! as a string, so `token: 1234` works as in Go).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// Input quoted in an error message, with control characters and line
/// separators escaped: the message must stay one log line whatever was
/// passed (found by the property tests in `proptests.rs`).
pub fn shown(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A line shortened for a log message.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

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
/// names what was wanted. The config's values and the rules' read and
/// report alike through it.
pub fn text<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    d.deserialize_str(TextVisitor { expecting, check })
}
