//! IP addresses of links.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::Result;
use crate::family::Family;
use crate::netlink::Netlink;

/// `IFA_F_TENTATIVE`: IPv6 duplicate address detection still running.
const IFA_F_TENTATIVE: u32 = 0x40;
/// `IFA_F_DADFAILED`: IPv6 duplicate address detection failed.
const IFA_F_DADFAILED: u32 = 0x08;

/// An address assigned to a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Index of the link.
    pub index: u32,
    /// The address with its prefix length; host bits are kept
    /// (`10.0.0.5/24`, not `10.0.0.0/24`).
    pub addr: IpNet,
    /// Scope (`RT_SCOPE_*`: 0 universe, 253 link, 254 host).
    pub scope: u8,
    /// `IFA_F_*` flags as reported by the kernel.
    pub flags: u32,
}

impl Address {
    /// IPv6 duplicate address detection has not finished.
    pub fn is_tentative(&self) -> bool {
        self.flags & IFA_F_TENTATIVE != 0
    }

    /// IPv6 duplicate address detection found a duplicate.
    pub fn is_dadfailed(&self) -> bool {
        self.flags & IFA_F_DADFAILED != 0
    }
}

/// Options for [`Netlink::add_address`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressOptions {
    /// Skip IPv6 duplicate address detection (`nodad`), so the address is
    /// usable at once.
    pub nodad: bool,
    /// Do not create the prefix route (`noprefixroute`).
    pub noprefixroute: bool,
}

fn address_msg(index: u32, addr: IpNet) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = Family::to_af(Some(Family::of(addr.addr())));
    msg.header.prefix_len = addr.prefix_len();
    msg.header.index = index;
    match addr {
        // IFA_LOCAL is the IPv4 address itself; IFA_ADDRESS the peer, which
        // is the same on non point-to-point links.
        IpNet::V4(_) => {
            msg.attributes.push(AddressAttribute::Local(addr.addr()));
            msg.attributes.push(AddressAttribute::Address(addr.addr()));
        }
        IpNet::V6(_) => msg.attributes.push(AddressAttribute::Address(addr.addr())),
    }
    msg
}

impl Netlink {
    /// Addresses, optionally only those of one link and/or one family.
    pub fn addresses(
        &mut self,
        index: Option<u32>,
        family: Option<Family>,
    ) -> Result<Vec<Address>> {
        let mut msg = AddressMessage::default();
        msg.header.family = Family::to_af(family);
        let replies = self.dump(RouteNetlinkMessage::GetAddress(msg), "list addresses")?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewAddress(m) => parse_address(m),
                _ => None,
            })
            .filter(|a| index.is_none_or(|i| a.index == i))
            .filter(|a| family.is_none_or(|f| Family::of(a.addr.addr()) == f))
            .collect())
    }

    /// Adds an address. IPv4 addresses get the subnet broadcast address too
    /// (like `ip addr add ... brd +`), except on /31 and /32.
    pub fn add_address(&mut self, index: u32, addr: IpNet, opts: AddressOptions) -> Result<()> {
        let mut msg = address_msg(index, addr);
        if let IpNet::V4(v4) = addr {
            if v4.prefix_len() < 31 {
                msg.attributes
                    .push(AddressAttribute::Broadcast(v4.broadcast()));
            }
        }
        let mut flags = AddressFlags::empty();
        if opts.nodad {
            flags |= AddressFlags::Nodad;
            msg.header.flags |= AddressHeaderFlags::Nodad;
        }
        if opts.noprefixroute {
            flags |= AddressFlags::Noprefixroute;
        }
        if !flags.is_empty() {
            msg.attributes.push(AddressAttribute::Flags(flags));
        }
        let op = format!("add address {addr} to link {index}");
        self.execute(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &op,
        )
    }

    /// Removes an address.
    pub fn del_address(&mut self, index: u32, addr: IpNet) -> Result<()> {
        let op = format!("delete address {addr} from link {index}");
        self.execute(
            RouteNetlinkMessage::DelAddress(address_msg(index, addr)),
            0,
            &op,
        )
    }
}

fn parse_address(msg: &AddressMessage) -> Option<Address> {
    let mut local = None;
    let mut address = None;
    let mut flags = u32::from(msg.header.flags.bits());
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Flags(f) => flags = f.bits(),
            _ => {}
        }
    }
    let ip: IpAddr = local.or(address)?;
    Some(Address {
        index: msg.header.index,
        addr: IpNet::new(ip, msg.header.prefix_len).ok()?,
        scope: u8::from(msg.header.scope),
        flags,
    })
}
