//! The policy delegate through the meta plugin: a pod with three interfaces (the cluster
//! bridge on eth0, a bridge NAD on net2, and on net1 a NAD whose list chains bridge and
//! `policy`), its net1 governed by a MultiNetworkPolicy that the meta plugin reads (from the
//! API stand-in in Kubernetes mode, from `policyDir` in standalone mode) and hands to the
//! delegate: the policy-for annotation, a pod selector with matchLabels, a peer selector with
//! matchExpressions and a named port all come into play. Real packets decide: the client pod
//! the policy selects reaches the named port and nothing else, another pod on the same
//! bridge reaches nothing, eth0 stays open; DEL leaves nothing.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use conformance::inspect::{ipv4_addrs, netlink, netns, nft_rules, ruleset};
use conformance::kube_api::{write_kubeconfig, KubeApi};
use conformance::meta_daemon::MetaDaemon;
use conformance::meta_pod::{bridge_nad, nad, MetaPod};
use conformance::policy_traffic::{tcp, wait_running, Listener, Verdict};
use ipnet::IpNet;
use kernel::{AddressOptions, PrivateNetns, VethRequest};
use serde_json::{json, Value};

const GOOD: &str = "10.10.3.50";
const BAD: &str = "10.10.3.51";

/// The NAD `default/secure`: bridge `br-s` on 10.10.3.0/24, then the policy delegate with no
/// inline rules (its rules are the MultiNetworkPolicies').
fn secure_nad(ipam: &Path) -> Value {
    let list = json!({"cniVersion": "1.0.0", "plugins": [
        {"type": "bridge", "bridge": "br-s",
         "ipam": {"type": "host-local", "subnet": "10.10.3.0/24", "dataDir": ipam}},
        {"type": "policy"}]});
    let mut nad = nad("secure", list);
    nad["metadata"]["namespace"] = json!("default");
    nad
}

/// Ingress to `app=server` pods on `secure`: TCP to the named port `http`, from pods whose
/// `role` is in `[client]`.
fn policy() -> Value {
    json!({"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
        "metadata": {"name": "clients-to-http", "namespace": "default",
            "annotations": {"k8s.v1.cni.cncf.io/policy-for": "secure"}},
        "spec": {"podSelector": {"matchLabels": {"app": "server"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchExpressions":
                    [{"key": "role", "operator": "In", "values": ["client"]}]}}],
                "ports": [{"protocol": "TCP", "port": "http"}]}]}})
}

/// A policy for another network, denying everything there: it must not touch net1.
fn other_policy() -> Value {
    json!({"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
        "metadata": {"name": "deny-on-net-a", "namespace": "default",
            "annotations": {"k8s.v1.cni.cncf.io/policy-for": "net-a"}},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
}

/// The server pod: labels, the named port, the networks annotation (Kubernetes mode).
fn server_pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "server", "namespace": "default", "labels": {"app": "server"},
            "annotations": {"k8s.v1.cni.cncf.io/networks":
                r#"[{"name": "net-a", "interface": "net2"}, {"name": "secure", "interface": "net1"}]"#}},
        "spec": {"containers": [{"name": "web", "image": "web",
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]}})
}

/// A peer pod with `role` and its address on `secure`, as its network-status reports it.
fn peer_pod(name: &str, role: &str, ip: &str) -> Value {
    let status = json!([{"name": "default/secure", "interface": "net1", "ips": [ip]}]);
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"role": role},
            "annotations": {"k8s.v1.cni.cncf.io/network-status": status.to_string()}},
        "spec": {"containers": [{"name": "c", "image": "c"}]}})
}

fn namespace_object() -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "default", "labels": {"kubernetes.io/metadata.name": "default"}}})
}

