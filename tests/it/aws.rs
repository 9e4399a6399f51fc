//! Notify mode through the binary against the mock EC2 API and IMDSv2.

use std::time::Duration;

use mock_cloud::{Ec2, Imds};

use crate::support::*;

const T: Duration = Duration::from_secs(15);
const KEY_ID: &str = "AKIAFLOATYTESTEXAMPL";
const SECRET: &str = "floaty/test/secret/ZmxvYXR5LXRlc3QtYXdzLXNlY3JldA";
const HERE: &str = "i-0aaaaaaaaaaaaaaa1";
const THERE: &str = "i-0bbbbbbbbbbbbbbb2";
const ENI_HERE: &str = "eni-0aaaaaaaaaaaaaaa1";
const ENI_THERE: &str = "eni-0bbbbbbbbbbbbbbb2";
const EIP: &str = "192.0.2.10";

fn mock() -> (Ec2, Imds) {
    let m = Ec2::start(KEY_ID, SECRET).expect("mock");
    m.add_instance(HERE, ENI_HERE, "0a:00:00:00:00:01", "10.0.0.5");
    m.add_instance(THERE, ENI_THERE, "0a:00:00:00:00:02", "10.0.0.6");
    m.add_elastic_ip(EIP, "eipalloc-0123456789abcdef0", Some(THERE));
    let imds = m.imds(HERE).expect("imds");
    (m, imds)
}

/// A world on `m`; `keys`: the aws section's credential lines (empty: the
/// instance role).
fn world(m: &Ec2, mode: &str, keys: &str, extra: &str) -> World {
    World::for_provider(
        &format!(
            "provider: aws\naws:\n  endpoint: {}\n  region: us-east-1\n  mode: {mode}\n  \
             instance-id: {HERE}\n{keys}",
            m.url()
        ),
        extra,
    )
}

fn static_keys(secret: &str) -> String {
    format!("  access-key-id: {KEY_ID}\n  secret-access-key: {secret}\n")
}

fn shown(m: &Ec2) -> String {
    m.requests()
        .iter()
        .map(|r| {
            format!(
                "{} -> {:?} {}\n",
                r.action.clone().unwrap_or_else(|| r.path.clone()),
                r.status,
                r.body
            )
        })
        .collect()
}

#[test]
fn master_associates_the_elastic_ip_and_backup_stops() {
    let (m, _imds) = mock();
    let w = world(
        &m,
        "elastic-ip",
        &static_keys(SECRET),
        "managed-addresses: [192.0.2.10]\n",
    );
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(
        m.wait_for(T, |s| s.eip_instance(EIP) == Some(HERE)),
        "{}\n{}",
        w.log_text(),
        shown(&m)
    );
    w.backup_ends_the_refresher();
    assert!(!w.log_text().contains(SECRET), "the secret was logged");
}

#[test]
fn a_steady_state_refresh_is_one_signed_read() {
    // One Elastic IP: AssociateAddress by InstanceId takes the primary
    // private IP, which holds one Elastic IP at a time (README).
    let (m, _imds) = mock();
    m.add_elastic_ip("192.0.2.20", "eipalloc-2", Some(HERE));
    let w = world(
        &m,
        "elastic-ip",
        &static_keys(SECRET),
        "refresh-interval: 1s\nmanaged-addresses: [192.0.2.20]\n",
    );
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(w.wait_log("address points here", T), "{}", w.log_text());
    let from = m.requests().len();
    assert!(wait_until(Duration::from_secs(10), || m.requests().len() >= from + 3));
    let steady = &m.requests()[from..];
    assert!(
        steady
            .iter()
            .all(|r| r.action.as_deref() == Some("DescribeAddresses") && r.status == Some(200)),
        "one read per refresh, no remap:\n{}",
        shown(&m)
    );
    assert_eq!(m.associate_count("192.0.2.20"), 0, "never remapped");
}

