//! NFV pods in Kubernetes mode, through the API stand-in and the kubelet's PodResources
//! stand-in: CONFORMANCE.md statement 51 (device-plugin half) and the data-plane acceptance:
//! a pod with management on `eth0` (bridge) and two data-plane networks whose NADs name a
//! resource, each given the VF the kubelet allocated (a veth, moved in by the reference
//! `host-device` from `/usr/lib/cni`), its static address, MTU 9000 and, on one of them, the
//! default route; network-status carries both VFs' device-info. Needs root.

use std::collections::BTreeSet;

use conformance::inspect::{ipv4_addrs, link_names, netlink, netns};
use conformance::nfv_node::{pod_object, vf_nad, NfvNode, VF_RESOURCE};
use kernel::{Family, PrivateNetns};
use serde_json::{json, Value};

const POD: &str = "nfv-pod";
const UID: &str = "0b5f3c1e-6a2d-4e8f-9c7b-1d2e3f4a5b6c";

/// The data-plane networks of the pod: `data-a` on `data0` with the default route, `data-b`
/// on `data1`.
fn networks() -> Value {
    json!([
        {"name": "data-a", "interface": "data0", "ips": ["192.168.10.2/24"],
         "default-route": ["192.168.10.1"]},
        {"name": "data-b", "interface": "data1", "ips": ["192.168.20.2/24"]}
    ])
}

/// A node with two VFs of [`VF_RESOURCE`] (`vf0` at 0000:81:00.2, `vf1` at 0000:81:00.3)
/// whose far ends are in `far` (192.168.10.1 and 192.168.20.1), nothing allocated yet.
fn node_with_two_vfs(far: &PrivateNetns) -> NfvNode {
    let n = NfvNode::new();
    n.add_vf(
        VF_RESOURCE,
        "0000:81:00.2",
        "vf0",
        far,
        "wire0",
        Some("192.168.10.1/24"),
    );
    n.add_vf(
        VF_RESOURCE,
        "0000:81:00.3",
        "vf1",
        far,
        "wire1",
        Some("192.168.20.1/24"),
    );
    n
}

/// The node with two VFs of [`VF_RESOURCE`] whose far ends are in `far` (192.168.10.1 and
/// 192.168.20.1), both allocated to the pod's `app` container, and the two NADs.
fn node(far: &PrivateNetns) -> NfvNode {
    let n = node_with_two_vfs(far);
    n.kubelet.allocate(
        "default",
        POD,
        "app",
        VF_RESOURCE,
        &["0000:81:00.3", "0000:81:00.2"],
    );
    n.api.add_nad(vf_nad("data-a", VF_RESOURCE, 9000));
    n.api.add_nad(vf_nad("data-b", VF_RESOURCE, 9000));
    n.api.add_pod(pod_object(POD, UID, &networks()));
    n
}

fn mtu(ns: &PrivateNetns, ifname: &str) -> u32 {
    netlink(ns).link_by_name(ifname).unwrap().unwrap().mtu
}

