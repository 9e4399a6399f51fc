//! The AWS EC2 and IMDSv2 mocks over real sockets, checked against the
//! published examples and vectors of `docs/cloud-apis-next.md` §3 with a
//! raw client and a SigV4 signer of the tests' own (`common/sigv4.rs`).

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mock_cloud::{Ec2, ExpiredAnswer, Fault, Imds};

use common::sigv4::{self, amz_date_now, authorization, Key, Signing};
use common::{raw_answer, send, Addr, Answer};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";
const VERSION: &str = "Version=2016-11-15";
const NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

const A: &str = "i-0a000000000000001";
const B: &str = "i-0b000000000000002";
const ENI_A: &str = "eni-0a000000000000001";
const ENI_B: &str = "eni-0b000000000000002";
const MAC_A: &str = "02:aa:00:00:00:01";
const MAC_B: &str = "02:bb:00:00:00:02";
const EIP: &str = "203.0.113.41";
const ALLOC: &str = "eipalloc-0123456789abcdef0";
const VIP: &str = "10.0.0.100";

/// §3.4's DescribeAddresses answer, verbatim.
const PUBLISHED_DESCRIBE: &str = r#"<DescribeAddressesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>f7de5e98-491a-4c19-a92d-908d6EXAMPLE</requestId>
    <addressesSet><item>
      <publicIp>203.0.113.41</publicIp><allocationId>eipalloc-08229861</allocationId><domain>vpc</domain>
      <instanceId>i-0598c7d356eba48d7</instanceId><associationId>eipassoc-f0229899</associationId>
      <networkInterfaceId>eni-ef229886</networkInterfaceId><networkInterfaceOwnerId>053230519467</networkInterfaceOwnerId>
      <privateIpAddress>10.0.0.228</privateIpAddress>
    </item></addressesSet></DescribeAddressesResponse>"#;

/// §3.4's AssociateAddress answer, verbatim.
const PUBLISHED_ASSOCIATE: &str = r#"<AssociateAddressResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
   <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId><return>true</return>
   <associationId>eipassoc-fc5ca095</associationId></AssociateAddressResponse>"#;

/// §3.5's AssignPrivateIpAddresses answer, verbatim.
const PUBLISHED_ASSIGN: &str = r#"<AssignPrivateIpAddressesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>3fb591ba-558c-48f8-ae6b-c2f9d6d06425</requestId><networkInterfaceId>eni-01d32da61c165ac3e</networkInterfaceId>
    <assignedPrivateIpAddressesSet><item><privateIpAddress>10.2.2.1</privateIpAddress></item></assignedPrivateIpAddressesSet>
    <return>true</return></AssignPrivateIpAddressesResponse>"#;

/// §3.6's error answer, verbatim (its request id elided there).
const PUBLISHED_ERROR: &str = "<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-30a4c258' does not exist</Message></Error></Errors><RequestID>e53c7b2e-…</RequestID></Response>";

fn key() -> Key<'static> {
    Key {
        id: AKID,
        secret: SECRET,
        token: None,
    }
}

/// Two instances; the Elastic IP on A, the secondary private IP on A's ENI.
fn mock() -> Ec2 {
    let m = Ec2::start(AKID, SECRET).expect("mock starts");
    m.add_instance(A, ENI_A, MAC_A, "10.0.0.11");
    m.add_instance(B, ENI_B, MAC_B, "10.0.0.12");
    m.add_elastic_ip(EIP, ALLOC, Some(A));
    m.add_secondary_ip(VIP, Some(ENI_A));
    m
}

