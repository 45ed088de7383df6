//! The nftables transactions of ADD, DEL and of a running pod's update, each one
//! `nft -j -f -` run from a thread inside the pod's netns: all or nothing.

use std::collections::BTreeSet;

use nftables::batch::Batch;
use nftables::schema::{Chain, NfCmd, NfListObject, NfObject};

use crate::error::PolicyError;
use crate::ir::Direction;
use crate::render::{self, Rendered, FAMILY, HOOK_CHAINS, TABLE};

/// ADD's transaction. The first try creates every chain (`create`: a pure create, the cheap
/// kind of transaction, and the first packet after it meets the policy). Only if a chain
/// already exists (a repeated ADD, which the spec says should not happen) does a second try
/// add and flush the chains before refilling them, still in one transaction.
pub(crate) fn add(ifname: &str, rendered: &Rendered) -> Result<(), PolicyError> {
    let op = format!("install the policy of {ifname}");
    match kernel::nft::apply(add_batch(rendered, false), &op) {
        Err(kernel::Error::Invalid { msg, .. }) if msg.contains("File exists") => {
            kernel::nft::apply(add_batch(rendered, true), &op)
                .map_err(|source| PolicyError::Kernel { op, source })
        }
        other => other.map_err(|source| PolicyError::Kernel { op, source }),
    }
}

/// The ADD batch: table, chains, rules; `refill` makes it idempotent over existing chains.
pub fn add_batch(rendered: &Rendered, refill: bool) -> Batch<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(Rendered::table()));
    for chain in &rendered.chains {
        if refill {
            batch.add(NfListObject::Chain(chain.clone()));
            batch.add_cmd(NfCmd::Flush(nftables::schema::FlushObject::Chain(
                chain.clone(),
            )));
        } else {
            batch.add_cmd(NfCmd::Create(NfListObject::Chain(chain.clone())));
        }
    }
    for rule in &rendered.rules {
        batch.add(NfListObject::Rule(rule.clone()));
    }
    batch
}

/// Every chain an interface may have, whatever its policy was: hook chains first (they
/// jump to the rule chains), as plain chain names.
fn all_chains(ifname: &str) -> Vec<Chain<'static>> {
    let named = |name: String| Chain {
        family: FAMILY,
        table: TABLE.into(),
        name: name.into(),
        ..Chain::default()
    };
    HOOK_CHAINS
        .iter()
        .map(|h| named(h.name(ifname)))
        .chain(
            [Direction::Ingress, Direction::Egress]
                .into_iter()
                .map(|d| named(render::rule_chain(ifname, d))),
        )
        .collect()
}

/// DEL's batch: for each chain of the interface `add` (a no-op when it exists), `flush`,
/// `delete`, in one transaction: idempotent, and nothing of the interface is left. Other
/// interfaces' chains and the table stay.
pub fn del_batch(ifname: &str) -> Batch<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(Rendered::table()));
    let chains = all_chains(ifname);
    for chain in &chains {
        batch.add(NfListObject::Chain(chain.clone()));
    }
    for chain in &chains {
        batch.add_cmd(NfCmd::Flush(nftables::schema::FlushObject::Chain(
            chain.clone(),
        )));
    }
    for chain in chains {
        batch.delete(NfListObject::Chain(chain));
    }
    batch
}

/// Removes every chain of `ifname`.
pub(crate) fn del(ifname: &str) -> Result<(), PolicyError> {
    let op = format!("remove the policy of {ifname}");
    kernel::nft::apply(del_batch(ifname), &op).map_err(|source| PolicyError::Kernel { op, source })
}

