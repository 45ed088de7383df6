//! The comment every nftables rule of ours carries: which network and which attachment it
//! belongs to, so DEL and GC find exactly their rules.
//!
//! Comments are limited to 128 bytes and container IDs alone can use half of that, so the
//! tag holds digests: `meta-cni:<network digest>:<attachment digest>`.

use kernel::nft::{self, NftRule};
use nftables::batch::Batch;
use nftables::schema::{Chain, NfListObject, Table};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use sha2::{Digest, Sha256};

const PREFIX: &str = "meta-cni";

fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        // A separator that cannot occur in names keeps ("ab","c") apart from ("a","bc").
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The tag of the rules of one attachment of one network.
pub(crate) fn attachment(network: &str, container_id: &str, ifname: &str) -> String {
    format!(
        "{PREFIX}:{}:{}",
        digest(&[network]),
        digest(&[network, container_id, ifname])
    )
}

/// The digest part of `comment` naming the attachment, when the comment is a tag of
/// `network`'s rules.
pub(crate) fn attachment_of<'a>(network: &str, comment: &'a str) -> Option<&'a str> {
    let rest = comment.strip_prefix(PREFIX)?.strip_prefix(':')?;
    let (net, att) = rest.split_once(':')?;
    (net == digest(&[network])).then_some(att)
}

/// The attachment digest of one attachment, to compare with [`attachment_of`].
pub(crate) fn attachment_digest(network: &str, container_id: &str, ifname: &str) -> String {
    digest(&[network, container_id, ifname])
}

/// An nftables table whose rules carry our tags: DEL finds an attachment's rules in it, GC a
/// network's.
pub(crate) struct TaggedTable {
    /// The table's family.
    pub(crate) family: NfFamily,
    /// The table's name.
    pub(crate) name: &'static str,
}

impl TaggedTable {
    /// The rules of one attachment.
    pub(crate) fn rules_of(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
    ) -> kernel::Result<Vec<NftRule>> {
        let tag = attachment(network, container_id, ifname);
        Ok(nft::table_rules(self.family, self.name)?
            .into_iter()
            .filter(|r| r.comment.as_deref() == Some(tag.as_str()))
            .collect())
    }

    /// Removes the rules of one attachment; none is fine.
    pub(crate) fn del(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
    ) -> kernel::Result<()> {
        let rules = self.rules_of(network, container_id, ifname)?;
        nft::delete_rules(self.family, self.name, &rules)
    }

    /// Every rule of `network`, with its attachment digest.
    pub(crate) fn network_rules(&self, network: &str) -> kernel::Result<Vec<(NftRule, String)>> {
        Ok(nft::table_rules(self.family, self.name)?
            .into_iter()
            .filter_map(|r| {
                let att = attachment_of(network, r.comment.as_deref()?)?.to_string();
                Some((r, att))
            })
            .collect())
    }

    /// A batch that first makes this table and its base chain `chain` (accept policy), if
    /// missing: adding them again is a no-op in nftables, so every ADD can start so.
    pub(crate) fn batch_with_chain(
        &self,
        chain: &'static str,
        kind: NfChainType,
        hook: NfHook,
        priority: i32,
    ) -> Batch<'static> {
        let mut batch = Batch::new();
        batch.add(NfListObject::Table(Table {
            family: self.family,
            name: self.name.into(),
            handle: None,
        }));
        batch.add(NfListObject::Chain(Chain {
            family: self.family,
            table: self.name.into(),
            name: chain.into(),
            _type: Some(kind),
            hook: Some(hook),
            prio: Some(priority),
            policy: Some(NfChainPolicy::Accept),
            ..Chain::default()
        }));
        batch
    }

    /// Deletes rules found by [`TaggedTable::network_rules`].
    pub(crate) fn delete(&self, rules: &[NftRule]) -> kernel::Result<()> {
        nft::delete_rules(self.family, self.name, rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_short_and_round_trip() {
        let long_id = "f".repeat(64);
        let tag = attachment("a-network-with-a-rather-long-name", &long_id, "net15");
        assert!(tag.len() < 128, "{tag}");
        assert_eq!(
            attachment_of("a-network-with-a-rather-long-name", &tag),
            Some(
                attachment_digest("a-network-with-a-rather-long-name", &long_id, "net15").as_str()
            )
        );
        assert_eq!(attachment_of("other", &tag), None);
        assert_eq!(attachment_of("x", "someone else's rule"), None);
        assert_ne!(attachment("n", "ab", "c"), attachment("n", "a", "bc"));
    }
}
