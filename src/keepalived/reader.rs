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

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::lexer::{blank_span, decomment, is_blank, is_white, strtol, trim_trailing_blanks};
use super::{KeepalivedError, Location};

/// keepalived's MAXBUF: the longest line (and substitution result) it keeps.
pub(crate) const MAXBUF: usize = 1024;
/// keepalived has no limit and recurses until it runs out of descriptors;
/// any real setup is far below this.
pub(crate) const MAX_INCLUDE_DEPTH: usize = 32;
/// Bounds `~SEQ`/`~LST` and self-referencing definitions, which keepalived
/// would happily expand for hours.
pub(crate) const MAX_GENERATED_LINES: usize = 1_000_000;
/// And the text they produce (generated lines and substitution results):
/// a million lines of up to MAXBUF bytes, each full of addresses, took 5 s
/// to read from a 1 KiB file (found by the keepalived_conf fuzz target).
/// Real generated VIP and server lists are kilobytes.
pub(crate) const MAX_GENERATED_BYTES: usize = 8 << 20;
/// And the work of getting there: each `$NAME` substitution rewrites a line
/// of up to MAXBUF bytes, and a definition that uses itself can do so
/// thousands of times per line while producing little text (found by the
/// keepalived_conf fuzz target: 2 KiB of input, 37 s before this bound).
/// Real configs make hundreds.
pub(crate) const MAX_SUBSTITUTIONS: usize = 200_000;
/// The most floaty reads of one file, and of all files (main file and
/// includes) together. keepalived has no limit, but an include pattern or
/// path pointing at a log or a sparse file grew floaty to gigabytes before
/// any bound applied; the largest real configs (thousands of virtual
/// servers) are a few MiB.
pub(crate) const MAX_FILE_BYTES: u64 = 16 << 20;
pub(crate) const MAX_TOTAL_BYTES: u64 = 64 << 20;

struct OpenFile {
    path: PathBuf,
    /// Directory relative includes are resolved against: keepalived
    /// `chdir`s into the directory of every file it opens.
    dir: PathBuf,
    canon: Option<PathBuf>,
    data: Vec<u8>,
    pos: usize,
    line: usize,
}

/// One `include` (or the main file): its glob matches are read in order.
struct GlobFrame {
    pending: VecDeque<PathBuf>,
    current: Option<OpenFile>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DefKind {
    Plain,
    Pwd,
    Instance,
    Random,
}

struct Def {
    name: Vec<u8>,
    value: Vec<u8>,
    multiline: bool,
    kind: DefKind,
    max_params: usize,
}

enum SeqKind {
    Seq {
        var: Vec<u8>,
        next: i64,
        last: i64,
        step: i64,
        hex: bool,
    },
    Lst {
        params: Vec<Vec<u8>>,
        sets: Vec<Vec<Vec<u8>>>,
        idx: usize,
    },
}

struct Seq {
    kind: SeqKind,
    text: Vec<u8>,
}

type MlPtr = (Rc<Vec<u8>>, usize);

pub(crate) struct Reader {
    stack: Vec<GlobFrame>,
    residue: Option<Vec<u8>>,
    seqs: Vec<Seq>,
    next_ptr: Option<MlPtr>,
    ml_stack: Vec<(MlPtr, usize)>,
    /// Bytes of multi-line definition values copied by substitutions since
    /// `read_line` last counted them: a self-referencing multi-line
    /// definition stacks a copy per generated line, which must count
    /// against [`MAX_GENERATED_BYTES`] too (found by the keepalived_conf
    /// fuzz target: 2 KiB of input, 37 s and 3.9 GB before this bound).
    ml_copied: usize,
    /// `$NAME` substitutions made so far, against [`MAX_SUBSTITUTIONS`].
    substitutions: usize,
    ml_seq_depth: usize,
    defs: Vec<Def>,
    ml_def: Option<usize>,
    config_id: Option<Vec<u8>>,
    generated: usize,
    generated_bytes: usize,
    loc: Location,
    /// Bytes of config files read so far, against [`MAX_TOTAL_BYTES`].
    read_bytes: u64,
    pub(crate) warnings: Vec<String>,
}

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
    pub(crate) fn location(&self) -> &Location {
        &self.loc
    }

    pub(crate) fn warn(&mut self, msg: impl std::fmt::Display) {
        self.warnings.push(format!("{}: {}", self.loc, msg));
    }

    /// The next physical line chunk (at most MAXBUF-1 bytes), walking the
    /// include stack.
    fn next_physical(&mut self) -> Result<Option<Vec<u8>>, KeepalivedError> {
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

    fn open_included(&mut self, path: &Path) -> Result<Option<OpenFile>, KeepalivedError> {
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

    fn current_dir(&self) -> PathBuf {
        self.stack
            .iter()
            .rev()
            .find_map(|f| f.current.as_ref())
            .map_or_else(|| PathBuf::from("."), |f| f.dir.clone())
    }

    /// Counts one generated line of `bytes` bytes against both bounds.
    fn count_generated(&mut self, what: &str, bytes: usize) -> Result<(), KeepalivedError> {
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
    fn count_text(&mut self, what: &str, bytes: usize) -> Result<(), KeepalivedError> {
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

    fn end_ml_def(&mut self) {
        if let Some(d) = self.ml_def.and_then(|i| self.defs.get_mut(i)) {
            if d.value.is_empty() {
                d.multiline = false;
            }
        }
    }

    fn next_seq_line(&mut self) -> Vec<u8> {
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

    fn set_definition(&mut self, name: &[u8], value: Vec<u8>) {
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

    fn find_definition_exact(&self, name: &[u8], allow_multiline: bool) -> Option<usize> {
        self.defs
            .iter()
            .position(|d| d.name == name && (allow_multiline || !d.multiline))
    }

    /// `$NAME=value` (no blank before `=`). Returns whether the line was one.
    fn check_definition(&mut self, buf: &[u8]) -> bool {
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
    fn find_use(&self, s: &[u8]) -> Option<(usize, usize)> {
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

    fn def_value(&self, idx: usize) -> Vec<u8> {
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
    fn replace_param(
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

    fn add_seq(&mut self, buf: &[u8]) -> bool {
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

    fn add_lst(&mut self, buf: &[u8]) -> bool {
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

    /// `include[rmwba] PATTERN`: the pattern is the rest of the line, taken
    /// literally (quotes are not removed).
    fn check_include(&mut self, buf: &[u8]) -> Result<bool, KeepalivedError> {
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

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn is_regular_non_exec(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.is_file() && meta.permissions().mode() & 0o111 == 0
}

/// glibc's `GLOB_BRACE`: `a{b,c}d` becomes `abd`, `acd` (nested braces
/// allowed); each alternative is globbed on its own, in order.
fn expand_braces(pattern: &str) -> Vec<String> {
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
