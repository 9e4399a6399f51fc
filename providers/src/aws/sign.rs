//! AWS Signature Version 4, as EC2's Query API needs it.
//!
//! Hand-written rather than the `aws-sigv4` crate: that crate brings the
//! AWS SDK's runtime types (smithy, http 0.2/1 shims, time) for what is
//! 100 lines over `ring`, and floaty's refresher is measured in KiB of
//! RSS. What keeps it honest is the official test suite's vectors and the
//! worked EC2 examples below, byte for byte.

use std::time::{SystemTime, UNIX_EPOCH};

use ring::{digest, hmac};

/// What one request is signed with. The secret never leaves this module
/// but as an HMAC; a session token is one of the signed headers.
pub(crate) struct Key<'a> {
    pub access_key_id: &'a str,
    pub secret: &'a str,
}

/// The parts of a request that are signed. `headers` are (name, value)
/// as sent; `host` and `x-amz-date` must be among them (and
/// `x-amz-security-token` when the key has a session token).
pub(crate) struct Parts<'a> {
    pub method: &'a str,
    /// The path as sent, already URI-encoded (EC2: `/`).
    pub path: &'a str,
    /// The canonical query string (EC2's POST form: empty).
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

pub(crate) struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, the request's `X-Amz-Date`.
    pub amz_date: &'a str,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac(key: &[u8], data: &str) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
}

/// Lower-cased names, values trimmed with inner runs of spaces collapsed,
/// sorted by name: (canonical headers, signed headers).
fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut list: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    list.sort();
    let canonical = list.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed = list
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    (canonical, signed)
}

pub(crate) fn canonical_request(parts: &Parts<'_>) -> (String, String) {
    let (headers, signed) = canonical_headers(parts.headers);
    (
        format!(
            "{}\n{}\n{}\n{headers}\n{signed}\n{}",
            parts.method,
            parts.path,
            parts.query,
            sha256_hex(parts.body)
        ),
        signed,
    )
}

fn date<'a>(scope: &Scope<'a>) -> &'a str {
    scope.amz_date.get(..8).unwrap_or(scope.amz_date)
}

pub(crate) fn string_to_sign(canonical: &str, scope: &Scope<'_>) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{}\n{}/{}/{}/aws4_request\n{}",
        scope.amz_date,
        date(scope),
        scope.region,
        scope.service,
        sha256_hex(canonical.as_bytes())
    )
}

/// The `Authorization` header's value.
pub(crate) fn authorization(key: &Key<'_>, parts: &Parts<'_>, scope: &Scope<'_>) -> String {
    let (canonical, signed) = canonical_request(parts);
    let to_sign = string_to_sign(&canonical, scope);
    let k_date = hmac(format!("AWS4{}", key.secret).as_bytes(), date(scope));
    let k_region = hmac(k_date.as_ref(), scope.region);
    let k_service = hmac(k_region.as_ref(), scope.service);
    let k_signing = hmac(k_service.as_ref(), "aws4_request");
    let signature = hex(hmac(k_signing.as_ref(), &to_sign).as_ref());
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/{}/{}/aws4_request, SignedHeaders={signed}, Signature={signature}",
        key.access_key_id,
        date(scope),
        scope.region,
        scope.service
    )
}

