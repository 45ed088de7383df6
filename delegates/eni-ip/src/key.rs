//! What an allocation is keyed by and what it carries, as in ipamd's `IPAMKey` and
//! `IPAMMetadata`.

use std::fmt;

/// Identifies one attachment: the CNI network name, the sandbox's container ID and the
/// interface name inside it. One key holds at most one address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpamKey {
    /// The CNI network name (`aws-cni` upstream; ours comes from the netconf).
    pub network_name: String,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`.
    pub if_name: String,
}

impl IpamKey {
    /// Builds a key from its three parts.
    pub fn new(
        network_name: impl Into<String>,
        container_id: impl Into<String>,
        if_name: impl Into<String>,
    ) -> Self {
        IpamKey {
            network_name: network_name.into(),
            container_id: container_id.into(),
            if_name: if_name.into(),
        }
    }
}

impl fmt::Display for IpamKey {
    // The same rendering as upstream's `IPAMKey.String()`, so logs read alike.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.network_name, self.container_id, self.if_name
        )
    }
}

/// Facts about the pod behind an allocation, kept so a restarted agent can name it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllocationMetadata {
    /// `K8S_POD_NAMESPACE`, empty when unknown.
    pub pod_namespace: String,
    /// `K8S_POD_NAME`, empty when unknown.
    pub pod_name: String,
    /// How many interfaces the pod asked for (0 when unknown; upstream's multi-NIC count).
    pub interfaces_count: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_displays_like_upstream() {
        let key = IpamKey::new("aws-cni", "abc", "eth0");
        assert_eq!(key.to_string(), "aws-cni/abc/eth0");
    }
}
