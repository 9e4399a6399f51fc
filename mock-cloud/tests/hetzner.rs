//! The Hetzner Cloud mock over real sockets, checked against the published
//! examples of `docs/cloud-apis-next.md` §1 (bodies, statuses, error
//! bodies, headers) with a raw client, so that what is on the wire is
//! exactly what the test wrote.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mock_cloud::{AssignedConflict, Fault, Hetzner, Metadata};
use serde_json::{json, Value};

use common::shape::{assert_same_format, assert_same_shape};
use common::{send, Answer};

const TOKEN: &str = "hcloud-s3cr3t";
/// Server ids above 2^31, as Floating IP and action ids are.
const A: u64 = 3_000_000_001;
const B: u64 = 3_000_000_002;
const V4: &str = "203.0.113.1";
const V6: &str = "2001:db8:1::/64";

/// §1.3, verbatim.
const PUBLISHED_FLOATING_IP: &str = r#"{"floating_ip":{"id":4711,"name":"Web Frontend","description":"Web Frontend","ip":"131.232.99.1",
 "type":"ipv4","server":42,"dns_ptr":[{"ip":"2001:db8::1","dns_ptr":"server.example.com"}],
 "home_location":{"id":1,"name":"fsn1","description":"Falkenstein DC Park 1","country":"DE",
   "city":"Falkenstein","latitude":50.47612,"longitude":12.370071,"network_zone":"eu-central"},
 "blocked":false,"protection":{"delete":false},"labels":{},"created":"2016-01-30T23:50:00+00:00"}}"#;

/// §1.4, verbatim.
const PUBLISHED_ASSIGN: &str = r#"{"action":{"id":13,"command":"assign_floating_ip","status":"running","progress":0,
 "started":"2016-01-30T23:55:00+00:00","finished":null,
 "resources":[{"id":42,"type":"server"},{"id":4711,"type":"floating_ip"}],"error":null}}"#;

struct Mock {
    m: Hetzner,
    v4: u64,
    v6: u64,
}

fn mock() -> Mock {
    let m = Hetzner::start(TOKEN).expect("mock starts");
    m.add_server(A, "lb-a");
    m.add_server(B, "lb-b");
    let v4 = m.add_floating_ip(V4, Some(A));
    let v6 = m.add_floating_ip(V6, None);
    Mock { m, v4, v6 }
}

fn published(text: &str) -> Value {
    serde_json::from_str(text).expect("published example parses")
}

const AUTH: (&str, &str) = ("Authorization", "Bearer hcloud-s3cr3t");
const JSON: (&str, &str) = ("Content-Type", "application/json");

fn get(m: &Hetzner, target: &str) -> Answer {
    send(m, "GET", target, &[AUTH], None)
}

fn post(m: &Hetzner, target: &str, body: &str) -> Answer {
    send(m, "POST", target, &[AUTH, JSON], Some(body))
}

fn assign(m: &Hetzner, fip: u64, server: u64) -> Answer {
    let body = format!(r#"{{"server":{server}}}"#);
    post(m, &format!("/v1/floating_ips/{fip}/actions/assign"), &body)
}

fn unassign(m: &Hetzner, fip: u64) -> Answer {
    send(
        m,
        "POST",
        &format!("/v1/floating_ips/{fip}/actions/unassign"),
        &[AUTH],
        None,
    )
}

fn action_id(a: &Answer) -> u64 {
    a.json()["action"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no action id in {a:?}"))
}

/// Polls `/v1/actions/{id}` until it is not running (at most 20 times).
fn poll_to_end(m: &Hetzner, id: u64) -> Value {
    for _ in 0..20 {
        let a = get(m, &format!("/v1/actions/{id}")).json()["action"].clone();
        if a["status"] != "running" {
            return a;
        }
    }
    panic!("action {id} still running after 20 polls");
}

/// Hetzner's error body, exactly.
fn error_body(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "details": {}}})
}

