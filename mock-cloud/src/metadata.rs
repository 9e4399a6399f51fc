//! A mock of the metadata service servers see at `http://169.254.169.254/`:
//! just enough to learn "which server am I". cloudscale's is
//! OpenStack-style JSON; Exoscale's ([`Metadata::exoscale`]) plain text under
//! `/1.0/meta-data/KEY` and `/latest/meta-data/KEY`; Hetzner's
//! ([`Metadata::hetzner`]) plain text under `/hetzner/v1/metadata/KEY` and a
//! YAML summary; DigitalOcean's ([`Metadata::digitalocean`]) plain text under
//! `/metadata/v1/KEY` and JSON at `/metadata/v1.json`.

use std::io;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;

use crate::fault::{self, Fault, FaultRule};
use crate::http::{lock, percent_decode, Engine, Handler, RawRequest, Reply, Response};
use crate::Request;

/// Which of Exoscale's metadata path families the mock answers (which
/// ones the real service answers is unverified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExoscalePaths {
    /// `/1.0/meta-data/KEY` (cloud-init, afterburn) and `/latest/meta-data/KEY`.
    Both,
    OneDotZero,
    Latest,
}

#[derive(Debug, Clone)]
struct ExoscaleMeta {
    instance_id: Option<String>,
    zone: Option<String>,
    paths: ExoscalePaths,
}

/// Where a Hetzner server is, as the metadata tells it.
const HETZNER_REGION: &str = "eu-central";
const HETZNER_ZONE: &str = "fsn1-dc14";
const DIGITALOCEAN_REGION: &str = "nyc3";

#[derive(Debug, Clone)]
struct DigitalOceanMeta {
    droplet_id: u64,
    reserved_ipv4: Option<String>,
}

/// Which cloud's metadata the mock serves.
#[derive(Debug, Clone, Default)]
enum Flavor {
    #[default]
    Cloudscale,
    Exoscale(ExoscaleMeta),
    Hetzner(u64),
    DigitalOcean(DigitalOceanMeta),
}

#[derive(Debug, Default)]
struct MetaState {
    uuid: Option<String>,
    flavor: Flavor,
    fault: Option<FaultRule>,
    requests: Vec<Request>,
}

/// A running metadata service; clones share it, and it stops when the last
/// clone is dropped (which is also the simplest way to make it "down").
#[derive(Clone)]
pub struct Metadata {
    state: Arc<Mutex<MetaState>>,
    engine: Arc<Engine>,
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metadata")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Metadata {
    /// Serves `uuid` as `.meta.cloudscale_uuid` on `127.0.0.1` and a free
    /// port.
    pub fn start(uuid: &str) -> io::Result<Metadata> {
        Metadata::start_on(TcpListener::bind("127.0.0.1:0")?, uuid)
    }

    pub fn start_on(listener: TcpListener, uuid: &str) -> io::Result<Metadata> {
        let state = Arc::new(Mutex::new(MetaState {
            uuid: Some(uuid.to_string()),
            ..MetaState::default()
        }));
        let handler: Arc<dyn Handler> = Arc::new(Service(Arc::clone(&state)));
        let engine = Engine::start(listener, handler)?;
        Ok(Metadata {
            state,
            engine: Arc::new(engine),
        })
    }

    /// Serves Exoscale's plain-text `instance-id` and `availability-zone`
    /// (None: that key answers 404) under both path families.
    pub fn exoscale(instance_id: Option<&str>, zone: Option<&str>) -> io::Result<Metadata> {
        Metadata::exoscale_on(TcpListener::bind("127.0.0.1:0")?, instance_id, zone)
    }

    pub fn exoscale_on(
        listener: TcpListener,
        instance_id: Option<&str>,
        zone: Option<&str>,
    ) -> io::Result<Metadata> {
        Metadata::flavored(
            listener,
            Flavor::Exoscale(ExoscaleMeta {
                instance_id: instance_id.map(str::to_string),
                zone: zone.map(str::to_string),
                paths: ExoscalePaths::Both,
            }),
        )
    }

    /// Serves Hetzner's `instance-id` (`instance_id` as plain text, e.g.
    /// `42`), `hostname`, `public-ipv4`, `region` (`eu-central`) and
    /// `availability-zone` (`fsn1-dc14`) under `/hetzner/v1/metadata/`, and
    /// all of them as YAML at `/hetzner/v1/metadata`.
    pub fn hetzner(instance_id: u64) -> io::Result<Metadata> {
        Metadata::hetzner_on(TcpListener::bind("127.0.0.1:0")?, instance_id)
    }

