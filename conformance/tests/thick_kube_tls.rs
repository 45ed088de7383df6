//! Thick mode against an API server as a cluster runs it: `meta-cni-daemon` over HTTPS with
//! a client certificate (every request, watches included, authenticated as its CN), and
//! in-cluster as a DaemonSet runs it (no kubeconfig: `KUBERNETES_SERVICE_HOST`/`PORT` and
//! the service account directory), picking up a rotated token without a restart.
//!
//! Every test has a private node namespace (with `lo` up: the stand-in and the daemon's
//! health port listen there), a pod namespace, and its own directories.

use std::path::Path;
use std::time::{Duration, Instant};

use conformance::inspect::{ipv4_addrs, netns};
use conformance::kube_api::{
    service_env, write_kubeconfig_with_client_cert, write_service_account, write_token_file,
    KubeApi, KubeApiBuilder, SERVICE_ACCOUNT_TOKEN,
};
use conformance::kube_node::{KubeNode, NODE_NAME as NODE};
use conformance::meta_daemon::MetaDaemon;
use conformance::meta_pod::MetaPod;
use conformance::{Call, PluginSet};
use serde_json::{json, Value};

const STATUS_PATH: &str = "/api/v1/namespaces/default/pods/pod-a/status";

struct Node {
    pod: MetaPod,
    api: KubeApi,
    uid: String,
}

impl Node {
    /// The stand-in from `builder` in the node namespace with `kube-system/cluster`,
    /// `default/net-a`, `default/net-b` and pod `default/pod-a` on this node.
    fn new(builder: KubeApiBuilder) -> Node {
        let node = KubeNode::start(builder, 31);
        let uid = node.add_pod("pod-a");
        let KubeNode { pod, api } = node;
        Node { pod, api, uid }
    }

    fn conf(&self, daemon: &MetaDaemon, extra: Value) -> String {
        let mut conf = json!({"cniVersion": "1.0.0", "name": "meta", "type": "meta-cni",
            "clusterNetwork": "cluster", "cniDir": self.pod.cni_dir(),
            "binDir": PluginSet::Ours.bin_dir(), "daemonSocket": daemon.socket()});
        for (k, v) in extra.as_object().into_iter().flatten() {
            conf[k] = v.clone();
        }
        conf.to_string()
    }

    fn call(&self, verb: &str, conf: &str) -> Call {
        self.pod.call(verb, conf).var(
            "CNI_ARGS",
            &format!(
                "K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-a;K8S_POD_UID={}",
                self.uid
            ),
        )
    }

    /// ADD through the daemon (served from its caches: one PATCH) then DEL; the token
    /// the PATCH carried.
    fn add_and_del(&self, conf: &str) -> Option<String> {
        self.api.clear_requests();
        let out = self.pod.run(self.call("ADD", conf));
        let r = out.success();
        assert!(
            !out.stderr.contains("thin mode"),
            "not the daemon's: {}",
            out.stderr
        );
        // host-local hands out the next address each time: only the subnets are known.
        let address = r["ips"][0]["address"].as_str().unwrap_or_default();
        assert!(address.starts_with("10.31.0."), "{r}");
        let data0 = ipv4_addrs(&self.pod.pod, "data0");
        assert!(
            data0.len() == 1 && data0[0].starts_with("10.31.1."),
            "{data0:?}"
        );
        let patches: Vec<_> = self
            .api
            .requests()
            .into_iter()
            .filter(|r| r.is("PATCH", STATUS_PATH))
            .collect();
        assert_eq!(patches.len(), 1, "{:?}", self.api.requests());
        assert_eq!(patches[0].status, 200, "{:?}", patches[0]);
        self.pod.run(self.call("DEL", conf)).quiet_success();
        self.pod.assert_clean();
        patches[0].token.clone()
    }
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
fn the_daemon_over_https_with_a_client_certificate() {
    let node = Node::new(KubeApi::builder().client_certs_required());
    let user = "system:serviceaccount:kube-system:meta-cni";
    let cert = node.api.client_cert(user);
    let kubeconfig = write_kubeconfig_with_client_cert(node.pod.dir.path(), &node.api, &cert);
    let path = kubeconfig.display().to_string();
    let daemon = MetaDaemon::start(
        &netns(&node.pod.node),
        &["--kubeconfig", &path, "--node-name", NODE],
    );
    wait_ready(&daemon);
    // Ready means the caches' LISTs are in; each reflector's WATCH follows its LIST, so it
    // may reach the server a moment later (a CI run caught readiness before any WATCH).
    let deadline = Instant::now() + Duration::from_secs(10);
    let lists = loop {
        let lists = node.api.requests();
        let watching = lists
            .iter()
            .any(|r| r.query.as_deref().unwrap_or("").contains("watch"));
        if watching {
            break lists;
        }
        assert!(Instant::now() < deadline, "no WATCH: {lists:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        lists.iter().all(|r| r.client_cn.as_deref() == Some(user)),
        "{lists:?}"
    );
    let conf = node.conf(&daemon, json!({"kubeconfig": kubeconfig}));
    assert_eq!(node.add_and_del(&conf), None);
    assert!(
        node.api
            .requests()
            .iter()
            .all(|r| r.client_cn.as_deref() == Some(user)),
        "{:?}",
        node.api.requests()
    );
}

/// Starts the daemon in-cluster: the pod's environment and service account `sa`.
fn in_cluster_daemon(node: &Node, sa: &Path) -> MetaDaemon {
    let sa = sa.display().to_string();
    let daemon = MetaDaemon::start_with_env(
        &netns(&node.pod.node),
        &["--service-account-dir", &sa, "--node-name", NODE],
        &service_env(&node.api),
    );
    wait_ready(&daemon);
    daemon
}

/// kube 5 re-reads a token file on the first request 50 s or more after it last read it
/// (a 60 s cache, refreshed 10 s early), so this test waits that long once, by design: it
/// is what proves the daemon's long-lived clients follow a kubelet's rotation without a
/// restart. Meanwhile the stand-in keeps taking the old token, as a real API server does
/// for a rotated bound token.
#[test]
fn the_daemon_in_cluster_follows_a_rotated_service_account_token() {
    let node = Node::new(KubeApi::builder().tls().token("first"));
    let sa = write_service_account(&node.pod.dir.path().join("sa"), &node.api, "default");
    let daemon = in_cluster_daemon(&node, &sa);
    // The netconf names no kubeconfig: the daemon serves it with its service account.
    let conf = node.conf(&daemon, json!({}));
    assert_eq!(node.add_and_del(&conf).as_deref(), Some("first"));
    // Every client that served that call had read the token by now (the one that sends
    // the PATCH may be made on the first call, not at start: a CI run once caught it
    // made 0.1 s after readiness, and 51 s from readiness fell short of its refresh).
    let read_before = Instant::now();

    write_token_file(&sa.join(SERVICE_ACCOUNT_TOKEN), "second");
    node.api.rotate_token("second");
    // Right after the rotation the old token, still cached, is still good.
    node.add_and_del(&conf);

    let refreshed = read_before + Duration::from_secs(51);
    std::thread::sleep(refreshed.saturating_duration_since(Instant::now()));
    node.api.revoke_old_tokens();
    assert_eq!(node.add_and_del(&conf).as_deref(), Some("second"));
    // A refused token shows as the API's status ("401 Unauthorized"); a bare "401" also
    // matches a timing field (a CI run failed on `took_us=24011`).
    let log = daemon.log_text();
    assert!(
        !log.contains("Unauthorized") && !log.contains(" 401"),
        "{log}"
    );
}
