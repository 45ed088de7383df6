//! CONFORMANCE.md statements 31-35, 38 and 39 (standalone mode: NADs from `nadDir`,
//! networks from the netconf's `networks`), through the multi-call binary on real
//! namespaces. Kubernetes mode (the API stand-in) is in `kube_mode.rs`.
//!
//! Every test has a private node namespace (bridges, host veths), a pod namespace, and its
//! own nadDir, cniDir and IPAM data dir.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conformance::inspect::{self as inspect, host_veths, ipv4_addrs, link_names, netlink, netns};
use conformance::{meta_cni_binary, Call, Output, PluginSet};
use kernel::{Family, PrivateNetns, VethRequest};
use serde_json::{json, Value};

struct Pod {
    node: PrivateNetns,
    pod: PrivateNetns,
    dir: tempfile::TempDir,
}

fn bridge_nad(data_dir: &Path, name: &str, bridge: &str, subnet: &str, extra: Value) -> Value {
    let mut conf = json!({"cniVersion": "1.0.0", "type": "bridge", "bridge": bridge,
        "ipam": {"type": "host-local", "subnet": subnet, "dataDir": data_dir}});
    for (k, v) in extra.as_object().into_iter().flatten() {
        conf[k] = v.clone();
    }
    nad(name, conf)
}

fn nad(name: &str, config: Value) -> Value {
    json!({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name}, "spec": {"config": config.to_string()}})
}

impl Pod {
    fn new() -> Pod {
        let pod = Pod {
            node: PrivateNetns::new().unwrap(),
            pod: PrivateNetns::new().unwrap(),
            dir: tempfile::tempdir().unwrap(),
        };
        let ipam = pod.ipam_dir();
        pod.write_nad(
            "kube-system",
            "cluster",
            &bridge_nad(
                &ipam,
                "cluster",
                "br-cluster",
                "10.10.0.0/24",
                json!({"isDefaultGateway": true}),
            ),
        );
        pod.write_nad(
            "default",
            "net-a",
            &bridge_nad(&ipam, "net-a", "br-a", "10.10.1.0/24", json!({})),
        );
        // A conflist: bridge, then loopback passing the result through.
        let list = json!({"cniVersion": "1.0.0", "plugins": [
            {"type": "bridge", "bridge": "br-b",
             "ipam": {"type": "host-local", "subnet": "10.10.2.0/24", "dataDir": ipam}},
            {"type": "loopback"}]});
        pod.write_nad("default", "net-b", &nad("net-b", list));
        pod
    }

    fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam")
    }

    fn cni_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn write_nad(&self, ns: &str, name: &str, nad: &Value) {
        let dir = self.dir.path().join("nads").join(ns);
        std::fs::create_dir_all(&dir).unwrap();
        // YAML is what operators write; JSON is YAML too.
        std::fs::write(
            dir.join(format!("{name}.yaml")),
            serde_saphyr::to_string(nad).unwrap(),
        )
        .unwrap();
    }

    fn conf(&self, networks: Value, extra: Value) -> String {
        let mut conf = json!({"cniVersion": "1.0.0", "name": "meta", "type": "meta-cni",
            "clusterNetwork": "cluster", "nadDir": self.dir.path().join("nads"),
            "cniDir": self.cni_dir(), "binDir": PluginSet::Ours.bin_dir(),
            "networks": networks});
        for (k, v) in extra.as_object().into_iter().flatten() {
            conf[k] = v.clone();
        }
        conf.to_string()
    }

    fn call(&self, verb: &str, conf: &str) -> Call {
        Call::new(PluginSet::Ours, "meta-cni", verb)
            .container("pod1", &self.pod.path(), "eth0")
            .stdin(conf)
    }

    fn run(&self, call: Call) -> Output {
        call.run_in(&netns(&self.node))
    }

    fn reservations(&self) -> Vec<String> {
        inspect::reservations(&self.ipam_dir())
    }

    fn cache_files(&self) -> usize {
        std::fs::read_dir(self.cni_dir())
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn host_veths(&self) -> usize {
        host_veths(&self.node).len()
    }

    /// Nothing of the pod is left: links, addresses, reservations, cache.
    fn assert_clean(&self) {
        assert_eq!(link_names(&self.pod), BTreeSet::from(["lo".to_string()]));
        assert_eq!(self.host_veths(), 0, "host veths left");
        assert!(self.reservations().is_empty(), "{:?}", self.reservations());
        assert_eq!(self.cache_files(), 0, "cache left");
    }
}