/// A raw request with exactly these headers (no `Host` of its own).
fn raw(
    to: &(impl Addr + ?Sized),
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut r = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    for (n, v) in headers {
        r.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    r.push_str(body);
    raw_answer(to, r.as_bytes())
}

/// A form POST signed with `key` for `region`, dated `amz_date`, as floaty
/// sends it.
fn post_signed(m: &Ec2, key: &Key, region: &str, amz_date: &str, body: &str) -> Answer {
    let mut headers = vec![
        ("Content-Type", FORM),
        ("Host", "ec2.test"),
        ("X-Amz-Date", amz_date),
    ];
    if let Some(t) = key.token {
        headers.push(("X-Amz-Security-Token", t));
    }
    let signing = Signing {
        region,
        service: "ec2",
        amz_date,
        method: "POST",
        query: "",
        headers: &headers,
        body,
    };
    let auth = authorization(key, &signing);
    headers.push(("Authorization", &auth));
    raw(m, "POST", "/", &headers, body)
}

fn post_as(m: &Ec2, key: &Key, body: &str) -> Answer {
    post_signed(m, key, "us-east-1", &amz_date_now(0), body)
}

fn post(m: &Ec2, body: &str) -> Answer {
    post_as(m, &key(), body)
}

/// The text of the first `<name>` element.
fn tag(body: &str, name: &str) -> Option<String> {
    tags(body, name).into_iter().next()
}

fn tags(body: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    out
}

/// `(status, Code)` of an error answer.
fn error(a: &Answer) -> (u16, String) {
    (a.status, tag(&a.body, "Code").unwrap_or_default())
}

/// The XML with the declaration dropped, the whitespace between elements
/// removed and the values of `elided` elements replaced by `…`: what two
/// answers must share.
fn squeeze(xml: &str, elided: &[&str]) -> String {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .unwrap_or(xml);
    let mut out: String = body.lines().map(str::trim).collect();
    for name in elided {
        let (open, close) = (format!("<{name}>"), format!("</{name}>"));
        let mut done = String::new();
        let mut rest = out.as_str();
        while let Some(start) = rest.find(&open) {
            let after = &rest[start + open.len()..];
            let Some(end) = after.find(&close) else { break };
            done.push_str(&rest[..start + open.len()]);
            done.push('…');
            rest = &after[end..];
        }
        done.push_str(rest);
        out = done;
    }
    out
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<usize> = s.split('-').map(str::len).collect();
    parts == [8, 4, 4, 4, 12] && s.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
}

/// `prefix-` and 17 lower-case hex digits.
fn is_new_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|d| {
            d.len() == 17
                && d.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Polls `f` every 20 ms for up to `timeout`: for what changes by the
/// clock (a remap delay, an expiry), not by an event.
fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[test]
fn url_and_tls() {
    let m = Ec2::start(AKID, SECRET).expect("mock");
    assert_eq!(m.url(), format!("http://127.0.0.1:{}/", m.addr().port()));
    assert_eq!(m.ca_pem(), None);
    let tls = Ec2::start_tls(AKID, SECRET).expect("tls mock");
    assert_eq!(
        tls.url(),
        format!("https://127.0.0.1:{}/", tls.addr().port())
    );
    assert!(tls
        .ca_pem()
        .is_some_and(|p| p.starts_with("-----BEGIN CERTIFICATE-----")));
    let imds = m.imds(A).expect("imds");
    assert_eq!(
        imds.url(),
        format!("http://127.0.0.1:{}/", imds.addr().port())
    );
    assert_ne!(imds.addr(), m.addr());
}

/// The worked examples of §3.2, sent exactly as published (headers,
/// bodies, signatures), to a mock in eu-central-1 whose clock says
/// 2026-12-01T12:00:00Z.
#[test]
fn worked_examples_are_accepted_as_published() {
    const WORKED: i64 = 1_796_126_400;
    const HOST: &str = "ec2.eu-central-1.amazonaws.com";
    const DATE: &str = "20261201T120000Z";
    let at_worked_time = |token: Option<&str>| {
        let m = Ec2::start("AKID-UNUSED", "x").expect("mock");
        m.add_credentials(AKID, SECRET, token);
        m.set_region("eu-central-1");
        m.set_clock_offset(WORKED - now_secs());
        m.add_instance(
            "i-0123456789abcdef0",
            "eni-0123456789abcdef0",
            MAC_A,
            "10.0.0.5",
        );
        m.add_elastic_ip(EIP, "eipalloc-0123456789abcdef0", None);
        m
    };
    let send_worked = |m: &Ec2, body: &str, token: Option<&str>, signature: &str| {
        let signed = if token.is_some() {
            "content-type;host;x-amz-date;x-amz-security-token"
        } else {
            "content-type;host;x-amz-date"
        };
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/eu-central-1/ec2/aws4_request, \
             SignedHeaders={signed}, Signature={signature}"
        );
        let mut headers = vec![("Content-Type", FORM), ("Host", HOST), ("X-Amz-Date", DATE)];
        if let Some(t) = token {
            headers.push(("X-Amz-Security-Token", t));
        }
        headers.push(("Authorization", &auth));
        raw(m, "POST", "/", &headers, body)
    };

    let associate = "Action=AssociateAddress&AllocationId=eipalloc-0123456789abcdef0\
                     &AllowReassociation=true&InstanceId=i-0123456789abcdef0&Version=2016-11-15";
    let sig = "ef92edcef1757faf2f0f8f68cb77e32f2c455a8994bffb084360f98e80a6fe9f";
    // The tests' own signer agrees with the publication too.
    let headers = [("Content-Type", FORM), ("Host", HOST), ("X-Amz-Date", DATE)];
    let signing = Signing {
        region: "eu-central-1",
        service: "ec2",
        amz_date: DATE,
        method: "POST",
        query: "",
        headers: &headers,
        body: associate,
    };
    assert_eq!(
        sigv4::sha256_hex(sigv4::canonical_request(&signing).as_bytes()),
        "4aca5c3c63f8d5e45d6f0bff053d401086168047b0f264c203559457dcdcd669"
    );
    assert_eq!(sigv4::signature(&key(), &signing), sig);
    let m = at_worked_time(None);
    let a = send_worked(&m, associate, None, sig);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(m.eip_instance(EIP).as_deref(), Some("i-0123456789abcdef0"));
    // One byte changed, and the published signature no longer fits.
    let a = send_worked(&m, &associate.replace("true", "True"), None, sig);
    assert_eq!(error(&a), (403, "SignatureDoesNotMatch".into()), "{a:?}");

    let describe =
        "Action=DescribeAddresses&AllocationId.1=eipalloc-0123456789abcdef0&Version=2016-11-15";
    let sig = "7237e1e816972ca48a2b9690d7a8da5fc5cdde2fd772de630ea37b8a990f006b";
    let a = send_worked(&at_worked_time(None), describe, None, sig);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(tag(&a.body, "publicIp").as_deref(), Some(EIP));

    let assign = "Action=AssignPrivateIpAddresses&AllowReassignment=true\
                  &NetworkInterfaceId=eni-0123456789abcdef0&PrivateIpAddress.1=10.0.0.100&Version=2016-11-15";
    let token = "FQoGZXIvYXdzEXAMPLETOKEN";
    let sig = "fce637526c9b5de58033b7fc7f19caa056ec1f180a5a468f7767b50ecc5877e8";
    let m = at_worked_time(Some(token));
    let a = send_worked(&m, assign, Some(token), sig);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        m.secondary_eni(VIP).as_deref(),
        Some("eni-0123456789abcdef0")
    );
    // The same request without its token: the credentials need it.
    let a = send_worked(&m, assign, None, sig);
    assert_eq!(error(&a), (401, "AuthFailure".into()), "{a:?}");
}

