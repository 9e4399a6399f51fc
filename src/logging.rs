//! Where log lines go.
//!
//! keepalived runs notify programs with stdout and stderr on /dev/null, so a
//! floaty started directly by keepalived would log into the void. When stderr
//! is /dev/null we log to the journal, else to syslog; `--log-target` forces
//! a choice.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

use crate::cli::{LogTarget, Options};

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
const SYSLOG_SOCKET: &str = "/dev/log";
const SYSLOG_SOCKET_ENV: &str = "FLOATY_SYSLOG_SOCKET";

static TO_STDERR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
/// `--log-target stderr` was asked for (floaty-docker relies on it: its
/// stderr is PID 1's, which `docker logs` shows).
static STDERR_ASKED_FOR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Set in a refresher that let go of its caller's stderr: lines that
/// would have gone there go to syslog instead.
static STDERR_REPLACED: std::sync::OnceLock<Option<UnixDatagram>> = std::sync::OnceLock::new();

/// Whether a refresher forked now must let go of stderr: it lives until
/// the next event, and holding a pipe or socket open would keep the
/// caller's `$(floaty …)`, `floaty … 2>&1 | grep` or ssh session waiting
/// that long. A file, a terminal or /dev/null holds nobody up.
pub fn refresher_lets_go_of_stderr() -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    if !TO_STDERR.load(Relaxed) || STDERR_ASKED_FOR.load(Relaxed) {
        return false;
    }
    rustix::fs::fstat(io::stderr().as_fd()).is_ok_and(|st| {
        let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
        matches!(
            kind,
            rustix::fs::FileType::Fifo | rustix::fs::FileType::Socket
        )
    })
}

/// In the forked refresher, when the call found before forking that
/// [`refresher_lets_go_of_stderr`]: point stderr at /dev/null and log to
/// syslog from now on.
pub fn let_go_of_stderr() {
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return;
    };
    if rustix::stdio::dup2_stderr(&null).is_ok() {
        let _ = STDERR_REPLACED.set(SyslogOrStderr::syslog_socket());
    }
}
static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Report the error floaty ends with: on stderr for a person, and through
/// the log when that goes elsewhere (keepalived's /dev/null). Always one
/// line: whatever the message embeds (a NAME, a path) is escaped here
/// once more, so no variant can split it. Under `--json-log` the stderr
/// line is a JSON object of the same shape as the other log lines, as a
/// log shipper reading stderr would otherwise choke on the last line.
pub fn report_error(msg: &str) {
    let msg = crate::text::shown(msg);
    if !TO_STDERR.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::error!("{msg}");
    }
    if JSON.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{}", json_error_line(&msg));
    } else {
        eprintln!("floaty: {msg}");
    }
}

/// `{"timestamp":…,"level":"ERROR","message":…}`, as the json fmt layer
/// writes its events (flattened, no target).
fn json_error_line(msg: &str) -> String {
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
    let mut timestamp = String::new();
    let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    format!(
        "{{\"timestamp\":{},\"level\":\"ERROR\",\"message\":{}}}",
        quote(&timestamp),
        quote(msg)
    )
}

/// Install the global subscriber. Call before any fork: it spawns no thread,
/// so a forked refresher keeps logging through it.
pub fn init(opts: &Options) {
    let level = if opts.verbose {
        Level::DEBUG
    } else {
        Level::INFO
    };
    let target = opts.log_target.unwrap_or_else(auto_target);
    STDERR_ASKED_FOR.store(
        opts.log_target == Some(LogTarget::Stderr),
        std::sync::atomic::Ordering::Relaxed,
    );
    TO_STDERR.store(
        target == LogTarget::Stderr,
        std::sync::atomic::Ordering::Relaxed,
    );
    JSON.store(opts.json_log, std::sync::atomic::Ordering::Relaxed);
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("floaty", level)
        .with_target("floaty_providers", level)
        .with_default(Level::WARN);

    let result = match target {
        LogTarget::Journald => match tracing_journald::layer() {
            Ok(layer) => tracing_subscriber::registry()
                .with(
                    layer
                        .with_syslog_identifier("floaty".into())
                        .with_filter(filter),
                )
                .try_init()
                .map_err(|e| e.to_string()),
            Err(_) => init_fmt(opts, filter, SyslogOrStderr::syslog()),
        },
        LogTarget::Syslog => init_fmt(opts, filter, SyslogOrStderr::syslog()),
        LogTarget::Stderr => init_fmt(opts, filter, SyslogOrStderr::Stderr),
    };
    if let Err(e) = result {
        eprintln!("floaty: logging not set up: {e}");
    }
}