fn error_code(a: &Answer) -> String {
    let v = a.json();
    let e = &v["error"];
    assert!(e["message"].is_string(), "{a:?}");
    assert!(e["details"].is_object(), "{a:?}");
    e["code"].as_str().unwrap_or_default().to_string()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[test]
fn url_is_the_api_base_without_a_trailing_slash() {
    let Mock { m, .. } = mock();
    assert_eq!(m.url(), format!("http://127.0.0.1:{}/v1", m.addr().port()));
    let tls = Hetzner::start_tls(TOKEN).expect("tls mock");
    assert_eq!(
        tls.url(),
        format!("https://127.0.0.1:{}/v1", tls.addr().port())
    );
    assert!(tls
        .ca_pem()
        .is_some_and(|p| p.starts_with("-----BEGIN CERTIFICATE-----")));
    assert_eq!(m.ca_pem(), None);
}

#[test]
fn floating_ip_matches_the_published_example() {
    let Mock { m, v4, v6 } = mock();
    let a = get(&m, &format!("/v1/floating_ips/{v4}"));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("Content-Type"), Some("application/json"));
    let ours = a.json();
    let example = published(PUBLISHED_FLOATING_IP);
    assert_same_shape(&example, &ours, "");
    let f = &ours["floating_ip"];
    assert_eq!(f["id"], v4);
    assert!(v4 > 1 << 31, "{v4}");
    assert_eq!(f["ip"], V4);
    assert_eq!(f["type"], "ipv4");
    assert_eq!(f["server"], A);
    assert_eq!(f["blocked"], false);
    assert_eq!(f["protection"], json!({"delete": false}));
    assert_eq!(f["home_location"], example["floating_ip"]["home_location"]);
    assert_eq!(f["dns_ptr"][0]["ip"], V4);
    assert_same_format(
        "2016-01-30T23:50:00+00:00",
        f["created"].as_str().unwrap_or(""),
    );
    // IPv6: a /64 network, unassigned.
    let six = get(&m, &format!("/v1/floating_ips/{v6}")).json();
    let six = &six["floating_ip"];
    assert_eq!(
        (six["ip"].as_str(), six["type"].as_str()),
        (Some(V6), Some("ipv6"))
    );
    assert!(six["server"].is_null());
    // The alternative read: the server's own list.
    let s = get(&m, &format!("/v1/servers/{A}")).json();
    assert_eq!(s["server"]["id"], A);
    assert_eq!(s["server"]["name"], "lb-a");
    assert_eq!(s["server"]["status"], "running");
    assert_eq!(s["server"]["public_net"]["floating_ips"], json!([v4]));
    m.set_blocked(V4, true);
    let f = get(&m, &format!("/v1/floating_ips/{v4}")).json();
    assert_eq!(f["floating_ip"]["blocked"], true);
}

#[test]
fn every_answer_carries_the_rate_limit_and_correlation_headers() {
    let Mock { m, v4, .. } = mock();
    // The documented default: 3600, one back per second.
    let first = get(&m, &format!("/v1/floating_ips/{v4}"));
    assert_eq!(first.number("RateLimit-Limit"), 3600);
    assert_eq!(first.number("RateLimit-Remaining"), 3599);
    let reset = first.number("RateLimit-Reset");
    let now = now_secs();
    assert!((now..=now + 2).contains(&reset), "{reset} vs {now}");
    // No token back within the test, so the count is exact.
    m.set_rate_limit(3600, Duration::from_secs(3600));
    let ok = get(&m, &format!("/v1/floating_ips/{v4}"));
    let missing = get(&m, "/v1/floating_ips/1");
    let unauthenticated = send(&m, "GET", "/v1/floating_ips", &[], None);
    let elsewhere = get(&m, "/v2/nothing");
    for a in [&ok, &missing, &unauthenticated, &elsewhere] {
        assert_eq!(a.header("Content-Type"), Some("application/json"), "{a:?}");
        assert_eq!(a.number("RateLimit-Limit"), 3600, "{a:?}");
        let id = a.header("X-Correlation-Id").unwrap_or_default();
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{a:?}"
        );
        assert!(a.header("Retry-After").is_none(), "{a:?}");
    }
    assert_eq!(
        [&ok, &missing, &unauthenticated, &elsewhere].map(|a| a.number("RateLimit-Remaining")),
        [3599, 3598, 3597, 3596]
    );
    assert_eq!(
        [&missing, &unauthenticated, &elsewhere].map(|a| a.status),
        [404, 401, 404]
    );
    assert_ne!(
        ok.header("X-Correlation-Id"),
        missing.header("X-Correlation-Id")
    );
    // Full recovery is an hour per spent request away.
    let reset = elsewhere.number("RateLimit-Reset");
    let now = now_secs();
    assert!(
        (now + 4 * 3600 - 2..=now + 4 * 3600 + 1).contains(&reset),
        "{reset} vs {now}"
    );
    let log: Vec<Option<u64>> = m.requests().iter().map(|r| r.rate_remaining).collect();
    assert_eq!(
        log,
        [Some(3599), Some(3599), Some(3598), Some(3597), Some(3596)]
    );
}

