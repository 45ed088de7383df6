//! Thin mode (the plugin reads the API itself) over HTTPS, as against a real cluster: the
//! server's CA from the kubeconfig with a bearer token or a client certificate; a server of
//! another CA refused at once, naming it; and the in-cluster configuration (no kubeconfig,
//! `KUBERNETES_SERVICE_HOST`/`PORT` and a service account directory), whose token the next
//! call reads again after a rotation.
//!
//! Every test has a private node namespace (with `lo` up, where the stand-in listens), a pod
//! namespace, and its own directories.

use std::path::PathBuf;

use conformance::inspect::{ipv4_addrs, netns};
use conformance::kube_api::{
    service_env, write_kubeconfig, write_kubeconfig_with_ca, write_kubeconfig_with_client_cert,
    write_service_account, write_token_file, ClientCerts, KubeApi, KubeApiBuilder, RecordedRequest,
    SERVICE_ACCOUNT_TOKEN,
};
use conformance::kube_node::KubeNode;
use conformance::meta_pod::MetaPod;
use conformance::{Call, Output, PluginSet};
use serde_json::{json, Value};

const STATUS_PATH: &str = "/api/v1/namespaces/default/pods/pod-a/status";

struct TlsNode {
    pod: MetaPod,
    api: KubeApi,
    uid: String,
}

impl TlsNode {
    /// A stand-in started from `builder` in the node namespace, holding
    /// `kube-system/cluster`, `default/net-a`, `default/net-b` and pod `default/pod-a`
    /// (networks `net-a@data0, net-b`).
    fn new(builder: KubeApiBuilder) -> TlsNode {
        let node = KubeNode::start(builder, 30);
        let uid = node.add_pod("pod-a");
        let KubeNode { pod, api } = node;
        TlsNode { pod, api, uid }
    }

    /// The meta netconf with `extra` keys (`kubeconfig`, `serviceAccountDir`, ...).
    fn conf(&self, extra: Value) -> String {
        let mut conf = json!({"cniVersion": "1.0.0", "name": "meta", "type": "meta-cni",
            "clusterNetwork": "cluster", "cniDir": self.pod.cni_dir(),
            "binDir": PluginSet::Ours.bin_dir(), "apiTimeoutSeconds": 2, "apiRetries": 1});
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

    /// `call` with the variables the kubelet sets in a pod.
    fn in_pod(&self, call: Call) -> Call {
        service_env(&self.api)
            .iter()
            .fold(call, |call, (k, v)| call.var(k, v))
    }

    fn run(&self, call: Call) -> Output {
        self.pod.run(call)
    }

    /// ADD (three interfaces, the status PATCHed) then DEL, leaving nothing.
    fn add_and_del(&self, conf: &str, in_pod: bool) {
        let call = |verb| {
            let call = self.call(verb, conf);
            if in_pod {
                self.in_pod(call)
            } else {
                call
            }
        };
        let r = self.run(call("ADD")).success();
        // host-local hands out the next address each time: only the subnets are known.
        let address = r["ips"][0]["address"].as_str().unwrap_or_default();
        assert!(address.starts_with("10.30.0."), "{r}");
        let data0 = ipv4_addrs(&self.pod.pod, "data0");
        assert!(
            data0.len() == 1 && data0[0].starts_with("10.30.1."),
            "{data0:?}"
        );
        assert!(
            self.requests().iter().any(|r| r.is("PATCH", STATUS_PATH)),
            "{:?}",
            self.requests()
        );
        self.run(call("DEL")).quiet_success();
        self.pod.assert_clean();
    }

    fn requests(&self) -> Vec<RecordedRequest> {
        self.api.requests()
    }
}

#[test]
fn https_with_the_servers_ca_and_a_bearer_token() {
    let node = TlsNode::new(KubeApi::builder().tls().token("secret"));
    assert!(node.api.url().starts_with("https://"), "{}", node.api.url());
    let kubeconfig = write_kubeconfig(node.pod.dir.path(), &node.api);
    node.add_and_del(&node.conf(json!({"kubeconfig": kubeconfig})), false);
    let requests = node.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(
            (r.token.as_deref(), r.client_cn.as_deref()),
            (Some("secret"), None)
        );
        assert_eq!(r.status / 100, 2, "{r:?}");
    }
}

