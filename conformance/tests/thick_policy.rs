//! The daemon (thick mode) keeps running pods' policy rules up to date: a server pod added
//! through the daemon, its net1 on a NAD chaining bridge and `policy`, governed by a
//! MultiNetworkPolicy in the API stand-in. When the policy, a peer pod's labels or a
//! namespace's labels change, the daemon replaces net1's chains in one transaction: real
//! packets follow within a bounded wait, a TCP flow established before the change keeps
//! working, CHECK passes against the new rules, the metrics count the updates, and a
//! deleted policy leaves the pod unisolated with no chains; DEL then leaves nothing.
//!
//! Every test has its own node namespace (the stand-in, the daemon and the bridges live
//! there), a pod namespace and client namespaces on the pod's bridge.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use conformance::inspect::{ipv4_addrs, netlink, netns, nft_rules, ruleset};
use conformance::kube_api::{write_kubeconfig, KubeApi};
use conformance::meta_daemon::MetaDaemon;
use conformance::meta_pod::{bridge_nad, nad, MetaPod};
use conformance::policy_traffic::{tcp, wait_running, Conversation, Listener, Verdict};
use ipnet::IpNet;
use kernel::{AddressOptions, PrivateNetns, VethRequest};
use serde_json::{json, Value};

const GOOD: &str = "10.10.3.50";
const BAD: &str = "10.10.3.51";
/// How long a change may take to reach the pod's rules.
const BOUND: Duration = Duration::from_secs(5);

/// Ingress to `app=server` on `secure`, from `from`, to TCP `port`.
fn policy(port: u16, from: Value) -> Value {
    json!({"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
        "metadata": {"name": "to-server", "namespace": "default",
            "annotations": {"k8s.v1.cni.cncf.io/policy-for": "secure"}},
        "spec": {"podSelector": {"matchLabels": {"app": "server"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [from], "ports": [{"protocol": "TCP", "port": port}]}]}})
}

/// A peer pod in `namespace` with `labels` and its address on `secure`; on another node.
fn peer_pod(namespace: &str, name: &str, labels: Value, ip: &str) -> Value {
    let status = json!([{"name": "default/secure", "interface": "net1", "ips": [ip]}]);
    json!({"metadata": {"name": name, "namespace": namespace, "labels": labels,
            "annotations": {"k8s.v1.cni.cncf.io/network-status": status.to_string()}},
        "spec": {"nodeName": "node-2", "containers": [{"name": "c", "image": "c"}]}})
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}})
}

/// One node running the daemon against the stand-in, and the server pod's identity.
struct Node {
    p: MetaPod,
    api: KubeApi,
    kubeconfig: PathBuf,
    daemon: MetaDaemon,
    args: String,
}

