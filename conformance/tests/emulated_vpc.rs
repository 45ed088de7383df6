//! The emulated VPC delivers what EC2 assigned, to the ENI it assigned it to, and nothing
//! else: ENIs plug into the node with their EC2 MACs as they are attached and unplug as they
//! are detached; the fabric routes every address of an ENI to it; the source/destination
//! check drops what an ENI sends from an address that is not its own; the internet answers
//! only the nodes' primary addresses; the nodes of one VPC reach each other, and IMDS answers
//! each with its own instance. The ENI datapath tests stand on these properties.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use conformance::ec2_emulator::{request, Ec2Emulator, NodeSpec};
use conformance::emulated_vpc::{
    seen_from, EchoServer, EmulatedVpc, VpcNode, ECHO_PORT, INTERNET_IP, PEER_IP, PROBES,
};
use conformance::inspect::netlink;
use ipnet::{IpNet, Ipv4Net};
use kernel::{AddressOptions, PrivateNetns};

/// Waits (up to 5 s) for `what` to hold, re-checking every 50 ms.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The MAC of `ifname` in `ns`, if the link exists.
fn mac_of(ns: &PrivateNetns, ifname: &str) -> Option<String> {
    netlink(ns)
        .link_by_name(ifname)
        .expect("look a link up")
        .and_then(|link| link.mac_string())
}

/// Adds `addr/32` to `ifname` in the node, as a pod's address would be (a test owns no pod
/// here: the node itself sends from the address).
fn add_host_address(ns: &PrivateNetns, ifname: &str, addr: Ipv4Addr) {
    let mut nl = netlink(ns);
    let link = nl
        .link_by_name(ifname)
        .expect("look a link up")
        .unwrap_or_else(|| panic!("no {ifname}"));
    let net = IpNet::V4(Ipv4Net::new(addr, 32).expect("/32"));
    let opts = AddressOptions {
        nodad: true,
        noprefixroute: true,
    };
    nl.add_address(link.index, net, opts)
        .unwrap_or_else(|e| panic!("add {addr} to {ifname}: {e}"));
}

fn assign_one(cloud: &Ec2Emulator, eni: &str) -> Ipv4Addr {
    let answer = cloud.ec2(
        "AssignPrivateIpAddresses",
        &[
            ("NetworkInterfaceId", eni),
            ("SecondaryPrivateIpAddressCount", "1"),
        ],
    );
    answer.ok().values("privateIpAddress")[0]
        .parse()
        .expect("an assigned address")
}

#[test]
fn the_primary_eni_is_plugged_in_and_reaches_the_vpc_and_the_internet() {
    let vpc = EmulatedVpc::start(&NodeSpec::new("t3.medium"));
    let primary: Ipv4Addr = vpc.seeded().primary_ip.parse().unwrap();
    assert_eq!(
        mac_of(vpc.node(), "eth0").as_deref(),
        Some(vpc.seeded().mac.as_str()),
        "eth0 carries the primary ENI's MAC"
    );
    assert_eq!(seen_from(vpc.node(), None, PEER_IP), Some(primary));
    assert_eq!(seen_from(vpc.node(), None, INTERNET_IP), Some(primary));
    assert_eq!(vpc.spoof_drops()[&(0, 0)], 0);
}

#[test]
fn assigned_addresses_are_delivered_and_unassigned_ones_are_dropped_at_the_source() {
    let vpc = EmulatedVpc::start(&NodeSpec::new("t3.medium"));
    let cloud = vpc.cloud();
    let eni0 = vpc.seeded().primary_eni_id.clone();

    // An address EC2 assigned to eth0's ENI: delivered both ways inside the VPC...
    let secondary = assign_one(cloud, &eni0);
    vpc.sync();
    add_host_address(vpc.node(), "eth0", secondary);
    assert_eq!(
        seen_from(vpc.node(), Some(secondary), PEER_IP),
        Some(secondary)
    );
    // ... but not from the internet, which answers the node's primary address only.
    assert_eq!(seen_from(vpc.node(), Some(secondary), INTERNET_IP), None);
    assert_eq!(
        vpc.spoof_drops()[&(0, 0)],
        0,
        "its own address passes the check"
    );

    // An address the ENI does not own: the source/destination check drops it.
    let foreign = Ipv4Addr::new(10, 0, 1, 250);
    add_host_address(vpc.node(), "eth0", foreign);
    assert_eq!(seen_from(vpc.node(), Some(foreign), PEER_IP), None);
    assert_eq!(
        vpc.spoof_drops()[&(0, 0)],
        PROBES as u64,
        "every probe dropped: {:?}",
        vpc.spoof_drops()
    );

    // Unassigned, the address is no longer the ENI's: dropped too.
    cloud
        .ec2(
            "UnassignPrivateIpAddresses",
            &[
                ("NetworkInterfaceId", eni0.as_str()),
                ("PrivateIpAddress.1", &secondary.to_string()),
            ],
        )
        .ok();
    vpc.sync();
    assert_eq!(seen_from(vpc.node(), Some(secondary), PEER_IP), None);
    assert_eq!(vpc.spoof_drops()[&(0, 0)], 2 * PROBES as u64);
}

