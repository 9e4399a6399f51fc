//! keepalived's `read_line()`: turns the config files into the logical lines
//! its keyword parser sees.
//!
//! The order of the steps is keepalived's, because it decides the result:
//! physical lines are cut at 1023 bytes (keepalived reads with `fgets` into a
//! 1024-byte buffer), comments are stripped, `$NAME=` definitions (also
//! multi-line ones) are collected, `@ID`/`@^ID` lines are filtered, `~SEQ` and
//! `~LST` lines are queued and replayed, `$NAME` is substituted, `include`
//! opens files, and finally every `{` and `}` outside double quotes is split
//! onto a line of its own so blocks can open and close anywhere.
//!
//! This file holds the loop; its steps live beside it: `files.rs` (physical
//! lines, includes), `definitions.rs` (`$NAME`), `sequences.rs` (`~SEQ`,
//! `~LST`), over the state in `state.rs`.

use super::lexer::{blank_span, decomment, is_blank, trim_trailing_blanks};
use super::state::*;
use super::{KeepalivedError, Location};

impl Reader {
    pub(crate) fn location(&self) -> &Location {
        &self.loc
    }

    pub(crate) fn warn(&mut self, msg: impl std::fmt::Display) {
        self.warnings.push(format!("{}: {}", self.loc, msg));
    }

    /// Counts one generated line of `bytes` bytes against both bounds.
    pub(super) fn count_generated(
        &mut self,
        what: &str,
        bytes: usize,
    ) -> Result<(), KeepalivedError> {
        self.generated += 1;
        if self.generated > MAX_GENERATED_LINES {
            return Err(KeepalivedError::TooManyLines {
                location: self.loc.clone(),
                what: what.to_string(),
                max: MAX_GENERATED_LINES,
            });
        }
        self.count_text(what, bytes)
    }

    /// Counts `bytes` of generated text against [`MAX_GENERATED_BYTES`].
    pub(super) fn count_text(&mut self, what: &str, bytes: usize) -> Result<(), KeepalivedError> {
        self.generated_bytes += bytes;
        if self.generated_bytes > MAX_GENERATED_BYTES {
            return Err(KeepalivedError::TooMuchText {
                location: self.loc.clone(),
                what: what.to_string(),
                max_mib: MAX_GENERATED_BYTES >> 20,
            });
        }
        Ok(())
    }

