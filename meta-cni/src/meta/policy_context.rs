//! MultiNetworkPolicy for the policy delegate. The delegate never talks to Kubernetes: the
//! meta plugin gathers what its rules are made of (the MultiNetworkPolicies of the pod's
//! namespace, every namespace's labels, every pod's labels and addresses on the network) from
//! the API in Kubernetes mode or from `policyDir` in standalone mode, and puts it in the
//! netconf of each `policy` delegate of a NAD's list, under `multiNetworkPolicy`, as
//! [`policy::MultiNetworkContext`]. Nothing is gathered for a pod none of whose networks
//! runs the delegate, and only the policies' namespace is listed when none exists there.
//!
//! The context is planned with the attachment, so it is cached with it: CHECK verifies the
//! rules installed, and DEL needs none of it. Thin mode keeps the rules ADD installed; the
//! daemon recomputes the context of running pods when the objects change
//! ([`super::policy_refresh`]) with these same functions, and rewrites the cache with it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use cni::chain::Chain;
use cni::NetConf;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use nad_crd::{MultiNetworkPolicy, NetworkStatus, NETWORK_STATUS_ANNOTATION};
use policy::multi_network::{MultiNetworkContext, NamespaceInfo, NetworkRef, PeerPod, TargetPod};
use serde_json::Value;

use super::attachment::Attachment;
use super::pod_object::{container_ports, PodObject};

/// The delegate type that takes the context.
pub(crate) const POLICY_TYPE: &str = "policy";
/// The objects a policy delegate's context is made of, as the API (or `policyDir`) has them.
#[derive(Debug, Clone, Default)]
pub(crate) struct PolicyObjects {
    /// The MultiNetworkPolicies of the pod's namespace.
    pub(crate) policies: Vec<MultiNetworkPolicy>,
    /// Every namespace (empty when there is no policy).
    pub(crate) namespaces: Vec<Namespace>,
    /// Every pod (empty when there is no policy).
    pub(crate) pods: Vec<Pod>,
}

/// Whether any of `attachments` runs the policy delegate, so the objects are worth reading.
pub(crate) fn wanted(attachments: &[Attachment]) -> bool {
    attachments.iter().any(runs_policy)
}

pub(crate) fn runs_policy(att: &Attachment) -> bool {
    att.conf.plugins.iter().any(is_policy)
}

/// Whether a plugin of a list is the policy delegate.
pub(crate) fn is_policy(plugin: &serde_json::Map<String, Value>) -> bool {
    plugin.get("type").and_then(Value::as_str) == Some(POLICY_TYPE)
}

/// The netconf the chain gives each policy delegate of `att`, but for `prevResult` (which
/// the rules do not read): what the daemon's updates and the transactions started with an
/// ADD render, so they render what the delegate does.
pub(crate) fn delegate_netconfs(att: &Attachment) -> Result<Vec<NetConf>, cni::Error> {
    let chain = Chain::new(&att.conf)?;
    att.conf
        .plugins
        .iter()
        .enumerate()
        .filter(|(_, p)| is_policy(p))
        .map(|(i, _)| {
            let object = chain.plugin_config(i, None, &att.runtime_config, &[])?;
            Ok(NetConf::from_object(object)?.0)
        })
        .collect()
}

/// Takes the context out of every policy delegate of `attachments`, so that [`inject`] puts
/// back only what the objects give now (nothing, when no policy is left).
pub(crate) fn clear(attachments: &mut [Attachment]) {
    for att in attachments.iter_mut() {
        for plugin in att.conf.plugins.iter_mut().filter(|p| is_policy(p)) {
            plugin.remove(policy::CONTEXT_KEY);
        }
    }
}

/// The pod being attached, as the policies see it: from the API's pod (Kubernetes mode), else
/// from a Pod object of that name in `objects` (standalone mode), else a pod with no labels.
pub(crate) fn target_pod(
    namespace: &str,
    name: &str,
    api_pod: Option<&PodObject>,
    objects: &PolicyObjects,
) -> TargetPod {
    if let Some(pod) = api_pod {
        return TargetPod {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            labels: pod.labels.clone(),
            container_ports: pod.container_ports.clone(),
        };
    }
    let file_pod = objects.pods.iter().find(|p| {
        p.metadata.namespace.as_deref().unwrap_or("default") == namespace
            && p.metadata.name.as_deref() == Some(name)
    });
    TargetPod {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        labels: file_pod
            .and_then(|p| p.metadata.labels.clone())
            .unwrap_or_default(),
        container_ports: file_pod.map(container_ports).unwrap_or_default(),
    }
}

/// Puts the context into every `policy` delegate of `attachments` whose network is a NAD
/// (`<namespace>/<name>`: only NADs are named by `policy-for`). Without any policy, nothing
/// is put: the delegate then applies its inline rules only.
pub(crate) fn inject(attachments: &mut [Attachment], target: &TargetPod, objects: &PolicyObjects) {
    if objects.policies.is_empty() {
        return;
    }
    let namespaces: Vec<NamespaceInfo> = objects
        .namespaces
        .iter()
        .map(|ns| NamespaceInfo {
            name: ns.metadata.name.clone().unwrap_or_default(),
            labels: ns.metadata.labels.clone().unwrap_or_default(),
        })
        .collect();
    for att in attachments.iter_mut().filter(|a| runs_policy(a)) {
        let Some((namespace, name)) = att.network.split_once('/') else {
            continue;
        };
        let context = MultiNetworkContext {
            network: NetworkRef {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            },
            pod: target.clone(),
            namespaces: namespaces.clone(),
            pods: peers(&objects.pods, &att.network),
            policies: objects.policies.clone(),
        };
        let value = match serde_json::to_value(&context) {
            Ok(value) => value,
            // Typed data of our own always encodes; keep the inline rules if it did not.
            Err(e) => {
                tracing::warn!("encode the MultiNetworkPolicy context: {e}");
                continue;
            }
        };
        for plugin in att.conf.plugins.iter_mut().filter(|p| is_policy(p)) {
            plugin.insert(policy::CONTEXT_KEY.into(), value.clone());
        }
    }
}

/// Every pod with an address on `network` (by its `network-status`), with its labels.
fn peers(pods: &[Pod], network: &str) -> Vec<PeerPod> {
    pods.iter()
        .filter_map(|pod| {
            let annotations = pod.metadata.annotations.as_ref()?;
            let statuses =
                NetworkStatus::parse_annotation(annotations.get(NETWORK_STATUS_ANNOTATION)?)
                    .ok()?;
            let ips: Vec<IpAddr> = statuses
                .iter()
                .filter(|s| s.name == network)
                .flat_map(|s| &s.ips)
                .filter_map(|ip| ip.split('/').next()?.parse().ok())
                .collect();
            (!ips.is_empty()).then(|| PeerPod {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                labels: pod.metadata.labels.clone().unwrap_or_else(BTreeMap::new),
                ips,
            })
        })
        .collect()
}
