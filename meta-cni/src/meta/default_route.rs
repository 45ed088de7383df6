//! `default-route`: an attachment that asks for the default route gets it, through its own
//! interface, and the other attachments (the cluster network included) lose theirs, for that
//! family, in the pod and in the results.

use std::net::IpAddr;

use ipnet::IpNet;

use cni::Route;
use kernel::{Family, Netlink, Netns};

use super::attachment::Attachment;
use super::error::DefaultRouteError;

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
) -> Result<(), DefaultRouteError> {
    let dst = default_dst(gw);
    for r in attachments.iter_mut().filter_map(|a| a.result.as_mut()) {
        r.result.routes.retain(|route| route.dst != dst);
    }
    if let Some(r) = attachments[chosen].result.as_mut() {
        r.result.routes.push(Route::new(dst, Some(gw)));
    }
    let ifname = attachments[chosen].ifname.as_str();

    let failed = |step: &'static str, source: Option<kernel::Error>| DefaultRouteError {
        gateway: gw,
        ifname: ifname.to_string(),
        step,
        source: source.map(Box::new),
    };
    let mut nl = Netlink::in_netns(netns).map_err(|e| failed("open netlink", Some(e)))?;
    let family = Family::of(gw);
    let existing = nl
        .routes(family, Some(kernel::RT_TABLE_MAIN))
        .map_err(|e| failed("list routes", Some(e)))?;
    for route in existing.iter().filter(|r| r.dst == dst) {
        match nl.del_route(route) {
            Err(e) if !e.is_not_found() => return Err(failed("remove the old default", Some(e))),
            _ => {}
        }
    }
    let index = nl
        .link_by_name(ifname)
        .map_err(|e| failed("look up the interface", Some(e)))?
        .ok_or_else(|| failed("look up the interface", None))?
        .index;
    nl.add_route(&kernel::Route::new(dst).via(gw).dev(index))
        .map_err(|e| failed("add the route", Some(e)))
}
