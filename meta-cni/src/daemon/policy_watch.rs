//! The watch caches a policy delegate's rules are made of: every MultiNetworkPolicy, every
//! namespace and every pod of the cluster (peers live on any node). ADDs served by the
//! daemon read their policy objects here instead of three LISTs, and every change wakes the
//! policy updater ([`super::policy_updater`]).
//!
//! The pods here are a second reflector beside [`super::cluster`]'s, which holds only this
//! node's pods (`spec.nodeName`): the calls' pod lookups keep exactly their semantics and
//! their file untouched, at the price of this node's pods being held twice (a node's pods are
//! few next to the cluster's).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api as Resources, Client, Resource};
use nad_crd::MultiNetworkPolicy;

use super::reflect::reflect;
use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::meta::policy_context::PolicyObjects;
use crate::meta::policy_refresh::PolicyLookup;

/// The caches, their sync flags, and what wakes the updater.
pub(crate) struct PolicyWatch {
    policies: Store<MultiNetworkPolicy>,
    namespaces: Store<Namespace>,
    pods: Store<Pod>,
    synced: Vec<Arc<AtomicBool>>,
    changed: Arc<Notify>,
}

impl std::fmt::Debug for PolicyWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyWatch")
            .field("synced", &self.synced())
            .finish_non_exhaustive()
    }
}

impl PolicyWatch {
    /// Starts the three watches with `client` (a watch client: no read timeout).
    pub(crate) fn start(runtime: &Handle, client: Client) -> PolicyWatch {
        let changed = Arc::new(Notify::new());
        let all = || watcher::Config::default();
        let (policies, a) = reflect(
            runtime,
            Resources::all(client.clone()),
            all(),
            Some(&changed),
        );
        let (namespaces, b) = reflect(
            runtime,
            Resources::all(client.clone()),
            all(),
            Some(&changed),
        );
        let (pods, c) = reflect(runtime, Resources::all(client), all(), Some(&changed));
        PolicyWatch {
            policies,
            namespaces,
            pods,
            synced: vec![a, b, c],
            changed,
        }
    }

    /// Whether every cache holds its first list.
    pub(crate) fn synced(&self) -> bool {
        self.synced.iter().all(|f| f.load(Ordering::Acquire))
    }

    /// Woken on every change of any cache.
    pub(crate) fn changed(&self) -> Arc<Notify> {
        Arc::clone(&self.changed)
    }
}

impl PolicyLookup for PolicyWatch {
    fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.pods
            .get(&ObjectRef::new(name).within(namespace))
            .map(|pod| Pod::clone(&pod))
    }

    /// As [`crate::meta::Api::policy_objects`] lists them: the namespace's policies and,
    /// when there is any, every namespace and pod.
    fn objects(&self, namespace: &str) -> PolicyObjects {
        let mut policies: Vec<MultiNetworkPolicy> = self
            .policies
            .state()
            .iter()
            .filter(|p| p.meta().namespace.as_deref() == Some(namespace))
            .map(|p| MultiNetworkPolicy::clone(p))
            .collect();
        if policies.is_empty() {
            return PolicyObjects::default();
        }
        // The API lists by name: the same order keeps the context (and its digest) stable.
        policies.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
        let mut namespaces: Vec<Namespace> = self
            .namespaces
            .state()
            .iter()
            .map(|n| Namespace::clone(n))
            .collect();
        namespaces.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let mut pods: Vec<Pod> = self.pods.state().iter().map(|p| Pod::clone(p)).collect();
        pods.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name)
                .cmp(&(&b.metadata.namespace, &b.metadata.name))
        });
        PolicyObjects {
            policies,
            namespaces,
            pods,
        }
    }
}
