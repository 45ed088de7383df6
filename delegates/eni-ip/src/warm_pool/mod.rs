//! The warm-pool rules of ipamd, as pure functions of the settings, the limits and the
//! datastore. Names follow upstream's functions in `pkg/ipamd/ipamd.go`; the arithmetic is
//! done in signed integers where upstream's is, so negative intermediates clamp the same way.
//!
//! With prefix delegation the "short" and "over" of the IP targets are in prefixes.

#[cfg(test)]
mod doc_tables;
mod plan;
#[cfg(test)]
mod tests;

use crate::config::WarmPoolConfig;
use crate::datastore::DataStore;
use crate::eni::IPS_PER_PREFIX;
use crate::limits::PoolLimits;

pub use plan::{
    plan, plan_decrease, plan_demand_increase, plan_increase, CidrKind, Grow, Plan, Release,
};

/// How far the pool is from the IP targets (`datastoreTargetState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetState {
    /// Addresses (prefixes in prefix mode) to add to meet the targets.
    pub short: u32,
    /// Addresses (whole free prefixes in prefix mode) that may be given back.
    pub over: u32,
}

fn clamp(n: i64) -> u32 {
    n.clamp(0, i64::from(u32::MAX)) as u32
}

fn div_ceil(n: i64, d: i64) -> i64 {
    // Upstream's `DivCeil` on non-negative inputs.
    (n + d - 1).div_euclid(d)
}

/// `datastoreTargetState`: `None` unless `WARM_IP_TARGET` or `MINIMUM_IP_TARGET` is set.
///
/// - `short = max(WARM − available, 0)`, then `max(short, MIN − total)`;
/// - `over = max(min(max(available − WARM, 0), total − MIN), 0)`;
/// - prefix mode: `short = ceil(short / 16)`, and `over` is the free prefixes beyond both
///   `ceil((assigned + WARM) / 16)` and `ceil(MIN / 16)` prefixes.
pub fn datastore_target_state(config: &WarmPoolConfig, ds: &DataStore) -> Option<TargetState> {
    if !config.ip_targets_defined() {
        return None;
    }
    let stats = ds.stats();
    let total = i64::from(stats.total);
    let assigned = i64::from(stats.assigned);
    let available = i64::from(stats.available());
    let warm = i64::from(config.warm_ip_target);
    let min = i64::from(config.minimum_ip_target);

    let short = (warm - available).max(0).max(min - total);
    let over = (available - warm).max(0).min(total - min).max(0);
    if !ds.prefix_delegation() {
        return Some(TargetState {
            short: clamp(short),
            over: clamp(over),
        });
    }
    let per = i64::from(IPS_PER_PREFIX);
    let total_prefixes = i64::from(stats.total_prefixes);
    let needed_for_warm = div_ceil(assigned + warm, per);
    let needed_for_min = div_ceil(min, per);
    let over_prefixes = i64::from(stats.free_prefixes)
        .min(total_prefixes - needed_for_warm)
        .max(0)
        .min(total_prefixes - needed_for_min)
        .max(0);
    Some(TargetState {
        short: clamp(div_ceil(short, per)),
        over: clamp(over_prefixes),
    })
}

/// `datastorePrefixTargetState`: in prefix mode, the prefixes missing to keep
/// `WARM_PREFIX_TARGET` free ones; `None` outside prefix mode.
pub fn datastore_prefix_target_state(config: &WarmPoolConfig, ds: &DataStore) -> Option<u32> {
    if !config.warm_prefix_target_defined() {
        return None;
    }
    let free = i64::from(ds.stats().free_prefixes);
    Some(clamp(i64::from(config.warm_prefix_target) - free))
}

/// `isDatastorePoolTooLow`.
///
/// Never once the pool holds `max_pods` addresses. With IP targets: `short > 0`. Otherwise
/// `available < per × target`, or `available == 0` when the target is 0, where the target
/// is `WARM_ENI_TARGET` and `per` the addresses of a full ENI, or in prefix mode
/// `WARM_PREFIX_TARGET` and 16.
pub fn is_pool_too_low(
    config: &WarmPoolConfig,
    limits: &PoolLimits,
    ds: &DataStore,
    max_pods: u32,
) -> bool {
    let stats = ds.stats();
    if stats.total >= max_pods {
        return false;
    }
    if let Some(state) = datastore_target_state(config, ds) {
        return state.short > 0;
    }
    let (target, per) = if ds.prefix_delegation() {
        (config.warm_prefix_target, IPS_PER_PREFIX)
    } else {
        (config.warm_eni_target, limits.max_ips_per_eni)
    };
    let available = u64::from(stats.available());
    available < u64::from(per) * u64::from(target) || (target == 0 && available == 0)
}

