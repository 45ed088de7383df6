//! The CustomResourceDefinition for [`MultiNetworkPolicy`], as the multi-networkpolicy
//! project ships it in name, group, scope, version and short name
//! (`multi-networkpolicies.k8s.cni.cncf.io`, namespaced, `v1beta1`, `multi-policy`).
//!
//! The spec's schema keeps unknown fields instead of repeating NetworkPolicySpec's: the
//! policy delegate validates every field it reads (code 7 with the JSON path), so a schema
//! here would be a second, drifting copy of those rules.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};

use crate::crd::namespaced_crd;
use crate::multi_network_policy::MultiNetworkPolicy;

/// The CRD that makes the API server serve [`MultiNetworkPolicy`] objects.
pub fn multi_network_policy_crd() -> CustomResourceDefinition {
    let spec = JSONSchemaProps {
        description: Some(
            "A networking.k8s.io/v1 NetworkPolicySpec: podSelector, policyTypes, ingress, \
             egress."
                .to_owned(),
        ),
        type_: Some("object".to_owned()),
        x_kubernetes_preserve_unknown_fields: Some(true),
        ..JSONSchemaProps::default()
    };
    namespaced_crd::<MultiNetworkPolicy>(
        "MultiNetworkPolicy: NetworkPolicy rules for secondary networks, which the \
         k8s.v1.cni.cncf.io/policy-for annotation names.",
        spec,
        "multi-networkpolicy",
        "multi-policy",
    )
}

/// [`multi_network_policy_crd()`] as a YAML document, ready for `kubectl apply -f`.
pub fn multi_network_policy_crd_yaml() -> String {
    serde_saphyr::to_string(&multi_network_policy_crd())
        .expect("a CRD has only string keys, so it always renders")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_yaml_snapshot() {
        insta::assert_snapshot!(
            "multi_network_policy_crd_yaml",
            multi_network_policy_crd_yaml()
        );
    }

    #[test]
    fn crd_yaml_decodes_back_to_the_crd() {
        let back: CustomResourceDefinition =
            serde_saphyr::from_str(&multi_network_policy_crd_yaml()).unwrap();
        assert_eq!(back, multi_network_policy_crd());
        assert_eq!(
            back.metadata.name.as_deref(),
            Some("multi-networkpolicies.k8s.cni.cncf.io")
        );
    }
}
