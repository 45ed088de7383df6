//! The meta plugin's errors, typed by concern: each variant says what was being done and
//! carries the names and values a user needs, with the underlying io, serde, kube or kernel
//! error as its `#[source]`. They become CNI errors only at the [`cni::Plugin`] boundary,
//! through the one mapping in [`to_cni`]: a variant's `Display` is the CNI `msg` (what
//! failed, naming the field, value or path), its details are the `details` (why, or what to
//! do), and its code is chosen there and nowhere else.
//!
//! A delegate's `cni::Error` (from the chain, or the cni crate's own validation) is kept
//! whole inside a variant, so its code reaches the runtime unchanged.

mod source;
mod to_cni;

pub(crate) use source::{ApiError, AttemptFailure, NadFileError, NadFileRefusal, SourceError};

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use cni::Command;
use nad_crd::{AnnotationError, NadConfigError};

use super::kube_config::KubeConfigError;

/// The meta netconf is invalid.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// A key has a value of the wrong type (the cni crate's check, code kept).
    #[error("{}", .source.msg)]
    Field {
        /// The cni crate's error, naming the key and the value.
        source: cni::Error,
    },
    /// Neither `clusterNetwork` nor `delegates` is set.
    #[error("no cluster network")]
    NoClusterNetwork,
    /// A key's value is out of range or not one of the words it takes.
    #[error("invalid {key} {value:?}")]
    Invalid {
        /// The netconf key.
        key: &'static str,
        /// The value as given.
        value: String,
        /// What it must be.
        why: String,
    },
    /// A list key is neither a JSON list of strings nor one comma-separated string.
    #[error("invalid {key} {:?}", .value.to_string())]
    List {
        /// The netconf key.
        key: &'static str,
        /// The value as given.
        value: serde_json::Value,
        /// Why it does not decode as a list of names.
        source: serde_json::Error,
    },
}

/// Reading or writing the per-pod cache failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheError {
    /// The container ID makes a cache file name longer than a file name may be.
    #[error("CNI_CONTAINERID is too long")]
    NameTooLong {
        /// The length the file name would have.
        len: usize,
        /// The longest name that fits.
        max: usize,
    },
    /// Making the cache directory failed.
    #[error("create cache dir {}", .dir.display())]
    CreateDir { dir: PathBuf, source: io::Error },
    /// Encoding an entry failed (a bug: every entry encodes).
    #[error("encode cache")]
    Encode { source: serde_json::Error },
    /// Making the temporary file of an atomic write failed.
    #[error("create cache file in {}", .dir.display())]
    CreateFile { dir: PathBuf, source: io::Error },
    /// Writing the temporary file failed.
    #[error("write cache file {}", .file.display())]
    Write { file: PathBuf, source: io::Error },
    /// Renaming the temporary file over the cache file failed.
    #[error("replace cache file {}", .file.display())]
    Replace { file: PathBuf, source: io::Error },
    /// Reading a cache file failed (not: it is missing, or does not decode).
    #[error("read cache file {}", .file.display())]
    Read { file: PathBuf, source: io::Error },
    /// Removing a cache file failed (not: it was gone already).
    #[error("remove cache file {}", .file.display())]
    Remove { file: PathBuf, source: io::Error },
}

/// Taking a container's lock failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    /// The lock lives in the cache directory, which could not be made.
    #[error(transparent)]
    Dir(#[from] CacheError),
    /// Opening (or creating) the lock file failed.
    #[error("open lock file {}", .path.display())]
    Open { path: PathBuf, source: io::Error },
    /// `flock` failed.
    #[error("lock {}", .path.display())]
    Lock { path: PathBuf, source: io::Error },
}

