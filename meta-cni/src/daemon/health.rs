//! Health and metrics on a loopback port: `/healthz` (the daemon answers), `/readyz` (its
//! watch caches hold their first lists; calls are served before that, reading the API for
//! what the caches lack) and `/metrics` (Prometheus, OpenMetrics text).

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::cluster::Cluster;
use super::metrics::Metrics;

/// What the endpoints report on.
#[derive(Debug)]
pub(crate) struct Health {
    /// The watch caches, when the daemon has a kubeconfig.
    pub(crate) cluster: Option<Arc<Cluster>>,
    /// The metrics.
    pub(crate) metrics: Arc<Metrics>,
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, v);
    }
    response
}

/// Answers one request.
fn route(health: &Health, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
    }
    let synced = health.cluster.as_ref().is_none_or(|c| c.synced());
    match request.uri().path() {
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" if synced => reply(StatusCode::OK, "text/plain", "ready\n"),
        "/readyz" => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "watch caches not synced yet\n",
        ),
        "/metrics" => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            health.metrics.encode(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// Serves until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("health accept: {e}");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let health = Arc::clone(&health);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = route(&health, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
