//! The agent proper: the node's datastore, the pool manager that keeps the warm pool with
//! EC2, and the calls the plugin makes. Decisions come from the pure core (`eni_ip`); this
//! module performs them in EC2 and records the outcomes.
//!
//! Two locks, always taken in this order: `pool_ops` (async) serialises every change made
//! in EC2 (the pool loop, and an ADD that must grow the pool now), and `state` (a plain
//! mutex, never held across an await) guards the datastore. An ADD that hits the warm pool
//! takes only `state`.

mod calls;
mod grow;
mod node_network;
mod pool_loop;
mod reconcile;
mod shrink;
mod startup;
mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use eni_ip::checkpoint::{self, CheckpointData, CheckpointError};
use eni_ip::{DataStore, InstanceLimits, PoolLimits};
use ipnet::Ipv4Net;

use crate::cloud::{Cloud, CloudError};
use crate::metrics::Metrics;
use crate::node::NodeInfo;
use crate::settings::Settings;

pub use node_network::NodeNetworkError;
pub use pool_loop::run_pool_loop;
pub use startup::StartError;

/// The datastore and what the agent keeps beside it per ENI.
#[derive(Debug)]
struct State {
    ds: DataStore,
    /// ENI id → MAC (the datapath finds the ENI's link by it).
    macs: HashMap<String, String>,
    /// ENI id → attachment id (needed to detach it).
    attachments: HashMap<String, String>,
    /// Secondary ENI id → what its node-wide routing was made from (to remove it).
    secondaries: HashMap<String, node_network::SecondaryEni>,
}

/// What only the pool manager's serialised section touches.
#[derive(Debug)]
struct PoolOps {
    last_decrease: Instant,
    last_reconcile: Instant,
    /// No growth before this (the insufficient-CIDR cooldown), and the code that caused it.
    grow_blocked: Option<(Instant, String)>,
    /// Blocks unassigned from EC2 lately: reconcile ignores them in IMDS until then.
    reconcile_cooldown: HashMap<Ipv4Net, Instant>,
}

impl PoolOps {
    fn grow_blocked_for(&self) -> Option<(std::time::Duration, &str)> {
        let (until, code) = self.grow_blocked.as_ref()?;
        let left = until.checked_duration_since(Instant::now())?;
        Some((left, code))
    }
}

/// A pool operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// An EC2 or IMDS call failed.
    #[error("{doing}: {source}")]
    Cloud {
        /// What the agent was doing.
        doing: String,
        /// The failure.
        #[source]
        source: CloudError,
    },
    /// Growth is paused after the subnet ran out of addresses.
    #[error("the subnet is out of addresses ({code}): not growing for another {secs} s")]
    GrowBlocked {
        /// The EC2 error code that paused growth.
        code: String,
        /// Seconds left.
        secs: u64,
    },
    /// A freed ENI could not be detached or deleted (each failure is logged).
    #[error("ENI {eni} could not be detached and deleted")]
    NotFreed {
        /// The ENI.
        eni: String,
    },
    /// The checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A new ENI's node-wide routing could not be made (the ENI was freed again).
    #[error("setting up the network of ENI {eni}: {source}")]
    NodeNetwork {
        /// The ENI.
        eni: String,
        /// The failure.
        #[source]
        source: NodeNetworkError,
    },
}

fn cloud_err(doing: impl Into<String>) -> impl FnOnce(CloudError) -> PoolError {
    let doing = doing.into();
    move |source| PoolError::Cloud { doing, source }
}

/// The running agent of one node.
#[derive(Debug)]
pub struct Agent {
    settings: Settings,
    cloud: Cloud,
    metrics: Arc<Metrics>,
    node: NodeInfo,
    instance: InstanceLimits,
    limits: PoolLimits,
    max_pods: u32,
    state: Mutex<State>,
    pool_ops: tokio::sync::Mutex<PoolOps>,
}

impl Agent {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a datastore that is still consistent
        // (every change is one method call of the core), so keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node this agent runs on.
    pub fn node(&self) -> &NodeInfo {
        &self.node
    }

    /// Writes the checkpoint of `state` atomically (temp file, fsync, rename).
    fn write_checkpoint(&self, state: &State) -> Result<(), CheckpointError> {
        checkpoint::write_atomic(
            &self.settings.checkpoint,
            &CheckpointData::from_datastore(&state.ds),
        )
    }

    /// Writes the checkpoint of the current state (on shutdown).
    pub fn save(&self) -> Result<(), CheckpointError> {
        let state = self.lock();
        self.write_checkpoint(&state)
    }

    /// Brings the pool gauges up to date.
    pub fn update_gauges(&self) {
        let state = self.lock();
        let stats = state.ds.stats();
        let m = &self.metrics;
        m.eni_allocated.set(state.ds.eni_count() as i64);
        m.eni_max.set(i64::from(self.limits.max_enis));
        m.ip_max
            .set(i64::from(self.limits.max_enis) * i64::from(self.limits.max_ips_per_eni));
        m.total_ip_addresses.set(i64::from(stats.total));
        m.assigned_ip_addresses.set(i64::from(stats.assigned));
        m.total_ipv4_prefixes.set(i64::from(stats.total_prefixes));
    }
}
