//! Durations written the way Go's `time.ParseDuration` reads them.
//!
//! vshn/floaty decoded its intervals with Go's `time.Duration`, so existing
//! config files say `10s`, `1m30s` or `1.5h`. We accept exactly that syntax
//! (same units, same fractions, same overflow limit of `i64::MAX`
//! nanoseconds) so those files keep working, and print durations the way Go
//! does so log lines look familiar to people coming from the Go tool.
//!
//! Two deliberate differences from Go: negative durations are rejected (no
//! interval or timeout in floaty can be negative), and a bare number such as
//! `10` is rejected with a hint. Go's YAML decoder would take `10` as ten
//! *nanoseconds*, which is never what the author meant.

use std::fmt;
use std::time::Duration;

/// Go's `time.Duration` is an `int64` of nanoseconds; anything longer does
/// not exist there, so we refuse it too rather than accept a file Go rejects.
const MAX_NANOS: u64 = i64::MAX as u64;

/// What the user needs to hear to fix the value; every variant carries the
/// input so the message stands on its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration: write e.g. 10s, 1m30s or 500ms")]
    Empty,
    #[error("`{0}` has no unit: write {0}s")]
    BareNumber(String),
    #[error("`{input}`: missing unit after `{number}` (units: ns, us, ms, s, m, h)")]
    MissingUnit { input: String, number: String },
    #[error("`{input}`: unknown unit `{unit}` (units: ns, us, ms, s, m, h{hint})")]
    UnknownUnit {
        input: String,
        unit: String,
        hint: &'static str,
    },
    #[error("`{0}` is not a duration (write e.g. 10s, 1m30s, 1.5h or 500ms)")]
    Invalid(String),
    #[error("`{0}` is too long (at most 2562047h47m16.854775807s)")]
    Overflow(String),
    #[error("`{0}` is negative; a negative interval makes no sense")]
    Negative(String),
}

/// Parses Go duration syntax: `[-+]?([0-9]*(\.[0-9]*)?[a-zµμ]+)+`, or `0`.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    // Errors quote the input with control characters escaped: a YAML block
    // scalar can hold a newline, and the message must stay one log line
    // (found by the config_yaml fuzz target).
    let orig = &crate::text::shown(s);
    let mut rest = s;
    let mut negative = false;
    if let Some(r) = rest.strip_prefix('-') {
        negative = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(if orig.is_empty() {
            DurationError::Empty
        } else {
            DurationError::Invalid(orig.to_string())
        });
    }
    if is_bare_number(rest) {
        return Err(DurationError::BareNumber(orig.to_string()));
    }

    let invalid = || DurationError::Invalid(orig.to_string());
    let overflow = || DurationError::Overflow(orig.to_string());
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let b = rest.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let number_start = rest;

        // Integer part; Go allows at most 1<<63 here before the unit scales it.
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut whole: u64 = 0;
        for c in rest[..digits].bytes() {
            whole = whole
                .checked_mul(10)
                .and_then(|x| x.checked_add(u64::from(c - b'0')))
                .filter(|&x| x <= 1 << 63)
                .ok_or_else(overflow)?;
        }
        rest = &rest[digits..];
        let had_whole = digits > 0;

        // Fraction: like Go, keep the digits that fit and ignore the rest
        // (they are below nanosecond precision anyway).
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut had_frac = false;
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            had_frac = n > 0;
            let mut saturated = false;
            for c in rest[..n].bytes() {
                if saturated {
                    continue;
                }
                match frac
                    .checked_mul(10)
                    .and_then(|x| x.checked_add(u64::from(c - b'0')))
                    .filter(|&x| x <= 1 << 63)
                {
                    Some(x) => {
                        frac = x;
                        scale *= 10.0;
                    }
                    None => saturated = true,
                }
            }
            rest = &rest[n..];
        }
        if !had_whole && !had_frac {
            return Err(invalid());
        }

        // Unit: everything up to the next number.
        let unit_len = rest
            .char_indices()
            .find(|&(_, c)| c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        if unit_len == 0 {
            let number = &number_start[..number_start.len() - rest.len()];
            return Err(DurationError::MissingUnit {
                input: orig.to_string(),
                number: number.to_string(),
            });
        }
        let unit_str = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit = unit_nanos(unit_str).ok_or_else(|| DurationError::UnknownUnit {
            input: orig.to_string(),
            unit: crate::text::shown(unit_str),
            hint: if unit_str.chars().any(char::is_whitespace) {
                "; no spaces allowed"
            } else {
                ""
            },
        })?;

        if whole > (1 << 63) / unit {
            return Err(overflow());
        }
        let mut v = whole * unit;
        if frac > 0 {
            // f64 as in Go: exact enough to the nanosecond even for hours.
            v = v
                .checked_add((frac as f64 * (unit as f64 / scale)) as u64)
                .filter(|&x| x <= 1 << 63)
                .ok_or_else(overflow)?;
        }
        total = total
            .checked_add(v)
            .filter(|&x| x <= 1 << 63)
            .ok_or_else(overflow)?;
    }
    if negative && total > 0 {
        return Err(DurationError::Negative(orig.to_string()));
    }
    if total > MAX_NANOS {
        return Err(overflow());
    }
    Ok(Duration::from_nanos(total))
}

