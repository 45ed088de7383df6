//! Black-box CNI conformance: drives plugin binaries exactly as a runtime does (env + stdin,
//! stdout + exit code) and reports in the terms of `shared/CONFORMANCE.md`.
//!
//! The same scenario runs against our plugins (links to the multi-call `meta-cni` binary)
//! and the reference plugins from Debian's containernetworking-plugins (`/usr/lib/cni`).

pub mod bridge_scenarios;
pub mod ec2_emulator;
pub mod emulated_vpc;
pub mod eni_agent;
pub mod eni_stand_in;
pub mod inspect;
pub mod kernel_state;
pub mod kube_api;
pub mod kube_node;
pub mod kubelet_stand_in;
pub mod libcni;
pub mod meta_daemon;
pub mod meta_pod;
pub mod nfv_node;
pub mod plugin_set;
pub mod policy_traffic;
pub mod run;
pub mod scripted_plugin;

pub use plugin_set::{meta_cni_binary, PluginSet};
pub use run::{Call, Output};
