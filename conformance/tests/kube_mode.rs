//! The meta plugin in Kubernetes mode, through the API stand-in: CONFORMANCE.md statements
//! 34 (API side), 36 and 37, the three-network pod acceptance, UID checks, retries,
//! timeouts, token rotation, the default-network override, `network-status` failures rolled
//! back, and `readinessindicatorfile`.
//!
//! Every test has a private node namespace (with `lo` up, where the stand-in listens and the
//! plugin runs), a pod namespace, and its own cniDir, IPAM data dir and kubeconfig.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conformance::inspect::{self as inspect, host_veths, ipv4_addrs, link_names, netlink, netns};
use conformance::kube_api::{
    fixture, write_kubeconfig, write_kubeconfig_with_token_file, write_token_file, KubeApi,
    TOKEN_FILE,
};
use conformance::{Call, Output, PluginSet};
use kernel::PrivateNetns;
use serde_json::{json, Value};

const POD_UID: &str = "7c9f3a52-1e4b-4d6a-9b0e-3f2d8c6a1b47";
const STATUS_PATH: &str = "/api/v1/namespaces/default/pods/nfv-pod/status";
const NETWORK_STATUS: &str = "k8s.v1.cni.cncf.io/network-status";

fn mac(ns: &PrivateNetns, ifname: &str) -> String {
    let link = netlink(ns).link_by_name(ifname).unwrap().unwrap();
    let octets = link.mac.unwrap();
    octets
        .iter()
        .map(|o| format!("{o:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A NAD object as the API returns it, for a bridge network with its own data dir.
fn bridge_nad(namespace: &str, name: &str, bridge: &str, subnet: &str, ipam_dir: &Path) -> Value {
    let config = json!({"cniVersion": "1.0.0", "name": name, "type": "bridge",
        "bridge": bridge, "isDefaultGateway": true,
        "ipam": {"type": "host-local", "subnet": subnet, "dataDir": ipam_dir}});
    json!({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"),
                     "resourceVersion": "1", "generation": 1},
        "spec": {"config": config.to_string()}})
}

/// A fixture NAD with its IPAM pointed at the test's data dir (the fixtures, as a cluster
/// would hold them, use host-local's default dir).
fn fixture_nad(name: &str, ipam_dir: &Path) -> Value {
    let mut nad = fixture(name);
    let mut config: Value = serde_json::from_str(nad["spec"]["config"].as_str().unwrap()).unwrap();
    let first = match config.get_mut("plugins") {
        Some(plugins) => &mut plugins[0],
        None => &mut config,
    };
    first["ipam"]["dataDir"] = json!(ipam_dir);
    nad["spec"]["config"] = json!(config.to_string());
    nad
}

/// The names of a result's interfaces inside the pod.
fn sandbox_interfaces(result: &Value) -> Vec<&str> {
    result["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i.get("sandbox").is_some())
        .map(|i| i["name"].as_str().unwrap())
        .collect()
}

struct Cluster {
    node: PrivateNetns,
    pod: PrivateNetns,
    dir: tempfile::TempDir,
    api: KubeApi,
    kubeconfig: PathBuf,
}

impl Cluster {
    /// The API holds the fixture pod (`default/nfv-pod`, networks `default/net-a@net1,
    /// default/net-b`), the fixture NADs, and the cluster network `kube-system/cluster`.
    fn new() -> Cluster {
        Cluster::with_token(None)
    }

    fn with_token(token: Option<&str>) -> Cluster {
        let node = PrivateNetns::new().unwrap();
        let mut lo_nl = netlink(&node);
        let lo = lo_nl.link_by_name("lo").unwrap().unwrap();
        lo_nl.set_link_up(lo.index).unwrap();
        let api = netns(&node)
            .run(|| match token {
                Some(t) => KubeApi::builder().token(t).start(),
                None => KubeApi::start(),
            })
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = match token {
            Some(_) => write_kubeconfig_with_token_file(dir.path(), &api),
            None => write_kubeconfig(dir.path(), &api),
        };
        let cluster = Cluster {
            node,
            pod: PrivateNetns::new().unwrap(),
            dir,
            api,
            kubeconfig,
        };
        let ipam = cluster.ipam_dir();
        cluster.api.add_pod(fixture("pod-three-networks"));
        cluster.api.add_nad(fixture_nad("nad-net-a", &ipam));
        cluster.api.add_nad(fixture_nad("nad-net-b", &ipam));
        cluster.api.add_nad(bridge_nad(
            "kube-system",
            "cluster",
            "br-cluster",
            "10.20.0.0/24",
            &ipam,
        ));
        cluster
    }

    fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam")
    }

    fn cni_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn cache_file(&self) -> PathBuf {
        self.cni_dir().join("pod1+eth0.meta-cni.json")
    }

    fn conf(&self, extra: Value) -> String {
        let mut conf = json!({"cniVersion": "1.0.0", "name": "meta", "type": "meta-cni",
            "clusterNetwork": "cluster", "kubeconfig": self.kubeconfig,
            "cniDir": self.cni_dir(), "binDir": PluginSet::Ours.bin_dir(),
            "apiTimeoutSeconds": 2, "apiRetries": 2});
        for (k, v) in extra.as_object().into_iter().flatten() {
            conf[k] = v.clone();
        }
        conf.to_string()
    }

    /// A call for the fixture pod; `CNI_PATH` also holds the reference plugins, for the
    /// `tuning` plugin net-b chains after bridge.
    fn call(&self, verb: &str, conf: &str) -> Call {
        self.call_with_uid(verb, conf, POD_UID)
    }

    fn call_with_uid(&self, verb: &str, conf: &str, uid: &str) -> Call {
        Call::new(PluginSet::Ours, "meta-cni", verb)
            .container("pod1", &self.pod.path(), "eth0")
            .var(
                "CNI_PATH",
                &format!("{}:/usr/lib/cni", PluginSet::Ours.bin_dir().display()),
            )
            .var(
                "CNI_ARGS",
                &format!(
                    "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nfv-pod;\
                     K8S_POD_INFRA_CONTAINER_ID=pod1;K8S_POD_UID={uid}"
                ),
            )
            .stdin(conf)
    }

    fn run(&self, call: Call) -> Output {
        call.run_in(&netns(&self.node))
    }

    fn reservations(&self) -> Vec<String> {
        inspect::reservations(&self.ipam_dir())
    }

    fn host_veths(&self) -> usize {
        host_veths(&self.node).len()
    }

    fn patches(&self) -> Vec<Value> {
        self.api
            .requests()
            .iter()
            .filter(|r| r.is("PATCH", STATUS_PATH))
            .map(|r| {
                assert_eq!(
                    r.content_type.as_deref(),
                    Some("application/merge-patch+json")
                );
                r.json().unwrap()
            })
            .collect()
    }

    fn network_status(&self) -> Option<Value> {
        let pod = self.api.pod("default", "nfv-pod")?;
        let text = pod["metadata"]["annotations"][NETWORK_STATUS].as_str()?;
        Some(serde_json::from_str(text).unwrap())
    }

    fn assert_clean(&self) {
        assert_eq!(
            link_names(&self.pod),
            BTreeSet::from(["lo".to_string()]),
            "pod links left"
        );
        assert_eq!(self.host_veths(), 0, "host veths left");
        assert_eq!(
            self.reservations(),
            Vec::<String>::new(),
            "reservations left"
        );
        assert!(!self.cache_file().exists(), "cache left");
    }
}

/// The acceptance pod: three interfaces with the right names and addresses, network-status
/// PATCHed once with all three, the cluster network's result printed; DEL needs no API and
/// leaves nothing.
#[test]
fn statement_37_three_networks_through_the_api() {
    let c = Cluster::new();
    let conf = c.conf(json!({}));
    let result = c.run(c.call("ADD", &conf)).success();

    // resultMode defaults to "cluster" in Kubernetes mode: eth0 only.
    let sandboxed = sandbox_interfaces(&result);
    assert_eq!(sandboxed, ["eth0"], "{result}");
    assert_eq!(result["ips"][0]["address"], "10.20.0.2/24");
    assert_eq!(result["ips"].as_array().unwrap().len(), 1);

    assert_eq!(
        link_names(&c.pod),
        BTreeSet::from(["lo", "eth0", "net1", "net2"].map(String::from))
    );
    assert_eq!(ipv4_addrs(&c.pod, "eth0"), ["10.20.0.2/24"]);
    assert_eq!(ipv4_addrs(&c.pod, "net1"), ["10.10.1.2/24"]);
    assert_eq!(ipv4_addrs(&c.pod, "net2"), ["10.10.2.2/24"]);

    // The pod first, then its three NADs (fetched at once, in any order), then one PATCH.
    let mut requests: Vec<String> = c
        .api
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(requests.len(), 5, "{requests:#?}");
    assert_eq!(requests[0], "GET /api/v1/namespaces/default/pods/nfv-pod");
    assert_eq!(requests[4], format!("PATCH {STATUS_PATH}"));
    requests[1..4].sort();
    assert_eq!(
        requests[1..4],
        [
            "GET /apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/net-a",
            "GET /apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/net-b",
            "GET /apis/k8s.cni.cncf.io/v1/namespaces/kube-system/network-attachment-definitions/cluster",
        ]
    );
    let patches = c.patches();
    assert_eq!(patches.len(), 1, "network-status is written once");
    assert_eq!(
        patches[0]["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        [NETWORK_STATUS],
        "the patch touches that annotation only"
    );
    let status = c.network_status().unwrap();
    let entries = status.as_array().unwrap();
    assert_eq!(entries.len(), 3, "{status:#}");
    let expected = [
        ("kube-system/cluster", "eth0", "10.20.0.2", true),
        ("default/net-a", "net1", "10.10.1.2", false),
        ("default/net-b", "net2", "10.10.2.2", false),
    ];
    for (entry, (name, ifname, ip, default)) in entries.iter().zip(expected) {
        assert_eq!(entry["name"], name, "{entry}");
        assert_eq!(entry["interface"], ifname, "{entry}");
        assert_eq!(entry["ips"], json!([ip]), "{entry}");
        assert_eq!(entry["mac"], json!(mac(&c.pod, ifname)), "{entry}");
        assert_eq!(
            entry["default"].as_bool().unwrap_or(false),
            default,
            "{entry}"
        );
        assert!(entry["dns"].is_object(), "{entry}");
    }
    // The cluster network keeps the default route; net-a and net-b's were removed from
    // the pod (only one default route per family).
    assert_eq!(entries[0]["gateway"], json!(["10.20.0.1"]));

    c.run(c.call("CHECK", &conf)).quiet_success();
    c.api.clear_requests();
    c.run(c.call("DEL", &conf)).quiet_success();
    assert_eq!(c.api.requests(), [], "DEL from the cache needs no API");
    c.assert_clean();
}

#[test]
fn merged_result_on_request_in_kubernetes_mode() {
    let c = Cluster::new();
    let conf = c.conf(json!({"resultMode": "merged"}));
    let result = c.run(c.call("ADD", &conf)).success();
    let sandboxed = sandbox_interfaces(&result);
    assert_eq!(sandboxed, ["eth0", "net1", "net2"], "{result}");
    assert_eq!(result["ips"].as_array().unwrap().len(), 3, "{result}");
    assert_eq!(c.patches().len(), 1);
    c.run(c.call("DEL", &conf)).quiet_success();
    c.assert_clean();
}

fn set_networks_annotation(c: &Cluster, value: &str) {
    let mut pod = fixture("pod-three-networks");
    pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] = json!(value);
    c.api.add_pod(pod);
}

#[test]
fn statement_36_both_annotation_forms_through_the_plugin() {
    let c = Cluster::new();
    let conf = c.conf(json!({}));
    // The JSON form: interface names, a static IP (host-local takes CNI_ARGS IP=) and
    // cni-args merged into the delegate's args.
    set_networks_annotation(
        &c,
        r#"[{"name": "net-a", "interface": "data0", "ips": ["10.10.1.77/24"]},
            {"name": "net-b", "namespace": "default", "interface": "data1",
             "cni-args": {"note": "x"}}]"#,
    );
    c.run(c.call("ADD", &conf)).success();
    assert_eq!(ipv4_addrs(&c.pod, "data0"), ["10.10.1.77/24"]);
    assert_eq!(ipv4_addrs(&c.pod, "data1"), ["10.10.2.2/24"]);
    let cache: Value = serde_json::from_slice(&std::fs::read(c.cache_file()).unwrap()).unwrap();
    assert_eq!(
        cache["attachments"][2]["conf"]["plugins"][0]["args"]["cni"]["note"],
        "x"
    );
    c.run(c.call("DEL", &conf)).quiet_success();
    c.assert_clean();

    // Bad entries in either form: code 7 naming the entry, nothing made, no PATCH.
    for (value, named) in [
        ("default/net-a@bad/if", "bad/if"),
        ("net-a, a/b/c", "a/b/c"),
        ("Net_A", "Net_A"),
        (r#"[{"name": "net-a", "mac": "zz:zz"}]"#, "zz:zz"),
        (
            r#"[{"name": "net-a", "ips": ["10.0.0.300/24"]}]"#,
            "10.0.0.300/24",
        ),
        (r#"[{"name": "net-a", "interface": "a b"}]"#, "a b"),
        (r#"[{"namespace": "default"}]"#, "name"),
        ("[{", "[{"),
    ] {
        set_networks_annotation(&c, value);
        c.api.clear_requests();
        let e = c.run(c.call("ADD", &conf)).fails_with(7);
        let text = e.to_string();
        assert!(text.contains("k8s.v1.cni.cncf.io/networks"), "{value}: {e}");
        assert!(text.contains(named), "{value}: {e} should name {named}");
        assert!(c.patches().is_empty());
        c.assert_clean();
    }
}

#[test]
fn a_pod_with_another_uid_or_none_fails_add_with_code_3() {
    let c = Cluster::new();
    let conf = c.conf(json!({}));
    let e = c
        .run(c.call_with_uid("ADD", &conf, "0000-other"))
        .fails_with(3);
    assert!(e["details"].as_str().unwrap().contains("0000-other"), "{e}");
    c.assert_clean();
    // DEL goes on: nothing cached, the pod is not that pod, so the config's networks are
    // deleted and the call succeeds.
    c.run(c.call_with_uid("DEL", &conf, "0000-other"))
        .quiet_success();

    c.api.remove_pod("default", "nfv-pod");
    c.run(c.call("ADD", &conf)).fails_with(3);
    assert!(c.patches().is_empty());
    c.assert_clean();
}

#[test]
fn transient_api_failures_are_retried() {
    let c = Cluster::new();
    let conf = c.conf(json!({}));
    for status in [503, 500, 429] {
        c.api.clear_requests();
        c.api.fail_next(2, status);
        c.run(c.call("ADD", &conf)).success();
        let failed = c
            .api
            .requests()
            .iter()
            .filter(|r| r.status == status)
            .count();
        assert_eq!(failed, 2, "{status}");
        assert_eq!(c.patches().len(), 1);
        c.run(c.call("DEL", &conf)).quiet_success();
        c.assert_clean();
    }
    // A refusal is not retried: 403 on the pod GET fails at once, code 103.
    c.api.clear_requests();
    c.api
        .fail_path("/api/v1/namespaces/default/pods/nfv-pod", 403, 1);
    let e = c.run(c.call("ADD", &conf)).fails_with(103);
    assert!(e["msg"].as_str().unwrap().contains("403"), "{e}");
    assert_eq!(c.api.requests().len(), 1);
    c.assert_clean();
}

#[test]
fn api_retries_are_the_plugins_alone() {
    // With no retries allowed, one 503 fails the call: the client does not retry on its own.
    let c = Cluster::new();
    let conf = c.conf(json!({"apiRetries": 0}));
    c.api.clear_requests();
    c.api.fail_next(1, 503);
    let e = c.run(c.call("ADD", &conf)).fails_with(11);
    assert!(e["msg"].as_str().unwrap().contains("1 attempts"), "{e}");
    assert_eq!(c.api.requests().len(), 1);
    c.assert_clean();
}

#[test]
fn api_down_or_too_slow_on_add_is_code_11_and_makes_nothing() {
    let c = Cluster::new();
    let conf = c.conf(json!({"apiTimeoutSeconds": 0.5, "apiRetries": 1}));
    c.api.go_down();
    let e = c.run(c.call("ADD", &conf)).fails_with(11);
    assert!(e["msg"].as_str().unwrap().contains("2 attempts"), "{e}");
    c.assert_clean();
    netns(&c.node).run(|| c.api.come_up()).unwrap();

    c.api.set_delay(Duration::from_secs(2));
    let started = Instant::now();
    let e = c.run(c.call("ADD", &conf)).fails_with(11);
    assert!(e["details"].as_str().unwrap().contains("no answer"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
    c.api.set_delay(Duration::ZERO);
    c.assert_clean();
    c.run(c.call("ADD", &conf)).success();
    c.run(c.call("DEL", &conf)).quiet_success();
    c.assert_clean();
}

#[test]
fn statement_34_api_down_or_nad_deleted_on_del_cleans_from_the_cache() {
    let c = Cluster::new();
    let conf = c.conf(json!({}));
    c.run(c.call("ADD", &conf)).success();
    c.api.go_down();
    c.run(c.call("DEL", &conf)).quiet_success();
    c.assert_clean();
    netns(&c.node).run(|| c.api.come_up()).unwrap();

    c.run(c.call("ADD", &conf)).success();
    c.api.remove_nad("default", "net-a");
    c.api.remove_nad("default", "net-b");
    c.run(c.call("DEL", &conf)).quiet_success();
    c.assert_clean();
}

#[test]
fn statement_34_corrupt_cache_falls_back_to_the_api() {
    let c = Cluster::new();
    let conf = c.conf(json!({}));
    c.run(c.call("ADD", &conf)).success();
    std::fs::write(c.cache_file(), b"{\"containerID\": trunc").unwrap();
    c.api.clear_requests();
    c.run(c.call("DEL", &conf)).quiet_success();
    assert!(
        c.api
            .requests()
            .iter()
            .any(|r| r.is("GET", "/api/v1/namespaces/default/pods/nfv-pod")),
        "the pod's annotation was read again"
    );
    c.assert_clean();

    // With the pod gone too, the annotation's networks cannot be known: the config's are
    // deleted, and DEL says what it could not do instead of reporting success.
    c.run(c.call("ADD", &conf)).success();
    std::fs::write(c.cache_file(), b"not json").unwrap();
    c.api.remove_pod("default", "nfv-pod");
    let e = c.run(c.call("DEL", &conf)).fails_with(5);
    assert!(e["msg"].as_str().unwrap().contains("corrupt"), "{e}");
    assert!(
        !link_names(&c.pod).contains("eth0"),
        "the cluster network was deleted"
    );
    assert!(link_names(&c.pod).contains("net1"));
    assert!(c.cache_file().exists(), "kept for the operator");
}

#[test]
fn a_failed_network_status_patch_rolls_the_add_back() {
    let c = Cluster::new();
    let conf = c.conf(json!({}));
    c.api.fail_path(STATUS_PATH, 403, 1);
    let e = c.run(c.call("ADD", &conf)).fails_with(103);
    assert!(e["msg"].as_str().unwrap().contains("PATCH"), "{e}");
    c.assert_clean();
    // The pod deleted between GET and PATCH: code 3, rolled back.
    c.api.fail_path(STATUS_PATH, 404, 1);
    c.run(c.call("ADD", &conf)).fails_with(3);
    c.assert_clean();
}

#[test]
fn a_rotated_token_file_is_read_by_the_next_call() {
    let c = Cluster::with_token(Some("first"));
    let conf = c.conf(json!({}));
    c.run(c.call("ADD", &conf)).success();
    c.run(c.call("DEL", &conf)).quiet_success();

    c.api.set_token(Some("second"));
    write_token_file(&c.dir.path().join(TOKEN_FILE), "second");
    c.run(c.call("ADD", &conf)).success();
    c.run(c.call("DEL", &conf)).quiet_success();
    assert!(c.api.requests().iter().all(|r| r.status != 401));

    // A stale token is a refusal, not something to retry.
    c.api.set_token(Some("third"));
    let e = c.run(c.call("ADD", &conf)).fails_with(103);
    assert!(e["msg"].as_str().unwrap().contains("401"), "{e}");
    c.assert_clean();
}

#[test]
fn the_default_network_annotation_replaces_the_cluster_network() {
    let c = Cluster::new();
    let ipam = c.ipam_dir();
    c.api.add_nad(bridge_nad(
        "kube-system",
        "alt",
        "br-alt",
        "10.30.0.0/24",
        &ipam,
    ));
    let mut pod = fixture("pod-three-networks");
    pod["metadata"]["annotations"]["v1.multus-cni.io/default-network"] = json!("alt");
    c.api.add_pod(pod);
    let conf = c.conf(json!({}));
    let result = c.run(c.call("ADD", &conf)).success();
    assert_eq!(result["ips"][0]["address"], "10.30.0.2/24");
    assert_eq!(ipv4_addrs(&c.pod, "eth0"), ["10.30.0.2/24"]);
    assert_eq!(c.network_status().unwrap()[0]["name"], "kube-system/alt");
    c.run(c.call("DEL", &conf)).quiet_success();
    c.assert_clean();

    let mut pod = fixture("pod-three-networks");
    pod["metadata"]["annotations"]["v1.multus-cni.io/default-network"] = json!("a, b");
    c.api.add_pod(pod);
    let e = c.run(c.call("ADD", &conf)).fails_with(7);
    assert!(
        e.to_string().contains("v1.multus-cni.io/default-network"),
        "{e}"
    );
    c.assert_clean();
}

#[test]
fn readiness_indicator_file_gates_add_status_and_gc_but_not_del() {
    let c = Cluster::new();
    let ready = c.dir.path().join("ready");
    let conf = c.conf(json!({"readinessindicatorfile": ready,
        "readinessTimeoutSeconds": 0.3, "cniVersion": "1.1.0"}));
    let e = c.run(c.call("ADD", &conf)).fails_with(11);
    assert!(e["details"].as_str().unwrap().contains("ready"), "{e}");
    assert!(
        c.api.requests().is_empty(),
        "nothing is asked before the network is ready"
    );
    c.run(Call::new(PluginSet::Ours, "meta-cni", "STATUS").stdin(conf.as_str()))
        .fails_with(50);
    c.assert_clean();

    std::fs::write(&ready, b"").unwrap();
    c.run(c.call("ADD", &conf)).success();
    c.run(Call::new(PluginSet::Ours, "meta-cni", "STATUS").stdin(conf.as_str()))
        .quiet_success();
    std::fs::remove_file(&ready).unwrap();
    c.run(c.call("DEL", &conf)).quiet_success();
    c.assert_clean();
}

#[test]
fn each_nad_is_fetched_once_even_when_selected_twice() {
    let c = Cluster::new();
    set_networks_annotation(&c, "default/net-a@net1, net-b@data9, default/net-b");
    let conf = c.conf(json!({}));
    c.run(c.call("ADD", &conf)).success();
    assert_eq!(ipv4_addrs(&c.pod, "data9"), ["10.10.2.2/24"]);
    assert_eq!(ipv4_addrs(&c.pod, "net3"), ["10.10.2.3/24"]);
    let gets_of_net_b = c
        .api
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/network-attachment-definitions/net-b"))
        .count();
    assert_eq!(gets_of_net_b, 1);
    c.run(c.call("DEL", &conf)).quiet_success();
    c.assert_clean();
}