    pub fn hetzner_on(listener: TcpListener, instance_id: u64) -> io::Result<Metadata> {
        Metadata::flavored(listener, Flavor::Hetzner(instance_id))
    }

    /// Serves DigitalOcean's `id` (`droplet_id` as plain text), `hostname`
    /// and `region` (`nyc3`) under `/metadata/v1/`, the reserved IPv4 keys
    /// (see [`Metadata::set_reserved_ipv4`]), and `/metadata/v1.json`.
    pub fn digitalocean(droplet_id: u64) -> io::Result<Metadata> {
        Metadata::digitalocean_on(TcpListener::bind("127.0.0.1:0")?, droplet_id)
    }

    pub fn digitalocean_on(listener: TcpListener, droplet_id: u64) -> io::Result<Metadata> {
        let meta = DigitalOceanMeta {
            droplet_id,
            reserved_ipv4: None,
        };
        Metadata::flavored(listener, Flavor::DigitalOcean(meta))
    }

    fn flavored(listener: TcpListener, flavor: Flavor) -> io::Result<Metadata> {
        let m = Metadata::start_on(listener, "")?;
        {
            let mut s = lock(&m.state);
            s.uuid = None;
            s.flavor = flavor;
        }
        Ok(m)
    }

    /// Which Exoscale path families answer (the others 404).
    pub fn set_exoscale_paths(&self, paths: ExoscalePaths) {
        if let Flavor::Exoscale(e) = &mut lock(&self.state).flavor {
            e.paths = paths;
        }
    }

    /// The reserved IPv4 DigitalOcean's metadata reports on this droplet
    /// (`reserved_ip/ipv4/active` and `ip_address`, also under the old
    /// `floating_ip/` name). The metadata mock is not the API mock: a test
    /// that moves an address says so here too, which is also how a stale
    /// metadata answer (its freshness is unverified) is staged.
    pub fn set_reserved_ipv4(&self, ip: Option<&str>) {
        if let Flavor::DigitalOcean(d) = &mut lock(&self.state).flavor {
            d.reserved_ipv4 = ip.map(str::to_string);
        }
    }

    /// Base URL ending with `/`: what `cloudscale.metadata-url` should be.
    pub fn url(&self) -> String {
        self.engine.url()
    }

    /// None serves a document without `cloudscale_uuid` (not a cloudscale
    /// server, or an image that hides it).
    pub fn set_uuid(&self, uuid: Option<&str>) {
        lock(&self.state).uuid = uuid.map(str::to_string);
    }

    /// Every request from now on suffers `fault`; e.g.
    /// `Fault::Status(404, ..)` for "no such service", `Fault::Reset` for
    /// "down", `Fault::Hang` for "black-holed".
    pub fn set_fault(&self, fault: Fault) {
        lock(&self.state).fault = FaultRule::new(fault, None, None);
    }

    /// Only the next `times` requests suffer `fault` ("comes up after boot").
    pub fn set_fault_times(&self, fault: Fault, times: usize) {
        lock(&self.state).fault = FaultRule::new(fault, Some(times), None);
    }

    pub fn clear_fault(&self) {
        self.set_fault(Fault::None);
    }

    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state).requests.clone()
    }
}

struct Service(Arc<Mutex<MetaState>>);

impl Handler for Service {
    fn handle(&self, req: RawRequest) -> Reply {
        let at = Instant::now();
        let (path, query) = match req.target.split_once('?') {
            Some((p, q)) => (percent_decode(p), Some(q.to_string())),
            None => (percent_decode(&req.target), None),
        };
        let mut state = lock(&self.0);
        let fault = fault::take(&mut state.fault, &req.method);
        let reply = fault::apply(fault, || Reply::now(serve(&state, &req, &path)));
        if state.requests.len() < 10_000 {
            state
                .requests
                .push(Request::new(&req, path, query, at, reply.status()));
        }
        reply
    }
}

