//! CONFORMANCE.md statements 42 and 43, and the meta plugin's hostile-input defenses:
//! a refused or rolled-back ADD never leaves a pod that DEL cannot delete, DEL without a
//! cache succeeds whatever the config has become, calls for one container are serialized,
//! cache entries of distinct (containerID, ifname) pairs never mix, and bad environment or
//! cniDir values are refused before anything is made.
//!
//! Every test has a private node namespace, a pod namespace and its own directories
//! ([`MetaPod`]); traffic never leaves them.

use std::collections::BTreeSet;
use std::thread;

use conformance::inspect::{link_names, netlink};
use conformance::meta_pod::{bridge_nad, nad, MetaPod};
use conformance::{Call, Output, PluginSet};
use kernel::{PrivateNetns, VethRequest};
use serde_json::{json, Value};

/// `net-a` with `extra` keys in its selection.
fn net_a(extra: Value) -> Value {
    let mut sel = json!({"name": "net-a"});
    for (k, v) in extra.as_object().into_iter().flatten() {
        sel[k] = v.clone();
    }
    json!([sel])
}

/// ADD fails, then DEL succeeds twice and nothing of the pod is left.
fn refused_then_deleted(p: &MetaPod, conf: &str, add: Output, what: &str) {
    let e = add.failure();
    let code = e["code"].as_u64().unwrap();
    assert!(code != 0, "{what}: {e}");
    let del = p.run(p.call("DEL", conf));
    assert_eq!(
        del.code, 0,
        "{what}: DEL after the refused ADD ({e}) failed: {} {}",
        del.stdout, del.stderr
    );
    p.assert_clean();
    p.run(p.call("DEL", conf)).quiet_success();
}

#[test]
fn statement_42_del_succeeds_after_a_delegate_refuses_its_arguments() {
    let cases: Vec<(&str, Value)> = vec![
        ("multicast mac", net_a(json!({"mac": "01:00:5e:00:00:01"}))),
        (
            "cni-args with a bad mac",
            net_a(json!({"cni-args": {"mac": "zz:zz"}})),
        ),
        (
            "cni-args with a multicast mac",
            net_a(json!({"cni-args": {"mac": "03:00:00:00:00:01"}})),
        ),
        (
            "cni-args with a bad ips",
            net_a(json!({"cni-args": {"ips": ["nope"]}})),
        ),
    ];
    for (what, networks) in cases {
        let p = MetaPod::new();
        let conf = p.conf(networks, json!({}));
        let add = p.run(p.call("ADD", &conf));
        refused_then_deleted(&p, &conf, add, what);
    }
}

#[test]
fn statement_42_del_succeeds_after_cni_args_the_delegates_refuse() {
    for args in [
        "IgnoreUnknown=1;IP=garbage",
        "IgnoreUnknown=1;MAC=01:02:03:04:05:06",
    ] {
        let p = MetaPod::new();
        let conf = p.conf(net_a(json!({})), json!({}));
        let add = p.run(p.call("ADD", &conf).var("CNI_ARGS", args));
        let e = add.failure();
        let del = p.run(p.call("DEL", &conf).var("CNI_ARGS", args));
        assert_eq!(
            del.code, 0,
            "{args}: after {e}: {} {}",
            del.stdout, del.stderr
        );
        p.assert_clean();
    }
}

#[test]
fn statement_42_del_succeeds_after_a_nad_that_cannot_run() {
    let cases: Vec<(&str, Value)> = vec![
        (
            "unknown cniVersion",
            json!({"cniVersion": "9.9.9", "type": "bridge", "bridge": "br-x"}),
        ),
        (
            "type not installed",
            json!({"cniVersion": "1.0.0", "type": "no-such-plugin"}),
        ),
        (
            "ipam.type not installed",
            json!({"cniVersion": "1.0.0", "type": "bridge", "bridge": "br-x",
                   "ipam": {"type": "no-such-ipam"}}),
        ),
        (
            "conflist plugin not installed",
            json!({"cniVersion": "1.0.0", "plugins": [
                {"type": "bridge", "bridge": "br-x", "ipam": {}},
                {"type": "no-such-plugin"}]}),
        ),
    ];
    for (what, config) in cases {
        let p = MetaPod::new();
        p.write_nad("default", "net-x", &nad("net-x", config));
        let conf = p.conf(json!([{"name": "net-x"}]), json!({}));
        let add = p.run(p.call("ADD", &conf));
        let e = add.failure();
        // Refused before anything is made: the error names the network and no link exists.
        let text = format!("{} {}", e["msg"], e["details"]);
        assert!(text.contains("net-x"), "{what}: {e}");
        assert_eq!(
            link_names(&p.node),
            BTreeSet::from(["lo".to_string()]),
            "{what}"
        );
        refused_then_deleted(&p, &conf, add, what);
    }
}

