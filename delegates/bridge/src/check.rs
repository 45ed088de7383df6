//! CHECK: the kernel still holds what ADD reported in `prevResult`. Every mismatch is a
//! code-102 error that says what is missing or different.

use cni::{CniResult, Error, ErrorCode, Request};
use kernel::{Family, Link, Netns};

use crate::config::Config;
use crate::{masquerade, netlink_here, netlink_in, spoof_check};

fn failed(msg: impl Into<String>, details: impl Into<String>) -> Error {
    Error::new(ErrorCode::CHECK_FAILED, msg, details)
}

fn io(what: &str) -> impl Fn(kernel::Error) -> Error + '_ {
    move |e| Error::io(what.to_string(), e)
}

fn expect_veth(link: Option<Link>, name: &str, side: &str) -> Result<Link, Error> {
    let link = link.ok_or_else(|| failed(format!("{side} interface {name} not found"), ""))?;
    if link.kind.as_deref() != Some("veth") {
        return Err(failed(
            format!("{side} interface {name} is not a veth"),
            format!(
                "it is a {}",
                link.kind.as_deref().unwrap_or("device without a kind")
            ),
        ));
    }
    Ok(link)
}

/// Compares the kernel with `prev` for this request's attachment.
pub(crate) fn run(
    req: &Request,
    config: &Config,
    prev: &CniResult,
    netns: &Netns,
) -> Result<(), Error> {
    let sandbox = req.inv.sandbox();
    let cont_pos = prev
        .interfaces
        .iter()
        .position(|i| i.name == req.inv.ifname && i.sandbox == sandbox)
        .ok_or_else(|| {
            failed(
                format!(
                    "prevResult has no interface {} in sandbox {sandbox}",
                    req.inv.ifname
                ),
                "",
            )
        })?;
    let cont_iface = &prev.interfaces[cont_pos];
    let host_iface = prev
        .interfaces
        .iter()
        .enumerate()
        .find(|(i, iface)| {
            *i != cont_pos && iface.sandbox.is_empty() && iface.name != config.bridge
        })
        .map(|(_, iface)| iface)
        .ok_or_else(|| failed("prevResult has no host veth interface", ""))?;

    let bridge_iface = prev
        .interfaces
        .iter()
        .find(|iface| iface.name == config.bridge && iface.sandbox.is_empty());

    let mut host_nl = netlink_here()?;
    let bridge = host_nl
        .link_by_name(&config.bridge)
        .map_err(io("look up the bridge"))?
        .ok_or_else(|| failed(format!("bridge {} not found", config.bridge), ""))?;
    if bridge.kind.as_deref() != Some("bridge") {
        return Err(failed(
            format!("{} is not a bridge", config.bridge),
            format!(
                "it is a {}",
                bridge.kind.as_deref().unwrap_or("device without a kind")
            ),
        ));
    }

    // With a gateway on it the bridge's MAC is pinned, and compared. Without, Linux gives
    // the bridge the lowest MAC among its ports, which changes as pods come and go.
    let pinned = config.is_gateway && config.ipam_type.is_some();
    if let Some(want) = bridge_iface.filter(|i| pinned && !i.mac.is_empty()) {
        let have = bridge.mac_string().unwrap_or_default();
        if !have.eq_ignore_ascii_case(&want.mac) {
            return Err(failed(
                format!("bridge {} has another MAC", config.bridge),
                format!("expected {}, found {have}", want.mac),
            ));
        }
    }

    let mut cont_nl = netlink_in(netns)?;
    let cont = expect_veth(
        cont_nl
            .link_by_name(&req.inv.ifname)
            .map_err(io("look up the container interface"))?,
        &req.inv.ifname,
        "container",
    )?;
    if !cont_iface.mac.is_empty() && cont.mac_string().as_deref() != Some(&cont_iface.mac) {
        return Err(failed(
            format!("container interface {} has another MAC", req.inv.ifname),
            format!(
                "expected {}, found {}",
                cont_iface.mac,
                cont.mac_string().unwrap_or_default()
            ),
        ));
    }
    let host = expect_veth(
        host_nl
            .link_by_name(&host_iface.name)
            .map_err(io("look up the host veth"))?,
        &host_iface.name,
        "host",
    )?;
    if host.master != Some(bridge.index) {
        return Err(failed(
            format!("{} is not a port of bridge {}", host.name, config.bridge),
            "",
        ));
    }
    if cont.parent != Some(host.index) || host.parent != Some(cont.index) {
        return Err(failed(
            format!("{} and {} are not a veth pair", host.name, req.inv.ifname),
            "",
        ));
    }

    let have = cont_nl
        .addresses(Some(cont.index), None)
        .map_err(io("list the container's addresses"))?;
    for ip in prev
        .ips
        .iter()
        .filter(|ip| ip.interface.is_none_or(|i| i == cont_pos))
    {
        if !have.iter().any(|a| a.addr == ip.address) {
            return Err(failed(
                format!("{} has no address {}", req.inv.ifname, ip.address),
                "",
            ));
        }
    }
    for r in &prev.routes {
        let family = Family::of(r.dst.addr());
        let routes = cont_nl
            .routes(family, r.table)
            .map_err(io("list the container's routes"))?;
        let found = routes
            .iter()
            .any(|k| k.dst == r.dst && r.gw.is_none_or(|gw| k.gateway == Some(gw)));
        if !found {
            return Err(failed(
                format!(
                    "route {}{} missing in the container",
                    r.dst,
                    r.gw.map(|g| format!(" via {g}")).unwrap_or_default()
                ),
                "",
            ));
        }
    }

    if config.ip_masq && !prev.ips.is_empty() {
        let rules = masquerade::RULES
            .rules_of(&config.network, &req.inv.container_id, &req.inv.ifname)
            .map_err(io("list masquerade rules"))?;
        if rules.len() < prev.ips.len() {
            return Err(failed(
                "masquerade rules missing",
                format!("expected {}, found {}", prev.ips.len(), rules.len()),
            ));
        }
    }
    if config.mac_spoof_check {
        let rules = spoof_check::RULES
            .rules_of(&config.network, &req.inv.container_id, &req.inv.ifname)
            .map_err(io("list MAC spoof checks"))?;
        if rules.is_empty() {
            return Err(failed("MAC spoof check rule missing", ""));
        }
    }
    Ok(())
}
