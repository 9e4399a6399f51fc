//! `metrics-listen`: the FIFO daemon's `/metrics`, for those who scrape it
//! directly rather than through node_exporter's textfile collector. The
//! same text as the textfiles (`status/metrics.rs`), every instance the
//! daemon knows of in one answer, made when asked: no timestamps, no
//! caching. Plain HTTP/1.1 on a local address; nothing else is served.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::status::Recorder;

/// Each instance's latest record, by name; the daemon keeps it current.
pub type Registry = Arc<Mutex<BTreeMap<String, Arc<Recorder>>>>;

pub fn lock(registry: &Registry) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Recorder>>> {
    registry.lock().unwrap_or_else(|p| p.into_inner())
}

/// `instance`'s record, when the daemon has one.
pub fn recorder(registry: &Registry, instance: &str) -> Option<Arc<Recorder>> {
    lock(registry).get(instance).cloned()
}

/// Binds now (a taken port is an error at start, not a silent gap), then
/// serves in the background until the daemon's runtime ends.
pub async fn start(addr: SocketAddr, registry: Registry) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(address = %addr, "serving /metrics");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let registry = registry.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| answer(req, registry.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(())
}

async fn answer(
    req: Request<Incoming>,
    registry: Registry,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r
    };
    if req.uri().path() != "/metrics" {
        return Ok(reply(StatusCode::NOT_FOUND, "only /metrics here\n".into()));
    }
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET /metrics\n".into(),
        ));
    }
    let recorders: Vec<Arc<Recorder>> = lock(&registry).values().cloned().collect();
    let records: Vec<_> = recorders.iter().map(|r| r.record()).collect();
    let body = crate::status::metrics::render_all(&records);
    let mut r = reply(StatusCode::OK, body);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(r)
}
