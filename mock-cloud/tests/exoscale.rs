//! The Exoscale mock over real sockets, with a raw client so that what is
//! on the wire (and what is signed) is exactly what the test wrote.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use mock_cloud::{Exoscale, ExoscalePaths, Fault, Metadata};
use ring::hmac;

use common::req;

/// The documented known-answer credentials.
const KEY: &str = "EXOxxxxxxxxxxxxxxxxxxxxxxxx";
fn secret() -> String {
    "X".repeat(43)
}
const A: &str = "11111111-2222-4333-8444-555555555555";
const B: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";

fn mock() -> (Exoscale, String) {
    let m = Exoscale::start(KEY, &secret()).expect("mock starts");
    m.add_instance(A, "db1");
    m.add_instance(B, "db2");
    let id = m.add_elastic_ip("192.0.2.10", &[B]);
    (m, id)
}

fn sig(secret: &str, msg: &str) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hmac::sign(&k, msg.as_bytes()).as_ref())
}

fn soon() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 60
}

/// A correctly signed request without query.
fn signed(m: &Exoscale, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let exp = soon();
    let msg = format!("{method} {path}\n{}\n\n\n{exp}", body.unwrap_or(""));
    let auth = format!(
        "EXO2-HMAC-SHA256 credential={KEY},expires={exp},signature={}",
        sig(&secret(), &msg)
    );
    req(m, method, path, Some(&auth), body)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn accepts_the_documented_known_answers() {
    let (m, _) = mock();
    // /v2/zone is not mocked: 404 means the signature passed, 403 not.
    let auth = format!(
        "EXO2-HMAC-SHA256 credential={KEY},expires=3376684800,signature=Ntbq/p0HVmA3Zg1HHY+Lq1vjFGi7HeMrrgXDS5jRNlY="
    );
    assert_eq!(req(&m, "GET", "/v2/zone", Some(&auth), None).0, 404);
    let auth = format!(
        "EXO2-HMAC-SHA256 credential={KEY},signed-query-args=k1;k2,expires=3376684800,signature=iqOBz13+44L5j0uJclE8hmUhQQcvtCSoPEOXYK6liqY="
    );
    assert_eq!(
        req(&m, "GET", "/v2/zone?k2=v2&k1=v1", Some(&auth), None).0,
        404
    );
    // The same header for another query, path or method is refused.
    for (method, target) in [
        ("GET", "/v2/zone?k1=v1&k2=v3"),
        ("GET", "/v2/zone?k1=v1&k2=v2&k3=x"),
        ("GET", "/v2/zones?k1=v1&k2=v2"),
        ("PUT", "/v2/zone?k1=v1&k2=v2"),
    ] {
        let (status, body) = req(&m, method, target, Some(&auth), None);
        assert_eq!(status, 403, "{method} {target}");
        assert_eq!(
            json(&body),
            serde_json::json!({"message": "Invalid request signature"})
        );
    }
}

#[test]
fn refuses_bad_expired_and_missing_signatures() {
    let (m, _) = mock();
    assert_eq!(req(&m, "GET", "/v2/instance", None, None).0, 401);
    assert_eq!(
        req(&m, "GET", "/v2/instance", Some("Bearer x"), None).0,
        401
    );
    let exp = soon();
    let good = sig(&secret(), &format!("GET /v2/instance\n\n\n\n{exp}"));
    let cases = [
        format!("EXO2-HMAC-SHA256 credential=EXOother,expires={exp},signature={good}"),
        format!(
            "EXO2-HMAC-SHA256 credential={KEY},expires={},signature={good}",
            exp + 1
        ),
        format!("EXO2-HMAC-SHA256 credential={KEY},expires={exp},signature=AAAA{good}"),
        format!("EXO2-HMAC-SHA256 credential={KEY},expires={exp},signature=not base64!"),
        format!("EXO2-HMAC-SHA256 credential={KEY},expires={exp}"),
        format!("EXO2-HMAC-SHA256 credential={KEY}, expires={exp},signature={good}"),
    ];
    for auth in &cases {
        assert_eq!(
            req(&m, "GET", "/v2/instance", Some(auth), None).0,
            403,
            "{auth}"
        );
    }
    let auth = format!("EXO2-HMAC-SHA256 credential={KEY},expires={exp},signature={good}");
    assert_eq!(req(&m, "GET", "/v2/instance", Some(&auth), None).0, 200);
    // Expired: a correct signature over a time in the past.
    let past = soon() - 120;
    let old = sig(&secret(), &format!("GET /v2/instance\n\n\n\n{past}"));
    let auth = format!("EXO2-HMAC-SHA256 credential={KEY},expires={past},signature={old}");
    assert_eq!(req(&m, "GET", "/v2/instance", Some(&auth), None).0, 403);
    // Every refusal is logged with its status.
    let statuses: Vec<Option<u16>> = m.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == Some(403)).count(),
        cases.len() + 1
    );
}

