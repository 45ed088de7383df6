//! `ipMasq`: source NAT of the container's traffic leaving its subnet, in nftables.
//!
//! One `inet` table holds a postrouting NAT chain; each container address gets one rule,
//! `ip saddr <addr> ip daddr != <subnet> ip daddr != <multicast> masquerade`, which is what
//! the reference's iptables chain does (accept the own subnet, masquerade all but multicast).

use std::borrow::Cow;

use ipnet::IpNet;
use kernel::nft;
use kernel::nft_expr::{matches, payload, prefix, string};
use nftables::schema::{NfListObject, Rule};
use nftables::stmt::{Operator, Statement};
use nftables::types::{NfChainType, NfFamily, NfHook};

use crate::rule_tag::{self, TaggedTable};

/// The table of our masquerade rules.
pub(crate) const TABLE: &str = "meta_cni_bridge";
/// The NAT chain in it.
pub(crate) const CHAIN: &str = "postrouting";
/// `srcnat` priority, where iptables' POSTROUTING nat chain also sits.
const SRCNAT: i32 = 100;

fn rule(addr: IpNet, tag: &str) -> Rule<'static> {
    let (proto, multicast): (&'static str, IpNet) = match addr {
        IpNet::V4(_) => ("ip", "224.0.0.0/4".parse().expect("valid prefix")),
        IpNet::V6(_) => ("ip6", "ff00::/8".parse().expect("valid prefix")),
    };
    Rule {
        family: NfFamily::INet,
        table: TABLE.into(),
        chain: CHAIN.into(),
        expr: Cow::Owned(vec![
            matches(
                payload(proto, "saddr"),
                Operator::EQ,
                string(&addr.addr().to_string()),
            ),
            matches(payload(proto, "daddr"), Operator::NEQ, prefix(addr.trunc())),
            matches(payload(proto, "daddr"), Operator::NEQ, prefix(multicast)),
            Statement::Masquerade(None),
        ]),
        handle: None,
        index: None,
        comment: Some(tag.to_string().into()),
    }
}

/// Adds masquerade rules for `addrs` of one attachment, in one transaction (table and chain
/// are created if missing; adding them again is a no-op in nftables).
pub(crate) fn add(
    network: &str,
    container_id: &str,
    ifname: &str,
    addrs: &[IpNet],
) -> kernel::Result<()> {
    if addrs.is_empty() {
        return Ok(());
    }
    let tag = rule_tag::attachment(network, container_id, ifname);
    let mut batch = RULES.batch_with_chain(CHAIN, NfChainType::NAT, NfHook::Postrouting, SRCNAT);
    for addr in addrs {
        batch.add(NfListObject::Rule(rule(*addr, &tag)));
    }
    nft::apply(
        batch,
        &format!("add masquerade rules for {container_id}/{ifname}"),
    )
}

/// Our masquerade rules, found by their tags.
pub(crate) const RULES: TaggedTable = TaggedTable {
    family: NfFamily::INet,
    name: TABLE,
};
