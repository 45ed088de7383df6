//! CONFORMANCE.md statements 1-10: the protocol every plugin speaks, run against our
//! loopback and the reference loopback in the same run. Where the reference (Debian's
//! containernetworking-plugins 1.1.1, which predates spec 1.1.0) behaves differently, the
//! test says how and checks the reference's actual behaviour, so the difference is pinned.

use std::path::Path;

use conformance::{Call, PluginSet};
use serde_json::Value;

const NETNS_NOWHERE: &str = "/nonexistent/netns";

fn netconf(version: &str) -> String {
    format!(r#"{{"cniVersion":"{version}","name":"lo-net","type":"loopback"}}"#)
}

fn add(set: PluginSet) -> Call {
    Call::new(set, "loopback", "ADD").container("c1", Path::new(NETNS_NOWHERE), "eth0")
}

fn supported(v: &Value) -> Vec<String> {
    v["supportedVersions"]
        .as_array()
        .expect("supportedVersions is a list")
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn statement_01_version_answers_whatever_stdin_holds() {
    for set in PluginSet::under_test() {
        for stdin in ["", "garbage", "{", r#"{"cniVersion":"1.0.0"}"#] {
            let out = Call::binary(&set.plugin("loopback"), "VERSION")
                .stdin(stdin)
                .run();
            let v = out.success();
            assert!(v["cniVersion"].is_string(), "{set:?}: {v}");
            let versions = supported(&v);
            for want in ["0.3.1", "0.4.0", "1.0.0"] {
                assert!(
                    versions.iter().any(|s| s == want),
                    "{set:?} lacks {want}: {v}"
                );
            }
            // The reference 1.1.1 predates spec 1.1.0 and stops at 1.0.0.
            let has_1_1 = versions.iter().any(|s| s == "1.1.0");
            assert_eq!(has_1_1, set == PluginSet::Ours, "{set:?}: {v}");
        }
    }
}

#[test]
fn statement_02_unknown_version_is_code_1_naming_supported() {
    for set in PluginSet::under_test() {
        let e = add(set).stdin(netconf("9.9.9")).run().fails_with(1);
        let details = e["details"].as_str().unwrap_or_default();
        assert!(details.contains("9.9.9"), "{set:?}: {e}");
        for v in ["0.3.1", "0.4.0", "1.0.0"] {
            assert!(details.contains(v), "{set:?} details lack {v}: {e}");
        }
    }
}

#[test]
fn statement_03_unknown_command_and_missing_variables_are_code_4() {
    for set in PluginSet::under_test() {
        // With a full environment, an unknown verb is code 4 naming it in both sets.
        let out = add(set)
            .var("CNI_COMMAND", "FROB")
            .stdin(netconf("1.0.0"))
            .run();
        let e = out.fails_with(4);
        assert!(e.to_string().contains("FROB"), "{set:?}: {e}");

        // Missing or set-but-empty NETNS, IFNAME and PATH are named together.
        let out = Call::binary(&set.plugin("loopback"), "ADD")
            .var("CNI_CONTAINERID", "c1")
            .var("CNI_NETNS", "")
            .var("CNI_IFNAME", "")
            .stdin(netconf("1.0.0"))
            .run();
        let e = out.fails_with(4);
        for var in ["CNI_NETNS", "CNI_IFNAME", "CNI_PATH"] {
            assert!(
                e["msg"].as_str().unwrap().contains(var),
                "{set:?} misses {var}: {e}"
            );
        }
    }
    // Ours checks the verb first; the reference checks CNI_CONTAINERID first and so answers
    // a bare unknown verb with code 3 "missing containerID".
    for set in PluginSet::under_test() {
        let e = Call::binary(&set.plugin("loopback"), "FROB")
            .stdin(netconf("1.0.0"))
            .run()
            .failure();
        match set {
            PluginSet::Ours => assert_eq!(e["code"], 4, "{e}"),
            PluginSet::Reference => assert_eq!(e["code"], 3, "{e}"),
        }
    }
}

#[test]
fn statement_04_bad_container_id_and_ifname_are_code_4() {
    for set in PluginSet::under_test() {
        for id in ["-abc", "a b"] {
            add(set)
                .var("CNI_CONTAINERID", id)
                .stdin(netconf("1.0.0"))
                .run()
                .fails_with(4);
        }
        for ifname in [
            "1234567890123456",
            "12345678901234567890",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
        ] {
            let e = add(set)
                .var("CNI_IFNAME", ifname)
                .stdin(netconf("1.0.0"))
                .run()
                .fails_with(4);
            assert!(
                e.to_string().contains("nterface") || e.to_string().contains("IFNAME"),
                "{e}"
            );
        }
    }
}

#[test]
fn statement_05_bad_json_is_code_6_and_bad_name_code_7() {
    for set in PluginSet::under_test() {
        for junk in ["nojson", "{", "[1]"] {
            add(set).stdin(junk).run().fails_with(6);
        }
        add(set)
            .stdin(r#"{"cniVersion":"1.0.0","type":"loopback"}"#)
            .run()
            .fails_with(7);
        for name in ["a b", "-x", "a/b", "../etc"] {
            let stdin = format!(r#"{{"cniVersion":"1.0.0","name":"{name}","type":"loopback"}}"#);
            let e = add(set).stdin(stdin).run().fails_with(7);
            assert!(e.to_string().contains("name"), "{set:?}: {e}");
        }
    }
}

#[test]
fn statement_07_verbs_gated_by_version() {
    for set in PluginSet::under_test() {
        for v in ["0.1.0", "0.2.0", "0.3.0", "0.3.1"] {
            let e = Call::new(set, "loopback", "CHECK")
                .container("c1", Path::new(NETNS_NOWHERE), "eth0")
                .stdin(netconf(v))
                .run()
                .fails_with(1);
            assert!(e["msg"].as_str().unwrap().contains("CHECK"), "{set:?}: {e}");
        }
    }
    // GC and STATUS exist from spec 1.1.0; the reference 1.1.1 does not know them at all.
    for verb in ["GC", "STATUS"] {
        for v in ["0.4.0", "1.0.0"] {
            if PluginSet::Ours.available() {
                let e = Call::new(PluginSet::Ours, "loopback", verb)
                    .stdin(netconf(v))
                    .run();
                assert!(e.fails_with(1)["msg"].as_str().unwrap().contains(verb));
            }
        }
        if PluginSet::Ours.available() {
            Call::new(PluginSet::Ours, "loopback", verb)
                .stdin(netconf("1.1.0"))
                .run()
                .quiet_success();
        }
        if PluginSet::Reference.available() {
            let e = Call::new(PluginSet::Reference, "loopback", verb)
                .container("c1", Path::new(NETNS_NOWHERE), "eth0")
                .stdin(netconf("1.0.0"))
                .run()
                .failure();
            assert_eq!(e["code"], 4, "reference rejects {verb} as unknown: {e}");
        }
    }
}

#[test]
fn statement_08_failures_print_exactly_one_error_object() {
    for set in PluginSet::under_test() {
        let failures = [
            add(set).stdin(netconf("9.9.9")),
            add(set)
                .var("CNI_CONTAINERID", "-x")
                .stdin(netconf("1.0.0")),
            add(set).unset("CNI_IFNAME").stdin(netconf("1.0.0")),
            add(set).stdin("garbage"),
            // A netns that does not exist fails the ADD itself.
            add(set).stdin(netconf("1.0.0")),
            // Verbose logging must still go to stderr only.
            add(set)
                .var("META_CNI_LOG", "trace")
                .stdin(netconf("1.0.0")),
        ];
        for call in failures {
            let out = call.run();
            assert_ne!(out.code, 0, "{set:?}: {out:?}");
            assert_eq!(out.json_values().len(), 1, "{set:?}: {:?}", out.stdout);
            out.failure();
        }
    }
}

#[test]
fn statement_09_del_is_idempotent_and_tolerates_missing_netns() {
    for set in PluginSet::under_test() {
        let del = || {
            Call::new(set, "loopback", "DEL")
                .var("CNI_CONTAINERID", "never-added")
                .var("CNI_IFNAME", "eth0")
        };
        del().stdin(netconf("1.0.0")).run().quiet_success();
        del()
            .var("CNI_NETNS", "")
            .stdin(netconf("1.0.0"))
            .run()
            .quiet_success();
        for _ in 0..2 {
            del()
                .var("CNI_NETNS", NETNS_NOWHERE)
                .stdin(netconf("0.4.0"))
                .run()
                .quiet_success();
        }
    }
}

#[test]
fn statement_10_unknown_cni_args_need_ignore_unknown() {
    let runtime_args = [
        // podman 4 (CNI backend)
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=web;K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_NAME=web",
        // containerd (go-cni) for kubelet
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=4f3c",
        // the same keys without IgnoreUnknown: still known to us
        "K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=4f3c",
        "FOO=bar;IgnoreUnknown=1",
    ];
    let del = |set, args: &str| {
        Call::new(set, "loopback", "DEL")
            .var("CNI_CONTAINERID", "c1")
            .var("CNI_IFNAME", "eth0")
            .var("CNI_ARGS", args)
            .stdin(netconf("1.0.0"))
            .run()
    };
    for set in PluginSet::under_test() {
        for args in runtime_args {
            del(set, args).quiet_success();
        }
    }
    if PluginSet::Ours.available() {
        let e = del(PluginSet::Ours, "FOO=bar").fails_with(4);
        assert!(e["msg"].as_str().unwrap().contains("FOO"), "{e}");
        del(PluginSet::Ours, "FOO=bar;IgnoreUnknown=0").fails_with(4);
        del(PluginSet::Ours, "not-a-pair").fails_with(4);
    }
    // The reference loopback never reads CNI_ARGS, so it accepts anything there.
    if PluginSet::Reference.available() {
        del(PluginSet::Reference, "FOO=bar").quiet_success();
    }
}
