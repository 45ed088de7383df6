//! CHECK: the interface's chains and rules, as listed by the kernel, against a fresh
//! rendering of the same policy. Compared: every chain (hook chains' type, hook, priority
//! and policy), each chain's rules in order by comment, statement count and the addresses
//! and ports they match, and the digest in the final rule's comment. Raw expressions are not
//! compared: nft lists them back normalised (a one-element set as its element, a host
//! prefix as an address, ICMP types and protocol numbers as names).

use nftables::schema::{Chain, NfListObject, NfObject, Nftables, Rule};
use serde_json::Value;

use crate::error::PolicyError;
use crate::render::Rendered;

/// The first difference between what the kernel lists and `expected`, if any.
pub(crate) fn compare(
    ifname: &str,
    listing: Option<&Nftables<'_>>,
    expected: &Rendered,
) -> Result<(), PolicyError> {
    let tampered = |what: String| PolicyError::Tampered {
        ifname: ifname.to_owned(),
        what,
    };
    let Some(listing) = listing else {
        return Err(tampered(format!(
            "table inet {} is missing",
            crate::render::TABLE
        )));
    };
    let objects = || {
        listing.objects.iter().filter_map(|o| match o {
            NfObject::ListObject(object) => Some(object),
            NfObject::CmdObject(_) => None,
        })
    };
    for want in &expected.chains {
        let found = objects().find_map(|o| match o {
            NfListObject::Chain(c) if c.name == want.name => Some(c),
            _ => None,
        });
        let Some(found) = found else {
            return Err(tampered(format!("chain {} is missing", want.name)));
        };
        if !same_chain(found, want) {
            return Err(tampered(format!(
                "chain {} is not a {:?} hook chain at priority {:?} with policy {:?}",
                want.name, want.hook, want.prio, want.policy
            )));
        }
        let listed: Vec<Summary> = objects()
            .filter_map(|o| match o {
                NfListObject::Rule(r) if r.chain == want.name => Some(summary(r)),
                _ => None,
            })
            .collect();
        let wanted: Vec<Summary> = expected
            .rules
            .iter()
            .filter(|r| r.chain == want.name)
            .map(summary)
            .collect();
        if listed.len() != wanted.len() {
            return Err(tampered(format!(
                "chain {} has {} rules, the policy has {}",
                want.name,
                listed.len(),
                wanted.len()
            )));
        }
        for (i, (got, want_rule)) in listed.iter().zip(&wanted).enumerate() {
            if got != want_rule {
                return Err(tampered(format!(
                    "rule {i} of chain {} is {got:?}, the policy's is {want_rule:?}",
                    want.name
                )));
            }
        }
    }
    Ok(())
}

fn same_chain(found: &Chain<'_>, want: &Chain<'_>) -> bool {
    found._type == want._type
        && found.hook == want.hook
        && found.prio == want.prio
        && found.policy == want.policy
}

/// What CHECK compares of one rule: its comment, its statement count, and the addresses and
/// ports it matches (`saddr`, `daddr`, `dport` matches, each atom as `field op value`,
/// sorted), in a form nft's normalisation does not change.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    comment: String,
    statements: usize,
    matched: Vec<String>,
}

fn summary(rule: &Rule<'_>) -> Summary {
    let mut matched = Vec::new();
    for statement in rule.expr.iter() {
        let Ok(Value::Object(object)) = serde_json::to_value(statement) else {
            continue;
        };
        let Some(m) = object.get("match") else {
            continue;
        };
        let Some(field) = m["left"]["payload"]["field"].as_str() else {
            continue;
        };
        if !matches!(field, "saddr" | "daddr" | "dport") {
            continue;
        }
        let op = m["op"].as_str().unwrap_or_default();
        let mut atoms = Vec::new();
        atoms_of(&m["right"], &mut atoms);
        matched.extend(atoms.into_iter().map(|a| format!("{field} {op} {a}")));
    }
    matched.sort();
    Summary {
        comment: rule.comment.as_deref().unwrap_or_default().to_owned(),
        statements: rule.expr.len(),
        matched,
    }
}

/// The values of a match's right side: numbers, ranges, and addresses as `addr/len` (a bare
/// address is a full-length prefix).
fn atoms_of(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Number(n) => out.push(n.to_string()),
        Value::String(s) => match s.parse::<std::net::IpAddr>() {
            Ok(ip) => out.push(ipnet::IpNet::from(ip).to_string()),
            Err(_) => out.push(s.clone()),
        },
        Value::Array(items) => items.iter().for_each(|i| atoms_of(i, out)),
        Value::Object(o) => {
            if let Some(prefix) = o.get("prefix") {
                out.push(format!(
                    "{}/{}",
                    prefix["addr"].as_str().unwrap_or_default(),
                    prefix["len"]
                ));
            } else if let Some(Value::Array(r)) = o.get("range") {
                let ends: Vec<String> = r.iter().map(Value::to_string).collect();
                out.push(ends.join("-"));
            } else if let Some(set) = o.get("set") {
                atoms_of(set, out);
            }
        }
        _ => {}
    }
}
