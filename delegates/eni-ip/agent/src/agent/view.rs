//! The introspection views (`/v1/enis`, `/v1/pods`, `/v1/pool`), as JSON. Like ipamd's
//! since v1.23, the ENI view does not name the containers holding each address; `/v1/pods`
//! does, for the node's operator (it is served on loopback only).

use std::net::Ipv4Addr;
use std::time::UNIX_EPOCH;

use serde_json::{json, Value};

use super::Agent;

impl Agent {
    /// Every ENI with its blocks and which addresses are assigned.
    pub fn enis_view(&self) -> Value {
        let state = self.lock();
        let now = state.ds.now();
        let cooldown = state.ds.options().ip_cooldown;
        let enis: Vec<Value> = state
            .ds
            .enis()
            .iter()
            .map(|e| {
                let cidrs: Vec<Value> = e
                    .cidrs()
                    .map(|c| {
                        let first = u32::from(c.net().network());
                        let last = u32::from(c.net().broadcast());
                        let assigned: Vec<String> = (first..=last)
                            .map(Ipv4Addr::from)
                            .filter(|a| c.is_assigned(*a))
                            .map(|a| a.to_string())
                            .collect();
                        json!({
                            "cidr": c.net().to_string(),
                            "isPrefix": c.is_prefix(),
                            "size": c.size(),
                            "assigned": assigned,
                            "cooling": c.cooling_count(now, cooldown),
                        })
                    })
                    .collect();
                json!({
                    "id": e.id,
                    "mac": state.macs.get(&e.id),
                    "deviceNumber": e.device_index,
                    "isPrimary": e.primary,
                    "isTrunk": e.trunk,
                    "isEFA": e.efa,
                    "subnet": e.subnet.to_string(),
                    "assignedIPs": e.assigned_count(),
                    "cidrs": cidrs,
                })
            })
            .collect();
        let stats = state.ds.stats();
        json!({"totalIPs": stats.total, "assignedIPs": stats.assigned, "enis": enis})
    }

    /// Every allocation.
    pub fn pods_view(&self) -> Value {
        let state = self.lock();
        let pods: Vec<Value> = state
            .ds
            .allocations()
            .map(|(k, a)| {
                json!({
                    "network": k.network_name,
                    "containerId": k.container_id,
                    "ifname": k.if_name,
                    "address": a.address.to_string(),
                    "eni": a.eni_id,
                    "deviceNumber": a.device_index,
                    "podNamespace": a.metadata.pod_namespace,
                    "podName": a.metadata.pod_name,
                    "allocatedAtUnixNanos": a.allocated_at.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or_default(),
                })
            })
            .collect();
        Value::Array(pods)
    }

    /// The pool's counts, targets and limits.
    pub fn pool_view(&self) -> Value {
        let state = self.lock();
        let stats = state.ds.stats();
        let c = &self.settings.warm_pool;
        let l = &self.limits;
        let t = &self.settings.timers;
        json!({
            "instanceId": self.node.instance_id,
            "instanceType": self.node.instance_type,
            "enis": state.ds.eni_count(),
            "total": stats.total,
            "assigned": stats.assigned,
            "available": stats.available(),
            "cooling": stats.cooling,
            "totalPrefixes": stats.total_prefixes,
            "freePrefixes": stats.free_prefixes,
            "maxPods": self.max_pods,
            "targets": {
                "warmEniTarget": c.warm_eni_target,
                "warmIpTarget": c.warm_ip_target,
                "minimumIpTarget": c.minimum_ip_target,
                "warmPrefixTarget": c.warm_prefix_target,
                "prefixDelegation": c.prefix_delegation,
                "ipCooldownSeconds": c.ip_cooldown.as_secs_f64(),
            },
            "limits": {
                "instanceMaxEnis": self.instance.max_enis,
                "ipv4PerEni": self.instance.ipv4_per_eni,
                "maxEnis": l.max_enis,
                "maxIpsPerEni": l.max_ips_per_eni,
                "maxPrefixesPerEni": l.max_prefixes_per_eni,
            },
            "timersMs": {
                "pool": t.pool_interval.as_millis() as u64,
                "reconcile": t.reconcile_interval.as_millis() as u64,
                "decrease": t.decrease_interval.as_millis() as u64,
                "insufficientCidrCooldown": t.insufficient_cidr_cooldown.as_millis() as u64,
                "minEniLifetime": t.min_eni_lifetime.as_millis() as u64,
            },
        })
    }
}
