//! Wall-clock text for API bodies and headers, without a date crate: the
//! mocks need only "now" as RFC 3339 (`started`, `completed_at`) and as
//! UNIX seconds (`RateLimit-Reset`), and a few lines of civil-date
//! arithmetic are cheaper than a dependency in every test binary.

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

/// `YYYY-MM-DDTHH:MM:SS` in UTC (Howard Hinnant's days-to-civil).
fn civil(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn deadlines_round_up() {
        let now = Instant::now();
        let base = unix_secs(SystemTime::now());
        let later = unix_secs_at(now + Duration::from_millis(1500), now);
        assert!((base + 2..=base + 3).contains(&later), "{base} {later}");
        assert!(unix_secs_at(now, now + Duration::from_secs(9)) <= base + 1);
    }
}
