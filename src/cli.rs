//! The command line, kept apart from what floaty derives from it.
//!
//! vshn/floaty used Go's `flag` package, so wrapper scripts in the wild spell
//! flags with one dash (`-verbose`, `-dry-run`, `-fifo`). We accept those by
//! rewriting them to their two-dash form before clap sees them.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use clap_complete::Shell;

use crate::event::{Event, EventError, LowerPriority, RX_LOWER_PRI};

const USAGE: &str = "floaty [FLAGS] CONFIG INSTANCE|GROUP NAME STATE [PRIORITY]
       floaty [FLAGS] CONFIG INSTANCE NAME MASTER_RX_LOWER_PRI [PRIORITY]
       floaty [FLAGS] -T|--test CONFIG
       floaty [FLAGS] --check CONFIG
       floaty [FLAGS] --fifo CONFIG FIFO
       floaty [FLAGS] --drain|--undrain CONFIG [INSTANCE...]
       floaty [FLAGS] --status [--json|--nagios] CONFIG [INSTANCE...]";

/// Keep cloud floating IPs pointed at the keepalived VRRP MASTER.
#[derive(Debug, Parser)]
#[command(name = "floaty", version, override_usage = USAGE)]
#[command(
    after_help = "keepalived.conf:  notify \"/usr/bin/floaty /etc/keepalived/floaty.yml\"\n\
Exit status: 0 done, 1 runtime failure, 2 usage or config error (nothing was done)."
)]
pub struct RawArgs {
    /// Log debug details too (also when FLOATY_LOG_VERBOSE is non-empty).
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Log one JSON object per line.
    #[arg(long)]
    pub json_log: bool,

    /// Log provider calls instead of making them.
    #[arg(long)]
    pub dry_run: bool,

    /// Self-test: check the provider's API access with CONFIG, then exit.
    #[arg(short = 'T', long = "test")]
    pub test: bool,

    /// Validate CONFIG and the keepalived.conf it names; print what floaty manages as JSON.
    #[arg(long, conflicts_with_all = ["test", "fifo"])]
    pub check: bool,

    /// Read events from keepalived's notify FIFO (CONFIG FIFO).
    #[arg(long, conflicts_with = "test")]
    pub fifo: bool,

    /// Maintenance: make keepalived FAULT these instances (all without INSTANCE) through their track files, so the peer takes over; lasts until --undrain.
    #[arg(long, conflicts_with_all = ["test", "fifo", "check", "undrain"])]
    pub drain: bool,

    /// End a --drain: the track files go back to what this node's probes measured.
    #[arg(long, conflicts_with_all = ["test", "fifo", "check"])]
    pub undrain: bool,

    /// Show each instance's state as its refresher or prober last saw it; the exit status is a monitoring plugin's (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
    #[arg(long, conflicts_with_all = ["test", "fifo", "check", "drain", "undrain"])]
    pub status: bool,

    /// With --status: one JSON object for machines.
    #[arg(long, requires = "status", conflicts_with = "nagios")]
    pub json: bool,

    /// With --status: the monitoring plugin's one line with perfdata.
    #[arg(long, requires = "status")]
    pub nagios: bool,

    /// Where logs go; by default stderr, or the journal (else syslog) when
    /// stderr is /dev/null, as it is when keepalived runs floaty directly.
    #[arg(long, value_enum, value_name = "TARGET")]
    pub log_target: Option<LogTarget>,

    /// CONFIG, then the event keepalived appends (TYPE NAME STATE [PRIORITY]) or the FIFO path.
    #[arg(value_name = "ARGS", allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogTarget {
    Stderr,
    Journald,
    Syslog,
}

/// What to do, derived from the raw arguments.
#[derive(Debug)]
pub enum Command {
    Notify {
        config: PathBuf,
        event: Event,
    },
    /// `CONFIG INSTANCE NAME MASTER_RX_LOWER_PRI [PRIORITY]`: re-assert.
    Reassert {
        config: PathBuf,
        event: LowerPriority,
    },
    Test {
        config: PathBuf,
    },
    Check {
        config: PathBuf,
    },
    Fifo {
        config: PathBuf,
        fifo: PathBuf,
    },
    /// `--drain` (`drain: true`) or `--undrain`; no instances: all of them.
    Drain {
        config: PathBuf,
        instances: Vec<String>,
        drain: bool,
    },
    /// `--status`; no instances: all of them.
    Status {
        config: PathBuf,
        instances: Vec<String>,
        format: StatusFormat,
    },
    /// Hidden packaging helper: `floaty generate man|completions SHELL`.
    Generate(Artifact),
}

/// How `--status` prints: lines, `--json`, or `--nagios`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    Text,
    Json,
    Nagios,
}