/// A client namespace on bridge `br-s` of the node, with `addr/24`.
fn client_on_br_s(node: &PrivateNetns, name: &str, addr: &str) -> PrivateNetns {
    let client = PrivateNetns::new().unwrap();
    let mut nl = netlink(node);
    let bridge = nl
        .link_by_name("br-s")
        .unwrap()
        .expect("the bridge plugin made br-s");
    let client_ns = client.netns().unwrap();
    nl.create_veth(&VethRequest {
        name: format!("v{name}"),
        peer_name: "eth0".into(),
        peer_netns: Some(&client_ns),
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
    wait_running(node, &format!("v{name}"));
    wait_running(&client, "eth0");
    client
}

fn first_ipv4(ns: &PrivateNetns, ifname: &str) -> IpAddr {
    let addrs = ipv4_addrs(ns, ifname);
    let first = addrs
        .first()
        .unwrap_or_else(|| panic!("no address on {ifname}"));
    IpAddr::V4(
        first
            .split('/')
            .next()
            .unwrap()
            .parse::<Ipv4Addr>()
            .unwrap(),
    )
}

fn with_prev(conf: &str, result: &Value) -> String {
    let mut conf: Value = serde_json::from_str(conf).unwrap();
    conf["prevResult"] = result.clone();
    conf.to_string()
}

/// ADD, the packets, CHECK and DEL of the server pod, the same in both modes.
fn server_pod_lifecycle(p: &MetaPod, conf: &str, args: &str) {
    let call = |verb: &str, conf: &str| p.call(verb, conf).var("CNI_ARGS", args);
    let result = p.run(call("ADD", conf)).success();
    let net1 = first_ipv4(&p.pod, "net1");
    let eth0 = first_ipv4(&p.pod, "eth0");
    assert!(net1.to_string().starts_with("10.10.3."), "{result}");

    // Only net1 has chains: the policy for net-a names a network this NAD is not, and eth0
    // runs no policy delegate.
    let rules = nft_rules(&p.pod).join("\n");
    assert!(rules.contains("net1"), "{}", ruleset(&p.pod));
    assert!(
        !rules.contains("net2") && !rules.contains("eth0"),
        "{}",
        ruleset(&p.pod)
    );

    wait_running(&p.pod, "net1");
    let _http = Listener::tcp(&p.pod, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);
    let _other = Listener::tcp(&p.pod, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 9090);
    let good = client_on_br_s(&p.node, "good", GOOD);
    let bad = client_on_br_s(&p.node, "bad", BAD);
    assert_eq!(
        tcp(&good, None, net1, 8080),
        Verdict::Allow,
        "client -> http"
    );
    assert_eq!(
        tcp(&good, None, net1, 9090),
        Verdict::Deny,
        "not the named port"
    );
    assert_eq!(tcp(&bad, None, net1, 8080), Verdict::Deny, "not a client");
    // eth0: the node reaches every port through the cluster bridge's gateway.
    assert_eq!(
        tcp(&p.node, None, eth0, 9090),
        Verdict::Allow,
        "eth0 untouched"
    );

    p.run(call("CHECK", &with_prev(conf, &result)))
        .quiet_success();
    p.run(call("DEL", conf)).quiet_success();
    // The veths of the clients are the test's: gone with their namespaces.
    drop((good, bad));
    p.assert_clean();
}

#[test]
fn standalone_three_interfaces_with_a_multi_network_policy_from_policy_dir() {
    let p = MetaPod::new();
    p.write_nad("default", "secure", &secure_nad(&p.ipam_dir()));
    let policy_dir = p.dir.path().join("policies");
    let objects = [
        ("default/clients-to-http.yaml", policy()),
        ("default/deny-on-net-a.yaml", other_policy()),
        ("default/server.yaml", server_pod()),
        ("pods/good.json", peer_pod("good", "client", GOOD)),
        ("pods/bad.json", peer_pod("bad", "other", BAD)),
        ("namespace.json", namespace_object()),
    ];
    for (rel, object) in objects {
        let path = policy_dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, object.to_string()).unwrap();
    }
    let conf = p.conf(
        json!([{"name": "net-a", "interface": "net2"}, {"name": "secure", "interface": "net1"}]),
        json!({"policyDir": policy_dir}),
    );
    server_pod_lifecycle(&p, &conf, "K8S_POD_NAMESPACE=default;K8S_POD_NAME=server");
}

/// The API stand-in in the pod's node holding the NADs, the namespace, both policies and the
/// three pods; the kubeconfig and the server pod's UID.
fn cluster(p: &MetaPod) -> (KubeApi, PathBuf, String) {
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
    let mut net_a = bridge_nad(&ipam, "net-a", "br-a", "10.10.1.0/24", json!({}));
    net_a["metadata"]["namespace"] = json!("default");
    api.add_nad(net_a);
    api.add_nad(secure_nad(&ipam));
    api.add_namespace(namespace_object());
    api.add_multi_network_policy(policy());
    api.add_multi_network_policy(other_policy());
    let server = api.add_pod(server_pod());
    api.add_pod(peer_pod("good", "client", GOOD));
    api.add_pod(peer_pod("bad", "other", BAD));
    let uid = server["metadata"]["uid"].as_str().unwrap().to_owned();
    (api, kubeconfig, uid)
}

/// The meta netconf of Kubernetes mode (networks from the pod's annotation), `extra` on top.
fn kube_conf(p: &MetaPod, kubeconfig: &Path, extra: Value) -> String {
    let mut conf: Value = serde_json::from_str(&p.conf(json!([]), extra)).unwrap();
    conf.as_object_mut().unwrap().remove("networks");
    conf["kubeconfig"] = json!(kubeconfig);
    conf.to_string()
}

#[test]
fn kubernetes_three_interfaces_with_a_multi_network_policy_from_the_api() {
    let p = MetaPod::new();
    let (api, kubeconfig, uid) = cluster(&p);
    server_pod_lifecycle(
        &p,
        &kube_conf(&p, &kubeconfig, json!({})),
        &format!("K8S_POD_NAMESPACE=default;K8S_POD_NAME=server;K8S_POD_UID={uid}"),
    );
    let listed: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && !r.path.contains("/pods/server"))
        .map(|r| r.path.clone())
        .collect();
    assert!(
        listed
            .iter()
            .any(|p| p == "/apis/k8s.cni.cncf.io/v1beta1/namespaces/default/multi-networkpolicies"),
        "{listed:?}"
    );
}

