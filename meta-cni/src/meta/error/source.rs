//! The errors of reading pods, namespaces and NADs: from `nadDir` and `policyDir` files, and
//! from the Kubernetes API.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::meta::kube_config::KubeConfigError;

/// Why a NAD file was refused (it is read, but is not what its path says).
#[derive(Debug, thiserror::Error)]
pub(crate) enum NadFileRefusal {
    /// A FIFO, device or directory: reading it could block or never end.
    #[error("not a regular file")]
    NotRegular,
    /// Larger than any real NAD.
    #[error("{len} bytes; at most {max} are read")]
    TooLarge { len: u64, max: u64 },
    /// Another API group or version.
    #[error("apiVersion is {found:?}, not {expected}")]
    ApiVersion {
        found: String,
        expected: &'static str,
    },
    /// Another kind of object.
    #[error("kind is {found:?}, not {expected}")]
    Kind {
        found: String,
        expected: &'static str,
    },
    /// YAML, but not shaped as a NAD. The decoder's message is not kept: it may quote the
    /// file, and the file may hold what must not reach a log.
    #[error(
        "not shaped as a NetworkAttachmentDefinition ({category:?} error at the top level: \
         metadata must be an object, spec.config a string)"
    )]
    Shape {
        category: serde_json::error::Category,
    },
    /// `metadata.name` is not the name in the path.
    #[error("metadata.name is {found:?}, but the file is NAD {expected}")]
    Name { found: String, expected: String },
    /// `metadata.namespace` is not the directory the file is in.
    #[error("metadata.namespace is {found:?}, but the file is in namespace {expected}")]
    Namespace { found: String, expected: String },
}

/// Reading a NAD from `nadDir` (or a policy object from `policyDir`) failed, or a NAD
/// reference is not a valid name.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NadFileError {
    /// A namespace or NAD name that must not become a path or URL.
    #[error("invalid {field} {value:?}")]
    InvalidRef {
        /// `network namespace` or `network name`.
        field: &'static str,
        /// The name as given.
        value: String,
        /// The rule it breaks.
        why: &'static str,
    },
    /// Opening the file failed (not: it does not exist).
    #[error("open {}", .path.display())]
    Open { path: PathBuf, source: io::Error },
    /// Reading its metadata failed.
    #[error("stat {}", .path.display())]
    Stat { path: PathBuf, source: io::Error },
    /// Reading its text failed.
    #[error("read {}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    /// Listing `policyDir` (or a directory in it) failed (not: it does not exist).
    #[error("read directory {}", .dir.display())]
    ReadDir { dir: PathBuf, source: io::Error },
    /// The file is not YAML; said by position only (the parser's message may quote it).
    #[error("{} is not valid YAML", .path.display())]
    NotYaml {
        path: PathBuf,
        /// Line and column of the problem, when the parser knows them.
        at: Option<(u64, u64)>,
    },
    /// The file is not the NAD its path names (or not an object `policyDir` holds).
    #[error("invalid file {}", .path.display())]
    Refused {
        path: PathBuf,
        #[source]
        why: NadFileRefusal,
    },
}

/// Why the last attempt of an API request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AttemptFailure {
    /// The client or the server failed in a way that may pass.
    #[error(transparent)]
    Kube(kube::Error),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A Kubernetes API request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The client's current-thread runtime did not start.
    #[error("start the Kubernetes client's runtime")]
    Runtime { source: io::Error },
    /// The kubeconfig or the service account does not make a client config.
    #[error(transparent)]
    Config(#[from] KubeConfigError),
    /// The client could not be built from the configuration `from` (a kubeconfig, the
    /// service account).
    #[error("invalid {from}")]
    Client { from: String, source: kube::Error },
    /// The TLS handshake with the API server failed: its certificate is not of the CA
    /// configured, or it refused ours. Retrying will not change that.
    #[error("Kubernetes API {server}: {what}: TLS handshake failed")]
    Tls {
        /// The API server's URL.
        server: String,
        what: String,
        /// rustls's reason (`invalid peer certificate: UnknownIssuer`, ...).
        why: String,
    },
    /// The API answered with an error status that retrying will not change.
    #[error("Kubernetes API: {what}: {status} {reason}")]
    Refused {
        /// The request, e.g. `GET pod default/p`.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The status reason (`Forbidden`, ...), else its summary.
        reason: String,
        /// The API's message.
        message: String,
    },
    /// The answer did not decode.
    #[error("Kubernetes API: {what}")]
    Decode {
        what: String,
        source: serde_json::Error,
    },
    /// Any other failure that retrying will not fix.
    #[error("Kubernetes API: {what}")]
    Failed { what: String, source: kube::Error },
    /// Every attempt failed transiently.
    #[error("Kubernetes API: {what}: no success after {attempts} attempts")]
    GaveUp {
        what: String,
        attempts: u32,
        #[source]
        last: AttemptFailure,
    },
    /// The pod whose status was to be patched does not exist.
    #[error("pod {namespace}/{name} is gone")]
    PodGone {
        namespace: String,
        name: String,
        /// The request that found it gone.
        what: String,
    },
}

/// Reading pods and NADs failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    /// From the API; shared, as a prefetched answer may be read twice.
    #[error(transparent)]
    Api(Arc<ApiError>),
    /// From `nadDir`, or a NAD reference that is not a valid name.
    #[error(transparent)]
    NadFile(#[from] NadFileError),
    /// `K8S_POD_NAME` is not a valid pod name.
    #[error("invalid K8S_POD_NAME {name:?}")]
    PodName { name: String, why: &'static str },
    /// ADD of a pod that the API no longer has (or has again, under another UID).
    #[error("the pod to attach is gone")]
    PodGone {
        /// How it was found gone.
        why: String,
    },
}

impl From<ApiError> for SourceError {
    fn from(e: ApiError) -> Self {
        SourceError::Api(Arc::new(e))
    }
}
