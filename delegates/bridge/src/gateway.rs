//! Gateway mode: gateway addresses chosen for the container's IPs, the default route, and
//! the gateway address on the bridge (`isGateway`, `isDefaultGateway`, `forceAddress`).

use std::net::IpAddr;

use ipnet::IpNet;

use cni::{CniResult, Error, ErrorCode, Route};
use kernel::{AddressOptions, Family, Netlink};

use crate::config::Config;

/// The first host address of `net`'s subnet: the reference's gateway when IPAM names none.
fn first_host(net: IpNet) -> IpAddr {
    match net.trunc() {
        IpNet::V4(n) => IpAddr::V4((u32::from(n.network()) + 1).into()),
        IpNet::V6(n) => IpAddr::V6((u128::from(n.network()) + 1).into()),
    }
}

fn default_dst(addr: IpAddr) -> IpNet {
    match addr {
        IpAddr::V4(_) => "0.0.0.0/0".parse().expect("valid prefix"),
        IpAddr::V6(_) => "::/0".parse().expect("valid prefix"),
    }
}

/// Fills in gateways and the default route as the reference does, and returns the
/// addresses the bridge must carry (gateway IP with the subnet's prefix length).
///
/// With `isGateway`, an IP without a gateway gets the subnet's first host. With
/// `isDefaultGateway`, the first gateway of each family becomes the default route; an IPAM
/// default route via another gateway makes that impossible, and is an error.
pub(crate) fn plan(config: &Config, result: &mut CniResult) -> Result<Vec<IpNet>, Error> {
    let mut bridge_addrs: Vec<IpNet> = Vec::new();
    let mut defaulted: Vec<Family> = Vec::new();
    for ip in &mut result.ips {
        if !config.is_gateway {
            continue;
        }
        let gw = *ip.gateway.get_or_insert_with(|| first_host(ip.address));
        let on_bridge = IpNet::new(gw, ip.address.prefix_len()).expect("prefix of a valid net");
        if !bridge_addrs.contains(&on_bridge) {
            bridge_addrs.push(on_bridge);
        }
        let family = Family::of(gw);
        if !config.is_default_gateway || defaulted.contains(&family) {
            continue;
        }
        defaulted.push(family);
        let dst = default_dst(gw);
        match result.routes.iter().find(|r| r.dst == dst) {
            Some(r) if r.gw.is_some_and(|g| g != gw) => {
                return Err(Error::invalid_config(
                    "isDefaultGateway",
                    true,
                    format!(
                        "ineffective because IPAM sets the default route via {}",
                        r.gw.expect("checked above")
                    ),
                ))
            }
            Some(_) => {}
            None => result.routes.push(Route::new(dst, Some(gw))),
        }
    }
    Ok(bridge_addrs)
}

/// Puts `gw` on the bridge; whether this call added it. An address already there is kept;
/// another IPv4 address (or an IPv6 one in an overlapping subnet) is replaced with
/// `forceAddress`, an error without.
pub(crate) fn ensure_on_bridge(
    nl: &mut Netlink,
    bridge: &str,
    bridge_index: u32,
    gw: IpNet,
    force: bool,
) -> Result<bool, Error> {
    let family = Family::of(gw.addr());
    let existing = nl
        .addresses(Some(bridge_index), Some(family))
        .map_err(|e| Error::io(format!("list addresses of bridge {bridge}"), e))?;
    for a in existing {
        if a.addr.addr().is_ipv6() && a.scope == RT_SCOPE_LINK {
            continue;
        }
        if a.addr == gw {
            return Ok(false);
        }
        let conflicts =
            family == Family::V4 || a.addr.contains(&gw.addr()) || gw.contains(&a.addr.addr());
        if !conflicts {
            continue;
        }
        if !force {
            return Err(Error::new(
                ErrorCode::INVALID_NETWORK_CONFIG,
                format!("bridge {bridge:?} already has an IP address different from {gw}"),
                format!(
                    "it has {}; set forceAddress to replace it with the gateway address",
                    a.addr
                ),
            ));
        }
        nl.del_address(bridge_index, a.addr)
            .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })
            .map_err(|e| Error::io(format!("remove {} from bridge {bridge}", a.addr), e))?;
    }
    match nl.add_address(bridge_index, gw, AddressOptions::default()) {
        // Another ADD on this bridge got there first (and pins it).
        Err(e) if e.is_exists() => Ok(false),
        other => other
            .map(|()| true)
            .map_err(|e| Error::io(format!("add gateway {gw} to bridge {bridge}"), e)),
    }
}

/// Pins the bridge's MAC to `mac`, the one it had before this ADD's port joined (its own
/// random MAC when the bridge is new), as the reference does when it puts a gateway on the
/// bridge. A bridge whose MAC was set from user space keeps it, instead of taking the
/// lowest MAC among its ports (all zeros when none is left), so pods never lose their
/// gateway's MAC when another pod leaves. Called only by the ADD that added the gateway:
/// setting a MAC flushes the bridge's neighbour table, even when the value is unchanged,
/// and the pin outlives every later ADD and DEL.
pub(crate) fn pin_bridge_mac(
    nl: &mut Netlink,
    bridge: &str,
    index: u32,
    mac: Option<[u8; 6]>,
) -> Result<(), Error> {
    let Some(mac) = mac else {
        return Ok(());
    };
    nl.set_mac(index, mac)
        .map_err(|e| Error::io(format!("pin the MAC of bridge {bridge}"), e))
}

/// `RT_SCOPE_LINK`: IPv6 link-local addresses every link has, never a gateway.
const RT_SCOPE_LINK: u8 = 253;

/// Turns on forwarding for `family` in the current (host) namespace.
pub(crate) fn enable_forwarding(family: Family) -> Result<(), Error> {
    let key = match family {
        Family::V4 => "net/ipv4/ip_forward",
        Family::V6 => "net/ipv6/conf/all/forwarding",
    };
    if kernel::sysctl::read(key).is_ok_and(|v| v == "1") {
        return Ok(());
    }
    kernel::sysctl::write(key, "1").map_err(|e| Error::io("enable IP forwarding", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_host_is_the_subnets_first_address() {
        assert_eq!(
            first_host("10.1.2.77/24".parse().unwrap()),
            "10.1.2.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            first_host("fd00:1::5/64".parse().unwrap()),
            "fd00:1::1".parse::<IpAddr>().unwrap()
        );
    }
}
