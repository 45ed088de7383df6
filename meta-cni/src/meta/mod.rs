//! The meta plugin (`type: "meta-cni"`): resolves a pod's networks, runs each network's
//! delegates in order, merges their results, and undoes everything on a failed ADD and on DEL.
//!
//! - ADD: the pod is read from the API (Kubernetes mode), the plan is resolved and validated
//!   (code 7 before anything is made; a `policy` delegate gets the MultiNetworkPolicies its
//!   rules are made of), cached, then run attachment by attachment; the
//!   results are cached at the end. If attachment k fails, k..0 get DEL in reverse and the cache
//!   goes; k's error is returned, naming the network. A rollback that cannot finish keeps the
//!   cache, so the runtime's DEL can. In Kubernetes mode the pod's `network-status` is set in
//!   one merge patch; if that fails, everything is rolled back too.
//! - DEL: from the cache, in reverse, past failures, with no API call; the cache goes only
//!   when every DEL succeeded. With no cache (or a corrupt one) the plan is resolved again
//!   from the config and the pod's annotations.
//! - CHECK: every cached attachment. STATUS: every network. GC: drops the cache entries and
//!   delegate state of attachments not in `cni.dev/valid-attachments`.

mod api;
mod attachment;
mod cache;
pub(crate) mod cluster_view;
mod config;
mod container_lock;
mod default_route;
mod devices;
mod error;
pub(crate) mod explain;
pub(crate) mod inspect;
pub(crate) mod kube_config;
mod merge;
mod nad_dir;
mod network_status;
mod networks;
pub(crate) mod parallel;
mod plan;
mod pod_object;
mod policy_ahead;
pub(crate) mod policy_context;
mod policy_dir;
pub(crate) mod policy_refresh;
mod readiness;
mod source;
mod unplug;
pub(crate) mod verify;

use cni::chain;
use cni::{CniResult, Error, Plugin, Request};

pub(crate) use api::Api;
pub(crate) use error::ApiError;

use crate::delegates::Delegates;
use attachment::Attachment;
use config::{MetaConf, ResultMode};
use container_lock::ContainerLock;
use error::MetaError;
use pod_object::PodObject;
use source::{PodLookup, Source};

/// The meta plugin.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MetaPlugin;

/// DELs `attachments` in reverse; every one is tried. The failures, in order met.
fn del_all(attachments: &[Attachment], req: &Request, delegates: &Delegates) -> Vec<MetaError> {
    attachments
        .iter()
        .rev()
        .filter_map(|att| att.del(req, delegates).err().map(MetaError::from))
        .collect()
}

/// The attachments of a plan rebuilt without a cache that could have run: one that could
/// not (its version or a plugin unknown) was refused before anything was made.
fn runnable(attachments: Vec<Attachment>, delegates: &Delegates) -> Vec<Attachment> {
    attachments
        .into_iter()
        .filter(|att| match att.check_runnable(delegates) {
            Ok(()) => true,
            Err(e) => {
                tracing::info!("no cache and {}: it made nothing", Error::from(e));
                false
            }
        })
        .collect()
}

/// One error standing for several: the first one, with the others behind it, so none goes
/// unsaid.
fn summarize(mut failures: Vec<MetaError>) -> Result<(), MetaError> {
    if failures.is_empty() {
        return Ok(());
    }
    let first = failures.remove(0);
    if failures.is_empty() {
        return Err(first);
    }
    Err(MetaError::Several {
        first: Box::new(first),
        rest: failures,
    })
}

/// The plan of a pod whose cache is missing or corrupt, from the config and, in Kubernetes
/// mode, the pod's annotations; with why the pod could not be read, when it is gone.
fn replan(req: &Request, conf: &MetaConf) -> Result<(Vec<Attachment>, Option<String>), MetaError> {
    let source = Source::new(conf);
    let (pod, gone) = match source.pod(req, &plan::pod_namespace(req)?)? {
        PodLookup::Found(pod) => (Some(pod), None),
        PodLookup::NoPod => (None, None),
        PodLookup::Gone(why) => (None, Some(why)),
    };
    Ok((plan::build(conf, req, &source, pod.as_ref())?, gone))
}

