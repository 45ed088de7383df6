//! ADD's transaction started before the chain reaches the delegate. The rules name the
//! interface, not its index, and nothing in them comes from `prevResult`, so a runner that
//! has the delegate's netconf before the interface plugin runs (the meta plugin, running
//! this delegate in its own process) starts the transaction at once; it then overlaps the
//! interface being made, and the delegate's ADD, rendering the same batch, waits for it
//! instead of applying it again (see `kernel::nft::ahead`). The rules still exist before
//! ADD returns, now even before the interface does.

use kernel::nft::ahead::{Ahead, Spawned};

use crate::attachment::add_rendering;
use crate::config::Config;
use crate::error::PolicyError;
use crate::transaction;

fn op(ifname: &str) -> String {
    format!("install the policy of {ifname}")
}

/// Starts, in the calling thread's namespace, the nft process that will apply ADD's
/// transaction for `ifname`; [`start`] gives it the batch. Its process start then overlaps
/// what the runner does before (rendering, writing its cache).
pub fn spawn(ifname: &str) -> Result<Spawned, PolicyError> {
    let op = op(ifname);
    kernel::nft::ahead::spawn(&op).map_err(|source| PolicyError::Kernel { op, source })
}

/// Gives `spawned` (from [`spawn`] in the pod's namespace) the transaction ADD would apply
/// for `ifname` under `netconf` (the delegate's netconf but for `prevResult`); `None` when
/// the policy enforces nothing, so ADD installs nothing (the process is killed, having read
/// nothing). Invalid input is the error ADD would give.
pub fn start(
    spawned: Spawned,
    netconf: &cni::NetConf,
    ifname: &str,
) -> Result<Option<Ahead>, PolicyError> {
    let Some(rendered) = add_rendering(&Config::parse(netconf)?, ifname)? else {
        return Ok(None);
    };
    spawned
        .start(transaction::add_batch(&rendered, false))
        .map(Some)
        .map_err(|source| PolicyError::Kernel {
            op: op(ifname),
            source,
        })
}

/// Undoes a transaction started ahead that no ADD claimed (the chain failed before the
/// delegate ran): DEL's transaction, in the calling thread's namespace.
pub fn undo(ifname: &str) -> Result<(), PolicyError> {
    transaction::del(ifname)
}
