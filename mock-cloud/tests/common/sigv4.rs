//! A SigV4 signer for the AWS tests, written apart from the mock's
//! verifier (and from floaty's signer): the two meet only through the
//! published vectors, which `tests/aws.rs` checks this one against too.

use std::time::{SystemTime, UNIX_EPOCH};

use ring::{digest, hmac};

/// An access key, with the session token of temporary credentials.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    pub id: &'a str,
    pub secret: &'a str,
    pub token: Option<&'a str>,
}

/// One request to sign.
#[derive(Debug, Clone, Copy)]
pub struct Signing<'a> {
    pub region: &'a str,
    pub service: &'a str,
    /// `20261201T120000Z`; its first eight characters date the scope.
    pub amz_date: &'a str,
    pub method: &'a str,
    /// Already canonical: encoded and sorted.
    pub query: &'a str,
    /// The headers to sign, names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a str,
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(key: &[u8], data: &str) -> Vec<u8> {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&k, data.as_bytes()).as_ref().to_vec()
}

/// The canonical request, as the SigV4 documentation defines it.
pub fn canonical_request(s: &Signing) -> String {
    let mut headers: Vec<(String, String)> = s
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    headers.sort();
    let lines: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "{}\n/\n{}\n{}\n{}\n{}",
        s.method,
        s.query,
        lines,
        names.join(";"),
        sha256_hex(s.body.as_bytes())
    )
}

/// The signature alone.
pub fn signature(key: &Key, s: &Signing) -> String {
    let date = &s.amz_date[..8];
    let scope = format!("{date}/{}/{}/aws4_request", s.region, s.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        s.amz_date,
        sha256_hex(canonical_request(s).as_bytes())
    );
    let k = mac(format!("AWS4{}", key.secret).as_bytes(), date);
    let k = mac(&k, s.region);
    let k = mac(&k, s.service);
    let k = mac(&k, "aws4_request");
    hex(&mac(&k, &to_sign))
}

/// The `Authorization` header value.
pub fn authorization(key: &Key, s: &Signing) -> String {
    let mut names: Vec<String> = s
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={}",
        key.id,
        &s.amz_date[..8],
        s.region,
        s.service,
        names.join(";"),
        signature(key, s)
    )
}

/// `X-Amz-Date` for now plus `offset` seconds.
pub fn amz_date_now(offset: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    amz_date(now + offset)
}

/// `X-Amz-Date` of a UNIX time (Howard Hinnant's days-to-civil).
pub fn amz_date(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
