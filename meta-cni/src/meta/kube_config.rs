//! Where a Kubernetes client's configuration comes from, for the plugin and the daemon alike,
//! in Multus's order: the `kubeconfig` given; else, when `KUBERNETES_SERVICE_HOST` is set (a
//! process in a pod: the daemon as a DaemonSet, or a plugin run from one), the pod's service
//! account (`token`, `ca.crt`, `namespace` in its mounted directory) and
//! `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`; else no API (standalone).
//!
//! Credentials are never copied into the client's configuration: the service account's
//! token is named by path (`AuthInfo.token_file`) and its CA by path (`root_cert_file`), so
//! a rotated token or CA is used without a restart. kube 5 re-reads a token file on the
//! first request made 50 s or more after it last read it (it caches a file's token for
//! 60 s and refreshes 10 s early), and the CA file about every 60 s. A plugin call makes
//! its client afresh, so it reads both at every call; the daemon's long-lived clients pick
//! a kubelet's rotation up within that minute, well inside the old token's validity.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, KubeconfigError, NamedAuthInfo,
    NamedCluster, NamedContext,
};
use kube::Config;

/// Where the kubelet mounts a pod's service account.
pub(crate) const DEFAULT_SERVICE_ACCOUNT_DIR: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount";
/// The API server's service address, set by the kubelet in every pod.
pub(crate) const SERVICE_HOST_ENV: &str = "KUBERNETES_SERVICE_HOST";
/// The API server's service port, set with [`SERVICE_HOST_ENV`].
pub(crate) const SERVICE_PORT_ENV: &str = "KUBERNETES_SERVICE_PORT";

/// The service account directory of this process when a call names none: the daemon's
/// `--service-account-dir`, so the calls it serves use its credentials.
static PROCESS_SERVICE_ACCOUNT_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Makes `dir` the service account directory of calls that name none (once per process).
pub(crate) fn set_default_service_account_dir(dir: PathBuf) {
    let _ = PROCESS_SERVICE_ACCOUNT_DIR.set(dir);
}

/// The client configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KubeConfigError {
    /// The kubeconfig does not read or does not make a client config.
    #[error("invalid kubeconfig {:?}", .path.display().to_string())]
    Kubeconfig {
        path: PathBuf,
        source: KubeconfigError,
    },
    /// In-cluster: `KUBERNETES_SERVICE_HOST` is set but `variable` is not.
    #[error("in-cluster configuration: {variable} is not set")]
    MissingVariable { variable: &'static str },
    /// In-cluster: `variable`'s value is no port number.
    #[error("in-cluster configuration: invalid {variable} {value:?}: must be a port number")]
    InvalidVariable {
        variable: &'static str,
        value: String,
    },
    /// In-cluster: a file of the service account does not read.
    #[error("in-cluster configuration: cannot read {:?}", .path.display().to_string())]
    ServiceAccountFile { path: PathBuf, source: io::Error },
    /// In-cluster: the service account's files do not make a client config (a CA that does
    /// not parse, ...).
    #[error("in-cluster configuration from {:?}", .dir.display().to_string())]
    InCluster {
        dir: PathBuf,
        source: KubeconfigError,
    },
}

/// Where the client's configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KubeSource {
    /// A kubeconfig file, read at each [`KubeSource::config`].
    Kubeconfig(PathBuf),
    /// The pod's service account.
    InCluster {
        /// `KUBERNETES_SERVICE_HOST`.
        host: String,
        /// `KUBERNETES_SERVICE_PORT`, checked by [`KubeSource::config`].
        port: Option<String>,
        /// The mounted service account directory.
        dir: PathBuf,
    },
}

impl fmt::Display for KubeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KubeSource::Kubeconfig(path) => {
                write!(f, "kubeconfig {:?}", path.display().to_string())
            }
            KubeSource::InCluster { dir, .. } => {
                write!(f, "the service account in {:?}", dir.display().to_string())
            }
        }
    }
}

impl KubeSource {
    /// Multus's choice from a kubeconfig (if given), a service account directory (if given;
    /// else the process's, else [`DEFAULT_SERVICE_ACCOUNT_DIR`]) and the environment
    /// `env`: `None` is standalone mode.
    pub(crate) fn resolve(
        kubeconfig: Option<PathBuf>,
        service_account_dir: Option<PathBuf>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Option<KubeSource> {
        if let Some(path) = kubeconfig {
            return Some(KubeSource::Kubeconfig(path));
        }
        let host = env(SERVICE_HOST_ENV).filter(|h| !h.is_empty())?;
        let dir = service_account_dir
            .or_else(|| PROCESS_SERVICE_ACCOUNT_DIR.get().cloned())
            .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT_DIR.into());
        Some(KubeSource::InCluster {
            host,
            port: env(SERVICE_PORT_ENV).filter(|p| !p.is_empty()),
            dir,
        })
    }

