//! Text in and out: user input quoted in one-line messages, clipped for
//! logs, byte streams cut into bounded lines (the FIFO, rules' output),
//! and YAML scalars read as text (serde_yaml hands every scalar over
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

/// keepalived's longest FIFO line is an instance name (at most a few
/// hundred bytes) plus 30, and a rule's output line is for a log: anything
/// longer is dropped while it streams past.
pub const MAX_LINE: usize = 4096;

/// Cuts a byte stream into lines of at most [`MAX_LINE`] bytes. Longer lines
/// are counted and skipped up to their newline, so memory stays bounded
/// whatever the writer does.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// Inside an over-long line: drop bytes until the next newline.
    discarding: bool,
}

/// One piece of output from [`LineSplitter::push`].
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    Line(Vec<u8>),
    /// A line longer than the limit was dropped.
    TooLong,
}

impl LineSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; returns the lines they completed, in order.
    pub fn push(&mut self, mut data: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let newline = data.iter().position(|&b| b == b'\n');
            let (chunk, rest, complete) = match newline {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &data[data.len()..], false),
            };
            data = rest;
            if !self.discarding {
                if self.buf.len() + chunk.len() > MAX_LINE {
                    self.buf.clear();
                    self.discarding = true;
                    out.push(Piece::TooLong);
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            if complete {
                if !self.discarding {
                    out.push(Piece::Line(std::mem::take(&mut self.buf)));
                }
                self.discarding = false;
            }
        }
        out
    }

    /// Bytes of an unfinished line (a writer that went away mid-line).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The unfinished last line of a stream that ended, if any (not for
    /// the FIFO, where a half line is dropped; for command output).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let rest = std::mem::take(&mut self.buf);
        let had = !rest.is_empty();
        self.reset();
        had.then_some(rest)
    }

    /// Forget any unfinished line: the stream it belonged to is gone.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.discarding = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_joins_half_lines_and_keeps_order() {
        let mut s = LineSplitter::new();
        assert!(s.push(b"INSTANCE \"VI").is_empty());
        assert_eq!(s.pending(), 12);
        let out = s.push(b"_1\" MASTER 1\nGROUP \"G\" STOP 0\nhalf");
        assert_eq!(
            out,
            vec![
                Piece::Line(b"INSTANCE \"VI_1\" MASTER 1".to_vec()),
                Piece::Line(b"GROUP \"G\" STOP 0".to_vec())
            ]
        );
        assert_eq!(s.pending(), 4);
        s.reset();
        assert_eq!(s.push(b"\n"), vec![Piece::Line(Vec::new())]);
    }

    #[test]
    fn huge_lines_are_dropped_without_buffering_them() {
        let mut s = LineSplitter::new();
        let mut out = Vec::new();
        // 1 MiB without a newline, fed in chunks, then a good line.
        for _ in 0..256 {
            out.extend(s.push(&[b'A'; 4096]));
            assert!(s.pending() <= MAX_LINE);
        }
        out.extend(s.push(b"tail\nINSTANCE \"VI_1\" BACKUP 1\n"));
        assert_eq!(
            out,
            vec![
                Piece::TooLong,
                Piece::Line(b"INSTANCE \"VI_1\" BACKUP 1".to_vec())
            ]
        );
        // Exactly the limit is fine, one more byte is not.
        let mut s = LineSplitter::new();
        let mut line = vec![b'x'; MAX_LINE];
        line.push(b'\n');
        assert_eq!(s.push(&line), vec![Piece::Line(vec![b'x'; MAX_LINE])]);
        let mut line = vec![b'x'; MAX_LINE + 1];
        line.push(b'\n');
        assert_eq!(s.push(&line), vec![Piece::TooLong]);
    }
}