/// Finding a network's delegate configuration failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NetworkError {
    /// Reading the NAD failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The delegate configuration is not a valid plugin or list (the cni crate's check,
    /// code kept).
    #[error("network {network}: {}", .source.msg)]
    Conf { network: String, source: cni::Error },
    /// Listing `confDir` failed.
    #[error("read confDir {}", .dir.display())]
    ReadConfDir { dir: PathBuf, source: io::Error },
    /// Listing a `clusterNetwork` or `defaultNetworks` directory failed.
    #[error("read {}", .path.display())]
    ReadDir { path: PathBuf, source: io::Error },
    /// Reading a network config file failed.
    #[error("read {}", .path.display())]
    ReadFile { path: PathBuf, source: io::Error },
    /// A network config file is not JSON.
    #[error("network config {}", .path.display())]
    Decode {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A network config file is JSON, but not an object.
    #[error("network config {}", .path.display())]
    NotAnObject { path: PathBuf },
    /// A NAD's `spec.config` is invalid.
    #[error(
        "invalid NAD {nad} {} {:?}",
        .source.field(),
        .source.value().unwrap_or_default()
    )]
    NadConfig {
        /// `<namespace>/<name>`.
        nad: String,
        source: NadConfigError,
    },
    /// A NAD with an empty config, and no `confDir` file of its name to stand for it.
    #[error("NAD {nad} has no config and confDir has no network {name:?}")]
    EmptyNad {
        nad: String,
        name: String,
        conf_dir: PathBuf,
    },
    /// A network directory with no config file in it.
    #[error("network directory {dir} holds no .conf or .conflist")]
    EmptyDirectory { dir: String },
    /// A network named by `clusterNetwork` or `defaultNetworks` is neither a NAD nor a
    /// `confDir` file.
    #[error("network {name:?} not found")]
    NotFound {
        name: String,
        namespace: String,
        /// Where the NAD was looked for.
        looked: String,
        conf_dir: PathBuf,
    },
}

/// The devices of NADs that name a `resourceName` could not be found.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeviceError {
    /// A NAD names a resource, and the runtime named no pod to ask the kubelet about.
    #[error("network {network} needs a device of {resource}, and K8S_POD_NAME is not set")]
    NoPod { network: String, resource: String },
    /// Neither the PodResources API nor the checkpoint could be read.
    #[error("the kubelet's device allocations are unavailable")]
    Unavailable {
        /// Why the API failed; `None` when its socket does not exist.
        api: Option<Box<pod_resources::PodResourcesError>>,
        /// Why the checkpoint failed; `None` when the runtime gave no `K8S_POD_UID` to
        /// look it up by.
        checkpoint: Option<Box<pod_resources::CheckpointError>>,
    },
    /// A DRA ResourceClaim of the pod, or the ResourceSlices of its driver, could not be read.
    #[error("read DRA claim {claim}")]
    Claim {
        claim: String,
        source: Box<SourceError>,
    },
    /// A ResourceClaim the pod names does not exist.
    #[error("the pod's DRA claim {claim} does not exist")]
    ClaimMissing { claim: String },
    /// A ResourceClaim of the pod has no allocation yet.
    #[error("the pod's DRA claim {claim} is not allocated")]
    ClaimUnallocated { claim: String },
    /// The pod has fewer devices of a resource than NADs asking for one.
    #[error("network {network} needs a device of {resource}, and the kubelet allocated the pod none left")]
    Exhausted {
        network: String,
        resource: String,
        /// How many the pod has.
        allocated: usize,
    },
}

/// Resolving or checking the attachment plan failed; nothing was made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlanError {
    /// A network of the plan could not be found or read.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// A selection (annotation or static `networks`) does not parse.
    #[error("invalid {field} {:?}", .source.value())]
    Selection {
        /// Where it came from, with the entry and field when known.
        field: String,
        /// Boxed: it is the largest of the plan's errors, and every result carries the size.
        source: Box<AnnotationError>,
    },
    /// `K8S_POD_NAMESPACE` is not a valid namespace.
    #[error("invalid K8S_POD_NAMESPACE {namespace:?}")]
    PodNamespace {
        namespace: String,
        why: &'static str,
    },
    /// `namespaceIsolation` refuses a network of another namespace.
    #[error("invalid networks {network:?}")]
    Isolated {
        network: String,
        pod_namespace: String,
        global_namespaces: Vec<String>,
    },
    /// A selected NAD does not exist.
    #[error("invalid {field} {network:?}")]
    NoSuchNad {
        /// The annotation or key that selected it.
        field: &'static str,
        network: String,
        /// Where it was looked for.
        looked: String,
    },
    /// Two attachments would get the same interface name.
    #[error("invalid interface {ifname:?}")]
    InterfaceTaken { ifname: String, network: String },
    /// Two attachments ask for the default route of one family.
    #[error("invalid default-route {:?}", .gateway.to_string())]
    DefaultRouteTaken { gateway: IpAddr, holder: String },
    /// `CNI_NETNS` could not be opened.
    #[error("open netns {}", .path.display())]
    Netns {
        path: PathBuf,
        source: kernel::Error,
    },
    /// The pod's interfaces could not be listed.
    #[error("list the pod's interfaces")]
    ListLinks { source: kernel::Error },
    /// An interface of the plan exists in the pod already.
    #[error("interface {ifname} already exists in the pod")]
    InterfaceExists { ifname: String, network: String },
    /// The devices the kubelet allocated could not be found.
    #[error(transparent)]
    Devices(#[from] DeviceError),
}