fn two_networks() -> Value {
    json!([{"name": "net-a", "interface": "data0"}, {"name": "net-b"}])
}

#[test]
fn statement_31_32_three_networks_in_order_merged_and_deleted() {
    let p = Pod::new();
    let conf = p.conf(two_networks(), json!({}));
    let r = p.run(p.call("ADD", &conf)).success();
    // Cluster network on CNI_IFNAME, then data0 as requested, then net2 by its index.
    let names: Vec<&str> = r["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i.get("sandbox").is_some())
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["eth0", "data0", "net2"], "{r}");
    let ips: Vec<(&str, &str)> = r["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| {
            let i = ip["interface"].as_u64().unwrap() as usize;
            (
                r["interfaces"][i]["name"].as_str().unwrap(),
                ip["address"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ips,
        [
            ("eth0", "10.10.0.2/24"),
            ("data0", "10.10.1.2/24"),
            ("net2", "10.10.2.2/24")
        ]
    );
    assert_eq!(ipv4_addrs(&p.pod, "eth0"), ["10.10.0.2/24"]);
    assert_eq!(ipv4_addrs(&p.pod, "data0"), ["10.10.1.2/24"]);
    assert_eq!(ipv4_addrs(&p.pod, "net2"), ["10.10.2.2/24"]);
    assert_eq!(p.cache_files(), 1);

    p.run(p.call("CHECK", &conf)).quiet_success();
    p.run(p.call("DEL", &conf)).quiet_success();
    p.assert_clean();
    // DEL again: nothing cached, the plan is resolved again and every delegate says gone.
    p.run(p.call("DEL", &conf)).quiet_success();
    p.assert_clean();
}

#[test]
fn result_mode_cluster_prints_the_cluster_network_only() {
    let p = Pod::new();
    let conf = p.conf(two_networks(), json!({"resultMode": "cluster"}));
    let r = p.run(p.call("ADD", &conf)).success();
    assert_eq!(r["interfaces"].as_array().unwrap().len(), 3, "{r}");
    assert_eq!(r["ips"][0]["address"], "10.10.0.2/24");
    assert_eq!(
        ipv4_addrs(&p.pod, "data0"),
        ["10.10.1.2/24"],
        "still attached"
    );
    p.run(p.call("DEL", &conf)).quiet_success();
    p.assert_clean();
}

#[test]
fn statement_32_duplicate_interface_fails_before_anything_is_made() {
    let p = Pod::new();
    let conf = p.conf(json!([{"name": "net-a", "interface": "eth0"}]), json!({}));
    let e = p.run(p.call("ADD", &conf)).fails_with(7);
    assert!(e["msg"].as_str().unwrap().contains("eth0"), "{e}");
    assert_eq!(link_names(&p.node), BTreeSet::from(["lo".to_string()]));
    p.assert_clean();
}

#[test]
fn statement_32_a_name_already_in_the_pod_fails_before_anything_is_made() {
    let p = Pod::new();
    netlink(&p.pod)
        .create_veth(&VethRequest {
            name: "net1".into(),
            peer_name: "net1p".into(),
            ..Default::default()
        })
        .unwrap();
    let conf = p.conf(json!([{"name": "net-a"}]), json!({}));
    let e = p.run(p.call("ADD", &conf)).fails_with(4);
    assert!(e["msg"].as_str().unwrap().contains("net1"), "{e}");
    assert!(
        e["details"].as_str().unwrap().contains("default/net-a"),
        "{e}"
    );
    assert_eq!(link_names(&p.node), BTreeSet::from(["lo".to_string()]));
    assert!(p.reservations().is_empty());
    assert_eq!(p.cache_files(), 0);
}

#[test]
fn statement_33_third_delegate_fails_and_everything_is_rolled_back() {
    let p = Pod::new();
    // net-c's bridge name is taken by a veth in the node: its ADD fails after two succeeded.
    netlink(&p.node)
        .create_veth(&VethRequest {
            name: "br-c".into(),
            peer_name: "br-c-peer".into(),
            ..VethRequest::default()
        })
        .unwrap();
    let ipam = p.ipam_dir();
    p.write_nad(
        "default",
        "net-c",
        &bridge_nad(&ipam, "net-c", "br-c", "10.10.3.0/24", json!({})),
    );
    let conf = p.conf(json!([{"name": "net-a"}, {"name": "net-c"}]), json!({}));
    let e = p.run(p.call("ADD", &conf)).fails_with(7);
    let text = format!("{} {}", e["msg"], e["details"]);
    assert!(text.contains("default/net-c"), "{e}");
    assert!(text.contains("not a bridge"), "{e}");
    p.assert_clean();
}

#[test]
fn statement_34_del_without_or_with_a_corrupt_cache_falls_back_to_the_config() {
    for corrupt in [true, false] {
        let p = Pod::new();
        let conf = p.conf(two_networks(), json!({}));
        p.run(p.call("ADD", &conf)).success();
        let file = std::fs::read_dir(p.cni_dir())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        if corrupt {
            std::fs::write(&file, b"{\"containerID\": truncat").unwrap();
        } else {
            std::fs::remove_file(&file).unwrap();
        }
        p.run(p.call("DEL", &conf)).quiet_success();
        p.assert_clean();
    }
}

#[test]
fn statement_34_del_from_the_cache_after_the_nad_is_deleted() {
    let p = Pod::new();
    let conf = p.conf(two_networks(), json!({}));
    p.run(p.call("ADD", &conf)).success();
    std::fs::remove_file(p.dir.path().join("nads/default/net-a.yaml")).unwrap();
    p.run(p.call("DEL", &conf)).quiet_success();
    p.assert_clean();
}

/// kill -9 of the plugin between two delegates, then DEL: nothing left behind.
#[test]
fn kill_9_between_delegates_then_del_leaves_nothing() {
    let p = Pod::new();
    // A bin dir where `slow` hangs on ADD (so the plugin can be killed while it waits) and is
    // our bridge for every other verb.
    let bin = p.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for name in ["bridge", "host-local", "loopback", "meta-cni"] {
        std::os::unix::fs::symlink(PluginSet::Ours.plugin(name), bin.join(name)).unwrap();
    }
    let script = format!(
        "#!/bin/sh\nif [ \"$CNI_COMMAND\" = ADD ]; then sleep 30; exit 1; fi\nexec {} \"$@\"\n",
        bin.join("bridge").display()
    );
    let slow = bin.join("slow");
    std::fs::write(&slow, script).unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let ipam = p.ipam_dir();
    let mut hang = bridge_nad(&ipam, "net-slow", "br-s", "10.10.4.0/24", json!({}));
    let mut config: Value = serde_json::from_str(hang["spec"]["config"].as_str().unwrap()).unwrap();
    config["type"] = json!("slow");
    hang["spec"]["config"] = json!(config.to_string());
    p.write_nad("default", "net-slow", &hang);
    let mut conf: Value =
        serde_json::from_str(&p.conf(json!([{"name": "net-a"}, {"name": "net-slow"}]), json!({})))
            .unwrap();
    conf["binDir"] = json!(bin);
    let conf = conf.to_string();

    let mut child = netns(&p.node)
        .run(|| {
            std::process::Command::new(bin.join("meta-cni"))
                .env_clear()
                .env("CNI_COMMAND", "ADD")
                .env("CNI_CONTAINERID", "pod1")
                .env("CNI_NETNS", p.pod.path())
                .env("CNI_IFNAME", "eth0")
                .env("CNI_PATH", &bin)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
        })
        .unwrap()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
    }
    // Wait until two attachments (cluster, net-a) are made: the plugin now waits on `slow`.
    let deadline = Instant::now() + Duration::from_secs(20);
    while ipv4_addrs(&p.pod, "net1").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ipv4_addrs(&p.pod, "net1"), ["10.10.1.2/24"]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        p.cache_files(),
        1,
        "the plan was cached before the delegates ran"
    );

    let del = Call::binary(&bin.join("meta-cni"), "DEL")
        .var("CNI_PATH", &bin.display().to_string())
        .container("pod1", &p.pod.path(), "eth0")
        .stdin(conf.as_str());
    p.run(del).quiet_success();
    p.assert_clean();
}

