//! Kubernetes types for meta-cni, with no I/O: the NetworkAttachmentDefinition custom resource
//! (`k8s.cni.cncf.io/v1`) and its CRD, the MultiNetworkPolicy resource
//! (`k8s.cni.cncf.io/v1beta1`), the parsing of a NAD's `spec.config`, the pod annotations that
//! select networks (`k8s.v1.cni.cncf.io/networks`, `v1.multus-cni.io/default-network`) and
//! the one that reports them (`k8s.v1.cni.cncf.io/network-status`).
//!
//! Everything a pod or a NAD supplies is validated here, before any of it reaches a path or a
//! delegate: NAD names and namespaces as Kubernetes DNS-1123 names, interface names as the CNI
//! spec says, IPs and MACs parsed.

pub mod annotations;
pub mod crd;
pub mod default_network;
pub mod error;
pub mod ip_request;
pub mod multi_network_policy;
pub mod multi_network_policy_crd;
pub mod nad;
pub mod nad_config;
pub mod names;
mod resource;
pub mod selection;
pub mod status;

pub use annotations::{
    DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION, NETWORK_STATUS_ANNOTATION, POLICY_FOR_ALIAS,
    POLICY_FOR_ANNOTATION, RESOURCE_NAME_ANNOTATION,
};
pub use cni::MacAddress;
pub use crd::{crd, crd_yaml};
pub use default_network::parse_default_network_annotation;
pub use error::{AnnotationError, EntryProblem, NadConfigError};
pub use ip_request::IpRequest;
pub use multi_network_policy::{MultiNetworkPolicy, PolicyNetwork};
pub use multi_network_policy_crd::{multi_network_policy_crd, multi_network_policy_crd_yaml};
pub use nad::{NetworkAttachmentDefinition, NetworkAttachmentDefinitionSpec};
pub use nad_config::NadConfig;
pub use selection::{parse_networks_annotation, NetworkSelection};
pub use status::{network_status_patch, Dns, NetworkStatus};
