//! A secondary ENI's own routing (`setupENINetwork`): what the node sends from the ENI's
//! primary address leaves through that ENI, since EC2 drops what an ENI sends from an
//! address that is not its own.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use kernel::{AddressOptions, Family, Netlink, Route, RouteScope, Rule, RT_TABLE_MAIN};

use crate::error::Error;

/// `FromPrimaryIPofENIRulePriority`: the rule sending the ENI's own traffic to its table.
pub const FROM_ENI_PRIORITY: u32 = 32765;

/// The route table of the ENI at `device_index` on network card 0: `main` for the primary
/// ENI, else the index + 1 (`CalculateRouteTableId`; eth1 has table 2).
pub fn route_table(device_index: u32) -> u32 {
    if device_index == 0 {
        RT_TABLE_MAIN
    } else {
        device_index + 1
    }
}

/// A secondary ENI as the agent knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EniNetwork {
    /// The ENI's id, for messages.
    pub id: String,
    /// Its MAC: how its interface is found.
    pub mac: [u8; 6],
    /// Its device index (never 0: the primary ENI is the node's own business).
    pub device_index: u32,
    /// Its primary address.
    pub primary_ip: Ipv4Addr,
    /// Its subnet (the gateway is the network address + 1).
    pub subnet: Ipv4Net,
    /// The interface's MTU (`AWS_VPC_ENI_MTU`, default 9001).
    pub mtu: u32,
}

impl EniNetwork {
    fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet.network()) + 1)
    }

    fn table(&self) -> u32 {
        route_table(self.device_index)
    }

    fn rule(&self) -> Rule {
        Rule::new(Family::V4, self.table())
            .from(host(self.primary_ip))
            .priority(FROM_ENI_PRIORITY)
    }
}

/// Sets the ENI's interface up with its address, its table (`<gw>/32` on the link and a
/// default route via the gateway) and rule 32765; returns the interface's name. The
/// address goes on without a prefix route, so `main` keeps one path into the subnet (the
/// primary ENI's). Idempotent; [`Error::NoLinkWithMac`] while the interface has not
/// appeared (the caller retries).
pub fn setup_eni(nl: &mut Netlink, eni: &EniNetwork) -> Result<String, Error> {
    let link = nl
        .links()
        .map_err(Error::kernel("list links to find an ENI by MAC"))?
        .into_iter()
        .find(|link| link.mac == Some(eni.mac))
        .ok_or_else(|| Error::NoLinkWithMac {
            eni: eni.id.clone(),
            mac: kernel::format_mac(&eni.mac),
        })?;
    let on = |what: &str| format!("{what} of ENI {} ({})", eni.id, link.name);
    if link.mtu != eni.mtu {
        nl.set_mtu(link.index, eni.mtu)
            .map_err(Error::kernel(on("set the MTU")))?;
    }
    if !link.up {
        nl.set_link_up(link.index)
            .map_err(Error::kernel(on("bring up the interface")))?;
    }
    let wanted = Ipv4Net::new(eni.primary_ip, eni.subnet.prefix_len())
        .expect("a subnet's prefix length is valid");
    let present = nl
        .addresses(Some(link.index), Some(Family::V4))
        .map_err(Error::kernel(on("list the addresses")))?;
    for stale in present.iter().filter(|a| a.addr != IpNet::V4(wanted)) {
        nl.del_address(link.index, stale.addr)
            .map_err(Error::kernel(on(&format!(
                "remove stale address {}",
                stale.addr
            ))))?;
    }
    if present.iter().all(|a| a.addr != IpNet::V4(wanted)) {
        let opts = AddressOptions {
            nodad: false,
            noprefixroute: true,
        };
        nl.add_address(link.index, IpNet::V4(wanted), opts)
            .map_err(Error::kernel(on(&format!("add the address {wanted}"))))?;
    }
    let gateway = eni.gateway();
    let to_gateway = Route::new(host(gateway))
        .dev(link.index)
        .scope(RouteScope::Link)
        .table(eni.table());
    nl.replace_route(&to_gateway)
        .map_err(Error::kernel(on(&format!(
            "route the gateway {gateway} in table {}",
            eni.table()
        ))))?;
    let default = Route::new(IpNet::V4(Ipv4Net::default()))
        .via(IpAddr::V4(gateway))
        .dev(link.index)
        .table(eni.table());
    nl.replace_route(&default)
        .map_err(Error::kernel(on(&format!(
            "add the default route of table {}",
            eni.table()
        ))))?;
    let rule = eni.rule();
    let rules = nl
        .rules(Family::V4, Some(FROM_ENI_PRIORITY))
        .map_err(Error::kernel("list rules at priority 32765"))?;
    if !rules.contains(&rule) {
        nl.add_rule(&rule)
            .map_err(Error::kernel(on(&format!("add rule {}", rule.describe()))))?;
    }
    Ok(link.name)
}

/// Removes what [`setup_eni`] made that outlives the interface: rule 32765 and the table's
/// routes (a detached ENI's interface takes its address and routes with it). Idempotent.
pub fn teardown_eni(nl: &mut Netlink, eni: &EniNetwork) -> Result<(), Error> {
    let rule = eni.rule();
    match nl.del_rule(&rule) {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(Error::kernel(format!("delete rule {}", rule.describe()))(e)),
    }
    let routes = nl
        .routes(Family::V4, Some(eni.table()))
        .map_err(Error::kernel(format!(
            "list the routes of table {}",
            eni.table()
        )))?;
    for route in routes.iter().filter(|r| r.table == eni.table()) {
        match nl.del_route(route) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                return Err(Error::kernel(format!(
                    "delete route {} of table {}",
                    route.dst,
                    eni.table()
                ))(e))
            }
        }
    }
    Ok(())
}

fn host(addr: Ipv4Addr) -> IpNet {
    IpNet::V4(Ipv4Net::new(addr, 32).expect("/32"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_tables_follow_the_device_index() {
        assert_eq!(route_table(0), RT_TABLE_MAIN);
        assert_eq!(route_table(1), 2);
        assert_eq!(route_table(7), 8);
    }
}
