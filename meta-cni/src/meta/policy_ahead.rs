//! The policy delegates' transactions started with the ADD, not after their interfaces.
//! A policy's rules depend on its netconf and the interface's name only, which the plan
//! has before any delegate runs; so when the bundled policy delegate (run in this process)
//! is in an attachment's list, its transaction is started in the pod's namespace before the
//! first delegate runs ([`policy::ahead`]) and overlaps the interfaces being made, and the
//! delegate's ADD waits for it instead of applying it again. The rules are the same, in
//! place before ADD returns (before the interface exists, even), and the chain's order and
//! rollback are unchanged.
//!
//! A transaction the chain did not reach (an earlier delegate failed) is undone before the
//! rollback runs, so nothing lands after it and nothing is left behind.

use cni::Request;
use kernel::nft::ahead::{Ahead, Settled};
use kernel::Netns;

use super::attachment::Attachment;
use super::plan;
use super::policy_context;
use crate::delegates::Delegates;

/// The transactions of one ADD, by interface, in the pod's namespace.
pub(crate) struct PolicyAhead {
    started: Vec<(String, Ahead)>,
    netns: Option<Netns>,
}

/// Starts the transaction of every policy delegate of `attachments` that runs in this
/// process. One that cannot start (input the delegate will refuse, nft missing) is left to
/// the delegate, which reports it in its turn, as always.
pub(crate) fn start(
    req: &Request,
    attachments: &[Attachment],
    delegates: &Delegates,
) -> PolicyAhead {
    let mut ahead = PolicyAhead {
        started: Vec::new(),
        netns: None,
    };
    if !policy_context::wanted(attachments) || !delegates.is_bundled(policy_context::POLICY_TYPE) {
        return ahead;
    }
    let netns = match plan::open_pod_netns(req) {
        Ok(netns) => netns,
        Err(e) => {
            tracing::debug!("no policy started ahead: {e}");
            return ahead;
        }
    };
    for att in attachments
        .iter()
        .filter(|a| policy_context::runs_policy(a))
    {
        match start_one(&netns, att) {
            Ok(started) => ahead
                .started
                .extend(started.into_iter().map(|a| (att.ifname.clone(), a))),
            Err(e) => tracing::debug!(ifname = %att.ifname, "policy not started ahead: {e}"),
        }
    }
    ahead.netns = Some(netns);
    ahead
}

/// The transactions of `att`'s policy delegates, started in `netns` with the netconf the
/// chain will give each (`prevResult` aside: the rules do not read it).
fn start_one(netns: &Netns, att: &Attachment) -> Result<Vec<Ahead>, String> {
    let mut started = Vec::new();
    for netconf in policy_context::delegate_netconfs(att).map_err(|e| e.to_string())? {
        let ahead = netns
            .run(|| policy::ahead::start(&netconf, &att.ifname))
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        started.extend(ahead);
    }
    Ok(started)
}

impl PolicyAhead {
    /// Waits for every transaction the chain did not claim. After a failed ADD, each one
    /// that applied is undone (its chain may not have reached the delegate, whose DEL then
    /// never runs); this comes before the rollback, so nothing applies after it.
    pub(crate) fn settle(self, add_failed: bool) {
        let PolicyAhead { started, netns } = self;
        for (ifname, ahead) in started {
            match ahead.settle() {
                Settled::Claimed => {}
                Settled::Unclaimed(Ok(())) if add_failed => {
                    let undone = match &netns {
                        Some(ns) => ns
                            .run(|| policy::ahead::undo(&ifname))
                            .map_err(|e| e.to_string())
                            .and_then(|undone| undone.map_err(|e| e.to_string())),
                        None => Ok(()),
                    };
                    if let Err(e) = undone {
                        tracing::warn!(%ifname, "could not undo the policy started ahead: {e}");
                    }
                }
                // The delegate applied another batch over it (a rendering that differs
                // would be a bug): its rules are the ones in place.
                Settled::Unclaimed(Ok(())) => {
                    tracing::warn!(%ifname, "the policy started ahead was not the delegate's")
                }
                Settled::Unclaimed(Err(e)) => {
                    tracing::debug!(%ifname, "the policy started ahead failed: {e}")
                }
            }
        }
    }
}
