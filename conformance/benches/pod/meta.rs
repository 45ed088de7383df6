//! A node running our meta plugin: standalone (NADs from `nadDir`, networks from the
//! netconf) or Kubernetes mode (pod, annotation and NADs from the API stand-in).

use std::path::Path;
use std::time::{Duration, Instant};

use conformance::kube_api::{fixture, write_kubeconfig, KubeApi};
use conformance::meta_daemon::MetaDaemon;
use conformance::{Call, Output};
use kernel::PrivateNetns;
use serde_json::{json, Value};

use super::binaries::Plugins;
use super::network::Network;
use super::node::{self, Node};
use super::scenario::Scenario;

/// Where the meta plugin finds the pod's networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `nadDir` files and the netconf's `networks`.
    Standalone,
    /// `kubeconfig`: the pod's annotation and the NADs from the API stand-in.
    Kube,
    /// As `Kube`, through `meta-cni-daemon` (thick mode, its defaults): the plugin is its
    /// shim, the daemon reads pods and NADs from its watch caches.
    Daemon,
}

/// The node name the daemon watches pods of.
const NODE_NAME: &str = "bench-node";

/// A node with `pods + 1` pod namespaces (the last one for warm-up and probes) and the
/// meta netconf for `networks`.
#[derive(Debug)]
pub(crate) struct MetaNode<'p> {
    plugins: &'p Plugins,
    networks: Vec<Network>,
    conf: String,
    pods: Vec<PrivateNetns>,
    // Before `api` and `node`: the daemon watches the API and runs in the node namespace.
    daemon: Option<MetaDaemon>,
    // Before `node`: the stand-in listens in the node namespace.
    api: Option<KubeApi>,
    node: Node,
}

/// The container ID of pod `k`.
pub(crate) fn container_id(k: usize) -> String {
    format!("bench-{k:04}")
}

fn pod_name(k: usize) -> String {
    format!("bench-pod-{k:04}")
}

fn pod_uid(k: usize) -> String {
    format!("00000000-0000-4000-8000-{k:012}")
}

/// `CNI_ARGS` as kubelet passes them for pod `k` (every scenario gets them, so every
/// plugin parses the same input).
pub(crate) fn cni_args(k: usize) -> String {
    format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={};\
         K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
        pod_name(k),
        container_id(k),
        pod_uid(k)
    )
}