#[test]
fn describe_addresses_matches_the_published_example() {
    let m = Ec2::start(AKID, SECRET).expect("mock");
    m.add_instance("i-0598c7d356eba48d7", "eni-ef229886", MAC_A, "10.0.0.228");
    m.add_elastic_ip(
        "203.0.113.41",
        "eipalloc-08229861",
        Some("i-0598c7d356eba48d7"),
    );
    let a = post(
        &m,
        &format!("Action=DescribeAddresses&AllocationId.1=eipalloc-08229861&{VERSION}"),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("Content-Type"), Some("text/xml;charset=UTF-8"));
    assert!(a.header("Retry-After").is_none());
    assert!(a.body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeAddressesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"), "{}", a.body);
    // Indented as EC2's answers are: a parser must skip whitespace.
    assert!(a.body.contains("\n    <requestId>"), "{}", a.body);
    let elided = ["requestId", "associationId"];
    assert_eq!(
        squeeze(&a.body, &elided),
        squeeze(PUBLISHED_DESCRIBE, &elided)
    );
    assert!(
        is_uuid(&tag(&a.body, "requestId").unwrap_or_default()),
        "{}",
        a.body
    );
    let association = tag(&a.body, "associationId").unwrap_or_default();
    assert!(is_new_id(&association, "eipassoc"), "{association}");

    // By address, by filter, and all of them: the same one.
    for body in [
        format!("Action=DescribeAddresses&PublicIp.1=203.0.113.41&{VERSION}"),
        format!("Action=DescribeAddresses&Filter.1.Name=instance-id&Filter.1.Value.1=i-0598c7d356eba48d7&{VERSION}"),
        format!("Action=DescribeAddresses&{VERSION}"),
    ] {
        let a = post(&m, &body);
        assert_eq!(tags(&a.body, "publicIp"), ["203.0.113.41"], "{body}: {a:?}");
    }
    let a = post(
        &m,
        &format!(
            "Action=DescribeAddresses&Filter.1.Name=instance-id&Filter.1.Value.1=i-other&{VERSION}"
        ),
    );
    assert!(a.body.contains("<addressesSet/>"), "{}", a.body);

    // Unassociated: the association's elements left out, or written empty.
    m.set_eip_instance("203.0.113.41", None);
    let unassociated = |m: &Ec2| {
        let a = post(
            m,
            &format!("Action=DescribeAddresses&AllocationId.1=eipalloc-08229861&{VERSION}"),
        );
        squeeze(&a.body, &["requestId"])
    };
    let head = format!("<DescribeAddressesResponse xmlns=\"{NS}\"><requestId>…</requestId><addressesSet><item><publicIp>203.0.113.41</publicIp><allocationId>eipalloc-08229861</allocationId><domain>vpc</domain>");
    assert_eq!(
        unassociated(&m),
        format!("{head}</item></addressesSet></DescribeAddressesResponse>")
    );
    m.set_empty_elements(true);
    assert_eq!(
        unassociated(&m),
        format!("{head}<instanceId/><associationId/><networkInterfaceId/><networkInterfaceOwnerId/><privateIpAddress/></item></addressesSet></DescribeAddressesResponse>")
    );

    for (body, code) in [
        (
            "AllocationId.1=eipalloc-nope",
            "InvalidAllocationID.NotFound",
        ),
        ("PublicIp.1=198.51.100.1", "InvalidAddress.NotFound"),
        (
            "Filter.1.Name=colour&Filter.1.Value.1=x",
            "InvalidParameterValue",
        ),
    ] {
        let a = post(&m, &format!("Action=DescribeAddresses&{body}&{VERSION}"));
        assert_eq!(error(&a), (400, code.into()), "{body}: {a:?}");
    }
}

#[test]
fn associate_address_matches_the_published_example_and_moves_the_address() {
    let m = mock();
    let move_to = |instance: &str| {
        post(&m, &format!("Action=AssociateAddress&AllocationId={ALLOC}&AllowReassociation=true&InstanceId={instance}&{VERSION}"))
    };
    let a = move_to(B);
    assert_eq!(a.status, 200, "{a:?}");
    let elided = ["requestId", "associationId"];
    assert_eq!(
        squeeze(&a.body, &elided),
        squeeze(PUBLISHED_ASSOCIATE, &elided)
    );
    let association = tag(&a.body, "associationId").unwrap_or_default();
    assert!(is_new_id(&association, "eipassoc"), "{association}");
    // The previous holder lost it: EC2 moved it, it did not copy it.
    assert_eq!(m.eip_instance(EIP).as_deref(), Some(B));
    let d = post(&m, &format!("Action=DescribeAddresses&{VERSION}"));
    assert_eq!(tags(&d.body, "instanceId"), [B]);
    assert_eq!(tags(&d.body, "networkInterfaceId"), [ENI_B]);
    assert_eq!(tags(&d.body, "privateIpAddress"), ["10.0.0.12"]);
    assert_eq!(tags(&d.body, "associationId"), [association.as_str()]);
    assert_eq!(m.associate_count(EIP), 1);

    // Again to the holder: idempotent, a remap with a new association id.
    let again = move_to(B);
    assert_eq!(again.status, 200, "{again:?}");
    assert_ne!(tag(&again.body, "associationId"), Some(association));

    // AllowReassociation=false: refused while it is elsewhere.
    let a = post(&m, &format!("Action=AssociateAddress&AllocationId={ALLOC}&AllowReassociation=false&InstanceId={A}&{VERSION}"));
    assert_eq!(
        error(&a),
        (400, "Resource.AlreadyAssociated".into()),
        "{a:?}"
    );
    assert_eq!(m.eip_instance(EIP).as_deref(), Some(B));

    // By ENI and private address (a secondary one).
    let a = post(&m, &format!("Action=AssociateAddress&AllocationId={ALLOC}&NetworkInterfaceId={ENI_A}&PrivateIpAddress={VIP}&{VERSION}"));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(m.eip_instance(EIP).as_deref(), Some(A));
    let d = post(&m, &format!("Action=DescribeAddresses&{VERSION}"));
    assert_eq!(tags(&d.body, "privateIpAddress"), [VIP]);

    // DisassociateAddress by its association id.
    let association = tag(&d.body, "associationId").unwrap_or_default();
    let a = post(
        &m,
        &format!("Action=DisassociateAddress&AssociationId={association}&{VERSION}"),
    );
    assert_eq!(
        (a.status, tag(&a.body, "return")),
        (200, Some("true".into())),
        "{a:?}"
    );
    assert_eq!(m.eip_instance(EIP), None);
    let a = post(
        &m,
        &format!("Action=DisassociateAddress&AssociationId={association}&{VERSION}"),
    );
    assert_eq!(error(&a), (400, "InvalidAssociationID.NotFound".into()));

    let a = post(
        &m,
        &format!("Action=AssociateAddress&AllocationId={ALLOC}&InstanceId=i-x&{VERSION}"),
    );
    assert_eq!(error(&a), (400, "InvalidInstanceID.NotFound".into()));
    assert_eq!(
        tag(&a.body, "Message").as_deref(),
        Some("The instance ID 'i-x' does not exist")
    );
    for (params, code) in [
        (
            format!("AllocationId={ALLOC}&NetworkInterfaceId=eni-x"),
            "InvalidNetworkInterfaceID.NotFound",
        ),
        (
            format!("AllocationId=eipalloc-x&InstanceId={A}"),
            "InvalidAllocationID.NotFound",
        ),
        (format!("InstanceId={A}"), "MissingParameter"),
        (
            format!("AllocationId={ALLOC}&NetworkInterfaceId={ENI_A}&PrivateIpAddress=10.0.0.99"),
            "InvalidParameterValue",
        ),
        (
            format!("AllocationId={ALLOC}&InstanceId={A}&AllowReassociation=maybe"),
            "InvalidParameterValue",
        ),
        // The AssociateAddress sample's bug (§3.4): not its parameter.
        (
            format!("AllocationId={ALLOC}&InstanceId={A}&AllowReassignment=true"),
            "UnknownParameter",
        ),
    ] {
        let a = post(&m, &format!("Action=AssociateAddress&{params}&{VERSION}"));
        assert_eq!(error(&a), (400, code.into()), "{params}: {a:?}");
    }
    assert_eq!(m.eip_instance(EIP), None, "no refused write moved it");
    // Every AssociateAddress naming the address was counted, refused or not.
    assert_eq!(m.associate_count(EIP), 9);
}

#[test]
fn assign_private_ip_addresses_matches_the_published_example_and_remaps_late_in_imds() {
    let m = mock();
    let (imds_a, imds_b) = (m.imds(A).expect("imds a"), m.imds(B).expect("imds b"));
    let local = |imds: &Imds, mac: &str| {
        let token = token(imds, "60");
        let path = format!("/latest/meta-data/network/interfaces/macs/{mac}/local-ipv4s");
        get(imds, &path, &token)
    };
    assert_eq!(local(&imds_a, MAC_A).body, format!("10.0.0.11\n{VIP}"));
    assert_eq!(local(&imds_b, MAC_B).body, "10.0.0.12");

    let assign = format!("Action=AssignPrivateIpAddresses&AllowReassignment=true&NetworkInterfaceId={ENI_B}&PrivateIpAddress.1={VIP}&{VERSION}");
    let started = Instant::now();
    let a = post(&m, &assign);
    let b_right_after = local(&imds_b, MAC_B).body;
    let in_time = started.elapsed() < mock_cloud::aws::DEFAULT_REMAP_DELAY;
    assert_eq!(a.status, 200, "{a:?}");
    let ours = squeeze(&a.body, &["requestId"])
        .replace(ENI_B, "eni-01d32da61c165ac3e")
        .replace(VIP, "10.2.2.1");
    assert_eq!(ours, squeeze(PUBLISHED_ASSIGN, &["requestId"]));
    // EC2 sees it at once; the old ENI's IMDS drops it at once; the new
    // ENI's IMDS lists it only after the remap delay.
    assert_eq!(m.secondary_eni(VIP).as_deref(), Some(ENI_B));
    assert_eq!(local(&imds_a, MAC_A).body, "10.0.0.11");
    if in_time {
        assert_eq!(b_right_after, "10.0.0.12", "visible before the remap delay");
    }
    assert!(eventually(Duration::from_secs(3), || local(&imds_b, MAC_B)
        .body
        == format!("10.0.0.12\n{VIP}")));
    assert!(started.elapsed() >= mock_cloud::aws::DEFAULT_REMAP_DELAY);
    let d = post(&m, &format!("Action=DescribeNetworkInterfaces&Filter.1.Name=addresses.private-ip-address&Filter.1.Value.1={VIP}&{VERSION}"));
    assert_eq!(d.status, 200, "{d:?}");
    assert_eq!(tags(&d.body, "networkInterfaceId"), [ENI_B]);
    assert_eq!(tags(&d.body, "instanceId"), [B]);
    assert_eq!(tags(&d.body, "macAddress"), [MAC_B]);
    assert_eq!(tags(&d.body, "primary"), ["true", "false"]);
    assert_eq!(
        tag(&d.body, "privateIpAddress").as_deref(),
        Some("10.0.0.12")
    );
    assert!(
        d.body
            .contains(&format!("<privateIpAddress>{VIP}</privateIpAddress>")),
        "{}",
        d.body
    );

    // Without AllowReassignment an address another ENI holds is refused,
    // and a primary address never moves.
    m.set_remap_delay(Duration::from_millis(100));
    for body in [
        format!("Action=AssignPrivateIpAddresses&NetworkInterfaceId={ENI_A}&PrivateIpAddress.1={VIP}&{VERSION}"),
        format!("Action=AssignPrivateIpAddresses&AllowReassignment=true&NetworkInterfaceId={ENI_A}&PrivateIpAddress.1=10.0.0.12&{VERSION}"),
    ] {
        let a = post(&m, &body);
        assert_eq!(error(&a), (400, "InvalidIPAddress.InUse".into()), "{body}: {a:?}");
    }
    assert_eq!(m.secondary_eni(VIP).as_deref(), Some(ENI_B));
    // A free address of the subnet is fine without it.
    let a = post(&m, &format!("Action=AssignPrivateIpAddresses&NetworkInterfaceId={ENI_A}&PrivateIpAddress.1=10.0.0.101&{VERSION}"));
    assert_eq!(a.status, 200, "{a:?}");
    assert!(eventually(Duration::from_secs(3), || local(&imds_a, MAC_A)
        .body
        == "10.0.0.11\n10.0.0.101"));
    let a = post(&m, &format!("Action=UnassignPrivateIpAddresses&NetworkInterfaceId={ENI_A}&PrivateIpAddress.1=10.0.0.101&{VERSION}"));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(m.secondary_eni("10.0.0.101"), None);
    assert_eq!(local(&imds_a, MAC_A).body, "10.0.0.11");
    for (body, code) in [
        (
            format!("NetworkInterfaceId=eni-x&PrivateIpAddress.1={VIP}"),
            "InvalidNetworkInterfaceID.NotFound",
        ),
        (format!("NetworkInterfaceId={ENI_A}"), "MissingParameter"),
        (
            format!("NetworkInterfaceId={ENI_A}&PrivateIpAddress.1=10.0.0.300"),
            "InvalidParameterValue",
        ),
    ] {
        let a = post(
            &m,
            &format!("Action=AssignPrivateIpAddresses&{body}&{VERSION}"),
        );
        assert_eq!(error(&a), (400, code.into()), "{body}: {a:?}");
    }
    assert_eq!(m.assign_count(VIP), 3);
    assert_eq!(m.assign_count("10.0.0.101"), 1);
}

#[test]
fn a_secondary_ip_carries_its_elastic_ip_along() {
    let m = mock();
    let a = post(&m, &format!("Action=AssociateAddress&AllocationId={ALLOC}&NetworkInterfaceId={ENI_A}&PrivateIpAddress={VIP}&{VERSION}"));
    assert_eq!(a.status, 200, "{a:?}");
    let a = post(&m, &format!("Action=AssignPrivateIpAddresses&AllowReassignment=true&NetworkInterfaceId={ENI_B}&PrivateIpAddress.1={VIP}&{VERSION}"));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(m.eip_instance(EIP).as_deref(), Some(B));
    assert!(m.wait_for(Duration::from_secs(1), |s| s.eip_eni(EIP) == Some(ENI_B)));
}

#[test]
fn error_xml_is_the_published_shape() {
    let m = mock();
    let a = post(
        &m,
        &format!("Action=DescribeInstances&InstanceId.1=i-30a4c258&{VERSION}"),
    );
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(a.header("Content-Type"), Some("text/xml;charset=UTF-8"));
    let id = tag(&a.body, "RequestID").unwrap_or_default();
    assert!(is_uuid(&id), "{a:?}");
    assert_eq!(
        a.body,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
            PUBLISHED_ERROR.replace("e53c7b2e-…", &id)
        )
    );
}

