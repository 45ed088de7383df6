//! CONFORMANCE.md statement 40: libcni (the library cnitool and podman use) drives the meta
//! plugin through a conflist: add, check and del succeed, libcni's cache file is created on
//! add and removed on del, and a second del succeeds.
//!
//! The meta plugin runs in standalone mode (NADs from `nadDir`), with our delegates and with
//! the reference ones; the same operations on a plain bridge conflist run against both plugin
//! sets, so the assertions are proven on the reference plugins too. libcni runs inside a
//! private node namespace (bridges, host veths); pods are private namespaces.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use conformance::inspect::{self as inspect, ipv4_addrs, link_names, netlink};
use conformance::libcni::{cache_file, LibcniCall};
use conformance::{Output, PluginSet};
use kernel::{Netlink, Netns, PrivateNetns};
use serde_json::{json, Value};

const ID: &str = "libcni-pod";

/// A node namespace, a pod namespace and a directory for configs, caches and IPAM state.
struct Node {
    node: PrivateNetns,
    pod: PrivateNetns,
    dir: tempfile::TempDir,
}

fn bridge(bridge: &str, subnet: &str, ipam_dir: &Path) -> Value {
    json!({"type": "bridge", "bridge": bridge,
        "ipam": {"type": "host-local", "subnet": subnet, "dataDir": ipam_dir}})
}

fn nad(name: &str, config: &Value) -> String {
    serde_saphyr::to_string(&json!({"apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition", "metadata": {"name": name},
        "spec": {"config": config.to_string()}}))
    .unwrap()
}

