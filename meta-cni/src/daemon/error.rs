//! Why the daemon could not start or keep serving. It exits non-zero with the error and its
//! sources on stderr (or the log file); nothing on the node is changed on the way out.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::settings::SettingsError;
use crate::meta::ApiError;

/// The daemon's fatal errors.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DaemonError {
    /// A command-line flag is wrong.
    #[error("meta-cni-daemon: {0}")]
    Settings(#[from] SettingsError),
    /// The async runtime did not start.
    #[error("start the runtime")]
    Runtime {
        /// The runtime builder's error.
        source: std::io::Error,
    },
    /// The kubeconfig did not make a client.
    #[error("connect to the Kubernetes API")]
    Cluster {
        /// The client's error.
        source: ApiError,
    },
    /// The socket could not be set up.
    #[error("{doing} {}", .path.display())]
    Socket {
        /// What was being done.
        doing: &'static str,
        /// The socket or its directory.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The health and metrics port could not be bound.
    #[error("listen on {addr} for health and metrics")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The system's error.
        source: std::io::Error,
    },
    /// SIGTERM or SIGINT could not be watched for.
    #[error("watch for SIGTERM and SIGINT")]
    Signal {
        /// The system's error.
        source: std::io::Error,
    },
}
