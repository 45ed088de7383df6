//! A node for the Kubernetes-mode tests: a [`MetaPod`] whose node namespace has `lo` up and
//! the API stand-in listening in it (where the plugin under test runs), holding three bridge
//! NADs (`kube-system/cluster` with the default route, `default/net-a`, `default/net-b`, in
//! `10.<octet>.0.0/24`, `.1.0/24` and `.2.0/24`) and pods on node [`NODE_NAME`] whose
//! networks are `net-a@data0, net-b`.

use serde_json::json;

use crate::inspect::netns;
use crate::kube_api::{KubeApi, KubeApiBuilder};
use crate::meta_pod::{bridge_nad, MetaPod};

/// The node the pods are on.
pub const NODE_NAME: &str = "node-1";

/// The node's namespaces and directories, and its API stand-in.
pub struct KubeNode {
    /// The node and pod namespaces, with the node's directories.
    pub pod: MetaPod,
    /// The stand-in, listening in the node namespace.
    pub api: KubeApi,
}

impl KubeNode {
    /// Starts the stand-in from `builder` in a new node namespace and stores the NADs in
    /// `10.<octet>.x.0/24` (an octet per test file keeps their addresses apart).
    pub fn start(builder: KubeApiBuilder, octet: u8) -> KubeNode {
        let pod = MetaPod::new();
        let mut nl = crate::inspect::netlink(&pod.node);
        let lo = nl.link_by_name("lo").unwrap().unwrap();
        nl.set_link_up(lo.index).unwrap();
        let api = netns(&pod.node).run(|| builder.start()).unwrap();
        let ipam = pod.ipam_dir();
        let subnet = |i: u8| format!("10.{octet}.{i}.0/24");
        for (namespace, mut nad) in [
            (
                "kube-system",
                bridge_nad(
                    &ipam,
                    "cluster",
                    "br-cluster",
                    &subnet(0),
                    json!({"isDefaultGateway": true}),
                ),
            ),
            (
                "default",
                bridge_nad(&ipam, "net-a", "br-a", &subnet(1), json!({})),
            ),
            (
                "default",
                bridge_nad(&ipam, "net-b", "br-b", &subnet(2), json!({})),
            ),
        ] {
            nad["metadata"]["namespace"] = json!(namespace);
            api.add_nad(nad);
        }
        KubeNode { pod, api }
    }

    /// Pod `default/<name>` on [`NODE_NAME`] (see [`add_pod`]); its UID.
    pub fn add_pod(&self, name: &str) -> String {
        add_pod(&self.api, name)
    }
}

/// Stores pod `default/<name>` on [`NODE_NAME`], networks `net-a@data0, net-b`; its UID.
pub fn add_pod(api: &KubeApi, name: &str) -> String {
    let pod = api.add_pod(json!({
        "metadata": {"name": name, "namespace": "default", "annotations": {
            "k8s.v1.cni.cncf.io/networks": "net-a@data0, net-b"}},
        "spec": {"nodeName": NODE_NAME, "containers": [{"name": "c", "image": "busybox"}]},
    }));
    pod["metadata"]["uid"].as_str().unwrap().to_string()
}
