//! The policy delegates' transactions started with the ADD, not after their interfaces.
//! A policy's rules depend on its netconf and the interface's name only, which the plan
//! has before any delegate runs; so when the bundled policy delegate (run in this process)
//! is in an attachment's list, its nft is spawned in the pod's namespace as soon as the plan
//! is known, given its batch once the cache is written, before the first delegate runs
//! ([`policy::ahead`]); it overlaps the interfaces being made, and the
//! delegate's ADD waits for it instead of applying it again. The rules are the same, in
//! place before ADD returns (before the interface exists, even), and the chain's order and
//! rollback are unchanged.
//!
//! A transaction the chain did not reach (an earlier delegate failed) is undone before the
//! rollback runs, so nothing lands after it and nothing is left behind.

use cni::{NetConf, Request};
use kernel::nft::ahead::{Ahead, Settled, Spawned};
use kernel::Netns;

use super::attachment::Attachment;
use super::plan;
use super::policy_context;
use crate::delegates::Delegates;

/// The transactions of one ADD, by interface, in the pod's namespace: nft processes
/// spawned once the plan is known, given their batches once the cache is written.
pub(crate) struct PolicyAhead {
    spawned: Vec<(String, NetConf, Spawned)>,
    started: Vec<(String, Ahead)>,
    netns: Option<Netns>,
}

/// Spawns, in the pod's namespace, an nft for every policy delegate of `attachments` that
/// runs in this process: its start overlaps the names check and the cache write that must
/// come before any change. One that cannot start (nft missing, a netconf that does not
/// build) is left to the delegate, which reports it in its turn, as always.
pub(crate) fn spawn(
    req: &Request,
    attachments: &[Attachment],
    delegates: &Delegates,
) -> PolicyAhead {
    let mut ahead = PolicyAhead {
        spawned: Vec::new(),
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
        if let Err(e) = spawn_one(&netns, att, &mut ahead.spawned) {
            tracing::debug!(ifname = %att.ifname, "policy not started ahead: {e}");
        }
    }
    ahead.netns = Some(netns);
    ahead
}

/// An nft in `netns` for each of `att`'s policy delegates, with the netconf the chain will
/// give it (`prevResult` aside: the rules do not read it).
fn spawn_one(
    netns: &Netns,
    att: &Attachment,
    spawned: &mut Vec<(String, NetConf, Spawned)>,
) -> Result<(), String> {
    for netconf in policy_context::delegate_netconfs(att).map_err(|e| e.to_string())? {
        let nft = netns
            .run(|| policy::ahead::spawn(&att.ifname))
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        spawned.push((att.ifname.clone(), netconf, nft));
    }
    Ok(())
}

impl PolicyAhead {
    /// Gives each spawned nft its batch: called once the cache holds the plan, so DEL can
    /// undo what applies. A rendering that fails (input the delegate will refuse) kills its
    /// nft, which read nothing.
    pub(crate) fn start(&mut self) {
        for (ifname, netconf, nft) in std::mem::take(&mut self.spawned) {
            match policy::ahead::start(nft, &netconf, &ifname) {
                Ok(Some(ahead)) => self.started.push((ifname, ahead)),
                Ok(None) => {}
                Err(e) => tracing::debug!(%ifname, "policy not started ahead: {e}"),
            }
        }
    }

    /// Waits for every transaction the chain did not claim. After a failed ADD, each one
    /// that applied is undone (its chain may not have reached the delegate, whose DEL then
    /// never runs); this comes before the rollback, so nothing applies after it.
    pub(crate) fn settle(self, add_failed: bool) {
        let PolicyAhead {
            spawned,
            started,
            netns,
        } = self;
        // Not given a batch (the cache write failed): killed, having read nothing.
        drop(spawned);
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
