//! The bridge networks every scenario attaches: network 0 is the cluster network (`eth0`,
//! default route), network `i` is `net-<i>` (`net<i>` in the pod), each on its own bridge
//! and /16, with host-local IPAM.

use std::net::Ipv4Addr;
use std::path::Path;

use serde_json::{json, Value};

/// One network of the benchmark.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Network {
    index: usize,
}

/// The most networks a pod gets (the sweep's largest size).
pub(crate) const MAX_NETWORKS: usize = 16;

impl Network {
    /// The first `n` networks, cluster network first.
    pub(crate) fn first(n: usize) -> Vec<Network> {
        assert!((1..=MAX_NETWORKS).contains(&n), "{n} networks");
        (0..n).map(|index| Network { index }).collect()
    }

    /// True for the cluster network.
    pub(crate) fn is_cluster(self) -> bool {
        self.index == 0
    }

    /// The NAD (and netconf) name.
    pub(crate) fn name(self) -> String {
        if self.is_cluster() {
            "cluster".into()
        } else {
            format!("net-{}", self.index)
        }
    }

    /// The NAD's namespace: the cluster network lives in `kube-system` (Multus's
    /// `multusNamespace`), the others in the pod's namespace.
    pub(crate) fn namespace(self) -> &'static str {
        if self.is_cluster() {
            "kube-system"
        } else {
            "default"
        }
    }

    /// The interface name in the pod, as the meta plugin names it.
    pub(crate) fn ifname(self) -> String {
        if self.is_cluster() {
            "eth0".into()
        } else {
            format!("net{}", self.index)
        }
    }

    /// The bridge in the node namespace.
    pub(crate) fn bridge(self) -> String {
        format!("bench-br{}", self.index)
    }

    /// The second octet of the network's 10.x.0.0/16.
    fn octet(self) -> u8 {
        64 + self.index as u8
    }

    /// The gateway (host-local's default: the subnet's first address, on the bridge).
    pub(crate) fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.octet(), 0, 1)
    }

    /// The floor's static address for pod `k` (host-local's would depend on order).
    pub(crate) fn pod_addr(self, k: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.octet(), (k / 250) as u8, (k % 250) as u8 + 2)
    }

    /// The prefix length of every network.
    pub(crate) const PREFIX: u8 = 16;

    /// The bridge plugin's netconf for this network, its IPAM state under `data_dir`.
    pub(crate) fn netconf(self, data_dir: &Path) -> Value {
        let mut conf = json!({
            "cniVersion": "1.0.0",
            "name": self.name(),
            "type": "bridge",
            "bridge": self.bridge(),
            "isGateway": true,
            "ipam": {
                "type": "host-local",
                "subnet": format!("10.{}.0.0/{}", self.octet(), Self::PREFIX),
                "dataDir": data_dir,
            },
        });
        if self.is_cluster() {
            conf["isDefaultGateway"] = json!(true);
        }
        conf
    }

    /// The NetworkAttachmentDefinition carrying [`Network::netconf`].
    pub(crate) fn nad(self, data_dir: &Path) -> Value {
        json!({
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": { "name": self.name(), "namespace": self.namespace() },
            "spec": { "config": self.netconf(data_dir).to_string() },
        })
    }
}
