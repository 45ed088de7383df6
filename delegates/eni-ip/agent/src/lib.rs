//! `eni-ipamd`, the ENI-IP node agent: it keeps the node's warm pool of ENI addresses as the
//! AWS VPC CNI's ipamd does (EC2 and IMDS through the official SDK, the rules from the pure
//! core `eni_ip`) and hands addresses to the `eni-ip` plugin over a Unix socket.
//!
//! - [`settings`]: flags, the AWS VPC CNI's variables, the timers;
//! - [`cloud`]: the EC2 and IMDS seam;
//! - [`agent`]: start-up, the pool manager, the reconcile, the plugin's calls;
//! - [`rpc_server`], [`introspection`], [`metrics`]: what it serves;
//! - [`lifecycle`]: start, ready line, graceful stop.

pub mod agent;
pub mod cloud;
pub mod introspection;
pub mod lifecycle;
pub mod metrics;
pub mod node;
mod private_dir;
pub mod rpc_server;
pub mod service;
pub mod settings;
