//! The node-wide ENI datapath on a real kernel, in a private namespace: a veth carrying an
//! ENI's MAC stands in for the hot-plugged ENI.

use std::net::IpAddr;
use std::process::Command;

use eni_node_network::{
    setup_eni, setup_host, teardown_eni, teardown_host, EniNetwork, Error, HostNetwork,
    FROM_ENI_PRIORITY, HOST_RULE_PRIORITY, TABLE,
};
use ipnet::IpNet;
use kernel::{Family, Netlink, Netns, PrivateNetns, Rule, VethRequest, RT_TABLE_MAIN};

const ENI_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x11];

struct Sandbox {
    _ns: PrivateNetns,
    netns: Netns,
    nl: Netlink,
}

fn sandbox() -> Sandbox {
    let ns = PrivateNetns::new().expect("a private namespace");
    let netns = ns.netns().unwrap();
    let mut nl = Netlink::in_netns(&netns).unwrap();
    for (name, peer, mac) in [("eth0", "v0", None), ("eth1", "v1", Some(ENI_MAC))] {
        nl.create_veth(&VethRequest {
            name: name.into(),
            peer_name: peer.into(),
            peer_netns: None,
            mtu: None,
            mac,
            peer_mac: None,
            master: None,
            up: false,
        })
        .unwrap();
    }
    Sandbox { _ns: ns, netns, nl }
}

fn eni() -> EniNetwork {
    EniNetwork {
        id: "eni-0123".into(),
        mac: ENI_MAC,
        device_index: 1,
        primary_ip: "10.0.1.50".parse().unwrap(),
        subnet: "10.0.1.0/24".parse().unwrap(),
        mtu: 9001,
    }
}

fn host() -> HostNetwork {
    HostNetwork {
        primary_ifname: "eth0".into(),
        node_ip: "10.0.1.4".parse().unwrap(),
        vpc_cidrs: vec!["10.0.0.0/16".parse().unwrap()],
        external_snat: false,
        veth_prefix: "eni".into(),
        connmark: 0x80,
    }
}

