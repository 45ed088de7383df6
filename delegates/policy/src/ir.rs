//! The one intermediate representation both inputs (inline security groups and
//! MultiNetworkPolicy) are turned into, and its digest. Rendering reads only this.

use ipnet::IpNet;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A traffic direction, seen from the pod's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Direction {
    /// Packets arriving on the interface.
    Ingress,
    /// Packets leaving through the interface.
    Egress,
}

/// A layer-4 protocol that has ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum PortProtocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl PortProtocol {
    /// The protocol as nft names it.
    pub fn word(self) -> &'static str {
        match self {
            PortProtocol::Tcp => "tcp",
            PortProtocol::Udp => "udp",
            PortProtocol::Sctp => "sctp",
        }
    }
}

/// What a rule matches above the network layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum L4 {
    /// Any protocol.
    Any,
    /// One protocol by number, any port.
    Protocol(u8),
    /// Destination ports of a protocol: inclusive ranges (a single port is `(p, p)`).
    Ports(PortProtocol, Vec<(u16, u16)>),
    /// ICMP (`v6: false`) or ICMPv6, optionally one type and code.
    Icmp {
        /// ICMPv6 rather than ICMP.
        v6: bool,
        /// The type, or any.
        icmp_type: Option<u8>,
        /// The code, or any (only with a type).
        code: Option<u8>,
    },
}

impl L4 {
    /// Destination ports of `protocol`: the ranges sorted, overlapping and adjacent ones
    /// merged (nft refuses overlapping intervals in one set).
    pub fn ports(protocol: PortProtocol, mut ranges: Vec<(u16, u16)>) -> L4 {
        ranges.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
        for (first, last) in ranges {
            match merged.last_mut() {
                Some(prev) if u32::from(first) <= u32::from(prev.1) + 1 => {
                    prev.1 = prev.1.max(last)
                }
                _ => merged.push((first, last)),
            }
        }
        L4::Ports(protocol, merged)
    }
}

/// Who is at the other end of a packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Peer {
    /// Any address.
    Any,
    /// An address block, minus its exceptions (which exclude only within this peer: another
    /// peer or rule may still allow them).
    Cidr {
        /// The block.
        net: IpNet,
        /// Blocks inside `net`, of its family, not allowed by this peer.
        excepts: Vec<IpNet>,
    },
    /// A named set of addresses: a security group's members, or the pods a selector picks.
    Set {
        /// What the set stands for (a group, a policy's peer), for readers of the rules.
        name: String,
        /// Its addresses; empty matches nothing.
        members: Vec<IpNet>,
    },
}

/// One allow rule: traffic in `direction` matching `l4` and any of `peers` is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Rule {
    /// Where the rule came from (`sg-db/in/0`, `mnp:ns/name/in/0`): its nft comment.
    pub origin: String,
    /// The direction it allows.
    pub direction: Direction,
    /// The protocol and ports.
    pub l4: L4,
    /// The peers, ORed; never empty.
    pub peers: Vec<Peer>,
}

/// The whole policy of one interface: the directions enforced (deny unless allowed), the
/// allow rules, and the infrastructure traffic let through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfacePolicy {
    /// Ingress is enforced.
    pub ingress: bool,
    /// Egress is enforced.
    pub egress: bool,
    /// Replies to allowed traffic pass (`ct state established,related`), invalid drops.
    pub stateful: bool,
    /// ICMPv6 neighbour and router discovery pass.
    pub allow_ndp: bool,
    /// DHCP (v4 and v6 client traffic) passes.
    pub allow_dhcp: bool,
    /// The allow rules, in order.
    pub rules: Vec<Rule>,
}

impl InterfacePolicy {
    /// Whether `direction` is enforced.
    pub fn enforces(&self, direction: Direction) -> bool {
        match direction {
            Direction::Ingress => self.ingress,
            Direction::Egress => self.egress,
        }
    }

    /// Whether anything is enforced at all; when not, nothing is installed.
    pub fn enforces_any(&self) -> bool {
        self.ingress || self.egress
    }

    /// sha256 of the canonical form (this value as JSON, fields in declaration order), first
    /// 16 hex digits: what the final rule's comment carries and CHECK compares.
    pub fn digest(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("the policy always serializes");
        Sha256::digest(&canonical)[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
