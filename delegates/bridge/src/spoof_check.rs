//! `macspoofchk`: frames entering the bridge from a container's host veth must carry the
//! container interface's MAC as source, else they are dropped.
//!
//! One `bridge`-family table with a prerouting filter chain at the same priority the
//! reference uses (-300); each attachment gets one rule,
//! `iifname <host veth> ether saddr != <mac> drop`.

use std::borrow::Cow;

use kernel::nft;
use nftables::expr::{Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField};
use nftables::schema::{NfListObject, Rule};
use nftables::stmt::{Match, Operator, Statement};
use nftables::types::{NfChainType, NfFamily, NfHook};

use crate::rule_tag::{self, TaggedTable};

/// The table of our spoof-check rules.
pub(crate) const TABLE: &str = "meta_cni_bridge";
/// Its chain.
pub(crate) const CHAIN: &str = "prerouting";
/// The bridge family's `dstnat` priority: before any other bridge filtering.
const PRIORITY: i32 = -300;

/// Adds the rule for one attachment (table and chain are created if missing).
pub(crate) fn add(
    network: &str,
    container_id: &str,
    ifname: &str,
    host_veth: &str,
    mac: &str,
) -> kernel::Result<()> {
    let mut batch =
        RULES.batch_with_chain(CHAIN, NfChainType::Filter, NfHook::Prerouting, PRIORITY);
    batch.add(NfListObject::Rule(Rule {
        family: NfFamily::Bridge,
        table: TABLE.into(),
        chain: CHAIN.into(),
        expr: Cow::Owned(vec![
            Statement::Match(Match {
                left: Expression::Named(NamedExpression::Meta(Meta {
                    key: MetaKey::Iifname,
                })),
                right: Expression::String(host_veth.to_string().into()),
                op: Operator::EQ,
            }),
            Statement::Match(Match {
                left: Expression::Named(NamedExpression::Payload(Payload::PayloadField(
                    PayloadField {
                        protocol: "ether".into(),
                        field: "saddr".into(),
                    },
                ))),
                right: Expression::String(mac.to_string().into()),
                op: Operator::NEQ,
            }),
            Statement::Drop(None),
        ]),
        handle: None,
        index: None,
        comment: Some(rule_tag::attachment(network, container_id, ifname).into()),
    }));
    nft::apply(
        batch,
        &format!("add MAC spoof check for {container_id}/{ifname} on {host_veth}"),
    )
}

/// Our spoof-check rules, found by their tags.
pub(crate) const RULES: TaggedTable = TaggedTable {
    family: NfFamily::Bridge,
    name: TABLE,
};
