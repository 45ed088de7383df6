//! The files in `samples/` are what users copy, so they are checked like code: every NAD
//! parses with `nad-crd` and sits at `<nadDir>/<namespace>/<name>.yaml`, every netconf is
//! JSON naming only NADs that exist, every pod's networks annotation parses and names only
//! existing NADs, the DaemonSet writes exactly `samples/netconf/kubernetes.conflist`, and
//! `kubectl apply --dry-run=client` accepts every manifest. And they work together: each
//! sample pod, its NADs and the Kubernetes netconf, through the API stand-in, give the pod
//! the interfaces, addresses, MAC and default route its annotation asks for.
//!
//! `kubectl apply --dry-run=client` still asks a server which kinds exist (discovery) and
//! whether each object exists (GET), so the kubectl check runs against the API stand-in,
//! told the kinds the samples use, holding no objects. It runs in a private network
//! namespace, and so does kubectl.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use conformance::kube_api::{write_kubeconfig, ApiResource, KubeApi};
use conformance::{Call, PluginSet};
use kernel::{Family, Netlink, PrivateNetns};
use nad_crd::{parse_networks_annotation, NadConfig, NetworkAttachmentDefinition};
use serde_json::{json, Value};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

/// The files directly in `dir` whose names end in one of `exts`, sorted.
fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e))
        })
        .collect();
    out.sort();
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every YAML document of a manifest file, as JSON values.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    // Empty and null documents are skipped.
    serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The sample NADs as `namespace/name`, each checked against its place in the nadDir tree.
fn sample_nads() -> BTreeSet<String> {
    let root = samples().join("nads");
    let mut found = BTreeSet::new();
    for ns_dir in std::fs::read_dir(&root).unwrap() {
        let ns_dir = ns_dir.unwrap().path();
        let namespace = ns_dir.file_name().unwrap().to_str().unwrap().to_owned();
        for path in files(&ns_dir, &["yaml"]) {
            let nad: NetworkAttachmentDefinition = serde_saphyr::from_str(&read(&path))
                .unwrap_or_else(|e| panic!("{} is not a NAD: {e}", path.display()));
            let stem = path.file_stem().unwrap().to_str().unwrap();
            assert_eq!(nad.name(), stem, "{}: name and file name", path.display());
            assert_eq!(
                nad.namespace(),
                Some(namespace.as_str()),
                "{}: namespace and directory",
                path.display()
            );
            let config = nad
                .parse_config()
                .unwrap_or_else(|e| panic!("{}: spec.config: {e}", path.display()));
            assert!(
                matches!(config, NadConfig::Plugin(_) | NadConfig::ConfList(_)),
                "{}: spec.config should be inline: {config:?}",
                path.display()
            );
            found.insert(format!("{namespace}/{stem}"));
        }
    }
    found
}

#[test]
fn every_nad_parses_and_sits_at_namespace_slash_name() {
    let nads = sample_nads();
    for want in [
        "kube-system/pod-network",
        "default/data-net",
        "default/ctrl-net",
        "default/mgmt-net",
    ] {
        assert!(nads.contains(want), "{want} missing from {nads:?}");
    }
}

/// The meta plugin's entry of a netconf file (a single plugin, or the first of a list).
fn meta_plugin(netconf: &Value) -> &Value {
    match netconf.get("plugins") {
        Some(plugins) => &plugins[0],
        None => netconf,
    }
}

#[test]
fn every_netconf_is_json_and_names_existing_nads() {
    let nads = sample_nads();
    let paths = files(&samples().join("netconf"), &["conf", "conflist", "json"]);
    assert!(paths.len() >= 2, "{paths:?}");
    for path in paths {
        let netconf = json_file(&path);
        let meta = meta_plugin(&netconf);
        assert_eq!(meta["type"], "meta-cni", "{}", path.display());
        let namespace = meta["multusNamespace"].as_str().unwrap_or("kube-system");
        let cluster = meta["clusterNetwork"].as_str().unwrap();
        assert!(
            nads.contains(&format!("{namespace}/{cluster}")),
            "{}: clusterNetwork {cluster}",
            path.display()
        );
        if let Some(networks) = meta.get("networks") {
            // The static networks are the annotation's JSON form; the pod namespace of the
            // demo and of a runtime without Kubernetes is "default".
            for sel in parse_networks_annotation(&networks.to_string(), "default")
                .unwrap_or_else(|e| panic!("{}: networks: {e}", path.display()))
            {
                assert!(
                    nads.contains(&sel.qualified_name()),
                    "{}: {}",
                    path.display(),
                    sel.qualified_name()
                );
            }
        }
    }
}

