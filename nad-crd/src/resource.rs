//! The trait impls that make a hand-written custom resource type (`metadata` and `spec`
//! fields) a Kubernetes resource: `k8s_openapi::{Resource, ListableResource, Metadata}`, so
//! `kube::Api` takes it, and a `Serialize` that always writes `apiVersion` and `kind`, as
//! the API server expects (derived serialization would leave them out).

/// Implements the resource traits for `$type` of `$group/$version`, kind `$kind`, served
/// under `$plural`.
macro_rules! custom_resource {
    ($type:ty, group: $group:literal, version: $version:literal, kind: $kind:literal,
     plural: $plural:literal) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                let mut object = serializer.serialize_struct($kind, 4)?;
                object.serialize_field("apiVersion", concat!($group, "/", $version))?;
                object.serialize_field("kind", $kind)?;
                object.serialize_field("metadata", &self.metadata)?;
                object.serialize_field("spec", &self.spec)?;
                object.end()
            }
        }

        impl k8s_openapi::Resource for $type {
            const API_VERSION: &'static str = concat!($group, "/", $version);
            const GROUP: &'static str = $group;
            const KIND: &'static str = $kind;
            const VERSION: &'static str = $version;
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = k8s_openapi::NamespaceResourceScope;
        }

        impl k8s_openapi::ListableResource for $type {
            const LIST_KIND: &'static str = concat!($kind, "List");
        }

        impl k8s_openapi::Metadata for $type {
            type Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

            fn metadata(&self) -> &Self::Ty {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut Self::Ty {
                &mut self.metadata
            }
        }
    };
}

pub(crate) use custom_resource;