/// The cache directory a netconf names (`cniDir`, else the default), for `inspect`.
pub(crate) fn cni_dir(req: &Request) -> Result<std::path::PathBuf, Error> {
    Ok(MetaConf::load(req)?.cni_dir)
}

/// The attachments an ADD runs: the plan, with the MultiNetworkPolicy context of every
/// policy delegate in it.
fn plan_for_add(
    conf: &MetaConf,
    req: &Request,
    source: &Source<'_>,
    pod: Option<&PodObject>,
) -> Result<Vec<Attachment>, MetaError> {
    let mut attachments = plan::build(conf, req, source, pod)?;
    if policy_context::wanted(&attachments) {
        // A daemon follows this directory's attachments from now on (see policy_refresh).
        policy_refresh::follow(&conf.cni_dir);
        let pod_ns = plan::pod_namespace(req)?;
        let objects = source.policy_objects(&pod_ns)?;
        let name = req
            .inv
            .args
            .get("K8S_POD_NAME")
            .unwrap_or(&req.inv.container_id);
        let target = policy_context::target_pod(&pod_ns, name, pod, &objects);
        policy_context::inject(&mut attachments, &target, &objects);
    }
    Ok(attachments)
}

impl MetaPlugin {
    /// Undoes attachments `..=failed` after a failed ADD; returns `failure`, with the
    /// rollback's own failure added when it could not finish.
    fn roll_back(
        &self,
        req: &Request,
        delegates: &Delegates,
        entry: &cache::Entry,
        slot: &cache::Slot,
        failed: usize,
        failure: MetaError,
    ) -> MetaError {
        let undo = &entry.attachments[..=failed.min(entry.attachments.len() - 1)];
        match summarize(del_all(undo, req, delegates)) {
            Ok(()) => {
                if let Err(e) = slot.remove() {
                    tracing::warn!("after rollback: {}", Error::from(e));
                }
                failure
            }
            Err(rollback) => MetaError::RollbackIncomplete {
                failure: Box::new(failure),
                rollback: Box::new(rollback),
            },
        }
    }

    /// Runs every attachment's ADD, then the default-route moves; each result is kept in its
    /// attachment. The cache is not written here: the plan written before is all DEL needs
    /// after a crash (delegates DEL without a prevResult), and the results go in with the
    /// final write.
    fn add_all(
        &self,
        req: &Request,
        conf: &MetaConf,
        delegates: &Delegates,
        attachments: &mut [Attachment],
    ) -> Result<(), (usize, MetaError)> {
        if parallel::enabled(conf) {
            parallel::add_all(attachments, req, delegates)?;
        } else {
            for (k, att) in attachments.iter_mut().enumerate() {
                att.add(req, delegates).map_err(|e| (k, e.into()))?;
            }
        }
        let moves: Vec<(usize, std::net::IpAddr)> = attachments
            .iter()
            .enumerate()
            .flat_map(|(k, a)| a.default_route.iter().map(move |gw| (k, *gw)))
            .collect();
        if let Some(&(first, _)) = moves.first() {
            let netns = plan::open_pod_netns(req).map_err(|e| (first, e.into()))?;
            for (k, gw) in moves {
                default_route::apply(&netns, attachments, k, gw).map_err(|e| (k, e.into()))?;
            }
        }
        Ok(())
    }

