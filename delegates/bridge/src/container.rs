//! The container interface's IP configuration: the per-interface parameters the reference
//! sets (`arp_notify`, `accept_dad`), then the link up, then the IPAM result's addresses and
//! routes.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use cni::{CniResult, Error};
use kernel::{AddressOptions, Family, Netlink, Netns};

/// Sets the container interface's parameters as the reference does, before the link is up
/// (so its link-local address, too, is made under them):
/// - `arp_notify=1`: the pod announces its address (gratuitous ARP) when the link comes up
///   or its MAC changes, so neighbours drop a stale entry for a reused address at once;
/// - `accept_dad=0` unless `enabledad`: DAD would hold the addresses (the link-local one
///   included, IPv4-only pods too) "tentative" for a second or more, and a fresh veth
///   cannot have a duplicate; with `enabledad`, `accept_dad=1` and `enhanced_dad=1`.
///
/// Returns whether DAD is known to be off. No such key means IPv6 is off there, which is
/// no error (the reference ignores these failures too).
fn set_parameters(netns: &Netns, ifname: &str, enable_dad: bool) -> bool {
    let write = |family: &str, key: &str, value: &str| {
        kernel::sysctl::write_path(&["net", family, "conf", ifname, key], value)
            .inspect_err(|e| tracing::debug!("{e}"))
            .is_ok()
    };
    // One visit to the container's namespace for all of them.
    let dad_off = netns.run(|| {
        let dad_off = if enable_dad {
            write("ipv6", "enhanced_dad", "1");
            write("ipv6", "accept_dad", "1");
            false
        } else {
            write("ipv6", "accept_dad", "0")
        };
        write("ipv4", "arp_notify", "1");
        dad_off
    });
    dad_off
        .inspect_err(|e| tracing::warn!("setting {ifname}'s parameters: {e}"))
        .unwrap_or(false)
}

/// Configures `index` (the container interface, still down) with `result`, whose IPs all
/// belong to it: parameters, link up, addresses, routes.
pub(crate) fn configure(
    nl: &mut Netlink,
    netns: &Netns,
    ifname: &str,
    index: u32,
    result: &CniResult,
    enable_dad: bool,
) -> Result<(), Error> {
    let dad_off = set_parameters(netns, ifname, enable_dad);
    nl.set_link_up(index)
        .map_err(|e| Error::io(format!("set {ifname} up"), e))?;
    let has_v6 = result.ips.iter().any(|ip| ip.address.addr().is_ipv6());
    for ip in &result.ips {
        // `nodad` only when accept_dad could not be turned off: the reference's addresses
        // carry no such flag, and with accept_dad=0 it changes nothing.
        let opts = AddressOptions {
            nodad: ip.address.addr().is_ipv6() && !enable_dad && !dad_off,
            noprefixroute: false,
        };
        nl.add_address(index, ip.address, opts)
            .map_err(|e| Error::io(format!("add {} to {ifname}", ip.address), e))?;
    }
    // As the reference: ADD returns once the IPv6 addresses are usable. With DAD off that
    // is the kernel's next pass over them, a moment after they were added; then the
    // link-local address is waited for too, so that no address is left tentative.
    if has_v6 {
        settle(nl, ifname, index, result, !enable_dad)?;
    }
    // A route without a gateway goes via the gateway of its family, as in the reference.
    let family_gw = |family: Family| -> Option<IpAddr> {
        result
            .ips
            .iter()
            .filter(|ip| Family::of(ip.address.addr()) == family)
            .find_map(|ip| ip.gateway)
    };
    for r in &result.routes {
        let mut route = kernel::Route::new(r.dst).dev(index);
        if let Some(gw) = r.gw.or_else(|| family_gw(Family::of(r.dst.addr()))) {
            route = route.via(gw);
        }
        if let Some(mtu) = r.mtu {
            route = route.mtu(mtu);
        }
        if let Some(advmss) = r.advmss {
            route = route.advmss(advmss);
        }
        if let Some(priority) = r.priority {
            route = route.metric(priority);
        }
        if let Some(table) = r.table {
            route = route.table(table);
        }
        if let Some(scope) = r.scope {
            route = route.scope(kernel::RouteScope::from(scope));
        }
        nl.add_route(&route).map_err(|e| {
            Error::io(
                format!(
                    "add route {} via {} dev {ifname}",
                    r.dst,
                    route
                        .gateway
                        .map(|g| g.to_string())
                        .unwrap_or_else(|| "(none)".into())
                ),
                e,
            )
        })?;
    }
    // An IPv4-only pod is not waited for, as in the reference: with accept_dad=0 set before
    // the link came up, its link-local address skips DAD and is usable a moment later.
    Ok(())
}

/// How long duplicate address detection may take before ADD gives up (the reference's
/// bound too); the kernel's default is one probe a second.
const DAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait between two looks (doubled up to [`DAD_POLL_MAX`]): without DAD the
/// addresses stop being tentative within a millisecond.
const DAD_POLL_FIRST: Duration = Duration::from_millis(1);
const DAD_POLL_MAX: Duration = Duration::from_millis(50);

/// Waits until the IPv6 addresses of `result` (with `whole_link`, every IPv6 address of the
/// link, its link-local one included) are no longer tentative (have passed duplicate
/// address detection, with `enabledad`), so they are usable when ADD returns; a duplicate
/// is an error.
fn settle(
    nl: &mut Netlink,
    ifname: &str,
    index: u32,
    result: &CniResult,
    whole_link: bool,
) -> Result<(), Error> {
    let deadline = Instant::now() + DAD_TIMEOUT;
    let mut poll = DAD_POLL_FIRST;
    loop {
        let addrs = nl
            .addresses(Some(index), Some(Family::V6))
            .map_err(|e| Error::io(format!("list addresses of {ifname}"), e))?;
        let ours = addrs
            .iter()
            .filter(|a| whole_link || result.ips.iter().any(|ip| ip.address == a.addr));
        let mut pending = false;
        for a in ours {
            if a.is_dadfailed() {
                return Err(Error::io(
                    format!("duplicate address detection for {} on {ifname}", a.addr),
                    "another host on the link uses this address",
                ));
            }
            pending |= a.is_tentative();
        }
        if !pending {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::io(
                format!("duplicate address detection on {ifname}"),
                format!("addresses still tentative after {DAD_TIMEOUT:?}"),
            ));
        }
        std::thread::sleep(poll);
        poll = (poll * 2).min(DAD_POLL_MAX);
    }
}
