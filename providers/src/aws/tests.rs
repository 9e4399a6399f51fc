//! The provider against the mock EC2 API and IMDSv2, over real sockets.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use mock_cloud::{Ec2, Fault, Imds};

use super::*;
use crate::test_gate::Gate;
use crate::Reason;
use crate::Secret;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const HERE: &str = "i-0aaaaaaaaaaaaaaa1";
const THERE: &str = "i-0bbbbbbbbbbbbbbb2";
const ENI_HERE: &str = "eni-0aaaaaaaaaaaaaaa1";
const ENI_THERE: &str = "eni-0bbbbbbbbbbbbbbb2";
const MAC_HERE: &str = "0a:00:00:00:00:01";
const EIP: &str = "203.0.113.10";
const VIP: &str = "10.0.0.100";

fn mock() -> Ec2 {
    let m = Ec2::start(AKID, SECRET).expect("mock");
    m.add_instance(HERE, ENI_HERE, MAC_HERE, "10.0.0.5");
    m.add_instance(THERE, ENI_THERE, "0a:00:00:00:00:02", "10.0.0.6");
    m.add_elastic_ip(EIP, "eipalloc-0123456789abcdef0", Some(THERE));
    m.add_secondary_ip(VIP, Some(ENI_THERE));
    m
}

fn settings(m: &Ec2, imds: &Imds, mode: AddressMode) -> Settings {
    Settings {
        region: Some("us-east-1".into()),
        endpoint: Some(m.url()),
        instance: InstanceSource::Id(HERE.into()),
        mode,
        network_interface: None,
        credentials: Credentials::Static {
            access_key_id: Secret::new(AKID),
            secret_access_key: Secret::new(SECRET),
            session_token: None,
        },
        metadata_url: imds.url(),
        timeout: Duration::from_secs(10),
        ca: None,
    }
}

