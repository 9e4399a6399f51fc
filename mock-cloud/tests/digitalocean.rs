//! The DigitalOcean mock over real sockets, checked against the published
//! examples of `docs/cloud-apis-next.md` §2 (bodies, statuses, error
//! bodies, headers) with a raw client.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mock_cloud::{DigitalOcean, Fault, Metadata};
use serde_json::{json, Value};

use common::shape::{assert_same_format, assert_same_shape};
use common::{send, Answer};

const TOKEN: &str = "dop_v1_s3cr3t";
/// Droplet ids above 2^31.
const D1: u64 = 3_000_000_001;
const D2: u64 = 3_000_000_002;
const D3: u64 = 3_000_000_003;
/// On D1.
const HELD: &str = "203.0.113.10";
/// On nothing.
const FREE: &str = "203.0.113.20";
const V6: &str = "2001:db8::10";

/// §2.3, verbatim except the region, which the publication elides
/// (`{…}`; an empty object here matches any).
const PUBLISHED_ACTION: &str = r#"{"action":{"id":72531856,"status":"completed","type":"assign_ip","started_at":"2015-11-12T17:51:03Z",
 "completed_at":"2015-11-12T17:51:14Z","resource_id":758604968,"resource_type":"reserved_ip",
 "region":{},"region_slug":"nyc3","project_id":"746c6152-2fa2-11ed-92d3-27aaa54e4988"}}"#;

fn mock() -> DigitalOcean {
    let m = DigitalOcean::start(TOKEN).expect("mock starts");
    m.add_droplet(D1, "lb-a");
    m.add_droplet(D2, "lb-b");
    m.add_droplet(D3, "lb-c");
    m.add_reserved_ip(HELD, Some(D1));
    m.add_reserved_ip(FREE, None);
    m.add_reserved_ip(V6, None);
    m
}

const AUTH: (&str, &str) = ("Authorization", "Bearer dop_v1_s3cr3t");
const JSON: (&str, &str) = ("Content-Type", "application/json");

fn get(m: &DigitalOcean, target: &str) -> Answer {
    send(m, "GET", target, &[AUTH], None)
}

fn act(m: &DigitalOcean, ip: &str, body: &str) -> Answer {
    let family = if ip.contains(':') {
        "reserved_ipv6"
    } else {
        "reserved_ips"
    };
    send(
        m,
        "POST",
        &format!("/v2/{family}/{ip}/actions"),
        &[AUTH, JSON],
        Some(body),
    )
}