fn serve(state: &MetaState, req: &RawRequest, path: &str) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::empty(405).with_header("Allow", "GET, HEAD");
    }
    match &state.flavor {
        Flavor::Cloudscale => {}
        Flavor::Exoscale(exo) => return serve_exoscale(exo, path),
        Flavor::Hetzner(id) => return serve_hetzner(*id, path),
        Flavor::DigitalOcean(d) => return serve_digitalocean(d, path),
    }
    if path != "/openstack/latest/meta_data.json" {
        return not_found();
    }
    let mut meta = serde_json::Map::new();
    if let Some(uuid) = &state.uuid {
        meta.insert("cloudscale_uuid".into(), json!(uuid));
    }
    let uuid = state
        .uuid
        .as_deref()
        .unwrap_or("00000000-0000-0000-0000-000000000000");
    Response::json(
        200,
        &json!({
            "uuid": uuid,
            "name": "mock-server",
            "hostname": "mock-server",
            "availability_zone": "lpg1",
            "project_id": "0123456789abcdef0123456789abcdef",
            "launch_index": 0,
            "meta": meta,
            "public_keys": {},
        }),
    )
}

fn serve_exoscale(exo: &ExoscaleMeta, path: &str) -> Response {
    let key = match (
        exo.paths,
        path.strip_prefix("/1.0/meta-data/"),
        path.strip_prefix("/latest/meta-data/"),
    ) {
        (ExoscalePaths::Both | ExoscalePaths::OneDotZero, Some(k), _) => k,
        (ExoscalePaths::Both | ExoscalePaths::Latest, _, Some(k)) => k,
        _ => return not_found(),
    };
    let value = match key {
        "instance-id" => exo.instance_id.as_deref(),
        "availability-zone" => exo.zone.as_deref(),
        _ => None,
    };
    match value {
        Some(v) => text(v),
        None => not_found(),
    }
}

fn serve_hetzner(id: u64, path: &str) -> Response {
    let hostname = format!("mock-server-{id}");
    let public = format!("198.51.100.{}", id % 250 + 1);
    let keys = [
        ("availability-zone", HETZNER_ZONE.to_string()),
        ("hostname", hostname),
        ("instance-id", id.to_string()),
        ("public-ipv4", public),
        ("region", HETZNER_REGION.to_string()),
    ];
    if path == "/hetzner/v1/metadata" {
        let mut yaml: String = keys.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        yaml.push_str("private-networks: []\n");
        return text(&yaml);
    }
    let Some(key) = path.strip_prefix("/hetzner/v1/metadata/") else {
        return not_found();
    };
    if key == "private-networks" {
        return text("[]\n");
    }
    match keys.iter().find(|(k, _)| *k == key) {
        Some((_, v)) => text(v),
        None => not_found(),
    }
}

fn serve_digitalocean(d: &DigitalOceanMeta, path: &str) -> Response {
    let hostname = format!("mock-droplet-{}", d.droplet_id);
    let active = d.reserved_ipv4.is_some();
    if path == "/metadata/v1.json" {
        let reserved = match &d.reserved_ipv4 {
            Some(ip) => json!({"ipv4": {"active": true, "ip_address": ip}}),
            None => json!({"ipv4": {"active": false}}),
        };
        return Response::json(
            200,
            &json!({
                "droplet_id": d.droplet_id,
                "hostname": hostname,
                "region": DIGITALOCEAN_REGION,
                "reserved_ip": reserved,
                "floating_ip": reserved,
                "public_keys": [],
                "tags": [],
                "features": {"dhcp_enabled": false},
            }),
        );
    }
    let Some(key) = path.strip_prefix("/metadata/v1/") else {
        return not_found();
    };
    let value = match key {
        "id" => Some(d.droplet_id.to_string()),
        "hostname" => Some(hostname),
        "region" => Some(DIGITALOCEAN_REGION.to_string()),
        "reserved_ip/ipv4/active" | "floating_ip/ipv4/active" => Some(active.to_string()),
        "reserved_ip/ipv4/ip_address" | "floating_ip/ipv4/ip_address" => d.reserved_ipv4.clone(),
        _ => None,
    };
    match value {
        Some(v) => text(&v),
        None => not_found(),
    }
}

fn text(body: &str) -> Response {
    Response {
        status: 200,
        headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
        body: body.as_bytes().to_vec(),
    }
}

fn not_found() -> Response {
    Response {
        status: 404,
        headers: vec![("Content-Type".into(), "text/html; charset=UTF-8".into())],
        body: b"<html><body><h1>404 Not Found</h1></body></html>".to_vec(),
    }
}
