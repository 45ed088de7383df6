//! Updates of a running pod's rules, for the meta-cni daemon: it recomputes an interface's
//! [`InterfacePolicy`] when MultiNetworkPolicies, pods or namespaces change and hands it
//! here, which makes the interface's chains hold it in one transaction inside the pod's
//! netns (see [`crate::transaction`]): established flows are kept, new ones meet the new
//! rules. A policy that enforces nothing removes the interface's chains: NetworkPolicy
//! leaves a pod no policy selects unisolated.

use std::path::Path;

use kernel::Netns;

use crate::error::PolicyError;
use crate::ir::InterfacePolicy;
use crate::{render, transaction};

/// What an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The interface's chains hold the policy now.
    Installed,
    /// The policy enforces nothing: the interface's chains are gone.
    Removed,
    /// The netns is gone (the pod is being torn down): nothing to do.
    NetnsGone,
}

/// Makes `ifname`'s chains in the netns at `netns` hold `policy`, in one transaction.
pub fn apply(netns: &Path, ifname: &str, policy: &InterfacePolicy) -> Result<Applied, PolicyError> {
    let op = || format!("enter netns {}", netns.display());
    let ns = match Netns::open(netns) {
        Ok(ns) => ns,
        Err(e) if e.is_not_found() => return Ok(Applied::NetnsGone),
        Err(source) => return Err(PolicyError::Kernel { op: op(), source }),
    };
    ns.run(|| {
        if policy.enforces_any() {
            transaction::replace(ifname, &render::render(ifname, policy))
                .map(|()| Applied::Installed)
        } else {
            transaction::del(ifname).map(|()| Applied::Removed)
        }
    })
    .map_err(|source| PolicyError::Kernel { op: op(), source })?
}
