//! The calls' view of the cluster when the daemon watches policies: [`Cluster`]'s caches
//! for pods and NADs, [`PolicyWatch`]'s for a policy delegate's objects once they are
//! synced (the live LISTs before that).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use nad_crd::{NetworkAttachmentDefinition, NetworkStatus};

use super::cluster::Cluster;
use super::metrics::Metrics;
use super::policy_watch::PolicyWatch;
use crate::meta::cluster_view::ClusterView;
use crate::meta::policy_context::PolicyObjects;
use crate::meta::policy_refresh::PolicyLookup;
use crate::meta::{Api, ApiError};

/// [`Cluster`] with the policy caches.
#[derive(Debug)]
pub(crate) struct PolicyView {
    /// Pods, NADs and the client.
    pub(crate) cluster: Arc<Cluster>,
    /// MultiNetworkPolicies, namespaces, every pod.
    pub(crate) watch: Arc<PolicyWatch>,
    /// Where cache hits and API requests are counted.
    pub(crate) metrics: Arc<Metrics>,
}

impl ClusterView for PolicyView {
    fn pod(&self, namespace: &str, name: &str, uid: Option<&str>) -> Result<Option<Pod>, ApiError> {
        self.cluster.pod(namespace, name, uid)
    }

    fn nad(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, ApiError> {
        self.cluster.nad(namespace, name)
    }

    fn api(&self) -> &Api {
        self.cluster.api()
    }

    fn policy_objects(&self, namespace: &str) -> Result<PolicyObjects, ApiError> {
        let synced = self.watch.synced();
        self.metrics.cache_lookup("multi-networkpolicies", synced);
        if synced {
            return Ok(self.watch.objects(namespace));
        }
        self.metrics.api_request("LIST", "multi-networkpolicies");
        self.cluster.api().policy_objects(namespace)
    }

    fn set_network_status(
        &self,
        namespace: &str,
        name: &str,
        statuses: &[NetworkStatus],
    ) -> Result<(), ApiError> {
        self.cluster.set_network_status(namespace, name, statuses)
    }
}