fn assign(m: &DigitalOcean, ip: &str, droplet: u64) -> Answer {
    act(
        m,
        ip,
        &format!(r#"{{"type":"assign","droplet_id":{droplet}}}"#),
    )
}

fn action_id(a: &Answer) -> u64 {
    a.json()["action"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no action id in {a:?}"))
}

/// Polls `/v2/actions/{id}` until it is not in progress (at most 20 times).
fn poll_to_end(m: &DigitalOcean, id: u64) -> Value {
    for _ in 0..20 {
        let a = get(m, &format!("/v2/actions/{id}")).json()["action"].clone();
        if a["status"] != "in-progress" {
            return a;
        }
    }
    panic!("action {id} still in progress after 20 polls");
}

/// An error answer: the published `id` and `message`, and the request's id
/// in the body as in the `x-request-id` header.
fn assert_error(a: &Answer, status: u16, id: &str, message: Option<&str>) {
    assert_eq!(a.status, status, "{a:?}");
    let v = a.json();
    assert_eq!(v["id"], id, "{a:?}");
    match message {
        Some(text) => assert_eq!(v["message"], text, "{a:?}"),
        None => assert!(
            v["message"].as_str().is_some_and(|t| !t.is_empty()),
            "{a:?}"
        ),
    }
    let rid = a.header("x-request-id").expect("x-request-id");
    assert_eq!(v["request_id"], rid, "{a:?}");
    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 3, "{a:?}");
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[test]
fn url_is_the_api_base_without_a_trailing_slash() {
    let m = mock();
    assert_eq!(m.url(), format!("http://127.0.0.1:{}/v2", m.addr().port()));
    let tls = DigitalOcean::start_tls(TOKEN).expect("tls mock");
    assert!(tls.url().starts_with("https://127.0.0.1:") && tls.url().ends_with("/v2"));
    assert!(tls.ca_pem().is_some());
}

#[test]
fn reserved_ip_read() {
    let m = mock();
    let a = get(&m, &format!("/v2/reserved_ips/{HELD}"));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("content-type"), Some("application/json"));
    let v = a.json();
    assert_eq!(v["links"], json!({}));
    let r = &v["reserved_ip"];
    let mut keys: Vec<&String> = r.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["droplet", "ip", "locked", "project_id", "region"]);
    assert_eq!(r["ip"], HELD);
    assert_eq!(r["locked"], false);
    assert_eq!(r["project_id"], "746c6152-2fa2-11ed-92d3-27aaa54e4988");
    // The full region object.
    assert_eq!(r["region"]["slug"], "nyc3");
    assert_eq!(r["region"]["name"], "New York 3");
    assert_eq!(r["region"]["available"], true);
    assert!(r["region"]["features"]
        .as_array()
        .is_some_and(|f| !f.is_empty()));
    assert!(r["region"]["sizes"]
        .as_array()
        .is_some_and(|s| !s.is_empty()));
    // The full droplet object; its id is what a client compares.
    let d = &r["droplet"];
    assert_eq!(d["id"], D1);
    assert_eq!(d["name"], "lb-a");
    assert_eq!(d["status"], "active");
    assert_eq!(d["locked"], false);
    for field in ["memory", "vcpus", "disk"] {
        assert!(d[field].is_u64(), "{field}");
    }
    assert_eq!(d["region"]["slug"], "nyc3");
    let free = get(&m, &format!("/v2/reserved_ips/{FREE}")).json();
    assert!(free["reserved_ip"]["droplet"].is_null());
    // The same address under the old name.
    let old = get(&m, &format!("/v2/floating_ips/{HELD}")).json();
    assert_eq!(old["floating_ip"]["droplet"]["id"], D1);
    // And the droplet itself.
    let d = get(&m, &format!("/v2/droplets/{D1}")).json();
    assert_eq!(d["droplet"]["id"], D1);
}

#[test]
fn assign_answers_the_published_action_and_moves_only_when_it_completes() {
    let m = mock();
    let a = assign(&m, FREE, D2);
    assert_eq!(a.status, 201, "{a:?}");
    let example: Value = serde_json::from_str(PUBLISHED_ACTION).expect("example");
    let ours = a.json();
    // In progress, completed_at is null where the example has a time.
    let mut pending_example = example.clone();
    pending_example["action"]["completed_at"] = Value::Null;
    assert_same_shape(&pending_example, &ours, "");
    let action = &ours["action"];
    let id = action_id(&a);
    assert!(id > 1 << 31, "{id}");
    assert_eq!(action["status"], "in-progress");
    assert_eq!(action["type"], "assign_ip");
    assert_eq!(action["resource_type"], "reserved_ip");
    assert_eq!(action["region_slug"], "nyc3");
    assert_eq!(action["region"]["slug"], "nyc3");
    assert_eq!(action["project_id"], example["action"]["project_id"]);
    // An IPv4 reserved IP's resource id is the address as a number.
    assert_eq!(action["resource_id"], 0xcb00_7114_u64);
    assert!(action["completed_at"].is_null());
    assert_same_format(
        "2015-11-12T17:51:03Z",
        action["started_at"].as_str().unwrap_or(""),
    );

    // While it is pending the address reads locked, with a link to it, and
    // has not moved.
    let read = get(&m, &format!("/v2/reserved_ips/{FREE}")).json();
    assert_eq!(read["reserved_ip"]["locked"], true);
    assert!(read["reserved_ip"]["droplet"].is_null());
    let link = &read["links"]["actions"][0];
    assert_eq!(link["id"], id);
    assert_eq!(link["rel"], "assign_ip");
    assert_eq!(link["href"], format!("{}/actions/{id}", m.url()));
    // Two polls (either route) answer in progress, the third completes.
    let first = get(&m, &format!("/v2/actions/{id}")).json();
    assert_eq!(first["action"]["status"], "in-progress");
    let second = get(&m, &format!("/v2/reserved_ips/{FREE}/actions/{id}")).json();
    assert_eq!(second["action"]["status"], "in-progress");
    assert_eq!(m.droplet_of(FREE), None);
    let third = get(&m, &format!("/v2/actions/{id}")).json();
    assert_same_shape(&example, &third, "");
    assert_eq!(third["action"]["status"], "completed");
    assert_same_format(
        "2015-11-12T17:51:14Z",
        third["action"]["completed_at"].as_str().unwrap_or(""),
    );
    assert_eq!(m.droplet_of(FREE), Some(D2));
    let read = get(&m, &format!("/v2/reserved_ips/{FREE}")).json();
    assert_eq!(read["reserved_ip"]["locked"], false);
    assert_eq!(read["reserved_ip"]["droplet"]["id"], D2);
    assert_eq!(read["links"], json!({}));
    // An action is not found under another address.
    assert_eq!(
        get(&m, &format!("/v2/reserved_ips/{HELD}/actions/{id}")).status,
        404
    );
    assert_eq!(m.assign_count(FREE), 1);
}

