//! keepalived's notify FIFO: telling events from everything else keepalived
//! writes there (`text::LineSplitter` cuts the stream into lines).
//!
//! Pure code, no I/O: the daemon feeds it whatever `read` returned. The FIFO
//! is written by keepalived (root) but it is still input: a line that does
//! not parse is reported and skipped, a line longer than [`crate::text::MAX_LINE`] is
//! dropped while it streams past (never buffered whole), and nothing here can
//! panic on any byte sequence.

use std::path::PathBuf;

use crate::event::{Event, EventError, LowerPriority, RX_LOWER_PRI};
use crate::text::clip;

/// A `--fifo` path that cannot be keepalived's FIFO.
#[derive(Debug, thiserror::Error)]
pub enum FifoError {
    #[error("{}: not a FIFO; give the path of keepalived's vrrp_notify_fifo (keepalived creates it)", .0.display())]
    NotAFifo(PathBuf),
}

/// What one complete line meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `INSTANCE "NAME" STATE PRIO` or `GROUP "NAME" STATE PRIO`.
    Event(Event),
    /// `INSTANCE "NAME" MASTER_RX_LOWER_PRI PRIO`: the MASTER heard a
    /// lower-priority one (about every advert interval while it does).
    LowerPriority(LowerPriority),
    /// A line keepalived writes that reports no VRRP state: priority
    /// changes, LVS lines. Logged at debug.
    Ignored(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("empty line")]
    Empty,
    #[error("not UTF-8")]
    NotText,
    #[error("unknown line type `{0}`")]
    UnknownType(String),
    #[error("expected TYPE \"NAME\" STATE PRIORITY")]
    Shape,
    #[error(transparent)]
    Event(#[from] EventError),
}

/// Parse one line (without its newline).
pub fn parse_line(bytes: &[u8]) -> Result<Line, LineError> {
    let text = std::str::from_utf8(bytes).map_err(|_| LineError::NotText)?;
    let text = text.trim_end_matches('\r').trim();
    let Some(first) = text.split_whitespace().next() else {
        return Err(LineError::Empty);
    };
    match first {
        "INSTANCE" | "GROUP" => parse_event(first, &text[first.len()..]),
        // Not keepalived's shape (it writes `INSTANCE "NAME" WORD PRIO` for
        // these too), but once expected here: harmless.
        RX_LOWER_PRI => Ok(Line::Ignored("a lower-priority advert was received")),
        "VS" | "RS" => Ok(Line::Ignored("an LVS line")),
        w if w.ends_with("_PRIORITY") => Ok(Line::Ignored("a priority change")),
        w => Err(LineError::UnknownType(clip(w, 40))),
    }
}

