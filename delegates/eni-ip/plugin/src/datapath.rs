//! The per-pod datapath of the AWS VPC CNI (`driver.go`: `createVethPairContext.run`,
//! `SetupPodNetwork`), made with netlink:
//!
//! ```text
//! pod:  ip link add <ifname> mtu M type veth peer <host veth> (in the node namespace)
//!       ip route add 169.254.1.1/32 dev <ifname> scope link
//!       ip route add default via 169.254.1.1 dev <ifname>
//!       ip addr add <ip>/32 dev <ifname>
//!       ip neigh add 169.254.1.1 lladdr <host veth MAC> dev <ifname> nud permanent
//! node: ip route replace <ip>/32 dev <host veth> scope link
//!       ip rule add to <ip>/32 lookup main prio 512
//!       ip rule add from <ip>/32 lookup <ENI table> prio 1536   (secondary ENIs only)
//! ```
//!
//! When the pod already has a default route (eni-ip as its second network), the pod's two
//! routes go in table `1000 + ifindex` instead, chosen by `ip rule add from <ip>/32 lookup
//! <table> prio 1` in the pod.
//!
//! The pod reaches everything through the node: its only neighbour is a link-local
//! gateway that the host veth answers for by a static entry, so no ARP ever leaves the pod
//! and the node routes each packet by the policy rules.

use std::net::{IpAddr, Ipv4Addr};

use cni::Error;
use ipnet::{IpNet, Ipv4Net};
use kernel::{AddressOptions, Family, Link, Netlink, Netns, Route, RouteScope, Rule, VethRequest};

/// The pod's gateway: link-local, answered for by the host veth's static neighbour entry.
pub(crate) const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// `ToContainerRulePriority`: traffic to a pod is routed by the main table, whatever ENI
/// it came in on.
pub(crate) const TO_POD_PRIORITY: u32 = 512;
/// `FromPodRulePriority`: traffic from a pod on a secondary ENI leaves through that ENI's
/// table, so the VPC sees it come from the ENI that owns the address.
pub(crate) const FROM_POD_PRIORITY: u32 = 1536;

/// The pod's address as the kernel holds it: a /32.
pub(crate) fn pod_net(address: Ipv4Addr) -> IpNet {
    IpNet::V4(Ipv4Net::new(address, 32).expect("32 is a valid IPv4 prefix length"))
}

/// The rule sending traffic to the pod to the main table.
pub(crate) fn to_pod_rule(address: Ipv4Addr) -> Rule {
    Rule::new(Family::V4, kernel::RT_TABLE_MAIN)
        .to(pod_net(address))
        .priority(TO_POD_PRIORITY)
}

/// The rule sending traffic from the pod to its ENI's table.
pub(crate) fn from_pod_rule(address: Ipv4Addr, table: u32) -> Rule {
    Rule::new(Family::V4, table)
        .from(pod_net(address))
        .priority(FROM_POD_PRIORITY)
}

/// The route on the node delivering the pod's address to its host veth.
pub(crate) fn host_route(address: Ipv4Addr, host_index: u32) -> Route {
    Route::new(pod_net(address))
        .dev(host_index)
        .scope(RouteScope::Link)
}

/// The two ends of a pod's veth.
pub(crate) struct Pair {
    /// The end in the node namespace.
    pub(crate) host: Link,
    /// The end in the pod (`CNI_IFNAME`).
    pub(crate) pod: Link,
}