#[test]
fn enis_plug_in_on_attach_with_their_mac_and_unplug_on_detach() {
    let vpc = EmulatedVpc::start(&NodeSpec::new("t3.medium"));
    let cloud = vpc.cloud();
    let node = vpc.seeded().clone();
    let eni = cloud
        .ec2(
            "CreateNetworkInterface",
            &[
                ("SubnetId", node.subnet_id.as_str()),
                ("SecondaryPrivateIpAddressCount", "1"),
            ],
        )
        .ok()
        .value("networkInterfaceId")
        .expect("an ENI id");
    let attachment = cloud
        .ec2(
            "AttachNetworkInterface",
            &[
                ("NetworkInterfaceId", eni.as_str()),
                ("InstanceId", node.instance_id.as_str()),
                ("DeviceIndex", "1"),
            ],
        )
        .ok()
        .value("attachmentId")
        .expect("an attachment id");
    let mac = cloud.eni(&eni).expect("the new ENI")["mac"]
        .as_str()
        .unwrap()
        .to_owned();

    // The hot-plug thread plugs it in, with its EC2 MAC, without an explicit sync.
    eventually("eth1 to appear", || mac_of(vpc.node(), "eth1").is_some());
    assert_eq!(mac_of(vpc.node(), "eth1"), Some(mac));

    // eth1's own address, sent out of eth0 (the node's default route): not eth0's address,
    // so eth0's port drops it, as EC2 drops a packet from an address of another ENI.
    let eni_ip: Ipv4Addr = cloud.eni(&eni).unwrap()["private_ips"][0]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    add_host_address(vpc.node(), "eth1", eni_ip);
    // Sent from eth1's address out of eth0, the packet is dropped: it is not eth0's address.
    let before = vpc.spoof_drops()[&(0, 0)];
    assert_eq!(seen_from(vpc.node(), Some(eni_ip), PEER_IP), None);
    assert_eq!(
        vpc.spoof_drops()[&(0, 0)],
        before + PROBES as u64,
        "dropped at eth0's port"
    );

    // Detached, it unplugs.
    cloud
        .ec2(
            "DetachNetworkInterface",
            &[("AttachmentId", attachment.as_str())],
        )
        .ok();
    eventually("eth1 to go", || mac_of(vpc.node(), "eth1").is_none());
}

/// `instance-id` as IMDS answers it to `node` (an IMDSv2 token first), asked from the node's
/// namespace at the address every node's agent uses.
fn imds_instance_id(vpc: &EmulatedVpc, node: &VpcNode) -> String {
    let addr = vpc
        .imds_url()
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .expect("IMDS at an address");
    let in_node = |method: &str, path: &str, header: (&str, &str)| {
        let netns = node.netns().netns().expect("open a node namespace");
        let answer = netns
            .run(|| request(addr, method, path, &[header], b""))
            .expect("enter a node namespace")
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!(answer.status, 200, "{method} {path}: {answer:?}");
        answer.body
    };
    let token = in_node(
        "PUT",
        "/latest/api/token",
        ("X-aws-ec2-metadata-token-ttl-seconds", "60"),
    );
    in_node(
        "GET",
        "/latest/meta-data/instance-id",
        ("X-aws-ec2-metadata-token", &token),
    )
}

#[test]
fn two_nodes_share_the_vpc_reach_each_other_and_imds_tells_them_apart() {
    let vpc = EmulatedVpc::start_nodes(&[
        NodeSpec::new("t3.medium"),
        NodeSpec::new("t3.medium").subnet_cidr("10.0.3.0/24"),
    ]);
    let [a, b] = vpc.nodes() else {
        panic!("two nodes")
    };
    assert_eq!(a.seeded().vpc_id, b.seeded().vpc_id, "one VPC");
    assert_ne!(a.seeded().subnet_id, b.seeded().subnet_id);
    assert_ne!(a.seeded().instance_id, b.seeded().instance_id);

    // Each node's primary address reaches the other's, across the router, with its own.
    let _echo_a = EchoServer::start(a.netns(), a.primary_ip(), ECHO_PORT);
    let _echo_b = EchoServer::start(b.netns(), b.primary_ip(), ECHO_PORT);
    assert_eq!(
        seen_from(a.netns(), None, b.primary_ip()),
        Some(a.primary_ip())
    );
    assert_eq!(
        seen_from(b.netns(), None, a.primary_ip()),
        Some(b.primary_ip())
    );
    assert_eq!(
        seen_from(b.netns(), None, INTERNET_IP),
        Some(b.primary_ip())
    );

    // One IMDS, reached by both at the same address: each gets its own instance.
    for node in vpc.nodes() {
        assert_eq!(imds_instance_id(&vpc, node), node.seeded().instance_id);
    }
    let drops = vpc.spoof_drops();
    assert!(drops.values().all(|d| *d == 0), "{drops:?}");
}