    /// keepalived's `read_line`. `None` at the end of the last file.
    pub(crate) fn read_line(&mut self) -> Result<Option<Vec<u8>>, KeepalivedError> {
        let mut ml_param_def = false;
        let mut buf: Vec<u8>;
        loop {
            if let Some(r) = self.residue.take() {
                buf = r;
            } else if !self.seqs.is_empty() && self.seqs.len() > self.ml_seq_depth {
                buf = self.next_seq_line();
                self.count_generated("~SEQ/~LST", buf.len())?;
            } else if let Some((val, off)) = self.next_ptr.take() {
                let rest = val.get(off..).unwrap_or_default();
                match rest.iter().position(|b| *b == b'\n') {
                    Some(n) => {
                        buf = rest[..n].to_vec();
                        self.next_ptr = Some((val.clone(), off + n + 1));
                    }
                    None => {
                        buf = rest.to_vec();
                        match self.ml_stack.pop() {
                            Some((p, depth)) => {
                                self.next_ptr = Some(p);
                                self.ml_seq_depth = depth;
                            }
                            None => {
                                self.next_ptr = None;
                                self.ml_seq_depth = 0;
                            }
                        }
                    }
                }
                self.count_generated("a multi-line definition", buf.len())?;
            } else {
                loop {
                    let Some(mut raw) = self.next_physical()? else {
                        return Ok(None);
                    };
                    while matches!(raw.last(), Some(b'\n') | Some(b'\r')) {
                        raw.pop();
                    }
                    if raw.is_empty() {
                        if ml_param_def {
                            ml_param_def = false;
                            self.end_ml_def();
                        }
                        continue;
                    }
                    decomment(&mut raw);
                    if !raw.is_empty() {
                        buf = raw;
                        break;
                    }
                }
            }

            if ml_param_def {
                if buf.last() == Some(&b'\\') {
                    buf.pop();
                    trim_trailing_blanks(&mut buf);
                    buf.push(b'\n');
                } else {
                    ml_param_def = false;
                    self.end_ml_def();
                }
                let len = buf.len();
                if len >= 2 || (len > 0 && !ml_param_def) {
                    if let Some(d) = self.ml_def.and_then(|i| self.defs.get_mut(i)) {
                        d.value.extend_from_slice(&buf);
                    }
                }
                continue;
            }
            if buf.is_empty() {
                continue;
            }

            loop {
                let mut recheck = false;
                if buf.first() == Some(&b'@') {
                    let (rev, ofs) = if buf.get(1) == Some(&b'^') {
                        (true, 2)
                    } else {
                        (false, 1)
                    };
                    let Some(sp) = buf
                        .iter()
                        .skip(ofs)
                        .position(|b| is_blank(*b))
                        .map(|p| p + ofs)
                    else {
                        buf.clear();
                        break;
                    };
                    let id = &buf[ofs..sp];
                    let matches = self.config_id.as_deref() == Some(id);
                    if matches == rev {
                        buf.clear();
                        break;
                    }
                    let start = sp + blank_span(&buf[sp..]);
                    buf.drain(..start);
                }
                if buf.first() == Some(&b'$') && self.check_definition(&buf) {
                    ml_param_def = self
                        .ml_def
                        .and_then(|i| self.defs.get(i))
                        .is_some_and(|d| d.multiline);
                    buf.clear();
                    break;
                }
                if buf.starts_with(b"~SEQ") || buf.starts_with(b"~LST") {
                    let ok = if buf.get(1) == Some(&b'S') {
                        self.add_seq(&buf)
                    } else {
                        self.add_lst(&buf)
                    };
                    if !ok {
                        self.warn(format_args!(
                            "invalid {} specification '{}' - keepalived ignores the line",
                            String::from_utf8_lossy(&buf[..4]),
                            String::from_utf8_lossy(&buf)
                        ));
                    }
                    buf.clear();
                    break;
                }
                if buf.first() == Some(&b'~') {
                    break;
                }
                if buf.contains(&b'$') {
                    let mut np = self.next_ptr.take();
                    let changed = self.replace_param(&mut buf, MAXBUF, &mut np);
                    self.next_ptr = np;
                    let copied = std::mem::take(&mut self.ml_copied);
                    self.count_text("multi-line definition substitution", copied)?;
                    if self.substitutions > MAX_SUBSTITUTIONS {
                        return Err(KeepalivedError::TooManySubstitutions {
                            location: self.loc.clone(),
                            max: MAX_SUBSTITUTIONS,
                        });
                    }
                    if !changed {
                        break;
                    }
                    decomment(&mut buf);
                    if buf.first() == Some(&b'@') || buf.contains(&b'$') {
                        recheck = true;
                    }
                    if recheck {
                        self.count_generated("definition substitution", buf.len())?;
                    } else {
                        self.count_text("definition substitution", buf.len())?;
                    }
                }
                if !recheck {
                    break;
                }
            }
            if buf.is_empty() {
                continue;
            }
            if self.check_include(&buf)? {
                continue;
            }
            break;
        }

        // Split at the first `{` or `}` outside double quotes.
        let mut split: Option<usize> = None;
        if matches!(buf.first(), Some(b'{') | Some(b'}')) {
            split = Some(0);
        } else {
            let mut i = 0;
            while i < buf.len() {
                match buf[i] {
                    b'{' | b'}' => {
                        split = Some(i);
                        break;
                    }
                    b'"' => match buf[i + 1..].iter().position(|b| *b == b'"') {
                        Some(n) => i += n + 2,
                        None => break,
                    },
                    _ => i += 1,
                }
            }
        }
        if let Some(p) = split {
            let skip = if p == 0 { 1 + blank_span(&buf[1..]) } else { 0 };
            if p + skip < buf.len() {
                let mut rest = buf[p + skip..].to_vec();
                trim_trailing_blanks(&mut rest);
                self.residue = Some(rest);
                buf.truncate(p + skip);
            }
        }
        trim_trailing_blanks(&mut buf);
        Ok(Some(buf))
    }
}
