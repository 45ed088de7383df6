//! The MultiNetworkPolicy custom resource (`k8s.cni.cncf.io/v1beta1`): a NetworkPolicy for
//! secondary networks. Its spec is `networking.k8s.io/v1`'s NetworkPolicySpec; the networks
//! it applies to are named by the [`POLICY_FOR_ANNOTATION`] annotation.
//!
//! Written by hand like [`crate::NetworkAttachmentDefinition`], for the same reason: the
//! object decodes with whatever the API server sends and always encodes `apiVersion` and
//! `kind`.

use k8s_openapi::api::networking::v1::NetworkPolicySpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use serde::Deserialize;

use crate::annotations::{POLICY_FOR_ALIAS, POLICY_FOR_ANNOTATION};
use crate::resource::custom_resource;

/// A MultiNetworkPolicy: NetworkPolicy rules for the pods it selects, on the networks its
/// `policy-for` annotation names.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct MultiNetworkPolicy {
    /// Standard object metadata; the `policy-for` annotation lives here.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The policy, as a NetworkPolicy states it.
    #[serde(default)]
    pub spec: NetworkPolicySpec,
}

/// One network a policy is for, as its `policy-for` annotation names it, with a bare name
/// already placed in the policy's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyNetwork {
    /// The NAD's namespace.
    pub namespace: String,
    /// The NAD's name.
    pub name: String,
}

impl MultiNetworkPolicy {
    /// `metadata.name`, or `""` when absent.
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// `metadata.namespace`, or `""` when absent.
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }

    /// The networks of the `policy-for` annotation: entries split at commas, spaces
    /// trimmed, empty entries skipped, a bare name in the policy's namespace. No annotation
    /// means no network: such a policy applies nowhere, as in the reference implementations.
    pub fn policy_for(&self) -> Vec<PolicyNetwork> {
        let Some(text) = self.metadata.annotations.as_ref().and_then(|a| {
            a.get(POLICY_FOR_ANNOTATION)
                .or_else(|| a.get(POLICY_FOR_ALIAS))
        }) else {
            return Vec::new();
        };
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| match entry.split_once('/') {
                Some((ns, name)) => PolicyNetwork {
                    namespace: ns.trim().to_owned(),
                    name: name.trim().to_owned(),
                },
                None => PolicyNetwork {
                    namespace: self.namespace().to_owned(),
                    name: entry.to_owned(),
                },
            })
            .collect()
    }
}

custom_resource!(MultiNetworkPolicy, group: "k8s.cni.cncf.io", version: "v1beta1", kind: "MultiNetworkPolicy",
    plural: "multi-networkpolicies");

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(annotation: Option<&str>) -> MultiNetworkPolicy {
        let mut object = json!({
            "apiVersion": "k8s.cni.cncf.io/v1beta1",
            "kind": "MultiNetworkPolicy",
            "metadata": {"name": "deny", "namespace": "team"},
            "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
                     "ingress": [{"ports": [{"port": "http", "protocol": "TCP"},
                                            {"port": 9000, "endPort": 9010}]}]}
        });
        if let Some(a) = annotation {
            object["metadata"]["annotations"] = json!({ POLICY_FOR_ANNOTATION: a });
        }
        serde_json::from_value(object).unwrap()
    }

    #[test]
    fn decodes_the_api_form_and_encodes_it_back() {
        let p = policy(Some("net-a"));
        assert_eq!(p.name(), "deny");
        assert_eq!(p.namespace(), "team");
        let ports = p.spec.ingress.as_ref().unwrap()[0].ports.as_ref().unwrap();
        assert_eq!(ports[1].end_port, Some(9010));
        let back: MultiNetworkPolicy =
            serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        let value = serde_json::to_value(&p).unwrap();
        assert_eq!(value["apiVersion"], "k8s.cni.cncf.io/v1beta1");
        assert_eq!(value["kind"], "MultiNetworkPolicy");
    }

    #[test]
    fn the_alias_is_read_when_the_annotation_is_absent() {
        let mut p = policy(None);
        assert!(p.policy_for().is_empty());
        p.metadata.annotations = Some([(POLICY_FOR_ALIAS.to_owned(), "net-x".to_owned())].into());
        let names: Vec<String> = p.policy_for().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["net-x"]);
    }

    #[test]
    fn policy_for_places_bare_names_in_the_policys_namespace() {
        let p = policy(Some(" net-a, other/net-b ,,net-c"));
        let names: Vec<(String, String)> = p
            .policy_for()
            .into_iter()
            .map(|n| (n.namespace, n.name))
            .collect();
        assert_eq!(
            names,
            [
                ("team".into(), "net-a".into()),
                ("other".into(), "net-b".into()),
                ("team".into(), "net-c".into())
            ]
        );
        assert!(policy(None).policy_for().is_empty());
    }

    #[test]
    fn kube_sees_a_namespaced_resource() {
        use kube_core::Resource;
        assert_eq!(MultiNetworkPolicy::plural(&()), "multi-networkpolicies");
        assert_eq!(
            MultiNetworkPolicy::api_version(&()),
            "k8s.cni.cncf.io/v1beta1"
        );
    }
}
