//! The node-wide rules of the ENI datapath (`SetupHostNetwork`): rule 1024, loose
//! reverse-path filtering on the primary ENI, and the nftables table of [`crate::snat`].

use kernel::{nft, sysctl, Family, Netlink, Rule, RT_TABLE_MAIN};
use nftables::batch::Batch;
use nftables::schema::{NfListObject, Table};
use nftables::types::NfFamily;

use crate::error::Error;
use crate::host_network::{HostNetwork, HOST_RULE_PRIORITY};
use crate::snat::{self, TABLE};

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
