//! `$NAME=value` definitions (also multi-line ones) and their
//! substitution, keepalived's way and bounded.

use std::rc::Rc;

use super::lexer::{blank_span, is_blank};
use super::state::*;

impl Reader {
    pub(super) fn end_ml_def(&mut self) {
        if let Some(d) = self.ml_def.and_then(|i| self.defs.get_mut(i)) {
            if d.value.is_empty() {
                d.multiline = false;
            }
        }
    }

    pub(super) fn set_definition(&mut self, name: &[u8], value: Vec<u8>) {
        match self.find_definition_exact(name, true) {
            Some(i) => {
                let d = &mut self.defs[i];
                d.value = value;
                d.kind = DefKind::Plain;
            }
            None => self.defs.push(Def {
                name: name.to_vec(),
                value,
                multiline: false,
                kind: DefKind::Plain,
                max_params: 0,
            }),
        }
    }

    pub(super) fn find_definition_exact(
        &self,
        name: &[u8],
        allow_multiline: bool,
    ) -> Option<usize> {
        self.defs
            .iter()
            .position(|d| d.name == name && (allow_multiline || !d.multiline))
    }

    /// `$NAME=value` (no blank before `=`). Returns whether the line was one.
    pub(super) fn check_definition(&mut self, buf: &[u8]) -> bool {
        if !buf
            .get(1)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        {
            return false;
        }
        let mut p = 2;
        while p < buf.len() && buf[p] != b'=' {
            if !(buf[p].is_ascii_alphanumeric() || buf[p] == b'_') {
                return false;
            }
            p += 1;
        }
        if p >= buf.len() {
            return false;
        }
        let name = buf[1..p].to_vec();
        let vstart = p + 1 + blank_span(&buf[p + 1..]);
        let mut value = buf[vstart..].to_vec();
        let multiline = value.last() == Some(&b'\\');
        if multiline {
            let mut len = value.len();
            while len >= 2 && is_blank(value[len - 2]) {
                len -= 1;
            }
            if len < 2 {
                value.clear();
            } else {
                value.truncate(len);
                value[len - 1] = b'\n';
            }
        }
        let idx = match self.find_definition_exact(&name, true) {
            Some(i) => i,
            None => {
                self.defs.push(Def {
                    name,
                    value: Vec::new(),
                    multiline: false,
                    kind: DefKind::Plain,
                    max_params: 0,
                });
                self.defs.len() - 1
            }
        };
        let d = &mut self.defs[idx];
        d.value = value;
        d.kind = DefKind::Plain;
        d.multiline = multiline;
        self.ml_def = Some(idx);
        true
    }

    /// keepalived's `find_definition` for a use site (`$NAME` / `${NAME}`):
    /// returns the definition and the length of the text it replaces.
    pub(super) fn find_use(&self, s: &[u8]) -> Option<(usize, usize)> {
        // s starts right after '$'
        let braces = s.first() == Some(&b'{');
        let name_start = usize::from(braces);
        let c = *s.get(name_start)?;
        if !(c.is_ascii_alphabetic() || c == b'_') {
            return None;
        }
        let mut p = name_start + 1;
        while p < s.len() && (s[p].is_ascii_alphanumeric() || s[p] == b'_') {
            p += 1;
        }
        let name = &s[name_start..p];
        let mut has_params = false;
        let consumed;
        if braces {
            let mut param_start = None;
            let mut param_end = 0;
            while p < s.len() && (s[p] == b' ' || s[p].is_ascii_digit()) {
                if s[p] != b' ' {
                    if param_start.is_none() {
                        param_start = Some(p);
                    }
                    param_end = p;
                }
                p += 1;
            }
            if param_start.is_some() {
                if param_end + 1 != p {
                    return None;
                }
                has_params = true;
            }
            if s.get(p) != Some(&b'}') {
                return None;
            }
            consumed = p + 1;
        } else {
            match s.get(p) {
                None | Some(b' ') | Some(b'\t') | Some(b',') | Some(b')') => {}
                _ => return None,
            }
            consumed = p;
        }
        let allow_multiline = consumed >= s.len() && !has_params;
        let idx = self.find_definition_exact(name, allow_multiline)?;
        if has_params && self.defs[idx].max_params == 0 {
            return None;
        }
        Some((idx, consumed + 1))
    }

    pub(super) fn def_value(&self, idx: usize) -> Vec<u8> {
        let d = &self.defs[idx];
        match d.kind {
            DefKind::Plain => d.value.clone(),
            DefKind::Pwd => self.current_dir().to_string_lossy().as_bytes().to_vec(),
            DefKind::Instance => self.config_id.clone().unwrap_or_default(),
            // keepalived's value is random; any fixed value is as good as another.
            DefKind::Random => b"0".to_vec(),
        }
    }

    /// keepalived's `replace_param`. The replacement is rescanned (a value
    /// may name other definitions); a result of MAXBUF bytes or more stops
    /// the substitution where it is, as keepalived does.
    pub(super) fn replace_param(
        &mut self,
        buf: &mut Vec<u8>,
        max_len: usize,
        ml_ptr: &mut Option<MlPtr>,
    ) -> bool {
        let mut cur = 0;
        let mut found = false;
        let mut next_ptr: Option<MlPtr> = None;
        let mut multiline_ptr = ml_ptr.clone();
        let mut steps = 0usize;
        while let Some(off) = buf
            .get(cur..)
            .and_then(|r| r.iter().position(|b| *b == b'$'))
        {
            let pos = cur + off;
            if pos + 1 >= buf.len() {
                break;
            }
            let Some((idx, region)) = self.find_use(&buf[pos + 1..]) else {
                cur = pos + 1;
                continue;
            };
            steps += 1;
            self.substitutions += 1;
            if steps > MAXBUF * 4 || self.substitutions > MAX_SUBSTITUTIONS {
                break;
            }
            found = true;
            next_ptr = multiline_ptr.clone();
            let multiline = self.defs[idx].multiline;
            if multiline {
                if let Some(p) = multiline_ptr.clone() {
                    self.ml_stack.push((p, self.ml_seq_depth));
                }
                self.ml_seq_depth = self.seqs.len();
            }
            let value = self.def_value(idx);
            let replacement: Vec<u8> = if multiline {
                let n = value
                    .iter()
                    .position(|b| *b == b'\n')
                    .unwrap_or(value.len());
                self.ml_copied += value.len();
                let rc = Rc::new(value.clone());
                next_ptr = Some((rc, n + 1));
                multiline_ptr = next_ptr.clone();
                value[..n].to_vec()
            } else {
                value.clone()
            };
            if buf.len() - region + replacement.len() >= max_len {
                return false;
            }
            buf.splice(pos..pos + region, replacement.iter().copied());
            let first = value.get(blank_span(&value)).copied();
            if first == Some(b'~') {
                break;
            }
            cur = pos;
        }
        if found {
            *ml_ptr = next_ptr;
        }
        found
    }
}
