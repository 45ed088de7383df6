//! Thick mode in Kubernetes mode: `meta-cni-daemon` with a kubeconfig, against the API
//! stand-in. Its reflectors (this node's pods, every NAD) answer the calls' lookups, so an
//! ADD sends one API request (the `network-status` PATCH); a NAD changed in the API is
//! used by the next ADD without a restart; a restarted daemon lists and watches again,
//! and the plugin serves calls itself meanwhile.
//!
//! Every test has a private node namespace (with `lo` up: the stand-in and the daemon's
//! health port listen there), a pod namespace, and its own directories and kubeconfig.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use conformance::inspect::{ipv4_addrs, netns};
use conformance::kube_api::{write_kubeconfig, KubeApi};
use conformance::kube_node::{self, KubeNode, NODE_NAME as NODE};
use conformance::meta_daemon::MetaDaemon;
use conformance::meta_pod::{bridge_nad, MetaPod};
use conformance::{Call, Output, PluginSet};
use serde_json::{json, Value};

struct Node {
    pod: MetaPod,
    api: KubeApi,
    kubeconfig: PathBuf,
}

/// A NAD in `namespace`.
fn nad_in(namespace: &str, nad: Value) -> Value {
    let mut nad = nad;
    nad["metadata"]["namespace"] = json!(namespace);
    nad
}

impl Node {
    /// The API holds `kube-system/cluster`, `default/net-a`, `default/net-b` and pod
    /// `default/pod-a` on this node, with networks `net-a@data0, net-b`.
    fn new() -> Node {
        let KubeNode { pod, api } = KubeNode::start(KubeApi::builder(), 20);
        let kubeconfig = write_kubeconfig(pod.dir.path(), &api);
        let node = Node {
            pod,
            api,
            kubeconfig,
        };
        node.add_pod("pod-a");
        node
    }

    /// Pod `default/<name>` on this node; its UID.
    fn add_pod(&self, name: &str) -> String {
        kube_node::add_pod(&self.api, name)
    }

    fn daemon(&self) -> MetaDaemon {
        let kubeconfig = self.kubeconfig.display().to_string();
        let daemon = MetaDaemon::start(
            &netns(&self.pod.node),
            &["--kubeconfig", &kubeconfig, "--node-name", NODE],
        );
        wait_ready(&daemon);
        daemon
    }

    fn conf(&self, daemon: &MetaDaemon) -> String {
        json!({"cniVersion": "1.0.0", "name": "meta", "type": "meta-cni",
            "clusterNetwork": "cluster", "kubeconfig": self.kubeconfig,
            "cniDir": self.pod.cni_dir(), "binDir": PluginSet::Ours.bin_dir(),
            "daemonSocket": daemon.socket()})
        .to_string()
    }

    fn call(&self, verb: &str, name: &str, uid: &str, conf: &str) -> Call {
        self.pod.call_for(name, "eth0", verb, conf).var(
            "CNI_ARGS",
            &format!("K8S_POD_NAMESPACE=default;K8S_POD_NAME={name};K8S_POD_UID={uid}"),
        )
    }

    fn run(&self, call: Call) -> Output {
        self.pod.run(call)
    }

