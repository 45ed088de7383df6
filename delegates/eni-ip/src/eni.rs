//! One attached ENI and the address blocks EC2 assigned to it: secondary IPv4 addresses
//! (kept as /32 blocks) and delegated /28 prefixes, as ipamd's `ENI.AvailableIPv4Cidrs`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use ipnet::Ipv4Net;

/// The prefix length EC2 delegates in prefix mode (`GetPrefixDelegationDefaults`).
pub const PREFIX_LEN: u8 = 28;
/// Addresses in one delegated prefix.
pub const IPS_PER_PREFIX: u32 = 16;

/// One ENI on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eni {
    /// The EC2 id, `eni-…`.
    pub id: String,
    /// The attachment's device index; it decides the ENI's route table.
    pub device_index: u32,
    /// The instance's primary ENI: never detached, and its primary address is the node's.
    pub primary: bool,
    /// The ENI's subnet (its gateway is the network address + 1).
    pub subnet: Ipv4Net,
    /// When it was attached (or first seen): young ENIs are not detached.
    pub attached_at: SystemTime,
    /// A trunk ENI (security groups for pods): never detached by the pool.
    pub trunk: bool,
    /// An EFA ENI: never detached by the pool.
    pub efa: bool,
    /// Secondary IPs and prefixes, by block.
    pub(crate) cidrs: BTreeMap<Ipv4Net, Cidr>,
}

impl Eni {
    /// An ENI with no addresses yet, neither trunk nor EFA.
    pub fn new(
        id: impl Into<String>,
        device_index: u32,
        primary: bool,
        subnet: Ipv4Net,
        attached_at: SystemTime,
    ) -> Self {
        Eni {
            id: id.into(),
            device_index,
            primary,
            subnet,
            attached_at,
            trunk: false,
            efa: false,
            cidrs: BTreeMap::new(),
        }
    }

    /// The blocks on this ENI, in address order.
    pub fn cidrs(&self) -> impl Iterator<Item = &Cidr> {
        self.cidrs.values()
    }

    /// The secondary IPv4 addresses (the /32 blocks).
    pub fn secondary_ips(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.cidrs
            .values()
            .filter(|c| !c.is_prefix())
            .map(|c| c.net.addr())
    }

    /// The delegated prefixes.
    pub fn prefixes(&self) -> impl Iterator<Item = Ipv4Net> + '_ {
        self.cidrs.values().filter(|c| c.is_prefix()).map(|c| c.net)
    }

    /// How many addresses on this ENI are held by allocations.
    pub fn assigned_count(&self) -> u32 {
        self.cidrs.values().map(Cidr::assigned_count).sum()
    }

    /// Whether any allocation holds an address of this ENI (upstream `hasPods`).
    pub fn has_pods(&self) -> bool {
        self.cidrs.values().any(|c| !c.assigned.is_empty())
    }

    /// Whether an address of this ENI was released less than `cooldown` before `now`.
    pub fn has_ip_in_cooldown(&self, now: SystemTime, cooldown: Duration) -> bool {
        self.cidrs
            .values()
            .any(|c| c.cooling_count(now, cooldown) > 0)
    }

    /// The block holding `addr`, if any.
    pub(crate) fn cidr_containing(&self, addr: Ipv4Addr) -> Option<&Cidr> {
        self.cidrs.values().find(|c| c.net.contains(&addr))
    }

    /// The block holding `addr`, if any, for update.
    pub(crate) fn cidr_containing_mut(&mut self, addr: Ipv4Addr) -> Option<&mut Cidr> {
        self.cidrs.values_mut().find(|c| c.net.contains(&addr))
    }
}

/// One block: a secondary IP (/32) or a delegated prefix (/28), with which of its addresses
/// are held and when the others were last released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    pub(crate) net: Ipv4Net,
    pub(crate) assigned: BTreeSet<Ipv4Addr>,
    /// The last release time of addresses not currently assigned (upstream `UnassignedTime`).
    pub(crate) released_at: BTreeMap<Ipv4Addr, SystemTime>,
}