async fn provider(s: Settings) -> Aws {
    Aws::new(s).await.expect("provider")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn actions(m: &Ec2) -> Vec<String> {
    m.requests()
        .iter()
        .map(|r| format!("{} -> {:?}", r.action.clone().unwrap_or_default(), r.status))
        .collect()
}

fn assert_no_secret(e: &ProviderError, secrets: &[&str]) {
    let text = format!("{e} {e:?}");
    for s in secrets {
        assert!(!text.contains(s), "secret leaked: {text}");
    }
    assert!(!text.contains('\n'), "not one line: {text}");
}

#[tokio::test]
async fn an_elastic_ip_is_read_then_associated_once() {
    let m = mock();
    let imds = m.imds(HERE).expect("imds");
    let p = provider(settings(&m, &imds, AddressMode::ElasticIp)).await;
    let out = p
        .refresh(ip(EIP), Mode::Write, &crate::Open)
        .await
        .expect("refresh");
    assert_eq!(
        out,
        Outcome::Moved {
            previous: Some(THERE.into())
        }
    );
    assert_eq!(m.eip_instance(EIP).as_deref(), Some(HERE));
    assert_eq!(
        actions(&m),
        [
            "DescribeAddresses -> Some(200)",
            "AssociateAddress -> Some(200)"
        ],
        "read before the write, even right after MASTER"
    );
    let log = m.requests();
    let assoc = &log[1];
    assert!(
        assoc
            .body
            .contains("AllocationId=eipalloc-0123456789abcdef0"),
        "{}",
        assoc.body
    );
    assert!(
        assoc.body.contains("AllowReassociation=true"),
        "{}",
        assoc.body
    );
    assert!(
        assoc.body.contains(&format!("InstanceId={HERE}")),
        "{}",
        assoc.body
    );
    assert!(assoc
        .authorization
        .as_deref()
        .is_some_and(|a| a.starts_with(&format!("AWS4-HMAC-SHA256 Credential={AKID}/"))));
    // The steady state: one signed read, no write (no needless remap).
    p.share.age();
    assert_eq!(
        p.refresh(ip(EIP), Mode::Verify, &crate::Open)
            .await
            .expect("verify"),
        Outcome::AlreadyHere
    );
    assert_eq!(m.associate_count(EIP), 1);
    let last = m.requests().last().cloned().expect("a request");
    assert_eq!(last.action.as_deref(), Some("DescribeAddresses"));
    assert!(
        last.body
            .contains("AllocationId.1=eipalloc-0123456789abcdef0"),
        "{}",
        last.body
    );
}

#[tokio::test]
async fn a_secondary_ip_is_assigned_and_confirmed_in_imds() {
    let m = mock();
    m.set_remap_delay(Duration::from_millis(300));
    let imds = m.imds(HERE).expect("imds");
    let p = provider(Settings {
        instance: InstanceSource::Metadata,
        region: None,
        ..settings(&m, &imds, AddressMode::SecondaryPrivateIp)
    })
    .await;
    assert_eq!(p.target(), ENI_HERE, "the primary ENI, from IMDS by MAC");
    let t0 = std::time::Instant::now();
    let out = p
        .refresh(ip(VIP), Mode::Write, &crate::Open)
        .await
        .expect("refresh");
    assert_eq!(
        out,
        Outcome::Moved {
            previous: Some(ENI_THERE.into())
        }
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "returned before IMDS showed the remap"
    );
    assert_eq!(m.secondary_eni(VIP).as_deref(), Some(ENI_HERE));
    let log = m.requests();
    let assign = log
        .iter()
        .find(|r| r.action.as_deref() == Some("AssignPrivateIpAddresses"))
        .expect("an assign");
    assert!(
        assign.body.contains("AllowReassignment=true"),
        "{}",
        assign.body
    );
    assert!(
        assign
            .body
            .contains(&format!("NetworkInterfaceId={ENI_HERE}")),
        "{}",
        assign.body
    );
    assert!(
        assign.body.contains("PrivateIpAddress.1=10.0.0.100"),
        "{}",
        assign.body
    );
    p.share.age();
    assert_eq!(
        p.refresh(ip(VIP), Mode::Verify, &crate::Open)
            .await
            .expect("verify"),
        Outcome::AlreadyHere
    );
    assert_eq!(m.assign_count(VIP), 1);
}

#[tokio::test]
async fn fifty_addresses_cost_one_read() {
    let m = Ec2::start(AKID, SECRET).expect("mock");
    m.add_instance(HERE, ENI_HERE, MAC_HERE, "10.0.0.5");
    let addresses: Vec<IpAddr> = (1..=50).map(|i| ip(&format!("10.0.1.{i}"))).collect();
    for a in &addresses {
        m.add_secondary_ip(&a.to_string(), Some(ENI_HERE));
    }
    let imds = m.imds(HERE).expect("imds");
    let p = Arc::new(
        provider(Settings {
            network_interface: Some(ENI_HERE.into()),
            ..settings(&m, &imds, AddressMode::SecondaryPrivateIp)
        })
        .await,
    );
    for round in 0..3 {
        let before = m.requests().len();
        let mut set = tokio::task::JoinSet::new();
        for a in addresses.iter().copied() {
            let p = p.clone();
            set.spawn(async move { p.refresh(a, Mode::Verify, &crate::Open).await });
        }
        while let Some(out) = set.join_next().await {
            assert_eq!(out.expect("task").expect("refresh"), Outcome::AlreadyHere);
        }
        let sent = &m.requests()[before..];
        // The very first read may be one address's alone (one known then).
        assert!(
            sent.len() <= if round == 0 { 2 } else { 1 },
            "round {round}: {:?}",
            actions(&m)
        );
        p.share.age();
    }
}

#[tokio::test]
async fn role_credentials_come_from_imdsv2_and_rotate_without_a_failed_request() {
    let m = mock();
    let imds = m.imds(HERE).expect("imds");
    imds.set_role(
        "floaty-lb",
        "ASIAOLDKEY0000000001",
        "old-secret-value",
        "old-session-token",
        Duration::from_secs(4),
    );
    let p = provider(Settings {
        credentials: Credentials::InstanceRole,
        ..settings(&m, &imds, AddressMode::ElasticIp)
    })
    .await;
    p.refresh(ip(EIP), Mode::Write, &crate::Open)
        .await
        .expect("with the role's keys");
    let first = m.requests().last().cloned().expect("request");
    assert!(first
        .authorization
        .as_deref()
        .is_some_and(|a| a.contains("Credential=ASIAOLDKEY0000000001/")));
    // AWS offers the next keys before the old ones expire.
    imds.rotate_role(
        "ASIANEWKEY0000000002",
        "new-secret-value",
        "new-session-token",
        Duration::from_secs(3600),
    );
    let until = std::time::Instant::now() + Duration::from_secs(6);
    while std::time::Instant::now() < until {
        p.share.age();
        p.refresh(ip(EIP), Mode::Verify, &crate::Open)
            .await
            .expect("no failed request across the rotation");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = m.requests();
    assert!(
        log.iter().all(|r| r.status == Some(200)),
        "{:?}",
        actions(&m)
    );
    assert!(log
        .last()
        .and_then(|r| r.authorization.as_deref())
        .is_some_and(|a| a.contains("Credential=ASIANEWKEY0000000002/")));
    // IMDSv2 only: every metadata read carried a token.
    assert!(imds
        .requests()
        .iter()
        .any(|r| r.method == "PUT" && r.path == "/latest/api/token"));
    assert!(imds.requests().iter().all(|r| r.status != Some(401)));
}

#[tokio::test]
async fn no_role_and_no_keys_is_a_clear_setup_error() {
    let m = mock();
    let imds = m.imds(HERE).expect("imds");
    let p = provider(Settings {
        credentials: Credentials::InstanceRole,
        ..settings(&m, &imds, AddressMode::ElasticIp)
    })
    .await;
    let e = p
        .refresh(ip(EIP), Mode::Write, &crate::Open)
        .await
        .expect_err("no credentials");
    assert_eq!(e.reason(), Some(Reason::Setup), "{e}");
    assert!(e.to_string().contains("attach an instance profile"), "{e}");
    assert!(m.requests().is_empty(), "nothing unsigned was sent");
}

#[tokio::test]
async fn a_wrong_secret_a_revoked_key_and_a_missing_permission_are_named() {
    let m = mock();
    let imds = m.imds(HERE).expect("imds");
    let wrong = provider(Settings {
        credentials: Credentials::Static {
            access_key_id: Secret::new(AKID),
            secret_access_key: Secret::new("not-the-secret-at-all"),
            session_token: None,
        },
        ..settings(&m, &imds, AddressMode::ElasticIp)
    })
    .await;
    let e = wrong
        .refresh(ip(EIP), Mode::Verify, &crate::Open)
        .await
        .expect_err("403");
    assert!(e.to_string().contains("SignatureDoesNotMatch"), "{e}");
    assert!(e.to_string().contains("aws.secret-access-key"), "{e}");
    assert_no_secret(&e, &["not-the-secret-at-all", SECRET]);

    m.allow_only(AKID, &["DescribeAddresses"]);
    let p = provider(settings(&m, &imds, AddressMode::ElasticIp)).await;
    let e = p
        .refresh(ip(EIP), Mode::Verify, &crate::Open)
        .await
        .expect_err("UnauthorizedOperation");
    assert!(
        e.to_string().contains("must allow ec2:AssociateAddress"),
        "{e}"
    );
    assert_eq!(e.reason(), Some(Reason::Auth), "{e}");

    m.revoke(AKID);
    p.share.age();
    let e = p
        .refresh(ip(EIP), Mode::Verify, &crate::Open)
        .await
        .expect_err("AuthFailure");
    assert!(e.to_string().contains("AuthFailure"), "{e}");
    assert_no_secret(&e, &[SECRET]);
}

#[tokio::test]
async fn a_skewed_clock_is_reported_as_such() {
    let m = mock();
    m.set_clock_offset(900);
    let imds = m.imds(HERE).expect("imds");
    let p = provider(settings(&m, &imds, AddressMode::ElasticIp)).await;
    let e = p
        .refresh(ip(EIP), Mode::Verify, &crate::Open)
        .await
        .expect_err("skew");
    let text = e.to_string();
    assert!(text.contains("RequestExpired"), "{text}");
    // From the API's `Date` header: our clock is 900 s behind.
    assert!(
        text.contains("this node's clock is 900 s behind the API's: fix NTP")
            || text.contains("this node's clock is 899 s behind")
            || text.contains("this node's clock is 901 s behind"),
        "{text}"
    );
}

#[tokio::test]
async fn throttling_is_transient_and_retried() {
    let m = mock();
    m.throttle(1);
    let imds = m.imds(HERE).expect("imds");
    let p = provider(settings(&m, &imds, AddressMode::ElasticIp)).await;
    let e = p
        .refresh(ip(EIP), Mode::Verify, &crate::Open)
        .await
        .expect_err("throttled");
    assert_eq!(e.reason(), Some(Reason::RateLimited), "{e}");
    assert!(e.to_string().contains("RequestLimitExceeded"), "{e}");
    p.refresh(ip(EIP), Mode::Verify, &crate::Open)
        .await
        .expect("then it goes through");
}

#[tokio::test]
async fn an_unknown_elastic_ip_is_this_nodes_failure() {
    let m = mock();
    let imds = m.imds(HERE).expect("imds");
    let p = provider(settings(&m, &imds, AddressMode::ElasticIp)).await;
    let e = p
        .refresh(ip("198.51.100.7"), Mode::Verify, &crate::Open)
        .await
        .expect_err("no such EIP");
    assert!(!e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("198.51.100.7"), "{e}");
}

#[tokio::test]
async fn a_closed_gate_sends_no_write() {
    let m = mock();
    let imds = m.imds(HERE).expect("imds");
    let p = provider(settings(&m, &imds, AddressMode::ElasticIp)).await;
    let gate = Gate::open_for(0);
    let e = p
        .refresh(ip(EIP), Mode::Write, &gate)
        .await
        .expect_err("withheld");
    assert!(matches!(e, ProviderError::Withheld { .. }), "{e:?}");
    assert_eq!(m.associate_count(EIP), 0);
}

#[tokio::test]
async fn the_region_and_instance_come_from_imdsv2() {
    let m = mock();
    m.set_region("eu-central-1");
    let imds = m.imds(HERE).expect("imds");
    imds.set_region("eu-central-1");
    let p = provider(Settings {
        region: None,
        instance: InstanceSource::Metadata,
        ..settings(&m, &imds, AddressMode::ElasticIp)
    })
    .await;
    assert_eq!(p.target(), HERE);
    p.refresh(ip(EIP), Mode::Write, &crate::Open)
        .await
        .expect("signed for eu-central-1");
    let auth = m.requests()[0].authorization.clone().unwrap_or_default();
    assert!(auth.contains("/eu-central-1/ec2/aws4_request"), "{auth}");
}

#[tokio::test]
async fn self_test_names_the_credentials_and_the_instance() {
    let m = mock();
    m.add_elastic_ip("203.0.113.11", "eipalloc-1", Some(HERE));
    let imds = m.imds(HERE).expect("imds");
    let p = provider(settings(&m, &imds, AddressMode::ElasticIp)).await;
    let checks = p.self_test().await;
    assert_eq!(checks.len(), 3, "{checks:?}");
    assert!(
        checks[0]
            .result
            .as_ref()
            .is_ok_and(|s| s.contains("AKIA…MPLE")),
        "{checks:?}"
    );
    assert!(
        checks[1].result.as_ref().is_ok_and(|s| s.contains(HERE)),
        "{checks:?}"
    );
    assert!(
        checks[2]
            .result
            .as_ref()
            .is_ok_and(|s| s.contains("1 here: 203.0.113.11")),
        "{checks:?}"
    );
    m.set_fault(Fault::Status(500, "<Response><Errors><Error><Code>InternalError</Code><Message>boom</Message></Error></Errors></Response>".into()));
    let checks = p.self_test().await;
    assert!(
        checks[1].result.is_err() && checks[2].result.is_err(),
        "{checks:?}"
    );
}

#[tokio::test]
async fn a_configured_interface_is_found_in_imds_to_confirm_remaps() {
    let m = mock();
    m.set_remap_delay(Duration::from_millis(200));
    let imds = m.imds(HERE).expect("imds");
    let p = provider(Settings {
        network_interface: Some(ENI_HERE.into()),
        ..settings(&m, &imds, AddressMode::SecondaryPrivateIp)
    })
    .await;
    let t0 = std::time::Instant::now();
    p.refresh(ip(VIP), Mode::Write, &crate::Open)
        .await
        .expect("refresh");
    assert!(t0.elapsed() >= Duration::from_millis(200), "not confirmed");
    assert!(imds
        .requests()
        .iter()
        .any(|r| r.path
            == format!("/latest/meta-data/network/interfaces/macs/{MAC_HERE}/local-ipv4s")));
}
