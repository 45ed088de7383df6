//! Policy routing rules (`ip rule`).

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::Result;
use crate::family::Family;
use crate::netlink::Netlink;

/// A policy rule sending matching traffic to a routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Address family the rule applies to.
    pub family: Family,
    /// Priority (`pref`); the kernel picks one when `None`.
    pub priority: Option<u32>,
    /// Table to look up.
    pub table: u32,
    /// Source prefix to match.
    pub src: Option<IpNet>,
    /// Destination prefix to match.
    pub dst: Option<IpNet>,
    /// Incoming interface name to match.
    pub iif: Option<String>,
    /// Outgoing interface name to match.
    pub oif: Option<String>,
    /// Firewall mark to match (with the full mask).
    pub fwmark: Option<u32>,
}

impl Rule {
    /// A rule of `family` that looks up `table` for all traffic; set the
    /// match fields afterwards.
    pub fn new(family: Family, table: u32) -> Rule {
        Rule {
            family,
            priority: None,
            table,
            src: None,
            dst: None,
            iif: None,
            oif: None,
            fwmark: None,
        }
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(p) = self.priority {
            s.push_str(&format!("pref {p} "));
        }
        if let Some(src) = self.src {
            s.push_str(&format!("from {src} "));
        }
        if let Some(dst) = self.dst {
            s.push_str(&format!("to {dst} "));
        }
        if let Some(i) = &self.iif {
            s.push_str(&format!("iif {i} "));
        }
        if let Some(o) = &self.oif {
            s.push_str(&format!("oif {o} "));
        }
        if let Some(m) = self.fwmark {
            s.push_str(&format!("fwmark {m:#x} "));
        }
        s.push_str(&format!("table {}", self.table));
        s
    }

    fn to_message(&self) -> RuleMessage {
        let mut msg = RuleMessage::default();
        msg.header.family = Family::to_af(Some(self.family));
        msg.header.table = u8::try_from(self.table).unwrap_or(0);
        msg.header.action = RuleAction::ToTable;
        let a = &mut msg.attributes;
        a.push(RuleAttribute::Table(self.table));
        if let Some(p) = self.priority {
            a.push(RuleAttribute::Priority(p));
        }
        if let Some(src) = self.src {
            msg.header.src_len = src.prefix_len();
            a.push(RuleAttribute::Source(src.network()));
        }
        if let Some(dst) = self.dst {
            msg.header.dst_len = dst.prefix_len();
            a.push(RuleAttribute::Destination(dst.network()));
        }
        if let Some(i) = &self.iif {
            a.push(RuleAttribute::Iifname(i.clone()));
        }
        if let Some(o) = &self.oif {
            a.push(RuleAttribute::Oifname(o.clone()));
        }
        if let Some(m) = self.fwmark {
            a.push(RuleAttribute::FwMark(m));
            a.push(RuleAttribute::FwMask(u32::MAX));
        }
        msg
    }

    fn from_message(msg: &RuleMessage) -> Option<Rule> {
        let family = Family::from_af(msg.header.family)?;
        let mut rule = Rule::new(family, u32::from(msg.header.table));
        let prefix = |ip: IpAddr, len: u8| IpNet::new(ip, len).ok();
        for attr in &msg.attributes {
            match attr {
                RuleAttribute::Table(t) => rule.table = *t,
                RuleAttribute::Priority(p) => rule.priority = Some(*p),
                RuleAttribute::Source(ip) => rule.src = prefix(*ip, msg.header.src_len),
                RuleAttribute::Destination(ip) => rule.dst = prefix(*ip, msg.header.dst_len),
                RuleAttribute::Iifname(i) => rule.iif = Some(i.clone()),
                RuleAttribute::Oifname(o) => rule.oif = Some(o.clone()),
                RuleAttribute::FwMark(m) => rule.fwmark = Some(*m),
                _ => {}
            }
        }
        Some(rule)
    }
}

impl Netlink {
    /// The rules of one family, including the kernel's defaults.
    pub fn rules(&mut self, family: Family) -> Result<Vec<Rule>> {
        let mut msg = RuleMessage::default();
        msg.header.family = Family::to_af(Some(family));
        let replies = self.dump(RouteNetlinkMessage::GetRule(msg), "list rules")?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRule(m) => Rule::from_message(m),
                _ => None,
            })
            .collect())
    }

    /// Adds a rule; fails with [`crate::Error::is_exists`] if an identical
    /// one exists.
    pub fn add_rule(&mut self, rule: &Rule) -> Result<()> {
        let op = format!("add rule {}", rule.describe());
        self.execute(
            RouteNetlinkMessage::NewRule(rule.to_message()),
            NLM_F_CREATE | NLM_F_EXCL,
            &op,
        )
    }

    /// Deletes the first rule matching every field that is set.
    pub fn del_rule(&mut self, rule: &Rule) -> Result<()> {
        let op = format!("delete rule {}", rule.describe());
        self.execute(RouteNetlinkMessage::DelRule(rule.to_message()), 0, &op)
    }
}