    /// ADD under the container's lock: refused if the pair has an attachment, else planned,
    /// cached, run, and rolled back on failure.
    fn add_locked(
        &self,
        req: &Request,
        conf: &MetaConf,
        delegates: &Delegates,
        slot: &cache::Slot,
    ) -> Result<CniResult, MetaError> {
        if let cache::Read::Found(_) = slot.read()? {
            return Err(MetaError::AlreadyAttached {
                container_id: req.inv.container_id.clone(),
                ifname: req.inv.ifname.clone(),
            });
        }
        let source = Source::new(conf);
        let pod = source.pod(req, &plan::pod_namespace(req)?)?.for_add()?;
        let attachments = plan_for_add(conf, req, &source, pod.as_ref())?;
        for att in &attachments {
            att.check_runnable(delegates)?;
        }
        let mut ahead = policy_ahead::spawn(req, &attachments, delegates);
        plan::check_names_free(req, &attachments)?;
        let mut entry = cache::Entry {
            container_id: req.inv.container_id.clone(),
            ifname: req.inv.ifname.clone(),
            netns: req.inv.netns.clone(),
            attachments,
            network_status: Vec::new(),
        };
        slot.create(&entry)?;
        ahead.start();
        let added = self.add_all(req, conf, delegates, &mut entry.attachments);
        ahead.settle(added.is_err());
        if let Err((k, e)) = added {
            // At once, every attachment was started: all of them are undone.
            let k = match parallel::enabled(conf) {
                true => entry.attachments.len() - 1,
                false => k,
            };
            return Err(self.roll_back(req, delegates, &entry, slot, k, e));
        }
        entry.network_status = network_status::of(&entry.attachments);
        let published = slot
            .overwrite(&entry)
            .map_err(MetaError::from)
            .and_then(|()| match &pod {
                Some(pod) => Ok(source.set_network_status(pod, &entry.network_status)?),
                None => Ok(()),
            })
            .and_then(|()| Ok(devices::publish_network_data(&source, &entry.attachments)?));
        if let Err(e) = published {
            let last = entry.attachments.len() - 1;
            return Err(self.roll_back(req, delegates, &entry, slot, last, e));
        }
        let mut results = entry
            .attachments
            .iter()
            .filter_map(Attachment::cached_result);
        Ok(match conf.result_mode {
            ResultMode::Merged => merge::merged(results),
            ResultMode::Cluster => results.next().cloned().unwrap_or_default(),
        })
    }
}