#[test]
fn describe_instances_and_network_interfaces() {
    let m = mock();
    let a = post(
        &m,
        &format!("Action=DescribeInstances&InstanceId.1={A}&{VERSION}"),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        a.body
            .contains(&format!("<DescribeInstancesResponse xmlns=\"{NS}\">")),
        "{}",
        a.body
    );
    assert_eq!(tags(&a.body, "instanceId"), [A, A]);
    assert_eq!(tag(&a.body, "name").as_deref(), Some("running"));
    assert_eq!(tag(&a.body, "ipAddress").as_deref(), Some(EIP));
    assert_eq!(
        tag(&a.body, "availabilityZone").as_deref(),
        Some("us-east-1a")
    );
    let all = post(&m, &format!("Action=DescribeInstances&{VERSION}"));
    assert_eq!(tags(&all.body, "reservationId").len(), 2, "{}", all.body);

    let by_id = post(
        &m,
        &format!("Action=DescribeNetworkInterfaces&NetworkInterfaceId.1={ENI_A}&{VERSION}"),
    );
    assert_eq!(by_id.status, 200, "{by_id:?}");
    assert_eq!(tags(&by_id.body, "networkInterfaceId"), [ENI_A]);
    assert_eq!(tags(&by_id.body, "primary"), ["true", "false"]);
    // The Elastic IP shows on the primary address's association.
    assert_eq!(tags(&by_id.body, "publicIp"), [EIP, EIP]);
    let none = post(&m, &format!("Action=DescribeNetworkInterfaces&Filter.1.Name=addresses.private-ip-address&Filter.1.Value.1=10.9.9.9&{VERSION}"));
    assert!(
        none.body.contains("<networkInterfaceSet/>"),
        "{}",
        none.body
    );
    for (body, code) in [
        (
            "NetworkInterfaceId.1=eni-x",
            "InvalidNetworkInterfaceID.NotFound",
        ),
        (
            "Filter.1.Name=bogus&Filter.1.Value.1=x",
            "InvalidParameterValue",
        ),
    ] {
        let a = post(
            &m,
            &format!("Action=DescribeNetworkInterfaces&{body}&{VERSION}"),
        );
        assert_eq!(error(&a), (400, code.into()), "{body}: {a:?}");
    }
}

