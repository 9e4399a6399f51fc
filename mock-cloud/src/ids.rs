//! Request ids for the mocks' answers (Hetzner's `X-Correlation-Id`,
//! DigitalOcean's `x-request-id`): unique within a process and not
//! guessable from the previous one, so a client that logs them shows
//! distinct values; never secret, so a counter through a mixer does
//! instead of an RNG crate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

fn next() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id())
    });
    mix(seed.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed)))
}

/// splitmix64's finaliser: a bijection, so distinct counters give
/// distinct ids.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 16 lower-case hex digits.
pub(crate) fn hex() -> String {
    format!("{:016x}", next())
}

/// An EC2-style resource id, `prefix-` and 17 lower-case hex digits
/// (`eipassoc-0a1b2c3d4e5f60718`), the length ids have had since 2016.
pub(crate) fn aws(prefix: &str) -> String {
    format!("{prefix}-{:x}{}", next() & 0xf, hex())
}

/// A version-4-shaped UUID.
pub(crate) fn uuid() -> String {
    let (a, b) = (next(), next());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_and_well_formed() {
        let (a, b) = (hex(), hex());
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        let u = uuid();
        let parts: Vec<usize> = u.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{u}");
        assert_eq!(u.as_bytes()[14], b'4', "{u}");
        assert!(matches!(u.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{u}");
        let id = aws("eipassoc");
        let digits = id.strip_prefix("eipassoc-").unwrap_or_default();
        assert_eq!(digits.len(), 17, "{id}");
        assert!(digits.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert_ne!(id, aws("eipassoc"));
    }
}
