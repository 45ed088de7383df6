//! A Kubernetes node for NFV pods, with no SR-IOV hardware: a private node namespace (`lo`
//! up, the API stand-in listening there), the kubelet's PodResources stand-in on a socket in
//! the test's directory, and "VFs" that are veth ends in the node namespace whose far ends
//! live in namespaces the test made. Each VF has a PCI-address-like device ID, mapped to the
//! veth by a fake `/sys/bus/pci/devices` tree (`<id>/net/<veth>`, `<id>/driver` -> `iavf`)
//! that every call of the meta plugin sees in a private mount namespace, so the reference
//! `host-device` plugin, given `pciBusID`, finds and moves the veth as it would a VF.
//!
//! Everything vanishes when the value is dropped: namespaces, sockets, files.

use std::path::{Path, PathBuf};

use kernel::{PrivateNetns, VethRequest};
use serde_json::{json, Value};

use crate::inspect::{netlink, netns};
use crate::kube_api::{write_kubeconfig, KubeApi};
use crate::kubelet_stand_in::KubeletStandIn;
use crate::{Call, Output, PluginSet};

/// The device-plugin resource the node's VFs belong to.
pub const VF_RESOURCE: &str = "example.com/vf";

/// The node.
pub struct NfvNode {
    /// Where the plugin runs and the VFs wait to be moved into pods.
    pub node: PrivateNetns,
    /// The Kubernetes API stand-in (listening in `node`).
    pub api: KubeApi,
    /// The kubelet's PodResources stand-in.
    pub kubelet: KubeletStandIn,
    /// kubeconfig, cniDir (`cache/`), IPAM data (`ipam/`), device-info (`devinfo/`), the fake
    /// PCI tree (`pci/`) and the wrapper that mounts it (`meta-cni-with-pci`).
    pub dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

/// A NAD `default/<name>` for VFs of `resource`: host-device (addresses from the selection's
/// `ips`, through static IPAM), then tuning for `mtu`.
pub fn vf_nad(name: &str, resource: &str, mtu: u32) -> Value {
    let config = json!({"cniVersion": "1.0.0", "name": name, "plugins": [
        {"type": "host-device", "capabilities": {"ips": true}, "ipam": {"type": "static"}},
        {"type": "tuning", "mtu": mtu}]});
    json!({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name, "namespace": "default",
                     "annotations": {"k8s.v1.cni.cncf.io/resourceName": resource}},
        "spec": {"config": config.to_string()}})
}

/// A pod object `default/<name>` with UID `uid` and `networks` as its networks annotation.
pub fn pod_object(name: &str, uid: &str, networks: &Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": uid,
                     "annotations": {"k8s.v1.cni.cncf.io/networks": networks.to_string()}},
        "spec": {"containers": [{"name": "app", "image": "dpdk-app"}]}})
}

impl Default for NfvNode {
    fn default() -> Self {
        NfvNode::new()
    }
}

impl NfvNode {
    /// A node whose API holds the cluster network `kube-system/cluster` (bridge
    /// `br-cluster`, 10.30.0.0/24, default gateway) and no pod yet.
    pub fn new() -> NfvNode {
        let node = PrivateNetns::new().expect("node namespace");
        let mut nl = netlink(&node);
        let lo = nl.link_by_name("lo").unwrap().expect("lo");
        nl.set_link_up(lo.index).unwrap();
        let api = netns(&node).run(KubeApi::start).expect("enter the node");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = write_kubeconfig(dir.path(), &api);
        let kubelet = KubeletStandIn::start(&dir.path().join("kubelet.sock"));
        let n = NfvNode {
            node,
            api,
            kubelet,
            dir,
            kubeconfig,
        };
        std::fs::create_dir_all(n.pci_dir().join("drivers/iavf")).expect("fake PCI tree");
        let wrapper = n.dir.path().join("meta-cni-with-pci");
        // `$0` is the fake tree, `$1` the plugin: the delegates it runs inherit the mount.
        let script = "#!/bin/sh\nexec unshare --mount --propagation private sh -c \
            'mount --bind \"$0\" /sys/bus/pci/devices && exec \"$1\"' \"$@\"\n";
        std::fs::write(&wrapper, script).expect("write the wrapper");
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("make the wrapper executable");
        let config = json!({"cniVersion": "1.0.0", "name": "cluster", "type": "bridge",
            "bridge": "br-cluster", "isDefaultGateway": true,
            "ipam": {"type": "host-local", "subnet": "10.30.0.0/24", "dataDir": n.ipam_dir()}});
        n.api.add_nad(
            json!({"metadata": {"name": "cluster", "namespace": "kube-system"},
            "spec": {"config": config.to_string()}}),
        );
        n
    }

    /// The fake `/sys/bus/pci/devices`.
    pub fn pci_dir(&self) -> PathBuf {
        self.dir.path().join("pci")
    }

