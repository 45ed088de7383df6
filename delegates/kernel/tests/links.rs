//! Link creation and attributes, each test in its own private namespace.

mod common;

use common::{sandbox, veth_up};
use kernel::{format_mac, BridgeRequest, BridgeVlan, Netlink, VethRequest};

#[test]
fn loopback_up_down() {
    let mut sb = sandbox();
    let lo = sb.nl.link_by_name("lo").unwrap().unwrap();
    assert_eq!(lo.index, 1);
    assert!(!lo.up);
    assert_eq!(lo.kind, None);
    sb.nl.set_link_up(lo.index).unwrap();
    assert!(sb.nl.link_by_index(1).unwrap().unwrap().up);
    sb.nl.set_link_down(lo.index).unwrap();
    assert!(!sb.nl.link_by_index(1).unwrap().unwrap().up);
    assert!(sb.nl.link_by_name("nope0").unwrap().is_none());
    assert!(sb.nl.link_by_index(4242).unwrap().is_none());
    let names: Vec<_> = sb.nl.links().unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["lo"]);
}

#[test]
fn veth_peer_created_in_other_namespace() {
    let mut host = sandbox();
    let pod = sandbox();
    let mut pod_nl = Netlink::in_netns(&pod.ns).unwrap();
    let mac = [0x02, 0, 0, 0, 0, 0x01];
    let peer_mac = [0x02, 0, 0, 0, 0, 0x02];
    let req = VethRequest {
        name: "vethhost0".into(),
        peer_name: "eth0".into(),
        peer_netns: Some(&pod.ns),
        mtu: Some(1400),
        mac: Some(mac),
        peer_mac: Some(peer_mac),
        ..VethRequest::default()
    };
    host.nl.create_veth(&req).unwrap();

    let h = host.nl.link_by_name("vethhost0").unwrap().unwrap();
    assert_eq!(h.kind.as_deref(), Some("veth"));
    assert_eq!(h.mtu, 1400);
    assert_eq!(h.mac, Some(mac));
    assert_eq!(h.mac_string().unwrap(), "02:00:00:00:00:01");
    assert!(host.nl.link_by_name("eth0").unwrap().is_none());

    let p = pod_nl.link_by_name("eth0").unwrap().unwrap();
    assert_eq!(p.kind.as_deref(), Some("veth"));
    assert_eq!(p.mtu, 1400);
    assert_eq!(p.mac, Some(peer_mac));
    assert!(pod_nl.link_by_name("vethhost0").unwrap().is_none());

    // Creating it again: EEXIST, and the message names the link.
    let err = host.nl.create_veth(&req).unwrap_err();
    assert!(err.is_exists(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("create veth vethhost0 (peer eth0)"), "{msg}");
    assert!(msg.contains("File exists"), "{msg}");
}

#[test]
fn veth_enslaved_and_up_in_one_request() {
    let mut host = sandbox();
    let pod = sandbox();
    host.nl
        .create_bridge(&BridgeRequest {
            name: "br0".into(),
            ..BridgeRequest::default()
        })
        .unwrap();
    let br = host.nl.link_by_name("br0").unwrap().unwrap();
    let req = VethRequest {
        name: "vethport0".into(),
        peer_name: "eth0".into(),
        peer_netns: Some(&pod.ns),
        master: Some(br.index),
        up: true,
        ..VethRequest::default()
    };
    host.nl.create_veth(&req).unwrap();
    let h = host.nl.link_by_name("vethport0").unwrap().unwrap();
    assert_eq!(h.master, Some(br.index));
    assert!(h.up);
    // The peer starts down (the kernel cannot bring it up in the same request) and each
    // end names the other as its IFLA_LINK.
    let mut pod_nl = Netlink::in_netns(&pod.ns).unwrap();
    let p = pod_nl.link_by_name("eth0").unwrap().unwrap();
    assert!(!p.up);
    assert_eq!(p.parent, Some(h.index));
    assert_eq!(h.parent, Some(p.index));
}

#[test]
fn link_attribute_changes() {
    let mut sb = sandbox();
    let idx = veth_up(&mut sb.nl, "va", "vb");
    sb.nl.set_mtu(idx, 1280).unwrap();
    sb.nl
        .set_mac(idx, [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee])
        .unwrap();
    sb.nl.set_promisc(idx, true).unwrap();
    let l = sb.nl.link_by_index(idx).unwrap().unwrap();
    assert_eq!(l.mtu, 1280);
    assert_eq!(format_mac(&l.mac.unwrap()), "02:aa:bb:cc:dd:ee");
    assert!(l.promisc);
    sb.nl.set_promisc(idx, false).unwrap();
    assert!(!sb.nl.link_by_index(idx).unwrap().unwrap().promisc);

    sb.nl.set_link_down(idx).unwrap();
    sb.nl.rename(idx, "renamed0").unwrap();
    assert_eq!(sb.nl.link_by_index(idx).unwrap().unwrap().name, "renamed0");

    // Moving to another namespace.
    let other = sandbox();
    sb.nl.set_netns(idx, &other.ns).unwrap();
    assert!(sb.nl.link_by_name("renamed0").unwrap().is_none());
    let mut other_nl = Netlink::in_netns(&other.ns).unwrap();
    assert!(other_nl.link_by_name("renamed0").unwrap().is_some());

    let err = sb.nl.set_mtu(9999, 1500).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("set link 9999 mtu 1500"), "{err}");
}

