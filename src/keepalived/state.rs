//! What the reader holds while it reads: the open files, the definitions,
//! the queued sequences. Its own file so that the reader's steps
//! (`files.rs`, `definitions.rs`, `sequences.rs`) and its loop
//! (`reader.rs`) share it without importing each other.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;

use super::Location;

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

pub(super) type MlPtr = (Rc<Vec<u8>>, usize);

pub(crate) struct Reader {
    pub(super) stack: Vec<GlobFrame>,
    pub(super) residue: Option<Vec<u8>>,
    pub(super) seqs: Vec<Seq>,
    pub(super) next_ptr: Option<MlPtr>,
    pub(super) ml_stack: Vec<(MlPtr, usize)>,
    /// Bytes of multi-line definition values copied by substitutions since
    /// `read_line` last counted them: a self-referencing multi-line
    /// definition stacks a copy per generated line, which must count
    /// against [`MAX_GENERATED_BYTES`] too (found by the keepalived_conf
    /// fuzz target: 2 KiB of input, 37 s and 3.9 GB before this bound).
    pub(super) ml_copied: usize,
    /// `$NAME` substitutions made so far, against [`MAX_SUBSTITUTIONS`].
    pub(super) substitutions: usize,
    pub(super) ml_seq_depth: usize,
    pub(super) defs: Vec<Def>,
    pub(super) ml_def: Option<usize>,
    pub(super) config_id: Option<Vec<u8>>,
    pub(super) generated: usize,
    pub(super) generated_bytes: usize,
    pub(super) loc: Location,
    /// Bytes of config files read so far, against [`MAX_TOTAL_BYTES`].
    pub(super) read_bytes: u64,
    pub(crate) warnings: Vec<String>,
}

pub(super) struct OpenFile {
    pub(super) path: PathBuf,
    /// Directory relative includes are resolved against: keepalived
    /// `chdir`s into the directory of every file it opens.
    pub(super) dir: PathBuf,
    pub(super) canon: Option<PathBuf>,
    pub(super) data: Vec<u8>,
    pub(super) pos: usize,
    pub(super) line: usize,
}

/// One `include` (or the main file): its glob matches are read in order.
pub(super) struct GlobFrame {
    pub(super) pending: VecDeque<PathBuf>,
    pub(super) current: Option<OpenFile>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum DefKind {
    Plain,
    Pwd,
    Instance,
    Random,
}

pub(super) struct Def {
    pub(super) name: Vec<u8>,
    pub(super) value: Vec<u8>,
    pub(super) multiline: bool,
    pub(super) kind: DefKind,
    pub(super) max_params: usize,
}

pub(super) enum SeqKind {
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

pub(super) struct Seq {
    pub(super) kind: SeqKind,
    pub(super) text: Vec<u8>,
}
