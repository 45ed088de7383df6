//! The comment every nftables rule of ours carries: which network and which attachment it
//! belongs to, so DEL and GC find exactly their rules.
//!
//! Comments are limited to 128 bytes and container IDs alone can use half of that, so the
//! tag holds digests: `meta-cni:<network digest>:<attachment digest>`.

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
