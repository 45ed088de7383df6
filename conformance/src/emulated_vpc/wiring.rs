//! The emulated VPC's plumbing: namespaces with `lo` up, a host wired to the router,
//! addresses, MACs and sysctls, each done the one way the fabric needs it.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use kernel::{AddressOptions, Netlink, Netns, PrivateNetns, Route, VethRequest};

/// A veth from the router (`router_link`, `gateway/24`) to a host (`h0`, `addr/24`, and a
/// default route via the gateway when `default_route`).
pub(super) fn wire_host(
    router: &PrivateNetns,
    host_ns: &PrivateNetns,
    router_link: &str,
    gateway: Ipv4Addr,
    addr: Ipv4Addr,
    default_route: bool,
) {
    let len = 24;
    let host_netns = host_ns.netns().expect("open a host namespace");
    let mut nl = netlink(router);
    nl.create_veth(&VethRequest {
        name: router_link.to_owned(),
        peer_name: "h0".into(),
        peer_netns: Some(&host_netns),
        mac: None,
        peer_mac: None,
        mtu: None,
        master: None,
        up: true,
    })
    .unwrap_or_else(|e| panic!("router: wire {router_link}: {e}"));
    let link = nl
        .link_by_name(router_link)
        .expect("router: look a link up")
        .expect("the new link");
    let net = |a| IpNet::V4(Ipv4Net::new(a, len).expect("a prefix length"));
    nl.add_address(link.index, net(gateway), AddressOptions::default())
        .expect("router: gateway address");
    let mut host_nl = netlink(host_ns);
    let h0 = host_nl
        .link_by_name("h0")
        .expect("host: look h0 up")
        .expect("h0");
    host_nl.set_link_up(h0.index).expect("host: h0 up");
    host_nl
        .add_address(h0.index, net(addr), AddressOptions::default())
        .expect("host: its address");
    if default_route {
        let default = Route::new("0.0.0.0/0".parse().expect("the default route"))
            .via(IpAddr::V4(gateway))
            .dev(h0.index);
        host_nl.add_route(&default).expect("host: default route");
    }
}

/// The subnet's gateway: its network address + 1, as in every VPC subnet.
pub fn gateway_of(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

/// Every address of a block, its network and broadcast addresses included: inside a
/// delegated prefix each one is a pod's.
pub(super) fn every_address(block: Ipv4Net) -> impl Iterator<Item = Ipv4Addr> {
    (u32::from(block.network())..=u32::from(block.broadcast())).map(Ipv4Addr::from)
}

pub(super) fn host(addr: Ipv4Addr) -> Ipv4Net {
    Ipv4Net::new(addr, 32).expect("/32")
}

pub(super) fn parse_mac(text: &str) -> [u8; 6] {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("MAC {text}: {e}")))
        .collect();
    bytes
        .try_into()
        .unwrap_or_else(|_| panic!("MAC {text} is not 6 bytes"))
}

pub(super) fn namespace() -> PrivateNetns {
    let ns = PrivateNetns::new().expect("create a test namespace");
    let mut nl = netlink(&ns);
    let lo = nl
        .link_by_name("lo")
        .expect("look lo up")
        .expect("every namespace has lo");
    nl.set_link_up(lo.index).expect("lo up");
    ns
}

pub(super) fn netlink(ns: &PrivateNetns) -> Netlink {
    Netlink::in_netns(&netns(ns)).expect("netlink socket in a test namespace")
}

pub(super) fn netns(ns: &PrivateNetns) -> Netns {
    ns.netns().expect("open a test namespace")
}

pub(super) fn run_in<R>(ns: &PrivateNetns, f: impl FnOnce() -> R) -> R {
    netns(ns).run(f).expect("enter a test namespace")
}

pub(super) fn sysctl(key: &str, value: &str) {
    kernel::sysctl::write(key, value).unwrap_or_else(|e| panic!("sysctl {key}={value}: {e}"));
}