#[test]
fn statement_35_check_status_gc() {
    let p = Pod::new();
    let conf = p.conf(two_networks(), json!({}));
    p.run(p.call("ADD", &conf)).success();
    p.run(p.call("CHECK", &conf)).quiet_success();
    let index = netlink(&p.pod)
        .link_by_name("data0")
        .unwrap()
        .unwrap()
        .index;
    netlink(&p.pod)
        .del_address(index, "10.10.1.2/24".parse().unwrap())
        .unwrap();
    let e = p.run(p.call("CHECK", &conf)).fails_with(102);
    assert!(e["msg"].as_str().unwrap().contains("default/net-a"), "{e}");

    let v11 = |c: &str| {
        let mut v: Value = serde_json::from_str(c).unwrap();
        v["cniVersion"] = json!("1.1.0");
        v
    };
    let status = Call::new(PluginSet::Ours, "meta-cni", "STATUS").stdin(v11(&conf).to_string());
    p.run(status).quiet_success();
    // GC with no valid attachment: the pod's cache and every reservation go.
    let mut gc = v11(&conf);
    gc["cni.dev/valid-attachments"] = json!([]);
    p.run(Call::new(PluginSet::Ours, "meta-cni", "GC").stdin(gc.to_string()))
        .quiet_success();
    assert_eq!(p.cache_files(), 0);
    assert!(p.reservations().is_empty(), "{:?}", p.reservations());
    assert_eq!(link_names(&p.pod), BTreeSet::from(["lo".to_string()]));
}

