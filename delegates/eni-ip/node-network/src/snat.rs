//! The node's nftables table: SNAT of pods' connections leaving the VPC, and the connmark
//! steering that makes them leave through the primary ENI (the AWS VPC CNI's nftables
//! backend, research `eni.md` 2.4, as one table replaced in one transaction).
//!
//! ```text
//! table ip meta_cni_eni {
//!   chain mangle_prerouting {        # every packet
//!     type filter hook prerouting priority mangle;
//!     iifname <primary> fib daddr . iif type local ct mark set ct mark | 0x80   # NodePort
//!     iifname "eni*" meta mark set ct mark & 0x80                             # restore
//!   }
//!   chain nat_prerouting {           # a connection's first packet
//!     type nat hook prerouting priority dstnat + 10;
//!     fib daddr type local return
//!     iifname "eni*" jump snat_mark
//!     ct mark & 0x80 != 0 meta mark set ct mark & 0x80
//!   }
//!   chain snat_mark { ip daddr <each VPC CIDR> return; ct mark set ct mark | 0x80 }
//!   chain nat_postrouting {
//!     type nat hook postrouting priority srcnat;
//!     ip daddr <each VPC CIDR> return
//!     oifname <primary> fib daddr type != local snat to <node IP> fully-random
//!   }
//! }
//! ```
//!
//! One difference from upstream on purpose: SNAT applies only to what leaves through the
//! primary ENI. Upstream SNATs whatever leaves the VPC, also out of a secondary ENI, where
//! the source/destination check then drops it; the connmark steering sends every pod's
//! connection out of the primary ENI anyway. With an external NAT only `mangle_prerouting`
//! is made.

use std::borrow::Cow;
use std::collections::HashSet;

use ipnet::IpNet;
use kernel::nft_expr::{matches, payload, prefix, string};
use nftables::batch::Batch;
use nftables::expr::{
    BinaryOperation, Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, CT,
};
use nftables::schema::{Chain, NfListObject, Rule, Table};
use nftables::stmt::{JumpTarget, Mangle, NATFamily, NATFlag, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::host_network::HostNetwork;

/// The table's name (family `ip`).
pub const TABLE: &str = "meta_cni_eni";

const MANGLE: i32 = -150;
const DSTNAT_PLUS_10: i32 = -90;
const SRCNAT: i32 = 100;

/// The whole table for `host`, replacing any previous one in the same transaction.
pub fn ruleset(host: &HostNetwork) -> Batch<'static> {
    let mut batch = Batch::new();
    let table = Table {
        family: NfFamily::IP,
        name: TABLE.into(),
        handle: None,
    };
    // Add then delete: deleting a table that does not exist would fail the transaction.
    batch.add(NfListObject::Table(table.clone()));
    batch.delete(NfListObject::Table(table.clone()));
    batch.add(NfListObject::Table(table));

    let mark = host.connmark;
    let veths = format!("{}*", host.veth_prefix);
    base_chain(
        &mut batch,
        "mangle_prerouting",
        NfHook::Prerouting,
        MANGLE,
        NfChainType::Filter,
    );
    rule(
        &mut batch,
        "mangle_prerouting",
        vec![
            matches(
                meta(MetaKey::Iifname),
                Operator::EQ,
                string(&host.primary_ifname),
            ),
            matches(
                fib(FibResult::Type, &[FibFlag::Daddr, FibFlag::Iif]),
                Operator::EQ,
                string("local"),
            ),
            set(ct_mark(), or(ct_mark(), mark)),
        ],
    );
    rule(
        &mut batch,
        "mangle_prerouting",
        vec![
            matches(meta(MetaKey::Iifname), Operator::EQ, string(&veths)),
            set(meta(MetaKey::Mark), and(ct_mark(), mark)),
        ],
    );
    if host.external_snat {
        return batch;
    }

    // The jump target exists before the rule that jumps to it.
    regular_chain(&mut batch, "snat_mark");
    base_chain(
        &mut batch,
        "nat_prerouting",
        NfHook::Prerouting,
        DSTNAT_PLUS_10,
        NfChainType::NAT,
    );
    rule(
        &mut batch,
        "nat_prerouting",
        vec![
            matches(
                fib(FibResult::Type, &[FibFlag::Daddr]),
                Operator::EQ,
                string("local"),
            ),
            Statement::Return(None),
        ],
    );
    rule(
        &mut batch,
        "nat_prerouting",
        vec![
            matches(meta(MetaKey::Iifname), Operator::EQ, string(&veths)),
            Statement::Jump(JumpTarget {
                target: "snat_mark".into(),
            }),
        ],
    );
    rule(
        &mut batch,
        "nat_prerouting",
        vec![
            matches(and(ct_mark(), mark), Operator::NEQ, Expression::Number(0)),
            set(meta(MetaKey::Mark), and(ct_mark(), mark)),
        ],
    );

    vpc_returns(&mut batch, "snat_mark", host);
    rule(
        &mut batch,
        "snat_mark",
        vec![set(ct_mark(), or(ct_mark(), mark))],
    );

    base_chain(
        &mut batch,
        "nat_postrouting",
        NfHook::Postrouting,
        SRCNAT,
        NfChainType::NAT,
    );
    vpc_returns(&mut batch, "nat_postrouting", host);
    rule(
        &mut batch,
        "nat_postrouting",
        vec![
            matches(
                meta(MetaKey::Oifname),
                Operator::EQ,
                string(&host.primary_ifname),
            ),
            matches(
                fib(FibResult::Type, &[FibFlag::Daddr]),
                Operator::NEQ,
                string("local"),
            ),
            Statement::SNAT(Some(NAT {
                addr: Some(string(&host.node_ip.to_string())),
                family: Some(NATFamily::IP),
                port: None,
                flags: Some(HashSet::from([NATFlag::FullyRandom])),
            })),
        ],
    );
    batch
}