/// An update of a running pod: the interface's chains made to hold `rendered` in one
/// transaction. Chains that stay are flushed and refilled, never deleted, so there is no
/// instant without the policy, and conntrack keeps established flows (they pass the
/// `stateful` rule, the first of every rule chain); chains the new policy has no use for
/// go, chains it adds are created. What exists is listed first: the caller holds the
/// container's lock, so nothing of ours changes in between.
pub(crate) fn replace(ifname: &str, rendered: &Rendered) -> Result<(), PolicyError> {
    let op = format!("update the policy of {ifname}");
    let kernel = |source| PolicyError::Kernel {
        op: op.clone(),
        source,
    };
    let existing: BTreeSet<String> = kernel::nft::list_table(FAMILY, TABLE)
        .map_err(kernel)?
        .map(|listing| {
            listing
                .objects
                .iter()
                .filter_map(|o| match o {
                    NfObject::ListObject(NfListObject::Chain(c)) => Some(c.name.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    kernel::nft::apply(replace_batch(ifname, rendered, &existing), &op).map_err(kernel)
}

/// The update batch, given the chain names the table holds now (`existing`): flush every
/// chain of the interface that exists (their jumps go first, so a rule chain can then be
/// deleted), delete the ones `rendered` lacks (hook chains before rule chains), create the
/// ones it adds, then every rule.
pub fn replace_batch(
    ifname: &str,
    rendered: &Rendered,
    existing: &BTreeSet<String>,
) -> Batch<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(Rendered::table()));
    let present: Vec<Chain<'static>> = all_chains(ifname)
        .into_iter()
        .filter(|c| existing.contains(c.name.as_ref()))
        .collect();
    for chain in &present {
        batch.add_cmd(NfCmd::Flush(nftables::schema::FlushObject::Chain(
            chain.clone(),
        )));
    }
    let wanted = |name: &str| rendered.chains.iter().any(|c| c.name == name);
    for chain in present.iter().filter(|c| !wanted(&c.name)) {
        batch.delete(NfListObject::Chain(chain.clone()));
    }
    for chain in rendered
        .chains
        .iter()
        .filter(|c| !existing.contains(c.name.as_ref()))
    {
        batch.add_cmd(NfCmd::Create(NfListObject::Chain(chain.clone())));
    }
    for rule in &rendered.rules {
        batch.add(NfListObject::Rule(rule.clone()));
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::InterfacePolicy;

    fn policy(ingress: bool, egress: bool) -> InterfacePolicy {
        InterfacePolicy {
            ingress,
            egress,
            stateful: true,
            allow_ndp: true,
            allow_dhcp: false,
            rules: Vec::new(),
        }
    }

    /// The commands of a batch, as `verb kind name` words.
    fn commands(batch: Batch<'static>) -> Vec<String> {
        let value = serde_json::to_value(batch.to_nftables()).unwrap();
        value["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|cmd| {
                let (verb, object) = cmd.as_object()?.iter().next()?;
                let (kind, body) = object.as_object()?.iter().next()?;
                let name = body.get("name").or_else(|| body.get("chain"))?;
                Some(format!("{verb} {kind} {}", name.as_str()?))
            })
            .collect()
    }

    #[test]
    fn kept_chains_are_flushed_and_refilled_never_deleted() {
        let rendered = render::render("net1", &policy(true, false));
        let existing: BTreeSet<String> =
            rendered.chains.iter().map(|c| c.name.to_string()).collect();
        let cmds = commands(replace_batch("net1", &rendered, &existing));
        assert!(
            cmds.iter()
                .all(|c| !c.starts_with("delete") && !c.starts_with("create")),
            "{cmds:?}"
        );
        for chain in &existing {
            assert!(cmds.contains(&format!("flush chain {chain}")), "{cmds:?}");
        }
        assert_eq!(
            cmds.iter().filter(|c| c.starts_with("add rule")).count(),
            rendered.rules.len()
        );
    }

    #[test]
    fn a_direction_dropped_loses_its_chains_and_one_added_gets_them() {
        let before = render::render("net1", &policy(true, false));
        let existing: BTreeSet<String> = before.chains.iter().map(|c| c.name.to_string()).collect();
        let after = render::render("net1", &policy(false, true));
        let cmds = commands(replace_batch("net1", &after, &existing));
        let pos = |c: &str| {
            cmds.iter()
                .position(|x| x == c)
                .unwrap_or_else(|| panic!("{c} not in {cmds:?}"))
        };
        // The hook chain goes before the rule chain it jumped to; both after their flush.
        assert!(pos("flush chain net1_hin") < pos("delete chain net1_in"));
        assert!(pos("delete chain net1_hin") < pos("delete chain net1_in"));
        assert!(pos("create chain net1_out") < pos("create chain net1_hout"));
        // Nothing there yet: everything is created.
        let fresh = commands(replace_batch("net1", &after, &BTreeSet::new()));
        assert!(
            fresh
                .iter()
                .all(|c| !c.starts_with("flush") && !c.starts_with("delete")),
            "{fresh:?}"
        );
    }
}
