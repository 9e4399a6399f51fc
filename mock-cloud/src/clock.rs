//! Wall-clock text for API bodies and headers, without a date crate: the
//! mocks need only "now" as RFC 3339 (`started`, `completed_at`), as
//! UNIX seconds (`RateLimit-Reset`) and SigV4's `X-Amz-Date` both ways,
//! and a few lines of civil-date arithmetic are cheaper than a dependency
//! in every test binary.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch; 0 for a clock set before 1970 (a broken test
/// machine should not panic a mock).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The UNIX second at which `deadline` (a monotonic instant) falls,
/// rounded up: a client that waits until then must find it passed.
pub(crate) fn unix_secs_at(deadline: Instant, now: Instant) -> u64 {
    let ahead = deadline.saturating_duration_since(now);
    let wall = SystemTime::now() + ahead;
    let d = wall.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `2016-01-30T23:55:00+00:00`, the form Hetzner's examples use.
pub(crate) fn rfc3339_offset(t: SystemTime) -> String {
    format!("{}+00:00", civil(unix_secs(t)))
}

/// `2015-11-12T17:51:03Z`, the form DigitalOcean's examples use.
pub(crate) fn rfc3339_z(t: SystemTime) -> String {
    format!("{}Z", civil(unix_secs(t)))
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC.
fn civil(secs: u64) -> String {
    let (year, month, day, h, m, s) = parts(i64::try_from(secs).unwrap_or(i64::MAX));
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}")
}

/// Year, month, day, hour, minute, second of a UNIX time, which may be
/// before 1970 (Howard Hinnant's days-to-civil).
fn parts(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 of a civil date (the inverse of [`parts`]).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A UNIX time on a clock that may be set off the real one (the AWS mock's,
/// see `Ec2::set_clock_offset`): whole seconds, negative before 1970.
pub(crate) fn unix_secs_offset(t: SystemTime, offset: i64) -> i64 {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    secs.saturating_add(offset)
}

/// `20150830T123600Z`: SigV4's `X-Amz-Date` (ISO 8601 basic format);
/// the mock only reads them, so this serves the tests.
#[cfg(test)]
fn amz_date(secs: i64) -> String {
    let (year, month, day, h, m, s) = parts(secs);
    format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}Z")
}

/// The UNIX time an `X-Amz-Date` names; None for anything not exactly in
/// that form (AWS refuses the extended `2015-08-30T12:36:00Z` there too).
pub(crate) fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (h, m, s) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || h > 23 || m > 59 || s > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// An HTTP `Date` (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn http_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day, h, m, s) = parts(secs);
    let weekday = DAYS[secs.div_euclid(86_400).rem_euclid(7) as usize];
    let month = MONTHS[(month - 1).clamp(0, 11) as usize];
    format!("{weekday}, {day:02} {month} {year:04} {h:02}:{m:02}:{s:02} GMT")
}

/// `2026-12-02T13:00:00Z` for a UNIX time that may be before 1970: the
/// form of the IMDS credentials' `Expiration` and `LastUpdated`.
pub(crate) fn iso8601_z(secs: i64) -> String {
    let (year, month, day, h, m, s) = parts(secs);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn formats_the_published_example_times() {
        // Hetzner's action example and DigitalOcean's.
        assert_eq!(
            rfc3339_offset(at(1_454_198_100)),
            "2016-01-30T23:55:00+00:00"
        );
        assert_eq!(rfc3339_z(at(1_447_350_663)), "2015-11-12T17:51:03Z");
        assert_eq!(rfc3339_z(at(0)), "1970-01-01T00:00:00Z");
        // A leap day and the turn of a century.
        assert_eq!(rfc3339_z(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_z(at(4_107_542_399)), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn amz_dates_both_ways() {
        // The SigV4 suite's time and the doc's worked EC2 examples' time.
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        let worked = parse_amz_date("20261201T120000Z").expect("parses");
        assert_eq!(iso8601_z(worked), "2026-12-01T12:00:00Z");
        assert_eq!(amz_date(worked), "20261201T120000Z");
        assert_eq!(iso8601_z(-1), "1969-12-31T23:59:59Z");
        assert_eq!(parse_amz_date("20000229T000000Z"), Some(951_782_400));
        for secs in [0, 951_782_400, 4_107_542_399, 1_796_212_800] {
            assert_eq!(parse_amz_date(&amz_date(secs)), Some(secs), "{secs}");
        }
        for bad in [
            "",
            "2015-08-30T12:36:00Z",
            "20150830T123600",
            "20150830T123600z",
            "20150830 123600Z",
            "20150230T123600Z",
            "20190229T000000Z",
            "20151330T123600Z",
            "20150830T243600Z",
            "2015083+T123600Z",
            "２0150830T12360Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn offset_clock() {
        let t = at(100);
        assert_eq!(unix_secs_offset(t, 0), 100);
        assert_eq!(unix_secs_offset(t, -300), -200);
        assert_eq!(unix_secs_offset(t, 3600), 3700);
    }

    #[test]
    fn deadlines_round_up() {
        let now = Instant::now();
        let base = unix_secs(SystemTime::now());
        let later = unix_secs_at(now + Duration::from_millis(1500), now);
        assert!((base + 2..=base + 3).contains(&later), "{base} {later}");
        assert!(unix_secs_at(now, now + Duration::from_secs(9)) <= base + 1);
    }
}
