//! The meta plugin's netconf: a Multus thin-mode netconf (same keys, same defaults) plus our
//! own `nadDir`, `policyDir`, `networks`, `resultMode`, `apiTimeoutSeconds`, `apiRetries`,
//! `readinessTimeoutSeconds`, and where the kubelet's device allocations and device-info files
//! are (`podResourcesSocket`, `deviceCheckpoint`, `deviceInfoDir`). Every problem is a code-7 error naming the key.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use cni::Request;

use super::error::ConfigError;
use super::kube_config::KubeSource;

/// Multus's defaults.
const DEFAULT_CONF_DIR: &str = "/etc/cni/multus/net.d";
const DEFAULT_CNI_DIR: &str = "/var/lib/cni/multus";
const DEFAULT_BIN_DIR: &str = "/opt/cni/bin";
const DEFAULT_MULTUS_NAMESPACE: &str = "kube-system";
/// Where NAD files are read from when neither a kubeconfig nor `nadDir` is given.
pub(crate) const DEFAULT_NAD_DIR: &str = "/etc/cni/meta-cni/nads";
/// Where standalone mode reads MultiNetworkPolicy, Pod and Namespace objects.
const DEFAULT_POLICY_DIR: &str = "/etc/cni/meta-cni/policies";
/// One API request's bound. Multus's 250 ms fails on busy API servers (its issue #1461).
const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries of a request that failed with 5xx, 429, a timeout or a connection error.
const DEFAULT_API_RETRIES: u32 = 4;
const MAX_API_RETRIES: u32 = 20;
/// The device-info spec's directory: `dp/` holds the device plugins' files, `cni/` the CNIs'.
const DEFAULT_DEVICE_INFO_DIR: &str = "/var/run/k8s.cni.cncf.io/devinfo";
/// How long ADD, STATUS and GC wait for `readinessindicatorfile` (Multus waits 45 s).
const DEFAULT_READINESS_TIMEOUT: Duration = Duration::from_secs(45);

/// What ADD prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResultMode {
    /// Every attachment, cluster network first, interface indexes remapped.
    Merged,
    /// The cluster network's result only, as Multus prints it.
    Cluster,
}

/// The validated meta netconf.
#[derive(Debug, Clone)]
pub(crate) struct MetaConf {
    /// `clusterNetwork` (a NAD name, a file or a directory).
    pub(crate) cluster_network: Option<String>,
    /// `delegates`: used only without `clusterNetwork`; the first is the cluster network.
    pub(crate) delegates: Vec<Value>,
    /// `defaultNetworks`.
    pub(crate) default_networks: Vec<String>,
    /// Kubernetes mode when set: `kubeconfig`, else the pod's service account when
    /// `KUBERNETES_SERVICE_HOST` is set (in `serviceAccountDir`, default the kubelet's
    /// mount), as Multus chooses.
    pub(crate) kube: Option<KubeSource>,
    /// `confDir`.
    pub(crate) conf_dir: PathBuf,
    /// `cniDir`: where the per-attachment cache lives.
    pub(crate) cni_dir: PathBuf,
    /// `binDir`: put in front of `CNI_PATH` for delegates.
    pub(crate) bin_dir: PathBuf,
    /// `multusNamespace`.
    pub(crate) multus_namespace: String,
    /// `namespaceIsolation`.
    pub(crate) namespace_isolation: bool,
    /// `globalNamespaces`.
    pub(crate) global_namespaces: Vec<String>,
    /// `systemNamespaces`.
    pub(crate) system_namespaces: Vec<String>,
    /// `nadDir`.
    pub(crate) nad_dir: PathBuf,
    /// `policyDir`.
    pub(crate) policy_dir: PathBuf,
    /// `networks`: static attachments in the annotation's JSON form.
    pub(crate) networks: Option<Value>,
    /// `resultMode`.
    pub(crate) result_mode: ResultMode,
    /// `runtimeConfig` from the runtime, passed to delegates by their capabilities.
    pub(crate) runtime_config: Map<String, Value>,
    /// `apiTimeoutSeconds`: the bound of one Kubernetes API request.
    pub(crate) api_timeout: Duration,
    /// `apiRetries`: how often a transient API failure is retried.
    pub(crate) api_retries: u32,
    /// `readinessindicatorfile`: ADD, STATUS and GC wait until it exists.
    pub(crate) readiness_file: Option<PathBuf>,
    /// `readinessTimeoutSeconds`: how long they wait.
    pub(crate) readiness_timeout: Duration,
    /// `podResourcesSocket`: the kubelet's PodResources API, asked for the devices of NADs
    /// that name a `resourceName`.
    pub(crate) pod_resources_socket: PathBuf,
    /// `deviceCheckpoint`: the device manager's checkpoint, read when the socket is absent
    /// or does not answer.
    pub(crate) device_checkpoint: PathBuf,
    /// `deviceInfoDir`: device-info files (`dp/` from device plugins, `cni/` for delegates).
    pub(crate) device_info_dir: PathBuf,
    /// `parallelAttachments`: ADD runs the attachments at once (unset: the process's
    /// default, on in the daemon, see [`super::parallel`]).
    pub(crate) parallel_attachments: Option<bool>,
}