    /// The requests the daemon's calls made: everything but its lists and watches.
    fn call_requests(&self) -> Vec<String> {
        self.api
            .requests()
            .into_iter()
            .filter(|r| {
                let query = r.query.clone().unwrap_or_default();
                !(r.method == "GET" && (query.contains("watch") || !is_object_path(&r.path)))
            })
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

/// Whether `path` names one object (a pod or NAD) rather than a collection.
fn is_object_path(path: &str) -> bool {
    // `.../namespaces/<ns>/<plural>/<name>[/status]`
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    segments
        .iter()
        .position(|s| *s == "namespaces")
        .is_some_and(|at| segments.len() >= at + 4)
}

fn wait_ready(daemon: &MetaDaemon) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while daemon.get("/readyz").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "never ready: {}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_add_through_the_daemon_reads_its_caches_and_sends_one_patch() {
    let node = Node::new();
    let uid = node.api.pod("default", "pod-a").unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let daemon = node.daemon();
    let conf = node.conf(&daemon);
    node.api.clear_requests();
    let r = node.run(node.call("ADD", "pod-a", &uid, &conf)).success();
    assert_eq!(r["ips"][0]["address"], "10.20.0.2/24", "{r}");
    assert_eq!(ipv4_addrs(&node.pod.pod, "data0"), ["10.20.1.2/24"]);
    assert_eq!(
        node.call_requests(),
        ["PATCH /api/v1/namespaces/default/pods/pod-a/status"]
    );
    let status = node.api.pod("default", "pod-a").unwrap();
    let networks = status["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(networks.contains("default/net-b"), "{networks}");
    let metric = |sample: &str| daemon.metric(sample).unwrap_or(0.0);
    assert_eq!(
        metric(r#"meta_cni_daemon_cache_lookups_total{resource="pods",result="hit"}"#),
        1.0
    );
    assert_eq!(
        metric(
            r#"meta_cni_daemon_cache_lookups_total{resource="network-attachment-definitions",result="hit"}"#
        ),
        3.0
    );
    assert_eq!(
        metric(r#"meta_cni_daemon_api_requests_total{verb="PATCH",resource="pods"}"#),
        1.0
    );
    assert_eq!(
        metric(r#"meta_cni_daemon_api_requests_total{verb="GET",resource="pods"}"#),
        0.0
    );
    node.run(node.call("DEL", "pod-a", &uid, &conf))
        .quiet_success();
    node.pod.assert_clean();

    // A pod the cache does not know yet (or under another UID) is read from the API.
    let stale_uid = "00000000-0000-4000-8000-000000000000";
    let e = node
        .run(node.call("ADD", "pod-a", stale_uid, &conf))
        .fails_with(3);
    assert!(
        e["details"].as_str().unwrap().contains("K8S_POD_UID"),
        "{e}"
    );
    assert_eq!(
        metric(r#"meta_cni_daemon_api_requests_total{verb="GET",resource="pods"}"#),
        1.0
    );
    node.pod.assert_clean();
}

#[test]
fn a_nad_changed_in_the_api_is_used_without_a_restart() {
    let node = Node::new();
    let uid = node.api.pod("default", "pod-a").unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let daemon = node.daemon();
    let conf = node.conf(&daemon);
    node.run(node.call("ADD", "pod-a", &uid, &conf)).success();
    assert_eq!(ipv4_addrs(&node.pod.pod, "data0"), ["10.20.1.2/24"]);
    node.run(node.call("DEL", "pod-a", &uid, &conf))
        .quiet_success();

    let ipam = node.pod.ipam_dir();
    node.api.add_nad(nad_in(
        "default",
        bridge_nad(&ipam, "net-a", "br-a2", "10.21.1.0/24", json!({})),
    ));
    // The watch brings the change within moments; allow a loaded machine a few seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        node.api.clear_requests();
        node.run(node.call("ADD", "pod-a", &uid, &conf)).success();
        let seen = ipv4_addrs(&node.pod.pod, "data0") == ["10.21.1.2/24"];
        assert_eq!(
            node.call_requests(),
            ["PATCH /api/v1/namespaces/default/pods/pod-a/status"],
            "served from the cache, without a GET"
        );
        node.run(node.call("DEL", "pod-a", &uid, &conf))
            .quiet_success();
        if seen {
            break;
        }
        assert!(Instant::now() < deadline, "the NAD change was never seen");
        std::thread::sleep(Duration::from_millis(100));
    }
    node.pod.assert_clean();
}

#[test]
fn a_restarted_daemon_resyncs_and_the_plugin_serves_calls_meanwhile() {
    let node = Node::new();
    let uid = node.api.pod("default", "pod-a").unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let mut daemon = node.daemon();
    let conf = node.conf(&daemon);
    daemon.kill();
    // Meanwhile: thin mode, which reads the pod and its NADs itself.
    node.api.clear_requests();
    let out = node.run(node.call("ADD", "pod-a", &uid, &conf));
    out.success();
    assert!(out.stderr.contains("thin mode"), "{}", out.stderr);
    assert!(
        node.call_requests()
            .contains(&"GET /api/v1/namespaces/default/pods/pod-a".to_string()),
        "{:?}",
        node.call_requests()
    );
    node.run(node.call("DEL", "pod-a", &uid, &conf))
        .quiet_success();

    // A pod made while the daemon was down is in its caches once it is back.
    let uid_b = node.add_pod("pod-b");
    daemon.restart();
    wait_ready(&daemon);
    node.api.clear_requests();
    node.run(node.call("ADD", "pod-b", &uid_b, &conf)).success();
    assert_eq!(
        node.call_requests(),
        ["PATCH /api/v1/namespaces/default/pods/pod-b/status"]
    );
    node.run(node.call("DEL", "pod-b", &uid_b, &conf))
        .quiet_success();
    node.pod.assert_clean();
}