impl Node {
    /// The stand-in holds the cluster NAD, `default/secure` (bridge `br-s` on
    /// 10.10.3.0/24, then `policy`), namespaces `default` and `peers` (`team=blue`), the
    /// server pod on this node and `policy`; the daemon runs and its caches are synced.
    fn new(policy: Value) -> Node {
        let p = MetaPod::new();
        let mut nl = netlink(&p.node);
        let lo = nl.link_by_name("lo").unwrap().unwrap();
        nl.set_link_up(lo.index).unwrap();
        let api = netns(&p.node).run(KubeApi::start).unwrap();
        let kubeconfig = write_kubeconfig(p.dir.path(), &api);
        let ipam = p.ipam_dir();
        let mut cluster = bridge_nad(
            &ipam,
            "cluster",
            "br-cluster",
            "10.10.0.0/24",
            json!({"isDefaultGateway": true}),
        );
        cluster["metadata"]["namespace"] = json!("kube-system");
        api.add_nad(cluster);
        let list = json!({"cniVersion": "1.0.0", "plugins": [
            {"type": "bridge", "bridge": "br-s",
             "ipam": {"type": "host-local", "subnet": "10.10.3.0/24", "dataDir": ipam}},
            {"type": "policy"}]});
        let mut secure = nad("secure", list);
        secure["metadata"]["namespace"] = json!("default");
        api.add_nad(secure);
        api.add_namespace(namespace("default", json!({})));
        api.add_namespace(namespace("peers", json!({"team": "blue"})));
        let server = api.add_pod(json!({
            "metadata": {"name": "server", "namespace": "default", "labels": {"app": "server"},
                "annotations": {"k8s.v1.cni.cncf.io/networks":
                    r#"[{"name": "secure", "interface": "net1"}]"#}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "web"}]}}));
        api.add_multi_network_policy(policy);
        let uid = server["metadata"]["uid"].as_str().unwrap().to_owned();
        let daemon = MetaDaemon::start(
            &netns(&p.node),
            &[
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
                "--node-name",
                "node-1",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while daemon.get("/readyz").0 != 200 {
            assert!(Instant::now() < deadline, "{}", daemon.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        Node {
            p,
            api,
            kubeconfig,
            daemon,
            args: format!("K8S_POD_NAMESPACE=default;K8S_POD_NAME=server;K8S_POD_UID={uid}"),
        }
    }

    /// The meta netconf: networks from the pod's annotation, through the daemon.
    fn conf(&self) -> String {
        let extra = json!({"daemonSocket": self.daemon.socket()});
        let mut conf: Value = serde_json::from_str(&self.p.conf(json!([]), extra)).unwrap();
        conf.as_object_mut().unwrap().remove("networks");
        conf["kubeconfig"] = json!(self.kubeconfig);
        conf.to_string()
    }

    /// Runs `verb` for the server pod (with `prev` as prevResult when given).
    fn call(&self, verb: &str, prev: Option<&Value>) -> conformance::Output {
        let mut conf: Value = serde_json::from_str(&self.conf()).unwrap();
        if let Some(prev) = prev {
            conf["prevResult"] = prev.clone();
        }
        let call = self
            .p
            .call(verb, &conf.to_string())
            .var("CNI_ARGS", &self.args);
        self.p.run(call)
    }

    /// The server pod's address on net1.
    fn net1(&self) -> IpAddr {
        let addrs = ipv4_addrs(&self.p.pod, "net1");
        let first = addrs.first().expect("an address on net1");
        first.split('/').next().unwrap().parse().unwrap()
    }

    /// A client namespace on `br-s` with `addr/24`.
    fn client(&self, name: &str, addr: &str) -> PrivateNetns {
        let client = PrivateNetns::new().unwrap();
        let mut nl = netlink(&self.p.node);
        let bridge = nl.link_by_name("br-s").unwrap().expect("br-s");
        nl.create_veth(&VethRequest {
            name: format!("v{name}"),
            peer_name: "eth0".into(),
            peer_netns: Some(&client.netns().unwrap()),
            master: Some(bridge.index),
            up: true,
            ..VethRequest::default()
        })
        .unwrap();
        let mut cnl = netlink(&client);
        let eth0 = cnl.link_by_name("eth0").unwrap().unwrap();
        cnl.set_link_up(eth0.index).unwrap();
        let net: IpNet = format!("{addr}/24").parse().unwrap();
        cnl.add_address(eth0.index, net, AddressOptions::default())
            .unwrap();
        // A SYN sent before the new links run is lost and would read as "denied".
        wait_running(&self.p.node, &format!("v{name}"));
        wait_running(&client, "eth0");
        wait_running(&self.p.pod, "net1");
        client
    }

    /// Replaces the labels of the stored object `get` returns, through `put`.
    fn relabel(&self, object: Option<Value>, labels: Value, put: impl Fn(&KubeApi, Value)) {
        let mut object = object.expect("the object exists");
        object["metadata"]["labels"] = labels;
        put(&self.api, object);
    }

    fn updates(&self, result: &str) -> f64 {
        let line = format!("meta_cni_daemon_policy_updates_total{{result=\"{result}\"}}");
        self.daemon.metric(&line).unwrap_or(0.0)
    }
}

/// Waits (up to [`BOUND`]) until every `(client, port, verdict)` holds at once.
fn eventually(node: &Node, expect: &[(&PrivateNetns, u16, Verdict)], what: &str) {
    let deadline = Instant::now() + BOUND;
    let dst = node.net1();
    loop {
        let seen: Vec<Verdict> = expect
            .iter()
            .map(|(client, port, _)| tcp(client, None, dst, *port))
            .collect();
        if seen.iter().zip(expect).all(|(s, (_, _, want))| s == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: saw {seen:?}\n{}\n{}",
            ruleset(&node.p.pod),
            node.daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_changed_policy_reaches_the_running_pod_and_established_flows_survive() {
    let from_clients = json!({"podSelector": {"matchLabels": {"role": "client"}}});
    let node = Node::new(policy(8080, from_clients.clone()));
    node.api
        .add_pod(peer_pod("default", "good", json!({"role": "client"}), GOOD));
    let result = node.call("ADD", None).success();
    let _a = Listener::tcp_echo(&node.p.pod, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);
    let _b = Listener::tcp_echo(&node.p.pod, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 9090);
    let good = node.client("good", GOOD);
    // The peer was stored a moment before the ADD: the daemon's caches may learn of it
    // just after, and the updater then opens A.
    eventually(
        &node,
        &[(&good, 8080, Verdict::Allow), (&good, 9090, Verdict::Deny)],
        "A allowed and B denied",
    );
    let net1 = node.net1();
    let mut kept = Conversation::open(&good, net1, 8080);
    assert!(kept.echoes());

    // Port B instead of A.
    node.api
        .add_multi_network_policy(policy(9090, from_clients));
    eventually(
        &node,
        &[(&good, 9090, Verdict::Allow), (&good, 8080, Verdict::Deny)],
        "B allowed and A denied after the update",
    );
    assert!(
        kept.echoes(),
        "the flow established before the update goes on"
    );
    node.call("CHECK", Some(&result)).quiet_success();
    assert!(
        node.updates("installed") >= 1.0,
        "{}",
        node.daemon.get("/metrics").1
    );
    assert_eq!(node.updates("error"), 0.0, "{}", node.daemon.log_text());

    // No policy left: the pod is not isolated and net1 has no chains.
    node.api.remove_multi_network_policy("default", "to-server");
    eventually(
        &node,
        &[(&good, 9090, Verdict::Allow), (&good, 8080, Verdict::Allow)],
        "everything allowed once the policy is gone",
    );
    assert!(
        !nft_rules(&node.p.pod).iter().any(|r| r.contains("net1")),
        "{}",
        ruleset(&node.p.pod)
    );
    assert!(node.updates("removed") >= 1.0);
    node.call("CHECK", Some(&result)).quiet_success();
    assert!(kept.echoes());

    drop(kept);
    node.call("DEL", None).quiet_success();
    drop(good);
    assert!(
        nft_rules(&node.p.pod).is_empty(),
        "{}",
        ruleset(&node.p.pod)
    );
    let chains = ruleset(&node.p.pod);
    assert!(!chains.contains("chain net1"), "{chains}");
    node.p.assert_clean();
}

#[test]
fn peer_and_namespace_label_changes_flip_access() {
    // From client pods of team=blue namespaces only.
    let from = json!({"namespaceSelector": {"matchLabels": {"team": "blue"}},
        "podSelector": {"matchLabels": {"role": "client"}}});
    let node = Node::new(policy(8080, from));
    node.api
        .add_pod(peer_pod("peers", "good", json!({"role": "client"}), GOOD));
    node.api
        .add_pod(peer_pod("peers", "bad", json!({"role": "other"}), BAD));
    let result = node.call("ADD", None).success();
    let _a = Listener::tcp_echo(&node.p.pod, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);
    let good = node.client("good", GOOD);
    let bad = node.client("bad", BAD);
    eventually(
        &node,
        &[(&good, 8080, Verdict::Allow), (&bad, 8080, Verdict::Deny)],
        "the client allowed, the other pod not",
    );

    // The peer pods swap roles.
    node.relabel(
        node.api.pod("peers", "good"),
        json!({"role": "other"}),
        |a, o| {
            a.add_pod(o);
        },
    );
    node.relabel(
        node.api.pod("peers", "bad"),
        json!({"role": "client"}),
        |a, o| {
            a.add_pod(o);
        },
    );
    eventually(
        &node,
        &[(&good, 8080, Verdict::Deny), (&bad, 8080, Verdict::Allow)],
        "access follows the pods' labels",
    );

    // Their namespace leaves team blue.
    node.relabel(
        Some(namespace("peers", json!({}))),
        json!({"team": "red"}),
        |a, o| {
            a.add_namespace(o);
        },
    );
    eventually(
        &node,
        &[(&good, 8080, Verdict::Deny), (&bad, 8080, Verdict::Deny)],
        "access follows the namespace's labels",
    );
    node.call("CHECK", Some(&result)).quiet_success();
    assert!(
        node.updates("installed") >= 2.0,
        "{}",
        node.daemon.get("/metrics").1
    );

    node.call("DEL", None).quiet_success();
    drop((good, bad));
    assert!(
        nft_rules(&node.p.pod).is_empty(),
        "{}",
        ruleset(&node.p.pod)
    );
    node.p.assert_clean();
}
