//! `default-route`: an attachment that asks for the default route gets it, through its own
//! interface, and the other attachments (the cluster network included) lose theirs, for that
//! family, in the pod and in the results.

use std::net::IpAddr;

use ipnet::IpNet;

use cni::{Error, Route};
use kernel::{Family, Netlink, Netns};

use super::attachment::Attachment;

fn default_dst(gw: IpAddr) -> IpNet {
    match gw {
        IpAddr::V4(_) => "0.0.0.0/0".parse().expect("valid prefix"),
        IpAddr::V6(_) => "::/0".parse().expect("valid prefix"),
    }
}

/// Moves the default route of `gw`'s family to attachment `chosen`, in the pod and in the
/// attachments' results.
pub(crate) fn apply(
    netns: &Netns,
    attachments: &mut [Attachment],
    chosen: usize,
    gw: IpAddr,
) -> Result<(), Error> {
    let dst = default_dst(gw);
    for r in attachments.iter_mut().filter_map(|a| a.result.as_mut()) {
        r.result.routes.retain(|route| route.dst != dst);
    }
    if let Some(r) = attachments[chosen].result.as_mut() {
        r.result.routes.push(Route::new(dst, Some(gw)));
    }
    let ifname = attachments[chosen].ifname.as_str();

    let op = |what: &str| format!("default-route via {gw} on {ifname}: {what}");
    let mut nl = Netlink::in_netns(netns).map_err(|e| Error::io(op("open netlink"), e))?;
    let family = Family::of(gw);
    let existing = nl
        .routes(family, Some(kernel::RT_TABLE_MAIN))
        .map_err(|e| Error::io(op("list routes"), e))?;
    for route in existing.iter().filter(|r| r.dst == dst) {
        match nl.del_route(route) {
            Err(e) if !e.is_not_found() => return Err(Error::io(op("remove the old default"), e)),
            _ => {}
        }
    }
    let index = nl
        .link_by_name(ifname)
        .map_err(|e| Error::io(op("look up the interface"), e))?
        .ok_or_else(|| Error::io(op("look up the interface"), "not found"))?
        .index;
    nl.add_route(&kernel::Route::new(dst).via(gw).dev(index))
        .map_err(|e| Error::io(op("add the route"), e))
}