impl MetaConf {
    /// Whether a pod of namespace `pod_ns` may use networks of `namespace`
    /// (`namespaceIsolation`: its own namespace and `globalNamespaces` only).
    pub(crate) fn may_use(&self, pod_ns: &str, namespace: &str) -> bool {
        !self.namespace_isolation
            || namespace == pod_ns
            || self.global_namespaces.iter().any(|g| g == namespace)
    }
}

/// Plugin-specific key `key` of the netconf as a `T`, if set.
fn field<T: serde::de::DeserializeOwned>(
    req: &Request,
    key: &str,
) -> Result<Option<T>, ConfigError> {
    req.netconf
        .field(key)
        .map_err(|source| ConfigError::Field { source })
}

/// `key`'s `value` is not what the key takes: `why`.
fn invalid(key: &'static str, value: impl ToString, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        why: why.into(),
    }
}

/// A positive number of seconds under `key`.
fn seconds(req: &Request, key: &'static str, default: Duration) -> Result<Duration, ConfigError> {
    match field::<f64>(req, key)? {
        None => Ok(default),
        Some(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(invalid(key, s, "must be a number of seconds in (0, 3600]")),
    }
}

/// A directory (or file) under `key`: an absolute path (a relative or empty one would follow the
/// runtime's working directory), else `default`.
fn directory(req: &Request, key: &'static str, default: &str) -> Result<PathBuf, ConfigError> {
    match field::<PathBuf>(req, key)? {
        None => Ok(default.into()),
        Some(dir) if dir.is_absolute() => Ok(dir),
        Some(dir) => Err(invalid(key, dir.display(), "must be an absolute path")),
    }
}

/// The `logLevel` words Multus knows, as `tracing` filters. Multus's `panic` logs almost
/// nothing; `error` is the nearest level here.
pub(crate) fn log_filter(level: &str) -> Option<&'static str> {
    match level {
        "panic" | "error" => Some("error"),
        "verbose" => Some("info"),
        "debug" => Some("debug"),
        _ => None,
    }
}

/// A list given as a JSON list or, as Multus also accepts, one comma-separated string.
fn names(
    extra: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<Vec<String>>, ConfigError> {
    match extra.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(
            s.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from)
                .collect(),
        )),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|source| ConfigError::List {
                key,
                value: v.clone(),
                source,
            }),
    }
}

