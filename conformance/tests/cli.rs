//! The operator's commands of the multi-call binary (`meta-cni inspect | explain | verify`),
//! on real state: a cache made by a real ADD of a pod with three networks, a nadDir with
//! broken NADs. Each command has `--help`; an error is one line naming the problem.

use std::path::Path;
use std::process::{Command, Output};

use conformance::inspect::{ipv4_addrs, link_names};
use conformance::meta_pod::{nad, MetaPod};
use conformance::PluginSet;
use serde_json::{json, Value};

/// `meta-cni <args>` as a person runs it: no CNI_COMMAND.
fn meta_cni(args: &[&str]) -> Output {
    Command::new(PluginSet::Ours.plugin("meta-cni"))
        .args(args)
        .env_remove("CNI_COMMAND")
        .output()
        .expect("run meta-cni")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The pod's three networks: the cluster bridge on eth0, net-a on data0, net-b (a conflist)
/// on net2.
fn three_networks(p: &MetaPod) -> String {
    p.conf(
        json!([{"name": "net-a", "interface": "data0"}, {"name": "net-b"}]),
        json!({}),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["inspect", "--help"],
        vec!["explain", "--help"],
        vec!["verify", "--help"],
    ] {
        let out = meta_cni(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).contains("Usage: meta-cni"), "{args:?}");
    }
    let out = meta_cni(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unrecognized subcommand 'frobnicate'"));
}

#[test]
fn inspect_shows_the_attachments_a_real_add_cached() {
    let p = MetaPod::new();
    let conf = three_networks(&p);
    let cni_dir = p.cni_dir();
    let cni_dir = cni_dir.to_str().unwrap();
    p.run(p.call("ADD", &conf)).success();

    let out = meta_cni(&["inspect", "--cni-dir", cni_dir, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let interfaces: Vec<&str> = rows
        .iter()
        .map(|r| r["interface"].as_str().unwrap())
        .collect();
    assert_eq!(interfaces, ["eth0", "data0", "net2"]);
    for row in rows {
        let ifname = row["interface"].as_str().unwrap();
        assert_eq!(row["containerId"], "pod1");
        assert_eq!(row["state"], "attached");
        assert_eq!(
            row["addresses"],
            json!(ipv4_addrs(&p.pod, ifname)),
            "{ifname}: the addresses the pod holds"
        );
        assert!(row["mac"].as_str().is_some_and(|m| m.len() == 17), "{row}");
    }
    assert_eq!(rows[0]["network"], "kube-system/cluster");
    assert_eq!(rows[2]["delegates"], json!(["bridge", "loopback"]));

    // The table for people: a header and one line per attachment.
    let table = stdout(&meta_cni(&["inspect", "--cni-dir", cni_dir]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("CONTAINER"), "{table}");
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[3].contains("default/net-b") && lines[3].contains("bridge>loopback"));
    // One container only; another shows nothing.
    let other = stdout(&meta_cni(&["inspect", "--cni-dir", cni_dir, "other"]));
    assert_eq!(other.lines().count(), 1, "{other}");
    // The netconf names the cache dir too.
    let netconf = write(p.dir.path(), "netconf.json", &conf);
    let via = meta_cni(&["inspect", "--netconf", netconf.to_str().unwrap()]);
    assert_eq!(stdout(&via), table);

    // A corrupt entry is shown as such, beside the others.
    write(&p.cni_dir(), "pod2+eth0.meta-cni.json", "{not json");
    let rows: Value =
        serde_json::from_slice(&meta_cni(&["inspect", "--cni-dir", cni_dir, "--json"]).stdout)
            .unwrap();
    let corrupt: Vec<&Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "corrupt")
        .collect();
    assert_eq!(corrupt.len(), 1, "{rows}");
    assert_eq!(corrupt[0]["containerId"], "pod2");
    std::fs::remove_file(p.cni_dir().join("pod2+eth0.meta-cni.json")).unwrap();

    p.run(p.call("DEL", &conf)).quiet_success();
    let after = stdout(&meta_cni(&["inspect", "--cni-dir", cni_dir]));
    assert_eq!(after.lines().count(), 1, "only the header: {after}");
    p.assert_clean();
}

#[test]
fn inspect_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "not-a-dir", "");
    let out = meta_cni(&["inspect", "--cni-dir", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("meta-cni inspect: "), "{err}");
    assert!(err.contains("not-a-dir"), "{err}");
}

#[test]
fn explain_shows_the_plan_and_touches_nothing() {
    let p = MetaPod::new();
    let netconf = write(p.dir.path(), "netconf.json", &three_networks(&p));
    let netconf = netconf.to_str().unwrap();
    let out = meta_cni(&["explain", "--netconf", netconf, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let atts = plan["attachments"].as_array().unwrap();
    let names: Vec<(&str, &str)> = atts
        .iter()
        .map(|a| {
            (
                a["interface"].as_str().unwrap(),
                a["network"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("eth0", "kube-system/cluster"),
            ("data0", "default/net-a"),
            ("net2", "default/net-b")
        ]
    );
    assert_eq!(atts[0]["cluster"], true);
    // Each delegate's netconf as it would get it: the list's name and version filled in.
    assert_eq!(atts[2]["delegates"][1]["type"], "loopback");
    assert_eq!(atts[2]["delegates"][1]["name"], "net-b");
    assert!(atts.iter().all(|a| a.get("problems").is_none()), "{plan}");

    // Networks from a Pod's annotation instead, one of them asking for a MAC: it reaches
    // only a delegate declaring the capability (none here).
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "annotations": {
            "k8s.v1.cni.cncf.io/networks": r#"[{"name": "net-a", "mac": "02:00:00:00:00:01"}]"#}}});
    let pod_file = write(p.dir.path(), "pod.json", &pod.to_string());
    let no_networks = write(
        p.dir.path(),
        "bare.json",
        &p.conf(json!(null), json!({}))
            .replace(",\"networks\":null", ""),
    );
    let out = meta_cni(&[
        "explain",
        "--netconf",
        no_networks.to_str().unwrap(),
        "--pod",
        pod_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("ADD would attach 2 network(s)"), "{text}");
    assert!(text.contains("net1  default/net-a"), "{text}");
    assert!(
        !text.contains("02:00:00:00:00:01"),
        "no capability, no MAC: {text}"
    );

    // A plan ADD would refuse: the reason, code and all.
    let out = meta_cni(&[
        "explain",
        "--netconf",
        netconf,
        "--networks",
        r#"[{"name": "missing"}]"#,
    ]);
    let text = stdout(&out);
    assert!(text.starts_with("ADD would be refused: code 7"), "{text}");
    assert!(text.contains("default/missing"), "{text}");

    // Nothing was made: no links, no cache, no reservations.
    assert_eq!(link_names(&p.node), ["lo".to_string()].into());
    assert!(p.cni_dir_files().is_empty() && p.reservations().is_empty());
}

#[test]
fn verify_names_each_problem_with_its_file_and_place() {
    let p = MetaPod::new();
    let netconf = write(p.dir.path(), "netconf.json", &three_networks(&p));
    let netconf = netconf.to_str().unwrap();
    let out = meta_cni(&["verify", "--netconf", netconf]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("and 3 NAD file(s)"),
        "{}",
        stdout(&out)
    );

    // A list with a plugin not installed, a NAD of an unknown version, a policy delegate
    // whose rule has a bad port, and a file that is no NAD.
    p.write_nad(
        "default",
        "no-such-plugin",
        &nad(
            "no-such-plugin",
            json!({"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}, {"type": "tuning-x"}]}),
        ),
    );
    p.write_nad(
        "default",
        "future",
        &nad("future", json!({"cniVersion": "9.9.9", "type": "bridge"})),
    );
    p.write_nad(
        "default",
        "bad-policy",
        &nad(
            "bad-policy",
            json!({"cniVersion": "1.0.0", "plugins": [{"type": "bridge"},
                {"type": "policy", "securityGroups": {"web": {"ingress": [
                    {"protocol": "tcp", "ports": ["0"], "from": [{"cidr": "10.0.0.0/8"}]}]}},
                 "attach": ["web"]}]}),
        ),
    );
    std::fs::write(
        p.nad_dir().join("default/pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: pod}\n",
    )
    .unwrap();
    let out = meta_cni(&["verify", "--netconf", netconf]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("meta-cni verify: 4 problem(s)"),
        "{err}"
    );
    let line_of = |file: &str| {
        lines
            .iter()
            .find(|l| l.contains(file))
            .unwrap_or_else(|| panic!("nothing about {file}: {err}"))
            .to_string()
    };
    let missing = line_of("no-such-plugin.yaml");
    assert!(
        missing.contains("spec.config.plugins[1].type") && missing.contains("tuning-x"),
        "{missing}"
    );
    assert!(line_of("future.yaml").contains("9.9.9"), "{err}");
    let policy = line_of("bad-policy.yaml");
    assert!(
        policy.contains("spec.config.plugins[1].") && policy.contains("ports"),
        "{policy}"
    );
    assert!(line_of("pod.yaml").contains("apiVersion"), "{err}");
}

#[test]
fn log_format_json_gives_one_object_per_line_and_one_line_per_verb() {
    let p = MetaPod::new();
    let log = p.dir.path().join("meta.log");
    let conf = p.conf(
        json!([{"name": "net-a", "interface": "data0"}]),
        json!({"logFormat": "json", "logFile": log, "logToStderr": false, "logLevel": "verbose"}),
    );
    p.run(p.call("ADD", &conf)).success();
    p.run(p.call("DEL", &conf)).quiet_success();
    // A refused ADD: a network that does not exist.
    let bad = p.conf(
        json!([{"name": "missing"}]),
        json!({"logFormat": "json", "logFile": log, "logToStderr": false}),
    );
    p.run(p.call("ADD", &bad)).fails_with(7);

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let verbs: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l["plugin"] == "meta-cni" && l.get("outcome").is_some())
        .map(|l| (l["verb"].as_str().unwrap(), l["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verbs,
        [("ADD", "ok"), ("DEL", "ok"), ("ADD", "error")],
        "{text}"
    );
    let failed = lines.iter().rfind(|l| l["outcome"] == "error").unwrap();
    assert_eq!(failed["code"], 7);
    assert_eq!(failed["container"], "pod1");
    assert!(
        failed["duration_ms"].as_f64().is_some_and(|d| d > 0.0),
        "{failed}"
    );

    let wrong = p.conf(json!([]), json!({"logFormat": "xml"}));
    let e = p.run(p.call("ADD", &wrong)).fails_with(7);
    assert!(e["msg"].as_str().unwrap().contains("logFormat"), "{e}");
    p.assert_clean();
}

/// `<bin>/<plugin>` answers VERSION: the link resolves to a whole binary.
fn answers_version(plugin: &Path) -> bool {
    Command::new(plugin)
        .env_clear()
        .env("CNI_COMMAND", "VERSION")
        .output()
        .is_ok_and(|out| out.status.success() && stdout(&out).contains("supportedVersions"))
}

#[test]
fn install_links_writes_the_netconf_and_uninstall_removes_exactly_that() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let conf = dir.path().join("net.d");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&conf).unwrap();
    // The node's own bridge plugin, and a config of its own.
    write(&bin, "bridge", "#!/bin/sh\necho node-bridge\n");
    let primary = write(
        &conf,
        "10-node.conflist",
        r#"{"cniVersion": "0.4.0", "name": "node", "plugins": [{"type": "bridge"}]}"#,
    );
    let (bin_s, conf_s) = (bin.to_str().unwrap(), conf.to_str().unwrap());
    let out = meta_cni(&[
        "install",
        "--bin-dir",
        bin_s,
        "--conf-dir",
        conf_s,
        "--auto",
        "--kubeconfig",
        "/etc/cni/net.d/meta-cni.d/meta-cni.kubeconfig",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(
        report.contains("left") && report.contains("bridge"),
        "{report}"
    );
    for plugin in ["meta-cni", "loopback", "host-local", "policy"] {
        assert!(answers_version(&bin.join(plugin)), "{plugin}");
    }
    assert_eq!(
        std::fs::read_to_string(bin.join("bridge")).unwrap(),
        "#!/bin/sh\necho node-bridge\n",
        "the node's bridge is untouched"
    );
    // Auto mode: the node's config is the cluster network, with its version.
    let netconf: Value =
        serde_json::from_str(&std::fs::read_to_string(conf.join("00-meta-cni.conflist")).unwrap())
            .unwrap();
    assert_eq!(netconf["cniVersion"], "0.4.0");
    assert_eq!(netconf["plugins"][0]["type"], "meta-cni");
    assert_eq!(netconf["plugins"][0]["clusterNetwork"], json!(primary));
    assert!(netconf["plugins"][0]["kubeconfig"].is_string());

    let out = meta_cni(&["uninstall", "--bin-dir", bin_s]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut left: Vec<String> = std::fs::read_dir(&bin)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["bridge"], "only the node's own plugin is left");
    let confs: Vec<String> = std::fs::read_dir(&conf)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(confs, ["10-node.conflist"]);

    // A netconf someone changed after install is theirs: uninstall leaves it.
    let given = write(dir.path(), "given.conflist", r#"{"cniVersion": "1.0.0"}"#);
    let out = meta_cni(&[
        "install",
        "--bin-dir",
        bin_s,
        "--conf-dir",
        conf_s,
        "--links",
        "loopback",
        "--netconf",
        given.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    write(&conf, "00-meta-cni.conflist", r#"{"cniVersion": "1.1.0"}"#);
    meta_cni(&["uninstall", "--bin-dir", bin_s]);
    assert!(conf.join("00-meta-cni.conflist").exists());
    assert!(!bin.join("loopback").exists() && !bin.join("meta-cni").exists());

    // Errors are one line naming the problem.
    let empty = tempfile::tempdir().unwrap();
    let out = meta_cni(&[
        "install",
        "--bin-dir",
        bin_s,
        "--conf-dir",
        empty.path().to_str().unwrap(),
        "--auto",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no primary CNI config"), "{err}");
}

#[test]
fn install_while_the_binary_runs_never_breaks_an_exec() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let bin_s = bin.to_str().unwrap().to_owned();
    let first = meta_cni(&["install", "--bin-dir", &bin_s, "--links", "loopback"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (runs, failures) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let (mut runs, mut failures) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                runs += 1;
                if !answers_version(&bin.join("loopback")) {
                    failures += 1;
                }
            }
            (runs, failures)
        });
        for _ in 0..3 {
            let out = meta_cni(&["install", "--bin-dir", &bin_s, "--links", "loopback"]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap()
    });
    assert!(runs > 3, "the reader ran during the installs: {runs}");
    assert_eq!(
        failures, 0,
        "{failures} of {runs} execs failed during install"
    );
    meta_cni(&["uninstall", "--bin-dir", &bin_s]);
}
