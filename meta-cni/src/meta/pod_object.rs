//! The pod being attached, as the plan needs it: taken once from the API's object (or, for
//! `explain`, a pod file), then shared in this one typed form by the plan, the devices and
//! the policy context.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerPort, Pod};
use nad_crd::{DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION};

/// The pod being attached, as the API returned it: what the plan needs from it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PodObject {
    /// Its namespace.
    pub(crate) namespace: String,
    /// Its name.
    pub(crate) name: String,
    /// `k8s.v1.cni.cncf.io/networks`, if set.
    pub(crate) networks: Option<String>,
    /// `v1.multus-cni.io/default-network`, if set.
    pub(crate) default_network: Option<String>,
    /// Its labels, for MultiNetworkPolicy selectors.
    pub(crate) labels: BTreeMap<String, String>,
    /// Its containers' ports, for MultiNetworkPolicy's named ports.
    pub(crate) container_ports: Vec<ContainerPort>,
    /// The names of its DRA ResourceClaims (those made from templates as its status names
    /// them), for the devices of NADs naming a `resourceName`.
    pub(crate) resource_claims: Vec<String>,
}

impl PodObject {
    /// What the plan needs of `pod`, the pod `namespace/name`.
    pub(crate) fn of(namespace: &str, name: &str, pod: Pod) -> PodObject {
        let container_ports = container_ports(&pod);
        let resource_claims = claim_names(&pod);
        let annotations: BTreeMap<String, String> = pod.metadata.annotations.unwrap_or_default();
        PodObject {
            namespace: namespace.to_string(),
            name: name.to_string(),
            networks: annotations.get(NETWORKS_ANNOTATION).cloned(),
            default_network: annotations.get(DEFAULT_NETWORK_ANNOTATION).cloned(),
            labels: pod.metadata.labels.unwrap_or_default(),
            container_ports,
            resource_claims,
        }
    }
}

/// Every port of every container of `pod`, for named ports.
pub(crate) fn container_ports(pod: &Pod) -> Vec<ContainerPort> {
    pod.spec
        .iter()
        .flat_map(|spec| &spec.containers)
        .flat_map(|c| c.ports.iter().flatten().cloned())
        .collect()
}

/// The names of the pod's ResourceClaims, in the pod's order; a template's claim not yet
/// named in the status is left out (the kubelet does not start a pod before it is).
fn claim_names(pod: &Pod) -> Vec<String> {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.resource_claim_statuses.as_ref());
    let spec_claims = pod.spec.as_ref().and_then(|s| s.resource_claims.as_ref());
    spec_claims
        .into_iter()
        .flatten()
        .filter_map(|claim| match &claim.resource_claim_name {
            Some(name) => Some(name.clone()),
            None => statuses?
                .iter()
                .find(|s| s.name == claim.name)?
                .resource_claim_name
                .clone(),
        })
        .collect()
}