#[test]
fn bridge_ports_and_hairpin() {
    let mut sb = sandbox();
    sb.nl
        .create_bridge(&BridgeRequest {
            name: "br0".into(),
            mtu: Some(1450),
            ..Default::default()
        })
        .unwrap();
    let br = sb.nl.link_by_name("br0").unwrap().unwrap();
    assert_eq!(br.kind.as_deref(), Some("bridge"));
    assert_eq!(br.mtu, 1450);
    sb.nl.set_link_up(br.index).unwrap();

    let port = veth_up(&mut sb.nl, "port0", "port0p");
    sb.nl.set_master(port, br.index).unwrap();
    assert_eq!(
        sb.nl.link_by_index(port).unwrap().unwrap().master,
        Some(br.index)
    );

    assert_eq!(sb.nl.port_hairpin(port).unwrap(), Some(false));
    sb.nl.set_port_hairpin(port, true).unwrap();
    assert_eq!(sb.nl.port_hairpin(port).unwrap(), Some(true));
    sb.nl.set_port_hairpin(port, false).unwrap();
    assert_eq!(sb.nl.port_hairpin(port).unwrap(), Some(false));

    sb.nl.set_nomaster(port).unwrap();
    assert_eq!(sb.nl.link_by_index(port).unwrap().unwrap().master, None);
    assert_eq!(sb.nl.port_hairpin(port).unwrap(), None);
    let err = sb.nl.set_port_hairpin(port, true).unwrap_err();
    assert!(err.to_string().contains("hairpin"), "{err}");
}

/// Needs CONFIG_BRIDGE_VLAN_FILTERING; kernels without it answer
/// EOPNOTSUPP to vlan_filtering, and the test then checks only that.
#[test]
fn bridge_vlan_filtering() {
    let mut sb = sandbox();
    let created = sb.nl.create_bridge(&BridgeRequest {
        name: "brv".into(),
        vlan_filtering: true,
        vlan_default_pvid: Some(1),
        ..Default::default()
    });
    if let Err(err) = &created {
        if err.errno() == Some(nix::errno::Errno::EOPNOTSUPP as i32) {
            eprintln!("skipping bridge VLAN checks: kernel lacks bridge VLAN filtering ({err})");
            return;
        }
    }
    created.unwrap();
    let br = sb.nl.link_by_name("brv").unwrap().unwrap().index;
    let port = veth_up(&mut sb.nl, "vport0", "vport0p");
    sb.nl.set_master(port, br).unwrap();

    // Default PVID 1 is on the port; add VLAN 100 as PVID/untagged.
    let vlans = sb.nl.bridge_vlans(port).unwrap();
    assert!(vlans.iter().any(|v| v.vid == 1 && v.pvid), "{vlans:?}");
    let v100 = BridgeVlan {
        vid: 100,
        pvid: true,
        untagged: true,
    };
    sb.nl.add_bridge_vlan(port, v100, false).unwrap();
    let vlans = sb.nl.bridge_vlans(port).unwrap();
    assert!(vlans.contains(&v100), "{vlans:?}");
    let v200 = BridgeVlan {
        vid: 200,
        pvid: false,
        untagged: false,
    };
    sb.nl.add_bridge_vlan(br, v200, true).unwrap();
    assert!(sb.nl.bridge_vlans(br).unwrap().contains(&v200));
    sb.nl.del_bridge_vlan(port, 100, false).unwrap();
    assert!(!sb
        .nl
        .bridge_vlans(port)
        .unwrap()
        .iter()
        .any(|v| v.vid == 100));
}