#[derive(Debug)]
pub struct Options {
    pub verbose: bool,
    pub json_log: bool,
    pub dry_run: bool,
    pub log_target: Option<LogTarget>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{what} takes {expected}, got {got} argument(s); usage: floaty {usage}")]
    ArgCount {
        what: &'static str,
        expected: &'static str,
        got: usize,
        usage: &'static str,
    },
    #[error("bad event `{line}`: {source}")]
    Event {
        line: String,
        #[source]
        source: EventError,
    },
    #[error("generate takes `man` or `completions SHELL` (SHELL: bash, zsh, fish, elvish, powershell); got `{0}`")]
    Generate(String),
    /// A flag clap did not know: positionals take hyphen values (a NAME
    /// may start with `-`), so clap hands it over as an argument and the
    /// count came out wrong; naming the flag is what helps.
    #[error("unknown flag `{0}`; floaty --help lists the flags")]
    UnknownFlag(String),
    /// clap's own error (bad value, conflicting flags), made one line.
    #[error("{0}")]
    Clap(String),
}

/// Whether `--json-log` (or Go's `-json-log`) is among `args`, for errors
/// that happen before or while the arguments are parsed: they must come
/// out in the format asked for too.
pub fn wants_json_log(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json-log" || a == "-json-log")
}

/// A clap error as one line: its message and the hints that follow it
/// (possible values, a similar flag), without the usage block that makes
/// it several lines in a log.
pub fn clap_error_line(e: &clap::Error) -> UsageError {
    let text = e.render().to_string();
    let mut parts: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            if parts.is_empty() {
                continue;
            }
            break;
        }
        let line = line.strip_prefix("error: ").unwrap_or(line);
        let part = match line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            Some(hint) => format!("({hint})"),
            None => line.to_string(),
        };
        parts.push(part);
    }
    let mut msg = parts.join(" ");
    if msg.is_empty() {
        msg = e.kind().to_string();
    }
    msg.push_str("; floaty --help shows the usage");
    UsageError::Clap(crate::text::shown(&msg))
}

/// The argument that most likely was meant as a flag: `--x` before `-x`.
fn flag_like(args: &[String]) -> Option<&String> {
    let looks = |a: &&String| a.starts_with('-') && a.as_str() != "-";
    args.iter()
        .filter(looks)
        .find(|a| a.starts_with("--"))
        .or_else(|| args.iter().find(looks))
}

/// What `floaty generate` renders (`generate.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    Man,
    Completions(Shell),
}

impl Artifact {
    /// Parse the positionals after `generate`. The error quotes them with
    /// control characters escaped, so it stays one log line (the
    /// notify_args fuzz target found `generate $'\nman'` giving two).
    pub fn from_args(args: &[String]) -> Result<Artifact, UsageError> {
        let unknown = || UsageError::Generate(crate::text::shown(&args.join(" ")));
        match args {
            [what] if what == "man" => Ok(Artifact::Man),
            [what, shell] if what == "completions" => shell
                .parse::<Shell>()
                .map(Artifact::Completions)
                .map_err(|_| unknown()),
            _ => Err(unknown()),
        }
    }
}

/// Rewrite Go-style single-dash long flags to clap's two-dash form.
/// Only exact flag names are touched, and nothing after `--`.
pub fn normalize_go_flags<I: IntoIterator<Item = OsString>>(args: I) -> Vec<OsString> {
    const LONG: &[&str] = &[
        "verbose",
        "json-log",
        "dry-run",
        "test",
        "fifo",
        "check",
        "log-target",
        "help",
        "version",
    ];
    let mut out = Vec::new();
    let mut passthrough = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || passthrough {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        let rewritten = arg.to_str().and_then(|s| {
            let rest = s.strip_prefix('-')?;
            if rest.starts_with('-') {
                return None;
            }
            let name = rest.split_once('=').map_or(rest, |(n, _)| n);
            LONG.contains(&name)
                .then(|| OsString::from(format!("-{s}")))
        });
        out.push(rewritten.unwrap_or(arg));
    }
    out
}

impl RawArgs {
    /// The flags that shape how floaty runs, whatever the command.
    pub fn options(&self) -> Options {
        let verbose =
            self.verbose || std::env::var_os("FLOATY_LOG_VERBOSE").is_some_and(|v| !v.is_empty());
        Options {
            verbose,
            json_log: self.json_log,
            dry_run: self.dry_run,
            log_target: self.log_target,
        }
    }