#[test]
fn https_with_a_client_certificate_authenticates_as_its_cn() {
    let node = TlsNode::new(KubeApi::builder().client_certs_required().token("unused"));
    let user = "system:node:node-1";
    let cert = node.api.client_cert(user);
    let kubeconfig = write_kubeconfig_with_client_cert(node.pod.dir.path(), &node.api, &cert);
    node.add_and_del(&node.conf(json!({"kubeconfig": kubeconfig})), false);
    let requests = node.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(
            (r.client_cn.as_deref(), r.token.as_deref()),
            (Some(user), None)
        );
        assert_eq!(r.status / 100, 2, "{r:?}");
    }

    // Without a certificate the server refuses during the handshake: no request is read,
    // and the plugin says so at once instead of retrying.
    node.api.clear_requests();
    let dir = tempfile::tempdir().unwrap();
    let token_only = write_kubeconfig(dir.path(), &node.api);
    let out = node.run(node.call("ADD", &node.conf(json!({"kubeconfig": token_only}))));
    let e = out.fails_with(103);
    assert!(
        e["msg"].as_str().unwrap().contains("TLS handshake failed"),
        "{e}"
    );
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);
    assert!(node.requests().is_empty(), "{:?}", node.requests());
    node.pod.assert_clean();
}

#[test]
fn a_server_whose_certificate_is_of_another_ca_is_refused_naming_it() {
    let node = TlsNode::new(KubeApi::builder().tls().token("secret"));
    let other = netns(&node.pod.node)
        .run(|| KubeApi::builder().tls().start())
        .unwrap();
    let other_ca = other.ca_pem().unwrap();
    let kubeconfig = write_kubeconfig_with_ca(node.pod.dir.path(), &node.api, &other_ca);
    let out = node.run(node.call("ADD", &node.conf(json!({"kubeconfig": kubeconfig}))));
    let e = out.fails_with(103);
    let msg = e["msg"].as_str().unwrap();
    assert!(msg.contains(&node.api.url()), "{e}");
    assert!(msg.contains("TLS handshake failed"), "{e}");
    assert!(
        e["details"].as_str().unwrap().contains("UnknownIssuer"),
        "{e}"
    );
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);
    assert!(node.requests().is_empty(), "{:?}", node.requests());
    node.pod.assert_clean();
}

#[test]
fn in_cluster_a_call_reads_the_service_account_and_a_rotated_token_at_once() {
    let node = TlsNode::new(KubeApi::builder().tls().token("first"));
    let sa: PathBuf = write_service_account(&node.pod.dir.path().join("sa"), &node.api, "default");
    let conf = node.conf(json!({"serviceAccountDir": sa}));
    node.add_and_del(&conf, true);
    assert!(node
        .requests()
        .iter()
        .all(|r| r.token.as_deref() == Some("first")));

    // The kubelet writes a new token; the API stops taking the old one at once. A plugin
    // call makes its client afresh, so the very next call sends the new token.
    write_token_file(&sa.join(SERVICE_ACCOUNT_TOKEN), "second");
    node.api.set_token(Some("second"));
    node.api.clear_requests();
    node.add_and_del(&conf, true);
    let requests = node.requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.token.as_deref() == Some("second") && r.status != 401),
        "{requests:?}"
    );

    // A pod's environment without a port, or a service account directory without a token,
    // is an error that names what is missing.
    let out = node.run(
        node.call("ADD", &conf)
            .var("KUBERNETES_SERVICE_HOST", &node.api.addr().ip().to_string()),
    );
    let e = out.fails_with(4);
    assert!(
        e["msg"]
            .as_str()
            .unwrap()
            .contains("KUBERNETES_SERVICE_PORT"),
        "{e}"
    );
    let empty = node.pod.dir.path().join("empty-sa");
    std::fs::create_dir(&empty).unwrap();
    let out =
        node.run(node.in_pod(node.call("ADD", &node.conf(json!({"serviceAccountDir": empty})))));
    let e = out.fails_with(7);
    let token = empty.join("token").display().to_string();
    assert!(e["msg"].as_str().unwrap().contains(&token), "{e}");
    node.pod.assert_clean();
}

#[test]
fn optional_client_certificates_leave_the_bearer_token_working() {
    let node = TlsNode::new(
        KubeApi::builder()
            .client_certs(ClientCerts::Optional)
            .token("t"),
    );
    let by_token = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(by_token.path(), &node.api);
    node.add_and_del(&node.conf(json!({"kubeconfig": kubeconfig})), false);
    assert!(node
        .requests()
        .iter()
        .all(|r| r.token.as_deref() == Some("t") && r.client_cn.is_none() && r.status < 400));

    node.api.clear_requests();
    let cert = node.api.client_cert("alice");
    let kubeconfig = write_kubeconfig_with_client_cert(node.pod.dir.path(), &node.api, &cert);
    node.add_and_del(&node.conf(json!({"kubeconfig": kubeconfig})), false);
    assert!(node
        .requests()
        .iter()
        .all(|r| r.client_cn.as_deref() == Some("alice") && r.status < 400));
}
