//! Bad-input property tests: the keepalived.conf reader, the
//! notify-argument and FIFO-line parsers and the YAML loader get arbitrary
//! bytes and mutations of valid inputs. The property is the same for all:
//! no panic, and an error is one line (it ends up in one log line). These
//! are the fast check inside `cargo test`; the coverage-guided fuzzers in
//! `fuzz/` (cargo-fuzz, `fuzz/run-all`) check the same property for longer.
//!
//! Every file under `tests/corpus/` is fed to the same properties first:
//! seeds for the mutations and a regression corpus (add a file there for
//! every bug found). Case counts are bounded so the whole module runs in
//! seconds; docs/RELIABILITY.md records them.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, FileFailurePersistence};

use crate::event::Event;
use crate::fifo;
use crate::text::LineSplitter;

fn corpus(kind: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "empty corpus {}", dir.display());
    out
}

fn config(cases: u32) -> PtConfig {
    PtConfig {
        cases,
        // Failures are turned into corpus files by hand, not into
        // proptest-regressions/ files next to the source.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..PtConfig::default()
    }
}

fn one_line(what: &str, message: &str) {
    assert!(
        !message.contains(['\n', '\r']),
        "{what}: error is not one line: {message:?}"
    );
    assert!(!message.is_empty(), "{what}: empty error");
}

/// Words that make mutations reach past the first syntax check.
const KEEPALIVED_WORDS: &[&str] = &[
    "{",
    "}",
    "\n",
    " ",
    "\"",
    "'",
    "#",
    "!",
    "@node ",
    "@^node ",
    "vrrp_instance VI_1 ",
    "vrrp_sync_group G ",
    "group {",
    "virtual_ipaddress {",
    "virtual_ipaddress_excluded {",
    "192.0.2.1/33",
    "2001:db8::1/129",
    "dev",
    "veth0",
    "interface",
    "state MASTER",
    "priority 300",
    "notify",
    "$VAR",
    "$VAR=x",
    "~SEQ(i,1,3)",
    "global_defs {",
    "\\",
    "\0",
    "\u{fffd}",
    "include ",
];

const YAML_WORDS: &[&str] = &[
    ":",
    ": ",
    "\n",
    "  ",
    "- ",
    "---\n",
    "{",
    "}",
    "[",
    "]",
    "'",
    "\"",
    "#",
    "&a ",
    "*a",
    "!!binary ",
    "? ",
    "|\n",
    ">\n",
    "provider: exoscale\n",
    "token: ",
    "token-file: ",
    "verify-master: ",
    "back-off:\n  multiplier: ",
    "1e400",
    "-0",
    ".nan",
    "~",
    "null",
    "rules:\n  - name: x\n",
    "context:\n",
    "\t",
    "\u{feff}",
    "\u{2028}",
    "%",
    "%s",
];

/// One edit of a seed: where (as a fraction of its length) and what.
#[derive(Debug, Clone)]
enum Edit {
    Insert(f64, Vec<u8>),
    Delete(f64, usize),
    Duplicate(f64, usize),
    Truncate(f64),
}

