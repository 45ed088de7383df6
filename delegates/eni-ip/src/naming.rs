//! The host end's name: upstream's `GeneratePodHostVethName`, the prefix and the first 11
//! hex digits of a SHA-1, so tools that compute it from the pod (network policy agents,
//! debugging scripts) find the same link. The plugin names the veth with it; the agent
//! finds a restored allocation's veth by it.

use sha1::{Digest, Sha1};

/// Hex digits of the hash in the name.
const HASH_DIGITS: usize = 11;

/// Who a pod is, as the runtime's `CNI_ARGS` say (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodName<'a> {
    /// The pod's namespace.
    pub namespace: &'a str,
    /// The pod's name.
    pub name: &'a str,
}

/// The host veth name of an attachment:
/// - a Kubernetes pod's `eth0`: `prefix + sha1("<ns>.<name>")[:11]`, exactly upstream's;
/// - a Kubernetes pod's other interfaces (eni-ip as a secondary network on `net1`):
///   `sha1("<ns>.<name>.<ifname>")`, so the two attachments of one pod get two names;
/// - without the pod's namespace and name (podman, cnitool):
///   `sha1("<containerID>.<ifname>")`, unique per attachment as CNI keys them.
pub fn host_veth_name(
    prefix: &str,
    pod: Option<PodName<'_>>,
    container_id: &str,
    ifname: &str,
) -> String {
    let seed = match pod {
        Some(p) if ifname == "eth0" => format!("{}.{}", p.namespace, p.name),
        Some(p) => format!("{}.{}.{ifname}", p.namespace, p.name),
        None => format!("{container_id}.{ifname}"),
    };
    let digest = Sha1::digest(seed.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{}", &hex[..HASH_DIGITS])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod<'a>(namespace: &'a str, name: &'a str) -> Option<PodName<'a>> {
        Some(PodName { namespace, name })
    }

    /// The vectors of upstream's `pkg/networkutils/names_test.go`.
    #[test]
    fn upstream_test_vectors() {
        assert_eq!(
            host_veth_name(
                "eni",
                pod("kube-system", "coredns-57ff979f67-qqbdh"),
                "c",
                "eth0"
            ),
            "enib5faff8a083"
        );
        assert_eq!(
            host_veth_name(
                "vlan",
                pod("kube-system", "coredns-57ff979f67-qqbdh"),
                "c",
                "eth0"
            ),
            "vlanb5faff8a083"
        );
        assert_eq!(
            host_veth_name("eni", pod("default", "sample-pod"), "c", "eth0"),
            "enicc21c2d7785"
        );
    }

    #[test]
    fn other_interfaces_and_non_kubernetes_pods_get_their_own_names() {
        let eth0 = host_veth_name("eni", pod("default", "sample-pod"), "c", "eth0");
        let net1 = host_veth_name("eni", pod("default", "sample-pod"), "c", "net1");
        assert_ne!(eth0, net1);
        let plain = host_veth_name("eni", None, "c1", "eth0");
        assert_ne!(plain, host_veth_name("eni", None, "c2", "eth0"));
        assert_ne!(plain, host_veth_name("eni", None, "c1", "eth1"));
        for name in [eth0, net1, plain] {
            assert_eq!(
                name.len(),
                14,
                "{name}: an interface name has at most 15 bytes"
            );
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");
        }
    }
}
