//! Neighbour (ARP / NDP) entries.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::Result;
use crate::family::Family;
use crate::link::format_mac;
use crate::netlink::Netlink;

/// A neighbour cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// Index of the link the neighbour is on.
    pub index: u32,
    /// The neighbour's IP address.
    pub ip: IpAddr,
    /// Its hardware address, if resolved.
    pub mac: Option<[u8; 6]>,
    /// Static entry (`NUD_PERMANENT`): never expires or gets re-resolved.
    pub permanent: bool,
    /// Raw `NUD_*` state bits.
    pub state: u16,
}

fn neighbour_msg(index: u32, ip: IpAddr) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = Family::to_af(Some(Family::of(ip)));
    msg.header.ifindex = index;
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::from(ip)));
    msg
}

impl Netlink {
    /// Neighbour entries, optionally of one link and/or one family.
    pub fn neighbours(
        &mut self,
        index: Option<u32>,
        family: Option<Family>,
    ) -> Result<Vec<Neighbour>> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = Family::to_af(family);
        let replies = self.dump(RouteNetlinkMessage::GetNeighbour(msg), "list neighbours")?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewNeighbour(m) => parse_neighbour(m),
                _ => None,
            })
            .filter(|n| index.is_none_or(|i| n.index == i))
            .filter(|n| family.is_none_or(|f| Family::of(n.ip) == f))
            .collect())
    }

    /// Adds a permanent entry; fails with [`crate::Error::is_exists`] if
    /// there is already one for `ip` on the link.
    pub fn add_neighbour(&mut self, index: u32, ip: IpAddr, mac: [u8; 6]) -> Result<()> {
        let op = format!(
            "add neighbour {ip} lladdr {} on link {index}",
            format_mac(&mac)
        );
        self.set_neighbour(index, ip, mac, NLM_F_CREATE | NLM_F_EXCL, &op)
    }

    /// Adds a permanent entry or overwrites an existing one.
    pub fn replace_neighbour(&mut self, index: u32, ip: IpAddr, mac: [u8; 6]) -> Result<()> {
        let op = format!(
            "replace neighbour {ip} lladdr {} on link {index}",
            format_mac(&mac)
        );
        self.set_neighbour(index, ip, mac, NLM_F_CREATE | NLM_F_REPLACE, &op)
    }

    fn set_neighbour(
        &mut self,
        index: u32,
        ip: IpAddr,
        mac: [u8; 6],
        flags: u16,
        op: &str,
    ) -> Result<()> {
        let mut msg = neighbour_msg(index, ip);
        msg.header.state = NeighbourState::Permanent;
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        self.execute(RouteNetlinkMessage::NewNeighbour(msg), flags, op)
    }

    /// Deletes the entry for `ip` on a link.
    pub fn del_neighbour(&mut self, index: u32, ip: IpAddr) -> Result<()> {
        let op = format!("delete neighbour {ip} on link {index}");
        self.execute(
            RouteNetlinkMessage::DelNeighbour(neighbour_msg(index, ip)),
            0,
            &op,
        )
    }
}

fn parse_neighbour(msg: &NeighbourMessage) -> Option<Neighbour> {
    let mut ip = None;
    let mut mac = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(IpAddr::V4(*a)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                ip = Some(IpAddr::V6(*a))
            }
            NeighbourAttribute::LinkLayerAddress(l) => mac = <[u8; 6]>::try_from(l.as_slice()).ok(),
            _ => {}
        }
    }
    Some(Neighbour {
        index: msg.header.ifindex,
        ip: ip?,
        mac,
        permanent: msg.header.state == NeighbourState::Permanent,
        state: u16::from(msg.header.state),
    })
}
