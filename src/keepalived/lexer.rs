//! Byte-level helpers that copy keepalived's C string handling.
//!
//! keepalived works on raw bytes with `strspn`/`strtol` & co.; the few quirks
//! that matter (what counts as blank, how numbers with trailing junk are
//! read) decide which lines and addresses survive, so they are reproduced
//! here instead of using Rust's stricter parsers.

/// keepalived's `WHITE_SPACE`: the word separators of `alloc_strvec`.
pub(crate) fn is_white(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// C `isblank`: only space and tab.
pub(crate) fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Length of the leading run of space/tab (`strspn(p, " \t")`).
pub(crate) fn blank_span(s: &[u8]) -> usize {
    s.iter().take_while(|b| is_blank(**b)).count()
}

pub(crate) fn trim_trailing_blanks(buf: &mut Vec<u8>) {
    while buf.last().is_some_and(|b| is_blank(*b)) {
        buf.pop();
    }
}

/// keepalived's `decomment()`: strips leading blanks, comments (`#`/`!`
/// outside double quotes, even mid-word), the backslash of `\#`/`\!`, and
/// trailing blanks; a trailing `\` (continuation of a `$NAME=` definition)
/// is kept right after the last non-blank byte.
pub(crate) fn decomment(buf: &mut Vec<u8>) {
    let lead = blank_span(buf);
    buf.drain(..lead);
    let mut quote = false;
    let mut cont = false;
    let mut skip: Option<usize> = None;
    let mut i = 0;
    while i < buf.len() {
        match buf[i] {
            b'"' => {
                if skip.is_none() {
                    quote = !quote;
                }
                i += 1;
            }
            b'\\' => {
                if i + 1 < buf.len() {
                    if !quote && (buf[i + 1] == b'#' || buf[i + 1] == b'!') {
                        buf.remove(i);
                        i += 1;
                    } else {
                        i += 2;
                    }
                } else {
                    buf.truncate(i);
                    cont = true;
                    break;
                }
            }
            b'!' | b'#' => {
                if !quote && skip.is_none() {
                    skip = Some(i);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    if let Some(s) = skip {
        buf.truncate(s);
    }
    trim_trailing_blanks(buf);
    if cont {
        buf.push(b'\\');
    }
}

/// keepalived's `alloc_strvec`: words split on white space; a word starting
/// with `"` runs to the next `"` (quotes removed, no escapes); an unquoted
/// word also ends at a `"`. Single quotes are ordinary characters, which is
/// why `'VI.a'` keeps its quotes. An unmatched quote ends the line's words.
pub(crate) fn tokenize(line: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_white(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        if line[i] == b'"' {
            let start = i + 1;
            match line[start..].iter().position(|b| *b == b'"') {
                Some(n) => {
                    out.push(line[start..start + n].to_vec());
                    i = start + n + 1;
                }
                None => break,
            }
        } else {
            let start = i;
            while i < line.len() && !is_white(line[i]) && line[i] != b'"' {
                i += 1;
            }
            out.push(line[start..i].to_vec());
        }
    }
    out
}

/// C `strtol(s, &end, base)` for base 0 or 10: returns the value and how
/// many bytes were consumed (0 when no digits were found, like C leaving
/// `end == s`). Overflow saturates as C does.
pub(crate) fn strtol(s: &[u8], base0: bool) -> (i64, usize) {
    let mut i = 0;
    while i < s.len() && (is_white(s[i])) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let mut radix = 10u32;
    if base0 && i < s.len() && s[i] == b'0' {
        if s.get(i + 1).is_some_and(|c| *c == b'x' || *c == b'X')
            && s.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
        {
            radix = 16;
            i += 2;
        } else {
            radix = 8;
        }
    }
    let digits_start = i;
    let mut val: i128 = 0;
    let mut overflow = false;
    while i < s.len() {
        let d = match (s[i] as char).to_digit(radix) {
            Some(d) => d,
            None => break,
        };
        val = val * radix as i128 + d as i128;
        if val > i64::MAX as i128 + 1 {
            overflow = true;
            val = i64::MAX as i128 + 1;
        }
        i += 1;
    }
    if i == digits_start && radix != 8 {
        return (0, 0);
    }
    let v = if neg { -val } else { val };
    let v = if overflow || v > i64::MAX as i128 {
        if neg {
            i64::MIN
        } else {
            i64::MAX
        }
    } else if v < i64::MIN as i128 {
        i64::MIN
    } else {
        v as i64
    };
    (v, i)
}

/// keepalived's `read_unsigned(..., ignore_error = true)` as used for a
/// VIP's prefix length: junk after the digits is only warned about, so
/// `/24x` is 24 and `/abc` or `/` is 0; out of range gives `None` (keepalived
/// then keeps the full-length prefix).
pub(crate) fn lenient_unsigned(s: &[u8], max: u32) -> Option<u32> {
    // strtoul: optional sign, decimal digits; a leading '-' is refused
    // unless the wrapped value is still in range (only "-0" is).
    let mut i = 0;
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut val: u128 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        val = (val * 10 + (s[i] - b'0') as u128).min(u64::MAX as u128 + 1);
        i += 1;
    }
    if i == start {
        // No digits: strtoul returns 0 and keepalived accepts the 0.
        return Some(0);
    }
    if val > u64::MAX as u128 {
        return None;
    }
    if neg {
        return if val == 0 { Some(0) } else { None };
    }
    if val <= max as u128 {
        Some(val as u32)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dc(s: &str) -> String {
        let mut v = s.as_bytes().to_vec();
        decomment(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn comments_start_anywhere_outside_quotes() {
        assert_eq!(dc("  state MASTER # x"), "state MASTER");
        assert_eq!(dc("interface eth0!x"), "interface eth0");
        assert_eq!(dc("notify \"/bin/a # b\" # c"), "notify \"/bin/a # b\"");
        assert_eq!(dc("a\\#b"), "a#b");
        assert_eq!(dc("$X=a \\"), "$X=a\\");
        assert_eq!(dc("#"), "");
    }

    #[test]
    fn tokens_follow_alloc_strvec() {
        let t = tokenize(b"vrrp_instance \"VI 1\" 'x.y' a\"b\"");
        let t: Vec<String> = t
            .into_iter()
            .map(|w| String::from_utf8(w).unwrap())
            .collect();
        assert_eq!(t, vec!["vrrp_instance", "VI 1", "'x.y'", "a", "b"]);
        assert_eq!(tokenize(b"a \"unterminated").len(), 1);
    }

    #[test]
    fn strtol_like_c() {
        assert_eq!(strtol(b" 12,", true), (12, 3));
        assert_eq!(strtol(b"0x1f)", true), (31, 4));
        assert_eq!(strtol(b"010", true), (8, 3));
        assert_eq!(strtol(b"-3", true), (-3, 2));
        assert_eq!(strtol(b"x", true), (0, 0));
        assert_eq!(strtol(b"99999999999999999999999", true).0, i64::MAX);
    }

    #[test]
    fn prefix_is_read_leniently() {
        assert_eq!(lenient_unsigned(b"24", 32), Some(24));
        assert_eq!(lenient_unsigned(b"24x", 32), Some(24));
        assert_eq!(lenient_unsigned(b"", 32), Some(0));
        assert_eq!(lenient_unsigned(b"33", 32), None);
        assert_eq!(lenient_unsigned(b"-1", 32), None);
        assert_eq!(lenient_unsigned(b"+4", 32), Some(4));
    }
}