fn ping(from: &PrivateNetns, to: &str) -> bool {
    netns(from)
        .run(|| {
            std::process::Command::new("ping")
                .args(["-c", "1", "-W", "2", to])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
        .unwrap()
}

/// The default route of `ns`: (gateway, interface index).
fn default_route(ns: &PrivateNetns) -> Vec<(Option<std::net::IpAddr>, Option<u32>)> {
    netlink(ns)
        .routes(Family::V4, None)
        .unwrap()
        .into_iter()
        .filter(|r| r.dst.prefix_len() == 0)
        .map(|r| (r.gateway, r.oif))
        .collect()
}

fn pci_info(pci: &str) -> Value {
    json!({"type": "pci", "version": "1.1.0", "pci": {"pci-address": pci}})
}

/// The network-status entries of the data-plane networks, by interface.
fn data_plane_status(status: &Value) -> Vec<(String, Value, Value)> {
    status
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["default"] != true)
        .map(|e| {
            (
                e["interface"].as_str().unwrap().to_string(),
                e["ips"].clone(),
                e["device-info"].clone(),
            )
        })
        .collect()
}

/// ADD, then everything the acceptance asks for, then CHECK and DEL; the VFs go back to the
/// node.
fn add_check_del(n: &NfvNode, pod: &PrivateNetns, far: &PrivateNetns) {
    let conf = n.conf(json!({}));
    let call = |verb: &str| n.call(&pod.path(), "pod1", POD, UID, verb, &conf);
    n.run(call("ADD")).success();

    assert_eq!(
        link_names(pod),
        BTreeSet::from(["lo", "eth0", "data0", "data1"].map(String::from))
    );
    // The VFs left the node for the pod (host-device keeps the node name as the alias).
    let node_links = link_names(&n.node);
    assert!(
        !node_links.contains("vf0") && !node_links.contains("vf1"),
        "{node_links:?}"
    );
    // Devices sorted as Multus sorts them: data-a gets 0000:81:00.2 (vf0), data-b vf1.
    assert_eq!(ipv4_addrs(pod, "data0"), ["192.168.10.2/24"]);
    assert_eq!(ipv4_addrs(pod, "data1"), ["192.168.20.2/24"]);
    assert_eq!(mtu(pod, "data0"), 9000);
    assert_eq!(mtu(pod, "data1"), 9000);
    let data0 = netlink(pod).link_by_name("data0").unwrap().unwrap();
    assert_eq!(
        default_route(pod),
        [(Some("192.168.10.1".parse().unwrap()), Some(data0.index))],
        "the default route is on the data plane"
    );
    assert!(ping(pod, "192.168.10.1"), "data0 reaches its far end");
    assert!(ping(pod, "192.168.20.1"), "data1 reaches its far end");
    assert!(ping(far, "192.168.10.2"), "the far end reaches data0");

    let status = n.network_status(POD).expect("network-status written");
    assert_eq!(
        data_plane_status(&status),
        [
            (
                "data0".to_string(),
                json!(["192.168.10.2"]),
                pci_info("0000:81:00.2")
            ),
            (
                "data1".to_string(),
                json!(["192.168.20.2"]),
                pci_info("0000:81:00.3")
            ),
        ],
        "{status:#}"
    );
    // Each attachment's CNIDeviceInfoFile, for its delegates, until DEL.
    let mut files = n.cni_device_info_files();
    files.sort();
    assert_eq!(
        files,
        ["default-data-a-pod1_data0", "default-data-b-pod1_data1"]
    );

    n.run(call("CHECK")).quiet_success();
    n.run(call("DEL")).quiet_success();
    assert_eq!(link_names(pod), BTreeSet::from(["lo".to_string()]));
    let node_links = link_names(&n.node);
    assert!(
        node_links.contains("vf0") && node_links.contains("vf1"),
        "the VFs are back in the node: {node_links:?}"
    );
    assert_eq!(n.cni_device_info_files(), Vec::<String>::new());
    // DEL twice (statement 9): with no cache nothing was made, so the reference host-device
    // failing on an interface already gone does not fail it; the VFs stay in the node.
    n.run(call("DEL")).quiet_success();
    let node_links = link_names(&n.node);
    assert!(node_links.contains("vf0") && node_links.contains("vf1"));
}

/// The acceptance pod, devices from the kubelet's `Get`.
#[test]
fn nfv_pod_with_two_vfs_from_the_device_plugin() {
    let far = PrivateNetns::new().unwrap();
    let pod = PrivateNetns::new().unwrap();
    let n = node(&far);
    add_check_del(&n, &pod, &far);
    // ADD asked once; the first DEL ran from the cache; the second, with no cache, planned
    // again.
    assert_eq!(n.kubelet.calls(), ["Get", "Get"]);
}

/// Statement 51, device plugin: the delegate gets the allocated device's ID (host-device,
/// given `pciBusID`, moves exactly the VF mapped to it) from a kubelet without `Get` (the
/// `List` fallback), and network-status carries the device plugin's device-info.
#[test]
fn statement_51_device_plugin_resource_name_gives_the_delegate_the_allocated_device() {
    let far = PrivateNetns::new().unwrap();
    let pod = PrivateNetns::new().unwrap();
    let n = node(&far);
    n.kubelet.set_get_unimplemented(true);
    add_check_del(&n, &pod, &far);
    assert_eq!(n.kubelet.calls(), ["Get", "List", "Get", "List"]);
}

/// With no PodResources socket, the device manager's checkpoint gives the devices (by the
/// pod's UID).
#[test]
fn statement_51_device_plugin_checkpoint_when_the_kubelet_socket_is_absent() {
    let far = PrivateNetns::new().unwrap();
    let pod = PrivateNetns::new().unwrap();
    let n = node(&far);
    let checkpoint = n.dir.path().join("kubelet_internal_checkpoint");
    let entry = json!({"PodUID": UID, "ContainerName": "app", "ResourceName": VF_RESOURCE,
        "DeviceIDs": {"-1": ["0000:81:00.3", "0000:81:00.2"]}, "AllocResp": ""});
    std::fs::write(
        &checkpoint,
        json!({"Data": {"PodDeviceEntries": [entry], "RegisteredDevices": {}}, "Checksum": 0})
            .to_string(),
    )
    .unwrap();
    let absent = n.dir.path().join("no-kubelet.sock");
    let conf = n.conf(json!({"podResourcesSocket": absent}));
    let call = |verb: &str| n.call(&pod.path(), "pod1", POD, UID, verb, &conf);
    n.run(call("ADD")).success();
    assert_eq!(ipv4_addrs(&pod, "data0"), ["192.168.10.2/24"]);
    let status = n.network_status(POD).unwrap();
    assert_eq!(data_plane_status(&status)[0].2, pci_info("0000:81:00.2"));
    n.run(call("DEL")).quiet_success();
    assert!(n.kubelet.calls().is_empty());
    assert_eq!(link_names(&pod), BTreeSet::from(["lo".to_string()]));
}

/// A pod with more networks of a resource than devices allocated fails before anything is
/// made, naming the network.
#[test]
fn more_networks_than_allocated_devices_is_refused_before_anything_is_made() {
    let far = PrivateNetns::new().unwrap();
    let pod = PrivateNetns::new().unwrap();
    let n = node(&far);
    n.api.add_nad(vf_nad("data-c", VF_RESOURCE, 9000));
    let mut three = networks();
    three
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "data-c", "interface": "data2"}));
    n.api.add_pod(pod_object(POD, UID, &three));
    let conf = n.conf(json!({}));
    let out = n.run(n.call(&pod.path(), "pod1", POD, UID, "ADD", &conf));
    let e = out.fails_with(7);
    assert!(e["msg"].as_str().unwrap().contains("default/data-c"), "{e}");
    assert_eq!(link_names(&pod), BTreeSet::from(["lo".to_string()]));
    assert!(link_names(&n.node).contains("vf0"));
}

