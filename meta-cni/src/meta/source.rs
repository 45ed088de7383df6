//! Where pods, NADs and MultiNetworkPolicies come from, one type over two backends: the
//! Kubernetes API when a kubeconfig is set (Kubernetes mode), else NAD files in `nadDir`,
//! policy objects in `policyDir` and no pod object (standalone mode). The API client is made on first use, so a DEL served from the cache
//! never starts one. Unit tests plan against a third, fixed set of NADs.

use super::kube_config::KubeSource;
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use cni::Request;
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};
use nad_crd::{NetworkAttachmentDefinition, NetworkStatus};

use super::api::Api;
use super::cluster_view::{self, ClusterView};
use super::config::MetaConf;
use super::error::{ApiError, SourceError};
use super::nad_dir::{check_nad_ref, NadDir};
use super::pod_object::PodObject;
use super::policy_context::PolicyObjects;
use super::policy_dir::PolicyDir;

/// What looking the pod up came to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PodLookup {
    /// Standalone mode, or the runtime named no pod (`K8S_POD_NAME` unset).
    NoPod,
    /// The pod the runtime named.
    Found(PodObject),
    /// The API has no such pod, or a different one under that name; why.
    Gone(String),
}

/// A NAD as the API answered for it.
type NadAnswer = Result<Option<NetworkAttachmentDefinition>, Arc<ApiError>>;

/// Where the NADs of a call come from.
enum Backend {
    /// Kubernetes mode: the API, its client made on first use (boxed: the client is
    /// large, and most calls never make it).
    Api {
        kube: KubeSource,
        client: OnceCell<Box<Api>>,
    },
    /// Kubernetes mode inside the daemon: its watch caches (see [`cluster_view`]).
    Cluster(Arc<dyn ClusterView>),
    /// Standalone mode: `nadDir` and `policyDir`.
    Files { nads: NadDir, policies: PolicyDir },
    /// A fixed set, for unit tests of the plan.
    #[cfg(test)]
    Fixed(HashMap<(String, String), NetworkAttachmentDefinition>),
}

/// Pods and NADs for one call.
pub(crate) struct Source<'a> {
    conf: &'a MetaConf,
    backend: Backend,
    /// NADs fetched ahead by [`Source::prefetch`], answers and failures alike (a failure
    /// already spent its retries).
    fetched: RefCell<HashMap<(String, String), NadAnswer>>,
}