#[test]
fn assign_answers_the_published_action_and_moves_only_when_it_ends() {
    let Mock { m, v4, .. } = mock();
    let a = assign(&m, v4, B);
    assert_eq!(a.status, 201, "{a:?}");
    let ours = a.json();
    assert_same_shape(&published(PUBLISHED_ASSIGN), &ours, "");
    let action = &ours["action"];
    let id = action_id(&a);
    assert!(id > 1 << 31, "{id}");
    assert_eq!(action["command"], "assign_floating_ip");
    assert_eq!(action["status"], "running");
    assert_eq!(action["progress"], 0);
    assert!(action["finished"].is_null());
    assert!(action["error"].is_null());
    assert_eq!(
        action["resources"],
        json!([{"id": B, "type": "server"}, {"id": v4, "type": "floating_ip"}])
    );
    assert_same_format(
        "2016-01-30T23:55:00+00:00",
        action["started"].as_str().unwrap_or(""),
    );
    let request = m.requests().pop().expect("logged");
    assert_eq!(request.body, format!(r#"{{"server":{B}}}"#));
    // Two polls (either route) answer running; the address has not moved.
    assert_eq!(m.server_of(V4), Some(A));
    let first = get(&m, &format!("/v1/actions/{id}")).json();
    assert_eq!(first["action"]["status"], "running");
    let second = get(&m, &format!("/v1/floating_ips/{v4}/actions/{id}")).json();
    assert_eq!(second["action"]["status"], "running");
    assert_eq!(m.server_of(V4), Some(A));
    let read = get(&m, &format!("/v1/floating_ips/{v4}")).json();
    assert_eq!(read["floating_ip"]["server"], A);
    // The third ends it, and the address moves at that moment.
    let third = get(&m, &format!("/v1/floating_ips/actions/{id}")).json();
    let done = &third["action"];
    assert_eq!(done["status"], "success");
    assert_eq!(done["progress"], 100);
    assert!(done["error"].is_null());
    assert_same_format(
        "2016-01-30T23:55:00+00:00",
        done["finished"].as_str().unwrap_or(""),
    );
    assert_eq!(m.server_of(V4), Some(B));
    let read = get(&m, &format!("/v1/floating_ips/{v4}")).json();
    assert_eq!(read["floating_ip"]["server"], B);
    let b = get(&m, &format!("/v1/servers/{B}")).json();
    assert_eq!(b["server"]["public_net"]["floating_ips"], json!([v4]));
    let a_now = get(&m, &format!("/v1/servers/{A}")).json();
    assert_eq!(a_now["server"]["public_net"]["floating_ips"], json!([]));
    // An action of another Floating IP is not found under this one.
    assert_eq!(
        get(&m, &format!("/v1/floating_ips/{}/actions/{id}", v4 + 1)).status,
        404
    );
    assert_eq!(m.assign_count(V4), 1);
}

#[test]
fn unassign_is_an_action_too() {
    let Mock { m, v4, .. } = mock();
    m.set_action_polls(0);
    let a = unassign(&m, v4);
    assert_eq!(a.status, 201, "{a:?}");
    let action = &a.json()["action"];
    assert_eq!(action["command"], "unassign_floating_ip");
    assert_eq!(
        action["resources"],
        json!([{"id": A, "type": "server"}, {"id": v4, "type": "floating_ip"}])
    );
    assert_eq!(m.server_of(V4), Some(A));
    assert_eq!(poll_to_end(&m, action_id(&a))["status"], "success");
    assert_eq!(m.server_of(V4), None);
    assert_eq!(m.assign_count(V4), 0);
}

#[test]
fn a_second_action_while_one_runs_is_locked() {
    let Mock { m, v4, v6 } = mock();
    let first = assign(&m, v4, B);
    assert_eq!(first.status, 201);
    for again in [assign(&m, v4, A), assign(&m, v4, B), unassign(&m, v4)] {
        assert_eq!(again.status, 423, "{again:?}");
        assert_eq!(error_code(&again), "locked");
        assert_eq!(again.json()["error"]["details"], json!({}));
    }
    // Another Floating IP is not locked by it.
    assert_eq!(assign(&m, v6, A).status, 201);
    assert_eq!(poll_to_end(&m, action_id(&first))["status"], "success");
    assert_eq!(m.server_of(V4), Some(B));
    assert_eq!(assign(&m, v4, A).status, 201);
    assert_eq!(m.assign_count(V4), 4);
}

#[test]
fn unpolled_actions_end_by_the_clock() {
    let Mock { m, v4, .. } = mock();
    m.set_action_timeout(Duration::from_millis(100));
    let a = assign(&m, v4, B);
    assert_eq!(a.status, 201);
    assert_eq!(m.server_of(V4), Some(A));
    assert!(m.wait_for(Duration::from_secs(5), |s| s.server_of(V4) == Some(B)));
    let read = get(&m, &format!("/v1/actions/{}", action_id(&a))).json();
    assert_eq!(read["action"]["status"], "success");
    assert_eq!(m.with_state(|s| s.running_actions()), 0);
}

#[test]
fn the_default_clock_is_five_seconds() {
    let Mock { m, v4, .. } = mock();
    let started = Instant::now();
    assert_eq!(assign(&m, v4, B).status, 201);
    assert!(m.wait_for(Duration::from_secs(10), |s| s.server_of(V4) == Some(B)));
    let took = started.elapsed();
    assert!(
        (Duration::from_millis(4900)..Duration::from_secs(8)).contains(&took),
        "{took:?}"
    );
}

#[test]
fn failed_actions_say_error_and_leave_the_address() {
    let Mock { m, v4, .. } = mock();
    m.set_action_polls(0);
    m.fail_actions(1);
    let a = assign(&m, v4, B);
    // The 201 looks like any other.
    assert_eq!(a.status, 201);
    assert_eq!(a.json()["action"]["status"], "running");
    assert!(a.json()["action"]["error"].is_null());
    let end = poll_to_end(&m, action_id(&a));
    assert_eq!(end["status"], "error");
    assert_eq!(
        end["error"],
        json!({"code": "action_failed", "message": "Floating IP assignment failed"})
    );
    assert!(end["finished"].is_string());
    assert_eq!(m.server_of(V4), Some(A));
    // Only the next one failed.
    let again = assign(&m, v4, B);
    assert_eq!(poll_to_end(&m, action_id(&again))["status"], "success");
    assert_eq!(m.server_of(V4), Some(B));
}

#[test]
fn assigned_conflict_modes() {
    let Mock { m, v4, .. } = mock();
    m.set_action_polls(0);
    let conflict = error_body(
        "floating_ip_assigned",
        "The Floating IP is already assigned",
    );
    // SameServer (the default): only the holder is refused.
    let same = assign(&m, v4, A);
    assert_eq!((same.status, same.json()), (422, conflict.clone()));
    let other = assign(&m, v4, B);
    assert_eq!(other.status, 201, "{other:?}");
    assert_eq!(poll_to_end(&m, action_id(&other))["status"], "success");
    assert_eq!(m.server_of(V4), Some(B));

    // AnyServer: an assigned address must be unassigned first.
    m.set_assigned_conflict(AssignedConflict::AnyServer);
    let any = assign(&m, v4, A);
    assert_eq!((any.status, any.json()), (422, conflict.clone()));
    assert_eq!(m.server_of(V4), Some(B));
    let off = unassign(&m, v4);
    assert_eq!(poll_to_end(&m, action_id(&off))["status"], "success");
    let on = assign(&m, v4, A);
    assert_eq!(on.status, 201, "{on:?}");
    assert_eq!(poll_to_end(&m, action_id(&on))["status"], "success");
    assert_eq!(m.server_of(V4), Some(A));

    // Never: assigning to the holder is an action that changes nothing.
    m.set_assigned_conflict(AssignedConflict::Never);
    let again = assign(&m, v4, A);
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(poll_to_end(&m, action_id(&again))["status"], "success");
    assert_eq!(m.server_of(V4), Some(A));
    assert_eq!(m.assign_count(V4), 5);
}

#[test]
fn actions_are_read_in_batches_by_id_only() {
    let Mock { m, v4, v6 } = mock();
    let one = action_id(&assign(&m, v4, B));
    let two = action_id(&assign(&m, v6, A));
    let a = get(
        &m,
        &format!("/v1/actions?id={one}&id={two}&id=999&sort=status&sort=id"),
    );
    assert_eq!(a.status, 200, "{a:?}");
    let v = a.json();
    let ids: Vec<u64> = v["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|x| x["id"].as_u64())
        .collect();
    // The unknown id is left out, as hcloud-go's waiter expects.
    assert_eq!(ids, [one, two]);
    assert_eq!(v["actions"][0]["command"], "assign_floating_ip");
    assert_eq!(v["meta"]["pagination"]["total_entries"], 2);
    // A batch read counts as a poll of each: two more and they end.
    get(&m, &format!("/v1/actions?id={one}&id={two}"));
    let v = get(&m, &format!("/v1/actions?id={one}&id={two}")).json();
    assert_eq!(v["actions"][0]["status"], "success");
    assert_eq!(v["actions"][1]["status"], "success");
    assert_eq!((m.server_of(V4), m.server_of(V6)), (Some(B), Some(A)));
    // Listing every action was removed in 2025.
    let all = get(&m, "/v1/actions");
    assert_eq!(
        (all.status, error_code(&all).as_str()),
        (400, "invalid_input")
    );
    assert_eq!(all.json()["error"]["details"]["fields"][0]["name"], "id");
    let bad = get(&m, "/v1/actions?id=abc");
    assert_eq!(
        (bad.status, error_code(&bad).as_str()),
        (400, "invalid_input")
    );
    assert_eq!(get(&m, "/v1/actions/999").status, 404);
}

#[test]
fn pagination_follows_next_page() {
    let Mock { m, v4, v6 } = mock();
    m.add_filler_floating_ips(110);
    let mut seen = Vec::new();
    let mut page = Some(1u64);
    let mut pages = 0;
    while let Some(p) = page {
        let v = get(&m, &format!("/v1/floating_ips?page={p}")).json();
        let meta = &v["meta"]["pagination"];
        assert_eq!(meta["page"], p);
        assert_eq!(meta["per_page"], 25);
        assert_eq!(meta["last_page"], 5);
        assert_eq!(meta["total_entries"], 112);
        assert_eq!(
            meta["previous_page"],
            if p == 1 { json!(null) } else { json!(p - 1) }
        );
        let list = v["floating_ips"].as_array().expect("list");
        assert_eq!(list.len(), if p < 5 { 25 } else { 12 }, "page {p}");
        seen.extend(list.iter().filter_map(|f| f["id"].as_u64()));
        page = meta["next_page"].as_u64();
        pages += 1;
        assert!(pages <= 5, "next_page never ends");
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 112);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 112);
    assert!(seen.contains(&v4) && seen.contains(&v6));
    let v = get(&m, "/v1/floating_ips?page=5").json();
    assert!(v["meta"]["pagination"]["next_page"].is_null());
    // More than 50 per page is cut to 50.
    let v = get(&m, "/v1/floating_ips?per_page=100").json();
    assert_eq!(v["floating_ips"].as_array().map(Vec::len), Some(50));
    assert_eq!(v["meta"]["pagination"]["per_page"], 50);
    assert_eq!(v["meta"]["pagination"]["last_page"], 3);
    // Beyond the last page: empty, not an error.
    let v = get(&m, "/v1/floating_ips?page=9").json();
    assert_eq!(v["floating_ips"], json!([]));
    for bad in ["page=0", "page=x", "per_page=-1"] {
        let a = get(&m, &format!("/v1/floating_ips?{bad}"));
        assert_eq!(
            (a.status, error_code(&a).as_str()),
            (400, "invalid_input"),
            "{bad}"
        );
        assert!(a.json()["error"]["details"]["fields"][0]["messages"][0].is_string());
    }
    // The name filter.
    m.set_floating_ip_name(V4, "web-frontend");
    let v = get(&m, "/v1/floating_ips?name=web-frontend").json();
    assert_eq!(v["floating_ips"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["floating_ips"][0]["ip"], V4);
    assert_eq!(v["floating_ips"][0]["name"], "web-frontend");
    let v = get(&m, "/v1/servers?name=lb-b").json();
    assert_eq!(v["servers"][0]["id"], B);
    assert_eq!(v["meta"]["pagination"]["total_entries"], 1);
}

#[test]
fn bearer_tokens() {
    let Mock { m, v4, .. } = mock();
    let unauthorized = error_body("unauthorized", "unable to authenticate");
    for headers in [
        &[][..],
        &[("Authorization", "Bearer wrong")],
        &[("Authorization", "Basic aGNsb3VkLXMzY3IzdA==")],
        &[("Authorization", "Bearer")],
    ] {
        let a = send(&m, "GET", "/v1/floating_ips", headers, None);
        assert_eq!(
            (a.status, a.json()),
            (401, unauthorized.clone()),
            "{headers:?}"
        );
    }
    // The scheme is case-insensitive.
    let lower = send(
        &m,
        "GET",
        "/v1/floating_ips",
        &[("Authorization", "bearer hcloud-s3cr3t")],
        None,
    );
    assert_eq!(lower.status, 200);
    // A read-only token reads, and every POST is refused.
    m.add_token("ro", false);
    let ro = ("Authorization", "Bearer ro");
    assert_eq!(send(&m, "GET", "/v1/floating_ips", &[ro], None).status, 200);
    let readonly = error_body("token_readonly", "The token is read-only");
    for path in ["assign", "unassign"] {
        let a = send(
            &m,
            "POST",
            &format!("/v1/floating_ips/{v4}/actions/{path}"),
            &[ro, JSON],
            Some(&format!(r#"{{"server":{B}}}"#)),
        );
        assert_eq!((a.status, a.json()), (403, readonly.clone()), "{path}");
    }
    assert_eq!(m.server_of(V4), Some(A));
    assert_eq!(m.assign_count(V4), 1);
    m.revoke_token("ro");
    let a = send(&m, "GET", "/v1/floating_ips", &[ro], None);
    assert_eq!((a.status, a.json()), (401, unauthorized));
}

#[test]
fn bad_requests_and_unknown_ids() {
    let Mock { m, v4, .. } = mock();
    let path = format!("/v1/floating_ips/{v4}/actions/assign");
    for (target, what) in [
        ("/v1/floating_ips/4000009999", "unknown Floating IP"),
        ("/v1/floating_ips/web", "non-numeric id"),
        ("/v1/floating_ips/-1", "negative id"),
        ("/v1/floating_ips/99999999999999999999", "beyond int64"),
        ("/v1/servers/42", "unknown server"),
        ("/v1/actions/42", "unknown action"),
        ("/v1/nothing", "unknown route"),
        ("/v1/actions/+6000000001", "signed action id"),
        (
            "/v1/floating_ips/4000000001/actions",
            "an unserved GET route",
        ),
    ] {
        let a = get(&m, target);
        assert_eq!(
            (a.status, error_code(&a).as_str()),
            (404, "not_found"),
            "{what}"
        );
    }
    let missing = post(
        &m,
        "/v1/floating_ips/4000009999/actions/assign",
        r#"{"server":1}"#,
    );
    assert_eq!(missing.status, 404);
    // The body: a field error names the field.
    for (body, status) in [
        (r#"{}"#, 400),
        (r#"{"server":"3000000002"}"#, 400),
        (r#"{"server":-1}"#, 400),
        (r#"{"server":1.5}"#, 400),
        (r#"{"server":null}"#, 400),
        (r#"{"server":42}"#, 422),
    ] {
        let a = post(&m, &path, body);
        assert_eq!(
            (a.status, error_code(&a).as_str()),
            (status, "invalid_input"),
            "{body}"
        );
        assert_eq!(
            a.json()["error"]["details"]["fields"][0]["name"],
            "server",
            "{body}"
        );
    }
    for body in ["{not json", "[1]"] {
        let a = post(&m, &path, body);
        assert_eq!(
            (a.status, error_code(&a).as_str()),
            (400, "invalid_input"),
            "{body}"
        );
        assert!(a.json()["error"]["details"]["fields"].is_array(), "{body}");
    }
    // A body must say it is JSON (400, not 415: see the mock).
    let plain = send(
        &m,
        "POST",
        &path,
        &[AUTH, ("Content-Type", "text/plain")],
        Some(&format!(r#"{{"server":{B}}}"#)),
    );
    assert_eq!(
        (plain.status, error_code(&plain).as_str()),
        (400, "invalid_input")
    );
    let undeclared = send(
        &m,
        "POST",
        &path,
        &[AUTH],
        Some(&format!(r#"{{"server":{B}}}"#)),
    );
    assert_eq!(undeclared.status, 400);
    // A charset parameter is fine.
    let charset = send(
        &m,
        "POST",
        &path,
        &[AUTH, ("Content-Type", "application/json; charset=utf-8")],
        Some(&format!(r#"{{"server":{B}}}"#)),
    );
    assert_eq!(charset.status, 201, "{charset:?}");
    // Methods the mock does not serve.
    let delete = send(
        &m,
        "DELETE",
        &format!("/v1/floating_ips/{v4}"),
        &[AUTH],
        None,
    );
    assert_eq!(delete.status, 405);
    assert!(!error_code(&delete).is_empty());
    assert_eq!(m.server_of(V4), Some(A));
    assert_eq!(m.assign_count(V4), 11);
}

#[test]
fn the_bucket_runs_out_and_refills() {
    let Mock { m, v4, .. } = mock();
    m.set_rate_limit(3, Duration::from_secs(3600));
    let a = get(&m, &format!("/v1/floating_ips/{v4}"));
    let b = send(&m, "GET", "/v1/floating_ips", &[], None);
    let c = assign(&m, v4, B);
    assert_eq!([a.status, b.status, c.status], [200, 401, 201]);
    for (answer, left) in [(&a, 2), (&b, 1), (&c, 0)] {
        assert_eq!(answer.number("RateLimit-Limit"), 3);
        assert_eq!(answer.number("RateLimit-Remaining"), left);
    }
    let spent = get(&m, &format!("/v1/actions/{}", action_id(&c)));
    assert_eq!(spent.status, 429);
    assert_eq!(
        spent.json(),
        error_body(
            "rate_limit_exceeded",
            "limit of 3 requests per hour reached"
        )
    );
    assert_eq!(spent.number("RateLimit-Remaining"), 0);
    assert!(spent.header("Retry-After").is_none(), "{spent:?}");
    assert!(spent.header("X-Correlation-Id").is_some());
    // Full recovery: three tokens, an hour each.
    let reset = spent.number("RateLimit-Reset");
    let now = now_secs();
    assert!(
        (now + 3 * 3600 - 2..=now + 3 * 3600 + 1).contains(&reset),
        "{reset} vs {now}"
    );
    // A refused poll does not advance the action.
    assert_eq!(m.with_state(|s| s.running_actions()), 1);
    let log: Vec<Option<u64>> = m.requests().iter().map(|r| r.rate_remaining).collect();
    assert_eq!(log, [Some(2), Some(1), Some(0), Some(0)]);
    assert_eq!(m.rate_remaining(), 0);

    // With a token back every 200 ms: spend it, get refused, then served
    // again once it came back.
    m.set_rate_limit(1, Duration::from_millis(200));
    let mut refused_at = None;
    for _ in 0..50 {
        let a = get(&m, "/v1/floating_ips");
        if a.status == 429 {
            refused_at = Some(Instant::now());
            break;
        }
        assert_eq!(a.status, 200);
    }
    let refused_at = refused_at.expect("a 429 within 50 quick requests");
    let deadline = Instant::now() + Duration::from_secs(5);
    let served = loop {
        let a = get(&m, "/v1/floating_ips");
        if a.status == 200 {
            break a;
        }
        assert_eq!(a.status, 429);
        assert!(Instant::now() < deadline, "no token came back");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(served.number("RateLimit-Remaining"), 0);
    assert!(refused_at.elapsed() < Duration::from_secs(5));
}

#[test]
fn faults_come_before_the_budget_and_the_api() {
    let Mock { m, v4, .. } = mock();
    m.set_rate_limit(3600, Duration::from_secs(3600));
    let body = r#"{"error":{"code":"unavailable","message":"maintenance","details":{}}}"#;
    m.set_fault_times(Fault::Status(503, body.into()), 1);
    let a = get(&m, &format!("/v1/floating_ips/{v4}"));
    assert_eq!((a.status, a.body.as_str()), (503, body));
    assert!(a.header("RateLimit-Remaining").is_none());
    assert_eq!(m.rate_remaining(), 3600);
    assert_eq!(get(&m, &format!("/v1/floating_ips/{v4}")).status, 200);

    m.set_fault_on("POST", Fault::Maintenance503, Some(1));
    assert_eq!(get(&m, "/v1/floating_ips").status, 200);
    assert_eq!(assign(&m, v4, B).status, 503);
    assert_eq!(m.server_of(V4), Some(A));
    assert_eq!(m.with_state(|s| s.running_actions()), 0);
    assert_eq!(m.assign_count(V4), 1);

    m.set_fault(Fault::Reset);
    assert_eq!(get(&m, "/v1/floating_ips").status, 0);
    m.set_fault(Fault::Garbage);
    let g = get(&m, "/v1/floating_ips");
    assert_eq!(g.status, 200);
    assert!(serde_json::from_str::<Value>(&g.body).is_err());
    m.set_fault(Fault::TooMany {
        retry_after_secs: 9,
    });
    assert_eq!(get(&m, "/v1/floating_ips").header("Retry-After"), Some("9"));
    m.clear_fault();
    assert_eq!(get(&m, "/v1/floating_ips").status, 200);
    let log = m.requests();
    let remaining: Vec<Option<u64>> = log.iter().map(|r| r.rate_remaining).collect();
    assert_eq!(
        remaining,
        [
            None,
            Some(3599),
            Some(3598),
            None,
            None,
            None,
            None,
            Some(3597)
        ]
    );
    assert_eq!(log[4].status, None);
}

#[test]
fn ipv6_networks_and_addresses_inside_them() {
    let Mock { m, v6, .. } = mock();
    assert_eq!(m.floating_ip_id(V6), Some(v6));
    assert_eq!(m.floating_ip_id("2001:db8:1::42"), Some(v6));
    assert_eq!(m.floating_ip_id("2001:0db8:0001::/64"), Some(v6));
    assert_eq!(m.floating_ip_id("2001:db8:2::1"), None);
    m.set_action_polls(0);
    let a = assign(&m, v6, B);
    assert_eq!(poll_to_end(&m, action_id(&a))["status"], "success");
    assert_eq!(m.server_of("2001:db8:1::1"), Some(B));
    assert_eq!(m.server_of(V6), Some(B));
    assert_eq!(m.assign_count("2001:db8:1::1"), 1);
}

#[test]
fn ids_above_two_to_the_31_round_trip() {
    let m = Hetzner::start(TOKEN).expect("mock");
    let big = 9_007_199_254_740_993; // 2^53 + 1: not even a double holds it.
    m.add_server(big, "big");
    let fip = m.add_floating_ip("198.51.100.7", None);
    assert!(fip > u64::from(u32::MAX) / 2, "{fip}");
    m.set_action_polls(0);
    let a = assign(&m, fip, big);
    assert_eq!(a.status, 201, "{a:?}");
    assert!(a.body.contains(&format!(r#""id":{big}"#)), "{}", a.body);
    assert_eq!(poll_to_end(&m, action_id(&a))["status"], "success");
    assert_eq!(m.server_of("198.51.100.7"), Some(big));
    let read = get(&m, &format!("/v1/floating_ips/{fip}"));
    assert!(
        read.body.contains(&format!(r#""server":{big}"#)),
        "{}",
        read.body
    );
    let s = get(&m, &format!("/v1/servers/{big}"));
    assert!(
        s.body.contains(&format!(r#""floating_ips":[{fip}]"#)),
        "{}",
        s.body
    );
}

#[test]
fn out_of_band_moves_and_control_routes() {
    let Mock { m, v4, .. } = mock();
    m.set_rate_limit(3600, Duration::from_secs(3600));
    m.set_server_of(V4, Some(B));
    assert_eq!(
        get(&m, &format!("/v1/floating_ips/{v4}")).json()["floating_ip"]["server"],
        B
    );
    let state = send(&m, "GET", "/_mock/state", &[], None);
    assert_eq!(state.status, 200);
    assert_eq!(state.json(), json!({V4: B, V6: null}));
    let moved = send(
        &m,
        "PUT",
        "/_mock/floating_ips/2001:db8:1::/64",
        &[JSON],
        Some(&format!(r#"{{"server":{A}}}"#)),
    );
    assert_eq!(moved.status, 204, "{moved:?}");
    assert_eq!(m.server_of(V6), Some(A));
    let fault = send(
        &m,
        "PUT",
        "/_mock/fault",
        &[JSON],
        Some(r#"{"fault":"status","status":502,"times":1}"#),
    );
    assert_eq!(fault.status, 204);
    assert_eq!(get(&m, "/v1/floating_ips").status, 502);
    assert_eq!(get(&m, "/v1/floating_ips").status, 200);
    // Control routes are neither charged nor logged.
    assert_eq!(m.requests().len(), 3);
    assert_eq!(m.rate_remaining(), 3598);
    assert_eq!(send(&m, "GET", "/_mock/nothing", &[], None).status, 404);
}

#[test]
fn wait_for_sees_changes_from_other_threads() {
    let Mock { m, .. } = mock();
    let other = m.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        other.set_server_of(V4, Some(B));
    });
    assert!(m.wait_for(Duration::from_secs(5), |s| s.server_of(V4) == Some(B)));
    t.join().expect("thread");
    assert!(!m.wait_for(Duration::from_millis(30), |s| !s.requests().is_empty()));
}

#[test]
fn metadata_serves_plain_text_keys_and_a_yaml_summary() {
    let meta = Metadata::hetzner(42).expect("metadata");
    let url = meta.url();
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let get = |path: &str| common::req(addr, "GET", path, None, None);
    assert_eq!(
        get("/hetzner/v1/metadata/instance-id"),
        (200, "42".to_string())
    );
    assert_eq!(
        get("/hetzner/v1/metadata/region"),
        (200, "eu-central".to_string())
    );
    assert_eq!(
        get("/hetzner/v1/metadata/availability-zone"),
        (200, "fsn1-dc14".to_string())
    );
    assert_eq!(
        get("/hetzner/v1/metadata/hostname"),
        (200, "mock-server-42".to_string())
    );
    let (status, yaml) = get("/hetzner/v1/metadata");
    assert_eq!(status, 200);
    for line in [
        "instance-id: 42",
        "region: eu-central",
        "availability-zone: fsn1-dc14",
    ] {
        assert!(yaml.lines().any(|l| l == line), "{line} in {yaml}");
    }
    assert_eq!(get("/hetzner/v1/metadata/nothing").0, 404);
    assert_eq!(get("/openstack/latest/meta_data.json").0, 404);
    meta.set_fault_times(Fault::Reset, 1);
    assert_eq!(get("/hetzner/v1/metadata/instance-id").0, 0);
    assert_eq!(get("/hetzner/v1/metadata/instance-id").0, 200);
    assert_eq!(meta.requests().len(), 9);
}
