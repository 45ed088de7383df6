//! What the pool manager should do next (`updateIPPoolIfRequired`): grow, give blocks back,
//! or detach an ENI. Decisions only; the agent performs them in EC2 and then records the
//! outcome in the datastore.

use ipnet::Ipv4Net;

use super::{
    datastore_prefix_target_state, datastore_target_state, eni_resources_to_allocate,
    extra_prefixes_over_warm_target, has_room_for_eni, is_pool_too_high, is_pool_too_low,
    prefixes_needed, should_remove_extra_enis,
};
use crate::config::WarmPoolConfig;
use crate::datastore::DataStore;
use crate::limits::PoolLimits;

/// What a block count is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidrKind {
    /// Secondary IPv4 addresses (`SecondaryPrivateIpAddressCount`).
    SecondaryIps,
    /// /28 prefixes (`Ipv4PrefixCount`).
    Prefixes,
}

/// How to grow the pool (`tryAssignCidrs`, then `tryAllocateENI`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grow {
    /// Assign `count` more blocks to an ENI that has room (`AssignPrivateIpAddresses`).
    Assign {
        /// The ENI.
        eni_id: String,
        /// How many blocks.
        count: u32,
        /// Of which kind.
        kind: CidrKind,
    },
    /// Every ENI is full: create and attach a new ENI with `count` blocks.
    AttachEni {
        /// How many blocks the new ENI gets at creation.
        count: u32,
        /// Of which kind.
        kind: CidrKind,
    },
    /// Every ENI is full and the ENI limit is reached: nothing can be done.
    AtEniLimit,
}

/// Blocks to give back to EC2 from one ENI (`DeallocCidrs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The ENI.
    pub eni_id: String,
    /// Whole free blocks of the current mode.
    pub cidrs: Vec<Ipv4Net>,
}

/// One tick's decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Set when the pool is too low.
    pub grow: Option<Grow>,
    /// Set when the pool is too high (apply them before `free_eni`, which assumes them).
    pub release: Vec<Release>,
    /// An ENI to detach and delete.
    pub free_eni: Option<String>,
}

/// The decisions for one pool-manager tick, in upstream's order: grow if too low, else give
/// back if too high, then look for an ENI to detach in the state the releases leave.
///
/// One difference: no ENI is detached in a tick that grows. Upstream may do both in one tick,
/// but the per-ENI checks already keep what the targets need, so the only effect would be
/// detaching and re-attaching. The decrease timer (30 s between decreases) is the caller's.
pub fn plan(config: &WarmPoolConfig, limits: &PoolLimits, ds: &DataStore, max_pods: u32) -> Plan {
    let mut out = Plan::default();
    if is_pool_too_low(config, limits, ds, max_pods) {
        out.grow = plan_increase(config, limits, ds);
        if out.grow.is_some() {
            return out;
        }
    } else if is_pool_too_high(config, ds) {
        out.release = plan_decrease(config, ds);
    }
    let mut after = ds.clone();
    for release in &out.release {
        for cidr in &release.cidrs {
            // The blocks were chosen free, so the unforced removal cannot fail.
            let _ = after.remove_cidr(&release.eni_id, *cidr, false);
        }
    }
    if should_remove_extra_enis(config, limits, &after) {
        out.free_eni = after
            .deletable_eni(&config.deletable_targets())
            .map(|e| e.id.clone());
    }
    out
}

/// `increaseDatastorePool` / `tryAssignCidrs`: fill an ENI that has room first, else attach
/// a new ENI. `None` when the targets are already met.
pub fn plan_increase(config: &WarmPoolConfig, limits: &PoolLimits, ds: &DataStore) -> Option<Grow> {
    let target = datastore_target_state(config, ds);
    match target {
        Some(state) if state.short == 0 => return None,
        None if datastore_prefix_target_state(config, ds) == Some(0) => return None,
        _ => {}
    }
    let (kind, per_eni, wanted) = if ds.prefix_delegation() {
        (
            CidrKind::Prefixes,
            limits.max_prefixes_per_eni,
            prefixes_needed(config, ds),
        )
    } else {
        // With IP targets, only the short: allocating a whole ENI's worth would just be
        // released again by the next decrease.
        let wanted = target.map_or(limits.max_ips_per_eni, |s| s.short);
        (CidrKind::SecondaryIps, limits.max_ips_per_eni, wanted)
    };
    if let Some(eni) = ds.eni_needing_cidrs(per_eni, false) {
        let room = per_eni - eni.cidrs().count() as u32;
        return Some(Grow::Assign {
            eni_id: eni.id.clone(),
            count: room.min(wanted),
            kind,
        });
    }
    if has_room_for_eni(limits, ds) {
        return Some(Grow::AttachEni {
            count: eni_resources_to_allocate(config, limits, ds),
            kind,
        });
    }
    Some(Grow::AtEniLimit)
}

/// The step that makes room for one more allocation when an ADD finds no usable address,
/// whatever the targets say (cooling addresses count as available for the targets, so the
/// pool can be "warm enough" and still have nothing to hand out). ipamd's ADD fails and
/// waits for the next pool tick; the agent grows at once instead, by the same rules: the
/// targets' step when they ask for one, else an ENI with room gets what one new block-set
/// would (at least 1), else a new ENI with what the targets would give it (at least 1).
pub fn plan_demand_increase(config: &WarmPoolConfig, limits: &PoolLimits, ds: &DataStore) -> Grow {
    if let Some(grow) = plan_increase(config, limits, ds) {
        return grow;
    }
    let kind = if ds.prefix_delegation() {
        CidrKind::Prefixes
    } else {
        CidrKind::SecondaryIps
    };
    let per_eni = limits.max_cidrs_per_eni();
    if let Some(eni) = ds.eni_needing_cidrs(per_eni, false) {
        let room = per_eni - eni.cidrs().count() as u32;
        return Grow::Assign {
            eni_id: eni.id.clone(),
            count: room.min(eni_resources_to_allocate(config, limits, ds).max(1)),
            kind,
        };
    }
    if has_room_for_eni(limits, ds) {
        return Grow::AttachEni {
            count: eni_resources_to_allocate(config, limits, ds).max(1),
            kind,
        };
    }
    Grow::AtEniLimit
}

/// `tryUnassignCidrsFromAll`: the whole free blocks to give back, `over` of them at most
/// (the IP targets' over, or the free prefixes beyond `WARM_PREFIX_TARGET`), taken ENI by
/// ENI in device-index order.
pub fn plan_decrease(config: &WarmPoolConfig, ds: &DataStore) -> Vec<Release> {
    let mut over = match datastore_target_state(config, ds) {
        Some(state) => state.over,
        None => extra_prefixes_over_warm_target(config, ds),
    } as usize;
    let mut out = Vec::new();
    for eni in ds.enis() {
        if over == 0 {
            break;
        }
        let mut cidrs = ds.freeable_cidrs(&eni.id);
        cidrs.truncate(over);
        if cidrs.is_empty() {
            continue;
        }
        over -= cidrs.len();
        out.push(Release {
            eni_id: eni.id.clone(),
            cidrs,
        });
    }
    out
}
