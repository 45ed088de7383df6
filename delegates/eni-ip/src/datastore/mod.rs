//! The node's address book, as ipamd's `datastore.DataStore` for one network card: the ENIs
//! and their blocks, and the allocations keyed by [`IpamKey`].
//!
//! Pure state: nothing here talks to EC2 or the kernel. The agent changes EC2 first and
//! then records the outcome here (or, when shrinking, removes here first so no allocation
//! can take a block that is on its way out, as upstream does).

mod assign;
mod deletable;
#[cfg(test)]
mod deletable_tests;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnet::Ipv4Net;

use crate::clock::Clock;
use crate::eni::{Cidr, Eni, PREFIX_LEN};
use crate::key::{AllocationMetadata, IpamKey};

pub use deletable::{DeletableTargets, NotDeletable};
pub use stats::PoolStats;

/// Upstream's default `IP_COOLDOWN_PERIOD`.
pub const DEFAULT_IP_COOLDOWN: Duration = Duration::from_secs(30);
/// Upstream's `minENILifeTime`: an ENI younger than this is never detached.
pub const MIN_ENI_LIFETIME: Duration = Duration::from_secs(60);

/// Why the datastore refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataStoreError {
    /// No ENI with this id.
    #[error("unknown ENI {0}")]
    UnknownEni(String),
    /// An ENI with this id is already known.
    #[error("ENI {0} is already in the datastore")]
    DuplicateEni(String),
    /// The block overlaps one already on some ENI.
    #[error("{cidr} overlaps {existing} already on ENI {eni}")]
    CidrOverlap {
        /// The block being added.
        cidr: Ipv4Net,
        /// The block it overlaps.
        existing: Ipv4Net,
        /// The ENI holding `existing`.
        eni: String,
    },
    /// Only /32 secondary IPs and /28 prefixes exist on ENIs.
    #[error("{0} is neither a /32 secondary IP nor a /28 prefix")]
    UnsupportedCidr(Ipv4Net),
    /// The block is not on this ENI.
    #[error("{cidr} is not on ENI {eni}")]
    UnknownCidr {
        /// The block.
        cidr: Ipv4Net,
        /// The ENI.
        eni: String,
    },
    /// Allocations hold addresses of the block or ENI and the removal was not forced.
    #[error("{what} holds {assigned} assigned address(es)")]
    InUse {
        /// The block or ENI.
        what: String,
        /// How many of its addresses are held.
        assigned: u32,
    },
    /// Every usable address is held or cooling down.
    #[error("no available IP addresses")]
    NoAvailableAddress,
    /// The address is on no ENI (restoring an allocation).
    #[error("{0} is not on any ENI")]
    AddressNotFound(Ipv4Addr),
    /// The address is already held by another key (restoring an allocation).
    #[error("{address} is already assigned to {holder}")]
    AddressTaken {
        /// The address.
        address: Ipv4Addr,
        /// The key holding it.
        holder: IpamKey,
    },
    /// The key already holds a different address (restoring an allocation).
    #[error("{key} already holds {address}")]
    KeyTaken {
        /// The key.
        key: IpamKey,
        /// The address it holds.
        address: Ipv4Addr,
    },
}

/// One address handed to one attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The address.
    pub address: Ipv4Addr,
    /// The ENI it lives on.
    pub eni_id: String,
    /// That ENI's device index (it picks the pod's route table).
    pub device_index: u32,
    /// When it was handed out (the checkpoint's `allocationTimestamp`).
    pub allocated_at: SystemTime,
    /// Who it was handed to.
    pub metadata: AllocationMetadata,
}

/// The knobs of the datastore itself; the warm-pool targets live in [`crate::WarmPoolConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataStoreOptions {
    /// Hand out addresses from /28 prefixes instead of secondary IPs
    /// (`ENABLE_PREFIX_DELEGATION`).
    pub prefix_delegation: bool,
    /// `IP_COOLDOWN_PERIOD`: how long a released address stays out of circulation.
    pub ip_cooldown: Duration,
    /// How young an ENI may be and still not be detached (`minENILifeTime`).
    pub min_eni_lifetime: Duration,
}

impl Default for DataStoreOptions {
    fn default() -> Self {
        DataStoreOptions {
            prefix_delegation: false,
            ip_cooldown: DEFAULT_IP_COOLDOWN,
            min_eni_lifetime: MIN_ENI_LIFETIME,
        }
    }
}

/// The ENIs of the node and who holds which of their addresses.
#[derive(Debug, Clone)]
pub struct DataStore {
    /// By device index, so every walk (assignment, deletion) is deterministic; upstream walks
    /// a Go map, in random order.
    enis: Vec<Eni>,
    allocations: BTreeMap<IpamKey, Allocation>,
    options: DataStoreOptions,
    clock: Arc<dyn Clock>,
}

impl DataStore {
    /// An empty datastore.
    pub fn new(options: DataStoreOptions, clock: Arc<dyn Clock>) -> Self {
        DataStore {
            enis: Vec::new(),
            allocations: BTreeMap::new(),
            options,
            clock,
        }
    }

    /// Its options.
    pub fn options(&self) -> DataStoreOptions {
        self.options
    }