    /// Turn parsed flags and positionals into one command.
    pub fn into_command(self) -> Result<Command, UsageError> {
        let args = self.args;
        let count = |what, expected, usage| match flag_like(&args) {
            Some(flag) => UsageError::UnknownFlag(crate::text::shown(flag)),
            None => UsageError::ArgCount {
                what,
                expected,
                got: args.len(),
                usage,
            },
        };
        // CONFIG comes first in every form; one that starts with `-` is a
        // flag clap did not know (a NAME may start with `-`, a path here
        // would have to be written `./-x`).
        if let Some(first) = args
            .first()
            .filter(|a| a.starts_with('-') && a.as_str() != "-")
        {
            return Err(UsageError::UnknownFlag(crate::text::shown(first)));
        }
        let command = if self.test {
            let [config] = <[String; 1]>::try_from(args.clone())
                .map_err(|_| count("--test", "CONFIG", "-T CONFIG"))?;
            Command::Test {
                config: config.into(),
            }
        } else if self.check {
            let [config] = <[String; 1]>::try_from(args.clone())
                .map_err(|_| count("--check", "CONFIG", "--check CONFIG"))?;
            Command::Check {
                config: config.into(),
            }
        } else if self.drain || self.undrain {
            let flag = if self.drain { "--drain" } else { "--undrain" };
            let Some((config, instances)) = args.split_first() else {
                return Err(count(
                    flag,
                    "CONFIG [INSTANCE...]",
                    "--drain|--undrain CONFIG [INSTANCE...]",
                ));
            };
            Command::Drain {
                config: config.into(),
                instances: instances.to_vec(),
                drain: self.drain,
            }
        } else if self.status {
            let Some((config, instances)) = args.split_first() else {
                return Err(count(
                    "--status",
                    "CONFIG [INSTANCE...]",
                    "--status [--json|--nagios] CONFIG [INSTANCE...]",
                ));
            };
            use StatusFormat as Format;
            Command::Status {
                config: config.into(),
                instances: instances.to_vec(),
                format: if self.json {
                    Format::Json
                } else if self.nagios {
                    Format::Nagios
                } else {
                    Format::Text
                },
            }
        } else if self.fifo {
            let [config, fifo] = <[String; 2]>::try_from(args.clone())
                .map_err(|_| count("--fifo", "CONFIG FIFO", "--fifo CONFIG FIFO"))?;
            Command::Fifo {
                config: config.into(),
                fifo: fifo.into(),
            }
        } else if args.len() <= 3 && args.first().is_some_and(|a| a == "generate") {
            Command::Generate(Artifact::from_args(&args[1..])?)
        } else {
            if !(4..=5).contains(&args.len()) {
                return Err(count(
                    "a notify call",
                    "CONFIG TYPE NAME STATE [PRIORITY]",
                    "CONFIG INSTANCE|GROUP NAME STATE [PRIORITY]",
                ));
            }
            let bad_event = |source| UsageError::Event {
                // Escaped: the message must stay one log line.
                line: crate::text::shown(&args[1..].join(" ")),
                source,
            };
            let priority = args.get(4).map(|s| s.as_str());
            let config = PathBuf::from(&args[0]);
            if args[3] == RX_LOWER_PRI {
                let event =
                    LowerPriority::from_args(&args[1], &args[2], priority).map_err(bad_event)?;
                Command::Reassert { config, event }
            } else {
                let event =
                    Event::from_args(&args[1], &args[2], &args[3], priority).map_err(bad_event)?;
                Command::Notify { config, event }
            }
        };
        Ok(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<(Command, Options), String> {
        let argv = normalize_go_flags(
            std::iter::once("floaty")
                .chain(args.iter().copied())
                .map(OsString::from),
        );
        let raw = RawArgs::try_parse_from(argv).map_err(|e| e.to_string())?;
        let options = raw.options();
        raw.into_command()
            .map(|c| (c, options))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn notify_with_and_without_priority() {
        let (cmd, _) = parse(&["/etc/f.yml", "INSTANCE", "VI_1", "MASTER", "150"]).unwrap();
        assert!(matches!(cmd, Command::Notify { event, .. } if event.priority == Some(150)));
        let (cmd, _) = parse(&["/etc/f.yml", "GROUP", "G1", "BACKUP"]).unwrap();
        assert!(matches!(cmd, Command::Notify { event, .. } if event.priority.is_none()));
    }

    #[test]
    fn a_lower_priority_call_is_a_reassert() {
        let (cmd, _) = parse(&["/f", "INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI"]).unwrap();
        assert!(
            matches!(&cmd, Command::Reassert { event, .. } if event.name == "VI_1" && event.priority.is_none()),
            "{cmd:?}"
        );
        let (cmd, _) = parse(&["/f", "INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI", "150"]).unwrap();
        assert!(matches!(cmd, Command::Reassert { event, .. } if event.priority == Some(150)));
        let e = parse(&["/f", "GROUP", "G1", "MASTER_RX_LOWER_PRI"]).unwrap_err();
        assert!(e.contains("not a group's"), "{e}");
        assert!(parse(&["/f", "INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI", "x"]).is_err());
    }

    #[test]
    fn go_style_flags_still_work() {
        let (cmd, opts) =
            parse(&["-verbose", "-dry-run", "-json-log", "-test", "/etc/f.yml"]).unwrap();
        assert!(matches!(cmd, Command::Test { .. }));
        assert!(opts.verbose && opts.dry_run && opts.json_log);
        let (cmd, _) = parse(&["-T", "/etc/f.yml"]).unwrap();
        assert!(matches!(cmd, Command::Test { .. }));
        let (_, opts) =
            parse(&["-v", "-log-target=stderr", "/f", "INSTANCE", "a", "STOP"]).unwrap();
        assert!(opts.verbose);
        assert_eq!(opts.log_target, Some(LogTarget::Stderr));
    }

    #[test]
    fn names_that_look_like_flags_are_left_alone() {
        let v = normalize_go_flags(["floaty", "-x", "--", "-verbose"].map(OsString::from));
        assert_eq!(v, ["floaty", "-x", "--", "-verbose"].map(OsString::from));
    }

    #[test]
    fn an_unknown_flag_is_named_instead_of_counted() {
        for args in [
            &["--bogus", "/f", "INSTANCE", "VI_1", "MASTER"][..],
            &["/f", "INSTANCE", "VI_1", "MASTER", "100", "--bogus"],
            &["--bogus", "/f", "INSTANCE", "VI_1"],
            &["--check", "--bogus", "/f"],
            &["-bogus", "/f"],
        ] {
            let e = parse(args).unwrap_err();
            assert!(
                e.starts_with("unknown flag `-") && e.ends_with("; floaty --help lists the flags"),
                "{args:?}: {e}"
            );
        }
        let e = parse(&["--bo\ngus"]).unwrap_err();
        assert_eq!(
            e,
            "unknown flag `--bo\\ngus`; floaty --help lists the flags"
        );
        // A NAME that starts with `-` is still a name.
        let (cmd, _) = parse(&["/f", "INSTANCE", "-VI_1", "BACKUP"]).unwrap();
        assert!(matches!(cmd, Command::Notify { event, .. } if event.name == "-VI_1"));
        let (cmd, _) = parse(&["/f", "INSTANCE", "--x", "BACKUP", "100"]).unwrap();
        assert!(matches!(cmd, Command::Notify { event, .. } if event.name == "--x"));
        // Too few words and none flag-like: still the count.
        assert!(parse(&["/f", "INSTANCE", "-"])
            .unwrap_err()
            .contains("got 3 argument(s)"));
    }

    #[test]
    fn clap_errors_become_one_line() {
        let one = |args: &[&str]| {
            let argv = std::iter::once("floaty").chain(args.iter().copied());
            let e = RawArgs::try_parse_from(argv).unwrap_err();
            assert!(e.use_stderr());
            clap_error_line(&e).to_string()
        };
        assert_eq!(
            one(&["--log-target", "bogus"]),
            "invalid value 'bogus' for '--log-target <TARGET>' (possible values: stderr, journald, syslog); floaty --help shows the usage"
        );
        assert_eq!(
            one(&["--check", "--test", "x"]),
            "the argument '--check' cannot be used with '--test'; floaty --help shows the usage"
        );
        let e = one(&["--log-target"]);
        assert!(
            e.starts_with("a value is required for '--log-target <TARGET>'"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        let help = RawArgs::try_parse_from(["floaty", "--help"]).unwrap_err();
        assert!(!help.use_stderr(), "help stays on stdout, exit 0");
    }

    #[test]
    fn json_log_is_found_before_parsing() {
        let v = |a: &[&str]| {
            wants_json_log(
                &std::iter::once("floaty")
                    .chain(a.iter().copied())
                    .map(OsString::from)
                    .collect::<Vec<_>>(),
            )
        };
        assert!(v(&["--json-log", "--bogus"]));
        assert!(v(&["--bogus", "-json-log"]));
        assert!(!v(&["--", "--json-log"]));
        assert!(!v(&["--json-logs"]));
    }

    #[test]
    fn bad_usage_is_reported() {
        assert!(parse(&["/etc/f.yml", "INSTANCE", "VI_1"]).is_err());
        assert!(parse(&["/etc/f.yml", "INSTANCE", "VI_1", "PRIMARY"])
            .unwrap_err()
            .contains("unknown state"));
        assert!(parse(&["-T"]).is_err());
        assert!(parse(&["--fifo", "/f"]).is_err());
        let (cmd, _) = parse(&["-fifo", "/f", "/p"]).unwrap();
        assert!(matches!(cmd, Command::Fifo { fifo, .. } if fifo == std::path::Path::new("/p")));
    }
}