/// The DRA driver of the node's VFs.
const DRIVER: &str = "vf.example.com";

/// The node's ResourceSlice: VFs `vf-2` and `vf-3` published for CNI (resource name and
/// device ID attributes), and a GPU that is not.
fn resource_slices(n: &NfvNode) {
    let vf = |name: &str, pci: &str| {
        json!({"name": name, "attributes": {
            "k8s.cni.cncf.io/deviceID": {"string": pci},
            "k8s.cni.cncf.io/resourceName": {"string": VF_RESOURCE},
            "pciAddress": {"string": pci}}})
    };
    n.api
        .add_resource_slice(json!({"metadata": {"name": "node-1-vf.example.com-x8q2"},
        "spec": {"driver": DRIVER, "nodeName": "node-1",
                 "pool": {"name": "node-1", "generation": 1, "resourceSliceCount": 1},
                 "devices": [vf("vf-2", "0000:81:00.2"), vf("vf-3", "0000:81:00.3")]}}));
    n.api
        .add_resource_slice(json!({"metadata": {"name": "node-1-gpu.example.com-k2m9"},
        "spec": {"driver": "gpu.example.com", "nodeName": "node-1",
                 "pool": {"name": "node-1", "generation": 1, "resourceSliceCount": 1},
                 "devices": [{"name": "gpu-0", "attributes": {"model": {"string": "x"}}}]}}));
}

/// A condition the DRA driver wrote on a device's status entry.
fn ready() -> Value {
    json!({"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-01T10:00:00Z",
           "reason": "Prepared", "message": "VF prepared"})
}