#[test]
fn every_pod_annotation_parses_and_names_existing_nads() {
    let nads = sample_nads();
    let mut forms = BTreeSet::new();
    for path in files(&samples().join("pods"), &["yaml"]) {
        for pod in yaml_documents(&path) {
            let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
            let value = pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no networks annotation", path.display()));
            forms.insert(value.contains('[')); // the JSON form, or the comma form
            let selections = parse_networks_annotation(value, namespace)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!selections.is_empty(), "{}", path.display());
            for sel in selections {
                assert!(
                    nads.contains(&sel.qualified_name()),
                    "{}: {}",
                    path.display(),
                    sel.qualified_name()
                );
            }
        }
    }
    assert_eq!(forms.len(), 2, "the samples show both annotation forms");
}

#[test]
fn the_daemonset_writes_the_kubernetes_netconf_sample() {
    let netconf = json_file(&samples().join("netconf/kubernetes.conflist"));
    let config_map = yaml_documents(&samples().join("deploy/daemonset.yaml"))
        .into_iter()
        .find(|doc| doc["kind"] == "ConfigMap")
        .expect("daemonset.yaml has the ConfigMap");
    let written: Value =
        serde_json::from_str(config_map["data"]["00-meta-cni.conflist"].as_str().unwrap())
            .expect("the ConfigMap's netconf is JSON");
    assert_eq!(written, netconf);
    let meta = meta_plugin(&netconf);
    assert!(meta["kubeconfig"].is_string(), "Kubernetes mode: {netconf}");
    assert!(
        meta.get("resultMode").is_none(),
        "Kubernetes mode keeps its default result"
    );
}

#[test]
fn rbac_is_least_privilege() {
    let rules: Vec<Value> = yaml_documents(&samples().join("deploy/rbac.yaml"))
        .into_iter()
        .filter(|doc| doc["kind"] == "ClusterRole" || doc["kind"] == "Role")
        .flat_map(|role| role["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    let mut granted = BTreeSet::new();
    for rule in &rules {
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    granted.insert(format!(
                        "{}/{} {}",
                        group.as_str().unwrap(),
                        resource.as_str().unwrap(),
                        verb.as_str().unwrap()
                    ));
                }
            }
        }
    }
    let want: BTreeSet<String> = [
        "/pods get",
        "/pods list",
        "/namespaces list",
        "/pods/status patch",
        "k8s.cni.cncf.io/network-attachment-definitions get",
        "k8s.cni.cncf.io/network-attachment-definitions list",
        "k8s.cni.cncf.io/network-attachment-definitions watch",
        "k8s.cni.cncf.io/multi-networkpolicies list",
        "resource.k8s.io/resourceclaims get",
        "resource.k8s.io/resourceclaims/status patch",
        "resource.k8s.io/resourceslices list",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(granted, want);
}

/// The kinds the samples use beyond pods and NADs, for the stand-in's discovery.
const KINDS: &[ApiResource] = &[
    ApiResource {
        group: "",
        version: "v1",
        plural: "configmaps",
        kind: "ConfigMap",
        namespaced: true,
    },
    ApiResource {
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        kind: "ServiceAccount",
        namespaced: true,
    },
    ApiResource {
        group: "",
        version: "v1",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false,
    },
    ApiResource {
        group: "apps",
        version: "v1",
        plural: "daemonsets",
        kind: "DaemonSet",
        namespaced: true,
    },
    ApiResource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterroles",
        kind: "ClusterRole",
        namespaced: false,
    },
    ApiResource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterrolebindings",
        kind: "ClusterRoleBinding",
        namespaced: false,
    },
    ApiResource {
        group: "apiextensions.k8s.io",
        version: "v1",
        plural: "customresourcedefinitions",
        kind: "CustomResourceDefinition",
        namespaced: false,
    },
];

/// A private "node" namespace with `lo` up, for a server and its clients; None (the test
/// skips) where namespaces cannot be made.
fn node_with_lo() -> Option<PrivateNetns> {
    let node = match PrivateNetns::new() {
        Ok(node) => node,
        Err(e) => {
            eprintln!("skipped: cannot create a network namespace here ({e})");
            return None;
        }
    };
    let mut nl = Netlink::in_netns(&node.netns().unwrap()).unwrap();
    let lo = nl.link_by_name("lo").unwrap().expect("lo");
    nl.set_link_up(lo.index).unwrap();
    Some(node)
}

