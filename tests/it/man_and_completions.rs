//! The man page and shell completions that the packages ship
//! (packaging/generated/, where `cargo deb` and `cargo generate-rpm` find
//! them) against the command line: byte for byte what the built binary's
//! `floaty generate` renders now, and every flag, short flag, value and
//! usage line of `floaty --help` present in each of them. A flag added to
//! the CLI without `packaging/generate` fails here.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::support::bin;

/// Each shipped file and the `floaty generate` arguments that render it.
const ARTIFACTS: [(&str, &[&str]); 4] = [
    ("floaty.8", &["generate", "man"]),
    ("floaty.bash", &["generate", "completions", "bash"]),
    ("_floaty", &["generate", "completions", "zsh"]),
    ("floaty.fish", &["generate", "completions", "fish"]),
];

fn generated_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("packaging/generated")
}

fn run(args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {} {args:?}: {e}", bin()));
    assert!(
        out.status.success(),
        "floaty {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn shipped(name: &str) -> String {
    let path = generated_dir().join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run packaging/generate and commit the result",
            path.display()
        )
    })
}

/// The first line where `shipped` and `rendered` differ, for the message.
fn first_difference(shipped: &str, rendered: &str) -> String {
    let mut a = shipped.lines();
    let mut b = rendered.lines();
    for n in 1.. {
        match (a.next(), b.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (None, None) => return "only in line endings".into(),
            (x, y) => {
                return format!(
                    "line {n}: shipped {:?}, rendered {:?}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                )
            }
        }
    }
    unreachable!()
}

#[test]
fn shipped_files_are_what_the_binary_renders() {
    let mut stale = Vec::new();
    for (name, args) in ARTIFACTS {
        let rendered = run(args);
        let on_disk = shipped(name);
        if rendered != on_disk {
            stale.push(format!(
                "packaging/generated/{name} ({})",
                first_difference(&on_disk, &rendered)
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "stale against `floaty generate`: {}; run packaging/generate and commit the result",
        stale.join("; ")
    );
}

/// What `floaty --help` offers: long flags, short flags, the possible
/// values of flags that take one, and the usage lines.
#[derive(Debug, Default)]
struct Cli {
    long: Vec<String>,
    short: Vec<char>,
    values: Vec<String>,
    usage: Vec<String>,
}

fn parse_help(help: &str) -> Cli {
    let mut cli = Cli::default();
    let mut in_usage = false;
    for line in help.lines() {
        if let Some(rest) = line.strip_prefix("Usage: ") {
            in_usage = true;
            cli.usage.push(rest.trim().to_string());
            continue;
        }
        if in_usage && line.starts_with("       floaty ") {
            cli.usage.push(line.trim().to_string());
            continue;
        }
        in_usage = false;
        let trimmed = line.trim_start();
        if !trimmed.starts_with('-') || !line.starts_with("  ") {
            continue;
        }
        // `  -v, --verbose   Help text`: the flags end at the first double space.
        let head = trimmed.split("  ").next().unwrap_or("");
        for word in head.split([',', ' ']).filter(|w| !w.is_empty()) {
            if let Some(long) = word.strip_prefix("--") {
                cli.long.push(long.to_string());
            } else if let Some(short) = word.strip_prefix('-') {
                let mut chars = short.chars();
                if let (Some(c), None) = (chars.next(), chars.next()) {
                    cli.short.push(c);
                }
            }
        }
        if let Some((_, values)) = line.split_once("[possible values: ") {
            let values = values.trim_end().trim_end_matches(']');
            cli.values
                .extend(values.split(", ").map(|v| v.trim().to_string()));
        }
    }
    cli
}

#[test]
fn every_flag_of_the_help_is_in_the_man_page_and_each_completion() {
    let cli = parse_help(&run(&["--help"]));
    // The parse itself: a help text this test no longer understands must
    // not pass by finding nothing.
    for (what, found) in [
        ("long flags", cli.long.len()),
        ("short flags", cli.short.len()),
        ("possible values", cli.values.len()),
        ("usage lines", cli.usage.len()),
    ] {
        assert!(found > 0, "found no {what} in `floaty --help`: {cli:?}");
    }
    for needed in ["fifo", "check", "test", "log-target", "help", "version"] {
        assert!(
            cli.long.iter().any(|l| l == needed),
            "--{needed} not parsed"
        );
    }

    let man = shipped("floaty.8");
    let bash = shipped("floaty.bash");
    let zsh = shipped("_floaty");
    let fish = shipped("floaty.fish");
    let zsh_specs = zsh_option_names(&zsh);
    let mut missing = Vec::new();
    let mut need = |file: &str, text: &dyn Haystack, needle: String| {
        if !text.has(&needle) {
            missing.push(format!("{file} lacks {needle:?}"));
        }
    };
    // roff escapes every '-' as '\-'.
    let roff = |s: &str| s.replace('-', "\\-");
    for long in &cli.long {
        need("floaty.8", &man, roff(&format!("--{long}")));
        need("floaty.bash", &bash, format!("--{long}"));
        need("_floaty", &zsh_specs, format!("--{long}"));
        need("floaty.fish", &fish, format!("-l {long}"));
    }
    for short in &cli.short {
        need("floaty.8", &man, roff(&format!("-{short}")));
        need("floaty.bash", &bash, format!("-{short} "));
        need("_floaty", &zsh_specs, format!("-{short}"));
        need("floaty.fish", &fish, format!("-s {short}"));
    }
    for value in &cli.values {
        need("floaty.8", &man, roff(value));
        need("floaty.bash", &bash, value.clone());
        need("_floaty", &zsh, value.clone());
        need("floaty.fish", &fish, value.clone());
    }
    // The synopsis: clap_mangen bolds the name and escapes dashes.
    for usage in &cli.usage {
        let rest = usage.strip_prefix("floaty ").unwrap_or(usage);
        need("floaty.8", &man, format!("\\fBfloaty\\fR {}", roff(rest)));
    }
    assert!(
        missing.is_empty(),
        "the shipped man page and completions miss what `floaty --help` offers:\n  {}",
        missing.join("\n  ")
    );
}

/// Where a needle is looked for: a file's text (substring) or a list of
/// option names (exact).
trait Haystack {
    fn has(&self, needle: &str) -> bool;
}

impl Haystack for String {
    fn has(&self, needle: &str) -> bool {
        self.contains(needle)
    }
}

impl Haystack for Vec<String> {
    fn has(&self, needle: &str) -> bool {
        self.iter().any(|s| s == needle)
    }
}

/// The options a zsh `_arguments` completion offers: each spec line
/// `'(EXCLUDED...)--name[help]'` or `'--name=[help]:VALUE:(...)'` gives
/// `--name`.
fn zsh_option_names(zsh: &str) -> Vec<String> {
    zsh.lines()
        .filter_map(|l| l.strip_prefix('\''))
        .map(|l| match l.strip_prefix('(') {
            Some(rest) => rest.split_once(')').map_or("", |(_, r)| r),
            None => l,
        })
        .filter(|l| l.starts_with('-'))
        .map(|l| l.split(['[', '=']).next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn the_help_parse_sees_what_a_reader_sees() {
    let cli = parse_help(
        "Usage: floaty [FLAGS] CONFIG\n       floaty [FLAGS] --fifo CONFIG FIFO\n\n\
         Options:\n  -v, --verbose   Log more\n      --log-target <TARGET>  Where [possible values: a, b]\n\
         keepalived.conf:  notify \"/usr/bin/floaty --not-a-flag\"\n",
    );
    assert_eq!(cli.long, ["verbose", "log-target"]);
    assert_eq!(cli.short, ['v']);
    assert_eq!(cli.values, ["a", "b"]);
    assert_eq!(
        cli.usage,
        ["floaty [FLAGS] CONFIG", "floaty [FLAGS] --fifo CONFIG FIFO"]
    );
    let zsh = "'--log-target=[Where]:TARGET:(a b)' \\\n'-v[Log]' \\\n\
               '(-T --test)--fifo[Read]' \\\n'*::args -- CONFIG:_default' \\\n";
    assert_eq!(zsh_option_names(zsh), ["--log-target", "-v", "--fifo"]);
}
