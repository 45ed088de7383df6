//! The container interface's IP configuration: the IPAM result's addresses and routes,
//! with IPv6 duplicate address detection off unless `enabledad`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use cni::{CniResult, Error};
use kernel::{AddressOptions, Family, Netlink, Netns};

/// Applies `result` (whose IPs all belong to the container interface) to `index`.
pub(crate) fn configure(
    nl: &mut Netlink,
    netns: &Netns,
    ifname: &str,
    index: u32,
    result: &CniResult,
    enable_dad: bool,
) -> Result<(), Error> {
    let has_v6 = result.ips.iter().any(|ip| ip.address.addr().is_ipv6());
    if has_v6 && !enable_dad {
        // As the reference: DAD would hold the addresses "tentative" for a second or more,
        // and a fresh veth cannot have a duplicate. No such key means IPv6 is off there.
        let _ = netns.run(|| {
            kernel::sysctl::write_path(&["net", "ipv6", "conf", ifname, "accept_dad"], "0")
        });
    }
    for ip in &result.ips {
        let opts = AddressOptions {
            nodad: ip.address.addr().is_ipv6() && !enable_dad,
            noprefixroute: false,
        };
        nl.add_address(index, ip.address, opts)
            .map_err(|e| Error::io(format!("add {} to {ifname}", ip.address), e))?;
    }
    if has_v6 && enable_dad {
        settle(nl, ifname, index, result)?;
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
    Ok(())
}

/// How long duplicate address detection may take before ADD gives up (the reference's
/// bound too); the kernel's default is one probe a second.
const DAD_TIMEOUT: Duration = Duration::from_secs(10);
const DAD_POLL: Duration = Duration::from_millis(50);

/// With `enabledad`, waits until the IPv6 addresses of `result` have passed duplicate
/// address detection, so they are usable when ADD returns; a duplicate is an error.
fn settle(nl: &mut Netlink, ifname: &str, index: u32, result: &CniResult) -> Result<(), Error> {
    let deadline = Instant::now() + DAD_TIMEOUT;
    loop {
        let addrs = nl
            .addresses(Some(index), Some(Family::V6))
            .map_err(|e| Error::io(format!("list addresses of {ifname}"), e))?;
        let ours = addrs
            .iter()
            .filter(|a| result.ips.iter().any(|ip| ip.address == a.addr));
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
        std::thread::sleep(DAD_POLL);
    }
}