fn edits(words: &'static [&'static str]) -> impl Strategy<Value = Vec<Edit>> {
    let word = prop::sample::select(words).prop_map(|w| w.as_bytes().to_vec());
    let bytes = prop::collection::vec(any::<u8>(), 1..8);
    let edit = prop_oneof![
        (0.0..1.0f64, word).prop_map(|(at, w)| Edit::Insert(at, w)),
        (0.0..1.0f64, bytes).prop_map(|(at, b)| Edit::Insert(at, b)),
        (0.0..1.0f64, 1..40usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (0.0..1.0f64, 1..80usize).prop_map(|(at, n)| Edit::Duplicate(at, n)),
        (0.0..1.0f64).prop_map(Edit::Truncate),
    ];
    prop::collection::vec(edit, 1..6)
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for e in edits {
        let at = |f: f64, len: usize| ((len as f64) * f) as usize;
        match e {
            Edit::Insert(f, w) => {
                let i = at(*f, v.len()).min(v.len());
                v.splice(i..i, w.iter().copied());
            }
            Edit::Delete(f, n) => {
                let i = at(*f, v.len()).min(v.len());
                let j = (i + n).min(v.len());
                v.drain(i..j);
            }
            Edit::Duplicate(f, n) => {
                let i = at(*f, v.len()).min(v.len());
                let j = (i + n).min(v.len());
                let part = v[i..j].to_vec();
                v.splice(j..j, part);
            }
            Edit::Truncate(f) => v.truncate(at(*f, v.len())),
        }
    }
    v
}

// ---------------------------------------------------------------------------
// keepalived.conf

/// Loads `bytes` as keepalived.conf from `dir`. Includes are resolved
/// relative to it: the corpus directory's `includes/`, never the host's.
fn load_keepalived(dir: &Path, bytes: &[u8]) {
    let path = dir.join("keepalived.conf");
    std::fs::write(&path, bytes).expect("write");
    let opts = crate::keepalived::LoadOptions {
        config_id: Some("node".into()),
    };
    if let Err(e) = crate::keepalived::load(&path, &opts) {
        one_line("keepalived.conf", &e.to_string());
    }
}

/// Mutations that could reach outside the scratch directory are dropped:
/// an `include` of an absolute path or a glob would read the host's files.
fn confined(bytes: &[u8]) -> bool {
    !bytes.windows(7).any(|w| w == b"include")
}

#[test]
fn keepalived_corpus() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, bytes) in corpus("keepalived") {
        eprintln!("corpus {}", path.display());
        load_keepalived(dir.path(), &bytes);
    }
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn keepalived_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if confined(&bytes) {
            let dir = tempfile::tempdir().expect("tempdir");
            load_keepalived(dir.path(), &bytes);
        }
    }

    /// Seeds: the corpus less its `big-*` files (each costs up to 0.3 s to
    /// read in a debug build, by design: they test the reader's bounds).
    #[test]
    fn keepalived_mutated_seeds(seed in any::<prop::sample::Index>(), edits in edits(KEEPALIVED_WORDS)) {
        let seeds: Vec<_> = corpus("keepalived")
            .into_iter()
            .filter(|(p, _)| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("big-")))
            .collect();
        let (_, seed) = &seeds[seed.index(seeds.len())];
        let bytes = apply(seed, &edits);
        if confined(&bytes) {
            let dir = tempfile::tempdir().expect("tempdir");
            load_keepalived(dir.path(), &bytes);
        }
    }
}

// ---------------------------------------------------------------------------
// notify arguments and FIFO lines

fn check_event_args(kind: &str, name: &str, state: &str, priority: Option<&str>) {
    if let Err(e) = Event::from_args(kind, name, state, priority) {
        one_line("notify arguments", &e.to_string());
    }
}

fn check_command_line(words: &[String]) {
    use clap::Parser;
    let argv = std::iter::once("floaty".to_string())
        .chain(words.iter().cloned())
        .map(std::ffi::OsString::from);
    match crate::cli::RawArgs::try_parse_from(crate::cli::normalize_go_flags(argv)) {
        Ok(raw) => {
            if let Err(e) = raw.into_command() {
                one_line(
                    "command line",
                    &format!("{:#}", crate::error::Error::from(e)),
                );
            }
        }
        // --help and --version: clap's output on stdout, not an error.
        Err(e) if !e.use_stderr() => {}
        Err(e) => one_line("command line", &crate::cli::clap_error_line(&e).to_string()),
    }
}

fn check_fifo_line(bytes: &[u8]) {
    if let Err(e) = fifo::parse_line(bytes) {
        one_line("FIFO line", &e.to_string());
    }
}

