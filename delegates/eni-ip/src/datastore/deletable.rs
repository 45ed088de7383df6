//! Which ENI the pool may detach (`getDeletableENI` and its `isRequiredFor…` helpers).

use super::DataStore;
use crate::eni::{Eni, IPS_PER_PREFIX};

/// The targets an ENI may be needed for; 0 means the target is not set, as upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeletableTargets {
    /// `WARM_IP_TARGET`.
    pub warm_ip_target: u32,
    /// `MINIMUM_IP_TARGET`.
    pub minimum_ip_target: u32,
    /// `WARM_PREFIX_TARGET` (only consulted in prefix mode).
    pub warm_prefix_target: u32,
}

/// Why an ENI may not be detached, in the order upstream checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotDeletable {
    /// No such ENI.
    #[error("unknown ENI")]
    UnknownEni,
    /// The instance's primary ENI cannot be detached.
    #[error("it is the primary ENI")]
    Primary,
    /// Attached less than the minimum lifetime ago (churn protection).
    #[error("it is too young")]
    TooYoung,
    /// One of its addresses is in `IP_COOLDOWN_PERIOD`.
    #[error("it has an IP in cooldown")]
    IpInCooldown,
    /// Pods hold some of its addresses.
    #[error("it has pods assigned")]
    HasPods,
    /// Without its free addresses the others fall short of `WARM_IP_TARGET`.
    #[error("it is required for WARM_IP_TARGET")]
    RequiredForWarmIpTarget,
    /// Without its addresses the others fall short of `MINIMUM_IP_TARGET`.
    #[error("it is required for MINIMUM_IP_TARGET")]
    RequiredForMinimumIpTarget,
    /// Without its free prefixes the others fall short of `WARM_PREFIX_TARGET`.
    #[error("it is required for WARM_PREFIX_TARGET")]
    RequiredForWarmPrefixTarget,
    /// A trunk ENI belongs to security groups for pods.
    #[error("it is a trunk ENI")]
    Trunk,
    /// An EFA ENI is not the pool's to manage.
    #[error("it is an EFA ENI")]
    Efa,
}

/// `n` rounded up to whole prefixes, in addresses: prefix mode can only keep whole /28s.
fn round_up_to_prefixes(n: u32) -> u64 {
    u64::from(n.div_ceil(IPS_PER_PREFIX)) * u64::from(IPS_PER_PREFIX)
}

impl DataStore {
    /// Whether the ENI `eni_id` may be detached now, and if not, the first reason.
    pub fn check_deletable(
        &self,
        eni_id: &str,
        targets: &DeletableTargets,
    ) -> Result<(), NotDeletable> {
        let eni = self.eni(eni_id).ok_or(NotDeletable::UnknownEni)?;
        let now = self.clock.now();
        if eni.primary {
            return Err(NotDeletable::Primary);
        }
        // An attach time in the future (a clock step) also counts as young.
        let young = now
            .duration_since(eni.attached_at)
            .map_or(true, |age| age < self.options.min_eni_lifetime);
        if young {
            return Err(NotDeletable::TooYoung);
        }
        if eni.has_ip_in_cooldown(now, self.options.ip_cooldown) {
            return Err(NotDeletable::IpInCooldown);
        }
        if eni.has_pods() {
            return Err(NotDeletable::HasPods);
        }
        if targets.warm_ip_target != 0 && self.required_for_warm_ip(targets.warm_ip_target, eni) {
            return Err(NotDeletable::RequiredForWarmIpTarget);
        }
        if targets.minimum_ip_target != 0
            && self.required_for_minimum_ip(targets.minimum_ip_target, eni)
        {
            return Err(NotDeletable::RequiredForMinimumIpTarget);
        }
        if self.options.prefix_delegation
            && targets.warm_prefix_target != 0
            && self.required_for_warm_prefix(targets.warm_prefix_target, eni)
        {
            return Err(NotDeletable::RequiredForWarmPrefixTarget);
        }
        if eni.trunk {
            return Err(NotDeletable::Trunk);
        }
        if eni.efa {
            return Err(NotDeletable::Efa);
        }
        Ok(())
    }

    /// The first ENI (by device index) that may be detached.
    pub fn deletable_eni(&self, targets: &DeletableTargets) -> Option<&Eni> {
        self.enis
            .iter()
            .find(|e| self.check_deletable(&e.id, targets).is_ok())
    }

    /// Removes and returns a deletable ENI, if there is one (`RemoveUnusedENIFromStore`):
    /// the agent then detaches and deletes it in EC2. One per call, as upstream's
    /// `tryFreeENI`, so the pool shrinks gradually.
    pub fn remove_unused_eni(&mut self, targets: &DeletableTargets) -> Option<Eni> {
        let id = self.deletable_eni(targets)?.id.clone();
        self.remove_eni(&id, false).ok().map(|(eni, _)| eni)
    }

    /// Blocks of the current mode on every ENI but `eni`.
    fn others<'a>(&'a self, eni: &'a Eni) -> impl Iterator<Item = &'a crate::eni::Cidr> + 'a {
        let prefix_mode = self.options.prefix_delegation;
        self.enis
            .iter()
            .filter(move |o| o.id != eni.id)
            .flat_map(Eni::cidrs)
            .filter(move |c| c.is_prefix() == prefix_mode)
    }

    fn target_in_addresses(&self, target: u32) -> u64 {
        if self.options.prefix_delegation {
            round_up_to_prefixes(target)
        } else {
            u64::from(target)
        }
    }

    fn required_for_warm_ip(&self, warm_ip_target: u32, eni: &Eni) -> bool {
        let other_free: u64 = self
            .others(eni)
            .map(|c| u64::from(c.size() - c.assigned_count()))
            .sum();
        other_free < self.target_in_addresses(warm_ip_target)
    }

    fn required_for_minimum_ip(&self, minimum_ip_target: u32, eni: &Eni) -> bool {
        let other_total: u64 = self.others(eni).map(|c| u64::from(c.size())).sum();
        other_total < self.target_in_addresses(minimum_ip_target)
    }

    fn required_for_warm_prefix(&self, warm_prefix_target: u32, eni: &Eni) -> bool {
        // Only prefixes count: upstream counts any free block, but in prefix mode the
        // secondary IPs of the other mode are unassigned at start-up.
        let other_free = self
            .others(eni)
            .filter(|c| c.is_prefix() && c.assigned_count() == 0)
            .count() as u32;
        other_free < warm_prefix_target
    }
}