/// The pod of the acceptance, its VFs claimed through DRA: claim `vfs` from a template
/// (named `nfv-pod-vfs-7d4kq` in the pod's status) allocated `vf-3` then `vf-2`, and a GPU
/// claim the plugin must skip. No device plugin allocated anything.
fn dra_node(far: &PrivateNetns) -> NfvNode {
    let n = node_with_two_vfs(far);
    n.api.add_nad(vf_nad("data-a", VF_RESOURCE, 9000));
    n.api.add_nad(vf_nad("data-b", VF_RESOURCE, 9000));
    resource_slices(&n);
    let result = |device: &str, driver: &str| json!({"request": "vf", "driver": driver, "pool": "node-1", "device": device});
    n.api.add_resource_claim(json!({
        "metadata": {"name": "nfv-pod-vfs-7d4kq", "namespace": "default"},
        "spec": {"devices": {"requests": [{"name": "vf", "exactly": {
            "deviceClassName": "vf.example.com", "count": 2}}]}},
        "status": {"allocation": {"devices": {"results": [
            result("vf-3", DRIVER), result("vf-2", DRIVER)]}},
            "devices": [{"driver": DRIVER, "pool": "node-1", "device": "vf-3",
                         "conditions": [ready()]}]}}));
    n.api.add_resource_claim(json!({
        "metadata": {"name": "gpu", "namespace": "default"},
        "spec": {},
        "status": {"allocation": {"devices": {"results": [
            result("gpu-0", "gpu.example.com")]}}}}));
    let mut pod = pod_object(POD, UID, &networks());
    pod["spec"]["resourceClaims"] = json!([
        {"name": "vfs", "resourceClaimTemplateName": "vfs"},
        {"name": "gpu", "resourceClaimName": "gpu"}]);
    pod["status"] = json!({"resourceClaimStatuses": [
        {"name": "vfs", "resourceClaimName": "nfv-pod-vfs-7d4kq"},
        {"name": "gpu", "resourceClaimName": "gpu"}]});
    n.api.add_pod(pod);
    n
}

/// Statement 51, DRA: the pod's claim gives each NAD of the resource the device ID of an
/// allocated device (from its ResourceSlice attribute), network-status carries the device
/// plugin's device-info, and after ADD the claim's status holds each interface's networkData
/// (its other entries kept), written in one patch.
#[test]
fn statement_51_dra_claim_gives_the_delegate_the_device_and_gets_network_data() {
    let far = PrivateNetns::new().unwrap();
    let pod = PrivateNetns::new().unwrap();
    let n = dra_node(&far);
    let conf = n.conf(json!({}));
    let call = |verb: &str| n.call(&pod.path(), "pod1", POD, UID, verb, &conf);
    n.run(call("ADD")).success();

    assert_eq!(ipv4_addrs(&pod, "data0"), ["192.168.10.2/24"]);
    assert_eq!(ipv4_addrs(&pod, "data1"), ["192.168.20.2/24"]);
    assert!(ping(&pod, "192.168.10.1") && ping(&pod, "192.168.20.1"));
    let status = n.network_status(POD).unwrap();
    let entries = data_plane_status(&status);
    assert_eq!(entries[0].2, pci_info("0000:81:00.2"), "{status:#}");
    assert_eq!(entries[1].2, pci_info("0000:81:00.3"), "{status:#}");
    // No device plugin was involved.
    assert!(n.kubelet.calls().is_empty());

    let mac = |ifname: &str| {
        let octets = netlink(&pod)
            .link_by_name(ifname)
            .unwrap()
            .unwrap()
            .mac
            .unwrap();
        kernel::format_mac(&octets)
    };
    let claim = n
        .api
        .resource_claim("default", "nfv-pod-vfs-7d4kq")
        .unwrap();
    let devices = &claim["status"]["devices"];
    assert_eq!(
        devices,
        &json!([
            {"driver": DRIVER, "pool": "node-1", "device": "vf-3", "conditions": [ready()],
             "networkData": {"interfaceName": "data1", "ips": ["192.168.20.2/24"],
                             "hardwareAddress": mac("data1")}},
            {"driver": DRIVER, "pool": "node-1", "device": "vf-2",
             "networkData": {"interfaceName": "data0", "ips": ["192.168.10.2/24"],
                             "hardwareAddress": mac("data0")}}
        ]),
        "{claim:#}"
    );
    let patches: Vec<_> = n
        .api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("resourceclaims"))
        .collect();
    assert_eq!(patches.len(), 1, "{patches:#?}");
    assert_eq!(
        patches[0].path,
        "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims/nfv-pod-vfs-7d4kq/status"
    );
    // The GPU claim is read, never written.
    assert!(n.api.resource_claim("default", "gpu").unwrap()["status"]
        .get("devices")
        .is_none());

    n.run(call("CHECK")).quiet_success();
    n.run(call("DEL")).quiet_success();
    assert_eq!(link_names(&pod), BTreeSet::from(["lo".to_string()]));
    assert!(link_names(&n.node).contains("vf0") && link_names(&n.node).contains("vf1"));
    assert_eq!(n.cni_device_info_files(), Vec::<String>::new());
}

