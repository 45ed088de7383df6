//! Kernel operations for meta-cni: network namespaces, rtnetlink (links,
//! addresses, routes, policy rules, neighbours) and sysctl.
//!
//! Everything is synchronous and scoped: a [`Netlink`] handle is bound to the
//! network namespace it was opened in (see [`Netlink::in_netns`]), so callers
//! can configure a pod namespace without moving their thread into it. Only
//! sysctl needs the thread itself inside the namespace; use [`Netns::enter`]
//! (a [`NetnsGuard`] restores the original namespace on drop) or
//! [`Netns::run`]. What rtnetlink does not report about a link, how its MAC
//! was assigned, comes from sysfs ([`addr_assign_type`]).
//!
//! No netlink crate type appears in the public API: the wire format is an
//! implementation detail of this crate.

mod addr_assign;
mod address;
mod error;
mod family;
mod link;
mod neighbour;
mod netlink;
mod netns;
pub mod nft;
mod private_netns;
mod route;
mod rule;
pub mod sysctl;

pub use addr_assign::{addr_assign_type, AddrAssignType};
pub use address::{Address, AddressOptions};
pub use error::{Error, Result};
pub use family::Family;
pub use link::{format_mac, BridgeRequest, BridgeVlan, Link, VethRequest};
pub use neighbour::Neighbour;
pub use netlink::Netlink;
pub use netns::{Netns, NetnsGuard};
pub use private_netns::PrivateNetns;
pub use route::{Route, RouteScope, RT_TABLE_LOCAL, RT_TABLE_MAIN};
pub use rule::Rule;