#[test]
fn unassign_is_an_action_too() {
    let m = mock();
    m.set_action_polls(0);
    let a = act(&m, HELD, r#"{"type":"unassign"}"#);
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.json()["action"]["type"], "unassign_ip");
    assert_eq!(m.droplet_of(HELD), Some(D1));
    assert_eq!(poll_to_end(&m, action_id(&a))["status"], "completed");
    assert_eq!(m.droplet_of(HELD), None);
    assert_eq!(m.assign_count(HELD), 0);
    let again = act(&m, HELD, r#"{"type":"unassign"}"#);
    assert_error(&again, 422, "unprocessable_entity", None);
}

#[test]
fn a_pending_event_is_422() {
    let m = mock();
    let first = assign(&m, FREE, D2);
    assert_eq!(first.status, 201);
    for again in [
        assign(&m, FREE, D3),
        act(&m, FREE, r#"{"type":"unassign"}"#),
    ] {
        assert_error(
            &again,
            422,
            "unprocessable_entity",
            Some("The floating IP already has a pending event."),
        );
    }
    assert_eq!(poll_to_end(&m, action_id(&first))["status"], "completed");
    assert_eq!(m.droplet_of(FREE), Some(D2));
    assert_eq!(m.assign_count(FREE), 2);
}

#[test]
fn assigns_that_would_change_nothing_or_double_up_are_422() {
    let m = mock();
    let already = "The droplet already has a reserved IP assigned.";
    // To the droplet that already holds it: 422, not a no-op.
    assert_error(
        &assign(&m, HELD, D1),
        422,
        "unprocessable_entity",
        Some(already),
    );
    // To a droplet that holds another reserved IPv4.
    assert_error(
        &assign(&m, FREE, D1),
        422,
        "unprocessable_entity",
        Some(already),
    );
    // To a droplet that does not exist.
    assert_error(&assign(&m, FREE, 42), 422, "unprocessable_entity", None);
    // Bad action bodies.
    for body in [
        r#"{"type":"assign"}"#,
        r#"{"type":"move","droplet_id":3000000002}"#,
        "{}",
    ] {
        assert_error(&act(&m, FREE, body), 422, "unprocessable_entity", None);
    }
    assert_error(&act(&m, FREE, "{not json"), 400, "bad_request", None);
    let plain = send(
        &m,
        "POST",
        &format!("/v2/reserved_ips/{FREE}/actions"),
        &[AUTH, ("Content-Type", "text/plain")],
        Some(r#"{"type":"unassign"}"#),
    );
    assert_error(&plain, 400, "bad_request", None);
    assert_eq!((m.droplet_of(HELD), m.droplet_of(FREE)), (Some(D1), None));
    assert_eq!(m.with_state(|s| s.pending_actions()), 0);
    // A free droplet takes it.
    assert_eq!(assign(&m, FREE, D2).status, 201);
}

#[test]
fn done_status_and_errored_actions() {
    let m = mock();
    m.set_action_polls(0);
    m.set_done_status("done");
    let a = assign(&m, FREE, D2);
    assert_eq!(poll_to_end(&m, action_id(&a))["status"], "done");
    assert_eq!(m.droplet_of(FREE), Some(D2));
    m.fail_actions(1);
    let b = assign(&m, HELD, D3);
    assert_eq!(b.json()["action"]["status"], "in-progress");
    let end = poll_to_end(&m, action_id(&b));
    assert_eq!(end["status"], "errored");
    assert!(end["completed_at"].is_string());
    assert_eq!(m.droplet_of(HELD), Some(D1));
    // Only the next one failed.
    let c = assign(&m, HELD, D3);
    assert_eq!(poll_to_end(&m, action_id(&c))["status"], "done");
    assert_eq!(m.droplet_of(HELD), Some(D3));
}

#[test]
fn unpolled_actions_complete_by_the_clock() {
    let m = mock();
    m.set_action_timeout(Duration::from_millis(100));
    let a = assign(&m, FREE, D2);
    assert_eq!(a.status, 201);
    assert!(m.wait_for(Duration::from_secs(5), |s| s.droplet_of(FREE) == Some(D2)));
    let read = get(&m, &format!("/v2/actions/{}", action_id(&a))).json();
    assert_eq!(read["action"]["status"], "completed");
    let ip = get(&m, &format!("/v2/reserved_ips/{FREE}")).json();
    assert_eq!(ip["reserved_ip"]["locked"], false);
}

#[test]
fn the_default_clock_is_five_seconds() {
    let m = mock();
    let started = Instant::now();
    assert_eq!(assign(&m, FREE, D2).status, 201);
    assert!(m.wait_for(Duration::from_secs(10), |s| s.droplet_of(FREE) == Some(D2)));
    let took = started.elapsed();
    assert!(
        (Duration::from_millis(4900)..Duration::from_secs(8)).contains(&took),
        "{took:?}"
    );
}

#[test]
fn pagination_follows_links_pages_next() {
    let m = mock();
    m.add_filler_reserved_ips(45);
    let base = m.url();
    let mut target = "/v2/reserved_ips".to_string();
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    loop {
        let v = get(&m, &target).json();
        assert_eq!(v["meta"]["total"], 47);
        let list = v["reserved_ips"].as_array().expect("list");
        seen.extend(
            list.iter()
                .filter_map(|r| r["ip"].as_str().map(str::to_string)),
        );
        let links = v["links"]["pages"].as_object().expect("pages").clone();
        let mut names: Vec<&str> = links.keys().map(String::as_str).collect();
        names.sort_unstable();
        pages.push((list.len(), names.join(",")));
        let Some(next) = links.get("next").and_then(Value::as_str) else {
            assert_eq!(
                links["prev"],
                format!("{base}/reserved_ips?page=2&per_page=20")
            );
            break;
        };
        target = next
            .strip_prefix(&base)
            .map(|rest| format!("/v2{rest}"))
            .expect("next is under the API base");
        assert!(pages.len() < 3, "next never ends");
    }
    assert_eq!(
        pages,
        [
            (20, "last,next".to_string()),
            (20, "first,last,next,prev".to_string()),
            (7, "first,prev".to_string())
        ]
    );
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 47);
    assert!(seen.contains(&HELD.to_string()) && !seen.contains(&V6.to_string()));
    let first = get(&m, "/v2/reserved_ips").json();
    assert_eq!(
        first["links"]["pages"]["next"],
        format!("{base}/reserved_ips?page=2&per_page=20")
    );
    assert_eq!(
        first["links"]["pages"]["last"],
        format!("{base}/reserved_ips?page=3&per_page=20")
    );
    // One page: no page links. More than 200 per page is cut to 200.
    let all = get(&m, "/v2/reserved_ips?per_page=500").json();
    assert_eq!(all["reserved_ips"].as_array().map(Vec::len), Some(47));
    assert_eq!(all["links"], json!({}));
    for bad in ["page=0", "per_page=x"] {
        assert_error(
            &get(&m, &format!("/v2/reserved_ips?{bad}")),
            400,
            "bad_request",
            None,
        );
    }
}

#[test]
fn bearer_tokens() {
    let m = mock();
    for headers in [
        &[][..],
        &[("Authorization", "Bearer wrong")],
        &[("Authorization", "Basic eDp5")],
    ] {
        let a = send(&m, "GET", "/v2/reserved_ips", headers, None);
        assert_error(&a, 401, "unauthorized", Some("Unable to authenticate you."));
    }
    m.add_token("ro", false);
    let ro = ("Authorization", "Bearer ro");
    assert_eq!(send(&m, "GET", "/v2/reserved_ips", &[ro], None).status, 200);
    let a = send(
        &m,
        "POST",
        &format!("/v2/reserved_ips/{FREE}/actions"),
        &[ro, JSON],
        Some(&format!(r#"{{"type":"assign","droplet_id":{D2}}}"#)),
    );
    assert_error(
        &a,
        403,
        "forbidden",
        Some("You do not have access for the attempted action."),
    );
    assert_eq!(m.droplet_of(FREE), None);
    assert_eq!(m.assign_count(FREE), 1);
    m.revoke_token("ro");
    let a = send(&m, "GET", "/v2/reserved_ips", &[ro], None);
    assert_error(&a, 401, "unauthorized", Some("Unable to authenticate you."));
}

#[test]
fn not_found_and_server_errors() {
    let m = mock();
    let not_found = Some("The resource you requested could not be found.");
    for target in [
        "/v2/reserved_ips/198.51.100.99".to_string(),
        format!("/v2/reserved_ips/{V6}"),
        format!("/v2/reserved_ipv6/{HELD}"),
        "/v2/reserved_ips/not-an-ip".to_string(),
        "/v2/actions/42".to_string(),
        "/v2/droplets/42".to_string(),
        "/v2/nothing".to_string(),
        "/v2/actions/+2600000001".to_string(),
        format!("/v2/reserved_ips/{HELD}/actions"),
        "/v1/reserved_ips".to_string(),
    ] {
        assert_error(&get(&m, &target), 404, "not_found", not_found);
    }
    let missing = assign(&m, "198.51.100.99", D2);
    assert_error(&missing, 404, "not_found", not_found);
    m.set_server_errors(1);
    assert_error(
        &get(&m, "/v2/reserved_ips"),
        500,
        "server_error",
        Some("Unexpected server-side error"),
    );
    assert_eq!(get(&m, "/v2/reserved_ips").status, 200);
    let delete = send(
        &m,
        "DELETE",
        &format!("/v2/reserved_ips/{HELD}"),
        &[AUTH],
        None,
    );
    assert_error(&delete, 405, "method_not_allowed", None);
    assert_eq!(m.droplet_of(HELD), Some(D1));
}

#[test]
fn request_ids_differ() {
    let m = mock();
    let (a, b) = (get(&m, "/v2/reserved_ips"), get(&m, "/v2/reserved_ips"));
    let (ra, rb) = (a.header("x-request-id"), b.header("x-request-id"));
    assert!(ra.is_some_and(|r| r.len() == 36), "{a:?}");
    assert_ne!(ra, rb);
}

#[test]
fn the_window_fills_per_token_and_empties_on_its_own_timer() {
    let m = mock();
    // The documented default.
    let first = get(&m, "/v2/reserved_ips");
    assert_eq!(first.number("ratelimit-limit"), 5000);
    assert_eq!(first.number("ratelimit-remaining"), 4999);
    let now = now_secs();
    let reset = first.number("ratelimit-reset");
    assert!(
        (now + 3599..=now + 3601).contains(&reset),
        "{reset} vs {now}"
    );

    m.set_rate_limit(3, Duration::from_secs(3600));
    let answers = [
        get(&m, "/v2/reserved_ips"),
        send(&m, "GET", "/v2/reserved_ips", &[], None),
        assign(&m, FREE, D2),
    ];
    assert_eq!(answers.each_ref().map(|a| a.status), [200, 401, 201]);
    assert_eq!(
        answers.each_ref().map(|a| a.number("ratelimit-remaining")),
        [2, 2, 1]
    );
    // The token-less request counted in a window of its own.
    let spent = get(&m, "/v2/reserved_ips");
    assert_eq!(spent.number("ratelimit-remaining"), 0);
    let refused = get(&m, "/v2/reserved_ips");
    assert_error(
        &refused,
        429,
        "too_many_requests",
        Some("API rate limit exceeded."),
    );
    assert_eq!(refused.number("ratelimit-limit"), 3);
    assert_eq!(refused.number("ratelimit-remaining"), 0);
    let retry = refused.number("retry-after");
    assert!((3598..=3600).contains(&retry), "{retry}");
    let reset = refused.number("ratelimit-reset");
    let now = now_secs();
    assert!(
        (now + 3598..=now + 3601).contains(&reset),
        "{reset} vs {now}"
    );
    // Another token has its own window.
    m.add_token("other", true);
    let other = send(
        &m,
        "GET",
        "/v2/reserved_ips",
        &[("Authorization", "Bearer other")],
        None,
    );
    assert_eq!(
        (other.status, other.number("ratelimit-remaining")),
        (200, 2)
    );
    assert_eq!(m.rate_remaining(TOKEN), 0);
    let log: Vec<Option<u64>> = m.requests().iter().map(|r| r.rate_remaining).collect();
    assert_eq!(
        log,
        [
            Some(4999),
            Some(2),
            Some(2),
            Some(1),
            Some(0),
            Some(0),
            Some(2)
        ]
    );

    // With a 300 ms window: spend it, get refused, then served again once
    // the first request stops counting.
    m.set_rate_limit(1, Duration::from_millis(300));
    let mut refused = None;
    for _ in 0..50 {
        let a = get(&m, "/v2/reserved_ips");
        if a.status == 429 {
            refused = Some(a);
            break;
        }
        assert_eq!(a.status, 200);
    }
    let refused = refused.expect("a 429 within 50 quick requests");
    assert_eq!(refused.number("retry-after"), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let a = get(&m, "/v2/reserved_ips");
        if a.status == 200 {
            assert_eq!(a.number("ratelimit-remaining"), 0);
            break;
        }
        assert_eq!(a.status, 429);
        assert!(Instant::now() < deadline, "the window never emptied");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reserved_ipv6() {
    let m = mock();
    let v = get(&m, &format!("/v2/reserved_ipv6/{V6}")).json();
    let r = &v["reserved_ipv6"];
    let mut keys: Vec<&String> = r.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["droplet", "ip", "region_slug", "reserved_at"]);
    assert_eq!(r["ip"], V6);
    assert_eq!(r["region_slug"], "nyc3");
    assert!(r["droplet"].is_null());
    // Non-canonical text finds the same address.
    assert_eq!(get(&m, "/v2/reserved_ipv6/2001:0db8:0:0::10").status, 200);
    let list = get(&m, "/v2/reserved_ipv6").json();
    assert_eq!(list["reserved_ipv6s"][0]["ip"], V6);
    assert_eq!(list["meta"]["total"], 1);
    m.set_action_polls(0);
    let a = assign(&m, V6, D1);
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.json()["action"]["resource_type"], "reserved_ipv6");
    // A droplet may hold one IPv4 and one IPv6 reserved address.
    assert_eq!(m.droplet_of(HELD), Some(D1));
    let id = action_id(&a);
    let end = get(&m, &format!("/v2/reserved_ipv6/{V6}/actions/{id}")).json();
    assert_eq!(end["action"]["status"], "completed");
    assert_eq!(m.droplet_of(V6), Some(D1));
    assert_eq!(m.droplet_of("2001:db8:0::10"), Some(D1));
    let v = get(&m, &format!("/v2/reserved_ipv6/{V6}")).json();
    assert_eq!(v["reserved_ipv6"]["droplet"]["id"], D1);
}

#[test]
fn ids_above_two_to_the_31_round_trip() {
    let m = mock();
    let big = 9_007_199_254_740_993; // 2^53 + 1
    m.add_droplet(big, "big");
    m.set_action_polls(0);
    let a = assign(&m, FREE, big);
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(poll_to_end(&m, action_id(&a))["status"], "completed");
    let read = get(&m, &format!("/v2/reserved_ips/{FREE}"));
    assert!(
        read.body.contains(&format!(r#""id":{big}"#)),
        "{}",
        read.body
    );
    assert_eq!(m.droplet_of(FREE), Some(big));
}

#[test]
fn faults_come_before_the_window_and_the_api() {
    let m = mock();
    m.set_fault_times(Fault::Status(503, "unavailable".into()), 1);
    let a = get(&m, "/v2/reserved_ips");
    assert_eq!((a.status, a.body.as_str()), (503, "unavailable"));
    assert!(a.header("ratelimit-remaining").is_none());
    assert_eq!(m.rate_remaining(TOKEN), 5000);
    m.set_fault_on("POST", Fault::Reset, Some(1));
    assert_eq!(assign(&m, FREE, D2).status, 0);
    assert_eq!(m.with_state(|s| s.pending_actions()), 0);
    assert_eq!(m.assign_count(FREE), 1);
    assert_eq!(assign(&m, FREE, D2).status, 201);
    let log: Vec<(Option<u16>, Option<u64>)> = m
        .requests()
        .iter()
        .map(|r| (r.status, r.rate_remaining))
        .collect();
    assert_eq!(
        log,
        [(Some(503), None), (None, None), (Some(201), Some(4999))]
    );
}

#[test]
fn out_of_band_moves_and_control_routes() {
    let m = mock();
    m.set_droplet_of(FREE, Some(D3));
    let v = get(&m, &format!("/v2/reserved_ips/{FREE}")).json();
    assert_eq!(v["reserved_ip"]["droplet"]["id"], D3);
    let state = send(&m, "GET", "/_mock/state", &[], None);
    assert_eq!(state.json(), json!({HELD: D1, FREE: D3, V6: null}));
    let moved = send(
        &m,
        "PUT",
        &format!("/_mock/reserved_ips/{HELD}"),
        &[JSON],
        Some(r#"{"droplet":null}"#),
    );
    assert_eq!(moved.status, 204);
    assert_eq!(m.droplet_of(HELD), None);
    let fault = send(
        &m,
        "PUT",
        "/_mock/fault",
        &[JSON],
        Some(r#"{"fault":"status","status":502,"times":1}"#),
    );
    assert_eq!(fault.status, 204);
    assert_eq!(get(&m, "/v2/reserved_ips").status, 502);
    assert_eq!(m.requests().len(), 2);
    assert_eq!(m.rate_remaining(TOKEN), 4999);
}

#[test]
fn metadata_serves_the_droplet_id() {
    let meta = Metadata::digitalocean(D1).expect("metadata");
    let url = meta.url();
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let get = |path: &str| common::req(addr, "GET", path, None, None);
    assert_eq!(get("/metadata/v1/id"), (200, D1.to_string()));
    assert_eq!(get("/metadata/v1/region"), (200, "nyc3".to_string()));
    assert_eq!(
        get("/metadata/v1/hostname"),
        (200, format!("mock-droplet-{D1}"))
    );
    let (status, body) = get("/metadata/v1.json");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["droplet_id"], D1);
    assert_eq!(v["reserved_ip"]["ipv4"]["active"], false);
    assert_eq!(
        get("/metadata/v1/reserved_ip/ipv4/active"),
        (200, "false".to_string())
    );
    assert_eq!(get("/metadata/v1/reserved_ip/ipv4/ip_address").0, 404);
    meta.set_reserved_ipv4(Some(HELD));
    assert_eq!(
        get("/metadata/v1/reserved_ip/ipv4/active"),
        (200, "true".to_string())
    );
    assert_eq!(
        get("/metadata/v1/floating_ip/ipv4/ip_address"),
        (200, HELD.to_string())
    );
    assert_eq!(get("/hetzner/v1/metadata/instance-id").0, 404);
    meta.set_fault(Fault::Status(500, "down".into()));
    assert_eq!(get("/metadata/v1/id").0, 500);
    assert_eq!(meta.requests().len(), 10);
}
