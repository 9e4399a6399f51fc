//! SigV4 (`AWS4-HMAC-SHA256`) verification as AWS does it: the canonical
//! request is rebuilt from the request as it arrived (method, path, query,
//! the headers the client says it signed, the body's hash), and the
//! signature recomputed with the secret the mock holds for the access key
//! and compared in constant time (`docs/cloud-apis-next.md` §3.2).
//!
//! Written apart from floaty's own signer (`providers/src/aws`) on purpose:
//! a verifier that shared the client's code would agree with every bug in
//! it. Both answer to the same published known-answer vectors instead (the
//! tests below).

use ring::{digest, hmac};

use crate::clock;
use crate::http::RawRequest;

pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";

/// The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=...,
/// SignedHeaders=..., Signature=...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorization {
    pub access_key_id: String,
    /// The credential scope: `yyyymmdd/region/service/aws4_request`.
    pub date: String,
    pub region: String,
    pub service: String,
    pub terminator: String,
    /// Lower-cased, as the client listed them.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Authorization {
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.date, self.region, self.service, self.terminator
        )
    }

    fn signs(&self, name: &str) -> bool {
        self.signed_headers.iter().any(|h| h == name)
    }
}

/// What a request is checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect<'a> {
    /// The region the credential scope must name.
    pub region: &'a str,
    /// `ec2` for the mock; the official suite's vectors use `service`.
    pub service: &'a str,
    /// UNIX seconds on the service's clock.
    pub now: i64,
    /// How far `X-Amz-Date` may be from `now`, either way, in seconds.
    pub window_secs: i64,
}

/// What the mock holds for an access key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Secret<'a> {
    pub secret: &'a str,
    /// Temporary credentials' session token, which must then be sent (as
    /// `X-Amz-Security-Token`) and signed.
    pub token: Option<&'a str>,
    /// Temporary credentials past their expiration.
    pub expired: bool,
}

/// Why a request is refused, in the order the checks run; `ec2.rs` maps
/// each to AWS's code and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No `Authorization` header at all.
    Missing,
    /// A malformed `Authorization`, no or a malformed `X-Amz-Date`, or
    /// `host`/`x-amz-date` left out of `SignedHeaders`.
    Incomplete(String),
    /// An access key the mock does not know (or no longer knows).
    UnknownKey,
    /// Temporary credentials past their expiration.
    Expired,
    /// A session token the credentials need that is missing, wrong or not
    /// signed, or one sent with long-term credentials.
    Token,
    /// A credential scope naming another date, region or service, or a
    /// signature that is not the one recomputed here.
    Mismatch,
    /// `X-Amz-Date` further from the service's clock than the window.
    Skewed,
}

