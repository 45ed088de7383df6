//! A pod attached through the meta plugin in standalone mode: a private node namespace
//! (bridges, host veths, nftables), a pod namespace, and a temp dir holding the pod's nadDir
//! (with the cluster network and two NADs), cniDir and IPAM data dir. Everything vanishes
//! when the value is dropped, panics included.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kernel::PrivateNetns;
use serde_json::{json, Value};

use crate::inspect::{self, host_veths, link_names, netns};
use crate::{Call, Output, PluginSet};

/// The container ID every call of a [`MetaPod`] uses unless told otherwise.
pub const CONTAINER_ID: &str = "pod1";

/// A bridge NAD named `name` on `bridge` with host-local in `data_dir`, `extra` keys on top.
pub fn bridge_nad(data_dir: &Path, name: &str, bridge: &str, subnet: &str, extra: Value) -> Value {
    let mut conf = json!({"cniVersion": "1.0.0", "type": "bridge", "bridge": bridge,
        "ipam": {"type": "host-local", "subnet": subnet, "dataDir": data_dir}});
    for (k, v) in extra.as_object().into_iter().flatten() {
        conf[k] = v.clone();
    }
    nad(name, conf)
}

/// A NAD object named `name` whose config is `config`.
pub fn nad(name: &str, config: Value) -> Value {
    json!({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name}, "spec": {"config": config.to_string()}})
}

/// Two static networks: `net-a` on `data0`, then `net-b` (a bridge + loopback conflist).
pub fn two_networks() -> Value {
    json!([{"name": "net-a", "interface": "data0"}, {"name": "net-b"}])
}

/// One pod, its node and its directories.
pub struct MetaPod {
    /// The node: where the plugin runs, bridges and host veths live.
    pub node: PrivateNetns,
    /// The pod's namespace.
    pub pod: PrivateNetns,
    /// nadDir (`nads/`), cniDir (`cache/`), IPAM data (`ipam/`).
    pub dir: tempfile::TempDir,
}

impl Default for MetaPod {
    fn default() -> Self {
        MetaPod::new()
    }
}

impl MetaPod {
    /// A pod whose nadDir holds `kube-system/cluster` (bridge `br-cluster`, 10.10.0.0/24,
    /// default gateway), `default/net-a` (`br-a`, 10.10.1.0/24) and `default/net-b` (a
    /// conflist: bridge `br-b` on 10.10.2.0/24, then loopback).
    pub fn new() -> MetaPod {
        let pod = MetaPod {
            node: PrivateNetns::new().expect("node namespace"),
            pod: PrivateNetns::new().expect("pod namespace"),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let ipam = pod.ipam_dir();
        pod.write_nad(
            "kube-system",
            "cluster",
            &bridge_nad(
                &ipam,
                "cluster",
                "br-cluster",
                "10.10.0.0/24",
                json!({"isDefaultGateway": true}),
            ),
        );
        pod.write_nad(
            "default",
            "net-a",
            &bridge_nad(&ipam, "net-a", "br-a", "10.10.1.0/24", json!({})),
        );
        let list = json!({"cniVersion": "1.0.0", "plugins": [
            {"type": "bridge", "bridge": "br-b",
             "ipam": {"type": "host-local", "subnet": "10.10.2.0/24", "dataDir": ipam}},
            {"type": "loopback"}]});
        pod.write_nad("default", "net-b", &nad("net-b", list));
        pod
    }

    /// host-local's data dir.
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam")
    }

    /// The meta plugin's cniDir.
    pub fn cni_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The nadDir.
    pub fn nad_dir(&self) -> PathBuf {
        self.dir.path().join("nads")
    }

    /// Writes `nad` as `<nadDir>/<ns>/<name>.yaml`.
    pub fn write_nad(&self, ns: &str, name: &str, nad: &Value) {
        let dir = self.nad_dir().join(ns);
        std::fs::create_dir_all(&dir).expect("create a nadDir namespace");
        // YAML is what operators write; JSON is YAML too.
        std::fs::write(
            dir.join(format!("{name}.yaml")),
            serde_saphyr::to_string(nad).expect("encode NAD"),
        )
        .expect("write NAD");
    }

    /// The meta netconf: cluster network `cluster`, this pod's dirs, our plugins, static
    /// `networks`, then `extra` keys on top.
    pub fn conf(&self, networks: Value, extra: Value) -> String {
        let mut conf = json!({"cniVersion": "1.0.0", "name": "meta", "type": "meta-cni",
            "clusterNetwork": "cluster", "nadDir": self.nad_dir(),
            "cniDir": self.cni_dir(), "binDir": PluginSet::Ours.bin_dir(),
            "networks": networks});
        for (k, v) in extra.as_object().into_iter().flatten() {
            conf[k] = v.clone();
        }
        conf.to_string()
    }

    /// A call of the meta plugin for container [`CONTAINER_ID`] on `eth0`.
    pub fn call(&self, verb: &str, conf: &str) -> Call {
        self.call_for(CONTAINER_ID, "eth0", verb, conf)
    }

    /// A call of the meta plugin for container `id` on `ifname`.
    pub fn call_for(&self, id: &str, ifname: &str, verb: &str, conf: &str) -> Call {
        Call::new(PluginSet::Ours, "meta-cni", verb)
            .container(id, &self.pod.path(), ifname)
            .stdin(conf)
    }

    /// Runs `call` in the node namespace.
    pub fn run(&self, call: Call) -> Output {
        call.run_in(&netns(&self.node))
    }

    /// host-local's reservations.
    pub fn reservations(&self) -> Vec<String> {
        inspect::reservations(&self.ipam_dir())
    }

    /// The cache entry of container [`CONTAINER_ID`] on `eth0`.
    pub fn cache_entry(&self) -> PathBuf {
        self.cni_dir()
            .join(format!("{CONTAINER_ID}+eth0.meta-cni.json"))
    }

    /// How many cache entries the cniDir holds.
    pub fn cache_files(&self) -> usize {
        self.cni_dir_files()
            .iter()
            .filter(|f| f.ends_with(".meta-cni.json"))
            .count()
    }

    /// Every file in the cniDir but its lock file (`meta-cni.lock`, one for every
    /// container, kept): cache entries and anything a call left.
    pub fn cni_dir_files(&self) -> Vec<String> {
        inspect::meta_cache_files(&self.cni_dir())
    }

    /// How many host veths the node holds.
    pub fn host_veths(&self) -> usize {
        host_veths(&self.node).len()
    }

    /// Nothing of the pod is left: links, addresses, reservations, cache, nftables rules.
    pub fn assert_clean(&self) {
        assert_eq!(link_names(&self.pod), BTreeSet::from(["lo".to_string()]));
        assert_eq!(self.host_veths(), 0, "host veths left");
        assert!(self.reservations().is_empty(), "{:?}", self.reservations());
        assert_eq!(self.cni_dir_files(), Vec::<String>::new(), "cache left");
        let rules = inspect::nft_rules(&self.node);
        assert!(rules.is_empty(), "nftables rules left: {rules:?}");
        // The policy delegate's rules live in the pod's namespace.
        let rules = inspect::nft_rules(&self.pod);
        assert!(
            rules.is_empty(),
            "nftables rules left in the pod: {rules:?}"
        );
    }
}
