//! The CNI protocol, as meta-cni and its bundled plugins speak it.
//!
//! - [`Version`]: every spec version from 0.1.0 to 1.1.0 and the rules tied to them.
//! - [`CniResult`]: one result model, printed and parsed in any version.
//! - [`NetConf`], [`ConfList`]: configurations, unknown keys kept.
//! - [`Error`]: the error object and the spec's codes.
//! - [`Plugin`] and [`skeleton`]: env + stdin in, one JSON object out; or, in-process, a
//!   typed invocation and netconf in, a typed result or error out, validated alike.
//! - [`invoke`] and [`chain`]: running delegate plugins and conflists as libcni does, typed
//!   up to the exec boundary.
//! - [`spare_file`]: per-container state files kept for reuse, so pod churn makes no inode.

pub mod args;
pub mod call_env;
pub mod chain;
pub mod error;
pub mod invocation;
pub mod invoke;
mod json_decode;
pub mod logging;
pub mod mac;
pub mod netconf;
pub mod request;
pub mod result;
pub mod skeleton;
pub mod spare_file;
pub mod validate;
pub mod version;

pub use args::CniArgs;
pub use error::{Error, ErrorCode};
pub use invocation::{Command, Invocation, CALL_VARS};
pub use mac::MacAddress;
pub use netconf::{ConfList, NetConf};
pub use request::{EnvSource, ProcessEnv, Request};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};
pub use skeleton::Plugin;
pub use version::Version;