/// A network's delegates failed, or cannot run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AttachmentError {
    /// A delegate (or the chain running it) failed; its code is kept.
    #[error("network {network} ({ifname}) {verb}: {}", .source.msg)]
    Delegate {
        network: String,
        ifname: String,
        verb: Command,
        /// Boxed, as are other large sources: every result of a verb carries the size.
        source: Box<cni::Error>,
    },
    /// CHECK of an attachment whose ADD did not finish.
    #[error("network {network} ({ifname}) has no cached ADD result")]
    NoCachedResult { network: String, ifname: String },
    /// The attachment's device-info file could not be removed after its DEL.
    #[error("network {network} ({ifname}): remove device-info file {}", .file.display())]
    DeviceInfoFile {
        network: String,
        ifname: String,
        file: PathBuf,
        source: io::Error,
    },
}

/// Moving the default route to the attachment that asked for it failed.
#[derive(Debug, thiserror::Error)]
#[error("default-route via {gateway} on {ifname}: {step}")]
pub(crate) struct DefaultRouteError {
    pub(crate) gateway: IpAddr,
    pub(crate) ifname: String,
    /// What was being done: `open netlink`, `list routes`, ...
    pub(crate) step: &'static str,
    /// The kernel's error (boxed: it is large); none when the interface is simply not there.
    pub(crate) source: Option<Box<kernel::Error>>,
}

/// A verb of the meta plugin failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MetaError {
    /// Loading the meta netconf.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Reading or writing the cache.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Taking the container's lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Reading the pod, or writing its network-status.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Boxed: a plan's errors are the largest, and every result of a verb carries the size.
    #[error(transparent)]
    Plan(Box<PlanError>),
    /// Running a network's delegates.
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
    /// Moving the default route.
    #[error(transparent)]
    DefaultRoute(#[from] DefaultRouteError),
    /// `readinessindicatorfile` did not appear in time.
    #[error("the cluster network is not ready")]
    NotReady { file: PathBuf, waited: Duration },
    /// ADD of a (container, interface) pair that has an attachment.
    #[error("container {container_id} already has an attachment on {ifname}")]
    AlreadyAttached {
        container_id: String,
        ifname: String,
    },
    /// CHECK of a pair with no attachment.
    #[error("no attachment of {container_id} on {ifname}")]
    NotAttached {
        container_id: String,
        ifname: String,
    },
    /// CHECK with a cache file that does not decode or belongs to another pair.
    #[error("cache {} is corrupt", .file.display())]
    CorruptCache { file: PathBuf, why: String },
    /// DEL with a corrupt cache and no pod to read the selected networks from: the
    /// config's networks were deleted, the pod's cannot be known.
    #[error("cache {} is corrupt and the pod's annotation is unavailable", .file.display())]
    CorruptCacheNoPod {
        file: PathBuf,
        why: String,
        /// Why the pod could not be read.
        pod: String,
    },
    /// Several failures of one verb (DEL, GC, rollback): the first stands for them all.
    #[error("{first}")]
    Several {
        first: Box<MetaError>,
        rest: Vec<MetaError>,
    },
    /// ADD failed and undoing it failed too: the cache stays for DEL to retry.
    #[error("{failure}")]
    RollbackIncomplete {
        failure: Box<MetaError>,
        rollback: Box<MetaError>,
    },
    /// STATUS: the plugin is not ready to serve ADD.
    #[error("{0}")]
    Unavailable(Box<MetaError>),
}

impl From<PlanError> for MetaError {
    fn from(e: PlanError) -> Self {
        MetaError::Plan(Box::new(e))
    }
}
