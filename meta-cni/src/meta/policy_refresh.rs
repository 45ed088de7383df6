//! The daemon's updates of running pods' policy rules: for every attachment cached in a
//! cache directory whose list runs the `policy` delegate, the MultiNetworkPolicy context is
//! gathered again ([`policy_context`]'s functions, from the daemon's watch caches), and when
//! the interface's rendering changes, its chains are replaced in one transaction in the
//! pod's netns ([`policy::live`]) and the cached attachment is rewritten with the new
//! context, so CHECK verifies the new rules. All of it under the container's lock, so an
//! update never interleaves with the pod's ADD, CHECK or DEL.
//!
//! Skipped: entries that run no policy delegate, pods whose netns is gone or that the
//! caches do not hold (being deleted: DEL comes), and pods made again under the same name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;
use policy::ir::InterfacePolicy;
use policy::live::Applied;

use super::attachment::Attachment;
use super::cache::{self, Entry, Slot};
use super::container_lock::ContainerLock;
use super::error::{CacheError, LockError};
use super::pod_object::PodObject;
use super::policy_context::{self, PolicyObjects};

/// Where the refresh reads the cluster: the daemon's watch caches.
pub(crate) trait PolicyLookup {
    /// The pod `namespace/name`, if the caches hold it.
    fn pod(&self, namespace: &str, name: &str) -> Option<Pod>;
    /// What the policy delegates of a pod in `namespace` are given (as ADD gets it).
    fn objects(&self, namespace: &str) -> PolicyObjects;
}

/// Why one pod's update failed; the others go on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RefreshError {
    /// The container's lock could not be taken.
    #[error("lock container {container_id}")]
    Lock {
        /// The container.
        container_id: String,
        /// Why.
        #[source]
        source: LockError,
    },
    /// The cache entry could not be read or rewritten.
    #[error("cache of container {container_id}")]
    Cache {
        /// The container.
        container_id: String,
        /// Why.
        #[source]
        source: CacheError,
    },
    /// The new context does not make a policy (or the cached one no longer parses).
    #[error("policy of {container_id} on {ifname}: {source}")]
    Config {
        /// The container.
        container_id: String,
        /// The interface.
        ifname: String,
        /// The CNI error the delegate would have returned.
        source: Box<cni::Error>,
    },
    /// nft refused the update: the interface keeps its previous rules.
    #[error("update the policy of {container_id} on {ifname}")]
    Apply {
        /// The container.
        container_id: String,
        /// The interface.
        ifname: String,
        /// The delegate's error (nft's message in it).
        #[source]
        source: Box<policy::PolicyError>,
    },
}

/// What one pass did: each interface updated, and each failure.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// (container, interface, what was done) of every interface whose rules changed.
    pub(crate) applied: Vec<(String, String, Applied)>,
    /// Every failure, for the log and the metrics; the next pass tries again.
    pub(crate) failed: Vec<RefreshError>,
}

/// The cache directories a served ADD with a policy delegate used: a daemon follows them
/// beside the ones it was told of.
static FOLLOWED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Follows `dir`'s attachments from now on (a no-op outside the daemon: nothing reads it).
pub(crate) fn follow(dir: &Path) {
    FOLLOWED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(dir.to_path_buf());
}

/// The directories [`follow`] was given.
pub(crate) fn followed() -> Vec<PathBuf> {
    let dirs = FOLLOWED.lock().unwrap_or_else(|e| e.into_inner());
    dirs.iter().cloned().collect()
}

/// One pass over `dir`: every cached attachment running the policy delegate brought up to
/// date with `lookup`.
pub(crate) fn refresh_dir(dir: &Path, lookup: &dyn PolicyLookup) -> Report {
    let mut report = Report::default();
    for (slot, entry) in cache::all(dir) {
        // A cheap look without the lock first: most entries run no policy delegate.
        // Nor is the lock taken for a pod the caches do not hold (another cluster's, a
        // standalone run's, one being deleted).
        if !policy_context::wanted(&entry.attachments) || pod_of(&entry, lookup).is_none() {
            continue;
        }
        if let Err(e) = refresh_entry(dir, &slot, &entry.container_id, lookup, &mut report) {
            report.failed.push(e);
        }
    }
    report
}

