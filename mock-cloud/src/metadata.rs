//! A mock of the metadata service servers see at `http://169.254.169.254/`:
//! just enough to learn "which server am I". cloudscale's is
//! OpenStack-style JSON; Exoscale's ([`Metadata::exoscale`]) plain text under
//! `/1.0/meta-data/KEY` and `/latest/meta-data/KEY`.

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

#[derive(Debug, Default)]
struct MetaState {
    uuid: Option<String>,
    exoscale: Option<ExoscaleMeta>,
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
        let m = Metadata::start_on(listener, "")?;
        {
            let mut s = lock(&m.state);
            s.uuid = None;
            s.exoscale = Some(ExoscaleMeta {
                instance_id: instance_id.map(str::to_string),
                zone: zone.map(str::to_string),
                paths: ExoscalePaths::Both,
            });
        }
        Ok(m)
    }

    /// Which Exoscale path families answer (the others 404).
    pub fn set_exoscale_paths(&self, paths: ExoscalePaths) {
        if let Some(e) = lock(&self.state).exoscale.as_mut() {
            e.paths = paths;
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
    if let Some(exo) = &state.exoscale {
        return serve_exoscale(exo, path);
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
        Some(v) => Response {
            status: 200,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: v.as_bytes().to_vec(),
        },
        None => not_found(),
    }
}

fn not_found() -> Response {
    Response {
        status: 404,
        headers: vec![("Content-Type".into(), "text/html; charset=UTF-8".into())],
        body: b"<html><body><h1>404 Not Found</h1></body></html>".to_vec(),
    }
}
