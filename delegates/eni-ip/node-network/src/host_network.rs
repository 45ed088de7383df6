//! What the node-wide rules are made from: the node's primary interface and address, the
//! VPC's CIDRs, and the SNAT and connmark choices.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// `AWS_VPC_K8S_CNI_CONNMARK`'s default: the mark of connections that must leave (or
/// whose replies must leave) through the primary ENI.
pub const CONNMARK: u32 = 0x80;
/// `hostRulePriority`: marked traffic looks up `main`, whose default route is the primary
/// ENI's.
pub const HOST_RULE_PRIORITY: u32 = 1024;

/// What the node-wide rules depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNetwork {
    /// The primary ENI's interface (the node's default route).
    pub primary_ifname: String,
    /// The node's primary address: what pods' traffic leaving the VPC is SNATed to.
    pub node_ip: Ipv4Addr,
    /// The VPC's CIDRs (and `AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS`): never SNATed.
    pub vpc_cidrs: Vec<Ipv4Net>,
    /// `AWS_VPC_K8S_CNI_EXTERNALSNAT`: a NAT gateway translates, so no SNAT here.
    pub external_snat: bool,
    /// The pods' host veths' prefix (the plugin's `vethPrefix`, `eni` by default).
    pub veth_prefix: String,
    /// The connmark bit ([`CONNMARK`] by default).
    pub connmark: u32,
}