impl<'a> Source<'a> {
    /// A source for `conf`; nothing is read or connected yet.
    pub(crate) fn new(conf: &'a MetaConf) -> Source<'a> {
        let backend = match &conf.kube {
            Some(kube) => match cluster_view::for_source(kube) {
                Some(view) => Backend::Cluster(view),
                None => Backend::Api {
                    kube: kube.clone(),
                    client: OnceCell::new(),
                },
            },
            None => Backend::Files {
                nads: NadDir::new(&conf.nad_dir),
                policies: PolicyDir::new(&conf.policy_dir),
            },
        };
        Source {
            conf,
            backend,
            fetched: RefCell::new(HashMap::new()),
        }
    }

    /// A source answering from `nads` (by their namespace and name) and no pod.
    #[cfg(test)]
    pub(crate) fn fixed(conf: &'a MetaConf, nads: Vec<NetworkAttachmentDefinition>) -> Self {
        let nads = nads
            .into_iter()
            .map(|nad| {
                let key = (
                    nad.namespace().unwrap_or("default").to_string(),
                    nad.name().to_string(),
                );
                (key, nad)
            })
            .collect();
        Source {
            conf,
            backend: Backend::Fixed(nads),
            fetched: RefCell::new(HashMap::new()),
        }
    }

    /// The API client, connected on first use (the daemon's, inside the daemon); `None` in
    /// standalone mode.
    fn api(&self) -> Result<Option<&Api>, SourceError> {
        if let Backend::Cluster(view) = &self.backend {
            return Ok(Some(view.api()));
        }
        let Backend::Api { kube, client } = &self.backend else {
            return Ok(None);
        };
        if client.get().is_none() {
            let api = Api::connect(kube, self.conf.api_timeout, self.conf.api_retries)?;
            // Only this thread fills the cell: it was empty a line above.
            let _ = client.set(Box::new(api));
        }
        Ok(client.get().map(|api| &**api))
    }

    /// Where the NAD `namespace/name` was looked for, for the error saying it is not there.
    pub(crate) fn where_missing(&self, namespace: &str, name: &str) -> String {
        match &self.backend {
            Backend::Api { .. } | Backend::Cluster(_) => {
                format!("the Kubernetes API has no NAD {namespace}/{name}")
            }
            Backend::Files { nads: dir, .. } => {
                let tried: Vec<String> = dir
                    .candidates(namespace, name)
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                format!("none of {} exists", tried.join(", "))
            }
            #[cfg(test)]
            Backend::Fixed(_) => format!("no fixed NAD {namespace}/{name}"),
        }
    }

    /// The NAD `namespace/name`; `None` if there is none. The names are checked first, so
    /// no name reaches a path or a URL unchecked.
    pub(crate) fn nad(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, SourceError> {
        check_nad_ref(namespace, name)?;
        let key = (namespace.to_string(), name.to_string());
        // A network may be selected twice: keep the answer for the second lookup.
        if let Some(answer) = self.fetched.borrow().get(&key) {
            return answer.clone().map_err(SourceError::Api);
        }
        match &self.backend {
            Backend::Api { .. } => match self.api()? {
                Some(api) => Ok(api.nad(namespace, name)?),
                None => Ok(None),
            },
            Backend::Cluster(view) => Ok(view.nad(namespace, name)?),
            Backend::Files { nads, .. } => Ok(nads.read(namespace, name)?),
            #[cfg(test)]
            Backend::Fixed(nads) => Ok(nads.get(&key).cloned()),
        }
    }

    /// In Kubernetes mode, fetches the NADs `refs` all at once for [`Source::nad`] to answer
    /// from. Names that do not check out are left for `nad` to refuse; failures to connect
    /// are left for it to report.
    pub(crate) fn prefetch(&self, refs: &[(String, String)]) {
        if !matches!(self.backend, Backend::Api { .. }) {
            return;
        }
        let mut wanted: Vec<(String, String)> = Vec::new();
        for key in refs {
            let valid = check_nad_ref(&key.0, &key.1).is_ok();
            if valid && !wanted.contains(key) && !self.fetched.borrow().contains_key(key) {
                wanted.push(key.clone());
            }
        }
        // One NAD gains nothing from going ahead.
        if wanted.len() < 2 {
            return;
        }
        let Ok(Some(api)) = self.api() else {
            return;
        };
        let answers = api
            .nads(&wanted)
            .into_iter()
            .map(|answer| answer.map_err(Arc::new));
        self.fetched
            .borrow_mut()
            .extend(wanted.into_iter().zip(answers));
    }

    /// The pod named by `K8S_POD_NAMESPACE`/`K8S_POD_NAME`, checked against `K8S_POD_UID`.
    pub(crate) fn pod(&self, req: &Request, namespace: &str) -> Result<PodLookup, SourceError> {
        let Some(name) = req.inv.args.get("K8S_POD_NAME").filter(|n| !n.is_empty()) else {
            return Ok(PodLookup::NoPod);
        };
        let view = match &self.backend {
            Backend::Cluster(view) => Some(view),
            _ => None,
        };
        let api = match view {
            Some(_) => None,
            None => match self.api()? {
                Some(api) => Some(api),
                None => return Ok(PodLookup::NoPod),
            },
        };
        if let Some(why) = nad_crd::names::nad_name_problem(name) {
            return Err(SourceError::PodName {
                name: name.to_string(),
                why,
            });
        }
        let expected_uid = req.inv.args.get("K8S_POD_UID").filter(|u| !u.is_empty());
        let found = match (view, api) {
            (Some(view), _) => view.pod(namespace, name, expected_uid)?,
            (None, Some(api)) => api.pod(namespace, name)?,
            (None, None) => None,
        };
        let Some(pod) = found else {
            return Ok(PodLookup::Gone(format!(
                "the API has no pod {namespace}/{name}"
            )));
        };
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        if let Some(expected) = req.inv.args.get("K8S_POD_UID").filter(|u| !u.is_empty()) {
            if expected != uid {
                return Ok(PodLookup::Gone(format!(
                    "pod {namespace}/{name} has UID {uid}, not K8S_POD_UID {expected}: \
                     it was deleted and made again"
                )));
            }
        }
        Ok(PodLookup::Found(PodObject::of(namespace, name, pod)))
    }

    /// What the policy delegates of a pod in `namespace` are given: the MultiNetworkPolicies
    /// of the namespace and, when there is any, every namespace and pod.
    pub(crate) fn policy_objects(&self, namespace: &str) -> Result<PolicyObjects, SourceError> {
        match &self.backend {
            Backend::Api { .. } => match self.api()? {
                Some(api) => Ok(api.policy_objects(namespace)?),
                None => Ok(PolicyObjects::default()),
            },
            Backend::Cluster(view) => Ok(view.policy_objects(namespace)?),
            Backend::Files { policies, .. } => Ok(policies.read(namespace)?),
            #[cfg(test)]
            Backend::Fixed(_) => Ok(PolicyObjects::default()),
        }
    }

    /// The DRA ResourceClaim `namespace/name` and the node's ResourceSlices, when the API is
    /// used (none in standalone mode, where there is no DRA).
    pub(crate) fn resource_claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ResourceClaim>, SourceError> {
        match self.api()? {
            Some(api) => Ok(api.resource_claim(namespace, name)?),
            None => Ok(None),
        }
    }

    /// Every ResourceSlice of `driver` (none in standalone mode).
    pub(crate) fn resource_slices(&self, driver: &str) -> Result<Vec<ResourceSlice>, SourceError> {
        match self.api()? {
            Some(api) => Ok(api.resource_slices(driver)?),
            None => Ok(Vec::new()),
        }
    }

    /// Merge-patches the status of ResourceClaim `namespace/name` with `patch`.
    pub(crate) fn patch_resource_claim_status(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<(), SourceError> {
        match self.api()? {
            Some(api) => Ok(api.patch_resource_claim_status(namespace, name, patch)?),
            None => Ok(()),
        }
    }

    /// Writes `statuses` to the pod's `network-status` annotation (Kubernetes mode only).
    pub(crate) fn set_network_status(
        &self,
        pod: &PodObject,
        statuses: &[NetworkStatus],
    ) -> Result<(), SourceError> {
        if let Backend::Cluster(view) = &self.backend {
            return Ok(view.set_network_status(&pod.namespace, &pod.name, statuses)?);
        }
        match self.api()? {
            Some(api) => Ok(api.set_network_status(&pod.namespace, &pod.name, statuses)?),
            None => Ok(()),
        }
    }
}

impl PodLookup {
    /// For ADD: the pod, or code 3 when it is gone (Multus "succeeds" with a fake result).
    pub(crate) fn for_add(self) -> Result<Option<PodObject>, SourceError> {
        match self {
            PodLookup::NoPod => Ok(None),
            PodLookup::Found(pod) => Ok(Some(pod)),
            PodLookup::Gone(why) => Err(SourceError::PodGone { why }),
        }
    }
}
