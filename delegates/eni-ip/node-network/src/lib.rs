//! The node-wide part of the ENI datapath, which the agent owns (research `eni.md` 2.3–2.5;
//! the plugin owns the per-pod part):
//!
//! - [`setup_eni`]: a secondary ENI, found by its MAC, gets its primary address, a route
//!   table of its own (`device index + 1`) with a default route via the subnet's gateway,
//!   and rule 32765 `from <its primary address> lookup <table>`, so what the node sends from
//!   that address leaves through it; [`teardown_eni`] removes them when it is freed.
//! - [`setup_host`]: rule 1024 `fwmark 0x80/0x80 lookup main`, loose reverse-path filtering on
//!   the primary ENI, and one nftables table: pods' connections leaving the VPC are marked,
//!   the mark steers them to the main table (out of the primary ENI), where they are SNATed
//!   to the node's primary address; NodePort connections arriving on the primary ENI are
//!   marked so their replies leave the way they came. With an external NAT only the NodePort
//!   marking stays. [`teardown_host`] removes all of it.
//!
//! Everything is idempotent, applies to the calling thread's network namespace, and goes
//! through the kernel crate (netlink, `nft` transactions).

mod eni;
mod error;
mod host;
mod host_network;
mod snat;

pub use eni::{route_table, setup_eni, teardown_eni, EniNetwork, FROM_ENI_PRIORITY};
pub use error::Error;
pub use host::{setup_host, teardown_host};
pub use host_network::{HostNetwork, CONNMARK, HOST_RULE_PRIORITY};
pub use snat::{ruleset, TABLE};