    /// [`KubeSource::resolve`] in this process's environment.
    pub(crate) fn from_env(
        kubeconfig: Option<PathBuf>,
        service_account_dir: Option<PathBuf>,
    ) -> Option<KubeSource> {
        KubeSource::resolve(kubeconfig, service_account_dir, |name| {
            std::env::var(name).ok()
        })
    }

    /// Reads the source into a client configuration (kube's defaults: the caller sets
    /// timeouts and retries).
    pub(crate) async fn config(&self) -> Result<Config, KubeConfigError> {
        match self {
            KubeSource::Kubeconfig(path) => {
                let bad = |source| KubeConfigError::Kubeconfig {
                    path: path.clone(),
                    source,
                };
                let file = Kubeconfig::read_from(path).map_err(bad)?;
                Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                    .await
                    .map_err(bad)
            }
            KubeSource::InCluster { host, port, dir } => {
                in_cluster(host, port.as_deref(), dir).await
            }
        }
    }
}

/// `https://host:port`, IPv6 addresses bracketed.
fn server_url(host: &str, port: Option<&str>) -> Result<String, KubeConfigError> {
    let port = port.ok_or(KubeConfigError::MissingVariable {
        variable: SERVICE_PORT_ENV,
    })?;
    let number: u16 =
        port.parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| KubeConfigError::InvalidVariable {
                variable: SERVICE_PORT_ENV,
                value: port.to_owned(),
            })?;
    Ok(match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("https://[{ip}]:{number}"),
        _ => format!("https://{host}:{number}"),
    })
}

/// Reads `path` (to name it when it is missing; kube reads it again itself).
fn read(path: &Path) -> Result<String, KubeConfigError> {
    std::fs::read_to_string(path).map_err(|source| KubeConfigError::ServiceAccountFile {
        path: path.to_path_buf(),
        source,
    })
}

/// The in-cluster configuration: a kubeconfig made in memory that names the service
/// account's token and CA by path, so kube re-reads them (see the module's doc).
async fn in_cluster(host: &str, port: Option<&str>, dir: &Path) -> Result<Config, KubeConfigError> {
    const NAME: &str = "in-cluster";
    let server = server_url(host, port)?;
    let token = dir.join("token");
    let ca = dir.join("ca.crt");
    read(&token)?;
    read(&ca)?;
    let namespace = read(&dir.join("namespace"))?.trim().to_owned();
    let path = |p: &Path| p.display().to_string();
    let file = Kubeconfig {
        clusters: vec![NamedCluster {
            name: NAME.into(),
            cluster: Some(Cluster {
                server: Some(server),
                certificate_authority: Some(path(&ca)),
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: NAME.into(),
            auth_info: Some(AuthInfo {
                token_file: Some(path(&token)),
                ..AuthInfo::default()
            }),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: NAME.into(),
            context: Some(Context {
                cluster: NAME.into(),
                user: Some(NAME.into()),
                namespace: (!namespace.is_empty()).then_some(namespace),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some(NAME.into()),
        ..Kubeconfig::default()
    };
    let mut config = Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .map_err(|source| KubeConfigError::InCluster {
            dir: dir.to_path_buf(),
            source,
        })?;
    // As kube's own in-cluster config: the CA is re-read too, for a rotated cluster CA.
    config.root_cert_file = Some(ca);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn multus_order_kubeconfig_then_in_cluster_then_standalone() {
        let in_pod = [(SERVICE_HOST_ENV, "10.96.0.1"), (SERVICE_PORT_ENV, "443")];
        assert_eq!(
            KubeSource::resolve(Some("/k".into()), None, env(&in_pod)),
            Some(KubeSource::Kubeconfig("/k".into()))
        );
        assert_eq!(
            KubeSource::resolve(None, Some("/sa".into()), env(&in_pod)),
            Some(KubeSource::InCluster {
                host: "10.96.0.1".into(),
                port: Some("443".into()),
                dir: "/sa".into()
            })
        );
        assert_eq!(
            KubeSource::resolve(None, Some("/sa".into()), env(&[])),
            None
        );
    }

    #[test]
    fn bad_variables_and_missing_files_are_named() {
        let e = server_url("h", None).unwrap_err().to_string();
        assert!(e.contains(SERVICE_PORT_ENV), "{e}");
        let e = server_url("h", Some("https")).unwrap_err().to_string();
        assert!(e.contains(SERVICE_PORT_ENV) && e.contains("https"), "{e}");
        assert_eq!(
            server_url("::1", Some("6443")).unwrap(),
            "https://[::1]:6443"
        );
        let dir = tempfile::tempdir().unwrap();
        let source = KubeSource::InCluster {
            host: "127.0.0.1".into(),
            port: Some("6443".into()),
            dir: dir.path().into(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = runtime.block_on(source.config()).unwrap_err().to_string();
        assert!(
            e.contains(&dir.path().join("token").display().to_string()),
            "{e}"
        );
    }
}