/// `10`, `1.5`, `.5`: a number the author forgot to give a unit.
fn is_bare_number(s: &str) -> bool {
    let mut seen_digit = false;
    let mut seen_dot = false;
    for c in s.bytes() {
        match c {
            b'0'..=b'9' => seen_digit = true,
            b'.' if !seen_dot => seen_dot = true,
            _ => return false,
        }
    }
    seen_digit
}

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU, as in Go.
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Formats like Go's `Duration.String`: `1h5m50s`, `1m30.5s`, `500ms`,
/// `1.5µs`, `0s`. Durations beyond Go's range still print (in hours).
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        let (unit, prec) = if nanos < 1_000 {
            ("ns", 0)
        } else if nanos < 1_000_000 {
            ("\u{b5}s", 3)
        } else {
            ("ms", 6)
        };
        return format!("{}{unit}", with_fraction(nanos, prec));
    }
    let secs = nanos / 1_000_000_000;
    let sub = nanos % 1_000_000_000;
    let mut out = String::new();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&with_fraction(s * 1_000_000_000 + sub, 9));
    out.push('s');
    out
}

/// `v / 10^prec` with the fraction's trailing zeros (and a bare `.`) dropped.
fn with_fraction(v: u128, prec: u32) -> String {
    let div = 10u128.pow(prec);
    let (int, frac) = (v / div, v % div);
    if frac == 0 {
        return int.to_string();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

/// For `#[serde(deserialize_with = "crate::duration::deserialize")]` and for
/// newtypes that check more (e.g. "greater than zero") on top.
pub fn deserialize<'de, D>(deserializer: D) -> Result<Duration, D::Error>
where
    D: serde::Deserializer<'de>,
{
    // YAML scalars (numbers included) arrive as text via deserialize_str, so
    // `10` reaches `parse` and gets the "has no unit" hint; self-describing
    // formats that hand us real numbers get the same hint below.
    deserializer.deserialize_str(Visitor)
}

struct Visitor;

impl serde::de::Visitor<'_> for Visitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration like 10s, 1m30s or 500ms")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
        Err(E::custom(DurationError::BareNumber(v.to_string())))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
        Err(E::custom(DurationError::BareNumber(v.to_string())))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Duration, E> {
        Err(E::custom(DurationError::BareNumber(v.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: u64 = 1;
    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    const M: u64 = 60 * S;
    const H: u64 = 60 * M;

    fn ok(s: &str) -> u64 {
        match parse(s) {
            Ok(d) => u64::try_from(d.as_nanos()).unwrap(),
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    /// Go's `parseDurationTests`, minus the negative ones (see below).
    #[test]
    fn go_table() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600 * MS),
            ("5.s", 5 * S),
            (".5s", 500 * MS),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4 * MS),
            ("1.0040s", S + 4 * MS),
            ("100.00100s", 100 * S + MS),
            ("10ns", 10 * NS),
            ("11us", 11 * US),
            ("12µs", 12 * US),
            ("12μs", 12 * US),
            ("13ms", 13 * MS),
            ("14s", 14 * S),
            ("15m", 15 * M),
            ("16h", 16 * H),
            ("3h30m", 3 * H + 30 * M),
            ("10.5s4m", 4 * M + 10 * S + 500 * MS),
            (
                "1h2m3s4ms5us6ns",
                H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
            ),
            ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
            ("52763797000ns", 52763797000 * NS),
            ("0.3333333333333333333h", 20 * M),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX as u64),
            ("9223372036854775.807us", i64::MAX as u64),
            ("9223372036s854ms775us807ns", i64::MAX as u64),
            ("0.100000000000000000000h", 6 * M),
            ("0.830103483285477580700h", 49 * M + 48 * S + 372539827 * NS),
        ];
        for &(s, want) in cases {
            assert_eq!(ok(s), want, "{s}");
        }
    }

    /// Go's error table: all must fail, none may panic.
    #[test]
    fn go_error_table() {
        for s in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "\u{85}\u{85}",
            "\u{FFFD}",
            "9223372036854775810ns",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            "-9223372036854775809ns",
            "-9223372036854775808ns",
            "1 s",
            " 1s",
            "1s ",
            "1e3s",
            "1h 30m",
            "99999999999999999999999h",
            "2562048h",
        ] {
            assert!(parse(s).is_err(), "{s:?} parsed as {:?}", parse(s));
        }
    }

    #[test]
    fn negatives_are_refused_with_a_reason() {
        let e = parse("-5s").unwrap_err();
        assert_eq!(e, DurationError::Negative("-5s".into()));
        assert!(e.to_string().contains("negative"), "{e}");
        assert_eq!(parse("-0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn messages_tell_how_to_fix() {
        assert_eq!(
            parse("10").unwrap_err().to_string(),
            "`10` has no unit: write 10s"
        );
        assert_eq!(
            parse("1.5").unwrap_err().to_string(),
            "`1.5` has no unit: write 1.5s"
        );
        assert_eq!(
            parse("1h30").unwrap_err().to_string(),
            "`1h30`: missing unit after `30` (units: ns, us, ms, s, m, h)"
        );
        assert_eq!(
            parse("10sec").unwrap_err().to_string(),
            "`10sec`: unknown unit `sec` (units: ns, us, ms, s, m, h)"
        );
        assert!(parse("1 s").unwrap_err().to_string().contains("no spaces"));
        assert!(parse("1d")
            .unwrap_err()
            .to_string()
            .contains("unknown unit `d`"));
        assert!(parse("2562048h")
            .unwrap_err()
            .to_string()
            .contains("too long"));
        assert!(parse("abc")
            .unwrap_err()
            .to_string()
            .contains("not a duration"));
        assert_eq!(parse("").unwrap_err(), DurationError::Empty);
    }

    /// Go's `durationTests` for `Duration.String`.
    #[test]
    fn go_format_table() {
        let cases: &[(&str, u64)] = &[
            ("0s", 0),
            ("1ns", NS),
            ("1.1µs", 1100 * NS),
            ("2.2ms", 2200 * US),
            ("3.3s", 3300 * MS),
            ("4m5s", 4 * M + 5 * S),
            ("4m5.001s", 4 * M + 5001 * MS),
            ("5h6m7.001s", 5 * H + 6 * M + 7001 * MS),
            ("8m0.000000001s", 8 * M + NS),
            ("2562047h47m16.854775807s", i64::MAX as u64),
            ("1m30s", 90 * S),
            ("500ms", 500 * MS),
            ("1h5m50s", H + 5 * M + 50 * S),
            ("1h0m0s", H),
            ("10s", 10 * S),
        ];
        for &(want, nanos) in cases {
            assert_eq!(format(Duration::from_nanos(nanos)), want);
        }
    }

    #[test]
    fn format_round_trips() {
        for s in [
            "1h5m50s",
            "500ms",
            "1.5µs",
            "2562047h47m16.854775807s",
            "7ns",
        ] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }

    #[test]
    fn format_beyond_go_range_does_not_panic() {
        assert_eq!(
            format(Duration::from_secs(u64::MAX)),
            "5124095576030431h0m15s"
        );
        assert_eq!(format(Duration::MAX), "5124095576030431h0m15.999999999s");
    }

    /// A YAML block or multi-line quoted scalar can hold a newline; the
    /// error quotes it escaped, so it stays one log line (the config_yaml
    /// fuzz target found `refresh-timeout: "x\n\ny"` giving two lines).
    #[test]
    fn errors_escape_control_characters() {
        for s in [
            "a\nb",
            "1x\n",
            "1s\r",
            "99999999999999999999h\n",
            "\u{2028}",
        ] {
            let e = parse(s).unwrap_err().to_string();
            assert!(!e.contains(['\n', '\r', '\u{2028}']), "{s:?}: {e}");
        }
        assert_eq!(
            parse("1s\n").unwrap_err().to_string(),
            "`1s\\n`: unknown unit `s\\n` (units: ns, us, ms, s, m, h; no spaces allowed)"
        );
        let t = serde_yaml::from_str::<T>("d: \"1x\n\n  2s\"");
        let e = t.unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
    }

    #[derive(serde::Deserialize, Debug)]
    struct T {
        #[serde(deserialize_with = "deserialize")]
        d: Duration,
    }

    #[test]
    fn serde_helper() {
        let t: T = serde_yaml::from_str("d: 1m30s").unwrap();
        assert_eq!(t.d, Duration::from_secs(90));
        let e = serde_yaml::from_str::<T>("d: 10").unwrap_err().to_string();
        assert!(e.contains("`10` has no unit: write 10s"), "{e}");
        let e = serde_yaml::from_str::<T>("d: [1]").unwrap_err().to_string();
        assert!(e.contains("a duration like 10s"), "{e}");
    }
}
