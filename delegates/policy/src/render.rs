//! The IR of one interface rendered as nftables objects in the pod's netns: table
//! `inet cni_policy`, per-interface hook chains (input and forward for ingress, output for
//! egress, only for enforced directions) jumping to the rule chains `<if>_in` / `<if>_out`.
//!
//! Per-interface hook chains rather than one shared dispatcher: every object an ADD makes is
//! new, so the transaction is a pure create (the cheap kind), and interfaces without policy
//! and `lo` never reach a rule of ours. Every rule carries a comment, which CHECK reads back.

use std::borrow::Cow;

use ipnet::IpNet;
use kernel::nft_expr::{matches, payload, prefix, string};
use nftables::expr::{Expression, Meta, MetaKey, NamedExpression, Range, SetItem, CT};
use nftables::schema::{Chain, Rule, Table};
use nftables::stmt::{Counter, JumpTarget, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use sha2::{Digest, Sha256};

use crate::ir::{Direction, InterfacePolicy, Peer, Rule as IrRule, L4};

/// The table, in every pod netns, holding the chains of every policed interface.
pub const TABLE: &str = "cni_policy";
/// The table's family: one ruleset for IPv4 and IPv6.
pub const FAMILY: NfFamily = NfFamily::INet;
/// Priority of the hook chains: `filter`.
const PRIORITY: i32 = 0;
/// nft caps comments at 128 bytes.
const MAX_COMMENT: usize = 120;
/// Comment of the final rule, before the digest.
pub const DIGEST_PREFIX: &str = "cnipol v1 d=";

/// The rule chain of `ifname` for `direction`.
pub fn rule_chain(ifname: &str, direction: Direction) -> String {
    match direction {
        Direction::Ingress => format!("{ifname}_in"),
        Direction::Egress => format!("{ifname}_out"),
    }
}

/// A hook chain of one interface: which hook, and which rule chain it dispatches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookChain {
    /// The netfilter hook.
    pub hook: NfHook,
    /// The direction whose rule chain it jumps to.
    pub direction: Direction,
    /// Name suffix.
    suffix: &'static str,
}

/// Every hook chain an interface can have: DEL removes all of them, whatever ADD made.
pub const HOOK_CHAINS: [HookChain; 3] = [
    HookChain {
        hook: NfHook::Input,
        direction: Direction::Ingress,
        suffix: "hin",
    },
    HookChain {
        hook: NfHook::Forward,
        direction: Direction::Ingress,
        suffix: "hfw",
    },
    HookChain {
        hook: NfHook::Output,
        direction: Direction::Egress,
        suffix: "hout",
    },
];

impl HookChain {
    /// Its name for `ifname`.
    pub fn name(&self, ifname: &str) -> String {
        format!("{ifname}_{}", self.suffix)
    }

    /// The chain object, as ADD creates it and CHECK expects it.
    pub fn chain(&self, ifname: &str) -> Chain<'static> {
        Chain {
            family: FAMILY,
            table: TABLE.into(),
            name: self.name(ifname).into(),
            _type: Some(NfChainType::Filter),
            hook: Some(self.hook),
            prio: Some(PRIORITY),
            policy: Some(NfChainPolicy::Accept),
            ..Chain::default()
        }
    }

    fn dispatch(&self, ifname: &str) -> Rule<'static> {
        let key = match self.direction {
            Direction::Ingress => MetaKey::Iifname,
            Direction::Egress => MetaKey::Oifname,
        };
        rule(
            &self.name(ifname),
            vec![
                matches(meta(key), Operator::EQ, string(ifname)),
                Statement::Jump(JumpTarget {
                    target: rule_chain(ifname, self.direction).into(),
                }),
            ],
            "dispatch",
        )
    }
}

/// Everything ADD creates for one interface, in dependency order.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The chains: rule chains, then hook chains.
    pub chains: Vec<Chain<'static>>,
    /// The rules, each chain's in order.
    pub rules: Vec<Rule<'static>>,
}

impl Rendered {
    /// How many rules the interface gets.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The table object.
    pub fn table() -> Table<'static> {
        Table {
            family: FAMILY,
            name: TABLE.into(),
            handle: None,
        }
    }
}

/// Renders `policy` for `ifname`.
pub fn render(ifname: &str, policy: &InterfacePolicy) -> Rendered {
    let digest = policy.digest();
    let mut chains = Vec::new();
    let mut rules = Vec::new();
    for direction in [Direction::Ingress, Direction::Egress] {
        if !policy.enforces(direction) {
            continue;
        }
        let chain = rule_chain(ifname, direction);
        chains.push(Chain {
            family: FAMILY,
            table: TABLE.into(),
            name: chain.clone().into(),
            ..Chain::default()
        });
        rules.extend(direction_rules(&chain, direction, policy, &digest));
    }
    for hook in HOOK_CHAINS {
        if policy.enforces(hook.direction) {
            chains.push(hook.chain(ifname));
            rules.push(hook.dispatch(ifname));
        }
    }
    Rendered { chains, rules }
}