impl Cidr {
    pub(crate) fn new(net: Ipv4Net) -> Self {
        Cidr {
            net: net.trunc(),
            assigned: BTreeSet::new(),
            released_at: BTreeMap::new(),
        }
    }

    /// The block.
    pub fn net(&self) -> Ipv4Net {
        self.net
    }

    /// A delegated prefix rather than a single secondary IP.
    pub fn is_prefix(&self) -> bool {
        self.net.prefix_len() < 32
    }

    /// How many addresses the block holds (1 or 16).
    pub fn size(&self) -> u32 {
        1u32 << (32 - u32::from(self.net.prefix_len()))
    }

    /// How many of its addresses are held by allocations.
    pub fn assigned_count(&self) -> u32 {
        self.assigned.len() as u32
    }

    /// Whether `addr` is held by an allocation.
    pub fn is_assigned(&self, addr: Ipv4Addr) -> bool {
        self.assigned.contains(&addr)
    }

    /// Whether `addr` is free but was released less than `cooldown` before `now`.
    pub fn in_cooldown(&self, addr: Ipv4Addr, now: SystemTime, cooldown: Duration) -> bool {
        !self.assigned.contains(&addr)
            && self
                .released_at
                .get(&addr)
                .is_some_and(|at| still_cooling(*at, now, cooldown))
    }

    /// How many free addresses of the block are still cooling down.
    pub fn cooling_count(&self, now: SystemTime, cooldown: Duration) -> u32 {
        self.released_at
            .iter()
            .filter(|(addr, at)| {
                !self.assigned.contains(addr) && still_cooling(**at, now, cooldown)
            })
            .count() as u32
    }

    /// The lowest address that is neither held nor cooling down. Inside a delegated prefix
    /// every address is usable, the network address included, as upstream's `getUnusedIP`.
    pub(crate) fn first_usable(&self, now: SystemTime, cooldown: Duration) -> Option<Ipv4Addr> {
        let first = u32::from(self.net.network());
        (first..=u32::from(self.net.broadcast()))
            .map(Ipv4Addr::from)
            .find(|a| !self.assigned.contains(a) && !self.in_cooldown(*a, now, cooldown))
    }
}

/// A release at `at` still cools at `now`. A clock that stepped back before `at` counts as
/// cooling: handing the address out early is the failure the cooldown exists to prevent.
fn still_cooling(at: SystemTime, now: SystemTime, cooldown: Duration) -> bool {
    match now.duration_since(at) {
        Ok(elapsed) => elapsed < cooldown,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn prefix_hands_out_its_network_address_first() {
        let c = Cidr::new("10.0.1.16/28".parse().unwrap());
        assert!(c.is_prefix());
        assert_eq!(c.size(), 16);
        assert_eq!(
            c.first_usable(t(0), Duration::from_secs(30)),
            Some("10.0.1.16".parse().unwrap())
        );
    }

    #[test]
    fn cooling_addresses_are_skipped_until_the_period_ends() {
        let mut c = Cidr::new("10.0.1.16/28".parse().unwrap());
        let a: Ipv4Addr = "10.0.1.16".parse().unwrap();
        c.released_at.insert(a, t(100));
        let cd = Duration::from_secs(30);
        assert!(c.in_cooldown(a, t(129), cd));
        assert_eq!(c.cooling_count(t(129), cd), 1);
        assert_eq!(
            c.first_usable(t(129), cd),
            Some("10.0.1.17".parse().unwrap())
        );
        assert!(!c.in_cooldown(a, t(130), cd));
        assert_eq!(c.first_usable(t(130), cd), Some(a));
        // A clock stepped back keeps the address cooling.
        assert!(c.in_cooldown(a, t(50), cd));
    }

    #[test]
    fn secondary_ip_block_has_one_address() {
        let c = Cidr::new("10.0.1.5/32".parse().unwrap());
        assert!(!c.is_prefix());
        assert_eq!(c.size(), 1);
    }
}
