//! The plugin's side of the protocol: a blocking client, one connection per call.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{getsockopt, sockopt};
use nix::unistd::geteuid;

use super::{
    AddNetwork, AgentError, Assigned, AttachmentKey, Call, Collected, DelNetwork, Gc, Lookup,
    Outcome, Released, Request, Response, Status, MAX_MESSAGE, PROTOCOL_VERSION,
};

/// Why a call to the agent failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (no file, or a stale one): the agent is not running.
    #[error("the ENI agent is not running: nothing listens on {socket}")]
    Unavailable {
        /// The socket tried.
        socket: PathBuf,
        /// The connect error.
        #[source]
        source: io::Error,
    },
    /// The exchange failed after connecting (a timeout, a reset).
    #[error("talking to the ENI agent on {socket} failed while {doing}")]
    Io {
        /// The socket.
        socket: PathBuf,
        /// What was being done.
        doing: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The process on the socket is neither root nor our own user.
    #[error("refusing the ENI agent socket {socket}: its process runs as uid {uid}, not root or uid {ours}")]
    UntrustedPeer {
        /// The socket.
        socket: PathBuf,
        /// The peer's uid.
        uid: u32,
        /// Our effective uid.
        ours: u32,
    },
    /// The agent's answer is not a [`Response`].
    #[error("the ENI agent on {socket} sent an answer that is not protocol JSON")]
    Malformed {
        /// The socket.
        socket: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The agent speaks another protocol version.
    #[error("the ENI agent on {socket} ({server}) speaks protocol version {theirs}, this plugin speaks {ours}: run matching versions")]
    VersionMismatch {
        /// The socket.
        socket: PathBuf,
        /// The agent's name and version.
        server: String,
        /// Its protocol version.
        theirs: u32,
        /// Ours.
        ours: u32,
    },
    /// The agent refused or failed the call.
    #[error("the ENI agent refused the call: {0}")]
    Agent(AgentError),
    /// The agent answered a call with the reply of another.
    #[error("the ENI agent answered a {call} call with a {got} reply")]
    UnexpectedReply {
        /// The call made.
        call: &'static str,
        /// The reply's kind.
        got: &'static str,
    },
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?})", self.message, self.code)
    }
}

/// A client of the agent on one socket path.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    timeout: Duration,
    name: String,
}

impl Client {
    /// How long one exchange may take unless set otherwise: an assign that must attach an
    /// ENI waits for EC2, which takes seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// A client of the agent listening on `socket`, naming itself `name` (its version).
    pub fn new(socket: impl Into<PathBuf>, name: impl Into<String>) -> Self {
        Client {
            socket: socket.into(),
            timeout: Self::DEFAULT_TIMEOUT,
            name: name.into(),
        }
    }

    /// The same client with another per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Asks for an address (idempotent per key).
    pub fn add_network(&self, add: AddNetwork) -> Result<Assigned, ClientError> {
        match self.call(Call::AddNetwork(add))? {
            Outcome::Assigned(assigned) => Ok(assigned),
            other => Err(unexpected("AddNetwork", &other)),
        }
    }

    /// Returns an address (idempotent per key).
    pub fn del_network(&self, del: DelNetwork) -> Result<Released, ClientError> {
        match self.call(Call::DelNetwork(del))? {
            Outcome::Released(released) => Ok(released),
            other => Err(unexpected("DelNetwork", &other)),
        }
    }

    /// Releases a network's allocations that are not among the valid attachments.
    pub fn gc(&self, gc: Gc) -> Result<Collected, ClientError> {
        match self.call(Call::Gc(gc))? {
            Outcome::Collected(collected) => Ok(collected),
            other => Err(unexpected("Gc", &other)),
        }
    }

    /// The agent's readiness and pool.
    pub fn status(&self) -> Result<Status, ClientError> {
        match self.call(Call::Status)? {
            Outcome::Status(status) => Ok(status),
            other => Err(unexpected("Status", &other)),
        }
    }

    /// What an attachment holds, changing nothing (`None`: no address).
    pub fn lookup(&self, key: AttachmentKey) -> Result<Option<Assigned>, ClientError> {
        match self.call(Call::Lookup(Lookup { key }))? {
            Outcome::Found(found) => Ok(found.assigned),
            other => Err(unexpected("Lookup", &other)),
        }
    }

