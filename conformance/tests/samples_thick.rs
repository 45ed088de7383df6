//! The thick-mode samples (`samples/deploy/thick/`): the DaemonSet installs exactly
//! `samples/netconf/thick.conflist` (the daemon's socket, no kubeconfig: the calls it serves
//! use its ServiceAccount), runs `meta-cni-daemon` in-cluster with the host's socket
//! directory and NODE_NAME from the downward API, and its RBAC grants exactly what the
//! daemon reads and writes. `tests/samples.rs` runs kubectl's dry run over these files too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn thick() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/deploy/thick")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every YAML document of a manifest file, as JSON values.
fn yaml_documents(path: &Path) -> Vec<Value> {
    serde_saphyr::from_multiple(&read(path))
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

fn document(path: &Path, kind: &str) -> Value {
    yaml_documents(path)
        .into_iter()
        .find(|doc| doc["kind"] == kind)
        .unwrap_or_else(|| panic!("{} has no {kind}", path.display()))
}

#[test]
fn the_thick_daemonset_installs_the_thick_netconf_and_runs_the_daemon_in_cluster() {
    let manifest = thick().join("daemonset.yaml");
    let netconf: Value = serde_json::from_str(&read(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/netconf/thick.conflist"),
    ))
    .unwrap();
    let config_map = document(&manifest, "ConfigMap");
    let written: Value =
        serde_json::from_str(config_map["data"]["00-meta-cni.conflist"].as_str().unwrap())
            .expect("the ConfigMap's netconf is JSON");
    assert_eq!(written, netconf);
    let meta = &netconf["plugins"][0];
    assert_eq!(meta["daemonSocket"], "/run/meta-cni/daemon.sock");
    assert!(meta.get("kubeconfig").is_none(), "in-cluster: {netconf}");

    let spec = &document(&manifest, "DaemonSet")["spec"]["template"]["spec"];
    let account = document(&thick().join("rbac.yaml"), "ServiceAccount");
    assert_eq!(spec["serviceAccountName"], account["metadata"]["name"]);
    let daemon = spec["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "daemon")
        .expect("a daemon container");
    assert_eq!(daemon["command"][0], "/usr/local/bin/meta-cni-daemon");
    let args: Vec<&str> = daemon["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.contains(&"--socket=/run/meta-cni/daemon.sock"),
        "{args:?}"
    );
    assert!(
        !args.iter().any(|a| a.starts_with("--kubeconfig")),
        "in-cluster: {args:?}"
    );
    let node_name = daemon["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "NODE_NAME")
        .expect("NODE_NAME");
    assert_eq!(
        node_name["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
    // Every host directory is mounted at its host path, the socket's directory included.
    let volumes = spec["volumes"].as_array().unwrap();
    for mount in daemon["volumeMounts"].as_array().unwrap() {
        let volume = volumes
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("no volume {}", mount["name"]));
        assert_eq!(volume["hostPath"]["path"], mount["mountPath"], "{mount}");
    }
    assert!(daemon["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mountPath"] == "/run/meta-cni"));
}

#[test]
fn the_thick_rbac_grants_what_the_daemon_watches_and_writes() {
    let mut granted = BTreeSet::new();
    for rule in document(&thick().join("rbac.yaml"), "ClusterRole")["rules"]
        .as_array()
        .unwrap()
    {
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
    let mut want = BTreeSet::new();
    for (group, resource) in [
        ("", "pods"),
        ("", "namespaces"),
        ("k8s.cni.cncf.io", "network-attachment-definitions"),
        ("k8s.cni.cncf.io", "multi-networkpolicies"),
        ("resource.k8s.io", "resourceclaims"),
        ("resource.k8s.io", "resourceslices"),
    ] {
        for verb in ["get", "list", "watch"] {
            want.insert(format!("{group}/{resource} {verb}"));
        }
    }
    want.insert("/pods/status patch".to_string());
    want.insert("resource.k8s.io/resourceclaims/status patch".to_string());
    assert_eq!(granted, want);
}
