//! Handing addresses out and taking them back (`AssignPodIPv4Address`,
//! `UnassignPodIPAddress`), and putting restored allocations back in place.

use std::net::Ipv4Addr;
use std::time::SystemTime;

use super::{Allocation, DataStore, DataStoreError};
use crate::key::{AllocationMetadata, IpamKey};

impl DataStore {
    /// Hands an address to `key`.
    ///
    /// Idempotent: a key that already holds an address gets the same one back (a retried
    /// ADD must not leak the first address), with its original metadata. Otherwise the
    /// lowest usable address is taken, walking ENIs by device index, and only blocks of the
    /// current mode: in prefix mode secondary IPs left from the other mode are not used.
    /// Addresses still in `IP_COOLDOWN_PERIOD` are skipped.
    pub fn assign(
        &mut self,
        key: &IpamKey,
        metadata: AllocationMetadata,
    ) -> Result<Allocation, DataStoreError> {
        if let Some(existing) = self.allocations.get(key) {
            return Ok(existing.clone());
        }
        let now = self.clock.now();
        let cooldown = self.options.ip_cooldown;
        let prefix_mode = self.options.prefix_delegation;
        for eni in &mut self.enis {
            let found = eni
                .cidrs
                .values_mut()
                .filter(|c| c.is_prefix() == prefix_mode)
                .find_map(|c| c.first_usable(now, cooldown).map(|a| (c, a)));
            if let Some((cidr, address)) = found {
                cidr.assigned.insert(address);
                cidr.released_at.remove(&address);
                let allocation = Allocation {
                    address,
                    eni_id: eni.id.clone(),
                    device_index: eni.device_index,
                    allocated_at: now,
                    metadata,
                };
                self.allocations.insert(key.clone(), allocation.clone());
                return Ok(allocation);
            }
        }
        Err(DataStoreError::NoAvailableAddress)
    }

    /// Takes back the address of `key`, starting its cooldown.
    ///
    /// Idempotent: releasing a key that holds nothing (a repeated DEL, or a DEL after a
    /// forced ENI removal) returns `None` and changes nothing.
    pub fn release(&mut self, key: &IpamKey) -> Option<Allocation> {
        let allocation = self.allocations.remove(key)?;
        let now = self.clock.now();
        if let Some(cidr) = self
            .enis
            .iter_mut()
            .find(|e| e.id == allocation.eni_id)
            .and_then(|e| e.cidr_containing_mut(allocation.address))
        {
            cidr.assigned.remove(&allocation.address);
            cidr.released_at.insert(allocation.address, now);
        }
        Some(allocation)
    }

    /// Puts back an allocation read from a checkpoint: `address` is matched to whichever
    /// ENI block contains it, of either mode (a pod keeps its address across a mode switch).
    pub fn restore_allocation(
        &mut self,
        key: IpamKey,
        address: Ipv4Addr,
        allocated_at: SystemTime,
        metadata: AllocationMetadata,
    ) -> Result<Allocation, DataStoreError> {
        if let Some(held) = self.allocations.get(&key) {
            return Err(DataStoreError::KeyTaken {
                key,
                address: held.address,
            });
        }
        if let Some((holder, _)) = self.allocations.iter().find(|(_, a)| a.address == address) {
            return Err(DataStoreError::AddressTaken {
                address,
                holder: holder.clone(),
            });
        }
        let eni = self
            .enis
            .iter_mut()
            .find(|e| e.cidr_containing(address).is_some())
            .ok_or(DataStoreError::AddressNotFound(address))?;
        let (eni_id, device_index) = (eni.id.clone(), eni.device_index);
        if let Some(cidr) = eni.cidr_containing_mut(address) {
            cidr.assigned.insert(address);
            cidr.released_at.remove(&address);
        }
        let allocation = Allocation {
            address,
            eni_id,
            device_index,
            allocated_at,
            metadata,
        };
        self.allocations.insert(key, allocation.clone());
        Ok(allocation)
    }
}