    /// One exchange: connect, check the peer, send, read the answer, check its version.
    /// An [`Outcome::Error`] comes back as [`ClientError::Agent`].
    pub fn call(&self, call: Call) -> Result<Outcome, ClientError> {
        let io = |doing| {
            let socket = self.socket.clone();
            move |source| ClientError::Io {
                socket,
                doing,
                source,
            }
        };
        let mut stream =
            UnixStream::connect(&self.socket).map_err(|source| ClientError::Unavailable {
                socket: self.socket.clone(),
                source,
            })?;
        check_peer(&stream).map_err(|err| match err {
            PeerError::Io(source) => io("reading its peer credentials")(source),
            PeerError::Untrusted { uid, ours } => ClientError::UntrustedPeer {
                socket: self.socket.clone(),
                uid,
                ours,
            },
        })?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(io("setting its timeouts"))?;
        let request = Request {
            protocol: PROTOCOL_VERSION,
            client: self.name.clone(),
            call,
        };
        let mut line = serde_json::to_vec(&request).expect("a request serializes");
        line.push(b'\n');
        stream
            .write_all(&line)
            .and_then(|()| stream.shutdown(Shutdown::Write))
            .map_err(io("sending the request"))?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_MESSAGE)
            .read_to_end(&mut answer)
            .map_err(io("reading the answer"))?;
        let response = parse_response(&answer).map_err(|source| ClientError::Malformed {
            socket: self.socket.clone(),
            source,
        })?;
        if response.protocol != PROTOCOL_VERSION {
            return Err(ClientError::VersionMismatch {
                socket: self.socket.clone(),
                server: response.server,
                theirs: response.protocol,
                ours: PROTOCOL_VERSION,
            });
        }
        match response.outcome {
            Outcome::Error(err) => Err(ClientError::Agent(err)),
            outcome => Ok(outcome),
        }
    }
}

/// Parses an answer, looking at its version before its outcome so that an agent of another
/// version is reported as such even when its outcome has another shape.
fn parse_response(bytes: &[u8]) -> Result<Response, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        protocol: u32,
        #[serde(default)]
        server: String,
    }
    let envelope: Envelope = serde_json::from_slice(bytes)?;
    if envelope.protocol != PROTOCOL_VERSION {
        return Ok(Response {
            protocol: envelope.protocol,
            server: envelope.server,
            outcome: Outcome::Released(Released { address: None }),
        });
    }
    serde_json::from_slice(bytes)
}

fn unexpected(call: &'static str, got: &Outcome) -> ClientError {
    ClientError::UnexpectedReply {
        call,
        got: got.kind(),
    }
}

impl Outcome {
    /// The outcome's kind, as named on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Assigned(_) => "assigned",
            Outcome::Released(_) => "released",
            Outcome::Collected(_) => "collected",
            Outcome::Status(_) => "status",
            Outcome::Found(_) => "found",
            Outcome::Error(_) => "error",
        }
    }
}

/// Why a peer is not trusted.
#[derive(Debug)]
pub enum PeerError {
    /// Its credentials could not be read.
    Io(io::Error),
    /// It runs as another, unprivileged user.
    Untrusted {
        /// The peer's uid.
        uid: u32,
        /// Our effective uid.
        ours: u32,
    },
}