#[test]
fn a_signature_covers_the_exact_body() {
    let (m, eip) = mock();
    let path = format!("/v2/elastic-ip/{eip}:attach");
    let body = format!(r#"{{"instance":{{"id":"{A}"}}}}"#);
    let exp = soon();
    let s = sig(&secret(), &format!("PUT {path}\n{body}\n\n\n{exp}"));
    let auth = format!("EXO2-HMAC-SHA256 credential={KEY},expires={exp},signature={s}");
    // Same JSON, other bytes: refused.
    let spaced = format!(r#"{{"instance": {{"id": "{A}"}}}}"#);
    assert_eq!(req(&m, "PUT", &path, Some(&auth), Some(&spaced)).0, 403);
    let (status, answer) = req(&m, "PUT", &path, Some(&auth), Some(&body));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json(&answer)["state"], "pending");
}

#[test]
fn attach_and_detach_are_operations_that_complete_later() {
    let (m, eip) = mock();
    m.set_operation_delay(Duration::from_millis(200));
    let body = format!(r#"{{"instance":{{"id":"{A}"}}}}"#);
    let (status, answer) = signed(
        &m,
        "PUT",
        &format!("/v2/elastic-ip/{eip}:attach"),
        Some(&body),
    );
    assert_eq!(status, 200, "{answer}");
    let op = json(&answer);
    let op_id = op["id"].as_str().expect("operation id").to_string();
    assert_eq!(op["state"], "pending");
    assert_eq!(op["reference"]["id"], eip.as_str());
    // Nothing changed yet.
    assert_eq!(m.holders("192.0.2.10"), vec![B.to_string()]);
    let (_, answer) = signed(&m, "GET", &format!("/v2/operation/{op_id}"), None);
    assert_eq!(json(&answer)["state"], "pending");
    assert!(
        m.wait_for(Duration::from_secs(5), |s| s.holders("192.0.2.10").len()
            == 2)
    );
    let (_, answer) = signed(&m, "GET", &format!("/v2/operation/{op_id}"), None);
    assert_eq!(json(&answer)["state"], "success");
    // Attached to both now; the instance read shows it, the list does not.
    let (_, answer) = signed(&m, "GET", &format!("/v2/instance/{A}"), None);
    assert_eq!(
        json(&answer)["elastic-ips"],
        serde_json::json!([{"id": eip}])
    );
    let (_, answer) = signed(&m, "GET", "/v2/instance", None);
    let list = json(&answer);
    assert_eq!(list["instances"].as_array().map(Vec::len), Some(2));
    assert!(list["instances"][0].get("elastic-ips").is_none());
    // Attaching again is refused; detaching from B works.
    let (status, answer) = signed(
        &m,
        "PUT",
        &format!("/v2/elastic-ip/{eip}:attach"),
        Some(&body),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(json(&answer)["message"].is_string());
    let body_b = format!(r#"{{"instance":{{"id":"{B}"}}}}"#);
    let (status, _) = signed(
        &m,
        "PUT",
        &format!("/v2/elastic-ip/{eip}:detach"),
        Some(&body_b),
    );
    assert_eq!(status, 200);
    assert!(m.wait_for(Duration::from_secs(5), |s| s.holders("192.0.2.10") == [A]));
    assert_eq!(m.with_state(|s| s.mutations()), 3);
}

#[test]
fn failures_on_demand() {
    let (m, eip) = mock();
    m.set_operation_delay(Duration::ZERO);
    m.fail_operations(1);
    let body = format!(r#"{{"instance":{{"id":"{A}"}}}}"#);
    let (_, answer) = signed(
        &m,
        "PUT",
        &format!("/v2/elastic-ip/{eip}:attach"),
        Some(&body),
    );
    let op_id = json(&answer)["id"].as_str().expect("id").to_string();
    let (_, answer) = signed(&m, "GET", &format!("/v2/operation/{op_id}"), None);
    let op = json(&answer);
    assert_eq!(op["state"], "failure");
    assert!(op["reason"].is_string());
    assert_eq!(m.holders("192.0.2.10"), vec![B.to_string()]);
    m.set_fault_times(Fault::Status(503, r#"{"message":"maintenance"}"#.into()), 1);
    let (status, answer) = signed(&m, "GET", "/v2/elastic-ip", None);
    assert_eq!(
        (status, json(&answer)["message"].as_str()),
        (503, Some("maintenance"))
    );
    let (status, answer) = signed(&m, "GET", "/v2/elastic-ip", None);
    assert_eq!(status, 200);
    assert_eq!(json(&answer)["elastic-ips"][0]["ip"], "192.0.2.10");
    let (status, _) = signed(
        &m,
        "GET",
        "/v2/instance/00000000-0000-4000-8000-000000000000",
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn holds_five_hundred_instances() {
    let (m, _) = mock();
    m.add_filler_instances(498);
    let (status, answer) = signed(&m, "GET", "/v2/instance", None);
    assert_eq!(status, 200);
    assert_eq!(
        json(&answer)["instances"].as_array().map(Vec::len),
        Some(500)
    );
}

#[test]
fn metadata_serves_exoscale_plain_text_paths() {
    let meta = Metadata::exoscale(Some(A), Some("ch-gva-2")).expect("metadata");
    let url = meta.url();
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let get = |path: &str| req(addr, "GET", path, None, None);
    assert_eq!(get("/1.0/meta-data/instance-id"), (200, A.to_string()));
    assert_eq!(
        get("/latest/meta-data/availability-zone"),
        (200, "ch-gva-2".to_string())
    );
    assert_eq!(get("/openstack/latest/meta_data.json").0, 404);
    meta.set_exoscale_paths(ExoscalePaths::Latest);
    assert_eq!(get("/1.0/meta-data/instance-id").0, 404);
    assert_eq!(get("/latest/meta-data/instance-id"), (200, A.to_string()));
}
