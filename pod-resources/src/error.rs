//! Why the kubelet's allocations could not be read.

use std::path::PathBuf;

/// Asking the kubelet's PodResources API failed.
#[derive(Debug, thiserror::Error)]
pub enum PodResourcesError {
    /// The request's runtime did not start.
    #[error("start the PodResources client's runtime")]
    Runtime {
        /// Why.
        source: std::io::Error,
    },
    /// The socket did not take a connection.
    #[error("connect to the kubelet's pod-resources socket {}", .socket.display())]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// Why.
        source: tonic::transport::Error,
    },
    /// The kubelet answered with an error status.
    #[error("PodResources {method} on {}: {}", .socket.display(), .status.message())]
    Call {
        /// The socket.
        socket: PathBuf,
        /// `Get` or `List`.
        method: &'static str,
        /// The gRPC status.
        status: Box<tonic::Status>,
    },
    /// No answer in time.
    #[error("PodResources {method} on {}: no answer within {timeout:?}", .socket.display())]
    Timeout {
        /// The socket.
        socket: PathBuf,
        /// `Get` or `List`.
        method: &'static str,
        /// The bound.
        timeout: std::time::Duration,
    },
}

/// Reading the device manager's checkpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read.
    #[error("read the device-plugin checkpoint {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not the checkpoint's JSON.
    #[error("decode the device-plugin checkpoint {}", .path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}
