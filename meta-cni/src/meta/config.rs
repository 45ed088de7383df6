//! The meta plugin's netconf: a Multus thin-mode netconf (same keys, same defaults) plus our
//! own `nadDir`, `networks` and `resultMode`. Every problem is a code-7 error naming the key.

use std::path::PathBuf;

use serde_json::{Map, Value};

use cni::{Error, ErrorCode, Request};

/// Multus's defaults.
const DEFAULT_CONF_DIR: &str = "/etc/cni/multus/net.d";
const DEFAULT_CNI_DIR: &str = "/var/lib/cni/multus";
const DEFAULT_BIN_DIR: &str = "/opt/cni/bin";
const DEFAULT_MULTUS_NAMESPACE: &str = "kube-system";
/// Where NAD files are read from when neither a kubeconfig nor `nadDir` is given.
pub(crate) const DEFAULT_NAD_DIR: &str = "/etc/cni/meta-cni/nads";

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
    /// `kubeconfig`: Kubernetes mode when set.
    pub(crate) kubeconfig: Option<PathBuf>,
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
    /// `networks`: static attachments in the annotation's JSON form.
    pub(crate) networks: Option<Value>,
    /// `resultMode`.
    pub(crate) result_mode: ResultMode,
    /// `runtimeConfig` from the runtime, passed to delegates by their capabilities.
    pub(crate) runtime_config: Map<String, Value>,
}

/// A list given as a JSON list or, as Multus also accepts, one comma-separated string.
fn names(extra: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, Error> {
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
            .map_err(|e| Error::invalid_config(key, v, e)),
    }
}

impl MetaConf {
    /// Reads and validates the meta netconf of `req`.
    pub(crate) fn load(req: &Request) -> Result<MetaConf, Error> {
        let extra = &req.netconf.extra;
        let cluster_network = req
            .netconf
            .field::<String>("clusterNetwork")?
            .filter(|s| !s.is_empty());
        let delegates = req
            .netconf
            .field::<Vec<Value>>("delegates")?
            .unwrap_or_default();
        if cluster_network.is_none() && delegates.is_empty() {
            return Err(Error::new(
                ErrorCode::INVALID_NETWORK_CONFIG,
                "no cluster network",
                "set clusterNetwork (a NAD name, a file or a directory) or delegates",
            ));
        }
        let multus_namespace = req
            .netconf
            .field::<String>("multusNamespace")?
            .unwrap_or_else(|| DEFAULT_MULTUS_NAMESPACE.into());
        let global_namespaces = names(extra, "globalNamespaces")?.unwrap_or_else(|| {
            vec![
                "default".into(),
                multus_namespace.clone(),
                "kube-system".into(),
            ]
        });
        let result_mode = match req.netconf.field::<String>("resultMode")?.as_deref() {
            Some("merged") => ResultMode::Merged,
            Some("cluster") => ResultMode::Cluster,
            Some(other) => {
                return Err(Error::invalid_config(
                    "resultMode",
                    other,
                    "must be \"merged\" or \"cluster\"",
                ))
            }
            None => ResultMode::Merged,
        };
        let kubeconfig = req
            .netconf
            .field::<PathBuf>("kubeconfig")?
            .filter(|p| !p.as_os_str().is_empty());
        let networks = extra.get("networks").filter(|v| !v.is_null()).cloned();
        let conf = MetaConf {
            cluster_network,
            delegates,
            default_networks: names(extra, "defaultNetworks")?.unwrap_or_default(),
            conf_dir: req
                .netconf
                .field("confDir")?
                .unwrap_or_else(|| DEFAULT_CONF_DIR.into()),
            cni_dir: req
                .netconf
                .field("cniDir")?
                .unwrap_or_else(|| DEFAULT_CNI_DIR.into()),
            bin_dir: req
                .netconf
                .field("binDir")?
                .unwrap_or_else(|| DEFAULT_BIN_DIR.into()),
            multus_namespace,
            namespace_isolation: req.netconf.field("namespaceIsolation")?.unwrap_or(false),
            global_namespaces,
            system_namespaces: names(extra, "systemNamespaces")?
                .unwrap_or_else(|| vec!["kube-system".into()]),
            nad_dir: req
                .netconf
                .field("nadDir")?
                .unwrap_or_else(|| DEFAULT_NAD_DIR.into()),
            networks,
            result_mode,
            runtime_config: req.netconf.runtime_config.clone().unwrap_or_default(),
            kubeconfig,
        };
        if let Some(k) = &conf.kubeconfig {
            // Kubernetes mode (pod and NADs from the API) is not built yet: say so rather
            // than silently attaching the wrong networks.
            return Err(Error::new(
                ErrorCode::UNSUPPORTED_FIELD,
                format!(
                    "kubeconfig {} is set, but this build has no Kubernetes mode",
                    k.display()
                ),
                "use nadDir and networks for now",
            ));
        }
        Ok(conf)
    }
}