/// Corpus lines are FIFO lines and, split at whitespace, notify argv.
#[test]
fn event_corpus() {
    for (path, bytes) in corpus("events") {
        eprintln!("corpus {}", path.display());
        for line in bytes.split(|b| *b == b'\n') {
            check_fifo_line(line);
            let text = String::from_utf8_lossy(line);
            let w: Vec<&str> = text.split('\t').collect();
            if w.len() >= 3 {
                check_event_args(w[0], w[1], w[2], w.get(3).copied());
            }
        }
    }
}

fn event_word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "INSTANCE", "GROUP", "MASTER", "BACKUP", "FAULT", "STOP", "DELETED", "\"VI_1\"",
                "'VI.b'", "100", "255", "256", "-1", ""
            ][..]
        )
        .prop_map(str::to_string),
        any::<String>(),
        "[\\PC\\n\\r\\t\"' ]{0,12}",
    ]
}

proptest! {
    #![proptest_config(config(4000))]

    #[test]
    fn notify_arguments(kind in event_word(), name in event_word(), state in event_word(), priority in prop::option::of(event_word())) {
        check_event_args(&kind, &name, &state, priority.as_deref());
    }

    /// Whole command lines as `main` parses them: every failure, clap's
    /// included, is one line.
    #[test]
    fn command_lines(words in prop::collection::vec(prop_oneof![
        prop::sample::select(&[
            "--bogus", "-bogus", "--log-target", "bogus", "stderr", "--check", "--test", "-T",
            "--fifo", "--json-log", "-json-log", "-v", "--dry-run", "--", "-", "/f.yml",
        ][..]).prop_map(str::to_string),
        event_word(),
    ], 0..7)) {
        check_command_line(&words);
    }

    #[test]
    fn fifo_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check_fifo_line(&bytes);
    }

    #[test]
    fn fifo_structured_lines(words in prop::collection::vec(event_word(), 0..6), sep in prop::sample::select(&[" ", "  ", "\t", " \"", "\" ", "\r"][..])) {
        check_fifo_line(words.join(sep).as_bytes());
    }

    /// Any chunking of any stream gives the same lines, none too long.
    #[test]
    fn fifo_splitter_is_chunking_independent(bytes in prop::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..600), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let mut whole = LineSplitter::new();
        let expected = whole.push(&bytes);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunked = LineSplitter::new();
        let mut got = Vec::new();
        let mut from = 0;
        for p in points.into_iter().chain([bytes.len()]) {
            got.extend(chunked.push(&bytes[from..p]));
            from = p;
        }
        prop_assert_eq!(got, expected);
        prop_assert_eq!(chunked.finish(), whole.finish());
    }
}

// ---------------------------------------------------------------------------
// floaty.yml

fn check_yaml(dir: &Path, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let path = dir.join("floaty.yml");
    match crate::config::parse_with_env(&text, &path, &|_| None) {
        Ok(cfg) => {
            // What `floaty check` prints must not fail either.
            let _ = cfg.to_string();
            if let Err(e) = cfg.run_credentials() {
                one_line("floaty.yml", &e.to_string());
            }
        }
        Err(e) => one_line("floaty.yml", &e.to_string()),
    }
}

#[test]
fn yaml_corpus() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, bytes) in corpus("config") {
        eprintln!("corpus {}", path.display());
        check_yaml(dir.path(), &bytes);
    }
}

proptest! {
    #![proptest_config(config(2500))]

    #[test]
    fn yaml_arbitrary_text(text in any::<String>()) {
        check_yaml(Path::new("/nonexistent"), text.as_bytes());
    }

    #[test]
    fn yaml_mutated_seeds(seed in any::<prop::sample::Index>(), edits in edits(YAML_WORDS)) {
        let seeds = corpus("config");
        let (_, seed) = &seeds[seed.index(seeds.len())];
        // Secret files named by a mutated seed resolve inside /nonexistent.
        check_yaml(Path::new("/nonexistent"), &apply(seed, &edits));
    }
}