#[test]
fn del_group_removes_exactly_that_group() {
    let mut sb = sandbox();
    let a = veth_up(&mut sb.nl, "ga", "gap");
    let b = veth_up(&mut sb.nl, "gb", "gbp");
    veth_up(&mut sb.nl, "gc", "gcp");
    for index in [a, b] {
        sb.nl.set_group(index, 4242).unwrap();
    }
    assert_eq!(sb.nl.link_by_index(a).unwrap().unwrap().group, 4242);
    sb.nl.del_group(4242).unwrap();
    let mut names: Vec<_> = sb.nl.links().unwrap().into_iter().map(|l| l.name).collect();
    names.sort();
    // Both ends of ga and gb went; gc's pair and lo stay.
    assert_eq!(names, ["gc", "gcp", "lo"]);
    let err = sb.nl.del_group(0).unwrap_err();
    assert!(err.to_string().contains("group 0"), "{err}");
    assert_eq!(sb.nl.links().unwrap().len(), 3);
}

/// A bridge's MAC follows its lowest port until it is set; `addr_assign_type` tells the
/// two apart, read from a sysfs of the sandbox (the process's /sys shows another namespace).
/// The link view carries the queue length and flags.
#[test]
fn bridge_mac_assignment_and_link_details() {
    use kernel::AddrAssignType;
    let mut sb = sandbox();
    sb.nl
        .create_bridge(&BridgeRequest {
            name: "br0".into(),
            ..Default::default()
        })
        .unwrap();
    let br = sb.nl.link_by_name("br0").unwrap().unwrap();
    sb.nl.set_link_up(br.index).unwrap();
    assert_eq!(
        kernel::addr_assign_type(&sb.ns, &br).unwrap(),
        AddrAssignType::Random
    );
    let up = sb.nl.link_by_index(br.index).unwrap().unwrap();
    assert_eq!(up.txqueuelen, 1000);
    assert_ne!(up.flags & 0x1, 0, "IFF_UP in the raw flags");

    let low = [0x00, 0x00, 0x5e, 0x00, 0x53, 0x01];
    let port = veth_up(&mut sb.nl, "port0", "port0p");
    sb.nl.set_mac(port, low).unwrap();
    sb.nl.set_master(port, br.index).unwrap();
    let followed = sb.nl.link_by_index(br.index).unwrap().unwrap();
    assert_eq!(
        followed.mac,
        Some(low),
        "a bridge takes its lowest port's MAC"
    );
    let veth = sb.nl.link_by_index(port).unwrap().unwrap();
    assert_eq!(
        kernel::addr_assign_type(&sb.ns, &veth).unwrap(),
        AddrAssignType::Set
    );

    sb.nl.set_mac(br.index, br.mac.unwrap()).unwrap();
    let pinned = sb.nl.link_by_index(br.index).unwrap().unwrap();
    assert_eq!(
        kernel::addr_assign_type(&sb.ns, &pinned).unwrap(),
        AddrAssignType::Set
    );
    sb.nl.del_link(port).unwrap();
    assert_eq!(
        sb.nl.link_by_index(br.index).unwrap().unwrap().mac,
        br.mac,
        "a pinned bridge keeps its MAC when its ports leave"
    );
}
