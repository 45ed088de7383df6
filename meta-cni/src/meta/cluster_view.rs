//! Pods and NADs from a long-running process instead of a client made for one call: the
//! daemon (thick mode) installs its watch caches here once, and every call it serves whose
//! cluster configuration ([`KubeSource`]: its kubeconfig, or its service account) is the
//! daemon's reads through them. Nothing is installed in a plugin run by
//! the runtime, so thin mode is unchanged.

use std::sync::{Arc, OnceLock};

use k8s_openapi::api::core::v1::Pod;
use nad_crd::{NetworkAttachmentDefinition, NetworkStatus};

use super::api::Api;
use super::error::ApiError;
use super::kube_config::KubeSource;
use super::policy_context::PolicyObjects;

/// What a call needs from the cluster, answered from caches where they can.
pub(crate) trait ClusterView: Send + Sync {
    /// The pod `namespace/name`; `None` if the API says it does not exist. A cached pod
    /// whose UID is not `uid` (when given) is read again from the API: it may be stale.
    fn pod(&self, namespace: &str, name: &str, uid: Option<&str>) -> Result<Option<Pod>, ApiError>;

    /// The NAD `namespace/name`; `None` if the API says it does not exist.
    fn nad(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, ApiError>;

    /// The live API client, for what the caches do not hold (a policy delegate's
    /// MultiNetworkPolicies, DRA claims and slices): read at each call, as thin mode does.
    fn api(&self) -> &Api;

    /// What a policy delegate of a pod in `namespace` is given (see
    /// [`Api::policy_objects`]): from watch caches when the view has them, else listed.
    fn policy_objects(&self, namespace: &str) -> Result<PolicyObjects, ApiError> {
        self.api().policy_objects(namespace)
    }

    /// Writes the pod's `network-status` (one merge patch, as a call makes it).
    fn set_network_status(
        &self,
        namespace: &str,
        name: &str,
        statuses: &[NetworkStatus],
    ) -> Result<(), ApiError>;
}

/// The installed view, with the configuration it serves.
static INSTALLED: OnceLock<(KubeSource, Arc<dyn ClusterView>)> = OnceLock::new();

/// Installs `view` for calls whose configuration is `source`; once per process (a second
/// call changes nothing and says so).
pub(crate) fn install(source: KubeSource, view: Arc<dyn ClusterView>) -> bool {
    INSTALLED.set((source, view)).is_ok()
}

/// The view serving `source`, if one is installed for it.
pub(crate) fn for_source(source: &KubeSource) -> Option<Arc<dyn ClusterView>> {
    let (installed, view) = INSTALLED.get()?;
    if installed == source {
        return Some(Arc::clone(view));
    }
    tracing::info!(
        "the daemon watches through {installed}, not {source}: this call reads the API itself"
    );
    None
}