/// Creates the pair in one request: the host end named `host_name`, up, in the node
/// namespace; the pod end named `ifname`, still down, made directly in the pod's
/// namespace (no move, so no name clash on the node). A host end of that name left by an
/// earlier pod of the same name is deleted first, as upstream does: its pod is gone, since
/// a running one would hold the same name. The host end gets `accept_ra=0`: the node owns
/// its pod links' routes.
pub(crate) fn create_veth(
    host_nl: &mut Netlink,
    pod_nl: &mut Netlink,
    netns: &Netns,
    host_name: &str,
    ifname: &str,
    mtu: u32,
) -> Result<Pair, Error> {
    if let Some(stale) = host_nl
        .link_by_name(host_name)
        .map_err(|e| Error::io(format!("look up host veth {host_name}"), e))?
    {
        if stale.kind.as_deref() != Some("veth") {
            return Err(Error::environment(
                format!("host veth name {host_name} is taken by a link that is not a veth"),
                "another plugin or an operator made it; rename it, or set vethPrefix",
            ));
        }
        tracing::info!("deleting the stale host veth {host_name} of an earlier pod");
        host_nl
            .del_link(stale.index)
            .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })
            .map_err(|e| Error::io(format!("delete the stale host veth {host_name}"), e))?;
    }
    host_nl
        .create_veth(&VethRequest {
            name: host_name.to_string(),
            peer_name: ifname.to_string(),
            peer_netns: Some(netns),
            mtu: Some(mtu),
            up: true,
            ..VethRequest::default()
        })
        .map_err(|e| Error::io("create the pod's veth pair", e))?;
    // An IPv6-less kernel has no such key: nothing to turn off then.
    let _ = kernel::sysctl::write_path(&["net", "ipv6", "conf", host_name, "accept_ra"], "0");
    let host = lookup(host_nl, host_name, "host")?;
    let pod = lookup(pod_nl, ifname, "pod")?;
    Ok(Pair { host, pod })
}

fn lookup(nl: &mut Netlink, name: &str, side: &str) -> Result<Link, Error> {
    nl.link_by_name(name)
        .map_err(|e| Error::io(format!("look up the {side} end {name}"), e))?
        .ok_or_else(|| {
            Error::io(
                format!("look up the {side} end {name}"),
                "gone right after it was created",
            )
        })
}

/// Where the pod's routes via the gateway go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PodRoutes {
    /// The main table: the pod had no default route (eni-ip is its cluster network).
    Main,
    /// A table of the interface's own, chosen by a rule `from <ip> lookup <table>`: the
    /// pod already had a default route (eni-ip as a secondary network on `net1`), which
    /// stays, while traffic from the ENI address leaves through the ENI (upstream does the
    /// same for its extra interfaces, `FromInterfaceRulePriority`).
    Table(u32),
}

impl PodRoutes {
    /// The table id.
    pub(crate) fn table(self) -> u32 {
        match self {
            PodRoutes::Main => kernel::RT_TABLE_MAIN,
            PodRoutes::Table(t) => t,
        }
    }
}

/// Priority of the pod's rule for a secondary eni-ip interface (upstream's
/// `FromInterfaceRulePriority`).
pub(crate) const POD_RULE_PRIORITY: u32 = 1;
/// The pod-side table of a secondary interface is this plus its ifindex: unique in the
/// pod, and clear of the kernel's tables 253-255.
const POD_TABLE_BASE: u32 = 1000;

/// The pod's rule sending traffic from `address` to the interface's table.
pub(crate) fn pod_rule(address: Ipv4Addr, table: u32) -> Rule {
    Rule::new(Family::V4, table)
        .from(pod_net(address))
        .priority(POD_RULE_PRIORITY)
}