impl<'p> MetaNode<'p> {
    /// A node whose pods get the first `networks` networks, through `mode`.
    pub(crate) fn new(plugins: &'p Plugins, networks: usize, pods: usize, mode: Mode) -> Self {
        let node = Node::new();
        let networks = Network::first(networks);
        let ipam = node.ipam_dir();
        let mut conf = json!({
            "cniVersion": "1.0.0",
            "name": "meta",
            "type": "meta-cni",
            "clusterNetwork": networks[0].name(),
            "cniDir": node.cni_dir(),
            "binDir": plugins.bin_dir(),
        });
        let extra: Vec<Network> = networks[1..].to_vec();
        let api = match mode {
            Mode::Standalone => {
                for net in &networks {
                    let dir = node.nad_dir().join(net.namespace());
                    std::fs::create_dir_all(&dir)
                        .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
                    let file = dir.join(format!("{}.yaml", net.name()));
                    let yaml = serde_saphyr::to_string(&net.nad(&ipam)).expect("NAD as YAML");
                    std::fs::write(&file, yaml)
                        .unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
                }
                conf["nadDir"] = json!(node.nad_dir());
                conf["networks"] = extra.iter().map(|n| json!({"name": n.name()})).collect();
                None
            }
            Mode::Kube | Mode::Daemon => {
                // The plugin runs in the node namespace: the API must listen there.
                let api = node.run(KubeApi::start);
                for net in &networks {
                    api.add_nad(net.nad(&ipam));
                }
                let annotation = extra
                    .iter()
                    .map(|n| format!("{}/{}", n.namespace(), n.name()))
                    .collect::<Vec<_>>()
                    .join(", ");
                for k in 0..=pods {
                    let mut pod = pod_object(k, &annotation);
                    pod["spec"]["nodeName"] = json!(NODE_NAME);
                    api.add_pod(pod);
                }
                let dir = node.file("kube");
                std::fs::create_dir_all(&dir).expect("create the kubeconfig dir");
                conf["kubeconfig"] = json!(write_kubeconfig(&dir, &api));
                Some(api)
            }
        };
        let daemon = (mode == Mode::Daemon).then(|| {
            let kubeconfig = conf["kubeconfig"]
                .as_str()
                .expect("a kubeconfig")
                .to_owned();
            let args = ["--kubeconfig", &kubeconfig, "--node-name", NODE_NAME];
            let daemon = MetaDaemon::start_binary(&plugins.meta(), node.netns(), &args);
            let deadline = Instant::now() + Duration::from_secs(30);
            while daemon.get("/readyz").0 != 200 {
                assert!(
                    Instant::now() < deadline,
                    "daemon never ready: {}",
                    daemon.log_text()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            conf["daemonSocket"] = json!(daemon.socket());
            daemon
        });
        MetaNode {
            plugins,
            networks,
            conf: conf.to_string(),
            pods: node::pods(pods + 1),
            daemon,
            api,
            node,
        }
    }

    /// The node.
    pub(crate) fn node(&self) -> &Node {
        &self.node
    }

    /// The API stand-in, in Kubernetes mode.
    pub(crate) fn api(&self) -> Option<&KubeApi> {
        self.api.as_ref()
    }

    /// How many interfaces each pod gets.
    pub(crate) fn interfaces(&self) -> usize {
        self.networks.len()
    }

    /// The spare pod (warm-up, probes).
    pub(crate) fn spare(&self) -> usize {
        self.pods.len() - 1
    }

    /// Pod `k`'s namespace.
    pub(crate) fn pod(&self, k: usize) -> &PrivateNetns {
        &self.pods[k]
    }

    /// A `verb` call for pod `k` of `binary` (the meta plugin, or the RSS probe wrapping it).
    pub(crate) fn call_of(&self, binary: &Path, verb: &str, k: usize) -> Call {
        Call::binary(binary, verb)
            .container(&container_id(k), &self.pods[k].path(), "eth0")
            .var("CNI_PATH", &self.plugins.bin_dir().display().to_string())
            .var("CNI_ARGS", &cni_args(k))
            .stdin(self.conf.as_str())
    }

    /// The meta plugin, as the runtime calls it.
    pub(crate) fn plugin(&self) -> std::path::PathBuf {
        self.plugins.meta()
    }

    /// One timed call of the meta plugin, from the calling thread's namespace (the caller
    /// is in the node namespace).
    pub(crate) fn timed(&self, verb: &str, k: usize) -> (Duration, Output) {
        let call = self.call_of(&self.plugins.meta(), verb, k);
        let start = Instant::now();
        let out = call.run();
        (start.elapsed(), out)
    }

    /// A timed call that must succeed.
    pub(crate) fn timed_ok(&self, verb: &str, k: usize) -> Duration {
        let (t, out) = self.timed(verb, k);
        assert_eq!(
            out.code,
            0,
            "meta-cni {verb} of pod {k} ({} interfaces) failed: stdout {} stderr {}",
            self.interfaces(),
            out.stdout,
            out.stderr
        );
        t
    }

    /// The spare pod's ADD and DEL: bridges created, page cache warm. Panics on failure.
    pub(crate) fn warm_up(&self) {
        self.node.run(|| {
            self.timed_ok("ADD", self.spare());
            self.timed_ok("DEL", self.spare());
        });
    }

    /// Whatever DEL left behind: node links, reservations, cache files (the cniDir's one
    /// lock file stays, as it should).
    pub(crate) fn leftovers(&self) -> Value {
        let cache = conformance::inspect::meta_cache_files(&self.node.cni_dir()).len();
        json!({
            "links": self.node.leftover_links(),
            "reservations": self.node.leftover_reservations(),
            "cache_files": cache,
        })
    }
}

/// Pod `k` as kube-apiserver returns it (the fixture's shape), asking for `annotation`.
fn pod_object(k: usize, annotation: &str) -> Value {
    let mut pod = fixture("pod-three-networks");
    let meta = &mut pod["metadata"];
    meta["name"] = json!(pod_name(k));
    meta["namespace"] = json!("default");
    meta["uid"] = json!(pod_uid(k));
    meta["annotations"] = json!({ "k8s.v1.cni.cncf.io/networks": annotation });
    pod
}

impl Scenario for MetaNode<'_> {
    fn name(&self) -> String {
        match (&self.api, self.interfaces()) {
            (Some(_), _) if self.daemon.is_some() => "meta-cni (daemon, Kubernetes API)".into(),
            (Some(_), _) => "meta-cni (Kubernetes API)".into(),
            (None, 3) => "meta-cni (nadDir)".into(),
            (None, n) => format!("meta-cni, {n} interfaces"),
        }
    }

    fn add(&self, k: usize) -> Duration {
        self.node.run(|| self.timed_ok("ADD", k))
    }

    fn del(&self, k: usize) -> Duration {
        self.node.run(|| self.timed_ok("DEL", k))
    }
}
