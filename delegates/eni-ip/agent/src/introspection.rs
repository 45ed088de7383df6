//! Introspection and metrics on loopback (ipamd's `127.0.0.1:61679` and `:61678/metrics`,
//! here one listener): `/v1/enis`, `/v1/pods`, `/v1/pool`, `/metrics`, `/healthz`,
//! `/readyz`.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::service::Service;

const INDEX: &str = "/v1/enis\n/v1/pods\n/v1/pool\n/metrics\n/healthz\n/readyz\n";

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, v);
    }
    response
}

fn json(value: Value) -> Response<Full<Bytes>> {
    reply(StatusCode::OK, "application/json", value.to_string())
}

fn not_ready() -> Response<Full<Bytes>> {
    reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n")
}

/// Answers one request.
fn route(service: &Service, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
    }
    let agent = service.agent();
    match (request.uri().path(), agent) {
        ("/", _) => reply(StatusCode::OK, "text/plain", INDEX),
        ("/healthz", _) => reply(StatusCode::OK, "text/plain", "ok\n"),
        ("/readyz", Some(_)) => reply(StatusCode::OK, "text/plain", "ready\n"),
        ("/metrics", _) => {
            if let Some(agent) = agent {
                agent.update_gauges();
            }
            reply(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                service.metrics.encode(),
            )
        }
        ("/readyz" | "/v1/enis" | "/v1/pods" | "/v1/pool", None) => not_ready(),
        ("/v1/enis", Some(agent)) => json(agent.enis_view()),
        ("/v1/pods", Some(agent)) => json(agent.pods_view()),
        ("/v1/pool", Some(agent)) => json(agent.pool_view()),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// Serves until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    service: Arc<Service>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(%err, "introspection accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let service = service.clone();
        tokio::spawn(async move {
            let handler = service_fn(move |request: Request<Incoming>| {
                let response = route(&service, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(err) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), handler)
                .await
            {
                tracing::debug!(%err, "introspection connection");
            }
        });
    }
}