/// `YYYYMMDDTHHMMSSZ` in UTC, without a date crate for one format.
pub(crate) fn amz_date(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// H. Hinnant's `civil_from_days`: the proleptic Gregorian date of a day
/// count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn key(_token: Option<&str>) -> Key<'static> {
        Key {
            access_key_id: AKID,
            secret: SECRET,
        }
    }

    fn signature(auth: &str) -> &str {
        auth.rsplit("Signature=").next().unwrap_or_default()
    }

    /// The official suite (aws-c-auth `tests/aws-signing-test-suite/v4`).
    const SUITE: Scope<'static> = Scope {
        region: "us-east-1",
        service: "service",
        amz_date: "20150830T123600Z",
    };

    #[test]
    fn get_vanilla() {
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let parts = Parts {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let (canonical, _) = canonical_request(&parts);
        // The suite's string to sign ends in the canonical request's hash.
        assert_eq!(
            string_to_sign(&canonical, &SUITE),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        let auth = authorization(&key(None), &parts, &SUITE);
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn get_vanilla_with_session_token() {
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            ("X-Amz-Security-Token", token),
        ];
        let parts = Parts {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let auth = authorization(&key(Some(token)), &parts, &SUITE);
        assert!(
            auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"),
            "{auth}"
        );
        assert_eq!(
            signature(&auth),
            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        );
    }

    #[test]
    fn post_x_www_form_urlencoded_both_forms() {
        let headers = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let parts = Parts {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"Param1=value1",
        };
        assert_eq!(
            signature(&authorization(&key(None), &parts, &SUITE)),
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        );
        let hash = sha256_hex(b"Param1=value1");
        assert!(
            hash.starts_with("9095672b") && hash.ends_with("0b6e"),
            "{hash}"
        );
        let headers = [
            ("Content-Length", "13"),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Host", "example.amazonaws.com"),
            ("x-amz-content-sha256", hash.as_str()),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let parts = Parts {
            headers: &headers,
            ..parts
        };
        let auth = authorization(&key(None), &parts, &SUITE);
        assert!(
            auth.contains(
                "SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date,"
            ),
            "{auth}"
        );
        assert_eq!(
            signature(&auth),
            "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"
        );
    }

    /// The three worked EC2 examples of the shared notes.
    const EC2: Scope<'static> = Scope {
        region: "eu-central-1",
        service: "ec2",
        amz_date: "20261201T120000Z",
    };
    const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";
    const HOST: &str = "ec2.eu-central-1.amazonaws.com";

    fn ec2(body: &str, token: Option<&str>) -> (String, String) {
        let mut headers = vec![
            ("Content-Type", FORM),
            ("Host", HOST),
            ("X-Amz-Date", "20261201T120000Z"),
        ];
        if let Some(t) = token {
            headers.push(("X-Amz-Security-Token", t));
        }
        let parts = Parts {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: body.as_bytes(),
        };
        let (canonical, _) = canonical_request(&parts);
        (canonical, authorization(&key(token), &parts, &EC2))
    }

    #[test]
    fn ec2_associate_address() {
        let body = "Action=AssociateAddress&AllocationId=eipalloc-0123456789abcdef0&AllowReassociation=true&InstanceId=i-0123456789abcdef0&Version=2016-11-15";
        let (canonical, auth) = ec2(body, None);
        assert_eq!(
            canonical,
            "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\n\
             host:ec2.eu-central-1.amazonaws.com\nx-amz-date:20261201T120000Z\n\n\
             content-type;host;x-amz-date\n\
             deec7da32d520fe42b5665cf128eaa82587241dcc7899910589780b427543a79"
        );
        assert!(
            string_to_sign(&canonical, &EC2).ends_with(
                "\n20261201/eu-central-1/ec2/aws4_request\n\
                 4aca5c3c63f8d5e45d6f0bff053d401086168047b0f264c203559457dcdcd669"
            ),
            "the string to sign carries the canonical request's hash"
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/eu-central-1/ec2/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=ef92edcef1757faf2f0f8f68cb77e32f2c455a8994bffb084360f98e80a6fe9f"
        );
    }

    #[test]
    fn ec2_describe_addresses() {
        let body =
            "Action=DescribeAddresses&AllocationId.1=eipalloc-0123456789abcdef0&Version=2016-11-15";
        assert_eq!(
            sha256_hex(body.as_bytes()),
            "54c8c58d94be5d72a993a4b9d85e55c977a5863c29939a8759780899a878b256"
        );
        let (_, auth) = ec2(body, None);
        assert_eq!(
            signature(&auth),
            "7237e1e816972ca48a2b9690d7a8da5fc5cdde2fd772de630ea37b8a990f006b"
        );
    }

    #[test]
    fn ec2_assign_private_ip_addresses_with_a_session_token() {
        let body = "Action=AssignPrivateIpAddresses&AllowReassignment=true&NetworkInterfaceId=eni-0123456789abcdef0&PrivateIpAddress.1=10.0.0.100&Version=2016-11-15";
        assert_eq!(
            sha256_hex(body.as_bytes()),
            "fc433384ed1cdcc54307a28ba55c99aa18c49c7e883286ec5558dd8d24769efe"
        );
        let (_, auth) = ec2(body, Some("FQoGZXIvYXdzEXAMPLETOKEN"));
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,"),
            "{auth}"
        );
        assert_eq!(
            signature(&auth),
            "fce637526c9b5de58033b7fc7f19caa056ec1f180a5a468f7767b50ecc5877e8"
        );
    }

    #[test]
    fn dates() {
        let at = |s: u64| UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(amz_date(at(0)), "19700101T000000Z");
        assert_eq!(amz_date(at(1_440_938_160)), "20150830T123600Z");
        assert_eq!(amz_date(at(1_796_126_400)), "20261201T120000Z");
        assert_eq!(amz_date(at(951_825_600)), "20000229T120000Z");
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
