//! The daemon's view of the cluster: reflectors (kube-runtime watches) over this node's pods
//! (`spec.nodeName`) and every NAD, answering the calls' lookups from memory; a GET when the
//! cache has no answer (a pod or NAD made a moment ago, a pod whose UID the cache does not
//! know yet), and the one PATCH of `network-status` per ADD, as a plugin call sends it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api as Resources, Client};
use nad_crd::{NetworkAttachmentDefinition, NetworkStatus};
use tokio::runtime::Handle;

use super::metrics::Metrics;
use super::reflect::reflect;
use super::settings::Settings;
use crate::meta::cluster_view::ClusterView;
use crate::meta::kube_config::KubeSource;
use crate::meta::{Api, ApiError};

/// The watch caches and the client for what they cannot answer.
pub(crate) struct Cluster {
    api: Api,
    /// This node's pods; `None` without a node name.
    pods: Option<Store<Pod>>,
    nads: Store<NetworkAttachmentDefinition>,
    /// One flag per cache, set once its first list is in.
    synced: Vec<Arc<AtomicBool>>,
    /// The watches' client, for the policy watches ([`super::policy_watch`]).
    watch_client: Client,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("api", &self.api)
            .field("synced", &self.synced())
            .finish_non_exhaustive()
    }
}

/// A client for watches: as the calls' client but with no read timeout, since a watch
/// waits for events (the server ends it after `timeoutSeconds`).
async fn watch_client(source: &KubeSource) -> Result<Client, ApiError> {
    let mut config = source.config().await?;
    config.read_timeout = None;
    Client::try_from(config).map_err(|e| ApiError::Client {
        from: source.to_string(),
        source: e,
    })
}

impl Cluster {
    /// Connects through `source` (a kubeconfig, the service account) and starts the
    /// watches on `runtime`.
    pub(crate) fn start(
        runtime: &Handle,
        source: &KubeSource,
        settings: &Settings,
        metrics: Arc<Metrics>,
    ) -> Result<Cluster, ApiError> {
        let api = Api::on_runtime(
            runtime.clone(),
            source,
            settings.api_timeout,
            settings.api_retries,
        )?;
        let client = runtime.block_on(watch_client(source))?;
        let mut synced = Vec::new();
        let pods = settings.node_name.as_ref().map(|node| {
            let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
            let (store, flag) =
                reflect(runtime, Resources::<Pod>::all(client.clone()), config, None);
            synced.push(flag);
            store
        });
        if pods.is_none() {
            tracing::warn!(
                "no --node-name or NODE_NAME: pods are not cached, every ADD GETs its pod"
            );
        }
        let (nads, flag) = reflect(
            runtime,
            Resources::<NetworkAttachmentDefinition>::all(client.clone()),
            watcher::Config::default(),
            None,
        );
        synced.push(flag);
        Ok(Cluster {
            api,
            pods,
            nads,
            synced,
            watch_client: client,
            metrics,
        })
    }

    /// Whether every cache holds its first list.
    pub(crate) fn synced(&self) -> bool {
        self.synced.iter().all(|f| f.load(Ordering::Acquire))
    }

    /// The client the watches use (no read timeout), for more watches.
    pub(crate) fn watch_client(&self) -> Client {
        self.watch_client.clone()
    }
}

impl ClusterView for Cluster {
    fn pod(&self, namespace: &str, name: &str, uid: Option<&str>) -> Result<Option<Pod>, ApiError> {
        let cached = self
            .pods
            .as_ref()
            .and_then(|pods| pods.get(&ObjectRef::new(name).within(namespace)))
            .filter(|pod| uid.is_none_or(|uid| pod.metadata.uid.as_deref() == Some(uid)));
        self.metrics.cache_lookup("pods", cached.is_some());
        if let Some(pod) = cached {
            return Ok(Some(Pod::clone(&pod)));
        }
        self.metrics.api_request("GET", "pods");
        self.api.pod(namespace, name)
    }

    fn nad(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, ApiError> {
        let cached = self.nads.get(&ObjectRef::new(name).within(namespace));
        self.metrics
            .cache_lookup("network-attachment-definitions", cached.is_some());
        if let Some(nad) = cached {
            return Ok(Some(NetworkAttachmentDefinition::clone(&nad)));
        }
        self.metrics
            .api_request("GET", "network-attachment-definitions");
        self.api.nad(namespace, name)
    }

    fn api(&self) -> &Api {
        &self.api
    }

    fn set_network_status(
        &self,
        namespace: &str,
        name: &str,
        statuses: &[NetworkStatus],
    ) -> Result<(), ApiError> {
        self.metrics.api_request("PATCH", "pods");
        self.api.set_network_status(namespace, name, statuses)
    }
}