fn direction_rules(
    chain: &str,
    direction: Direction,
    policy: &InterfacePolicy,
    digest: &str,
) -> Vec<Rule<'static>> {
    let mut out = Vec::new();
    if policy.stateful {
        out.push(rule(
            chain,
            vec![
                matches(
                    ct_state(),
                    Operator::IN,
                    Expression::List(vec![string("established"), string("related")]),
                ),
                Statement::Accept(None),
            ],
            "stateful",
        ));
        out.push(rule(
            chain,
            vec![
                matches(ct_state(), Operator::IN, string("invalid")),
                Statement::Drop(None),
            ],
            "invalid",
        ));
    }
    if policy.allow_ndp {
        let types = [
            "nd-router-solicit",
            "nd-router-advert",
            "nd-neighbor-solicit",
            "nd-neighbor-advert",
            "nd-redirect",
        ];
        out.push(rule(
            chain,
            vec![
                matches(
                    payload("icmpv6", "type"),
                    Operator::EQ,
                    set(types.iter().map(|t| string(t)).collect()),
                ),
                Statement::Accept(None),
            ],
            "ndp",
        ));
    }
    if policy.allow_dhcp {
        // Client side: v4 server->client 68, v6 546; client->server 67, 547.
        let ports: [u32; 2] = match direction {
            Direction::Ingress => [68, 546],
            Direction::Egress => [67, 547],
        };
        out.push(rule(
            chain,
            vec![
                matches(
                    payload("udp", "dport"),
                    Operator::EQ,
                    set(ports.iter().map(|p| Expression::Number(*p)).collect()),
                ),
                Statement::Accept(None),
            ],
            "dhcp",
        ));
    }
    for r in policy.rules.iter().filter(|r| r.direction == direction) {
        out.extend(allow_rules(chain, r));
    }
    out.push(rule(
        chain,
        vec![
            Statement::Counter(Counter::Anonymous(None)),
            Statement::Drop(None),
        ],
        &format!("{DIGEST_PREFIX}{digest}"),
    ));
    out
}

/// The nft rules of one IR rule: one per peer (one per member of a set peer), each the
/// peer's address match, then the protocol match, then accept. An `except` is part of its
/// own peer's rule (`saddr X saddr != E`), so another peer or rule can still allow `E`.
fn allow_rules(chain: &str, r: &IrRule) -> Vec<Rule<'static>> {
    let field = match r.direction {
        Direction::Ingress => "saddr",
        Direction::Egress => "daddr",
    };
    let l4 = l4_match(&r.l4);
    let with = |mut addr: Vec<Statement<'static>>| {
        addr.extend(l4.iter().cloned());
        addr.push(Statement::Accept(None));
        rule(chain, addr, &r.origin)
    };
    let mut out = Vec::new();
    for peer in &r.peers {
        match peer {
            Peer::Any => out.push(with(Vec::new())),
            Peer::Cidr { net, excepts } => {
                let proto = family_word(net);
                let mut addr = vec![matches(payload(proto, field), Operator::EQ, prefix(*net))];
                addr.extend(
                    excepts
                        .iter()
                        .map(|ex| matches(payload(proto, field), Operator::NEQ, prefix(*ex))),
                );
                out.push(with(addr));
            }
            Peer::Set { members, .. } => {
                for m in members {
                    out.push(with(vec![matches(
                        payload(family_word(m), field),
                        Operator::EQ,
                        prefix(*m),
                    )]));
                }
            }
        }
    }
    out
}

fn l4_match(l4: &L4) -> Vec<Statement<'static>> {
    match l4 {
        L4::Any => Vec::new(),
        L4::Protocol(n) => vec![matches(
            meta(MetaKey::L4proto),
            Operator::EQ,
            Expression::Number(u32::from(*n)),
        )],
        L4::Ports(p, ranges) if ranges.as_slice() == [(1, 65535)] => vec![matches(
            meta(MetaKey::L4proto),
            Operator::EQ,
            string(p.word()),
        )],
        L4::Ports(p, ranges) => {
            let item = |&(a, b): &(u16, u16)| {
                if a == b {
                    Expression::Number(u32::from(a))
                } else {
                    Expression::Range(Box::new(Range {
                        range: [
                            Expression::Number(u32::from(a)),
                            Expression::Number(u32::from(b)),
                        ],
                    }))
                }
            };
            let right = match ranges.as_slice() {
                [one] => item(one),
                many => set(many.iter().map(item).collect()),
            };
            vec![matches(payload(p.word(), "dport"), Operator::EQ, right)]
        }
        L4::Icmp {
            v6,
            icmp_type,
            code,
        } => {
            let proto = if *v6 { "icmpv6" } else { "icmp" };
            match icmp_type {
                None => vec![matches(
                    meta(MetaKey::L4proto),
                    Operator::EQ,
                    string(if *v6 { "ipv6-icmp" } else { "icmp" }),
                )],
                Some(t) => {
                    let mut m = vec![matches(
                        payload(proto, "type"),
                        Operator::EQ,
                        Expression::Number(u32::from(*t)),
                    )];
                    if let Some(c) = code {
                        m.push(matches(
                            payload(proto, "code"),
                            Operator::EQ,
                            Expression::Number(u32::from(*c)),
                        ));
                    }
                    m
                }
            }
        }
    }
}

fn family_word(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "ip",
        IpNet::V6(_) => "ip6",
    }
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn ct_state() -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: "state".into(),
        family: None,
        dir: None,
    }))
}

fn set(items: Vec<Expression<'static>>) -> Expression<'static> {
    Expression::Named(NamedExpression::Set(
        items.into_iter().map(SetItem::Element).collect(),
    ))
}

/// The comment of a rule: its origin, shortened with a digest when nft would refuse it.
pub fn comment(origin: &str) -> String {
    if origin.len() <= MAX_COMMENT {
        return origin.to_owned();
    }
    let mut cut = MAX_COMMENT - 18;
    while !origin.is_char_boundary(cut) {
        cut -= 1;
    }
    let hash: String = Sha256::digest(origin.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}~{hash}", &origin[..cut])
}

fn rule(chain: &str, expr: Vec<Statement<'static>>, origin: &str) -> Rule<'static> {
    Rule {
        family: FAMILY,
        table: TABLE.into(),
        chain: Cow::Owned(chain.to_owned()),
        expr: Cow::Owned(expr),
        handle: None,
        index: None,
        comment: Some(comment(origin).into()),
    }
}
