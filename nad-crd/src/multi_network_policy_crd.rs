//! The CustomResourceDefinition for [`MultiNetworkPolicy`], as the multi-networkpolicy
//! project ships it in name, group, scope, version and short name
//! (`multi-networkpolicies.k8s.cni.cncf.io`, namespaced, `v1beta1`, `multi-policy`).
//!
//! The spec's schema keeps unknown fields instead of repeating NetworkPolicySpec's: the
//! policy delegate validates every field it reads (code 7 with the JSON path), so a schema
//! here would be a second, drifting copy of those rules.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ListableResource, Resource};

use crate::multi_network_policy::MultiNetworkPolicy;

fn object(description: &str, properties: BTreeMap<String, JSONSchemaProps>) -> JSONSchemaProps {
    JSONSchemaProps {
        description: Some(description.to_owned()),
        type_: Some("object".to_owned()),
        properties: (!properties.is_empty()).then_some(properties),
        ..JSONSchemaProps::default()
    }
}

/// The CRD that makes the API server serve [`MultiNetworkPolicy`] objects.
pub fn multi_network_policy_crd() -> CustomResourceDefinition {
    type Mnp = MultiNetworkPolicy;
    let string = |d: &str| JSONSchemaProps {
        description: Some(d.to_owned()),
        type_: Some("string".to_owned()),
        ..JSONSchemaProps::default()
    };
    let spec = JSONSchemaProps {
        x_kubernetes_preserve_unknown_fields: Some(true),
        ..object(
            "A networking.k8s.io/v1 NetworkPolicySpec: podSelector, policyTypes, ingress, \
             egress.",
            BTreeMap::new(),
        )
    };
    let root = object(
        "MultiNetworkPolicy: NetworkPolicy rules for secondary networks, which the \
         k8s.v1.cni.cncf.io/policy-for annotation names.",
        BTreeMap::from([
            (
                "apiVersion".to_owned(),
                string("The versioned schema of this object."),
            ),
            (
                "kind".to_owned(),
                string("The REST resource this object represents."),
            ),
            (
                "metadata".to_owned(),
                JSONSchemaProps {
                    type_: Some("object".to_owned()),
                    ..JSONSchemaProps::default()
                },
            ),
            ("spec".to_owned(), spec),
        ]),
    );
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{}.{}", Mnp::URL_PATH_SEGMENT, Mnp::GROUP)),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: Mnp::GROUP.to_owned(),
            scope: "Namespaced".to_owned(),
            names: CustomResourceDefinitionNames {
                kind: Mnp::KIND.to_owned(),
                list_kind: Some(Mnp::LIST_KIND.to_owned()),
                plural: Mnp::URL_PATH_SEGMENT.to_owned(),
                singular: Some("multi-networkpolicy".to_owned()),
                short_names: Some(vec!["multi-policy".to_owned()]),
                ..CustomResourceDefinitionNames::default()
            },
            versions: vec![CustomResourceDefinitionVersion {
                name: Mnp::VERSION.to_owned(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(root),
                }),
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        status: None,
    }
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
