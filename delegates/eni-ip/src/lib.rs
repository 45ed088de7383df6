//! The pure core of the ENI-IP node agent: what the AWS VPC CNI's `ipamd` decides, without
//! AWS, the kernel or an async runtime, so every rule is unit-tested with an injected clock.
//!
//! - [`datastore`]: the node's ENIs, their secondary IPs and /28 prefixes, and the
//!   allocations keyed by [`IpamKey`], with `IP_COOLDOWN_PERIOD` and the deletable-ENI rules;
//! - [`warm_pool`]: the `WARM_ENI_TARGET` / `WARM_IP_TARGET` / `MINIMUM_IP_TARGET` /
//!   `WARM_PREFIX_TARGET` arithmetic and the next step of the pool manager;
//! - [`checkpoint`]: the `vpc-cni-ipam/1` state file, written atomically, and restore;
//! - [`config`] and [`limits`]: the settings and the instance's limits (max pods);
//! - [`naming`]: the pods' host veth names (upstream's);
//! - [`protocol`]: the wire protocol between the plugin and the agent, and its blocking
//!   client.
//!
//! The agent around it (EC2 and IMDS adapters, the socket, the reconcile loop, metrics)
//! performs the decisions and records their outcomes here.

pub mod checkpoint;
mod clock;
pub mod config;
pub mod datastore;
mod eni;
mod key;
pub mod limits;
pub mod naming;
#[cfg(test)]
mod properties;
pub mod protocol;
#[cfg(test)]
mod test_util;
pub mod warm_pool;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, WarmPoolConfig};
pub use datastore::{Allocation, DataStore, DataStoreError, DataStoreOptions, PoolStats};
pub use eni::{Cidr, Eni, IPS_PER_PREFIX, PREFIX_LEN};
pub use key::{AllocationMetadata, IpamKey};
pub use limits::{InstanceLimits, PoolLimits};