#[test]
fn the_query_form_versions_and_actions() {
    let m = mock();
    // GET with the parameters in the query string, signed canonically.
    let query = format!("Action=DescribeAddresses&AllocationId.1={ALLOC}&{VERSION}");
    let date = amz_date_now(0);
    let headers = [("Host", "ec2.test"), ("X-Amz-Date", date.as_str())];
    let signing = Signing {
        region: "us-east-1",
        service: "ec2",
        amz_date: &date,
        method: "GET",
        query: &query,
        headers: &headers,
        body: "",
    };
    let auth = authorization(&key(), &signing);
    let a = raw(
        &m,
        "GET",
        &format!("/?{query}"),
        &[headers[0], headers[1], ("Authorization", &auth)],
        "",
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(tag(&a.body, "publicIp").as_deref(), Some(EIP));
    // The query in another order is the same canonical query.
    let shuffled = format!("{VERSION}&AllocationId.1={ALLOC}&Action=DescribeAddresses");
    let a = raw(
        &m,
        "GET",
        &format!("/?{shuffled}"),
        &[headers[0], headers[1], ("Authorization", &auth)],
        "",
    );
    assert_eq!(a.status, 200, "{a:?}");

    // A form POST without the charset parameter.
    let body = format!("Action=DescribeAddresses&{VERSION}");
    let date = amz_date_now(0);
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Host", "ec2.test"),
        ("X-Amz-Date", date.as_str()),
    ];
    let sign = |headers: &[(&str, &str)], body: &str| {
        authorization(
            &key(),
            &Signing {
                region: "us-east-1",
                service: "ec2",
                amz_date: &date,
                method: "POST",
                query: "",
                headers,
                body,
            },
        )
    };
    let auth = sign(&headers, &body);
    let a = raw(
        &m,
        "POST",
        "/",
        &[headers[0], headers[1], headers[2], ("Authorization", &auth)],
        &body,
    );
    assert_eq!(a.status, 200, "{a:?}");
    // Not declared a form: the body is no parameters, so there is no Action.
    let text = [("Content-Type", "text/plain"), headers[1], headers[2]];
    let auth = sign(&text, &body);
    let a = raw(
        &m,
        "POST",
        "/",
        &[text[0], text[1], text[2], ("Authorization", &auth)],
        &body,
    );
    assert_eq!(error(&a), (400, "MissingAction".into()), "{a:?}");

    for (body, code) in [
        ("Action=DescribeAddresses".to_string(), "MissingParameter"),
        (
            "Action=DescribeAddresses&Version=2014-10-01".to_string(),
            "NoSuchVersion",
        ),
        (format!("Action=DescribeVolumes&{VERSION}"), "InvalidAction"),
        (
            format!("Action=DescribeAddresses&DryRun=true&{VERSION}"),
            "DryRunOperation",
        ),
    ] {
        let a = post(&m, &body);
        let status = if code == "DryRunOperation" { 412 } else { 400 };
        assert_eq!(error(&a), (status, code.into()), "{body}: {a:?}");
    }
    // The log names each request's action.
    let actions: Vec<Option<String>> = m.requests().iter().map(|r| r.action.clone()).collect();
    assert_eq!(
        actions.first(),
        Some(&Some("DescribeAddresses".to_string()))
    );
    assert!(actions.contains(&Some("DescribeVolumes".to_string())));
    assert!(actions.contains(&None));
}