/// Configures the pod end: up, the gateway's link route, the default route via it, the
/// /32 and the gateway's permanent neighbour entry (the host veth's MAC), in upstream's
/// order; the routes in main, or in a table of their own when the pod already has a
/// default route.
pub(crate) fn configure_pod(
    pod_nl: &mut Netlink,
    pair: &Pair,
    ifname: &str,
    address: Ipv4Addr,
) -> Result<PodRoutes, Error> {
    let index = pair.pod.index;
    let host_mac = pair.host.mac.ok_or_else(|| {
        Error::io(
            format!("read the MAC of host veth {}", pair.host.name),
            "the kernel reported none",
        )
    })?;
    let gateway = IpAddr::V4(GATEWAY);
    let has_default = pod_nl
        .routes(Family::V4, Some(kernel::RT_TABLE_MAIN))
        .map_err(|e| Error::io("list the pod's routes", e))?
        .iter()
        .any(|r| r.dst.prefix_len() == 0);
    let layout = if has_default {
        PodRoutes::Table(POD_TABLE_BASE + index)
    } else {
        PodRoutes::Main
    };
    let table = layout.table();
    pod_nl
        .set_link_up(index)
        .map_err(|e| Error::io(format!("set {ifname} up"), e))?;
    let gateway_route = Route::new(pod_net(GATEWAY))
        .dev(index)
        .scope(RouteScope::Link)
        .table(table);
    pod_nl.replace_route(&gateway_route).map_err(|e| {
        Error::io(
            format!("add route {GATEWAY}/32 dev {ifname} scope link table {table}"),
            e,
        )
    })?;
    if let PodRoutes::Table(t) = layout {
        pod_nl
            .add_rule(&pod_rule(address, t))
            .map_err(|e| Error::io("add the pod's rule for its ENI address", e))?;
    }
    let default = Route::new(IpNet::V4(Ipv4Net::default()))
        .via(gateway)
        .dev(index)
        .table(table);
    pod_nl.add_route(&default).map_err(|e| {
        Error::io(
            format!("add route default via {GATEWAY} dev {ifname} table {table}"),
            e,
        )
    })?;
    pod_nl
        .add_address(index, pod_net(address), AddressOptions::default())
        .map_err(|e| Error::io(format!("add {address}/32 to {ifname}"), e))?;
    pod_nl
        .add_neighbour(index, gateway, host_mac)
        .map_err(|e| {
            Error::io(
                format!("add the permanent neighbour {GATEWAY} on {ifname}"),
                e,
            )
        })?;
    Ok(layout)
}

/// Configures the node: the /32 route to the host veth, rule 512, and rule 1536 to the
/// ENI's table when the address is on a secondary ENI (`table` is not main). Rules a
/// departed pod of this address left are replaced: the address is this pod's now. On
/// failure the caller removes every rule of the address ([`remove_rules`]).
pub(crate) fn configure_host(
    host_nl: &mut Netlink,
    pair: &Pair,
    address: Ipv4Addr,
    table: u32,
) -> Result<(), Error> {
    host_nl
        .replace_route(&host_route(address, pair.host.index))
        .map_err(|e| {
            Error::io(
                format!("add route {address}/32 dev {} scope link", pair.host.name),
                e,
            )
        })?;
    remove_rules(host_nl, address)?;
    host_nl
        .add_rule(&to_pod_rule(address))
        .map_err(|e| Error::io("add the rule to the pod", e))?;
    if table != kernel::RT_TABLE_MAIN {
        host_nl
            .add_rule(&from_pod_rule(address, table))
            .map_err(|e| Error::io("add the rule from the pod", e))?;
    }
    Ok(())
}

/// Removes every rule 512 to `address`/32 and every rule 1536 from it, whatever their
/// tables (upstream's `NetLinkRuleDelAll`: a pod whose ENI changed may have left one of
/// another table).
pub(crate) fn remove_rules(nl: &mut Netlink, address: Ipv4Addr) -> Result<(), Error> {
    let net = Some(pod_net(address));
    let rules = nl
        .rules(Family::V4, None)
        .map_err(|e| Error::io(format!("list the rules of {address}"), e))?;
    let ours = rules.iter().filter(|r| {
        (r.priority == Some(TO_POD_PRIORITY) && r.dst == net && r.src.is_none())
            || (r.priority == Some(FROM_POD_PRIORITY) && r.src == net && r.dst.is_none())
    });
    for rule in ours {
        match nl.del_rule(rule) {
            Err(e) if !e.is_not_found() => return Err(Error::io("remove a rule of the pod", e)),
            _ => {}
        }
    }
    Ok(())
}