/// `ip daddr <cidr> return` for each of the VPC's CIDRs: traffic inside the VPC keeps its
/// source and its path.
fn vpc_returns(batch: &mut Batch<'static>, chain: &'static str, host: &HostNetwork) {
    for cidr in &host.vpc_cidrs {
        let inside = matches(
            payload("ip", "daddr"),
            Operator::EQ,
            prefix(IpNet::V4(*cidr)),
        );
        rule(batch, chain, vec![inside, Statement::Return(None)]);
    }
}

fn base_chain(
    batch: &mut Batch<'static>,
    name: &'static str,
    hook: NfHook,
    prio: i32,
    kind: NfChainType,
) {
    batch.add(NfListObject::Chain(Chain {
        family: NfFamily::IP,
        table: TABLE.into(),
        name: name.into(),
        _type: Some(kind),
        hook: Some(hook),
        prio: Some(prio),
        policy: Some(NfChainPolicy::Accept),
        ..Chain::default()
    }));
}

fn regular_chain(batch: &mut Batch<'static>, name: &'static str) {
    batch.add(NfListObject::Chain(Chain {
        family: NfFamily::IP,
        table: TABLE.into(),
        name: name.into(),
        ..Chain::default()
    }));
}

fn rule(batch: &mut Batch<'static>, chain: &'static str, expr: Vec<Statement<'static>>) {
    batch.add(NfListObject::Rule(Rule {
        family: NfFamily::IP,
        table: TABLE.into(),
        chain: chain.into(),
        expr: Cow::Owned(expr),
        handle: None,
        index: None,
        comment: None,
    }));
}

fn set(key: Expression<'static>, value: Expression<'static>) -> Statement<'static> {
    Statement::Mangle(Mangle { key, value })
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn ct_mark() -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: "mark".into(),
        family: None,
        dir: None,
    }))
}

fn and(left: Expression<'static>, mask: u32) -> Expression<'static> {
    Expression::BinaryOperation(Box::new(BinaryOperation::AND(
        left,
        Expression::Number(mask),
    )))
}

fn or(left: Expression<'static>, bits: u32) -> Expression<'static> {
    Expression::BinaryOperation(Box::new(BinaryOperation::OR(vec![
        left,
        Expression::Number(bits),
    ])))
}

fn fib(result: FibResult, flags: &[FibFlag]) -> Expression<'static> {
    Expression::Named(NamedExpression::Fib(Fib {
        result,
        flags: flags.iter().copied().collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(external_snat: bool) -> HostNetwork {
        HostNetwork {
            primary_ifname: "eth0".into(),
            node_ip: "10.0.1.4".parse().unwrap(),
            vpc_cidrs: vec![
                "10.0.0.0/16".parse().unwrap(),
                "100.64.0.0/16".parse().unwrap(),
            ],
            external_snat,
            veth_prefix: "eni".into(),
            connmark: 0x80,
        }
    }

    /// The batch as JSON, with the `flags` sets (hash sets in the schema) sorted so the
    /// snapshot does not depend on hashing.
    fn json(batch: Batch<'_>) -> serde_json::Value {
        fn sort_flags(value: &mut serde_json::Value) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, item) in map.iter_mut() {
                        if let (true, Some(list)) = (key == "flags", item.as_array_mut()) {
                            list.sort_by_key(|flag| flag.to_string());
                        }
                        sort_flags(item);
                    }
                }
                serde_json::Value::Array(list) => list.iter_mut().for_each(sort_flags),
                _ => {}
            }
        }
        let mut value = serde_json::to_value(batch.to_nftables()).unwrap();
        sort_flags(&mut value);
        value
    }

    #[test]
    fn the_table_as_nft_receives_it() {
        insta::assert_json_snapshot!("snat", json(ruleset(&host(false))));
    }

    #[test]
    fn an_external_nat_keeps_only_the_nodeport_marking() {
        let text = json(ruleset(&host(true))).to_string();
        assert!(text.contains("mangle_prerouting"), "{text}");
        for gone in ["nat_prerouting", "snat_mark", "nat_postrouting", "snat"] {
            assert!(!text.contains(&format!("\"{gone}\"")), "{gone} in {text}");
        }
    }
}