/// A userspace-device delegate (as a DPDK or vhost-user CNI is): it makes no kernel
/// interface, writes the device-info of the device it was given (the `deviceID` capability)
/// to `CNIDeviceInfoFile` (a capability too), records each netconf it got, and returns a
/// result with no interfaces.
const USERSPACE_PLUGIN: &str = r#"#!/usr/bin/python3
import json, os, sys
conf = json.load(sys.stdin)
verb = os.environ.get("CNI_COMMAND")
if verb == "VERSION":
    print(json.dumps({"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}))
    sys.exit(0)
with open(os.path.join(os.path.dirname(sys.argv[0]), "calls.jsonl"), "a") as log:
    log.write(json.dumps({"verb": verb, "conf": conf}) + "\n")
rc = conf.get("runtimeConfig", {})
if verb == "ADD":
    info = {"type": "vhost-user", "version": "1.1.0",
            "vhost-user": {"mode": "server", "path": "/run/vhost/" + rc["deviceID"] + ".sock"}}
    with open(rc["CNIDeviceInfoFile"], "w") as f:
        json.dump(info, f)
    print(json.dumps({"cniVersion": conf["cniVersion"]}))
"#;

/// An attachment with no kernel interface works end to end: the delegate gets the device
/// through the `deviceID` capability and `CNIDeviceInfoFile`, network-status carries the
/// device-info it wrote (under the planned interface name), CHECK and DEL pass, and DEL
/// removes the file.
#[test]
fn a_userspace_device_without_a_kernel_interface_works_end_to_end() {
    let pod = PrivateNetns::new().unwrap();
    let n = NfvNode::new();
    let bin = n.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let plugin = bin.join("userspace-dev");
    std::fs::write(&plugin, USERSPACE_PLUGIN).unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = json!({"cniVersion": "1.0.0", "name": "dpdk", "type": "userspace-dev",
        "capabilities": {"deviceID": true, "CNIDeviceInfoFile": true}});
    n.api
        .add_nad(json!({"metadata": {"name": "dpdk", "namespace": "default",
        "annotations": {"k8s.v1.cni.cncf.io/resourceName": "example.com/vhost"}},
        "spec": {"config": config.to_string()}}));
    n.kubelet
        .allocate("default", POD, "app", "example.com/vhost", &["vhu-3"]);
    n.api.add_pod(pod_object(
        POD,
        UID,
        &json!([{"name": "dpdk", "interface": "dpdk0"}]),
    ));
    let mut conf: Value = serde_json::from_str(&n.conf(json!({}))).unwrap();
    conf["binDir"] = json!(bin);
    let conf = conf.to_string();
    let call = |verb: &str| {
        n.call(&pod.path(), "pod1", POD, UID, verb, &conf).var(
            "CNI_PATH",
            &format!(
                "{}:{}",
                bin.display(),
                conformance::PluginSet::Ours.bin_dir().display()
            ),
        )
    };
    n.run(call("ADD")).success();

    assert_eq!(
        link_names(&pod),
        BTreeSet::from(["lo", "eth0"].map(String::from)),
        "no kernel interface for the userspace device"
    );
    let status = n.network_status(POD).unwrap();
    let dpdk = status
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "default/dpdk")
        .unwrap_or_else(|| panic!("{status:#}"));
    assert_eq!(dpdk["interface"], "dpdk0");
    assert_eq!(
        dpdk["device-info"],
        json!({"type": "vhost-user", "version": "1.1.0",
               "vhost-user": {"mode": "server", "path": "/run/vhost/vhu-3.sock"}})
    );
    let file = n.device_info_dir().join("cni/default-dpdk-pod1_dpdk0");
    assert!(file.exists());

    n.run(call("CHECK")).quiet_success();
    n.run(call("DEL")).quiet_success();
    assert!(!file.exists(), "DEL removes the CNIDeviceInfoFile");
    let calls: Vec<Value> = std::fs::read_to_string(bin.join("calls.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let verbs: Vec<&str> = calls.iter().map(|c| c["verb"].as_str().unwrap()).collect();
    assert_eq!(verbs, ["ADD", "CHECK", "DEL"]);
    for c in &calls {
        // Multus's keys in the netconf, the capabilities in the runtime config.
        assert_eq!(c["conf"]["deviceID"], "vhu-3", "{c}");
        assert_eq!(c["conf"]["pciBusID"], "vhu-3", "{c}");
        assert_eq!(c["conf"]["runtimeConfig"]["deviceID"], "vhu-3", "{c}");
        assert_eq!(
            c["conf"]["runtimeConfig"]["CNIDeviceInfoFile"],
            json!(file.display().to_string()),
            "{c}"
        );
    }
}