#[test]
fn statement_42_del_after_a_rolled_back_add_leaves_nothing() {
    let p = MetaPod::new();
    // net-c's bridge name is taken by a veth in the node: its ADD fails after two succeeded.
    netlink(&p.node)
        .create_veth(&VethRequest {
            name: "br-c".into(),
            peer_name: "br-c-peer".into(),
            ..VethRequest::default()
        })
        .unwrap();
    p.write_nad(
        "default",
        "net-c",
        &bridge_nad(&p.ipam_dir(), "net-c", "br-c", "10.10.3.0/24", json!({})),
    );
    let conf = p.conf(json!([{"name": "net-a"}, {"name": "net-c"}]), json!({}));
    let add = p.run(p.call("ADD", &conf));
    let e = add.failure();
    let del = p.run(p.call("DEL", &conf));
    assert_eq!(del.code, 0, "after {e}: {}", del.stdout);
    let links = link_names(&p.node);
    assert!(links.contains("br-c"), "the node's own link stays");
    p.assert_clean();
}

#[test]
fn statement_42_del_without_a_cache_succeeds_when_the_plan_cannot_be_resolved() {
    let cases: Vec<(&str, Value, Value)> = vec![
        ("missing NAD", json!([{"name": "no-such-nad"}]), json!({})),
        ("bad networks entry", json!([{"name": "a/b/c"}]), json!({})),
        (
            "missing cluster network",
            json!([]),
            json!({"clusterNetwork": "no-such-cluster"}),
        ),
        (
            "isolated namespace",
            json!([{"name": "net-a", "namespace": "other"}]),
            json!({"namespaceIsolation": true}),
        ),
    ];
    for (what, networks, extra) in cases {
        let p = MetaPod::new();
        let conf = p.conf(networks, extra);
        let del = p.run(p.call("DEL", &conf));
        assert_eq!(del.code, 0, "{what}: {} {}", del.stdout, del.stderr);
        p.assert_clean();
        // The same after an ADD that the same problem refused.
        p.run(p.call("ADD", &conf)).failure();
        p.run(p.call("DEL", &conf)).quiet_success();
        p.assert_clean();
    }
}

#[test]
fn statement_43_distinct_pairs_never_share_cache_state() {
    let p = MetaPod::new();
    let other = PrivateNetns::new().unwrap();
    let conf = p.conf(json!([]), json!({}));
    let other_call = |verb: &str| {
        Call::new(PluginSet::Ours, "meta-cni", verb)
            .container("p_x", &other.path(), "eth0")
            .stdin(conf.as_str())
    };
    // Joined with `_`, both pairs would name the same cache file.
    p.run(p.call_for("p", "x_eth0", "ADD", &conf)).success();
    p.run(other_call("ADD")).success();
    p.run(p.call_for("p", "x_eth0", "DEL", &conf))
        .quiet_success();
    assert_eq!(link_names(&p.pod), BTreeSet::from(["lo".to_string()]));
    assert_eq!(
        link_names(&other),
        BTreeSet::from(["lo".to_string(), "eth0".to_string()]),
        "DEL of (p, x_eth0) touched (p_x, eth0)"
    );
    p.run(other_call("CHECK")).quiet_success();
    p.run(other_call("DEL")).quiet_success();
    assert_eq!(link_names(&other), BTreeSet::from(["lo".to_string()]));
    p.assert_clean();
}

/// Whether CHECK passes for the pod.
fn checks(p: &MetaPod, conf: &str) -> bool {
    p.run(p.call("CHECK", conf)).code == 0
}

#[test]
fn statement_43_racing_adds_of_one_container() {
    let p = MetaPod::new();
    let conf = p.conf(net_a(json!({})), json!({}));
    for round in 0..20 {
        let (a, b) = thread::scope(|s| {
            let a = s.spawn(|| p.run(p.call("ADD", &conf)));
            let b = s.spawn(|| p.run(p.call("ADD", &conf)));
            (a.join().unwrap(), b.join().unwrap())
        });
        let successes = [&a, &b].iter().filter(|o| o.code == 0).count();
        assert!(successes <= 1, "round {round}: both ADDs succeeded");
        if successes == 1 {
            assert!(
                checks(&p, &conf),
                "round {round}: an ADD reported success but CHECK fails: {} / {}",
                a.stdout,
                b.stdout
            );
        }
        p.run(p.call("DEL", &conf)).quiet_success();
        p.assert_clean();
    }
}

