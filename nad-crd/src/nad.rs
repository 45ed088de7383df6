//! The NetworkAttachmentDefinition custom resource (`k8s.cni.cncf.io/v1`).
//!
//! Written by hand rather than with kube-derive's `CustomResource`: that derive makes `spec`
//! mandatory, both when decoding and in the CRD schema, while Multus documents NADs with no
//! `spec` at all (the network then comes from a file in `confDir`). The k8s-openapi traits
//! implemented here are the ones kube's blanket `Resource` impl builds on, so `kube::Api`
//! takes this type as it would a derived one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use serde::{Deserialize, Serialize};

use crate::annotations::RESOURCE_NAME_ANNOTATION;
use crate::error::NadConfigError;
use crate::nad_config::NadConfig;
use crate::resource::custom_resource;

/// A NetworkAttachmentDefinition: a named CNI configuration a pod can attach to.
///
/// Decoding ignores `apiVersion` and `kind` (the API already routed the object by them) and
/// accepts a missing `spec`; encoding always writes them.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct NetworkAttachmentDefinition {
    /// Standard object metadata; `name` is the network's default CNI `name`.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The CNI configuration.
    #[serde(default)]
    pub spec: NetworkAttachmentDefinitionSpec,
}

/// The desired state of a network attachment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachmentDefinitionSpec {
    /// A CNI configuration (one plugin) or configuration list, as JSON text. Empty means the
    /// file in `confDir` whose `name` is the NAD's name.
    #[serde(default)]
    pub config: String,
}

impl NetworkAttachmentDefinition {
    /// A NAD called `name` (no namespace) with `config` as its `spec.config`.
    pub fn new(name: &str, config: impl Into<String>) -> Self {
        NetworkAttachmentDefinition {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec: NetworkAttachmentDefinitionSpec {
                config: config.into(),
            },
        }
    }

    /// `metadata.name`, or `""` when absent.
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// `metadata.namespace`, if set.
    pub fn namespace(&self) -> Option<&str> {
        self.metadata.namespace.as_deref()
    }

    /// The `k8s.v1.cni.cncf.io/resourceName` annotation, if set.
    pub fn resource_name(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(RESOURCE_NAME_ANNOTATION)
            .map(String::as_str)
    }

    /// Parses `spec.config`, giving it this NAD's name when it has none.
    pub fn parse_config(&self) -> Result<NadConfig, NadConfigError> {
        NadConfig::parse(self.name(), &self.spec.config)
    }
}

custom_resource!(NetworkAttachmentDefinition, group: "k8s.cni.cncf.io", version: "v1", kind: "NetworkAttachmentDefinition",
    plural: "network-attachment-definitions");

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_a_nad_without_spec() {
        // Multus documents this form: the network comes from a confDir file named after it.
        let nad: NetworkAttachmentDefinition = serde_json::from_value(json!({
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "macvlan-conf-2", "namespace": "default"}
        }))
        .unwrap();
        assert_eq!(nad.name(), "macvlan-conf-2");
        assert_eq!(nad.namespace(), Some("default"));
        assert_eq!(nad.spec.config, "");
        assert_eq!(nad.parse_config().unwrap(), NadConfig::Empty);
    }

    #[test]
    fn encodes_api_version_and_kind() {
        let nad = NetworkAttachmentDefinition::new("net1", r#"{"type":"bridge"}"#);
        assert_eq!(
            serde_json::to_value(&nad).unwrap(),
            json!({
                "apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": "net1"},
                "spec": {"config": "{\"type\":\"bridge\"}"}
            })
        );
        let back: NetworkAttachmentDefinition =
            serde_json::from_value(serde_json::to_value(&nad).unwrap()).unwrap();
        assert_eq!(back, nad);
    }

    #[test]
    fn reads_the_resource_name_annotation() {
        let mut nad = NetworkAttachmentDefinition::new("sriov", "");
        assert_eq!(nad.resource_name(), None);
        nad.metadata.annotations = Some(
            [(
                RESOURCE_NAME_ANNOTATION.to_owned(),
                "intel.com/sriov".to_owned(),
            )]
            .into(),
        );
        assert_eq!(nad.resource_name(), Some("intel.com/sriov"));
    }

    #[test]
    fn kube_sees_a_namespaced_resource() {
        // kube's blanket impl over the k8s-openapi traits is what `kube::Api` needs.
        fn namespaced<
            K: kube_core::Resource<DynamicType = (), Scope = kube_core::NamespaceResourceScope>,
        >() {
        }
        namespaced::<NetworkAttachmentDefinition>();
        use kube_core::Resource;
        assert_eq!(
            NetworkAttachmentDefinition::plural(&()),
            "network-attachment-definitions"
        );
        assert_eq!(
            NetworkAttachmentDefinition::api_version(&()),
            "k8s.cni.cncf.io/v1"
        );
        let nad = NetworkAttachmentDefinition::new("net1", "");
        assert_eq!(nad.meta().name.as_deref(), Some("net1"));
    }
}
