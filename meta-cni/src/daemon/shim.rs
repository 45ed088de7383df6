//! The plugin as the daemon's shim: a meta netconf naming `daemonSocket` has its calls
//! forwarded to the daemon there, and the daemon's output and exit code are the plugin's,
//! unchanged (DEL's errors included). When the daemon is down (no socket, connection
//! refused, or it refuses the call) the plugin serves the call itself and says so in its
//! log. A daemon that goes away in the middle of an ADD gets code 11 (the runtime's DEL
//! cleans up); any other verb is served here again, since it is safe to repeat.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cni::skeleton::Outcome;
use cni::{Error, ErrorCode, Version};
use nix::errno::Errno;
use nix::sys::socket::{getsockopt, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
use nix::unistd::geteuid;

use super::protocol::{CallReply, CallRequest, MAX_MESSAGE, PROTOCOL_VERSION};

/// The netconf key naming the daemon's socket.
pub(crate) const SOCKET_KEY: &str = "daemonSocket";

/// How long the daemon may take to answer one call: the longest an ADD may reasonably run
/// (delegates, API retries), queueing behind the daemon's concurrency limit included.
const REPLY_TIMEOUT: Duration = Duration::from_secs(240);

/// How long the shim waits for the daemon to take the connection. Connecting to a Unix
/// socket whose backlog is full blocks without bound: a daemon that stopped accepting is
/// treated as down, and the call is served here.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a call was not served by the daemon.
#[derive(Debug, thiserror::Error)]
enum ForwardError {
    /// Not reachable: no socket, connection refused, not permitted.
    #[error("the daemon at {} is down ({source})", .socket.display())]
    Down {
        socket: PathBuf,
        source: std::io::Error,
    },
    /// The daemon's end is not root's or ours.
    #[error("the process at {} runs as uid {uid}, neither root nor us", .socket.display())]
    Untrusted { socket: PathBuf, uid: u32 },
    /// The daemon declined the call.
    #[error("the daemon at {} refused the call (protocol {protocol}, ours {PROTOCOL_VERSION}): {why}", .socket.display())]
    Refused {
        socket: PathBuf,
        protocol: u32,
        why: String,
    },
    /// The connection broke or timed out after the call was sent, or the answer did not
    /// decode: the daemon may have done part of the call.
    #[error("the daemon at {} did not answer the call", .socket.display())]
    Lost {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The `daemonSocket` of a meta netconf: `Ok(None)` without one; a value that is not an
/// absolute path is code 7 naming it.
fn socket_of(netconf: &serde_json::Value) -> Result<Option<PathBuf>, Error> {
    match netconf.get(SOCKET_KEY) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(path)) if path.starts_with('/') => {
            Ok(Some(PathBuf::from(path)))
        }
        Some(other) => Err(Error::new(
            ErrorCode::INVALID_NETWORK_CONFIG,
            format!("invalid {SOCKET_KEY} {other}"),
            "must be the absolute path of the daemon's socket",
        )),
    }
}

/// Offers the call to the daemon its netconf names: `Some` with what to print when the
/// daemon served it (or when the call cannot be served at all), `None` to serve it here.
pub(crate) fn forward(stdin: &[u8]) -> Option<Outcome> {
    // VERSION needs no daemon; a netconf that does not parse is the plugin's to refuse.
    if std::env::var("CNI_COMMAND").is_ok_and(|c| c == "VERSION") {
        return None;
    }
    let netconf: serde_json::Value = serde_json::from_slice(stdin).ok()?;
    let version = netconf
        .get("cniVersion")
        .and_then(|v| v.as_str()?.parse::<Version>().ok())
        .unwrap_or(Version::LATEST);
    let socket = match socket_of(&netconf) {
        Ok(socket) => socket?,
        Err(e) => return Some(failure(&e, version)),
    };
    // It parsed as JSON, so it is UTF-8.
    let text = String::from_utf8_lossy(stdin).into_owned();
    let request = CallRequest::from_process(text);
    let is_add = std::env::var("CNI_COMMAND").is_ok_and(|c| c == "ADD");
    match exchange(&socket, &request) {
        Ok(outcome) => Some(outcome),
        Err(e @ ForwardError::Lost { .. }) if is_add => {
            tracing::warn!("{e}: not repeating an ADD that may be half done");
            let e = Error::new(
                ErrorCode::TRY_AGAIN_LATER,
                e.to_string(),
                "the daemon went away during the ADD; DEL cleans up what it made",
            );
            Some(failure(&e, version))
        }
        Err(e) => {
            tracing::warn!("{e}: serving the call here (thin mode)");
            None
        }
    }
}

fn failure(e: &Error, version: Version) -> Outcome {
    Outcome {
        stdout: e.to_json(version),
        exit_code: 1,
    }
}

/// One exchange with the daemon.
fn exchange(socket: &Path, request: &CallRequest) -> Result<Outcome, ForwardError> {
    let down = |source| ForwardError::Down {
        socket: socket.to_path_buf(),
        source,
    };
    let mut stream = connect(socket, CONNECT_TIMEOUT).map_err(down)?;
    let creds = getsockopt(&stream, sockopt::PeerCredentials)
        .map_err(|errno| down(std::io::Error::from(errno)))?;
    if creds.uid() != 0 && creds.uid() != geteuid().as_raw() {
        return Err(ForwardError::Untrusted {
            socket: socket.to_path_buf(),
            uid: creds.uid(),
        });
    }
    let body = serde_json::to_vec(request).expect("a request serializes");
    // Until the request is fully written nothing has run: a failure is "down".
    stream
        .set_write_timeout(Some(REPLY_TIMEOUT))
        .and_then(|()| stream.write_all(&body))
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write))
        .map_err(down)?;
    let lost = |source| ForwardError::Lost {
        socket: socket.to_path_buf(),
        source,
    };
    let mut reply = Vec::new();
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .and_then(|()| (&mut stream).take(MAX_MESSAGE + 1).read_to_end(&mut reply))
        .map_err(lost)?;
    let reply: CallReply = serde_json::from_slice(&reply)
        .map_err(|e| lost(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    match reply {
        CallReply::Served { stdout, exit_code } => Ok(Outcome { stdout, exit_code }),
        CallReply::Refused { protocol, why } => Err(ForwardError::Refused {
            socket: socket.to_path_buf(),
            protocol,
            why,
        }),
    }
}

/// Connects to `socket`, giving up after `timeout` when the daemon's backlog stays full.
fn connect(socket: &Path, timeout: Duration) -> std::io::Result<UnixStream> {
    let fd = nix::sys::socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let address = UnixAddr::new(socket)?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    // A non-blocking connect to a Unix socket either completes at once or, with the backlog
    // full, fails with EAGAIN (it never goes "in progress"): retry until the deadline.
    loop {
        match nix::sys::socket::connect(fd.as_raw_fd(), &address) {
            Ok(()) => break,
            Err(Errno::EAGAIN) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(Errno::EAGAIN) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("its backlog stayed full for {timeout:?}"),
                ))
            }
            Err(errno) => return Err(errno.into()),
        }
    }
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_socket_key() {
        assert_eq!(socket_of(&json!({})).unwrap(), None);
        assert_eq!(
            socket_of(&json!({"daemonSocket": "/run/meta-cni/daemon.sock"})).unwrap(),
            Some(PathBuf::from("/run/meta-cni/daemon.sock"))
        );
        for bad in [json!("relative.sock"), json!(7), json!("")] {
            let e = socket_of(&json!({ "daemonSocket": bad })).unwrap_err();
            assert_eq!(e.code, ErrorCode::INVALID_NETWORK_CONFIG, "{bad}");
        }
    }

    /// A daemon that stopped accepting, its backlog full: the connect gives up in time
    /// (a plain blocking connect would wait forever).
    #[test]
    fn a_full_backlog_is_a_daemon_down() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.sock");
        let listener = nix::sys::socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        nix::sys::socket::bind(listener.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
        nix::sys::socket::listen(&listener, nix::sys::socket::Backlog::new(0).unwrap()).unwrap();
        // Fill the backlog (never accepted), until a connect would block.
        let mut held = Vec::new();
        let full = loop {
            match connect(&path, Duration::ZERO) {
                Ok(stream) => held.push(stream),
                Err(e) => break e,
            }
            assert!(held.len() < 64, "the backlog never filled");
        };
        assert_eq!(full.kind(), std::io::ErrorKind::TimedOut, "{full}");
        let started = Instant::now();
        let e = connect(&path, Duration::from_millis(100)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        assert!(started.elapsed() < Duration::from_secs(2));
        // Accepting one frees a place: the next connect succeeds.
        let accepted = nix::sys::socket::accept(listener.as_raw_fd()).unwrap();
        nix::unistd::close(accepted).unwrap();
        connect(&path, Duration::from_secs(1)).unwrap();
    }
}
