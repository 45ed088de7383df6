//! The plugin's calls (`rpc_handler.go`): AddNetwork, DelNetwork, GC and STATUS. Every
//! assign and release is in the checkpoint before it is answered; if the write fails the
//! change is undone and the call fails, as upstream.

use std::collections::BTreeSet;

use eni_ip::protocol::{
    AddNetwork, AgentError, Assigned, AttachmentKey, Collected, DelNetwork, ErrorCode, Found, Gc,
    Lookup, Released, Status,
};
use eni_ip::warm_pool::{self, Grow};
use eni_ip::{Allocation, AllocationMetadata, DataStoreError, IpamKey};

use super::{Agent, PoolError, State};

/// Growth steps one ADD may take before it gives up (one can only fill the current ENI,
/// the next attaches a new one).
const ADD_GROW_STEPS: usize = 3;

fn error(code: ErrorCode, message: impl Into<String>) -> AgentError {
    AgentError {
        code,
        message: message.into(),
    }
}

fn ipam_key(key: &AttachmentKey) -> Result<IpamKey, AgentError> {
    for (field, value) in [
        ("network", &key.network),
        ("containerId", &key.container_id),
        ("ifname", &key.ifname),
    ] {
        if value.is_empty() {
            return Err(error(
                ErrorCode::BadRequest,
                format!("key.{field} is empty"),
            ));
        }
    }
    Ok(IpamKey::new(&key.network, &key.container_id, &key.ifname))
}

impl Agent {
    /// Hands an address to the attachment: from the warm pool, else after growing the pool
    /// now (under the pool manager's lock), else `NoAvailableAddresses` naming the limit.
    pub async fn add_network(&self, add: AddNetwork) -> Result<Assigned, AgentError> {
        self.metrics.add_ip_req_count.inc();
        let key = ipam_key(&add.key)?;
        let metadata = AllocationMetadata {
            pod_namespace: add.pod_namespace.clone(),
            pod_name: add.pod_name.clone(),
            interfaces_count: 1,
        };
        if let Some(assigned) = self.try_assign(&key, &metadata)? {
            return Ok(assigned);
        }
        let mut ops = self.pool_ops.lock().await;
        let mut last_failure: Option<PoolError> = None;
        for _ in 0..ADD_GROW_STEPS {
            if let Some(assigned) = self.try_assign(&key, &metadata)? {
                return Ok(assigned);
            }
            let step = {
                let state = self.lock();
                warm_pool::plan_demand_increase(&self.settings.warm_pool, &self.limits, &state.ds)
            };
            if step == Grow::AtEniLimit {
                let message = self.limit_message(&self.lock());
                return Err(self.no_address(message));
            }
            if let Err(err) = self.grow(&mut ops, step).await {
                tracing::warn!(key = %key, %err, "growing the pool for an ADD failed");
                last_failure = Some(err);
                break;
            }
        }
        if let Some(assigned) = self.try_assign(&key, &metadata)? {
            return Ok(assigned);
        }
        let message = match last_failure {
            Some(err) => format!("no free address and the pool could not grow: {err}"),
            None => self.limit_message(&self.lock()),
        };
        Err(self.no_address(message))
    }

    fn no_address(&self, message: String) -> AgentError {
        self.metrics.no_available_ip_addresses.inc();
        error(ErrorCode::NoAvailableAddresses, message)
    }

    /// Assigns from the pool and checkpoints; `None` when the pool has no usable address.
    fn try_assign(
        &self,
        key: &IpamKey,
        metadata: &AllocationMetadata,
    ) -> Result<Option<Assigned>, AgentError> {
        let mut state = self.lock();
        let fresh = state.ds.allocation(key).is_none();
        let allocation = match state.ds.assign(key, metadata.clone()) {
            Ok(a) => a,
            Err(DataStoreError::NoAvailableAddress) => return Ok(None),
            Err(err) => {
                return Err(error(
                    ErrorCode::Internal,
                    format!("assigning {key}: {err}"),
                ))
            }
        };
        if fresh {
            if let Err(err) = self.write_checkpoint(&state) {
                state.ds.release(key);
                return Err(error(
                    ErrorCode::Internal,
                    format!("assigning {key}: the checkpoint could not be written: {err}"),
                ));
            }
            tracing::info!(key = %key, address = %allocation.address, eni = %allocation.eni_id, "address assigned");
        }
        Ok(Some(self.assigned(&state, &allocation)))
    }

    fn assigned(&self, state: &State, a: &Allocation) -> Assigned {
        let subnet = state
            .ds
            .eni(&a.eni_id)
            .map_or(self.node.subnet_cidr, |e| e.subnet);
        Assigned {
            address: a.address,
            eni_id: a.eni_id.clone(),
            eni_mac: state.macs.get(&a.eni_id).cloned().unwrap_or_default(),
            device_index: a.device_index,
            route_table: eni_node_network::route_table(a.device_index),
            subnet,
            vpc_cidrs: self.node.vpc_cidrs.clone(),
            node_ip: self.node.primary_ip,
            use_external_snat: self.settings.use_external_snat,
        }
    }

