//! The reader's physical lines: the main file, then each `include`'s glob
//! matches in order, each file bounded and checked before it is read.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::lexer::{blank_span, is_white};
use super::state::*;
use super::{KeepalivedError, Location};
impl Reader {
    pub(crate) fn open(path: &Path, config_id: Option<&str>) -> Result<Reader, KeepalivedError> {
        use crate::readfile::{read_regular, ReadError};
        // Bounded and refusing FIFOs and devices before they are read: a
        // FIFO named here blocked the notify call for ever.
        let (data, meta) = read_regular(path, MAX_FILE_BYTES).map_err(|e| match e {
            ReadError::Io(source) => KeepalivedError::Io {
                path: path.to_path_buf(),
                source,
            },
            ReadError::NotRegular { .. } => KeepalivedError::NotRegularFile {
                path: path.to_path_buf(),
            },
            ReadError::TooLarge { max } => KeepalivedError::TooLarge {
                path: path.to_path_buf(),
                max_mib: max >> 20,
            },
        })?;
        if !is_regular_non_exec(&meta) {
            return Err(KeepalivedError::NotRegularFile {
                path: path.to_path_buf(),
            });
        }
        let read_bytes = data.len() as u64;
        let file = OpenFile {
            path: path.to_path_buf(),
            dir: parent_dir(path),
            canon: std::fs::canonicalize(path).ok(),
            data,
            pos: 0,
            line: 0,
        };
        let mut defs = Vec::new();
        for (name, kind, value, max_params) in [
            ("_PWD", DefKind::Pwd, "", 0),
            ("_INSTANCE", DefKind::Instance, "", 0),
            ("_RANDOM", DefKind::Random, "", 2),
            ("_HASH", DefKind::Plain, "#", 0),
            ("_BANG", DefKind::Plain, "!", 0),
        ] {
            defs.push(Def {
                name: name.as_bytes().to_vec(),
                value: value.as_bytes().to_vec(),
                multiline: false,
                kind,
                max_params,
            });
        }
        Ok(Reader {
            stack: vec![GlobFrame {
                pending: VecDeque::new(),
                current: Some(file),
            }],
            residue: None,
            seqs: Vec::new(),
            next_ptr: None,
            ml_stack: Vec::new(),
            ml_copied: 0,
            substitutions: 0,
            ml_seq_depth: 0,
            defs,
            ml_def: None,
            config_id: config_id.map(|s| s.as_bytes().to_vec()),
            generated: 0,
            generated_bytes: 0,
            loc: Location {
                file: path.to_path_buf(),
                line: 0,
            },
            read_bytes,
            warnings: Vec::new(),
        })
    }

    /// Where the line last returned came from.
    /// The next physical line chunk (at most MAXBUF-1 bytes), walking the
    /// include stack.
    pub(super) fn next_physical(&mut self) -> Result<Option<Vec<u8>>, KeepalivedError> {
        loop {
            let Some(frame) = self.stack.last_mut() else {
                return Ok(None);
            };
            if frame.current.is_none() {
                match frame.pending.pop_front() {
                    Some(p) => {
                        let opened = self.open_included(&p)?;
                        if let Some(frame) = self.stack.last_mut() {
                            frame.current = opened;
                        }
                        continue;
                    }
                    None => {
                        self.stack.pop();
                        continue;
                    }
                }
            }
            let Some(file) = frame.current.as_mut() else {
                continue;
            };
            if file.pos >= file.data.len() {
                frame.current = None;
                continue;
            }
            let rest = file.data.get(file.pos..).unwrap_or_default();
            let max = MAXBUF - 1;
            let mut n = rest
                .iter()
                .take(max)
                .position(|b| *b == b'\n')
                .map_or(rest.len().min(max), |i| i + 1);
            if n == 0 {
                n = 1;
            }
            let mut chunk = rest[..n].to_vec();
            file.pos += n;
            self.loc = Location {
                file: file.path.clone(),
                line: file.line + 1,
            };
            if chunk.last() == Some(&b'\n') {
                file.line += 1;
            }
            // fgets keeps NULs, but everything after one is invisible to strlen.
            if let Some(z) = chunk.iter().position(|b| *b == 0) {
                chunk.truncate(z);
            }
            return Ok(Some(chunk));
        }
    }