#[test]
fn kubectl_dry_run_accepts_every_manifest() {
    let kubectl = Path::new("/usr/bin/kubectl");
    if !kubectl.exists() {
        eprintln!("skipped: no kubectl at {}", kubectl.display());
        return;
    }
    let Some(node) = node_with_lo() else { return };
    let netns = node.netns().unwrap();
    let api = netns
        .run(|| KubeApi::builder().discovery(KINDS).start())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(dir.path(), &api);

    for manifests in ["deploy", "nads", "pods"] {
        let path = samples().join(manifests);
        let out = netns
            .run(|| {
                Command::new(kubectl)
                    .args([
                        "apply",
                        "--dry-run=client",
                        "--validate=false",
                        "--recursive",
                    ])
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .arg("--cache-dir")
                    .arg(dir.path().join("cache"))
                    .arg("-f")
                    .arg(&path)
                    .env_remove("KUBECONFIG")
                    .output()
            })
            .unwrap()
            .expect("run kubectl");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "kubectl apply --dry-run=client -f {}:\n{stdout}\n{stderr}",
            path.display()
        );
        // One "created (dry run)" line per object of every YAML file.
        let objects: usize = walk_yaml(&path)
            .iter()
            .map(|f| yaml_documents(f).len())
            .sum();
        let created = stdout.matches("(dry run)").count();
        assert_eq!(created, objects, "{}:\n{stdout}", path.display());
    }
}

/// Every `.yaml`/`.yml`/`.json` file under `dir`, recursively: what `kubectl -R -f` reads.
fn walk_yaml(dir: &Path) -> Vec<PathBuf> {
    let mut out = files(dir, &["yaml", "yml", "json"]);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk_yaml(&path));
        }
    }
    out
}

/// Every sample NAD as the API would hold it, its host-local data dir moved (the
/// samples use host-local's default, the node's /var/lib/cni/networks) to `data_dir`.
fn nads_with_data_dir(data_dir: &Path) -> Vec<Value> {
    let mut nads = Vec::new();
    for ns_dir in std::fs::read_dir(samples().join("nads")).unwrap() {
        for path in files(&ns_dir.unwrap().path(), &["yaml"]) {
            let mut nad = yaml_documents(&path).remove(0);
            let mut config: Value =
                serde_json::from_str(nad["spec"]["config"].as_str().unwrap()).unwrap();
            let plugins = match config.get_mut("plugins") {
                Some(list) => list.as_array_mut().unwrap().iter_mut().collect(),
                None => vec![&mut config],
            };
            for plugin in plugins {
                if let Some(ipam) = plugin.get_mut("ipam") {
                    ipam["dataDir"] = json!(data_dir);
                }
            }
            nad["spec"]["config"] = json!(config.to_string());
            nads.push(nad);
        }
    }
    nads
}

/// What a sample pod should get.
struct Want {
    /// (interface, the start of its IPv4 address with prefix length)
    addresses: &'static [(&'static str, &'static str)],
    /// (interface, MAC) asked for.
    mac: Option<(&'static str, &'static str)>,
    /// (gateway, interface) of the one default route.
    default_route: (&'static str, &'static str),
}

#[test]
fn the_sample_pods_attach_through_the_kubernetes_netconf() {
    let comma = Want {
        addresses: &[
            ("eth0", "10.88.0."),
            ("net1", "10.20.1."),
            ("ctrl0", "10.20.2."),
        ],
        mac: None,
        default_route: ("10.88.0.1", "eth0"),
    };
    let json_form = Want {
        addresses: &[
            ("eth0", "10.88.0."),
            ("data0", "10.20.1.200/24"),
            ("ctrl0", "10.20.2.200/24"),
        ],
        mac: Some(("data0", "02:00:00:00:20:01")),
        default_route: ("10.20.1.1", "data0"),
    };
    for (file, want) in [("comma-form.yaml", comma), ("json-form.yaml", json_form)] {
        let Some(node) = node_with_lo() else { return };
        attach_sample_pod(&node, file, &want);
    }
}