    /// host-local's data dir.
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam")
    }

    /// The meta plugin's cniDir.
    pub fn cni_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The meta plugin's `deviceInfoDir`.
    pub fn device_info_dir(&self) -> PathBuf {
        self.dir.path().join("devinfo")
    }

    /// Makes VF `pci` (a PCI address): veth `name` in the node, its far end `far_name` in
    /// `far` (MTU 9000, up) with `far_addr` if given, mapped in the fake PCI tree; and the
    /// device plugin's device-info file for it, of `resource`.
    pub fn add_vf(
        &self,
        resource: &str,
        pci: &str,
        name: &str,
        far: &PrivateNetns,
        far_name: &str,
        far_addr: Option<&str>,
    ) {
        let far_ns = netns(far);
        netlink(&self.node)
            .create_veth(&VethRequest {
                name: name.into(),
                peer_name: far_name.into(),
                peer_netns: Some(&far_ns),
                mtu: None,
                mac: None,
                peer_mac: None,
                master: None,
                up: false,
            })
            .expect("create the VF");
        let mut nl = netlink(far);
        let end = nl
            .link_by_name(far_name)
            .unwrap()
            .expect("the VF's far end");
        nl.set_mtu(end.index, 9000).unwrap();
        if let Some(addr) = far_addr {
            nl.add_address(end.index, addr.parse().unwrap(), Default::default())
                .unwrap();
        }
        nl.set_link_up(end.index).unwrap();
        let device = self.pci_dir().join(pci);
        std::fs::create_dir_all(device.join("net").join(name)).expect("fake PCI device");
        std::os::unix::fs::symlink("../drivers/iavf", device.join("driver"))
            .expect("fake PCI driver");
        self.write_device_info(
            resource,
            pci,
            &json!({"type": "pci", "version": "1.1.0", "pci": {"pci-address": pci}}),
        );
    }

    /// Writes a device plugin's device-info file for device `id` of `resource`.
    pub fn write_device_info(&self, resource: &str, id: &str, info: &Value) {
        let dp = self.device_info_dir().join("dp");
        std::fs::create_dir_all(&dp).expect("device-info dir");
        let file = format!(
            "{}-{}-device.json",
            resource.replace('/', "-"),
            id.replace('/', "-")
        );
        std::fs::write(dp.join(file), info.to_string()).expect("write device-info");
    }

    /// The files the delegates' device-info directory (`cni/`) holds.
    pub fn cni_device_info_files(&self) -> Vec<String> {
        match std::fs::read_dir(self.device_info_dir().join("cni")) {
            Ok(dir) => dir
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The meta netconf: cluster network `cluster`, this node's kubeconfig, kubelet and dirs,
    /// `extra` keys on top.
    pub fn conf(&self, extra: Value) -> String {
        let mut conf = json!({"cniVersion": "1.0.0", "name": "meta", "type": "meta-cni",
            "clusterNetwork": "cluster", "kubeconfig": self.kubeconfig,
            "cniDir": self.cni_dir(), "binDir": PluginSet::Ours.bin_dir(),
            "podResourcesSocket": self.kubelet.socket(),
            "deviceCheckpoint": self.dir.path().join("kubelet_internal_checkpoint"),
            "deviceInfoDir": self.device_info_dir(),
            "apiTimeoutSeconds": 5, "apiRetries": 1});
        for (k, v) in extra.as_object().into_iter().flatten() {
            conf[k] = v.clone();
        }
        conf.to_string()
    }

    /// A call of the meta plugin (with the fake PCI tree) for pod `default/<pod>` (UID `uid`),
    /// sandbox `pod_ns`, container `container_id`; `CNI_PATH` holds ours, then the reference
    /// plugins (host-device, static, tuning).
    pub fn call(
        &self,
        pod_ns: &Path,
        container_id: &str,
        pod: &str,
        uid: &str,
        verb: &str,
        conf: &str,
    ) -> Call {
        let wrapper = self.dir.path().join("meta-cni-with-pci");
        Call::binary(&wrapper, verb)
            .var(
                "CNI_PATH",
                &format!("{}:/usr/lib/cni", PluginSet::Ours.bin_dir().display()),
            )
            .var(
                "CNI_ARGS",
                &format!(
                    "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};\
                     K8S_POD_INFRA_CONTAINER_ID={container_id};K8S_POD_UID={uid}"
                ),
            )
            .container(container_id, pod_ns, "eth0")
            .stdin(conf)
            .args([
                self.pci_dir().display().to_string(),
                PluginSet::Ours.plugin("meta-cni").display().to_string(),
            ])
    }

    /// Runs `call` in the node namespace.
    pub fn run(&self, call: Call) -> Output {
        call.run_in(&netns(&self.node))
    }

    /// The `network-status` of pod `default/<pod>`, decoded.
    pub fn network_status(&self, pod: &str) -> Option<Value> {
        let pod = self.api.pod("default", pod)?;
        let text = pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"].as_str()?;
        Some(serde_json::from_str(text).expect("network-status is JSON"))
    }
}