/// Through the thick-mode daemon the policies apply the same: its caches hold pods, NADs,
/// and the MultiNetworkPolicies, namespaces and pods a policy is made of.
#[test]
fn through_the_daemon_the_multi_network_policy_applies_the_same() {
    let p = MetaPod::new();
    let (api, kubeconfig, uid) = cluster(&p);
    let daemon = MetaDaemon::start(
        &netns(&p.node),
        &[
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--node-name",
            "node-1",
        ],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while daemon.get("/readyz").0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            daemon.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The policy watches (every policy, namespace and pod) sync beside the readiness ones.
    while !daemon.log_text().contains("policy caches synced") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            daemon.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    api.clear_requests();
    let conf = kube_conf(&p, &kubeconfig, json!({"daemonSocket": daemon.socket()}));
    server_pod_lifecycle(
        &p,
        &conf,
        &format!("K8S_POD_NAMESPACE=default;K8S_POD_NAME=server;K8S_POD_UID={uid}"),
    );
    let served = daemon.log_text();
    assert!(
        served.contains("ADD"),
        "the daemon served the calls: {served}"
    );
    assert!(
        !api.requests().iter().any(|r| r.method == "GET"
            && r.path == "/apis/k8s.cni.cncf.io/v1beta1/namespaces/default/multi-networkpolicies"),
        "the policies came from the daemon's caches, not a LIST"
    );
    let hits =
        r#"meta_cni_daemon_cache_lookups_total{resource="multi-networkpolicies",result="hit"}"#;
    assert_eq!(
        daemon.metric(hits),
        Some(1.0),
        "{}",
        daemon.get("/metrics").1
    );
}

/// The NAD `default/secure` and a policy directory holding the server pod and the policy
/// for `secure` (standalone mode); the directory.
fn secure_with_policy_dir(p: &MetaPod) -> PathBuf {
    p.write_nad("default", "secure", &secure_nad(&p.ipam_dir()));
    let policy_dir = p.dir.path().join("policies");
    std::fs::create_dir_all(policy_dir.join("default")).unwrap();
    for (name, object) in [("clients-to-http", policy()), ("server", server_pod())] {
        let path = policy_dir.join(format!("default/{name}.json"));
        std::fs::write(path, object.to_string()).unwrap();
    }
    policy_dir
}

/// The policy's transaction starts with the ADD, before any interface is made. When an
/// earlier network fails (net2's bridge name is taken by a veth on the node), the chain
/// never reaches net1's policy delegate, yet its transaction ran: the failed ADD undoes it
/// with everything else, in sequence and with the attachments at once.
#[test]
fn a_failed_add_leaves_no_policy_started_ahead() {
    for parallel in [false, true] {
        let p = MetaPod::new();
        let policy_dir = secure_with_policy_dir(&p);
        netlink(&p.node)
            .create_veth(&VethRequest {
                name: "br-a".into(),
                peer_name: "br-a-peer".into(),
                ..VethRequest::default()
            })
            .unwrap();
        let conf = p.conf(
            json!([{"name": "net-a", "interface": "net2"}, {"name": "secure", "interface": "net1"}]),
            json!({"policyDir": policy_dir, "parallelAttachments": parallel}),
        );
        let call = p
            .call("ADD", &conf)
            .var("CNI_ARGS", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=server");
        let err = p.run(call).failure();
        assert!(err["msg"].as_str().unwrap().contains("net-a"), "{err}");
        let listing = ruleset(&p.pod);
        assert!(
            !listing.contains("net1"),
            "parallel={parallel}: the policy started ahead was left: {listing}"
        );
        assert!(nft_rules(&p.pod).is_empty(), "{listing}");
        // The test's veth (both ends go together); the rest is the ADD's to have undone.
        let mut nl = netlink(&p.node);
        let veth = nl.link_by_name("br-a").unwrap().unwrap();
        nl.del_link(veth.index).unwrap();
        p.assert_clean();
    }
}

/// The policy's nft is spawned once the plan is known, but given its batch only after the
/// names check and the cache write. An ADD refused by the names check (the pod already has
/// a `net1`) leaves no rule: the spawned nft is killed having read nothing.
#[test]
fn an_add_refused_before_its_cache_applies_no_policy() {
    let p = MetaPod::new();
    let policy_dir = secure_with_policy_dir(&p);
    netlink(&p.pod)
        .create_veth(&VethRequest {
            name: "net1".into(),
            peer_name: "net1-peer".into(),
            ..VethRequest::default()
        })
        .unwrap();
    let conf = p.conf(
        json!([{"name": "secure", "interface": "net1"}]),
        json!({"policyDir": policy_dir}),
    );
    let call = p
        .call("ADD", &conf)
        .var("CNI_ARGS", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=server");
    let err = p.run(call).failure();
    assert!(err["msg"].as_str().unwrap().contains("net1"), "{err}");
    let listing = ruleset(&p.pod);
    assert!(nft_rules(&p.pod).is_empty(), "{listing}");
    assert!(!listing.contains("cni_policy"), "{listing}");
    let mut nl = netlink(&p.pod);
    let veth = nl.link_by_name("net1").unwrap().unwrap();
    nl.del_link(veth.index).unwrap();
    p.assert_clean();
}
