//! `~SEQ(var, start, end)` and `~LST(var, a, b, ...)`: lines repeated
//! over a range or a list, queued and replayed by the reader.

use super::lexer::{blank_span, strtol};
use super::state::*;
impl Reader {
    pub(super) fn next_seq_line(&mut self) -> Vec<u8> {
        let mut sets: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut remove = false;
        let text;
        {
            let Some(seq) = self.seqs.last_mut() else {
                return Vec::new();
            };
            text = seq.text.clone();
            match &mut seq.kind {
                SeqKind::Seq {
                    var,
                    next,
                    last,
                    step,
                    hex,
                } => {
                    let val = if *hex {
                        format!("{:x}", *next as u64)
                    } else {
                        format!("{}", *next)
                    };
                    sets.push((var.clone(), val.into_bytes()));
                    match next.checked_add(*step) {
                        Some(n) => {
                            *next = n;
                            if (*step > 0 && n > *last) || (*step < 0 && n < *last) {
                                remove = true;
                            }
                        }
                        None => remove = true,
                    }
                }
                SeqKind::Lst {
                    params,
                    sets: vals,
                    idx,
                } => {
                    if let Some(set) = vals.get(*idx) {
                        for (p, v) in params.iter().zip(set.iter()) {
                            sets.push((p.clone(), v.clone()));
                        }
                    }
                    *idx += 1;
                    if *idx >= vals.len() {
                        remove = true;
                    }
                }
            }
        }
        if remove {
            self.seqs.pop();
        }
        for (name, value) in sets {
            self.set_definition(&name, value);
        }
        text
    }

    pub(super) fn add_seq(&mut self, buf: &[u8]) -> bool {
        let mut p = 4;
        let hex = buf.get(p) == Some(&b'x');
        if hex {
            p += 1;
        }
        p += blank_span(&buf[p.min(buf.len())..]);
        if buf.get(p) != Some(&b'(') {
            return false;
        }
        p += 1;
        p += blank_span(&buf[p.min(buf.len())..]);
        let var_start = p;
        while p < buf.len() && !matches!(buf[p], b' ' | b'\t' | b',' | b')') {
            p += 1;
        }
        let var = buf[var_start..p].to_vec();
        p += blank_span(&buf[p..]);
        if p >= buf.len() || buf[p] == b')' || p == var_start {
            return false;
        }
        p += 1;
        p += blank_span(&buf[p.min(buf.len())..]);
        let Some(end_rel) = buf.get(p..).and_then(|r| r.iter().position(|b| *b == b')')) else {
            return false;
        };
        let end_seq = p + end_rel;
        if end_seq + 1 - p + 1 > 3 * 20 + 3 + 1 {
            return false;
        }
        let mut args = buf[p..=end_seq].to_vec();
        let mut ml: Option<MlPtr> = None;
        let saved = (self.ml_stack.len(), self.ml_seq_depth);
        self.replace_param(&mut args, 3 * 20 + 3 + 1, &mut ml);
        // Those copies are dropped right here; nothing to bound.
        self.ml_copied = 0;
        self.ml_stack.truncate(saved.0);
        self.ml_seq_depth = saved.1;
        if ml.is_some() {
            return false;
        }
        let (start, step, end);
        let mut q = 0;
        let (one, n) = strtol(&args, true);
        q += n;
        q += blank_span(&args[q..]);
        if args.get(q) == Some(&b')') {
            end = one;
            step = if end < 1 { -1 } else { 1 };
            start = if end < 0 { -1 } else { 1 };
        } else {
            if args.get(q) != Some(&b',') {
                return false;
            }
            let (two, n) = strtol(&args[q + 1..], true);
            q += 1 + n;
            q += blank_span(&args[q..]);
            if args.get(q) == Some(&b')') {
                start = one;
                end = two;
                step = if start <= end { 1 } else { -1 };
            } else {
                if args.get(q) != Some(&b',') {
                    return false;
                }
                let (three, n) = strtol(&args[q + 1..], true);
                q += 1 + n;
                q += blank_span(&args[q..]);
                if args.get(q) != Some(&b')') {
                    return false;
                }
                start = one;
                step = two;
                end = three;
                if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
                    return false;
                }
            }
        }
        if hex && (start < 0 || end < 0) {
            return false;
        }
        let t = end_seq + 1;
        let t = t + blank_span(&buf[t..]);
        self.seqs.push(Seq {
            kind: SeqKind::Seq {
                var,
                next: start,
                last: end,
                step,
                hex,
            },
            text: buf[t..].to_vec(),
        });
        true
    }

    pub(super) fn add_lst(&mut self, buf: &[u8]) -> bool {
        let at = |p: usize| buf.get(p).copied().unwrap_or(0);
        let span = |p: usize| blank_span(buf.get(p..).unwrap_or_default());
        let mut p = 4;
        p += span(p);
        if at(p) != b'(' {
            return false;
        }
        p += 1;
        p += span(p);
        let mut end_char = b',';
        if at(p) == b'{' {
            end_char = b'}';
            p += 1;
            p += span(p);
        }
        let mut params = Vec::new();
        loop {
            let s = p;
            while p < buf.len() && !matches!(buf[p], b' ' | b'\t' | b',' | b'}') {
                p += 1;
            }
            params.push(buf[s..p].to_vec());
            p += span(p);
            if at(p) == end_char {
                break;
            }
            if at(p) != b',' {
                return false;
            }
            p += 1 + span(p + 1);
        }
        let num_vars = params.len() - 1;
        if at(p) == b'}' {
            p += 1 + span(p + 1);
        }
        if at(p) != b',' {
            return false;
        }
        p += 1;
        p += span(p);
        let mut sets = Vec::new();
        loop {
            let mut end_char = b',';
            if at(p) == b'{' {
                end_char = b'}';
                p += 1;
                p += span(p);
            }
            let mut values = Vec::new();
            let mut num_values = 0;
            loop {
                let s = p;
                while p < buf.len() && !matches!(buf[p], b' ' | b'\t' | b',' | b'}' | b')') {
                    p += 1;
                }
                values.push(buf[s..p].to_vec());
                p += span(p);
                if at(p) == end_char || (at(p) == b')' && end_char == b',') {
                    break;
                }
                if at(p) != b',' {
                    return false;
                }
                p += 1 + span(p + 1);
                num_values += 1;
                if num_values > num_vars {
                    return false;
                }
            }
            while values.len() < params.len() {
                values.push(Vec::new());
            }
            sets.push(values);
            if at(p) == b'}' && end_char == b'}' {
                p += 1 + span(p + 1);
            }
            if at(p) == b')' {
                break;
            }
            if at(p) != b',' {
                return false;
            }
            p += 1 + span(p + 1);
        }
        if params.is_empty() || sets.is_empty() {
            return false;
        }
        p += 1 + span(p + 1);
        self.seqs.push(Seq {
            kind: SeqKind::Lst {
                params,
                sets,
                idx: 0,
            },
            text: buf.get(p..).unwrap_or_default().to_vec(),
        });
        true
    }
}
