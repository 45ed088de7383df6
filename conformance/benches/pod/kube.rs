//! The same pod through the Kubernetes API stand-in: the meta plugin's Kubernetes mode
//! (`kubeconfig` in the netconf, the pod from `CNI_ARGS`, its networks from the
//! `k8s.v1.cni.cncf.io/networks` annotation, NADs from the API, the status PATCHed), by
//! the plugin itself (thin mode) or through `meta-cni-daemon` (thick mode, requests counted
//! from the daemon's calls and watches alike). A build without that mode answers error 2
//! naming `kubeconfig`: the scenario is then skipped.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use conformance::kube_api::RecordedRequest;
use serde_json::{json, Value};

use super::binaries::Plugins;
use super::meta::{MetaNode, Mode};
use super::scenario::Scenario;

/// The Kubernetes-mode scenario, and the API requests each call made.
#[derive(Debug)]
pub(crate) struct KubeScenario<'p> {
    meta: MetaNode<'p>,
    /// Requests by kind ("GET /api/v1/namespaces/{ns}/pods/{name}", ...) and verb.
    requests: Mutex<BTreeMap<(&'static str, String), usize>>,
    /// Answers other than 2xx.
    failed_requests: Mutex<usize>,
}

/// Why the scenario did not run.
pub(crate) type Skipped = String;

impl<'p> KubeScenario<'p> {
    /// Starts the stand-in in a node namespace, stores the NADs and `pods + 1` pods, and
    /// warms up with the spare pod; `Err` when this build has no Kubernetes mode.
    pub(crate) fn new(plugins: &'p Plugins, pods: usize, mode: Mode) -> Result<Self, Skipped> {
        let meta = MetaNode::new(plugins, 3, pods, mode);
        let (_, out) = meta.node().run(|| meta.timed("ADD", meta.spare()));
        if out.code != 0 {
            let error: Value = serde_json::from_str(&out.stdout).unwrap_or_default();
            let msg = error["msg"].as_str().unwrap_or_default();
            if error["code"] == 2 && msg.contains("kubeconfig") {
                return Err("skipped: kubeconfig not supported by this build".into());
            }
            panic!(
                "meta-cni ADD in Kubernetes mode failed: stdout {} stderr {}",
                out.stdout, out.stderr
            );
        }
        meta.node().run(|| meta.timed_ok("DEL", meta.spare()));
        Ok(KubeScenario {
            meta,
            requests: Mutex::default(),
            failed_requests: Mutex::default(),
        })
    }

    fn timed(&self, verb: &'static str, k: usize) -> Duration {
        let api = self.meta.api().expect("Kubernetes mode has an API");
        api.clear_requests();
        let t = self.meta.node().run(|| self.meta.timed_ok(verb, k));
        let seen = api.requests();
        let mut requests = self.requests.lock().expect("request counts");
        for r in &seen {
            *requests.entry((verb, kind(r))).or_default() += 1;
        }
        *self.failed_requests.lock().expect("failure count") += seen
            .iter()
            .filter(|r| !(200..300).contains(&r.status))
            .count();
        t
    }

    /// The API requests per call, by CNI verb and request kind, averaged over `calls`.
    pub(crate) fn requests_json(&self, calls: usize) -> Value {
        let mut by_verb: BTreeMap<&str, BTreeMap<String, f64>> = BTreeMap::new();
        for ((verb, kind), n) in self.requests.lock().expect("request counts").iter() {
            by_verb
                .entry(verb)
                .or_default()
                .insert(kind.clone(), *n as f64 / calls as f64);
        }
        json!({
            "per_call": by_verb,
            "non_2xx": *self.failed_requests.lock().expect("failure count"),
        })
    }

    /// Whatever DEL left behind.
    pub(crate) fn leftovers(&self) -> Value {
        self.meta.leftovers()
    }
}

impl Scenario for KubeScenario<'_> {
    fn name(&self) -> String {
        self.meta.name()
    }

    fn add(&self, k: usize) -> Duration {
        self.timed("ADD", k)
    }

    fn del(&self, k: usize) -> Duration {
        self.timed("DEL", k)
    }
}

/// A request as "METHOD path" with namespace and object names replaced by placeholders.
fn kind(r: &RecordedRequest) -> String {
    let mut out = Vec::new();
    let mut previous = "";
    for segment in r.path.split('/') {
        out.push(match previous {
            "namespaces" => "{ns}",
            "pods" | "network-attachment-definitions" => "{name}",
            _ => segment,
        });
        previous = segment;
    }
    format!("{} {}", r.method, out.join("/"))
}