#[test]
fn a_secondary_ip_moves_and_waits_for_imds_to_show_it() {
    let (m, imds) = mock();
    m.add_secondary_ip("10.0.0.100", Some(ENI_THERE));
    m.set_remap_delay(Duration::from_millis(400));
    let w = world(
        &m,
        "secondary-private-ip",
        &static_keys(SECRET),
        "managed-addresses: [10.0.0.100]\n",
    );
    let out = w.notify_env(
        &[("FLOATY_METADATA_URL", &imds.url())],
        &["INSTANCE", "VI_1", "MASTER"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        w.wait_log("address pointed here", T),
        "{}\n{}",
        w.log_text(),
        shown(&m)
    );
    assert_eq!(m.secondary_eni("10.0.0.100").as_deref(), Some(ENI_HERE));
    assert!(
        imds.requests()
            .iter()
            .any(|r| r.path.ends_with("/local-ipv4s")),
        "the remap was never confirmed in IMDS"
    );
}

#[test]
fn role_credentials_rotate_mid_run_without_a_failed_write() {
    let (m, imds) = mock();
    imds.set_role(
        "floaty-lb",
        "ASIAOLD0000000000001",
        "old-role-secret",
        "old-role-token",
        Duration::from_secs(4),
    );
    let w = world(
        &m,
        "elastic-ip",
        "",
        "refresh-interval: 1s\nmanaged-addresses: [192.0.2.10]\n",
    );
    let out = w.notify_env(
        &[("FLOATY_METADATA_URL", &imds.url())],
        &["INSTANCE", "VI_1", "MASTER"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        m.wait_for(T, |s| s.eip_instance(EIP) == Some(HERE)),
        "{}",
        w.log_text()
    );
    imds.rotate_role(
        "ASIANEW0000000000002",
        "new-role-secret",
        "new-role-token",
        Duration::from_secs(3600),
    );
    assert!(
        wait_until(T, || m.requests().iter().any(|r| r
            .authorization
            .as_deref()
            .is_some_and(|a| a.contains("ASIANEW0000000000002")))),
        "never signed with the new keys; log:\n{}",
        w.log_text()
    );
    // Past the old keys' expiry: still no failure.
    let from = m.requests().len();
    assert!(wait_until(T, || m.requests().len() >= from + 4));
    assert!(
        m.requests().iter().all(|r| r.status == Some(200)),
        "{}",
        shown(&m)
    );
    let log = w.log_text();
    for secret in [
        "old-role-secret",
        "new-role-secret",
        "old-role-token",
        "new-role-token",
    ] {
        assert!(!log.contains(secret), "{secret} was logged");
    }
}

#[test]
fn a_wrong_secret_a_skewed_clock_a_revoked_role_and_throttling_each_say_so() {
    // A wrong secret: one clear line, no secret, waits a refresh interval.
    let (m, imds) = mock();
    let w = world(
        &m,
        "elastic-ip",
        &static_keys("the-wrong-secret-value"),
        "managed-addresses: [192.0.2.10]\n",
    );
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(w.wait_log("SignatureDoesNotMatch", T), "{}", w.log_text());
    assert!(
        w.log_text().contains("check aws.secret-access-key"),
        "{}",
        w.log_text()
    );
    assert!(!w.log_text().contains("the-wrong-secret-value"));
    drop(w);

    // A skewed clock.
    m.set_clock_offset(-1200);
    let w = world(
        &m,
        "elastic-ip",
        &static_keys(SECRET),
        "managed-addresses: [192.0.2.10]\n",
    );
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(w.wait_log("RequestExpired", T), "{}", w.log_text());
    assert!(w.log_text().contains("NTP"), "{}", w.log_text());
    drop(w);
    m.set_clock_offset(0);

    // Throttling: retried on the back-off, then through.
    m.throttle(2);
    let w = world(
        &m,
        "elastic-ip",
        &static_keys(SECRET),
        "managed-addresses: [192.0.2.10]\n",
    );
    assert!(w.notify(&["INSTANCE", "VI_1", "MASTER"]).status.success());
    assert!(
        m.wait_for(T, |s| s.eip_instance(EIP) == Some(HERE)),
        "{}",
        w.log_text()
    );
    assert!(
        w.log_text().contains("RequestLimitExceeded"),
        "{}",
        w.log_text()
    );
    assert!(w.log_text().contains("retrying in"), "{}", w.log_text());
    drop(w);

    // A revoked role: the instance profile was detached.
    imds.remove_role();
    let w = world(&m, "elastic-ip", "", "managed-addresses: [192.0.2.10]\n");
    let out = w.notify_env(
        &[("FLOATY_METADATA_URL", &imds.url())],
        &["INSTANCE", "VI_1", "MASTER"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        w.wait_log("attach an instance profile", T),
        "{}",
        w.log_text()
    );
}

#[test]
fn self_test_with_good_and_bad_credentials() {
    let (m, _imds) = mock();
    let w = world(&m, "elastic-ip", &static_keys(SECRET), "");
    let out = w.run(&["--test", w.config.to_str().expect("utf-8")]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.contains("OK   aws credentials: static keys AKIA…AMPL"),
        "{text}"
    );
    assert!(text.contains(&format!("instance {HERE}")), "{text}");
    let w = world(&m, "elastic-ip", &static_keys("not-the-secret"), "");
    let out = w.run(&["--test", w.config.to_str().expect("utf-8")]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains("FAIL") && text.contains("SignatureDoesNotMatch"),
        "{text}"
    );
    assert!(!text.contains("not-the-secret"), "{text}");
}