#[test]
fn authentication_failures_have_their_codes() {
    let m = mock();
    let body = format!("Action=DescribeAddresses&{VERSION}");
    assert_eq!(post(&m, &body).status, 200);

    let unsigned = raw(
        &m,
        "POST",
        "/",
        &[("Content-Type", FORM), ("Host", "ec2.test")],
        &body,
    );
    assert_eq!(
        error(&unsigned),
        (403, "MissingAuthenticationToken".into()),
        "{unsigned:?}"
    );

    let stranger = Key {
        id: "AKIDSTRANGER",
        ..key()
    };
    let a = post_as(&m, &stranger, &body);
    assert_eq!(error(&a), (401, "AuthFailure".into()), "{a:?}");
    assert_eq!(
        tag(&a.body, "Message").as_deref(),
        Some("AWS was not able to validate the provided access credentials")
    );

    let wrong_secret = Key {
        secret: "not-the-secret",
        ..key()
    };
    let a = post_as(&m, &wrong_secret, &body);
    assert_eq!(error(&a), (403, "SignatureDoesNotMatch".into()), "{a:?}");
    assert_eq!(
        tag(&a.body, "Message").as_deref(),
        Some("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
    );
    // Another region in the scope than the mock's (then the right one).
    let a = post_signed(&m, &key(), "eu-west-1", &amz_date_now(0), &body);
    assert_eq!(error(&a), (403, "SignatureDoesNotMatch".into()), "{a:?}");
    m.set_region("eu-west-1");
    assert_eq!(
        post_signed(&m, &key(), "eu-west-1", &amz_date_now(0), &body).status,
        200
    );
    m.set_region("us-east-1");

    // Another service, and a scope dated another day than X-Amz-Date.
    let date = amz_date_now(0);
    let headers = [
        ("Content-Type", FORM),
        ("Host", "ec2.test"),
        ("X-Amz-Date", date.as_str()),
    ];
    let signed = |service: &str| {
        authorization(
            &key(),
            &Signing {
                region: "us-east-1",
                service,
                amz_date: &date,
                method: "POST",
                query: "",
                headers: &headers,
                body: &body,
            },
        )
    };
    let iam = signed("iam");
    let a = raw(
        &m,
        "POST",
        "/",
        &[headers[0], headers[1], headers[2], ("Authorization", &iam)],
        &body,
    );
    assert_eq!(error(&a), (403, "SignatureDoesNotMatch".into()), "{a:?}");
    let good = signed("ec2");
    let day = &date[..8];
    let yesterday = good.replace(&format!("/{day}/"), "/20000101/");
    let a = raw(
        &m,
        "POST",
        "/",
        &[
            headers[0],
            headers[1],
            headers[2],
            ("Authorization", &yesterday),
        ],
        &body,
    );
    assert_eq!(error(&a), (403, "SignatureDoesNotMatch".into()), "{a:?}");
    // host left out of SignedHeaders.
    let hostless = [headers[0], headers[2]];
    let auth = authorization(
        &key(),
        &Signing {
            region: "us-east-1",
            service: "ec2",
            amz_date: &date,
            method: "POST",
            query: "",
            headers: &hostless,
            body: &body,
        },
    );
    let a = raw(
        &m,
        "POST",
        "/",
        &[headers[0], headers[1], headers[2], ("Authorization", &auth)],
        &body,
    );
    assert_eq!(error(&a), (400, "IncompleteSignature".into()), "{a:?}");

    // Temporary credentials: the token must be sent, right, and signed.
    m.add_credentials("ASIATEMP", "temp-secret", Some("the-token"));
    let temp = Key {
        id: "ASIATEMP",
        secret: "temp-secret",
        token: Some("the-token"),
    };
    assert_eq!(post_as(&m, &temp, &body).status, 200);
    for sent in [
        Key {
            token: None,
            ..temp
        },
        Key {
            token: Some("another"),
            ..temp
        },
    ] {
        let a = post_as(&m, &sent, &body);
        assert_eq!(error(&a), (401, "AuthFailure".into()), "{sent:?}: {a:?}");
    }
    // Sent but not signed.
    let headers = [
        ("Content-Type", FORM),
        ("Host", "ec2.test"),
        ("X-Amz-Date", date.as_str()),
    ];
    let auth = authorization(
        &temp,
        &Signing {
            region: "us-east-1",
            service: "ec2",
            amz_date: &date,
            method: "POST",
            query: "",
            headers: &headers,
            body: &body,
        },
    );
    let a = raw(
        &m,
        "POST",
        "/",
        &[
            headers[0],
            headers[1],
            headers[2],
            ("X-Amz-Security-Token", "the-token"),
            ("Authorization", &auth),
        ],
        &body,
    );
    assert_eq!(error(&a), (401, "AuthFailure".into()), "{a:?}");

    // Expired: ExpiredToken by default, RequestExpired when told.
    m.expire_at("ASIATEMP", SystemTime::now() - Duration::from_secs(1));
    let a = post_as(&m, &temp, &body);
    assert_eq!(error(&a), (400, "ExpiredToken".into()), "{a:?}");
    assert_eq!(
        tag(&a.body, "Message").as_deref(),
        Some("The security token included in the request is expired")
    );
    m.set_expired_answer(ExpiredAnswer::RequestExpired);
    assert_eq!(
        error(&post_as(&m, &temp, &body)),
        (400, "RequestExpired".into())
    );

    // IAM: only what the key is allowed.
    m.allow_only(AKID, &["DescribeAddresses"]);
    assert_eq!(post(&m, &body).status, 200);
    let a = post(
        &m,
        &format!("Action=AssociateAddress&AllocationId={ALLOC}&InstanceId={B}&{VERSION}"),
    );
    assert_eq!(error(&a), (403, "UnauthorizedOperation".into()), "{a:?}");
    assert_eq!(
        tag(&a.body, "Message").as_deref(),
        Some("You are not authorized to perform this operation.")
    );
    assert_eq!(m.eip_instance(EIP).as_deref(), Some(A));

    m.revoke(AKID);
    assert_eq!(error(&post(&m, &body)), (401, "AuthFailure".into()));
}

#[test]
fn a_skewed_client_clock_is_request_expired() {
    let m = mock();
    let body = format!("Action=DescribeAddresses&{VERSION}");
    // The mock's clock ten minutes ahead of the client's.
    m.set_clock_offset(600);
    let a = post(&m, &body);
    assert_eq!(error(&a), (400, "RequestExpired".into()), "{a:?}");
    assert_eq!(
        tag(&a.body, "Message").as_deref(),
        Some("Request has expired.")
    );
    // Signed on the mock's time, it goes through; within the window too.
    assert_eq!(
        post_signed(&m, &key(), "us-east-1", &amz_date_now(600), &body).status,
        200
    );
    m.set_clock_offset(-200);
    assert_eq!(post(&m, &body).status, 200);
    m.set_clock_offset(-400);
    assert_eq!(error(&post(&m, &body)), (400, "RequestExpired".into()));
    m.set_skew_window(Duration::from_secs(900));
    assert_eq!(post(&m, &body).status, 200);
}

#[test]
fn throttling_is_503_request_limit_exceeded_without_retry_after() {
    let m = mock();
    m.throttle(2);
    let write = format!("Action=AssociateAddress&AllocationId={ALLOC}&InstanceId={B}&{VERSION}");
    for _ in 0..2 {
        let a = post(&m, &write);
        assert_eq!(error(&a), (503, "RequestLimitExceeded".into()), "{a:?}");
        assert_eq!(
            tag(&a.body, "Message").as_deref(),
            Some("Request limit exceeded.")
        );
        assert!(a.header("Retry-After").is_none(), "{a:?}");
    }
    assert_eq!(m.eip_instance(EIP).as_deref(), Some(A));
    assert_eq!(post(&m, &write).status, 200);
    assert_eq!(m.eip_instance(EIP).as_deref(), Some(B));
    assert_eq!(m.associate_count(EIP), 3);
    let statuses: Vec<Option<u16>> = m.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(503), Some(503), Some(200)]);
}