impl MetaConf {
    /// Reads and validates the meta netconf of `req`.
    pub(crate) fn load(req: &Request) -> Result<MetaConf, ConfigError> {
        let extra = &req.netconf.extra;
        let cluster_network = field::<String>(req, "clusterNetwork")?.filter(|s| !s.is_empty());
        let delegates = field::<Vec<Value>>(req, "delegates")?.unwrap_or_default();
        if cluster_network.is_none() && delegates.is_empty() {
            return Err(ConfigError::NoClusterNetwork);
        }
        let multus_namespace = field::<String>(req, "multusNamespace")?
            .unwrap_or_else(|| DEFAULT_MULTUS_NAMESPACE.into());
        let global_namespaces = names(extra, "globalNamespaces")?.unwrap_or_else(|| {
            vec![
                "default".into(),
                multus_namespace.clone(),
                "kube-system".into(),
            ]
        });
        let kubeconfig = field::<PathBuf>(req, "kubeconfig")?.filter(|p| !p.as_os_str().is_empty());
        let service_account_dir = match field::<PathBuf>(req, "serviceAccountDir")? {
            Some(dir) if !dir.is_absolute() => {
                return Err(invalid(
                    "serviceAccountDir",
                    dir.display(),
                    "must be an absolute path",
                ))
            }
            dir => dir,
        };
        let kube = KubeSource::from_env(kubeconfig, service_account_dir);
        let result_mode = match field::<String>(req, "resultMode")?.as_deref() {
            Some("merged") => ResultMode::Merged,
            Some("cluster") => ResultMode::Cluster,
            Some(other) => {
                return Err(invalid(
                    "resultMode",
                    other,
                    "must be \"merged\" or \"cluster\"",
                ))
            }
            // CRI-O takes every IP of the result as a pod IP: in Kubernetes mode only the
            // cluster network's belong there (network-status carries the rest).
            None if kube.is_some() => ResultMode::Cluster,
            None => ResultMode::Merged,
        };
        let api_retries = match field::<u32>(req, "apiRetries")? {
            None => DEFAULT_API_RETRIES,
            Some(n) if n <= MAX_API_RETRIES => n,
            Some(n) => {
                return Err(invalid(
                    "apiRetries",
                    n,
                    format!("must be at most {MAX_API_RETRIES}"),
                ))
            }
        };
        if let Some(level) = field::<String>(req, "logLevel")? {
            if log_filter(&level).is_none() {
                return Err(invalid(
                    "logLevel",
                    &level,
                    "must be panic, error, verbose or debug",
                ));
            }
        }
        field::<PathBuf>(req, "logFile")?;
        field::<bool>(req, "logToStderr")?;
        if let Some(format) = field::<String>(req, "logFormat")? {
            if !matches!(format.as_str(), "text" | "json") {
                return Err(invalid("logFormat", &format, "must be text or json"));
            }
        }
        // Multus drops the cache after a failed DEL unless this is set, which leaks what the
        // failed DEL left; meta-cni always keeps it until a DEL succeeds, so the key is only
        // checked.
        field::<bool>(req, "retryDeleteOnError")?;
        let networks = extra.get("networks").filter(|v| !v.is_null()).cloned();
        let conf = MetaConf {
            cluster_network,
            delegates,
            default_networks: names(extra, "defaultNetworks")?.unwrap_or_default(),
            conf_dir: directory(req, "confDir", DEFAULT_CONF_DIR)?,
            cni_dir: directory(req, "cniDir", DEFAULT_CNI_DIR)?,
            bin_dir: directory(req, "binDir", DEFAULT_BIN_DIR)?,
            multus_namespace,
            namespace_isolation: field(req, "namespaceIsolation")?.unwrap_or(false),
            global_namespaces,
            system_namespaces: names(extra, "systemNamespaces")?
                .unwrap_or_else(|| vec!["kube-system".into()]),
            nad_dir: directory(req, "nadDir", DEFAULT_NAD_DIR)?,
            policy_dir: directory(req, "policyDir", DEFAULT_POLICY_DIR)?,
            networks,
            result_mode,
            runtime_config: req.netconf.runtime_config.clone().unwrap_or_default(),
            kube,
            api_timeout: seconds(req, "apiTimeoutSeconds", DEFAULT_API_TIMEOUT)?,
            api_retries,
            readiness_file: field::<PathBuf>(req, "readinessindicatorfile")?
                .filter(|p| !p.as_os_str().is_empty()),
            readiness_timeout: seconds(req, "readinessTimeoutSeconds", DEFAULT_READINESS_TIMEOUT)?,
            pod_resources_socket: directory(
                req,
                "podResourcesSocket",
                pod_resources::DEFAULT_SOCKET,
            )?,
            device_checkpoint: directory(
                req,
                "deviceCheckpoint",
                pod_resources::DEFAULT_CHECKPOINT,
            )?,
            device_info_dir: directory(req, "deviceInfoDir", DEFAULT_DEVICE_INFO_DIR)?,
            parallel_attachments: field(req, "parallelAttachments")?,
        };
        Ok(conf)
    }
}

/// Where a call logs: `logLevel`, `logFile` and `logToStderr` (Multus's meaning; stderr on
/// by default) read from the raw netconf before it is validated. Bad values fall back to the
/// defaults here; [`MetaConf::load`] reports them.
pub(crate) fn log_settings(stdin: &[u8]) -> cni::logging::Settings {
    let netconf: Map<String, Value> = serde_json::from_slice(stdin).unwrap_or_default();
    cni::logging::Settings {
        level: netconf
            .get("logLevel")
            .and_then(Value::as_str)
            .and_then(log_filter)
            .map(String::from),
        file: netconf
            .get("logFile")
            .and_then(Value::as_str)
            .filter(|f| !f.is_empty())
            .map(PathBuf::from),
        stderr: netconf
            .get("logToStderr")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        json: netconf.get("logFormat").and_then(Value::as_str) == Some("json"),
    }
}