fn attach_sample_pod(node: &PrivateNetns, file: &str, want: &Want) {
    let node_ns = node.netns().unwrap();
    let api = node_ns.run(KubeApi::start).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ipam = dir.path().join("ipam");
    let cache = dir.path().join("cache");
    for nad in nads_with_data_dir(&ipam) {
        api.add_nad(nad);
    }
    let pod = api.add_pod(yaml_documents(&samples().join("pods").join(file)).remove(0));
    let name = pod["metadata"]["name"].as_str().unwrap().to_owned();
    let uid = pod["metadata"]["uid"].as_str().unwrap();

    // The netconf as the runtime hands it over: the list's one plugin, with its name and
    // version, pointed at this test's API, cache and our plugins.
    let list = json_file(&samples().join("netconf/kubernetes.conflist"));
    let mut conf = meta_plugin(&list).clone();
    conf["name"] = list["name"].clone();
    conf["cniVersion"] = list["cniVersion"].clone();
    conf["kubeconfig"] = json!(write_kubeconfig(dir.path(), &api));
    conf["cniDir"] = json!(cache);
    conf["binDir"] = json!(PluginSet::Ours.bin_dir());
    let pod_ns = PrivateNetns::new().unwrap();
    let call = |verb: &str| {
        Call::new(PluginSet::Ours, "meta-cni", verb)
            .container("c1", &pod_ns.path(), "eth0")
            .var(
                "CNI_ARGS",
                &format!(
                    "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={name};\
                     K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID={uid}"
                ),
            )
            .stdin(conf.to_string())
            .run_in(&node_ns)
    };
    call("ADD").success();

    let mut nl = Netlink::in_netns(&pod_ns.netns().unwrap()).unwrap();
    let index = |nl: &mut Netlink, ifname: &str| {
        nl.link_by_name(ifname)
            .unwrap()
            .unwrap_or_else(|| panic!("{file}: no {ifname}"))
            .index
    };
    for (ifname, prefix) in want.addresses {
        let i = index(&mut nl, ifname);
        let addrs: Vec<String> = nl
            .addresses(Some(i), Some(Family::V4))
            .unwrap()
            .into_iter()
            .map(|a| a.addr.to_string())
            .collect();
        assert!(
            addrs.len() == 1 && addrs[0].starts_with(prefix),
            "{file}: {ifname} has {addrs:?}, want {prefix}*"
        );
    }
    if let Some((ifname, mac)) = want.mac {
        let link = nl.link_by_name(ifname).unwrap().unwrap();
        let have: Vec<String> = link
            .mac
            .unwrap()
            .iter()
            .map(|o| format!("{o:02x}"))
            .collect();
        assert_eq!(have.join(":"), mac, "{file}: {ifname}");
    }
    let defaults: Vec<(String, u32)> = nl
        .routes(Family::V4, None)
        .unwrap()
        .into_iter()
        .filter(|r| r.dst.prefix_len() == 0)
        .map(|r| (r.gateway.unwrap().to_string(), r.oif.unwrap()))
        .collect();
    let (gateway, ifname) = want.default_route;
    assert_eq!(
        defaults,
        [(gateway.to_owned(), index(&mut nl, ifname))],
        "{file}: default routes"
    );

    // network-status names every attachment with its interface.
    let pod = api.pod("default", &name).unwrap();
    let status = pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"]
        .as_str()
        .unwrap_or_else(|| panic!("{file}: no network-status"));
    let interfaces: Vec<String> = serde_json::from_str::<Vec<Value>>(status)
        .unwrap()
        .iter()
        .map(|s| s["interface"].as_str().unwrap().to_owned())
        .collect();
    let want_interfaces: Vec<&str> = want.addresses.iter().map(|(i, _)| *i).collect();
    assert_eq!(interfaces, want_interfaces, "{file}: {status}");

    call("DEL").quiet_success();
    let left: Vec<String> = nl
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .filter(|n| n != "lo")
        .collect();
    assert!(left.is_empty(), "{file}: pod links left: {left:?}");
    let veths = Netlink::in_netns(&node_ns)
        .unwrap()
        .links()
        .unwrap()
        .into_iter()
        .filter(|l| l.name.starts_with("veth"))
        .count();
    assert_eq!(veths, 0, "{file}: host veths left");
    for net in std::fs::read_dir(&ipam).unwrap() {
        for f in std::fs::read_dir(net.unwrap().path()).unwrap() {
            let f = f.unwrap().file_name().into_string().unwrap();
            assert!(
                f == "lock" || f.starts_with("last_reserved_ip") || cni::spare_file::is_spare(&f),
                "{file}: reservation {f} left"
            );
        }
    }
    let left = conformance::inspect::meta_cache_files(&cache);
    assert!(left.is_empty(), "{file}: cache left: {left:?}");
}
