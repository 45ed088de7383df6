//! Counts the warm-pool rules are computed from (`GetIPStats`, `GetFreePrefixes`), and the
//! queries that pick where to grow and what may shrink (`GetENINeedsIP`, `FindFreeableCidrs`).

use ipnet::Ipv4Net;

use super::DataStore;
use crate::eni::Eni;

/// A snapshot of the pool (upstream `DataStoreStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Addresses that can be handed out in the current mode, plus held addresses in blocks of
    /// the other mode (they count until released, as upstream's `total--` on release).
    pub total: u32,
    /// Addresses held by allocations.
    pub assigned: u32,
    /// Free addresses still in `IP_COOLDOWN_PERIOD`. They count as available for sizing and
    /// are only skipped when an address is picked, as upstream.
    pub cooling: u32,
    /// Delegated prefixes on all ENIs.
    pub total_prefixes: u32,
    /// Delegated prefixes none of whose addresses is held.
    pub free_prefixes: u32,
}

impl PoolStats {
    /// `total − assigned` (upstream `AvailableAddresses`).
    pub fn available(&self) -> u32 {
        self.total.saturating_sub(self.assigned)
    }
}

impl DataStore {
    /// The pool's counts now.
    pub fn stats(&self) -> PoolStats {
        let now = self.clock.now();
        let cooldown = self.options.ip_cooldown;
        let prefix_mode = self.options.prefix_delegation;
        let mut s = PoolStats {
            assigned: self.allocations.len() as u32,
            ..PoolStats::default()
        };
        for cidr in self.enis.iter().flat_map(Eni::cidrs) {
            if cidr.is_prefix() == prefix_mode {
                s.total += cidr.size();
                s.cooling += cidr.cooling_count(now, cooldown);
            } else {
                s.total += cidr.assigned_count();
            }
            if cidr.is_prefix() {
                s.total_prefixes += 1;
                if cidr.assigned_count() == 0 {
                    s.free_prefixes += 1;
                }
            }
        }
        s
    }

    /// The first ENI (by device index) with fewer than `max_cidrs_per_eni` blocks, skipping
    /// the primary ENI when asked (custom networking gives it no pod addresses).
    pub fn eni_needing_cidrs(&self, max_cidrs_per_eni: u32, skip_primary: bool) -> Option<&Eni> {
        self.enis
            .iter()
            .filter(|e| !(skip_primary && e.primary))
            .find(|e| (e.cidrs.len() as u32) < max_cidrs_per_eni)
    }

    /// The blocks of the current mode on `eni_id` none of whose addresses is held: the only
    /// ones the pool may give back to EC2 (whole blocks, never part of a prefix).
    pub fn freeable_cidrs(&self, eni_id: &str) -> Vec<Ipv4Net> {
        let prefix_mode = self.options.prefix_delegation;
        self.eni(eni_id)
            .map(|e| {
                e.cidrs()
                    .filter(|c| c.is_prefix() == prefix_mode && c.assigned_count() == 0)
                    .map(|c| c.net())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Free blocks of the other mode, by ENI: what ipamd unassigns at start-up after the
    /// mode was switched (`tryUnassignIPsFromENIs` / `tryUnassignPrefixesFromENIs`).
    pub fn other_mode_free_cidrs(&self) -> Vec<(String, Ipv4Net)> {
        let prefix_mode = self.options.prefix_delegation;
        self.enis
            .iter()
            .flat_map(|e| {
                e.cidrs()
                    .filter(move |c| c.is_prefix() != prefix_mode && c.assigned_count() == 0)
                    .map(move |c| (e.id.clone(), c.net()))
            })
            .collect()
    }
}
