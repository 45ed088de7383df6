//! The CustomResourceDefinition for [`NetworkAttachmentDefinition`], as Multus ships it: a
//! namespaced `k8s.cni.cncf.io/v1` kind whose `spec` (itself optional) has one string field,
//! `config`; and [`namespaced_crd`], the CRD around a spec schema that every kind of this
//! crate shares.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ListableResource, Resource};

use crate::nad::NetworkAttachmentDefinition;

/// The CRD that makes the API server serve [`NetworkAttachmentDefinition`]s.
pub fn crd() -> CustomResourceDefinition {
    let spec = JSONSchemaProps {
        description: Some("The desired state of a network attachment.".to_owned()),
        type_: Some("object".to_owned()),
        properties: Some(BTreeMap::from([(
            "config".to_owned(),
            typed(
                "string",
                "A CNI configuration (one plugin) or configuration list, as JSON text. \
                 Empty or absent: the file in the meta plugin's confDir whose name is this \
                 object's name.",
            ),
        )])),
        ..JSONSchemaProps::default()
    };
    // `spec` is deliberately not required: Multus accepts NADs without one.
    namespaced_crd::<NetworkAttachmentDefinition>(
        "NetworkAttachmentDefinition: a named CNI configuration that pods attach to \
         through the k8s.v1.cni.cncf.io/networks annotation (Network Plumbing Working \
         Group multi-network specification).",
        spec,
        "network-attachment-definition",
        "net-attach-def",
    )
}

/// The CRD of the namespaced kind `R`: one served and stored version, an object schema
/// (`apiVersion`, `kind`, `metadata`, and `spec` as given) described by `description`.
pub(crate) fn namespaced_crd<R: Resource + ListableResource>(
    description: &str,
    spec: JSONSchemaProps,
    singular: &str,
    short_name: &str,
) -> CustomResourceDefinition {
    let root = JSONSchemaProps {
        description: Some(description.to_owned()),
        type_: Some("object".to_owned()),
        properties: Some(BTreeMap::from([
            (
                "apiVersion".to_owned(),
                typed("string", "The versioned schema of this object."),
            ),
            (
                "kind".to_owned(),
                typed("string", "The REST resource this object represents."),
            ),
            (
                "metadata".to_owned(),
                JSONSchemaProps {
                    type_: Some("object".to_owned()),
                    ..JSONSchemaProps::default()
                },
            ),
            ("spec".to_owned(), spec),
        ])),
        ..JSONSchemaProps::default()
    };
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{}.{}", R::URL_PATH_SEGMENT, R::GROUP)),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: R::GROUP.to_owned(),
            scope: "Namespaced".to_owned(),
            names: CustomResourceDefinitionNames {
                kind: R::KIND.to_owned(),
                list_kind: Some(R::LIST_KIND.to_owned()),
                plural: R::URL_PATH_SEGMENT.to_owned(),
                singular: Some(singular.to_owned()),
                short_names: Some(vec![short_name.to_owned()]),
                ..CustomResourceDefinitionNames::default()
            },
            versions: vec![CustomResourceDefinitionVersion {
                name: R::VERSION.to_owned(),
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

/// [`crd()`] as a YAML document, ready for `kubectl apply -f`.
pub fn crd_yaml() -> String {
    serde_saphyr::to_string(&crd()).expect("a CRD has only string keys, so it always renders")
}

fn typed(type_: &str, description: &str) -> JSONSchemaProps {
    JSONSchemaProps {
        description: Some(description.to_owned()),
        type_: Some(type_.to_owned()),
        ..JSONSchemaProps::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_yaml_snapshot() {
        insta::assert_snapshot!("crd_yaml", crd_yaml());
    }

    #[test]
    fn crd_yaml_decodes_back_to_the_crd() {
        let back: CustomResourceDefinition = serde_saphyr::from_str(&crd_yaml()).unwrap();
        assert_eq!(back, crd());
        assert_eq!(
            back.metadata.name.as_deref(),
            Some("network-attachment-definitions.k8s.cni.cncf.io")
        );
    }
}
