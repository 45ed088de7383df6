//! CHECK: the interface's chains and rules, as listed by the kernel, against a fresh
//! rendering of the same policy. Compared: every chain (hook chains' type, hook, priority
//! and policy), each chain's rules in order by comment and statement count, and the digest
//! in the final rule's comment. Raw expressions are not compared: nft lists them back
//! normalised (a one-element set as its element, numbers as names).

use nftables::schema::{Chain, NfListObject, NfObject, Nftables};

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
        let listed: Vec<(String, usize)> = objects()
            .filter_map(|o| match o {
                NfListObject::Rule(r) if r.chain == want.name => Some((
                    r.comment.as_deref().unwrap_or_default().to_owned(),
                    r.expr.len(),
                )),
                _ => None,
            })
            .collect();
        let wanted: Vec<(String, usize)> = expected
            .rules
            .iter()
            .filter(|r| r.chain == want.name)
            .map(|r| {
                (
                    r.comment.as_deref().unwrap_or_default().to_owned(),
                    r.expr.len(),
                )
            })
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
                    "rule {i} of chain {} is {:?} with {} statements, the policy's is {:?} with {}",
                    want.name, got.0, got.1, want_rule.0, want_rule.1
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