fn init_fmt(
    opts: &Options,
    filter: tracing_subscriber::filter::Targets,
    writer: SyslogOrStderr,
) -> Result<(), String> {
    let to_syslog = matches!(writer, SyslogOrStderr::Syslog(_));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(false)
        .with_ansi(false);
    // syslog stamps its own time; a second one only adds noise.
    if opts.json_log {
        tracing_subscriber::registry()
            .with(fmt.json().flatten_event(true).with_filter(filter))
            .try_init()
    } else if to_syslog {
        tracing_subscriber::registry()
            .with(fmt.without_time().with_level(false).with_filter(filter))
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(fmt.with_filter(filter))
            .try_init()
    }
    .map_err(|e| e.to_string())
}

/// stderr unless it is /dev/null (keepalived's setup), then journal or syslog.
fn auto_target() -> LogTarget {
    if !stderr_is_devnull() {
        LogTarget::Stderr
    } else if Path::new(JOURNAL_SOCKET).exists() {
        LogTarget::Journald
    } else {
        LogTarget::Syslog
    }
}

fn stderr_is_devnull() -> bool {
    let Ok(err) = rustix::fs::fstat(io::stderr().as_fd()) else {
        // A closed stderr is as good as /dev/null.
        return true;
    };
    match rustix::fs::stat("/dev/null") {
        Ok(null) => {
            err.st_dev == null.st_dev && err.st_ino == null.st_ino && err.st_rdev == null.st_rdev
        }
        Err(_) => false,
    }
}

/// A writer for the fmt layer: stderr, or one syslog datagram per event.
#[derive(Debug)]
enum SyslogOrStderr {
    Stderr,
    Syslog(Option<UnixDatagram>),
}

impl SyslogOrStderr {
    fn syslog() -> Self {
        SyslogOrStderr::Syslog(Self::syslog_socket())
    }

    fn syslog_socket() -> Option<UnixDatagram> {
        // Overridable so the wrapper scripts' tests can listen in.
        let path = std::env::var_os(SYSLOG_SOCKET_ENV);
        let path = path.as_deref().map_or(Path::new(SYSLOG_SOCKET), Path::new);
        UnixDatagram::unbound()
            .ok()
            .filter(|s| s.connect(path).is_ok())
    }
}

/// One formatted event, sent as a single datagram with its syslog priority.
pub struct SyslogLine<'a> {
    sock: Option<&'a UnixDatagram>,
    severity: u8,
    buf: Vec<u8>,
}

impl Write for SyslogLine<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine<'_> {
    fn drop(&mut self) {
        let msg = String::from_utf8_lossy(&self.buf);
        let msg = msg.trim_end();
        if msg.is_empty() {
            return;
        }
        // facility daemon (3), RFC 3164 framing that every syslog daemon takes.
        let line = format!(
            "<{}>floaty[{}]: {}",
            3 * 8 + self.severity,
            std::process::id(),
            msg
        );
        let sent = self.sock.is_some_and(|s| s.send(line.as_bytes()).is_ok());
        if !sent {
            let _ = writeln!(io::stderr(), "{msg}");
        }
    }
}

pub enum LineWriter<'a> {
    Stderr(io::Stderr),
    Syslog(SyslogLine<'a>),
}

impl Write for LineWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            LineWriter::Stderr(e) => e.write(data),
            LineWriter::Syslog(s) => s.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            LineWriter::Stderr(e) => e.flush(),
            LineWriter::Syslog(s) => s.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for SyslogOrStderr {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        self.writer_with(6)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        let severity = match *meta.level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            _ => 7,
        };
        self.writer_with(severity)
    }
}

impl SyslogOrStderr {
    fn writer_with(&self, severity: u8) -> LineWriter<'_> {
        match self {
            SyslogOrStderr::Stderr => match STDERR_REPLACED.get() {
                Some(sock) => LineWriter::Syslog(SyslogLine {
                    sock: sock.as_ref(),
                    severity,
                    buf: Vec::with_capacity(256),
                }),
                None => LineWriter::Stderr(io::stderr()),
            },
            SyslogOrStderr::Syslog(sock) => LineWriter::Syslog(SyslogLine {
                sock: sock.as_ref(),
                severity,
                buf: Vec::with_capacity(256),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_json_error_line_is_one_object_like_the_log_lines() {
        let line = super::json_error_line("no vrrp_instance `a\\nb` \"quoted\"");
        assert!(!line.contains('\n'), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["message"], "no vrrp_instance `a\\nb` \"quoted\"");
        assert!(
            v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
    }
}
