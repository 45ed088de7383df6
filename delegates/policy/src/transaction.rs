//! The nftables transactions of ADD and DEL, each one `nft -j -f -` run from a thread inside
//! the pod's netns: all or nothing.

use nftables::batch::Batch;
use nftables::schema::{Chain, NfCmd, NfListObject};

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