#[test]
fn faults_come_before_authentication() {
    let m = mock();
    m.set_fault_times(Fault::Status(500, "oops".into()), 1);
    let unsigned = raw(
        &m,
        "POST",
        "/",
        &[("Content-Type", FORM)],
        &format!("Action=AssociateAddress&AllocationId={ALLOC}&InstanceId={B}&{VERSION}"),
    );
    assert_eq!(unsigned.status, 500, "{unsigned:?}");
    assert_eq!(m.associate_count(EIP), 1);
    let log = m.requests();
    assert_eq!(log[0].action.as_deref(), Some("AssociateAddress"));
    assert_eq!(log[0].status, Some(500));
    m.set_fault_on("POST", Fault::Reset, Some(1));
    assert_eq!(
        post(&m, &format!("Action=DescribeAddresses&{VERSION}")).status,
        0
    );
    assert_eq!(
        post(&m, &format!("Action=DescribeAddresses&{VERSION}")).status,
        200
    );
    m.set_fault(Fault::Hang);
    m.clear_fault();
    assert_eq!(
        post(&m, &format!("Action=DescribeAddresses&{VERSION}")).status,
        200
    );
}

// ---- IMDSv2 ----

/// A token from `PUT /latest/api/token` with this TTL header value.
fn token(imds: &Imds, ttl: &str) -> String {
    let a = send(
        imds,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", ttl)],
        None,
    );
    assert_eq!(a.status, 200, "{a:?}");
    a.body
}

fn get(imds: &Imds, path: &str, token: &str) -> Answer {
    send(
        imds,
        "GET",
        path,
        &[("X-aws-ec2-metadata-token", token)],
        None,
    )
}

#[test]
fn imds_v2_token_flow_and_v1_refused() {
    let m = mock();
    m.set_region("eu-central-1");
    let imds = m.imds(A).expect("imds");
    // IMDSv1: no token, no metadata.
    let v1 = send(&imds, "GET", "/latest/meta-data/instance-id", &[], None);
    assert_eq!(v1.status, 401, "{v1:?}");
    let forged = get(&imds, "/latest/meta-data/instance-id", "AQAEAforged");
    assert_eq!(forged.status, 401, "{forged:?}");

    let a = send(
        &imds,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
        None,
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.header("X-aws-ec2-metadata-token-ttl-seconds"),
        Some("21600")
    );
    let t = a.body.clone();
    assert!(t.len() >= 40 && !t.contains(char::is_whitespace), "{t:?}");
    let macs = "/latest/meta-data/network/interfaces/macs";
    for (path, want) in [
        ("/latest/meta-data/instance-id".to_string(), A.to_string()),
        (
            "/latest/meta-data/placement/region".into(),
            "eu-central-1".into(),
        ),
        (
            "/latest/meta-data/placement/availability-zone".into(),
            "eu-central-1a".into(),
        ),
        ("/latest/meta-data/mac".into(), MAC_A.into()),
        ("/latest/meta-data/local-ipv4".into(), "10.0.0.11".into()),
        (format!("{macs}/{MAC_A}/interface-id"), ENI_A.into()),
        (
            format!("{macs}/{MAC_A}/local-ipv4s"),
            format!("10.0.0.11\n{VIP}"),
        ),
        (format!("{macs}/"), format!("{MAC_A}/")),
    ] {
        let a = get(&imds, &path, &t);
        assert_eq!(
            (a.status, a.body.as_str()),
            (200, want.as_str()),
            "{path}: {a:?}"
        );
    }
    imds.set_region("ap-south-1");
    assert_eq!(
        get(&imds, "/latest/meta-data/placement/region", &t).body,
        "ap-south-1"
    );
    for path in [
        "/latest/meta-data/network/interfaces/macs/02:00:00:00:00:99/local-ipv4s",
        "/latest/meta-data/nothing",
        "/latest/meta-data/iam/security-credentials/",
    ] {
        assert_eq!(get(&imds, path, &t).status, 404, "{path}");
    }
    for ttl in ["0", "21601", "abc", "-1", ""] {
        let a = send(
            &imds,
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", ttl)],
            None,
        );
        assert_eq!(a.status, 400, "{ttl:?}: {a:?}");
    }
    assert_eq!(
        send(&imds, "PUT", "/latest/api/token", &[], None).status,
        400
    );
    // Through a proxy: refused.
    let proxied = send(
        &imds,
        "PUT",
        "/latest/api/token",
        &[
            ("X-aws-ec2-metadata-token-ttl-seconds", "60"),
            ("X-Forwarded-For", "10.0.0.1"),
        ],
        None,
    );
    assert_eq!(proxied.status, 403, "{proxied:?}");
    imds.set_disabled(true);
    let a = send(
        &imds,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
        None,
    );
    assert_eq!(a.status, 403, "{a:?}");
    imds.set_disabled(false);
    assert_eq!(get(&imds, "/latest/meta-data/instance-id", &t).status, 200);
    let methods: Vec<String> = imds.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods.first().map(String::as_str), Some("GET"));
    assert!(methods.contains(&"PUT".to_string()));
    // Faults, as on the other mocks.
    imds.set_fault_times(Fault::Reset, 1);
    assert_eq!(get(&imds, "/latest/meta-data/instance-id", &t).status, 0);
    assert_eq!(get(&imds, "/latest/meta-data/instance-id", &t).status, 200);
}

