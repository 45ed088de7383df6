//! Policy routing rules (`ip rule`): add, delete and list, matched on priority, source,
//! destination and table.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::{Error, Result};
use crate::family::Family;
use crate::netlink::Netlink;

/// A policy rule sending matching traffic to a routing table (`ip rule ... lookup T`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Address family the rule applies to.
    pub family: Family,
    /// Priority (`pref`); on add, the kernel picks one when `None`.
    pub priority: Option<u32>,
    /// Table to look up.
    pub table: u32,
    /// Source prefix to match (`from`); `None` is `from all`.
    pub src: Option<IpNet>,
    /// Destination prefix to match (`to`); `None` is `to all`.
    pub dst: Option<IpNet>,
    /// Firewall mark and mask to match (`fwmark M/K`).
    pub fwmark: Option<(u32, u32)>,
}

impl Rule {
    /// A rule of `family` that looks up `table` for all traffic; set the match fields
    /// with [`Rule::from`], [`Rule::to`] and [`Rule::priority`].
    pub fn new(family: Family, table: u32) -> Rule {
        Rule {
            family,
            priority: None,
            table,
            src: None,
            dst: None,
            fwmark: None,
        }
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: u32) -> Rule {
        self.priority = Some(priority);
        self
    }

    /// Matches traffic from `src`.
    pub fn from(mut self, src: IpNet) -> Rule {
        self.src = Some(src);
        self
    }

    /// Matches traffic to `dst`.
    pub fn to(mut self, dst: IpNet) -> Rule {
        self.dst = Some(dst);
        self
    }

    /// Matches packets whose mark, masked with `mask`, is `mark`.
    pub fn fwmark(mut self, mark: u32, mask: u32) -> Rule {
        self.fwmark = Some((mark, mask));
        self
    }

    /// The rule as `ip rule` prints it, for error messages.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(p) = self.priority {
            s.push_str(&format!("pref {p} "));
        }
        match self.src {
            Some(src) => s.push_str(&format!("from {src} ")),
            None => s.push_str("from all "),
        }
        if let Some(dst) = self.dst {
            s.push_str(&format!("to {dst} "));
        }
        if let Some((mark, mask)) = self.fwmark {
            s.push_str(&format!("fwmark {mark:#x}/{mask:#x} "));
        }
        s.push_str(&format!("lookup {}", self.table));
        s
    }

    fn check_family(&self, op: &str) -> Result<()> {
        let mismatched = [self.src, self.dst]
            .into_iter()
            .flatten()
            .any(|net| Family::of(net.addr()) != self.family);
        if mismatched {
            return Err(Error::invalid(op, "a prefix is not of the rule's family"));
        }
        Ok(())
    }

    fn to_message(&self) -> RuleMessage {
        let mut msg = RuleMessage::default();
        msg.header.family = Family::to_af(Some(self.family));
        // Ids above 255 only fit in FRA_TABLE, which is always sent.
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
        if let Some((mark, mask)) = self.fwmark {
            a.push(RuleAttribute::FwMark(mark));
            a.push(RuleAttribute::FwMask(mask));
        }
        msg
    }

    /// A dumped rule; `None` for rules that are not plain table lookups (`goto`,
    /// `blackhole`, ...), which this type cannot describe.
    fn from_message(msg: &RuleMessage) -> Option<Rule> {
        if msg.header.action != RuleAction::ToTable {
            return None;
        }
        let family = Family::from_af(msg.header.family)?;
        let mut rule = Rule::new(family, u32::from(msg.header.table));
        // Every rule in the kernel has a priority; it leaves FRA_PRIORITY out for 0.
        rule.priority = Some(0);
        let prefix = |ip: IpAddr, len: u8| IpNet::new(ip, len).ok();
        for attr in &msg.attributes {
            match attr {
                RuleAttribute::Table(t) => rule.table = *t,
                RuleAttribute::Priority(p) => rule.priority = Some(*p),
                RuleAttribute::Source(ip) => rule.src = prefix(*ip, msg.header.src_len),
                RuleAttribute::Destination(ip) => rule.dst = prefix(*ip, msg.header.dst_len),
                RuleAttribute::FwMark(mark) => {
                    let mask = rule.fwmark.map_or(u32::MAX, |(_, mask)| mask);
                    rule.fwmark = Some((*mark, mask));
                }
                RuleAttribute::FwMask(mask) => {
                    let mark = rule.fwmark.map_or(0, |(mark, _)| mark);
                    rule.fwmark = Some((mark, *mask));
                }
                _ => {}
            }
        }
        Some(rule)
    }
}

impl Netlink {
    /// The table-lookup rules of one family, the kernel's defaults included, optionally
    /// only those of one priority. Rules matching more than this type describes (an
    /// interface) are listed by the fields it has.
    pub fn rules(&mut self, family: Family, priority: Option<u32>) -> Result<Vec<Rule>> {
        let mut msg = RuleMessage::default();
        msg.header.family = Family::to_af(Some(family));
        let replies = self.dump(RouteNetlinkMessage::GetRule(msg), "list rules")?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRule(m) => Rule::from_message(m),
                _ => None,
            })
            .filter(|r| priority.is_none() || r.priority == priority)
            .collect())
    }

    /// Adds a rule; fails with [`crate::Error::is_exists`] if an identical one exists.
    pub fn add_rule(&mut self, rule: &Rule) -> Result<()> {
        let op = format!("add rule {}", rule.describe());
        rule.check_family(&op)?;
        self.execute(
            RouteNetlinkMessage::NewRule(rule.to_message()),
            NLM_F_CREATE | NLM_F_EXCL,
            &op,
        )
    }

    /// Deletes the first rule matching every field that is set (an unset priority or
    /// prefix matches any); fails with [`crate::Error::is_not_found`] when none does.
    pub fn del_rule(&mut self, rule: &Rule) -> Result<()> {
        let op = format!("delete rule {}", rule.describe());
        rule.check_family(&op)?;
        self.execute(RouteNetlinkMessage::DelRule(rule.to_message()), 0, &op)
    }
}