/// The policy of every policy delegate of `att`, as the delegate computes it from the
/// netconf it is given.
fn policies(att: &Attachment) -> Result<Vec<InterfacePolicy>, cni::Error> {
    let mut out = Vec::new();
    for netconf in policy_context::delegate_netconfs(att)? {
        let config = policy::Config::parse(&netconf)?;
        out.push(policy::interface_policy(&config, &att.ifname)?);
    }
    Ok(out)
}

/// The pod an entry belongs to, as the caches hold it; `None` when there is nothing to
/// update (no pod named, not in the caches, made again under the same name).
fn pod_of(entry: &Entry, lookup: &dyn PolicyLookup) -> Option<PodObject> {
    let args = &entry.attachments.first()?.cni_args;
    let namespace = args.get("K8S_POD_NAMESPACE").unwrap_or("default");
    let name = args.get("K8S_POD_NAME")?;
    let pod = lookup.pod(namespace, name)?;
    if let Some(uid) = args.get("K8S_POD_UID").filter(|u| !u.is_empty()) {
        if pod.metadata.uid.as_deref() != Some(uid) {
            return None;
        }
    }
    Some(PodObject::of(namespace, name, pod))
}

/// The pod with the objects its policies are made of.
fn context_of(entry: &Entry, lookup: &dyn PolicyLookup) -> Option<(PodObject, PolicyObjects)> {
    let pod = pod_of(entry, lookup)?;
    let objects = lookup.objects(&pod.namespace);
    Some((pod, objects))
}

fn refresh_entry(
    dir: &Path,
    slot: &Slot,
    container_id: &str,
    lookup: &dyn PolicyLookup,
    report: &mut Report,
) -> Result<(), RefreshError> {
    let cache_err = |source| RefreshError::Cache {
        container_id: container_id.to_owned(),
        source,
    };
    let _lock = ContainerLock::acquire(dir, container_id).map_err(|source| RefreshError::Lock {
        container_id: container_id.to_owned(),
        source,
    })?;
    // Read again under the lock: a DEL or an ADD may have come in between.
    let cache::Read::Found(mut entry) = slot.read().map_err(cache_err)? else {
        return Ok(());
    };
    let Some(netns) = entry.netns.clone().filter(|n| n.exists()) else {
        return Ok(());
    };
    // Still being added (no result yet): its ADD is under way or failed; DEL or the next
    // pass deals with it.
    if entry.attachments.iter().any(|a| a.result.is_none()) {
        return Ok(());
    }
    let Some((pod, objects)) = context_of(&entry, lookup) else {
        return Ok(());
    };
    let target = policy_context::target_pod(&pod.namespace, &pod.name, Some(&pod), &objects);
    let mut fresh = entry.attachments.clone();
    policy_context::clear(&mut fresh);
    policy_context::inject(&mut fresh, &target, &objects);
    let mut rewrite = false;
    for (k, new) in fresh.into_iter().enumerate() {
        let old = &entry.attachments[k];
        if old.conf == new.conf {
            continue;
        }
        let config_err = |source| RefreshError::Config {
            container_id: container_id.to_owned(),
            ifname: new.ifname.clone(),
            source: Box::new(source),
        };
        let before = policies(old).map_err(config_err)?;
        let after = match policies(&new) {
            Ok(after) => after,
            Err(e) => {
                // This interface keeps its rules; the pod's others still get theirs.
                report.failed.push(config_err(e));
                continue;
            }
        };
        let mut ok = true;
        for (was, now) in before.iter().zip(&after) {
            // The rendering carries the digest: equal renderings are equal rules.
            if policy::render::render(&new.ifname, was) == policy::render::render(&new.ifname, now)
            {
                continue;
            }
            match policy::live::apply(&netns, &new.ifname, now) {
                Ok(Applied::NetnsGone) => return Ok(()),
                Ok(done) => {
                    tracing::info!(
                        container = container_id,
                        ifname = %new.ifname,
                        network = %new.network,
                        "policy updated: {done:?}"
                    );
                    report
                        .applied
                        .push((container_id.to_owned(), new.ifname.clone(), done));
                }
                Err(source) => {
                    report.failed.push(RefreshError::Apply {
                        container_id: container_id.to_owned(),
                        ifname: new.ifname.clone(),
                        source: Box::new(source),
                    });
                    ok = false;
                }
            }
        }
        if ok {
            entry.attachments[k] = new;
            rewrite = true;
        }
    }
    if rewrite {
        // Atomic: CHECK and DEL read either the old entry or the new one.
        slot.write(&entry).map_err(cache_err)?;
    }
    Ok(())
}