    /// Why nothing can be handed out at the limits, in numbers.
    fn limit_message(&self, state: &State) -> String {
        let stats = state.ds.stats();
        let l = &self.limits;
        let mut msg = if l.prefix_delegation {
            format!(
                "{} allows {} ENIs of {} /28 prefixes each ({} addresses): all {} are assigned",
                self.node.instance_type,
                l.max_enis,
                l.max_prefixes_per_eni,
                l.max_enis * l.max_ips_per_eni,
                stats.assigned
            )
        } else {
            format!(
                "{} allows {} ENIs of {} addresses each: all {} are assigned",
                self.node.instance_type, l.max_enis, l.max_ips_per_eni, stats.assigned
            )
        };
        if l.max_enis < self.instance.max_enis {
            msg.push_str(&format!(
                " (MAX_ENI caps the ENIs at {} of the instance's {})",
                l.max_enis, self.instance.max_enis
            ));
        }
        if stats.cooling > 0 {
            msg.push_str(&format!(
                "; {} released address(es) are in IP_COOLDOWN_PERIOD ({} s)",
                stats.cooling,
                self.settings.warm_pool.ip_cooldown.as_secs()
            ));
        }
        msg
    }

    /// What the attachment holds, changing nothing (the plugin's CHECK).
    pub fn lookup(&self, lookup: Lookup) -> Result<Found, AgentError> {
        let key = ipam_key(&lookup.key)?;
        let state = self.lock();
        let assigned = state
            .ds
            .allocation(&key)
            .map(|allocation| self.assigned(&state, allocation));
        Ok(Found { assigned })
    }

    /// Takes the attachment's address back; an unknown key releases nothing.
    pub fn del_network(&self, del: DelNetwork) -> Result<Released, AgentError> {
        let reason = if del.reason.is_empty() {
            "PodDeleted"
        } else {
            del.reason.as_str()
        };
        self.metrics.del_request(reason);
        let key = ipam_key(&del.key)?;
        let mut state = self.lock();
        let Some(allocation) = state.ds.release(&key) else {
            return Ok(Released { address: None });
        };
        if let Err(err) = self.write_checkpoint(&state) {
            let _ = state.ds.restore_allocation(
                key.clone(),
                allocation.address,
                allocation.allocated_at,
                allocation.metadata.clone(),
            );
            return Err(error(
                ErrorCode::Internal,
                format!("releasing {key}: the checkpoint could not be written: {err}"),
            ));
        }
        tracing::info!(key = %key, address = %allocation.address, reason, "address released");
        Ok(Released {
            address: Some(allocation.address),
        })
    }

    /// Releases every allocation of the network not among the valid attachments.
    pub fn gc(&self, gc: Gc) -> Result<Collected, AgentError> {
        if gc.network.is_empty() {
            return Err(error(ErrorCode::BadRequest, "network is empty"));
        }
        let valid: BTreeSet<(&str, &str)> = gc
            .valid
            .iter()
            .map(|v| (v.container_id.as_str(), v.ifname.as_str()))
            .collect();
        let mut state = self.lock();
        let stale: Vec<IpamKey> = state
            .ds
            .allocations()
            .filter(|(k, _)| {
                k.network_name == gc.network
                    && !valid.contains(&(k.container_id.as_str(), k.if_name.as_str()))
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut released = Vec::new();
        for key in stale {
            if let Some(a) = state.ds.release(&key) {
                self.metrics.del_request("GC");
                released.push((key, a));
            }
        }
        if released.is_empty() {
            return Ok(Collected {
                released: Vec::new(),
            });
        }
        if let Err(err) = self.write_checkpoint(&state) {
            for (key, a) in released {
                let _ = state
                    .ds
                    .restore_allocation(key, a.address, a.allocated_at, a.metadata);
            }
            return Err(error(
                ErrorCode::Internal,
                format!(
                    "GC of {}: the checkpoint could not be written: {err}",
                    gc.network
                ),
            ));
        }
        tracing::info!(network = %gc.network, count = released.len(), "GC released addresses");
        Ok(Collected {
            released: released
                .into_iter()
                .map(|(k, a)| {
                    (
                        AttachmentKey {
                            network: k.network_name,
                            container_id: k.container_id,
                            ifname: k.if_name,
                        },
                        a.address,
                    )
                })
                .collect(),
        })
    }

    /// The pool's state for CNI STATUS.
    pub fn status(&self) -> Status {
        let state = self.lock();
        let stats = state.ds.stats();
        Status {
            ready: true,
            available: stats.available().saturating_sub(stats.cooling),
            assigned: stats.assigned,
            total: stats.total,
            enis: state.ds.eni_count() as u32,
            max_pods: self.max_pods,
        }
    }
}
