//! The annotation keys meta-cni reads and writes, as Multus spells them.

/// Pod annotation selecting additional networks: `[ns/]name[@ifname]` entries separated by
/// commas, or a JSON list of selection objects.
pub const NETWORKS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";

/// Pod annotation the meta plugin writes after ADD: a JSON list of [`crate::NetworkStatus`].
pub const NETWORK_STATUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/network-status";

/// Pod annotation replacing the cluster network for that pod: `[ns/]name`.
pub const DEFAULT_NETWORK_ANNOTATION: &str = "v1.multus-cni.io/default-network";

/// NAD annotation naming the device-plugin resource whose allocated device becomes the
/// attachment's `deviceID` (SR-IOV and similar).
pub const RESOURCE_NAME_ANNOTATION: &str = "k8s.v1.cni.cncf.io/resourceName";

/// MultiNetworkPolicy annotation naming the networks the policy is for: NAD names separated
/// by commas, each `name` (in the policy's namespace) or `namespace/name`. Spelled as the
/// k8snetworkplumbingwg/multi-networkpolicy project spells it.
pub const POLICY_FOR_ANNOTATION: &str = "k8s.v1.cni.cncf.io/policy-for";

/// The same annotation as this project's issue tracker first spelled it; read when
/// [`POLICY_FOR_ANNOTATION`] is absent, so policies written either way apply.
pub const POLICY_FOR_ALIAS: &str = "k8s.v1.multi-networkpolicy/policy-for";