/// Checks `req` (whose target was split into `raw_path` and `raw_query`,
/// both still percent-encoded as received); the parsed header when the
/// request is good. `lookup` finds what the mock holds for an access key.
pub(crate) fn verify<'s>(
    req: &RawRequest,
    raw_path: &str,
    raw_query: Option<&str>,
    expect: &Expect<'_>,
    lookup: impl FnOnce(&str) -> Option<Secret<'s>>,
) -> Result<Authorization, Refusal> {
    let header = req.header("authorization").ok_or(Refusal::Missing)?;
    let auth = parse_authorization(header).map_err(Refusal::Incomplete)?;
    let amz_date = req.header("x-amz-date").ok_or_else(|| {
        Refusal::Incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        )
    })?;
    let Some(signed_at) = clock::parse_amz_date(amz_date) else {
        return Err(Refusal::Incomplete(format!(
            "Invalid X-Amz-Date '{amz_date}': it must be in ISO 8601 basic format, yyyyMMdd'T'HHmmss'Z'."
        )));
    };
    for required in ["host", "x-amz-date"] {
        if !auth.signs(required) {
            return Err(Refusal::Incomplete(format!(
                "'{required}' must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    let secret = lookup(&auth.access_key_id).ok_or(Refusal::UnknownKey)?;
    if secret.expired {
        return Err(Refusal::Expired);
    }
    let sent_token = req.header("x-amz-security-token");
    match (secret.token, sent_token) {
        (None, None) => {}
        (Some(want), Some(sent)) if want == sent && auth.signs("x-amz-security-token") => {}
        _ => return Err(Refusal::Token),
    }
    let scope_ok = amz_date.get(..8) == Some(auth.date.as_str())
        && auth.region == expect.region
        && auth.service == expect.service
        && auth.terminator == TERMINATOR;
    if !scope_ok {
        return Err(Refusal::Mismatch);
    }
    let canonical = canonical_request(req, raw_path, raw_query, &auth.signed_headers);
    let to_sign = string_to_sign(amz_date, &auth.scope(), &canonical);
    let key = signing_key(secret.secret, &auth.date, &auth.region, &auth.service);
    let given = unhex(&auth.signature).ok_or(Refusal::Mismatch)?;
    hmac::verify(&key, to_sign.as_bytes(), &given).map_err(|_| Refusal::Mismatch)?;
    if (signed_at - expect.now).abs() > expect.window_secs {
        return Err(Refusal::Skewed);
    }
    Ok(auth)
}

/// Splits the header into its parts; the `IncompleteSignature` message
/// when it cannot.
pub(crate) fn parse_authorization(header: &str) -> Result<Authorization, String> {
    let (algorithm, rest) = header.trim().split_once(' ').unwrap_or((header, ""));
    if algorithm != ALGORITHM {
        return Err(format!(
            "Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} is accepted)."
        ));
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let Some((name, value)) = part.trim().split_once('=') else {
            return Err(format!("'{}' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'.", part.trim()));
        };
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let missing: Vec<String> = [
        ("Credential", credential.is_none()),
        ("Signature", signature.is_none()),
        ("SignedHeaders", signed.is_none()),
    ]
    .iter()
    .filter(|(_, absent)| *absent)
    .map(|(name, _)| format!("Authorization header requires '{name}' parameter."))
    .collect();
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(format!("{} Authorization={header}", missing.join(" ")));
    };
    let parts: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = parts.as_slice() else {
        return Err(format!(
            "Credential '{credential}' is not of the form ACCESS-KEY-ID/yyyymmdd/REGION/SERVICE/aws4_request."
        ));
    };
    if akid.is_empty() {
        return Err("Authorization header requires an access key id in 'Credential'.".into());
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_ascii_lowercase).collect();
    if signed_headers.iter().any(String::is_empty) {
        return Err(format!("Invalid SignedHeaders '{signed}'."));
    }
    Ok(Authorization {
        access_key_id: akid.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        terminator: terminator.to_string(),
        signed_headers,
        signature: signature.to_string(),
    })
}

/// The canonical request (§3.2 step 1) for the headers in `signed`, which
/// AWS takes in sorted order whatever order the client listed them in: a
/// client that does not sort computes another request and fails here, as
/// it would against AWS.
pub(crate) fn canonical_request(
    req: &RawRequest,
    raw_path: &str,
    raw_query: Option<&str>,
    signed: &[String],
) -> String {
    let mut names: Vec<String> = signed.iter().map(|n| n.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    let mut headers = String::new();
    for name in &names {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(raw_path),
        canonical_query(raw_query),
        headers,
        names.join(";"),
        sha256_hex(&req.body)
    )
}

/// §3.2 step 2.
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// §3.2 step 3: kDate, kRegion, kService, kSigning.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let step = |key: &[u8], data: &str| {
        let k = hmac::Key::new(hmac::HMAC_SHA256, key);
        hmac::sign(&k, data.as_bytes())
    };
    let k_date = step(format!("AWS4{secret}").as_bytes(), date);
    let k_region = step(k_date.as_ref(), region);
    let k_service = step(k_region.as_ref(), service);
    let k_signing = step(k_service.as_ref(), TERMINATOR);
    hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref())
}

/// The hex signature of `string_to_sign`: what a correct client sends
/// (the verifier compares in constant time instead).
#[cfg(test)]
fn signature(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    let key = signing_key(secret, date, region, service);
    hex(hmac::sign(&key, string_to_sign.as_bytes()).as_ref())
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Lower- or upper-case hex; None for anything else (odd length, other
/// characters).
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Each path segment decoded once and encoded the SigV4 way; `/` for an
/// empty path. (EC2's path is always `/`; this is the rule for others.)
fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".into();
    }
    raw_path
        .split('/')
        .map(|segment| uri_encode(&percent_decode(segment)))
        .collect::<Vec<_>>()
        .join("/")
}

/// Names and values decoded once and encoded the SigV4 way, sorted by
/// name then value. A `+` stays a literal plus (`%2B`): SigV4 clients
/// encode spaces as `%20`.
fn canonical_query(raw_query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(n)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// SigV4's URI encoding: unreserved characters as they are, every other
/// byte as `%XX` in upper case.
fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` decoded to bytes; an invalid escape stays as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let value = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = value {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// 20150830T123600Z, the official suite's time.
    const SUITE_NOW: i64 = 1_440_938_160;
    /// 20261201T120000Z, the worked EC2 examples' time.
    const WORKED_NOW: i64 = 1_796_126_400;
    const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

    fn request(method: &str, headers: &[(&str, &str)], body: &str) -> RawRequest {
        RawRequest {
            method: method.into(),
            target: "/".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn authorization(scope: &str, signed: &str, signature: &str) -> String {
        format!(
            "{ALGORITHM} Credential={AKID}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
    }

    fn suite() -> Expect<'static> {
        Expect {
            region: "us-east-1",
            service: "service",
            now: SUITE_NOW,
            window_secs: 300,
        }
    }

    fn worked() -> Expect<'static> {
        Expect {
            region: "eu-central-1",
            service: "ec2",
            now: WORKED_NOW,
            window_secs: 300,
        }
    }

    fn key<'t>(token: Option<&'t str>) -> impl FnOnce(&str) -> Option<Secret<'t>> {
        move |akid| {
            (akid == AKID).then_some(Secret {
                secret: SECRET,
                token,
                expired: false,
            })
        }
    }

    /// Recomputes the published values of one signed request: the hash of
    /// its canonical request (the last line of the string to sign) and its
    /// signature; and has the verifier accept it as sent.
    fn check_vector(
        req: &RawRequest,
        expect: &Expect<'_>,
        token: Option<&str>,
        canonical_hash: Option<&str>,
        signature_hex: &str,
    ) {
        let header = req.header("authorization").expect("signed");
        let auth = parse_authorization(header).expect("parses");
        let canonical = canonical_request(req, "/", None, &auth.signed_headers);
        if let Some(h) = canonical_hash {
            assert_eq!(sha256_hex(canonical.as_bytes()), h, "{canonical}");
        }
        let amz_date = req.header("x-amz-date").expect("dated");
        let sts = string_to_sign(amz_date, &auth.scope(), &canonical);
        assert_eq!(
            signature(SECRET, &auth.date, &auth.region, &auth.service, &sts),
            signature_hex
        );
        assert_eq!(verify(req, "/", None, expect, key(token)), Ok(auth));
        // One character off, and it is refused.
        let mut forged = req.clone();
        forged.body.push(b' ');
        assert_eq!(
            verify(&forged, "/", None, expect, key(token)),
            Err(Refusal::Mismatch)
        );
    }

    #[test]
    fn get_vanilla() {
        let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let auth = authorization(
            "20150830/us-east-1/service/aws4_request",
            "host;x-amz-date",
            sig,
        );
        let req = request(
            "GET",
            &[
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
                ("Authorization", &auth),
            ],
            "",
        );
        let canonical = canonical_request(&req, "/", None, &["host".into(), "x-amz-date".into()]);
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let hash = "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63";
        check_vector(&req, &suite(), None, Some(hash), sig);
    }

    #[test]
    fn get_vanilla_with_session_token() {
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        let sig = "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8";
        let signed = "host;x-amz-date;x-amz-security-token";
        let auth = authorization("20150830/us-east-1/service/aws4_request", signed, sig);
        let req = request(
            "GET",
            &[
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
                ("X-Amz-Security-Token", token),
                ("Authorization", &auth),
            ],
            "",
        );
        check_vector(&req, &suite(), Some(token), None, sig);
        // The same request, but the credentials have another token, or none.
        assert_eq!(
            verify(&req, "/", None, &suite(), key(Some("other"))),
            Err(Refusal::Token)
        );
        assert_eq!(
            verify(&req, "/", None, &suite(), key(None)),
            Err(Refusal::Token)
        );
    }

    #[test]
    fn post_x_www_form_urlencoded_both_forms() {
        let sig = "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a";
        let scope = "20150830/us-east-1/service/aws4_request";
        let auth = authorization(scope, "content-type;host;x-amz-date", sig);
        let req = request(
            "POST",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
                ("Authorization", &auth),
            ],
            "Param1=value1",
        );
        check_vector(&req, &suite(), None, None, sig);

        // aws-c-auth's sign_body form; the doc abbreviates the body hash,
        // which is recomputed here and checked against both ends.
        let body_hash = sha256_hex(b"Param1=value1");
        assert!(
            body_hash.starts_with("9095672b") && body_hash.ends_with("0b6e"),
            "{body_hash}"
        );
        let sig = "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b";
        let signed = "content-length;content-type;host;x-amz-content-sha256;x-amz-date";
        let auth = authorization(scope, signed, sig);
        let req = request(
            "POST",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
                ("Content-Length", "13"),
                ("x-amz-content-sha256", &body_hash),
                ("Authorization", &auth),
            ],
            "Param1=value1",
        );
        check_vector(&req, &suite(), None, None, sig);
    }

    fn worked_request(body: &str, token: Option<&str>, signature: &str) -> RawRequest {
        let signed = if token.is_some() {
            "content-type;host;x-amz-date;x-amz-security-token"
        } else {
            "content-type;host;x-amz-date"
        };
        let auth = authorization("20261201/eu-central-1/ec2/aws4_request", signed, signature);
        let mut headers = vec![
            ("Content-Type", FORM),
            ("Host", "ec2.eu-central-1.amazonaws.com"),
            ("X-Amz-Date", "20261201T120000Z"),
        ];
        if let Some(t) = token {
            headers.push(("X-Amz-Security-Token", t));
        }
        headers.push(("Authorization", &auth));
        request("POST", &headers, body)
    }

    #[test]
    fn worked_associate_address() {
        let body = "Action=AssociateAddress&AllocationId=eipalloc-0123456789abcdef0\
                    &AllowReassociation=true&InstanceId=i-0123456789abcdef0&Version=2016-11-15";
        let sig = "ef92edcef1757faf2f0f8f68cb77e32f2c455a8994bffb084360f98e80a6fe9f";
        let req = worked_request(body, None, sig);
        let auth =
            parse_authorization(req.header("authorization").unwrap_or_default()).expect("parses");
        // The doc prints this canonical request in full.
        assert_eq!(
            canonical_request(&req, "/", None, &auth.signed_headers),
            "POST\n/\n\n\
             content-type:application/x-www-form-urlencoded; charset=utf-8\n\
             host:ec2.eu-central-1.amazonaws.com\n\
             x-amz-date:20261201T120000Z\n\n\
             content-type;host;x-amz-date\n\
             deec7da32d520fe42b5665cf128eaa82587241dcc7899910589780b427543a79"
        );
        let hash = "4aca5c3c63f8d5e45d6f0bff053d401086168047b0f264c203559457dcdcd669";
        check_vector(&req, &worked(), None, Some(hash), sig);
    }

    #[test]
    fn worked_describe_addresses() {
        let body =
            "Action=DescribeAddresses&AllocationId.1=eipalloc-0123456789abcdef0&Version=2016-11-15";
        assert_eq!(
            sha256_hex(body.as_bytes()),
            "54c8c58d94be5d72a993a4b9d85e55c977a5863c29939a8759780899a878b256"
        );
        let sig = "7237e1e816972ca48a2b9690d7a8da5fc5cdde2fd772de630ea37b8a990f006b";
        check_vector(&worked_request(body, None, sig), &worked(), None, None, sig);
    }

    #[test]
    fn worked_assign_private_ip_addresses_with_a_session_token() {
        let body = "Action=AssignPrivateIpAddresses&AllowReassignment=true\
                    &NetworkInterfaceId=eni-0123456789abcdef0&PrivateIpAddress.1=10.0.0.100&Version=2016-11-15";
        assert_eq!(
            sha256_hex(body.as_bytes()),
            "fc433384ed1cdcc54307a28ba55c99aa18c49c7e883286ec5558dd8d24769efe"
        );
        let token = "FQoGZXIvYXdzEXAMPLETOKEN";
        let sig = "fce637526c9b5de58033b7fc7f19caa056ec1f180a5a468f7767b50ecc5877e8";
        let req = worked_request(body, Some(token), sig);
        check_vector(&req, &worked(), Some(token), None, sig);
    }

    #[test]
    fn refusals_in_order() {
        let body =
            "Action=DescribeAddresses&AllocationId.1=eipalloc-0123456789abcdef0&Version=2016-11-15";
        let sig = "7237e1e816972ca48a2b9690d7a8da5fc5cdde2fd772de630ea37b8a990f006b";
        let good = worked_request(body, None, sig);
        let run = |req: &RawRequest, expect: &Expect<'_>| verify(req, "/", None, expect, key(None));
        assert!(run(&good, &worked()).is_ok());

        let without = |name: &str| {
            let mut r = good.clone();
            r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            r
        };
        assert_eq!(
            run(&without("authorization"), &worked()),
            Err(Refusal::Missing)
        );
        assert!(matches!(
            run(&without("x-amz-date"), &worked()),
            Err(Refusal::Incomplete(_))
        ));
        // Expired temporary credentials, or a key the mock does not know.
        let expired = Secret {
            secret: SECRET,
            token: None,
            expired: true,
        };
        assert_eq!(
            verify(&good, "/", None, &worked(), |_| Some(expired)),
            Err(Refusal::Expired)
        );
        assert_eq!(
            verify(&good, "/", None, &worked(), |_| None),
            Err(Refusal::UnknownKey)
        );
        // Long-term credentials with a token sent anyway.
        let mut tokened = good.clone();
        tokened
            .headers
            .push(("X-Amz-Security-Token".into(), "x".into()));
        assert_eq!(run(&tokened, &worked()), Err(Refusal::Token));
        // Another region or service in the scope than the mock's.
        for (region, service) in [("us-east-1", "ec2"), ("eu-central-1", "iam")] {
            let expect = Expect {
                region,
                service,
                ..worked()
            };
            assert_eq!(run(&good, &expect), Err(Refusal::Mismatch));
        }
        // The right secret under another key: the signature fails.
        assert_eq!(
            verify(&good, "/", None, &worked(), |_| Some(Secret {
                secret: "not-the-secret",
                token: None,
                expired: false
            })),
            Err(Refusal::Mismatch)
        );
        // Five minutes either way is fine, a second more is not.
        for (offset, ok) in [(300, true), (-300, true), (301, false), (-301, false)] {
            let expect = Expect {
                now: WORKED_NOW + offset,
                ..worked()
            };
            let want = if ok { Ok(()) } else { Err(Refusal::Skewed) };
            assert_eq!(run(&good, &expect).map(|_| ()), want, "{offset}");
        }
    }

    #[test]
    fn host_and_date_must_be_signed() {
        for signed in ["x-amz-date", "host", "content-type;host"] {
            let auth = authorization("20261201/eu-central-1/ec2/aws4_request", signed, "00");
            let req = request(
                "POST",
                &[
                    ("Host", "h"),
                    ("X-Amz-Date", "20261201T120000Z"),
                    ("Authorization", &auth),
                ],
                "",
            );
            assert!(
                matches!(
                    verify(&req, "/", None, &worked(), key(None)),
                    Err(Refusal::Incomplete(m)) if m.contains("SignedHeader")
                ),
                "{signed}"
            );
        }
    }

    #[test]
    fn malformed_headers_are_incomplete_not_panics() {
        for bad in [
            "",
            "AWS4-HMAC-SHA256",
            "AWS AKID:sig",
            "AWS4-HMAC-SHA256 Credential=AKID/20261201/eu-central-1/ec2/aws4_request",
            "AWS4-HMAC-SHA256 Credential=AKID/20261201/ec2/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=/20261201/r/ec2/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=A/2/r/s/aws4_request, SignedHeaders=host;;x, Signature=00",
            "AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=00",
        ] {
            assert!(parse_authorization(bad).is_err(), "{bad:?}");
        }
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("00fF"), Some(vec![0, 255]));
    }

    #[test]
    fn canonical_path_and_query() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/example%20space/"), "/example%20space/");
        assert_eq!(canonical_uri("/%E1%88%B4"), "/%E1%88%B4");
        assert_eq!(
            canonical_query(Some(
                "Version=2016-11-15&Action=DescribeAddresses&a=b%20c&a=a&flag"
            )),
            "Action=DescribeAddresses&Version=2016-11-15&a=a&a=b%20c&flag="
        );
        assert_eq!(canonical_query(Some("x=%7e+%2a")), "x=~%2B%2A");
        assert_eq!(canonical_query(None), "");
        assert_eq!(percent_decode("%"), b"%");
        assert_eq!(percent_decode("%4"), b"%4");
        assert_eq!(percent_decode("a%41"), b"aA");
    }
}
