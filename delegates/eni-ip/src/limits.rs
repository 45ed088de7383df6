//! What the instance allows (`initENIAndIPLimits`) and the max-pods arithmetic of the
//! README and `misc/eni-max-pods.txt`.

use crate::config::WarmPoolConfig;
use crate::eni::IPS_PER_PREFIX;

/// The instance type's networking limits (the limits table or `DescribeInstanceTypes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceLimits {
    /// `MaximumNetworkInterfaces`.
    pub max_enis: u32,
    /// `Ipv4AddressesPerInterface`, the ENI's primary address included.
    pub ipv4_per_eni: u32,
}

/// The limits the pool works within on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// `min(MAX_ENI, instance limit)`.
    pub max_enis: u32,
    /// Pod addresses one ENI can carry: `Ipv4AddressesPerInterface − 1` (the primary
    /// address is the ENI's own), × 16 in prefix mode.
    pub max_ips_per_eni: u32,
    /// Prefixes one ENI can carry in prefix mode (`Ipv4AddressesPerInterface − 1`), else 0.
    pub max_prefixes_per_eni: u32,
    /// Addresses come from prefixes.
    pub prefix_delegation: bool,
}

impl PoolLimits {
    /// The limits for `instance` under `config`.
    pub fn new(instance: InstanceLimits, config: &WarmPoolConfig) -> Self {
        let max_enis = config
            .max_eni
            .map_or(instance.max_enis, |cap| cap.min(instance.max_enis));
        let slots = instance.ipv4_per_eni.saturating_sub(1);
        if config.prefix_delegation {
            PoolLimits {
                max_enis,
                max_ips_per_eni: slots * IPS_PER_PREFIX,
                max_prefixes_per_eni: slots,
                prefix_delegation: true,
            }
        } else {
            PoolLimits {
                max_enis,
                max_ips_per_eni: slots,
                max_prefixes_per_eni: 0,
                prefix_delegation: false,
            }
        }
    }

    /// Blocks one ENI can carry in the current mode: secondary IPs, or prefixes.
    pub fn max_cidrs_per_eni(&self) -> u32 {
        if self.prefix_delegation {
            self.max_prefixes_per_eni
        } else {
            self.max_ips_per_eni
        }
    }
}

/// The EKS guidance's cap on max pods in prefix mode for instances with fewer than 30 vCPUs.
pub const PD_MAX_PODS_SMALL: u32 = 110;
/// The EKS guidance's cap on max pods in prefix mode otherwise.
pub const PD_MAX_PODS_LARGE: u32 = 250;

/// `ENIs × (IPv4 per ENI − 1) + 2`: every secondary address of every ENI, plus two
/// host-network pods (aws-node and kube-proxy). m5.large: 3 × (10 − 1) + 2 = 29.
pub fn max_pods(instance: InstanceLimits) -> u32 {
    instance.max_enis * instance.ipv4_per_eni.saturating_sub(1) + 2
}

/// With custom networking the primary ENI carries no pods: `(ENIs − 1) × (IPv4 − 1) + 2`.
pub fn max_pods_custom_networking(instance: InstanceLimits) -> u32 {
    instance.max_enis.saturating_sub(1) * instance.ipv4_per_eni.saturating_sub(1) + 2
}

/// Prefix mode: `ENIs × (IPv4 per ENI − 1) × 16 + 2`, capped by the EKS guidance (110 below
/// 30 vCPUs, else 250): the address count stops being the limit long before that.
pub fn max_pods_prefix_delegation(instance: InstanceLimits, vcpus: u32) -> u32 {
    let cap = if vcpus < 30 {
        PD_MAX_PODS_SMALL
    } else {
        PD_MAX_PODS_LARGE
    };
    let addresses = instance.max_enis * instance.ipv4_per_eni.saturating_sub(1) * IPS_PER_PREFIX;
    (addresses + 2).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_enis: u32, ipv4_per_eni: u32) -> InstanceLimits {
        InstanceLimits {
            max_enis,
            ipv4_per_eni,
        }
    }

    #[test]
    fn max_pods_matches_eni_max_pods_txt() {
        // (type, ENIs, IPv4 per ENI, line of misc/eni-max-pods.txt)
        for (name, enis, ips, want) in [
            ("m5.large", 3, 10, 29),
            ("t3.medium", 3, 6, 17),
            ("c5.xlarge", 4, 15, 58),
            ("m5.4xlarge", 8, 30, 234),
        ] {
            assert_eq!(max_pods(limits(enis, ips)), want, "{name}");
        }
    }

    #[test]
    fn custom_networking_loses_the_primary_eni() {
        assert_eq!(max_pods_custom_networking(limits(3, 10)), 2 * 9 + 2);
    }

    #[test]
    fn prefix_mode_max_pods_is_capped() {
        // t3.small: 3 ENIs × 4 IPs: 3 × 3 × 16 + 2 = 146, capped at 110 (2 vCPUs).
        assert_eq!(max_pods_prefix_delegation(limits(3, 4), 2), 110);
        // m5.large: 3 × 9 × 16 + 2 = 434 → 110; m5.16xlarge (64 vCPUs) → 250.
        assert_eq!(max_pods_prefix_delegation(limits(3, 10), 2), 110);
        assert_eq!(max_pods_prefix_delegation(limits(15, 50), 64), 250);
        // t2.nano-like: 2 ENIs × 2 IPs: 2 × 1 × 16 + 2 = 34, under the cap.
        assert_eq!(max_pods_prefix_delegation(limits(2, 2), 1), 34);
    }

    #[test]
    fn pool_limits_follow_init_eni_and_ip_limits() {
        let m5 = limits(3, 10);
        let plain = PoolLimits::new(m5, &WarmPoolConfig::default());
        assert_eq!(
            (
                plain.max_enis,
                plain.max_ips_per_eni,
                plain.max_prefixes_per_eni
            ),
            (3, 9, 0)
        );
        assert_eq!(plain.max_cidrs_per_eni(), 9);
        let pd = PoolLimits::new(
            m5,
            &WarmPoolConfig {
                prefix_delegation: true,
                max_eni: Some(2),
                ..WarmPoolConfig::default()
            },
        );
        assert_eq!(
            (pd.max_enis, pd.max_ips_per_eni, pd.max_prefixes_per_eni),
            (2, 144, 9)
        );
        assert_eq!(pd.max_cidrs_per_eni(), 9);
        let capped_above = PoolLimits::new(
            m5,
            &WarmPoolConfig {
                max_eni: Some(10),
                ..WarmPoolConfig::default()
            },
        );
        assert_eq!(capped_above.max_enis, 3);
    }
}
