//! The node-wide rules of the ENI datapath (`SetupHostNetwork`): rule 1024, loose
//! reverse-path filtering on the primary ENI, and the nftables table of [`crate::snat`].

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use kernel::{nft, sysctl, Family, Netlink, Rule, RT_TABLE_MAIN};
use nftables::batch::Batch;
use nftables::schema::{NfListObject, Table};
use nftables::types::NfFamily;

use crate::error::Error;
use crate::snat::{self, TABLE};

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

impl HostNetwork {
    fn rule(&self) -> Rule {
        Rule::new(Family::V4, RT_TABLE_MAIN)
            .fwmark(self.connmark, self.connmark)
            .priority(HOST_RULE_PRIORITY)
    }
}

/// Makes (or brings back to what `host` says) the node-wide rules. Idempotent; the nftables
/// table is replaced in one transaction.
pub fn setup_host(nl: &mut Netlink, host: &HostNetwork) -> Result<(), Error> {
    // Loose: replies to NodePort traffic and steered connections may come back on an
    // interface the strict check would not expect (what aws-vpc-cni-init sets).
    let key = [
        "net",
        "ipv4",
        "conf",
        host.primary_ifname.as_str(),
        "rp_filter",
    ];
    sysctl::write_path(&key, "2").map_err(Error::kernel(format!(
        "set loose reverse-path filtering on {}",
        host.primary_ifname
    )))?;
    let rule = host.rule();
    let present = nl
        .rules(Family::V4, Some(HOST_RULE_PRIORITY))
        .map_err(Error::kernel("list rules at priority 1024"))?;
    if !present.contains(&rule) {
        nl.add_rule(&rule)
            .map_err(Error::kernel(format!("add rule {}", rule.describe())))?;
    }
    nft::apply(
        snat::ruleset(host),
        &format!("replace nftables table ip {TABLE}"),
    )
    .map_err(Error::kernel(format!(
        "apply the SNAT and connmark rules (table ip {TABLE})"
    )))
}

/// Removes the node-wide rules. Idempotent.
pub fn teardown_host(nl: &mut Netlink, host: &HostNetwork) -> Result<(), Error> {
    let rule = host.rule();
    match nl.del_rule(&rule) {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(Error::kernel(format!("delete rule {}", rule.describe()))(e)),
    }
    let table = Table {
        family: NfFamily::IP,
        name: TABLE.into(),
        handle: None,
    };
    let mut batch = Batch::new();
    // Add first, so deleting a table that is not there is not an error.
    batch.add(NfListObject::Table(table.clone()));
    batch.delete(NfListObject::Table(table));
    nft::apply(batch, &format!("delete nftables table ip {TABLE}"))
        .map_err(Error::kernel(format!("delete table ip {TABLE}")))
}
