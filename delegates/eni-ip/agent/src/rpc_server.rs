//! The plugin socket: one exchange per connection (a JSON request line, then one JSON
//! response), peer credentials checked, the protocol version checked before anything else,
//! connections served concurrently up to a bound.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use eni_ip::protocol::client::check_peer;
use eni_ip::protocol::{
    AgentError, Call, ErrorCode, Outcome, Request, MAX_MESSAGE, PROTOCOL_VERSION,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

use crate::service::{response, Service};

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{doing} {path}: {source}")]
pub struct SocketError {
    doing: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

/// Binds the socket: parent directory made 0700 if missing, a stale socket removed, the
/// socket itself 0600.
pub fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let err = |doing, path: &Path| {
        let path = path.to_path_buf();
        move |source| SocketError {
            doing,
            path,
            source,
        }
    };
    crate::private_dir::create_parent(path).map_err(|(dir, source)| SocketError {
        doing: "creating",
        path: dir,
        source,
    })?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(err("removing the stale socket", path))?
        }
        Ok(_) => {
            return Err(SocketError {
                doing: "refusing to replace a non-socket at",
                path: path.to_path_buf(),
                source: io::Error::from(io::ErrorKind::AlreadyExists),
            })
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(err("binding", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(err("setting the mode of", path))?;
    Ok(listener)
}

/// Accepts connections until `shutdown`; each holds a permit of `limit` while served.
pub async fn serve(
    listener: UnixListener,
    service: Arc<Service>,
    limit: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let service = service.clone();
        tokio::spawn(async move {
            handle(stream, &service).await;
            drop(permit);
        });
    }
}

async fn handle(mut stream: UnixStream, service: &Service) {
    let uid = match check_peer(&stream) {
        Ok(uid) => uid,
        Err(err) => {
            // Nothing is answered to an untrusted peer.
            tracing::warn!(?err, "connection refused: untrusted peer");
            return;
        }
    };
    let outcome = match read_request(&mut stream).await {
        Ok(request) => {
            let span = tracing::info_span!(
                "call",
                uid,
                client = %request.client,
                kind = call_kind(&request.call)
            );
            let started = std::time::Instant::now();
            let outcome = service
                .call(request.call.clone())
                .instrument(span.clone())
                .await;
            span.in_scope(|| log_call(&request.call, &outcome, started.elapsed()));
            outcome
        }
        Err(err) => {
            tracing::warn!(uid, code = ?err.code, message = %err.message, "request refused");
            Outcome::Error(err)
        }
    };
    let mut line = serde_json::to_vec(&response(outcome)).expect("a response serializes");
    line.push(b'\n');
    if let Err(err) = stream.write_all(&line).await {
        tracing::warn!(%err, "could not send the response");
    }
    let _ = stream.shutdown().await;
}

fn call_kind(call: &Call) -> &'static str {
    match call {
        Call::AddNetwork(_) => "AddNetwork",
        Call::DelNetwork(_) => "DelNetwork",
        Call::Gc(_) => "Gc",
        Call::Status => "Status",
        Call::Lookup(_) => "Lookup",
    }
}

fn log_call(call: &Call, outcome: &Outcome, took: Duration) {
    let took_us = took.as_micros() as u64;
    let key = match call {
        Call::AddNetwork(a) => Some(&a.key),
        Call::DelNetwork(d) => Some(&d.key),
        Call::Lookup(l) => Some(&l.key),
        _ => None,
    };
    let (network, container, ifname) = key.map_or(("", "", ""), |k| {
        (
            k.network.as_str(),
            k.container_id.as_str(),
            k.ifname.as_str(),
        )
    });
    match outcome {
        Outcome::Error(err) => {
            tracing::warn!(network, container, ifname, took_us, code = ?err.code, message = %err.message, "call failed")
        }
        Outcome::Assigned(a) => {
            tracing::info!(network, container, ifname, took_us, address = %a.address, eni = %a.eni_id, "call done")
        }
        Outcome::Released(r) => {
            tracing::info!(network, container, ifname, took_us, address = ?r.address, "call done")
        }
        _ => tracing::debug!(took_us, "call done"),
    }
}

fn bad_request(message: impl Into<String>) -> AgentError {
    AgentError {
        code: ErrorCode::BadRequest,
        message: message.into(),
    }
}

/// Reads and checks one request: its size, then its version, then its shape.
async fn read_request(stream: &mut UnixStream) -> Result<Request, AgentError> {
    let mut bytes = Vec::new();
    let mut limited = (&mut *stream).take(MAX_MESSAGE + 1);
    let read = limited.read_to_end(&mut bytes);
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Err(_) => return Err(bad_request("no complete request within 10 s")),
        Ok(Err(err)) => return Err(bad_request(format!("reading the request: {err}"))),
        Ok(Ok(_)) => {}
    }
    if bytes.len() as u64 > MAX_MESSAGE {
        return Err(bad_request(format!(
            "request larger than {MAX_MESSAGE} bytes"
        )));
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        protocol: u32,
    }
    let envelope: Envelope =
        serde_json::from_slice(&bytes).map_err(|e| bad_request(format!("not a request: {e}")))?;
    if envelope.protocol != PROTOCOL_VERSION {
        return Err(AgentError {
            code: ErrorCode::VersionMismatch,
            message: format!(
                "protocol version {} is not the agent's {PROTOCOL_VERSION}: upgrade the plugin and the agent together",
                envelope.protocol
            ),
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| bad_request(format!("not a request: {e}")))
}