    /// Whether addresses come from prefixes.
    pub fn prefix_delegation(&self) -> bool {
        self.options.prefix_delegation
    }

    /// The clock's current time.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// The ENIs, by device index.
    pub fn enis(&self) -> &[Eni] {
        &self.enis
    }

    /// The ENI with this id.
    pub fn eni(&self, id: &str) -> Option<&Eni> {
        self.enis.iter().find(|e| e.id == id)
    }

    /// How many ENIs are known.
    pub fn eni_count(&self) -> usize {
        self.enis.len()
    }

    /// Every allocation, by key.
    pub fn allocations(&self) -> impl Iterator<Item = (&IpamKey, &Allocation)> {
        self.allocations.iter()
    }

    /// The allocation of `key`.
    pub fn allocation(&self, key: &IpamKey) -> Option<&Allocation> {
        self.allocations.get(key)
    }

    /// Adds an ENI. Any blocks it carries are checked as [`DataStore::add_cidr`] would.
    pub fn add_eni(&mut self, eni: Eni) -> Result<(), DataStoreError> {
        if self.eni(&eni.id).is_some() {
            return Err(DataStoreError::DuplicateEni(eni.id));
        }
        let cidrs: Vec<Ipv4Net> = eni.cidrs.keys().copied().collect();
        let mut bare = eni;
        bare.cidrs.clear();
        let id = bare.id.clone();
        let at = self
            .enis
            .partition_point(|e| e.device_index <= bare.device_index);
        self.enis.insert(at, bare);
        for cidr in cidrs {
            if let Err(e) = self.add_cidr(&id, cidr) {
                self.enis.retain(|e| e.id != id);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Records a secondary IP (a /32) or a delegated prefix (a /28) on an ENI.
    pub fn add_cidr(&mut self, eni_id: &str, cidr: Ipv4Net) -> Result<(), DataStoreError> {
        let cidr = cidr.trunc();
        if cidr.prefix_len() != 32 && cidr.prefix_len() != PREFIX_LEN {
            return Err(DataStoreError::UnsupportedCidr(cidr));
        }
        for eni in &self.enis {
            if let Some(existing) = eni
                .cidrs
                .keys()
                .find(|c| c.contains(&cidr.network()) || cidr.contains(&c.network()))
            {
                return Err(DataStoreError::CidrOverlap {
                    cidr,
                    existing: *existing,
                    eni: eni.id.clone(),
                });
            }
        }
        let eni = self.eni_mut(eni_id)?;
        eni.cidrs.insert(cidr, Cidr::new(cidr));
        Ok(())
    }

    /// Removes a block from an ENI. Unless `force`, a block with held addresses is refused;
    /// forced (the block vanished from EC2), its allocations are dropped and returned.
    pub fn remove_cidr(
        &mut self,
        eni_id: &str,
        cidr: Ipv4Net,
        force: bool,
    ) -> Result<Vec<(IpamKey, Allocation)>, DataStoreError> {
        let cidr = cidr.trunc();
        let eni = self.eni_mut(eni_id)?;
        let Some(block) = eni.cidrs.get(&cidr) else {
            return Err(DataStoreError::UnknownCidr {
                cidr,
                eni: eni_id.to_string(),
            });
        };
        if !force && !block.assigned.is_empty() {
            return Err(DataStoreError::InUse {
                what: cidr.to_string(),
                assigned: block.assigned_count(),
            });
        }
        eni.cidrs.remove(&cidr);
        Ok(self.drop_allocations(|a| a.eni_id == eni_id && cidr.contains(&a.address)))
    }

    /// Removes an ENI. Unless `force`, an ENI with held addresses is refused; forced (the
    /// ENI was detached behind our back), its allocations are dropped and returned.
    pub fn remove_eni(
        &mut self,
        eni_id: &str,
        force: bool,
    ) -> Result<(Eni, Vec<(IpamKey, Allocation)>), DataStoreError> {
        let eni = self.eni_mut(eni_id)?;
        if !force && eni.has_pods() {
            return Err(DataStoreError::InUse {
                what: format!("ENI {eni_id}"),
                assigned: eni.assigned_count(),
            });
        }
        let at = self
            .enis
            .iter()
            .position(|e| e.id == eni_id)
            .ok_or_else(|| DataStoreError::UnknownEni(eni_id.to_string()))?;
        let eni = self.enis.remove(at);
        let dropped = self.drop_allocations(|a| a.eni_id == eni_id);
        Ok((eni, dropped))
    }

    fn eni_mut(&mut self, id: &str) -> Result<&mut Eni, DataStoreError> {
        self.enis
            .iter_mut()
            .find(|e| e.id == id)
            .ok_or_else(|| DataStoreError::UnknownEni(id.to_string()))
    }

    fn drop_allocations(
        &mut self,
        matches: impl Fn(&Allocation) -> bool,
    ) -> Vec<(IpamKey, Allocation)> {
        let keys: Vec<IpamKey> = self
            .allocations
            .iter()
            .filter(|(_, a)| matches(a))
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| self.allocations.remove(&k).map(|a| (k, a)))
            .collect()
    }
}
