//! Removing one pod's state from the node: its rules 512 and 1536 and its host veth (the
//! /32 route goes with it). DEL runs it with or without the agent, from whatever names the address (the
//! agent's answer, `prevResult`, or the host route itself); a failed ADD runs it too.
//! Whatever is already gone is success.

use std::net::{IpAddr, Ipv4Addr};

use cni::Error;
use kernel::{Family, Netlink};

use crate::datapath::{pod_net, remove_rules, POD_RULE_PRIORITY};

/// The pod address the node routes to `host_name`: the /32 route through it in main, when
/// the link and the route are still there (a DEL that knows nothing else).
pub(crate) fn address_of_host_veth(nl: &mut Netlink, host_name: &str) -> Option<Ipv4Addr> {
    let link = nl
        .link_by_name(host_name)
        .ok()
        .flatten()
        .filter(|l| l.kind.as_deref() == Some("veth"))?;
    nl.routes(Family::V4, Some(kernel::RT_TABLE_MAIN))
        .ok()?
        .into_iter()
        .find(|r| r.oif == Some(link.index) && r.dst.prefix_len() == 32)
        .and_then(|r| match r.dst.addr() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
}

/// Removes the pod's rules for each of `addresses`, then its host veth: the pod end and
/// the node's /32 route through it go with it. An address the node routes to another
/// link is another pod's now (a stale `prevResult` names it): its rules are left alone.
/// Every step is tried; the failures are returned.
pub(crate) fn remove_pod_state(
    nl: &mut Netlink,
    addresses: &[Ipv4Addr],
    host_name: &str,
) -> Vec<Error> {
    let mut failures = Vec::new();
    let host = match nl.link_by_name(host_name) {
        // A link of that name that is no veth is not the pod's: leave it.
        Ok(link) => link.filter(|l| l.kind.as_deref() == Some("veth")),
        Err(e) => {
            failures.push(Error::io(format!("look up host veth {host_name}"), e));
            None
        }
    };
    let routes = match nl.routes(Family::V4, Some(kernel::RT_TABLE_MAIN)) {
        Ok(routes) => routes,
        Err(e) => {
            failures.push(Error::io("list the node's routes", e));
            return failures;
        }
    };
    for &address in addresses {
        let elsewhere = routes.iter().any(|r| {
            r.dst == pod_net(address) && r.oif.is_some() && r.oif != host.as_ref().map(|l| l.index)
        });
        if elsewhere {
            tracing::warn!("{address} is routed to another pod's link: leaving its rules");
            continue;
        }
        if let Err(e) = remove_rules(nl, address) {
            failures.push(e);
        }
    }
    if let Some(link) = host {
        match nl.del_link(link.index) {
            Err(e) if !e.is_not_found() => {
                failures.push(Error::io(format!("delete host veth {host_name}"), e))
            }
            _ => {}
        }
    }
    failures
}

/// Removes the pod-side rules of a secondary interface for `addresses` (priority
/// [`POD_RULE_PRIORITY`]) when the pod's namespace is still there: they outlive the veth.
pub(crate) fn remove_pod_rules(netns: &kernel::Netns, addresses: &[Ipv4Addr]) -> Result<(), Error> {
    let mut nl =
        Netlink::in_netns(netns).map_err(|e| Error::io("open a netlink socket in the pod", e))?;
    let rules = nl
        .rules(Family::V4, Some(POD_RULE_PRIORITY))
        .map_err(|e| Error::io("list the pod's rules", e))?;
    for rule in rules {
        if addresses.iter().any(|&a| rule.src == Some(pod_net(a))) {
            match nl.del_rule(&rule) {
                Err(e) if !e.is_not_found() => {
                    return Err(Error::io("remove the pod's rule for its ENI address", e))
                }
                _ => {}
            }
        }
    }
    Ok(())
}
