//! The vRouter sample (`samples/vrouter/`), as its manifests are: a router pod with a VF on
//! each of two data-plane networks and forwarding on, and a client pod on each side whose
//! default route goes through it. The clients reach each other, and only through the router:
//! with its forwarding off they do not. VFs are the NFV node's veth stand-ins, moved in by
//! the reference host-device plugin; each network's VFs meet on a bridge in a "fabric"
//! namespace, as a NIC's VFs meet on its embedded switch. Needs root.

use std::collections::BTreeSet;
use std::path::PathBuf;

use conformance::inspect::{ipv4_addrs, link_names, netlink, netns};
use conformance::nfv_node::NfvNode;
use kernel::{BridgeRequest, PrivateNetns};
use serde_json::{json, Value};

fn sample(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/vrouter")
        .join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// A bridge `name`, up, in `ns`; returns its index.
fn bridge(ns: &PrivateNetns, name: &str) -> u32 {
    let mut nl = netlink(ns);
    nl.create_bridge(&BridgeRequest {
        name: name.into(),
        mtu: None,
        vlan_filtering: false,
        vlan_default_pvid: None,
    })
    .unwrap();
    let link = nl.link_by_name(name).unwrap().unwrap();
    nl.set_link_up(link.index).unwrap();
    link.index
}

fn ping(from: &PrivateNetns, to: &str) -> bool {
    netns(from)
        .run(|| {
            std::process::Command::new("ping")
                .args(["-c", "1", "-W", "1", to])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
        .unwrap()
}

/// Sets the pod's sysctls as the runtime does from `spec.securityContext.sysctls`.
fn set_sysctls(pod: &PrivateNetns, manifest: &Value) {
    for sysctl in manifest["spec"]["securityContext"]["sysctls"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = sysctl["name"].as_str().unwrap().replace('.', "/");
        let value = sysctl["value"].as_str().unwrap();
        netns(pod)
            .run(|| std::fs::write(format!("/proc/sys/{key}"), value))
            .unwrap()
            .unwrap();
    }
}

fn set_forwarding(pod: &PrivateNetns, on: bool) {
    netns(pod)
        .run(|| std::fs::write("/proc/sys/net/ipv4/ip_forward", if on { "1" } else { "0" }))
        .unwrap()
        .unwrap();
}

#[test]
fn vrouter_sample_forwards_between_its_two_data_plane_networks() {
    let n = NfvNode::new();
    let fabric = PrivateNetns::new().unwrap();
    let left_switch = bridge(&fabric, "sw-left");
    let right_switch = bridge(&fabric, "sw-right");
    // (resource, PCI address, VF in the node, its far end on the network's switch)
    let vfs = [
        (
            "example.com/vf-left",
            "0000:81:00.2",
            "vfl0",
            "wl0",
            left_switch,
        ),
        (
            "example.com/vf-left",
            "0000:81:00.3",
            "vfl1",
            "wl1",
            left_switch,
        ),
        (
            "example.com/vf-right",
            "0000:82:00.2",
            "vfr0",
            "wr0",
            right_switch,
        ),
        (
            "example.com/vf-right",
            "0000:82:00.3",
            "vfr1",
            "wr1",
            right_switch,
        ),
    ];
    for (resource, pci, vf, far, switch) in vfs {
        n.add_vf(resource, pci, vf, &fabric, far, None);
        let mut nl = netlink(&fabric);
        let end = nl.link_by_name(far).unwrap().unwrap();
        nl.set_master(end.index, switch).unwrap();
    }
    n.kubelet.allocate(
        "default",
        "vrouter",
        "router",
        "example.com/vf-left",
        &["0000:81:00.2"],
    );
    n.kubelet.allocate(
        "default",
        "vrouter",
        "router",
        "example.com/vf-right",
        &["0000:82:00.2"],
    );
    n.kubelet.allocate(
        "default",
        "client-left",
        "app",
        "example.com/vf-left",
        &["0000:81:00.3"],
    );
    n.kubelet.allocate(
        "default",
        "client-right",
        "app",
        "example.com/vf-right",
        &["0000:82:00.3"],
    );
    n.api.add_nad(sample("nad-left.yaml"));
    n.api.add_nad(sample("nad-right.yaml"));

    let conf = n.conf(json!({}));
    let mut pods = Vec::new();
    for (file, uid) in [
        ("router.yaml", "5d0c6a6e-0000-4000-8000-000000000001"),
        ("client-left.yaml", "5d0c6a6e-0000-4000-8000-000000000002"),
        ("client-right.yaml", "5d0c6a6e-0000-4000-8000-000000000003"),
    ] {
        let mut manifest = sample(file);
        manifest["metadata"]["uid"] = json!(uid);
        let name = manifest["metadata"]["name"].as_str().unwrap().to_string();
        n.api.add_pod(manifest.clone());
        let ns = PrivateNetns::new().unwrap();
        n.run(n.call(&ns.path(), &name, &name, uid, "ADD", &conf))
            .success();
        set_sysctls(&ns, &manifest);
        pods.push((name, uid, ns));
    }
    let [(_, _, router), (_, _, left), (_, _, right)] = &pods[..] else {
        unreachable!("three pods")
    };
    assert_eq!(ipv4_addrs(router, "left0"), ["192.168.10.1/24"]);
    assert_eq!(ipv4_addrs(router, "right0"), ["192.168.20.1/24"]);
    assert_eq!(ipv4_addrs(left, "data0"), ["192.168.10.2/24"]);
    assert_eq!(ipv4_addrs(right, "data0"), ["192.168.20.2/24"]);

    assert!(
        ping(left, "192.168.20.2"),
        "left reaches right through the router"
    );
    assert!(
        ping(right, "192.168.10.2"),
        "right reaches left through the router"
    );
    // Only through it: with the router's forwarding off, the clients are cut off.
    set_forwarding(router, false);
    assert!(!ping(left, "192.168.20.2"), "no path around the router");
    set_forwarding(router, true);
    assert!(ping(left, "192.168.20.2"));

    for (name, uid, ns) in &pods {
        n.run(n.call(&ns.path(), name, name, uid, "DEL", &conf))
            .quiet_success();
        assert_eq!(link_names(ns), BTreeSet::from(["lo".to_string()]));
    }
    let node = link_names(&n.node);
    for vf in ["vfl0", "vfl1", "vfr0", "vfr1"] {
        assert!(node.contains(vf), "{vf} is back in the node: {node:?}");
    }
}
