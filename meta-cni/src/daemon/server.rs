//! Serving calls on the socket: one call per connection, the peer's credentials checked
//! (root, or the daemon's own user), the protocol version checked, then the meta plugin run
//! on a blocking thread exactly as the plugin binary runs it ([`cni::skeleton::run`]), so
//! its output and exit code are the same byte for byte. At most `limit` calls run at once;
//! the rest wait in the socket's backlog, never in memory of their own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cni::EnvSource;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, Semaphore};

use super::metrics::Metrics;
use super::protocol::{CallReply, CallRequest, MAX_MESSAGE, PROTOCOL_VERSION};
use crate::meta::MetaPlugin;

/// How long a shim may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` turns true, then waits for the calls in flight;
/// each call holds one of `limit`'s `slots` permits while it is read and served.
pub(crate) async fn serve(
    listener: UnixListener,
    metrics: Arc<Metrics>,
    limit: Arc<Semaphore>,
    slots: u32,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&limit).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            handle(stream, &metrics).await;
            drop(permit);
        });
    }
    drop(listener);
    // Every permit back: every call in flight has answered.
    let _ = limit.acquire_many(slots).await;
}

/// Whether the peer may use the daemon: root, or the daemon's own user.
fn trusted(stream: &UnixStream) -> Result<u32, String> {
    let creds = stream
        .peer_cred()
        .map_err(|e| format!("no peer credentials: {e}"))?;
    let uid = creds.uid();
    if uid == 0 || uid == nix::unistd::geteuid().as_raw() {
        Ok(uid)
    } else {
        Err(format!("uid {uid} is neither root nor the daemon's"))
    }
}

/// Reads one request, at most [`MAX_MESSAGE`] bytes, within [`READ_TIMEOUT`].
async fn read_request(stream: &mut UnixStream) -> Result<CallRequest, String> {
    let mut bytes = Vec::new();
    let mut limited = (&mut *stream).take(MAX_MESSAGE + 1);
    let read = limited.read_to_end(&mut bytes);
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Err(_) => return Err(format!("no complete request within {READ_TIMEOUT:?}")),
        Ok(Err(e)) => return Err(format!("reading the request: {e}")),
        Ok(Ok(_)) => {}
    }
    if bytes.len() as u64 > MAX_MESSAGE {
        return Err(format!("request larger than {MAX_MESSAGE} bytes"));
    }
    // The version first, so a shim of another version is told so whatever else changed.
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("request is not JSON: {e}"))?;
    let protocol = value.get("protocol").and_then(serde_json::Value::as_u64);
    if protocol != Some(u64::from(PROTOCOL_VERSION)) {
        return Err(format!("protocol {protocol:?} is not {PROTOCOL_VERSION}"));
    }
    serde_json::from_value(value).map_err(|e| format!("malformed request: {e}"))
}

/// Serves one connection.
async fn handle(mut stream: UnixStream, metrics: &Metrics) {
    let uid = match trusted(&stream) {
        Ok(uid) => uid,
        Err(why) => {
            // Nothing is answered to an untrusted peer.
            tracing::warn!("connection refused: {why}");
            return;
        }
    };
    let reply = match read_request(&mut stream).await {
        Ok(request) => serve_call(request, uid, metrics).await,
        Err(why) => {
            tracing::warn!(uid, "request refused: {why}");
            CallReply::Refused {
                protocol: PROTOCOL_VERSION,
                why,
            }
        }
    };
    let bytes = serde_json::to_vec(&reply).expect("a reply serializes");
    if let Err(e) = stream.write_all(&bytes).await {
        tracing::warn!("could not send the reply: {e}");
    }
    let _ = stream.shutdown().await;
}

/// Runs one call of the meta plugin on a blocking thread, under a span naming it.
async fn serve_call(request: CallRequest, uid: u32, metrics: &Metrics) -> CallReply {
    let var = |key| request.var(key).ok().flatten().unwrap_or_default();
    let verb = var("CNI_COMMAND");
    let span = tracing::info_span!(
        "daemon_call",
        uid,
        verb = %verb,
        container = %var("CNI_CONTAINERID"),
        ifname = %var("CNI_IFNAME"),
    );
    let started = Instant::now();
    metrics.in_flight.inc();
    let call_span = span.clone();
    // The runtime's trace context reaches the delegates this call execs, as their env.
    let vars: Vec<(String, String)> = ["TRACEPARENT", "TRACESTATE"]
        .into_iter()
        .filter_map(|key| Some((key.to_string(), request.var(key).ok().flatten()?)))
        .collect();
    let ran = tokio::task::spawn_blocking(move || {
        call_span.in_scope(|| {
            cni::call_env::with(vars, || {
                let stdin = request.stdin.clone().into_bytes();
                cni::skeleton::run(&MetaPlugin, &request, stdin)
            })
        })
    })
    .await;
    metrics.in_flight.dec();
    let outcome = ran.unwrap_or_else(|e| cni::skeleton::Outcome {
        // The skeleton turns a plugin's panic into code 100 itself: this is the runtime's.
        stdout: cni::Error::internal("the daemon's call thread failed", e.to_string())
            .to_json(cni::Version::LATEST),
        exit_code: 1,
    });
    let code = (outcome.exit_code != 0).then(|| {
        serde_json::from_str::<serde_json::Value>(&outcome.stdout)
            .ok()
            .and_then(|e| e.get("code")?.as_u64())
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(0)
    });
    let took = started.elapsed();
    metrics.request(&verb, code, took);
    span.in_scope(|| tracing::info!(took_us = took.as_micros() as u64, ?code, "call served"));
    CallReply::Served {
        stdout: outcome.stdout,
        exit_code: outcome.exit_code,
    }
}