/// Checks the process at the other end of a Unix socket by `SO_PEERCRED`: root, or the same
/// user as us. Both ends use it: the agent hands out addresses only to such callers, and the
/// plugin trusts answers only from such an agent.
pub fn check_peer(socket: &impl AsFd) -> Result<u32, PeerError> {
    let creds = getsockopt(socket, sockopt::PeerCredentials)
        .map_err(|errno| PeerError::Io(io::Error::from(errno)))?;
    let ours = geteuid().as_raw();
    let uid = creds.uid();
    if uid == 0 || uid == ours {
        Ok(uid)
    } else {
        Err(PeerError::Untrusted { uid, ours })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AttachmentKey, ErrorCode, ValidAttachment};
    use std::os::unix::net::UnixListener;
    use std::thread;

    fn key() -> AttachmentKey {
        AttachmentKey {
            network: "vpc".into(),
            container_id: "c1".into(),
            ifname: "eth0".into(),
        }
    }

    /// A one-shot server that answers the next connection with `answer`, returning what it read.
    fn serve_once(answer: Vec<u8>) -> (tempfile::TempDir, PathBuf, thread::JoinHandle<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            check_peer(&stream).unwrap();
            let mut got = Vec::new();
            stream.read_to_end(&mut got).unwrap();
            stream.write_all(&answer).unwrap();
            got
        });
        (dir, path, handle)
    }

    #[test]
    fn a_call_sends_one_versioned_json_line_and_reads_the_reply() {
        let reply = Response {
            protocol: PROTOCOL_VERSION,
            server: "eni-ipamd test".into(),
            outcome: Outcome::Released(Released {
                address: Some("10.0.0.5".parse().unwrap()),
            }),
        };
        let (_dir, path, server) = serve_once(serde_json::to_vec(&reply).unwrap());
        let released = Client::new(&path, "eni-ip test")
            .del_network(DelNetwork {
                key: key(),
                reason: "PodDeleted".into(),
            })
            .unwrap();
        assert_eq!(released.address, Some("10.0.0.5".parse().unwrap()));
        let sent = server.join().unwrap();
        assert_eq!(sent.last(), Some(&b'\n'));
        let request: Request = serde_json::from_slice(&sent).unwrap();
        assert_eq!(request.protocol, PROTOCOL_VERSION);
        assert_eq!(request.client, "eni-ip test");
        assert!(matches!(request.call, Call::DelNetwork(ref del) if del.key == key()));
    }

    #[test]
    fn an_agent_of_another_version_is_named_even_when_its_reply_has_another_shape() {
        let answer =
            br#"{"protocol": 2, "server": "eni-ipamd 9.9", "outcome": {"kind": "somethingNew"}}"#;
        let (_dir, path, _server) = serve_once(answer.to_vec());
        let err = Client::new(&path, "t").status().unwrap_err();
        assert!(
            matches!(err, ClientError::VersionMismatch { theirs: 2, ours: PROTOCOL_VERSION, ref server, .. } if server == "eni-ipamd 9.9"),
            "{err:?}"
        );
        assert!(err.to_string().contains("protocol version 2"), "{err}");
    }

    #[test]
    fn a_lookup_sends_the_key_and_reads_what_it_holds() {
        let reply = Response {
            protocol: PROTOCOL_VERSION,
            server: "s".into(),
            outcome: Outcome::Found(super::super::Found { assigned: None }),
        };
        let (_dir, path, server) = serve_once(serde_json::to_vec(&reply).unwrap());
        assert_eq!(Client::new(&path, "t").lookup(key()).unwrap(), None);
        let request: Request = serde_json::from_slice(&server.join().unwrap()).unwrap();
        assert!(matches!(request.call, Call::Lookup(ref l) if l.key == key()));
    }

    #[test]
    fn an_agent_error_comes_back_typed() {
        let reply = Response {
            protocol: PROTOCOL_VERSION,
            server: "s".into(),
            outcome: Outcome::Error(AgentError {
                code: ErrorCode::NoAvailableAddresses,
                message: "the instance's 3 ENIs are full".into(),
            }),
        };
        let (_dir, path, _server) = serve_once(serde_json::to_vec(&reply).unwrap());
        let err = Client::new(&path, "t")
            .add_network(AddNetwork {
                key: key(),
                netns: String::new(),
                pod_namespace: String::new(),
                pod_name: String::new(),
            })
            .unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Agent(AgentError {
                    code: ErrorCode::NoAvailableAddresses,
                    ..
                })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn garbage_and_wrong_replies_are_errors_not_panics() {
        let (_dir, path, _server) = serve_once(b"not json".to_vec());
        let err = Client::new(&path, "t").status().unwrap_err();
        assert!(matches!(err, ClientError::Malformed { .. }), "{err:?}");

        let reply = Response {
            protocol: PROTOCOL_VERSION,
            server: "s".into(),
            outcome: Outcome::Released(Released { address: None }),
        };
        let (_dir, path, _server) = serve_once(serde_json::to_vec(&reply).unwrap());
        let err = Client::new(&path, "t").status().unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::UnexpectedReply {
                    call: "Status",
                    got: "released"
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn no_agent_is_unavailable_naming_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.sock");
        let err = Client::new(&path, "t").status().unwrap_err();
        assert!(matches!(err, ClientError::Unavailable { .. }), "{err:?}");
        assert!(err.to_string().contains("absent.sock"), "{err}");
    }

    #[test]
    fn requests_round_trip_and_refuse_unknown_fields() {
        let request = Request {
            protocol: PROTOCOL_VERSION,
            client: "c".into(),
            call: Call::Gc(Gc {
                network: "vpc".into(),
                valid: vec![ValidAttachment {
                    container_id: "c1".into(),
                    ifname: "eth0".into(),
                }],
            }),
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), request);
        let extra = json.replacen('{', r#"{"surprise":1,"#, 1);
        assert!(serde_json::from_str::<Request>(&extra).is_err());
    }
}