fn v4_addrs(nl: &mut Netlink, index: u32) -> Vec<IpNet> {
    nl.addresses(Some(index), Some(Family::V4))
        .unwrap()
        .into_iter()
        .map(|a| a.addr)
        .collect()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// `nft list table ip meta_cni_eni` in the sandbox: its text, or `None` when it is absent.
fn listing(sb: &Sandbox) -> Option<String> {
    let out = sb
        .netns
        .run(|| {
            Command::new("nft")
                .args(["list", "table", "ip", TABLE])
                .output()
        })
        .unwrap()
        .expect("run nft");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_secondary_eni_gets_its_address_table_and_rule_and_loses_them_on_teardown() {
    let mut sb = sandbox();
    let eni = eni();
    assert_eq!(setup_eni(&mut sb.nl, &eni).unwrap(), "eth1");
    // Twice is the same as once.
    assert_eq!(setup_eni(&mut sb.nl, &eni).unwrap(), "eth1");

    let link = sb.nl.link_by_name("eth1").unwrap().unwrap();
    assert!(link.up);
    assert_eq!(link.mtu, 9001);
    let addrs = v4_addrs(&mut sb.nl, link.index);
    assert_eq!(addrs, [net("10.0.1.50/24")]);
    // No second path into the subnet in main: the address has no prefix route.
    let main = sb.nl.routes(Family::V4, Some(RT_TABLE_MAIN)).unwrap();
    assert!(
        main.iter().all(|r| r.oif != Some(link.index)),
        "main routes via eth1: {main:?}"
    );
    let table: Vec<(IpNet, Option<IpAddr>)> = sb
        .nl
        .routes(Family::V4, Some(2))
        .unwrap()
        .into_iter()
        .filter(|r| r.table == 2)
        .map(|r| (r.dst, r.gateway))
        .collect();
    assert!(table.contains(&(net("10.0.1.1/32"), None)), "{table:?}");
    assert!(
        table.contains(&(net("0.0.0.0/0"), Some("10.0.1.1".parse().unwrap()))),
        "{table:?}"
    );
    let rule = Rule::new(Family::V4, 2)
        .from(net("10.0.1.50/32"))
        .priority(FROM_ENI_PRIORITY);
    assert_eq!(
        sb.nl.rules(Family::V4, Some(FROM_ENI_PRIORITY)).unwrap(),
        std::slice::from_ref(&rule)
    );

    teardown_eni(&mut sb.nl, &eni).unwrap();
    teardown_eni(&mut sb.nl, &eni).unwrap();
    assert!(sb
        .nl
        .rules(Family::V4, Some(FROM_ENI_PRIORITY))
        .unwrap()
        .is_empty());
    assert!(sb
        .nl
        .routes(Family::V4, Some(2))
        .unwrap()
        .iter()
        .all(|r| r.table != 2));
}

#[test]
fn a_stale_address_on_the_eni_is_replaced() {
    let mut sb = sandbox();
    let link = sb.nl.link_by_name("eth1").unwrap().unwrap();
    sb.nl
        .add_address(link.index, net("10.0.1.99/24"), Default::default())
        .unwrap();
    setup_eni(&mut sb.nl, &eni()).unwrap();
    let addrs = v4_addrs(&mut sb.nl, link.index);
    assert_eq!(addrs, [net("10.0.1.50/24")]);
}

#[test]
fn an_eni_whose_interface_has_not_appeared_is_named() {
    let mut sb = sandbox();
    let mut missing = eni();
    missing.mac = [0x02, 0, 0, 0, 0, 0x99];
    let err = setup_eni(&mut sb.nl, &missing).unwrap_err();
    assert!(matches!(err, Error::NoLinkWithMac { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "no network interface has the MAC 02:00:00:00:00:99 of ENI eni-0123"
    );
}

#[test]
fn the_host_rules_are_made_replaced_and_removed() {
    let mut sb = sandbox();
    let host = host();
    sb.netns
        .run(|| setup_host(&mut sb.nl, &host))
        .unwrap()
        .unwrap();
    let marked = Rule::new(Family::V4, RT_TABLE_MAIN)
        .fwmark(0x80, 0x80)
        .priority(HOST_RULE_PRIORITY);
    assert_eq!(
        sb.nl.rules(Family::V4, Some(HOST_RULE_PRIORITY)).unwrap(),
        std::slice::from_ref(&marked)
    );
    let rp_filter = sb
        .netns
        .run(|| kernel::sysctl::read("net.ipv4.conf.eth0.rp_filter"))
        .unwrap()
        .unwrap();
    assert_eq!(rp_filter, "2");
    let table = listing(&sb).expect("the table exists");
    for expected in [
        "iifname \"eth0\" fib daddr . iif type local ct mark set ct mark | 0x00000080",
        "iifname \"eni*\" meta mark set ct mark & 0x00000080",
        "iifname \"eni*\" jump snat_mark",
        "ip daddr 10.0.0.0/16 return",
        "oifname \"eth0\" fib daddr type != local snat to 10.0.1.4 fully-random",
    ] {
        assert!(table.contains(expected), "{expected:?} not in\n{table}");
    }

    // Again, with an external NAT: replaced in place, one rule 1024 still.
    let external = HostNetwork {
        external_snat: true,
        ..host.clone()
    };
    sb.netns
        .run(|| setup_host(&mut sb.nl, &external))
        .unwrap()
        .unwrap();
    assert_eq!(
        sb.nl
            .rules(Family::V4, Some(HOST_RULE_PRIORITY))
            .unwrap()
            .len(),
        1
    );
    let table = listing(&sb).expect("the table exists");
    assert!(!table.contains("snat to"), "{table}");
    assert!(table.contains("mangle_prerouting"), "{table}");

    sb.netns
        .run(|| teardown_host(&mut sb.nl, &host))
        .unwrap()
        .unwrap();
    sb.netns
        .run(|| teardown_host(&mut sb.nl, &host))
        .unwrap()
        .unwrap();
    assert_eq!(listing(&sb), None);
    assert!(sb
        .nl
        .rules(Family::V4, Some(HOST_RULE_PRIORITY))
        .unwrap()
        .is_empty());
}
