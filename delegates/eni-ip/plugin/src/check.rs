//! CHECK: every piece ADD made is still there (the pod's address, routes and gateway
//! neighbour, the node's host veth, /32 route and rules) and the agent still holds the
//! address for this attachment. A missing piece is an error (code 102) naming it.

use std::net::{IpAddr, Ipv4Addr};

use cni::{CniResult, Error, ErrorCode, Request};
use kernel::{Family, Netlink, Netns};

use crate::config::Config;
use crate::datapath::{
    from_pod_rule, host_route, pod_net, pod_rule, to_pod_rule, GATEWAY, POD_RULE_PRIORITY,
};

fn missing(piece: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::CHECK_FAILED,
        format!("{piece} is missing"),
        "the attachment is not as ADD left it",
    )
}

/// The pod's address in `prev`: the IPv4 /32 of the interface named `ifname` in a sandbox.
pub(crate) fn address_in(prev: &CniResult, ifname: &str) -> Option<Ipv4Addr> {
    prev.ips.iter().find_map(|ip| {
        let on_pod = ip
            .interface
            .and_then(|i| prev.interfaces.get(i))
            .is_some_and(|i| i.name == ifname && !i.sandbox.is_empty());
        match ip.address.addr() {
            IpAddr::V4(a) if on_pod && ip.address.prefix_len() == 32 => Some(a),
            _ => None,
        }
    })
}

/// Checks the attachment of `req` against `prev` (its ADD result).
pub(crate) fn run(
    req: &Request,
    config: &Config,
    prev: &CniResult,
    netns: &Netns,
    host_name: &str,
) -> Result<(), Error> {
    let ifname = &req.inv.ifname;
    let address = address_in(prev, ifname).ok_or_else(|| {
        Error::invalid_config(
            "prevResult",
            "",
            format!("it holds no IPv4 /32 of interface {ifname}: not an eni-ip result"),
        )
    })?;
    let key = crate::agent::key(config, req);
    let assigned = crate::agent::client(config)
        .lookup(key.clone())
        .map_err(|e| crate::agent::to_cni("ask the ENI agent what the pod holds", e))?
        .ok_or_else(|| {
            missing(format!(
                "the ENI agent's allocation for {}/{}/{}",
                key.network, key.container_id, key.ifname
            ))
        })?;
    if assigned.address != address {
        return Err(Error::new(
            ErrorCode::CHECK_FAILED,
            format!(
                "the ENI agent holds {} for the pod, not {address}",
                assigned.address
            ),
            "the attachment is not as ADD left it",
        ));
    }
    let mut host_nl = Netlink::new().map_err(|e| Error::io("open a netlink socket", e))?;
    let host = host_nl
        .link_by_name(host_name)
        .map_err(|e| Error::io(format!("look up host veth {host_name}"), e))?
        .ok_or_else(|| missing(format!("host veth {host_name}")))?;
    // The default route's table says where ADD put the pod's routes.
    let table = prev
        .routes
        .iter()
        .find(|r| r.dst.prefix_len() == 0)
        .and_then(|r| r.table)
        .unwrap_or(kernel::RT_TABLE_MAIN);
    check_pod(netns, ifname, address, host.mac, table)?;
    let routes = host_nl
        .routes(Family::V4, Some(kernel::RT_TABLE_MAIN))
        .map_err(|e| Error::io("list the node's routes", e))?;
    let want = host_route(address, host.index);
    if !routes
        .iter()
        .any(|r| r.dst == want.dst && r.oif == want.oif && r.scope == want.scope)
    {
        return Err(missing(format!("node route {address}/32 dev {host_name}")));
    }
    let rules = host_nl
        .rules(Family::V4, None)
        .map_err(|e| Error::io("list the node's rules", e))?;
    let mut wanted = vec![to_pod_rule(address)];
    if assigned.route_table != kernel::RT_TABLE_MAIN {
        wanted.push(from_pod_rule(address, assigned.route_table));
    }
    for rule in wanted {
        if !rules.contains(&rule) {
            return Err(missing(format!("rule \"{}\"", rule.describe())));
        }
    }
    Ok(())
}

/// The pod end: its /32, the gateway's link route, the default route via the gateway (in
/// `table`, with the pod's rule to it when that is not main), and the gateway's permanent
/// neighbour entry with the host veth's MAC.
fn check_pod(
    netns: &Netns,
    ifname: &str,
    address: Ipv4Addr,
    host_mac: Option<[u8; 6]>,
    table: u32,
) -> Result<(), Error> {
    let mut nl =
        Netlink::in_netns(netns).map_err(|e| Error::io("open a netlink socket in the pod", e))?;
    let link = nl
        .link_by_name(ifname)
        .map_err(|e| Error::io(format!("look up {ifname} in the pod"), e))?
        .ok_or_else(|| missing(format!("pod interface {ifname}")))?;
    let addrs = nl
        .addresses(Some(link.index), Some(Family::V4))
        .map_err(|e| Error::io(format!("list the addresses of {ifname}"), e))?;
    if !addrs.iter().any(|a| a.addr == pod_net(address)) {
        return Err(missing(format!("address {address}/32 on {ifname}")));
    }
    let rules = nl
        .rules(Family::V4, Some(POD_RULE_PRIORITY))
        .map_err(|e| Error::io("list the pod's rules", e))?;
    // A result of a version before 1.1.0 carries no route table: the pod's rule for the
    // address names it then.
    let table = match table {
        kernel::RT_TABLE_MAIN => rules
            .iter()
            .find(|r| r.src == Some(pod_net(address)))
            .map_or(table, |r| r.table),
        t => t,
    };
    if table != kernel::RT_TABLE_MAIN && !rules.contains(&pod_rule(address, table)) {
        let rule = pod_rule(address, table);
        return Err(missing(format!("pod rule \"{}\"", rule.describe())));
    }
    let routes = nl
        .routes(Family::V4, Some(table))
        .map_err(|e| Error::io("list the pod's routes", e))?;
    let gateway = IpAddr::V4(GATEWAY);
    let on_link = |r: &&kernel::Route| r.oif == Some(link.index);
    if !routes
        .iter()
        .filter(on_link)
        .any(|r| r.dst == pod_net(GATEWAY) && r.scope == kernel::RouteScope::Link)
    {
        return Err(missing(format!(
            "pod route {GATEWAY}/32 dev {ifname} scope link"
        )));
    }
    if !routes
        .iter()
        .filter(on_link)
        .any(|r| r.dst.prefix_len() == 0 && r.gateway == Some(gateway))
    {
        return Err(missing(format!(
            "pod route default via {GATEWAY} dev {ifname}"
        )));
    }
    let neighbours = nl
        .neighbours(Some(link.index), Some(Family::V4))
        .map_err(|e| Error::io(format!("list the neighbours of {ifname}"), e))?;
    if !neighbours
        .iter()
        .any(|n| n.ip == gateway && n.permanent && n.mac.is_some() && n.mac == host_mac)
    {
        return Err(missing(format!(
            "permanent neighbour {GATEWAY} on {ifname} with the host veth's MAC"
        )));
    }
    Ok(())
}