/// `isDatastorePoolTooHigh`: with IP targets, `over > 0`; in prefix mode, more free prefixes
/// than `WARM_PREFIX_TARGET`; otherwise never (`WARM_ENI_TARGET` alone never gives back
/// secondary IPs: only whole ENIs go, through [`should_remove_extra_enis`]).
pub fn is_pool_too_high(config: &WarmPoolConfig, ds: &DataStore) -> bool {
    if let Some(state) = datastore_target_state(config, ds) {
        return state.over > 0;
    }
    if config.warm_prefix_target_defined() {
        return ds.stats().free_prefixes > config.warm_prefix_target;
    }
    false
}

/// `shouldRemoveExtraENIs`: whether to look for an ENI to detach at all.
///
/// Always with IP targets (the per-ENI checks decide). Otherwise when
/// `available ≥ (target + 1) × max IPs per ENI` (target: `WARM_ENI_TARGET`, or
/// `WARM_PREFIX_TARGET` in prefix mode); in prefix mode also whenever some ENI is deletable
/// (upstream `CheckFreeableENIexists`: lowering the prefix target leaves empty ENIs behind).
pub fn should_remove_extra_enis(
    config: &WarmPoolConfig,
    limits: &PoolLimits,
    ds: &DataStore,
) -> bool {
    if config.ip_targets_defined() {
        return true;
    }
    let target = if ds.prefix_delegation() {
        config.warm_prefix_target
    } else {
        config.warm_eni_target
    };
    let available = u64::from(ds.stats().available());
    let enough = available >= (u64::from(target) + 1) * u64::from(limits.max_ips_per_eni);
    if !enough && ds.prefix_delegation() {
        return ds.deletable_eni(&config.deletable_targets()).is_some();
    }
    enough
}

/// `getPrefixesNeeded`: prefixes to add in one step, at least 1; the IP targets' short
/// takes precedence over the prefix target's.
pub fn prefixes_needed(config: &WarmPoolConfig, ds: &DataStore) -> u32 {
    if let Some(state) = datastore_target_state(config, ds) {
        state.short.max(1)
    } else if let Some(short) = datastore_prefix_target_state(config, ds) {
        short.max(1)
    } else {
        1
    }
}

/// `computeExtraPrefixesOverWarmTarget`: free prefixes beyond `WARM_PREFIX_TARGET`.
pub fn extra_prefixes_over_warm_target(config: &WarmPoolConfig, ds: &DataStore) -> u32 {
    if !config.warm_prefix_target_defined() {
        return 0;
    }
    ds.stats()
        .free_prefixes
        .saturating_sub(config.warm_prefix_target)
}

/// `hasRoomForEni`: fewer ENIs than the limit. The caller subtracts unmanaged ENIs (and a
/// slot for a trunk ENI) from [`PoolLimits::max_enis`], as upstream does.
pub fn has_room_for_eni(limits: &PoolLimits, ds: &DataStore) -> bool {
    (ds.eni_count() as u64) < u64::from(limits.max_enis)
}

/// `GetENIResourcesToAllocate`: blocks to ask for with a new ENI. Prefix mode: the prefixes
/// needed, up to an ENI's worth. Otherwise a full ENI, or just the short with IP targets.
pub fn eni_resources_to_allocate(
    config: &WarmPoolConfig,
    limits: &PoolLimits,
    ds: &DataStore,
) -> u32 {
    if ds.prefix_delegation() {
        return prefixes_needed(config, ds).min(limits.max_prefixes_per_eni);
    }
    match datastore_target_state(config, ds) {
        Some(state) => state.short.min(limits.max_ips_per_eni),
        None => limits.max_ips_per_eni,
    }
}