    pub(super) fn open_included(
        &mut self,
        path: &Path,
    ) -> Result<Option<OpenFile>, KeepalivedError> {
        use crate::readfile::{read_regular, ReadError};
        let left = MAX_TOTAL_BYTES.saturating_sub(self.read_bytes);
        let too_large = |max: u64| KeepalivedError::TooLarge {
            path: path.to_path_buf(),
            max_mib: max >> 20,
        };
        let (data, meta) = match read_regular(path, MAX_FILE_BYTES.min(left)) {
            Ok(read) => read,
            Err(ReadError::Io(e)) => {
                self.warn(format_args!(
                    "cannot read included {}: {e} - skipped",
                    path.display()
                ));
                return Ok(None);
            }
            Err(ReadError::NotRegular { .. }) => {
                self.warn(format_args!(
                    "included {} is not a regular non-executable file - keepalived skips it",
                    path.display()
                ));
                return Ok(None);
            }
            // Skipping it would change what floaty manages: refuse.
            Err(ReadError::TooLarge { .. }) if left < MAX_FILE_BYTES => {
                return Err(KeepalivedError::TooMuchInput {
                    location: self.loc.clone(),
                    max_mib: MAX_TOTAL_BYTES >> 20,
                })
            }
            Err(ReadError::TooLarge { max }) => return Err(too_large(max)),
        };
        if !is_regular_non_exec(&meta) {
            self.warn(format_args!(
                "included {} is not a regular non-executable file - keepalived skips it",
                path.display()
            ));
            return Ok(None);
        }
        self.read_bytes += data.len() as u64;
        let canon = std::fs::canonicalize(path).ok();
        if let Some(c) = &canon {
            let open = self
                .stack
                .iter()
                .filter_map(|f| f.current.as_ref())
                .any(|f| f.canon.as_ref() == Some(c));
            if open {
                return Err(KeepalivedError::IncludeLoop {
                    location: self.loc.clone(),
                    path: path.to_path_buf(),
                });
            }
        }
        Ok(Some(OpenFile {
            path: path.to_path_buf(),
            dir: parent_dir(path),
            canon,
            data,
            pos: 0,
            line: 0,
        }))
    }

    pub(super) fn current_dir(&self) -> PathBuf {
        self.stack
            .iter()
            .rev()
            .find_map(|f| f.current.as_ref())
            .map_or_else(|| PathBuf::from("."), |f| f.dir.clone())
    }

    /// `include[rmwba] PATTERN`: the pattern is the rest of the line, taken
    /// literally (quotes are not removed).
    pub(super) fn check_include(&mut self, buf: &[u8]) -> Result<bool, KeepalivedError> {
        if !buf.starts_with(b"include") || buf.len() <= 7 {
            return Ok(false);
        }
        let p = if is_white(buf[7]) {
            8
        } else if b"rmwba".contains(&buf[7]) && buf.get(8).is_some_and(|c| is_white(*c)) {
            9
        } else {
            return Ok(false);
        };
        let rest = buf.get(p..).unwrap_or_default();
        let pattern = &rest[blank_span(rest)..];
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(KeepalivedError::IncludeDepth {
                location: self.loc.clone(),
                max: MAX_INCLUDE_DEPTH,
            });
        }
        let Ok(pattern) = std::str::from_utf8(pattern) else {
            self.warn("include pattern is not UTF-8 - skipped");
            return Ok(true);
        };
        let base = self.current_dir();
        let mut matches = VecDeque::new();
        for alt in expand_braces(pattern) {
            let full = if alt.starts_with('/') {
                alt.clone()
            } else {
                base.join(&alt).to_string_lossy().into_owned()
            };
            let opts = glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: true,
            };
            match glob::glob_with(&full, opts) {
                Ok(paths) => {
                    for p in paths.flatten() {
                        if p.is_dir() {
                            continue;
                        }
                        matches.push_back(p);
                    }
                }
                Err(e) => self.warn(format_args!("bad include pattern `{alt}`: {e} - skipped")),
            }
        }
        if matches.is_empty() {
            self.warn(format_args!("no config files matched '{pattern}'"));
            return Ok(true);
        }
        self.stack.push(GlobFrame {
            pending: matches,
            current: None,
        });
        Ok(true)
    }
}

pub(super) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub(super) fn is_regular_non_exec(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.is_file() && meta.permissions().mode() & 0o111 == 0
}

/// glibc's `GLOB_BRACE`: `a{b,c}d` becomes `abd`, `acd` (nested braces
/// allowed); each alternative is globbed on its own, in order.
pub(super) fn expand_braces(pattern: &str) -> Vec<String> {
    let b = pattern.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'{' => {
                let mut depth = 0;
                let mut commas = Vec::new();
                let mut j = i;
                let mut close = None;
                while j < b.len() {
                    match b[j] {
                        b'\\' => j += 1,
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                close = Some(j);
                                break;
                            }
                        }
                        b',' if depth == 1 => commas.push(j),
                        _ => {}
                    }
                    j += 1;
                }
                let Some(close) = close else {
                    return vec![pattern.to_string()];
                };
                let prefix = &pattern[..i];
                let suffix = &pattern[close + 1..];
                let mut bounds = vec![i];
                bounds.extend(commas);
                bounds.push(close);
                let mut out = Vec::new();
                for w in bounds.windows(2) {
                    let alt = &pattern[w[0] + 1..w[1]];
                    for e in expand_braces(&format!("{prefix}{alt}{suffix}")) {
                        out.push(e);
                    }
                }
                return out;
            }
            _ => i += 1,
        }
    }
    vec![pattern.to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_expand_in_order() {
        assert_eq!(expand_braces("a{b,c}d"), vec!["abd", "acd"]);
        assert_eq!(expand_braces("{x,y{1,2}}"), vec!["x", "y1", "y2"]);
        assert_eq!(expand_braces("no{brace"), vec!["no{brace"]);
    }
}