impl Plugin for MetaPlugin {
    fn name(&self) -> &'static str {
        "meta-cni"
    }

    fn known_args(&self) -> &'static [&'static str] {
        &[
            "K8S_POD_NAMESPACE",
            "K8S_POD_NAME",
            "K8S_POD_INFRA_CONTAINER_ID",
            "K8S_POD_UID",
            "IP",
            "MAC",
        ]
    }

    fn log_settings(&self, stdin: &[u8]) -> cni::logging::Settings {
        config::log_settings(stdin)
    }

    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        let conf = MetaConf::load(req)?;
        let slot = cache::Slot::new(&conf.cni_dir, &req.inv.container_id, &req.inv.ifname)?;
        readiness::wait(&conf)?;
        let _lock = ContainerLock::acquire(&conf.cni_dir, &req.inv.container_id)?;
        let delegates = Delegates::new(&conf.bin_dir, &req.inv.path);
        Ok(self.add_locked(req, &conf, &delegates, &slot)?)
    }

    fn del(&self, req: &Request) -> Result<(), Error> {
        let conf = MetaConf::load(req)?;
        readiness::note(&conf);
        let slot = cache::Slot::new(&conf.cni_dir, &req.inv.container_id, &req.inv.ifname)?;
        let delegates = Delegates::new(&conf.bin_dir, &req.inv.path);
        let _lock = ContainerLock::acquire(&conf.cni_dir, &req.inv.container_id)?;
        let (attachments, unknown) = match slot.read()? {
            cache::Read::Found(entry) => (entry.attachments, None),
            // The plan is cached before the first delegate runs: no cache, nothing made (or
            // a DEL already finished). What the config and the pod still name is deleted all
            // the same, for a cache lost by hand, but only as a courtesy: a delegate that
            // fails on what is already gone (the reference host-device does) cannot fail
            // this DEL. A plan that no longer resolves leaves nothing to do.
            cache::Read::Missing => match replan(req, &conf) {
                Ok((attachments, _)) => {
                    let attachments = runnable(attachments, &delegates);
                    unplug::veths_at_once(req, &delegates, &attachments);
                    for e in del_all(&attachments, req, &delegates) {
                        tracing::info!("no cache, nothing was made: {}", Error::from(e));
                    }
                    return Ok(());
                }
                Err(e) => {
                    tracing::info!(
                        "no cache and no plan ({}): nothing was made",
                        Error::from(e)
                    );
                    return Ok(());
                }
            },
            cache::Read::Corrupt(why) => {
                tracing::warn!(
                    "cache {} is corrupt ({why}): DEL from the config and the pod",
                    slot.file().display()
                );
                let (attachments, gone) = replan(req, &conf)?;
                // The plan was cached, so something was made; without the pod's annotation
                // its networks beyond the config's cannot be known.
                let unknown = gone.map(|pod| MetaError::CorruptCacheNoPod {
                    file: slot.file().to_path_buf(),
                    why,
                    pod,
                });
                (attachments, unknown)
            }
        };
        unplug::veths_at_once(req, &delegates, &attachments);
        summarize(del_all(&attachments, req, &delegates))?;
        if let Some(e) = unknown {
            return Err(e.into());
        }
        slot.remove()?;
        Ok(())
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        let conf = MetaConf::load(req)?;
        let slot = cache::Slot::new(&conf.cni_dir, &req.inv.container_id, &req.inv.ifname)?;
        let delegates = Delegates::new(&conf.bin_dir, &req.inv.path);
        let _lock = ContainerLock::acquire(&conf.cni_dir, &req.inv.container_id)?;
        let entry = match slot.read()? {
            cache::Read::Found(entry) => entry,
            cache::Read::Missing => {
                return Err(MetaError::NotAttached {
                    container_id: req.inv.container_id.clone(),
                    ifname: req.inv.ifname.clone(),
                }
                .into())
            }
            cache::Read::Corrupt(why) => {
                return Err(MetaError::CorruptCache {
                    file: slot.file().to_path_buf(),
                    why,
                }
                .into())
            }
        };
        for att in &entry.attachments {
            att.check(req, &delegates)?;
        }
        Ok(())
    }

    fn status(&self, req: &Request) -> Result<(), Error> {
        let conf = MetaConf::load(req)?;
        // Not ready, or a plan that cannot be read for now, is "not available" to STATUS.
        let unavailable = |e: MetaError| MetaError::Unavailable(Box::new(e));
        readiness::wait(&conf).map_err(unavailable)?;
        let source = Source::new(&conf);
        let delegates = Delegates::new(&conf.bin_dir, &req.inv.path);
        let attachments =
            plan::build(&conf, req, &source, None).map_err(|e| unavailable(e.into()))?;
        for att in attachments {
            att.status(req, &delegates)?;
        }
        Ok(())
    }

    fn gc(&self, req: &Request) -> Result<(), Error> {
        let conf = MetaConf::load(req)?;
        readiness::wait(&conf)?;
        let valid = chain::valid_attachments(&req.netconf)?;
        let delegates = Delegates::new(&conf.bin_dir, &req.inv.path);
        let mut failures = Vec::new();
        let mut delegate_valid = Vec::new();
        for (slot, entry) in cache::all(&conf.cni_dir) {
            let keep = valid
                .iter()
                .any(|a| a.container_id == entry.container_id && a.ifname == entry.ifname);
            if keep {
                delegate_valid.extend(entry.attachments.iter().map(|a| chain::Attachment {
                    container_id: entry.container_id.clone(),
                    ifname: a.ifname.clone(),
                }));
                continue;
            }
            // Under the container's lock, as a DEL would run: the entry may have gone, or
            // been replaced, since it was listed.
            let _lock = match ContainerLock::acquire(&conf.cni_dir, &entry.container_id) {
                Ok(lock) => lock,
                Err(e) => {
                    failures.push(e.into());
                    continue;
                }
            };
            let cache::Read::Found(entry) = slot.read()? else {
                continue;
            };
            let mut stale = req.clone();
            stale.inv.container_id = entry.container_id.clone();
            stale.inv.ifname = entry.ifname.clone();
            stale.inv.netns = entry.netns.clone();
            let errors = del_all(&entry.attachments, &stale, &delegates);
            if errors.is_empty() {
                if let Err(e) = slot.remove() {
                    failures.push(e.into());
                }
            }
            failures.extend(errors);
        }
        for att in plan::build(&conf, req, &Source::new(&conf), None)? {
            if let Err(e) = att.gc(req, &delegates, &delegate_valid) {
                failures.push(e.into());
            }
        }
        Ok(summarize(failures)?)
    }
}