#[test]
fn default_route_moves_to_the_chosen_attachment() {
    let p = Pod::new();
    let conf = p.conf(
        json!([{"name": "net-a", "interface": "data0", "default-route": ["10.10.1.1"]}]),
        json!({}),
    );
    let r = p.run(p.call("ADD", &conf)).success();
    let defaults: Vec<&Value> = r["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rt| rt["dst"] == "0.0.0.0/0")
        .collect();
    assert_eq!(
        defaults,
        [&json!({"dst": "0.0.0.0/0", "gw": "10.10.1.1"})],
        "{r}"
    );
    let routes = netlink(&p.pod)
        .routes(Family::V4, Some(kernel::RT_TABLE_MAIN))
        .unwrap();
    let data0 = netlink(&p.pod)
        .link_by_name("data0")
        .unwrap()
        .unwrap()
        .index;
    let kernel_defaults: Vec<_> = routes.iter().filter(|r| r.dst.prefix_len() == 0).collect();
    assert_eq!(kernel_defaults.len(), 1, "{kernel_defaults:?}");
    assert_eq!(kernel_defaults[0].oif, Some(data0));
    p.run(p.call("CHECK", &conf)).quiet_success();
    p.run(p.call("DEL", &conf)).quiet_success();
    p.assert_clean();

    // Two gateways for one family: refused before anything is made.
    let conf = p.conf(
        json!([{"name": "net-a", "default-route": ["10.10.1.1"]},
               {"name": "net-b", "default-route": ["10.10.2.1"]}]),
        json!({}),
    );
    p.run(p.call("ADD", &conf)).fails_with(7);
    p.assert_clean();
}

#[test]
fn statement_38_isolation_and_path_safety() {
    let p = Pod::new();
    p.write_nad(
        "team-b",
        "net-x",
        &bridge_nad(&p.ipam_dir(), "net-x", "br-x", "10.10.9.0/24", json!({})),
    );
    let conf = p.conf(
        json!([{"name": "net-x", "namespace": "team-b"}]),
        json!({"namespaceIsolation": true}),
    );
    let e = p
        .run(
            p.call("ADD", &conf)
                .var("CNI_ARGS", "K8S_POD_NAMESPACE=team-a"),
        )
        .fails_with(7);
    assert!(
        e["details"]
            .as_str()
            .unwrap()
            .contains("namespaceIsolation"),
        "{e}"
    );
    p.assert_clean();

    for bad in [
        json!([{"name": "../../etc/passwd"}]),
        json!("ns/../x"),
        json!([{"name": "a", "namespace": ".."}]),
    ] {
        let e = p
            .run(p.call("ADD", &p.conf(bad.clone(), json!({}))))
            .fails_with(7);
        assert!(
            e["msg"].as_str().unwrap().contains("networks"),
            "{bad}: {e}"
        );
        p.assert_clean();
    }
    // An over-long container ID: refused before the cache dir is even made.
    let long = "c".repeat(250);
    let call = Call::new(PluginSet::Ours, "meta-cni", "ADD")
        .container(&long, &p.pod.path(), "eth0")
        .stdin(p.conf(two_networks(), json!({})));
    p.run(call).fails_with(4);
    assert!(!p.cni_dir().exists());
    p.assert_clean();
}

/// A bundled delegate run in-process gives the same result and kernel state as the same
/// delegate exec'd (a copy of the binary is not "ours", so it is exec'd).
#[test]
fn statement_39_in_process_equals_exec() {
    let copy = tempfile::tempdir().unwrap();
    for name in ["bridge", "host-local", "loopback"] {
        std::fs::copy(meta_cni_binary(), copy.path().join(name)).unwrap();
    }
    let mut seen = Vec::new();
    for bin_dir in [
        PluginSet::Ours.bin_dir().to_path_buf(),
        copy.path().to_path_buf(),
    ] {
        let p = Pod::new();
        let conf = p.conf(two_networks(), json!({"binDir": bin_dir}));
        let r = p.run(p.call("ADD", &conf)).success();
        let shape: Vec<(Value, Value)> = r["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["name"].clone(), i.get("sandbox").is_some().into()))
            .filter(|(n, _)| !n.as_str().unwrap().starts_with("veth"))
            .collect();
        let kernel: Vec<Vec<String>> = ["eth0", "data0", "net2"]
            .iter()
            .map(|i| ipv4_addrs(&p.pod, i))
            .collect();
        seen.push((
            shape,
            r["ips"].clone(),
            r["routes"].clone(),
            kernel,
            p.reservations(),
        ));
        p.run(p.call("DEL", &conf)).quiet_success();
        p.assert_clean();
    }
    assert_eq!(seen[0], seen[1]);
}

#[test]
fn network_status_is_cached_in_standalone_mode() {
    let p = Pod::new();
    let conf = p.conf(two_networks(), json!({}));
    p.run(p.call("ADD", &conf)).success();
    let file = p.cni_dir().join("pod1_eth0.meta-cni.json");
    let cache: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let status: Vec<(String, String, bool)> = cache["networkStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["interface"].as_str().unwrap().to_string(),
                e["default"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            ("kube-system/cluster".into(), "eth0".into(), true),
            ("default/net-a".into(), "data0".into(), false),
            ("default/net-b".into(), "net2".into(), false),
        ]
    );
    p.run(p.call("DEL", &conf)).quiet_success();
    p.assert_clean();
}

#[test]
fn log_level_file_and_stderr_follow_the_netconf() {
    let p = Pod::new();
    let log = p.dir.path().join("meta-cni.log");
    let conf = p.conf(
        json!([]),
        json!({"logLevel": "debug", "logFile": log, "logToStderr": false}),
    );
    let out = p.run(p.call("ADD", &conf));
    out.success();
    assert_eq!(out.stderr, "", "logToStderr false: the file only");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("DEBUG") || text.contains("INFO"), "{text}");
    assert!(!out.stdout.contains("DEBUG"), "logs never reach stdout");
    p.run(p.call("DEL", &conf)).quiet_success();
    p.assert_clean();

    for (key, value) in [
        ("logLevel", json!("chatty")),
        ("logToStderr", json!("yes")),
        ("retryDeleteOnError", json!(1)),
        ("apiTimeoutSeconds", json!(0)),
        ("apiRetries", json!(99)),
        ("readinessTimeoutSeconds", json!(-1)),
    ] {
        let conf = p.conf(json!([]), json!({ key: value }));
        let e = p.run(p.call("ADD", &conf)).fails_with(7);
        assert!(e.to_string().contains(key), "{key}: {e}");
        p.assert_clean();
    }
}