impl Node {
    fn new() -> Node {
        Node {
            node: PrivateNetns::new().unwrap(),
            pod: PrivateNetns::new().unwrap(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a conflist named `name` holding `plugins`, and returns its path.
    fn conflist(&self, name: &str, version: &str, plugins: Value) -> PathBuf {
        let file = self.conflist_path(name);
        let list = json!({"cniVersion": version, "name": name, "plugins": plugins});
        std::fs::write(&file, list.to_string()).unwrap();
        file
    }

    /// The meta plugin's conflist: the cluster network and two NADs, delegates from
    /// `delegates`.
    fn meta_conflist(&self, version: &str, delegates: PluginSet) -> PathBuf {
        let ipam = self.path("ipam");
        let nads = self.path("nads");
        for (ns, name, conf) in [
            (
                "kube-system",
                "cluster",
                bridge("br-cluster", "10.40.0.0/24", &ipam),
            ),
            ("default", "net-a", bridge("br-a", "10.40.1.0/24", &ipam)),
            ("default", "net-b", bridge("br-b", "10.40.2.0/24", &ipam)),
        ] {
            let mut conf = conf;
            conf["cniVersion"] = json!(version);
            std::fs::create_dir_all(nads.join(ns)).unwrap();
            std::fs::write(nads.join(ns).join(format!("{name}.yaml")), nad(name, &conf)).unwrap();
        }
        self.conflist(
            "meta",
            version,
            json!([{"type": "meta-cni", "clusterNetwork": "cluster", "nadDir": nads,
                "cniDir": self.path("meta-cache"), "binDir": delegates.bin_dir(),
                "networks": [{"name": "net-a"}, {"name": "net-b", "interface": "data1"}]}]),
        )
    }

    fn conflist_path(&self, network: &str) -> PathBuf {
        self.path(&format!("{network}.conflist"))
    }

    fn call(&self, verb: &str, conflist: &Path) -> LibcniCall {
        LibcniCall::new(verb, conflist, &self.path("libcni-cache"))
            .container(ID, &self.pod.path(), "eth0")
            // libcni finds `meta-cni` here; the meta plugin puts binDir first for delegates.
            .plugin_dirs(&[PluginSet::Ours.bin_dir()])
    }

    fn run(&self, call: LibcniCall) -> Output {
        call.run_in(&self.node.netns().unwrap())
    }

    fn cache(&self, network: &str) -> PathBuf {
        cache_file(&self.path("libcni-cache"), network, ID, "eth0")
    }

    fn reservations(&self) -> Vec<String> {
        inspect::reservations(&self.path("ipam"))
    }

    /// Nothing of the pod is left: pod links, host veths, reservations, caches.
    fn assert_clean(&self, network: &str) {
        assert_eq!(link_names(&self.pod), BTreeSet::from(["lo".to_string()]));
        let veths: Vec<String> = link_names(&self.node)
            .into_iter()
            .filter(|n| n.starts_with("veth"))
            .collect();
        assert!(veths.is_empty(), "host veths left: {veths:?}");
        assert!(self.reservations().is_empty(), "{:?}", self.reservations());
        assert!(!self.cache(network).exists(), "libcni cache left");
        let meta_cache = conformance::inspect::meta_cache_files(&self.path("meta-cache"));
        assert!(meta_cache.is_empty(), "meta-cni cache left: {meta_cache:?}");
    }
}

/// libcni's cache file holds what the plugin returned, under its own keys.
fn assert_cached(n: &Node, network: &str, result: &Value) {
    let raw = std::fs::read(n.cache(network)).expect("libcni cache file after add");
    let cached: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(cached["kind"], "cniCacheV1", "{cached}");
    assert_eq!(cached["containerId"], ID);
    assert_eq!(cached["ifName"], "eth0");
    assert_eq!(cached["networkName"], network);
    assert_eq!(&cached["result"], result);
    // GetNetworkListCachedResult gives the same result back.
    let again = n.run(n.call("cached", &n.conflist_path(network))).success();
    assert_eq!(&again, result);
}

/// The pod interfaces of a result, in order, with their IPv4 addresses.
fn pod_interfaces(r: &Value) -> Vec<(String, Vec<String>)> {
    let interfaces = r["interfaces"].as_array().unwrap();
    interfaces
        .iter()
        .enumerate()
        .filter(|(_, i)| i.get("sandbox").is_some())
        .map(|(index, i)| {
            let ips = r["ips"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|ip| ip["interface"] == index)
                .map(|ip| ip["address"].as_str().unwrap().to_string())
                .collect();
            (i["name"].as_str().unwrap().to_string(), ips)
        })
        .collect()
}

#[test]
fn statement_40_meta_plugin_add_check_del_through_libcni() {
    for delegates in PluginSet::under_test() {
        let n = Node::new();
        let list = n.meta_conflist("1.0.0", delegates);
        let r = n.run(n.call("add", &list)).success();
        assert_eq!(r["cniVersion"], "1.0.0", "{r}");
        let expected = [
            ("eth0", "10.40.0.2/24"),
            ("net1", "10.40.1.2/24"),
            ("data1", "10.40.2.2/24"),
        ];
        let expected: Vec<(String, Vec<String>)> = expected
            .iter()
            .map(|(i, a)| (i.to_string(), vec![a.to_string()]))
            .collect();
        assert_eq!(pod_interfaces(&r), expected, "{delegates:?}: {r}");
        for (ifname, ips) in &expected {
            assert_eq!(&ipv4_addrs(&n.pod, ifname), ips, "{delegates:?}");
        }
        assert_cached(&n, "meta", &r);

        // CHECK: libcni hands the cached result to the plugin as prevResult.
        n.run(n.call("check", &list)).quiet_success();

        n.run(n.call("del", &list)).quiet_success();
        n.assert_clean("meta");
        // A second del: no cached result, nothing left, still success.
        n.run(n.call("del", &list)).quiet_success();
        n.assert_clean("meta");
    }
}

/// A 0.4.0 conflist: the result is 0.4.0 (with `ips[].version`), libcni caches it and hands
/// it back as prevResult on check and del.
#[test]
fn statement_40_meta_plugin_through_libcni_at_0_4_0() {
    let n = Node::new();
    let list = n.meta_conflist("0.4.0", PluginSet::Ours);
    let r = n.run(n.call("add", &list)).success();
    assert_eq!(r["cniVersion"], "0.4.0", "{r}");
    let versions: Vec<&Value> = r["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| &ip["version"])
        .collect();
    assert_eq!(versions, [&json!("4"); 3], "{r}");
    assert_cached(&n, "meta", &r);
    n.run(n.call("check", &list)).quiet_success();
    n.run(n.call("del", &list)).quiet_success();
    n.assert_clean("meta");
    n.run(n.call("del", &list)).quiet_success();
}

/// The same operations on a bridge conflist, against each plugin set: what the meta plugin
/// test asserts of libcni holds for the reference plugins too.
#[test]
fn statement_40_bridge_conflist_through_libcni() {
    for set in PluginSet::under_test() {
        let n = Node::new();
        let list = n.conflist(
            "net",
            "1.0.0",
            json!([bridge("br-l", "10.40.5.0/24", &n.path("ipam"))]),
        );
        let call = |verb: &str| n.call(verb, &list).plugin_dirs(&[set.bin_dir()]);
        let r = n.run(call("add")).success();
        assert_eq!(
            pod_interfaces(&r),
            [("eth0".to_string(), vec!["10.40.5.2/24".to_string()])],
            "{set:?}: {r}"
        );
        assert_cached(&n, "net", &r);
        n.run(call("check")).quiet_success();
        n.run(call("del")).quiet_success();
        n.assert_clean("net");
        n.run(call("del")).quiet_success();
        // CHECK with nothing cached: libcni passes no prevResult, and the bridge refuses.
        let out = n.run(call("check"));
        assert_ne!(out.code, 0, "{set:?}: check after del succeeded");
    }
}

/// With podman's CNI_ARGS passed by libcni, a CHECK after one of the pod's interfaces is
/// gone fails, and DEL still cleans up everything.
#[test]
fn statement_40_check_after_an_interface_is_removed_fails() {
    let n = Node::new();
    let list = n.meta_conflist("1.0.0", PluginSet::Ours);
    // podman's CNI_ARGS.
    let args = format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={ID}");
    n.run(n.call("add", &list).cni_args(&args)).success();
    let mut pod = Netlink::in_netns(&Netns::open(&n.pod.path()).unwrap()).unwrap();
    let data1 = pod.link_by_name("data1").unwrap().unwrap();
    pod.del_link(data1.index).unwrap();
    // The plugin's CNI error comes through libcni, naming the missing interface.
    let e = n.run(n.call("check", &list).cni_args(&args)).failure();
    assert!(e["msg"].as_str().unwrap().contains("data1"), "{e}");
    n.run(n.call("del", &list).cni_args(&args)).quiet_success();
    n.assert_clean("meta");
}

/// Capability arguments: libcni puts `mac` in the meta plugin's runtimeConfig (its conf
/// declares the capability), and the meta plugin passes it on only to the delegate that
/// declares it too (the cluster network's bridge), not to net-a's or net-b's.
#[test]
fn statement_40_capability_args_reach_only_the_delegates_that_declare_them() {
    const MAC: &str = "c2:40:00:00:00:01";
    for delegates in PluginSet::under_test() {
        let n = Node::new();
        let list = n.meta_conflist("1.0.0", delegates);
        let mut conf: Value = serde_json::from_slice(&std::fs::read(&list).unwrap()).unwrap();
        conf["plugins"][0]["capabilities"] = json!({"mac": true});
        std::fs::write(&list, conf.to_string()).unwrap();
        let cluster_nad = n.path("nads/kube-system/cluster.yaml");
        let mut cluster = bridge("br-cluster", "10.40.0.0/24", &n.path("ipam"));
        cluster["cniVersion"] = json!("1.0.0");
        cluster["capabilities"] = json!({"mac": true});
        std::fs::write(&cluster_nad, nad("cluster", &cluster)).unwrap();

        let call = |verb: &str| n.call(verb, &list).capability_args(json!({"mac": MAC}));
        n.run(call("add")).success();
        let mac = |ifname: &str| {
            netlink(&n.pod)
                .link_by_name(ifname)
                .unwrap()
                .unwrap()
                .mac_string()
                .unwrap()
        };
        assert_eq!(mac("eth0"), MAC, "{delegates:?}");
        assert_ne!(mac("net1"), MAC, "{delegates:?}");
        assert_ne!(mac("data1"), MAC, "{delegates:?}");
        n.run(call("check")).quiet_success();
        n.run(call("del")).quiet_success();
        n.assert_clean("meta");
    }
}