/// `"NAME" STATE PRIO`: the name is what lies between the first and the
/// last `"` (a name never holds `"`, but may hold spaces, `'` and `#`).
/// Lines without quotes (never seen from keepalived, but cheap to accept)
/// must then be exactly `NAME STATE PRIO`. keepalived writes its
/// non-state words in STATE's place (one `printf` for every line,
/// `vrrp_notify.c`): `MASTER_RX_LOWER_PRI`, and `MASTER_PRIORITY` /
/// `BACKUP_PRIORITY` with `vrrp_notify_priority_changes`.
fn parse_event(kind: &str, rest: &str) -> Result<Line, LineError> {
    let (name, tail) = match (rest.find('"'), rest.rfind('"')) {
        (Some(open), Some(close)) if close > open => {
            if !rest[..open].trim().is_empty() {
                return Err(LineError::Shape);
            }
            (&rest[open + 1..close], &rest[close + 1..])
        }
        (Some(_), _) => return Err(LineError::Shape),
        (None, _) => {
            let rest = rest.trim_start();
            match rest.split_once(char::is_whitespace) {
                Some((name, tail)) => (name, tail),
                None => return Err(LineError::Shape),
            }
        }
    };
    let words: Vec<&str> = tail.split_whitespace().collect();
    let (state, priority) = match words.as_slice() {
        [state] => (*state, None),
        [state, prio] => (*state, Some(*prio)),
        _ => return Err(LineError::Shape),
    };
    match state {
        // keepalived sends it for instances only; a group's would be
        // someone else's line, and reports no state either.
        RX_LOWER_PRI if kind == "GROUP" => Ok(Line::Ignored("a group's lower-priority line")),
        RX_LOWER_PRI => Ok(Line::LowerPriority(LowerPriority::from_args(
            kind, name, priority,
        )?)),
        w if w.ends_with("_PRIORITY") => Ok(Line::Ignored("a priority change")),
        _ => Ok(Line::Event(Event::from_args(kind, name, state, priority)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Kind, State};
    use crate::text::{LineSplitter, Piece, MAX_LINE};

    fn event(line: &str) -> Event {
        match parse_line(line.as_bytes()) {
            Ok(Line::Event(e)) => e,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn every_event_shape_keepalived_writes() {
        let e = event("INSTANCE \"VI_1\" MASTER 150");
        assert_eq!(
            (e.kind, e.name.as_str(), e.state, e.priority),
            (Kind::Instance, "VI_1", State::Master, Some(150))
        );
        let e = event("GROUP \"G1\" STOP 0");
        assert_eq!(
            (e.kind, e.state, e.priority),
            (Kind::Group, State::Stop, Some(0))
        );
        assert_eq!(event("INSTANCE \"'VI.a'\" MASTER 120").name, "'VI.a'");
        assert_eq!(
            event("INSTANCE \"my inst #1\" BACKUP 100").name,
            "my inst #1"
        );
        assert_eq!(event("INSTANCE \"VI_1\" FAULT 100\r").state, State::Fault);
        assert_eq!(event("INSTANCE \"VI_1\" DELETED 100").state, State::Deleted);
        assert_eq!(event("INSTANCE \"VI_1\" BACKUP").priority, None);
        assert_eq!(event("INSTANCE VI_1 BACKUP 100").name, "VI_1");
    }

    /// keepalived 2.2.7 writes every line with one format, `%s "%s" %s %d`
    /// (`vrrp_notify.c`, `notify_fifo`), lower-priority adverts included;
    /// the lines below are the shapes seen on its FIFO (docs: §3.1).
    #[test]
    fn a_lower_priority_advert_is_its_own_line() {
        for (line, name, priority) in [
            (
                "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 150",
                "VI_1",
                Some(150),
            ),
            (
                "INSTANCE \"'VI.a'\" MASTER_RX_LOWER_PRI 120\r",
                "'VI.a'",
                Some(120),
            ),
            ("INSTANCE VI_1 MASTER_RX_LOWER_PRI", "VI_1", None),
        ] {
            match parse_line(line.as_bytes()) {
                Ok(Line::LowerPriority(lp)) => {
                    assert_eq!((lp.name.as_str(), lp.priority), (name, priority), "{line}")
                }
                other => panic!("{line:?}: {other:?}"),
            }
        }
        for line in [
            "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI -1",
            "INSTANCE \"\" MASTER_RX_LOWER_PRI 150",
            "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 150 extra",
        ] {
            assert!(parse_line(line.as_bytes()).is_err(), "{line:?}");
        }
    }

    #[test]
    fn lines_without_state_are_ignored() {
        for line in [
            // What keepalived writes with vrrp_notify_priority_changes.
            "INSTANCE \"VI_1\" MASTER_PRIORITY 100",
            "INSTANCE \"VI_1\" BACKUP_PRIORITY 90",
            "GROUP \"G1\" MASTER_RX_LOWER_PRI 0",
            // The shapes once expected here, never written by keepalived.
            "MASTER_RX_LOWER_PRI \"VI_1\" 150",
            "MASTER_PRIORITY \"VI_1\" 100",
            "BACKUP_PRIORITY \"VI_1\" 90",
            "VS 10.0.0.1:80 UP",
            "VS FWM 5 DOWN",
            "RS 10.0.0.2:80 10.0.0.1:80 UP",
        ] {
            assert!(
                matches!(parse_line(line.as_bytes()), Ok(Line::Ignored(_))),
                "{line}"
            );
        }
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        for line in [
            "",
            "   ",
            "INSTANCE",
            "INSTANCE \"VI_1\"",
            "INSTANCE \"VI_1 MASTER 100",
            "INSTANCE x \"VI_1\" MASTER 100",
            "INSTANCE \"VI_1\" PRIMARY 100",
            "INSTANCE \"VI_1\" MASTER 100 extra",
            "INSTANCE \"VI_1\" MASTER -1",
            "INSTANCE \"\" MASTER 100",
            "instance \"VI_1\" MASTER 100",
            "HELLO world",
            "\"",
        ] {
            assert!(parse_line(line.as_bytes()).is_err(), "{line:?}");
        }
        assert_eq!(parse_line(b"\xff\xfe"), Err(LineError::NotText));
        let long = "X".repeat(1000);
        let LineError::UnknownType(w) = parse_line(long.as_bytes()).unwrap_err() else {
            panic!()
        };
        assert!(w.len() < 50, "log messages stay short");
    }

    #[test]
    fn random_bytes_never_panic_and_stay_bounded() {
        let mut rng = fastrand::Rng::with_seed(4);
        let alphabet = b"INSTANCEGROUPMASTERBACKUPFAULTSTOP\"' \n\r\t0123456789_\xff\x00";
        for round in 0..2000 {
            let mut s = LineSplitter::new();
            let len = rng.usize(0..if round % 100 == 0 { 20_000 } else { 300 });
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.bool() {
                        alphabet[rng.usize(0..alphabet.len())]
                    } else {
                        rng.u8(..)
                    }
                })
                .collect();
            // Random chunking: half lines across reads.
            let mut rest = data.as_slice();
            while !rest.is_empty() {
                let n = rng.usize(1..=rest.len());
                for piece in s.push(&rest[..n]) {
                    if let Piece::Line(l) = piece {
                        assert!(l.len() <= MAX_LINE);
                        let _ = parse_line(&l);
                    }
                }
                assert!(s.pending() <= MAX_LINE);
                rest = &rest[n..];
            }
        }
    }

    #[test]
    fn mutated_real_lines_never_panic() {
        let mut rng = fastrand::Rng::with_seed(7);
        let base = b"INSTANCE \"'VI.a'\" MASTER 120".to_vec();
        for _ in 0..5000 {
            let mut l = base.clone();
            for _ in 0..rng.usize(1..4) {
                match rng.u8(0..3) {
                    0 if !l.is_empty() => {
                        let i = rng.usize(0..l.len());
                        l.remove(i);
                    }
                    1 => {
                        let i = rng.usize(0..=l.len());
                        l.insert(i, rng.u8(..));
                    }
                    _ if !l.is_empty() => {
                        let i = rng.usize(0..l.len());
                        l[i] = b"\" '"[rng.usize(0..3)];
                    }
                    _ => {}
                }
            }
            let _ = parse_line(&l);
        }
    }
}
