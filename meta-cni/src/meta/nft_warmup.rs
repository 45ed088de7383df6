//! `nft` started early for the policy delegate. Most of what the policy's one transaction
//! costs is starting `nft`; when the plan runs the bundled policy delegate (in this process),
//! `nft -j -f -` is started in the pod's namespace before the first delegate runs, so its
//! start overlaps the interfaces being made, and the policy's transaction hands its batch to
//! the waiting process. The rules are the same and still in place before ADD returns.

use cni::Request;

use super::attachment::Attachment;
use super::plan;
use super::policy_context;
use crate::delegates::Delegates;

/// Starts `nft` in the pod's namespace when `attachments` run the bundled policy delegate;
/// `None` otherwise, or when it cannot be started (the delegate then starts its own, as
/// always). The process ends with the returned value if the delegate did not use it.
pub(crate) fn start(
    req: &Request,
    attachments: &[Attachment],
    delegates: &Delegates,
) -> Option<kernel::nft::Prestarted> {
    if !policy_context::wanted(attachments) || !delegates.is_bundled(policy_context::POLICY_TYPE) {
        return None;
    }
    let started = plan::open_pod_netns(req)
        .map_err(|e| e.to_string())
        .and_then(|ns| ns.run(kernel::nft::prestart).map_err(|e| e.to_string()))
        .and_then(|started| started.map_err(|e| e.to_string()));
    match started {
        Ok(started) => Some(started),
        Err(e) => {
            tracing::debug!("nft not started ahead: {e}");
            None
        }
    }
}