#[test]
fn an_imds_token_expires_after_its_ttl() {
    let m = mock();
    let imds = m.imds(A).expect("imds");
    let issued = Instant::now();
    let t = token(&imds, "1");
    assert_eq!(get(&imds, "/latest/meta-data/instance-id", &t).status, 200);
    assert!(eventually(Duration::from_secs(4), || get(
        &imds,
        "/latest/meta-data/instance-id",
        &t
    )
    .status
        == 401));
    assert!(issued.elapsed() >= Duration::from_secs(1));
    // A new one works.
    let t = token(&imds, "60");
    assert_eq!(get(&imds, "/latest/meta-data/instance-id", &t).status, 200);
}

#[test]
fn imds_role_credentials_rotate_and_expire() {
    let m = mock();
    let imds = m.imds(A).expect("imds");
    let t = token(&imds, "600");
    let body = format!("Action=DescribeAddresses&{VERSION}");
    let issued = now_secs();
    imds.set_role(
        "floaty-role",
        "ASIAOLD",
        "old-secret",
        "old-token",
        Duration::from_secs(2),
    );
    assert_eq!(
        get(&imds, "/latest/meta-data/iam/security-credentials/", &t).body,
        "floaty-role"
    );
    let creds = get(
        &imds,
        "/latest/meta-data/iam/security-credentials/floaty-role",
        &t,
    );
    assert_eq!(creds.status, 200, "{creds:?}");
    let doc = creds.json();
    assert_eq!(doc["Code"], "Success");
    assert_eq!(doc["Type"], "AWS-HMAC");
    assert_eq!(doc["AccessKeyId"], "ASIAOLD");
    assert_eq!(doc["SecretAccessKey"], "old-secret");
    assert_eq!(doc["Token"], "old-token");
    let expiration = doc["Expiration"].as_str().unwrap_or_default().to_string();
    common::shape::assert_same_format("2026-12-02T13:00:00Z", &expiration);
    common::shape::assert_same_format(
        "2026-12-02T13:00:00Z",
        doc["LastUpdated"].as_str().unwrap_or_default(),
    );
    let expected = [2, 3, 4].map(|d| sigv4::amz_date(issued + d));
    let basic = expiration.replace(['-', ':'], "");
    assert!(expected.contains(&basic), "{expiration} vs {expected:?}");

    let old = Key {
        id: "ASIAOLD",
        secret: "old-secret",
        token: Some("old-token"),
    };
    assert_eq!(post_as(&m, &old, &body).status, 200);
    assert_eq!(
        error(&post_as(&m, &Key { token: None, ..old }, &body)),
        (401, "AuthFailure".into())
    );

    imds.rotate_role(
        "ASIANEW",
        "new-secret",
        "new-token",
        Duration::from_secs(3600),
    );
    let doc = get(
        &imds,
        "/latest/meta-data/iam/security-credentials/floaty-role",
        &t,
    )
    .json();
    assert_eq!(doc["AccessKeyId"], "ASIANEW");
    let new = Key {
        id: "ASIANEW",
        secret: "new-secret",
        token: Some("new-token"),
    };
    assert_eq!(post_as(&m, &new, &body).status, 200);
    // The old ones work until their own Expiration, then ExpiredToken.
    assert_eq!(post_as(&m, &old, &body).status, 200);
    assert!(eventually(Duration::from_secs(6), || error(&post_as(
        &m, &old, &body
    )) == (
        400,
        "ExpiredToken".into()
    )));
    assert!(now_secs() >= issued + 2);
    assert_eq!(post_as(&m, &new, &body).status, 200);

    imds.remove_role();
    for path in [
        "/latest/meta-data/iam/security-credentials/",
        "/latest/meta-data/iam/security-credentials/floaty-role",
    ] {
        assert_eq!(get(&imds, path, &t).status, 404, "{path}");
    }
    // Credentials already handed out stay valid.
    assert_eq!(post_as(&m, &new, &body).status, 200);
}

#[test]
fn wait_for_sees_moves_and_the_imds_view() {
    let m = mock();
    m.set_remap_delay(Duration::from_millis(100));
    m.set_secondary_eni(VIP, Some(ENI_B));
    assert_eq!(m.secondary_eni(VIP).as_deref(), Some(ENI_B));
    assert!(m.wait_for(Duration::from_secs(3), |s| s
        .local_ipv4s(ENI_B)
        .contains(&VIP.to_string())));
    assert!(m.with_state(|s| s.local_ipv4s(ENI_A) == ["10.0.0.11"]));
    let mover = m.clone();
    let t = std::thread::spawn(move || {
        let body = format!("Action=AssociateAddress&AllocationId={ALLOC}&InstanceId={B}&{VERSION}");
        post(&mover, &body).status
    });
    assert!(m.wait_for(Duration::from_secs(5), |s| s.eip_instance(EIP) == Some(B)));
    assert_eq!(t.join().ok(), Some(200));
    assert!(
        !m.wait_for(Duration::from_millis(50), |s| s.eip_instance(EIP)
            == Some(A))
    );
}
