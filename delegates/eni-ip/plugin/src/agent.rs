//! The plugin's calls to the node agent, and how the agent's failures become CNI errors.
//!
//! Codes: an agent that is absent, unreachable, starting, out of addresses, or of another
//! protocol version is code 11 ("try again later"): each is a state that passes (the agent
//! restarts, attaches an ENI, or the rollout finishes replacing the other version), and the
//! runtime retries a failed ADD anyway, so the message says what to wait for or fix. The
//! pool running dry is 11 as upstream's kubelet retries rely on: the agent grows the pool
//! in the background. An untrusted process on the socket is a configuration error (7,
//! naming `agentSocket`); an answer the plugin cannot use is 100; an agent failing inside
//! (its checkpoint not written) is 5.

use cni::{Error, ErrorCode, Request};
use eni_ip::protocol::client::{Client, ClientError};
use eni_ip::protocol::{AttachmentKey, ErrorCode as AgentCode};

use crate::config::Config;

/// How the plugin names itself to the agent (upstream's `ClientVersion`).
const CLIENT_NAME: &str = concat!("eni-ip ", env!("CARGO_PKG_VERSION"));

/// A client of the agent the netconf names.
pub(crate) fn client(config: &Config) -> Client {
    Client::new(&config.agent_socket, CLIENT_NAME)
}

/// The allocation key of this call: the network, `CNI_CONTAINERID`, `CNI_IFNAME`.
pub(crate) fn key(config: &Config, req: &Request) -> AttachmentKey {
    AttachmentKey {
        network: config.network.clone(),
        container_id: req.inv.container_id.clone(),
        ifname: req.inv.ifname.clone(),
    }
}

/// Whether a failure means the agent could not be told at all (absent, unreachable, not
/// started, another version): the address it holds is reclaimed when it comes back, so a
/// DEL still succeeds once the per-pod state is gone.
pub(crate) fn is_unreachable(err: &ClientError) -> bool {
    match err {
        ClientError::Unavailable { .. }
        | ClientError::Io { .. }
        | ClientError::VersionMismatch { .. } => true,
        ClientError::Agent(e) => matches!(e.code, AgentCode::NotReady | AgentCode::VersionMismatch),
        _ => false,
    }
}

/// The CNI error for a failed call made while `doing` (e.g. "ask the ENI agent for an
/// address").
pub(crate) fn to_cni(doing: &str, err: ClientError) -> Error {
    let later =
        |what: String| Error::new(ErrorCode::TRY_AGAIN_LATER, format!("{doing}: {what}"), "");
    match err {
        ClientError::Unavailable { socket, source } => Error::new(
            ErrorCode::TRY_AGAIN_LATER,
            format!(
                "{doing}: the ENI agent is not running (nothing listens on {}): try again later",
                socket.display()
            ),
            format!("{source}; start eni-ipamd, or set agentSocket to where it listens"),
        ),
        e @ ClientError::Io { .. } => {
            let detail = std::error::Error::source(&e).map(ToString::to_string);
            Error::new(
                ErrorCode::TRY_AGAIN_LATER,
                format!("{doing}: {e}: try again later"),
                detail.unwrap_or_default(),
            )
        }
        e @ ClientError::VersionMismatch { .. } => later(e.to_string()),
        ClientError::UntrustedPeer { socket, uid, ours } => Error::invalid_config(
            "agentSocket",
            socket.display(),
            format!("the process listening there runs as uid {uid}, not root or uid {ours}"),
        ),
        ClientError::Agent(agent) => {
            let code = match agent.code {
                AgentCode::NotReady
                | AgentCode::NoAvailableAddresses
                | AgentCode::VersionMismatch => ErrorCode::TRY_AGAIN_LATER,
                AgentCode::BadRequest => ErrorCode::INTERNAL,
                AgentCode::Internal => ErrorCode::IO_FAILURE,
            };
            let hint = match agent.code {
                AgentCode::NotReady => "the agent is still starting: try again later",
                AgentCode::NoAvailableAddresses => {
                    "no address is free and the pool cannot grow now: try again later"
                }
                AgentCode::VersionMismatch => "run an agent of this plugin's version",
                AgentCode::BadRequest => "the agent refused the request as malformed",
                AgentCode::Internal => "the agent failed inside",
            };
            Error::new(
                code,
                format!("{doing}: the ENI agent refused: {}", agent.message),
                format!("{hint} ({:?})", agent.code),
            )
        }
        e @ (ClientError::Malformed { .. } | ClientError::UnexpectedReply { .. }) => {
            Error::new(ErrorCode::INTERNAL, format!("{doing}: {e}"), "")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eni_ip::protocol::AgentError;
    use std::path::PathBuf;

    fn agent(code: AgentCode) -> ClientError {
        ClientError::Agent(AgentError {
            code,
            message: "m".into(),
        })
    }

    #[test]
    fn codes_follow_what_a_retry_can_fix() {
        let absent = ClientError::Unavailable {
            socket: PathBuf::from("/run/x.sock"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let e = to_cni("ask the ENI agent for an address", absent);
        assert_eq!(e.code, ErrorCode::TRY_AGAIN_LATER);
        assert!(
            e.msg.contains("not running") && e.msg.contains("/run/x.sock"),
            "{e}"
        );
        assert!(e.msg.contains("try again later"), "{e}");

        let other = ClientError::VersionMismatch {
            socket: PathBuf::from("/s"),
            server: "eni-ipamd 9".into(),
            theirs: 2,
            ours: 1,
        };
        assert!(is_unreachable(&other));
        let e = to_cni("x", other);
        assert!(
            e.msg.contains("version 2") && e.msg.contains("speaks 1"),
            "{e}"
        );

        assert_eq!(
            to_cni("x", agent(AgentCode::NoAvailableAddresses)).code,
            ErrorCode::TRY_AGAIN_LATER
        );
        assert_eq!(
            to_cni("x", agent(AgentCode::NotReady)).code,
            ErrorCode::TRY_AGAIN_LATER
        );
        assert_eq!(
            to_cni("x", agent(AgentCode::Internal)).code,
            ErrorCode::IO_FAILURE
        );
        assert_eq!(
            to_cni("x", agent(AgentCode::BadRequest)).code,
            ErrorCode::INTERNAL
        );
        assert!(!is_unreachable(&agent(AgentCode::Internal)));

        let untrusted = ClientError::UntrustedPeer {
            socket: PathBuf::from("/s"),
            uid: 1000,
            ours: 0,
        };
        let e = to_cni("x", untrusted);
        assert_eq!(e.code, ErrorCode::INVALID_NETWORK_CONFIG);
        assert!(e.msg.contains("agentSocket"), "{e}");
    }
}
