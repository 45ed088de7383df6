//! What the agent knows of its node and of each ENI, as read from IMDS and EC2.

use std::net::Ipv4Addr;
use std::time::SystemTime;

use ipnet::Ipv4Net;

/// The instance the agent runs on (`initWithEC2Metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// `instance-id`.
    pub instance_id: String,
    /// `instance-type`.
    pub instance_type: String,
    /// `placement/availability-zone`.
    pub availability_zone: String,
    /// The region EC2 is called in.
    pub region: String,
    /// The primary ENI's MAC (`mac`).
    pub primary_mac: String,
    /// The primary ENI's id.
    pub primary_eni_id: String,
    /// The node's address (`local-ipv4`), the SNAT source.
    pub primary_ip: Ipv4Addr,
    /// The primary ENI's subnet: new ENIs are created there.
    pub subnet_id: String,
    /// That subnet's CIDR.
    pub subnet_cidr: Ipv4Net,
    /// The VPC.
    pub vpc_id: String,
    /// The VPC's IPv4 CIDRs.
    pub vpc_cidrs: Vec<Ipv4Net>,
    /// The primary ENI's security groups: new ENIs get the same.
    pub security_groups: Vec<String>,
}

/// One ENI as IMDS or EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EniFacts {
    /// `eni-…`.
    pub id: String,
    /// Its MAC.
    pub mac: String,
    /// The attachment's device index.
    pub device_index: u32,
    /// Its subnet's CIDR.
    pub subnet: Ipv4Net,
    /// Its own (primary) address, never handed to a pod.
    pub primary_ip: Option<Ipv4Addr>,
    /// Its secondary addresses.
    pub secondary_ips: Vec<Ipv4Addr>,
    /// Its delegated /28 prefixes.
    pub prefixes: Vec<Ipv4Net>,
    /// The attachment (EC2 only; needed to detach it).
    pub attachment_id: Option<String>,
    /// When it was attached (EC2 only).
    pub attached_at: Option<SystemTime>,
    /// A trunk ENI (security groups for pods).
    pub trunk: bool,
    /// An EFA ENI.
    pub efa: bool,
    /// Tagged `node.k8s.amazonaws.com/no_manage=true`: the agent leaves it alone.
    pub no_manage: bool,
}

impl EniFacts {
    /// Its blocks as the datastore keeps them: secondary IPs as /32s, then prefixes.
    pub fn cidrs(&self) -> Vec<Ipv4Net> {
        self.secondary_ips
            .iter()
            .map(|ip| Ipv4Net::from(*ip))
            .chain(self.prefixes.iter().copied())
            .collect()
    }
}