#[test]
fn statement_43_add_racing_del_of_one_container() {
    let p = MetaPod::new();
    let conf = p.conf(net_a(json!({})), json!({}));
    for round in 0..20 {
        let (add, del) = thread::scope(|s| {
            let add = s.spawn(|| p.run(p.call("ADD", &conf)));
            let del = s.spawn(|| p.run(p.call("DEL", &conf)));
            (add.join().unwrap(), del.join().unwrap())
        });
        del.quiet_success();
        let pod_links = link_names(&p.pod);
        if pod_links.len() == 1 {
            // The DEL came last: nothing of the pod may be left.
            p.assert_clean();
        } else {
            add.success();
            assert!(
                checks(&p, &conf),
                "round {round}: left links {pod_links:?} fail CHECK"
            );
        }
        p.run(p.call("DEL", &conf)).quiet_success();
        p.assert_clean();
    }
}

#[test]
fn an_empty_cni_dir_is_refused_before_anything_is_made() {
    let p = MetaPod::new();
    let conf = p.conf(json!([]), json!({"cniDir": ""}));
    let e = p.run(p.call("ADD", &conf)).fails_with(7);
    assert!(e["msg"].as_str().unwrap().contains("cniDir"), "{e}");
    p.assert_clean();
}

#[test]
fn non_utf8_environment_is_refused_naming_the_variable() {
    let p = MetaPod::new();
    let conf = p.conf(json!([]), json!({}));
    for var in [
        "CNI_ARGS",
        "CNI_NETNS",
        "CNI_PATH",
        "CNI_IFNAME",
        "CNI_CONTAINERID",
    ] {
        let call = p.call("ADD", &conf).var_bytes(var, b"K8S_POD_NAME=a\xff");
        let e = p.run(call).fails_with(4);
        let text = format!("{} {}", e["msg"], e["details"]);
        assert!(text.contains(var), "{var}: {e}");
        assert!(!text.contains("missing"), "{var} is set, not missing: {e}");
        p.assert_clean();
    }
}

#[test]
fn nad_dir_files_are_trusted_no_further_than_the_api() {
    let p = MetaPod::new();
    let conf = p.conf(json!([{"name": "net-x"}]), json!({}));
    let ns_dir = p.nad_dir().join("default");
    let file = ns_dir.join("net-x.yaml");
    let add = |p: &MetaPod| {
        // A FIFO must not block the call: give up on the test, not hang it.
        let (tx, rx) = std::sync::mpsc::channel();
        thread::scope(|s| {
            s.spawn(|| tx.send(p.run(p.call("ADD", &conf))).unwrap());
            rx.recv_timeout(std::time::Duration::from_secs(20))
                .expect("ADD blocked on a NAD file")
        })
    };

    // Not found: the error names every path tried.
    let e = add(&p).fails_with(7);
    for ext in ["yaml", "yml", "json"] {
        let tried = ns_dir.join(format!("net-x.{ext}"));
        assert!(
            e["details"]
                .as_str()
                .unwrap()
                .contains(tried.to_str().unwrap()),
            "{e}"
        );
    }
    p.assert_clean();

    // A FIFO is refused at once.
    nix::unistd::mkfifo(
        &file,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .unwrap();
    let e = add(&p).fails_with(7);
    assert!(
        e["details"]
            .as_str()
            .unwrap()
            .contains("not a regular file"),
        "{e}"
    );
    std::fs::remove_file(&file).unwrap();
    p.assert_clean();

    // Not a NAD, or another NAD than the path says, or unreadable: refused, content unsaid.
    for (text, why) in [
        (
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: net-x\n",
            "apiVersion",
        ),
        ("kind: Pod\nmetadata:\n  name: net-x\n", "kind is"),
        (
            "metadata:\n  name: net-a\nspec:\n  config: '{}'\n",
            "metadata.name",
        ),
        (
            "metadata:\n  name: net-x\n  namespace: kube-system\n",
            "metadata.namespace",
        ),
        ("metadata: [token-s3cr3t\n", "line"),
    ] {
        std::fs::write(&file, text).unwrap();
        let e = add(&p).failure();
        let shown = e.to_string();
        assert!(shown.contains(why), "{text}: {e}");
        assert!(shown.contains("net-x.yaml"), "{text}: {e}");
        assert!(!shown.contains("s3cr3t"), "{text}: {e}");
        p.run(p.call("DEL", &conf)).quiet_success();
        p.assert_clean();
    }
}
