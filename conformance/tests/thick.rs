//! Thick mode: the meta plugin as the shim of `meta-cni-daemon`. CONFORMANCE.md statement
//! 50, and the daemon's own guarantees (bounded concurrency, graceful shutdown, health and
//! metrics, watches), through the multi-call binary on real namespaces.
//!
//! Every test has its own node namespace (where the daemon runs and makes its links), pod
//! namespaces, nadDir, cniDir and IPAM data dir.

use std::time::Duration;

use conformance::inspect::{netlink, netns};
use conformance::kernel_state::Snapshot;
use conformance::meta_daemon::MetaDaemon;
use conformance::meta_pod::{nad, MetaPod as Pod};
use conformance::scripted_plugin::{ScriptedPlugin, SCRIPTED};
use conformance::{Call, Output, PluginSet};
use serde_json::{json, Value};

/// A pod whose nadDir also holds `default/net-s`, a network of the scripted plugin.
fn pod_with_scripted() -> (Pod, ScriptedPlugin) {
    let pod = Pod::new();
    let scripted = ScriptedPlugin::install(&pod.dir.path().join("scripts"));
    pod.write_nad(
        "default",
        "net-s",
        &nad("net-s", json!({"cniVersion": "1.0.0", "type": SCRIPTED})),
    );
    (pod, scripted)
}

/// Three networks: `two_networks` and the scripted one.
fn three_networks() -> Value {
    json!([{"name": "net-a", "interface": "data0"}, {"name": "net-b"}, {"name": "net-s"}])
}

/// A call of `pod`'s meta plugin with the scripted plugin on `CNI_PATH`.
fn call(pod: &Pod, scripted: &ScriptedPlugin, verb: &str, conf: &str) -> Call {
    let path = format!(
        "{}:{}",
        PluginSet::Ours.bin_dir().display(),
        scripted.dir().display()
    );
    pod.call(verb, conf).var("CNI_PATH", &path)
}

/// The result with what differs between two pods by chance (MACs, host veth names, the
/// pod's netns path) taken out.
fn normalized(result: &Value, pod: &Pod) -> Value {
    let text = result
        .to_string()
        .replace(&pod.pod.path().display().to_string(), "<netns>");
    let mut value: Value = serde_json::from_str(&text).unwrap();
    for interface in value["interfaces"].as_array_mut().into_iter().flatten() {
        if interface.get("mac").is_some() {
            interface["mac"] = json!("<mac>");
        }
        let host_veth = interface.get("sandbox").is_none()
            && interface["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("veth"));
        if host_veth {
            interface["name"] = json!("<host-veth>");
        }
    }
    value
}

/// An output as the runtime sees it: stdout and exit code.
fn seen(out: &Output) -> (i32, String) {
    (out.code, out.stdout.clone())
}

/// Kernel state of a pod: its namespace and its node's.
fn state(pod: &Pod) -> (Snapshot, Snapshot) {
    let settle = Duration::from_secs(5);
    (
        Snapshot::settled(&netns(&pod.pod), &[], settle),
        Snapshot::settled(&netns(&pod.node), &[], settle),
    )
}

/// `snapshot` with each host veth named by its bridge (`<veth on br-a>`), since the order
/// of their random names, which numbers them, differs from pod to pod.
fn by_bridge(snapshot: Snapshot) -> Snapshot {
    let masters: Vec<(String, String)> = snapshot
        .entries
        .iter()
        .filter_map(|(key, value)| {
            let veth = key.strip_prefix("link ")?.strip_suffix(" master")?;
            veth.starts_with("<host-veth")
                .then(|| (veth.to_string(), format!("<veth on {value}>")))
        })
        .collect();
    let rename = |text: &str| {
        masters.iter().fold(text.to_string(), |t, (veth, named)| {
            t.replace(veth.as_str(), named)
        })
    };
    let mut renamed = Snapshot::default();
    for (key, value) in &snapshot.entries {
        renamed.put(rename(key), rename(value));
    }
    renamed
}

fn assert_same_state(thin: &Pod, thick: &Pod) {
    let (thin_pod, thin_node) = state(thin);
    let (thick_pod, thick_node) = state(thick);
    let (thin_node, thick_node) = (by_bridge(thin_node), by_bridge(thick_node));
    let diff: Vec<String> = thin_pod
        .diff(&thick_pod)
        .iter()
        .chain(&thin_node.diff(&thick_node))
        .map(ToString::to_string)
        .collect();
    assert!(diff.is_empty(), "thin | thick:\n{}", diff.join("\n"));
}

#[test]
fn statement_50_through_the_daemon_as_thin_mode_errors_unchanged_and_served_when_down() {
    let (thin, thin_script) = pod_with_scripted();
    let (thick, thick_script) = pod_with_scripted();
    let mut daemon = MetaDaemon::start(&netns(&thick.node), &[]);
    // The daemon's node has lo up (its health port): so has thin mode's, to compare.
    let mut nl = netlink(&thin.node);
    let lo = nl.link_by_name("lo").unwrap().unwrap();
    nl.set_link_up(lo.index).unwrap();
    let thin_conf = thin.conf(three_networks(), json!({}));
    let thick_conf = thick.conf(three_networks(), json!({"daemonSocket": daemon.socket()}));
    let both = |verb: &str| {
        let a = thin.run(call(&thin, &thin_script, verb, &thin_conf));
        let b = thick.run(call(&thick, &thick_script, verb, &thick_conf));
        assert!(
            !b.stderr.contains("thin mode"),
            "the shim served the call itself: {}",
            b.stderr
        );
        (a, b)
    };

    // ADD, CHECK: the same results and the same kernel state.
    let (a, b) = both("ADD");
    assert_eq!(
        normalized(&a.success(), &thin),
        normalized(&b.success(), &thick)
    );
    assert_same_state(&thin, &thick);
    assert_eq!(thin.reservations().len(), thick.reservations().len());
    let (a, b) = both("CHECK");
    a.quiet_success();
    b.quiet_success();
    assert!(
        daemon.log_text().contains("call served"),
        "{}",
        daemon.log_text()
    );

    // A failing CHECK and DEL: the runtime gets the daemon's error object and exit code as
    // thin mode prints them, byte for byte.
    for script in [&thin_script, &thick_script] {
        script.set_failing("CHECK", true);
        script.set_failing("DEL", true);
    }
    let (a, b) = both("CHECK");
    a.fails_with(117);
    assert_eq!(seen(&a), seen(&b));
    let (a, b) = both("DEL");
    let e = a.fails_with(117);
    assert!(e["msg"].as_str().unwrap().contains("net-s"), "{e}");
    assert_eq!(seen(&a), seen(&b));
    for script in [&thin_script, &thick_script] {
        script.set_failing("CHECK", false);
        script.set_failing("DEL", false);
    }
    let (a, b) = both("DEL");
    a.quiet_success();
    b.quiet_success();
    thin.assert_clean();
    thick.assert_clean();

    // Refusals before anything is made (an unknown NAD, a bad CNI_IFNAME, a CNI_NETNS
    // that is not UTF-8): the same call on the same pod with and without the daemon.
    let missing = json!([{"name": "net-nope"}]);
    let a = thick.run(thick.call("ADD", &thick.conf(missing.clone(), json!({}))));
    let b = thick.run(thick.call(
        "ADD",
        &thick.conf(missing, json!({"daemonSocket": daemon.socket()})),
    ));
    a.fails_with(7);
    assert_eq!(seen(&a), seen(&b));
    let here = thick.conf(three_networks(), json!({}));
    for (var, value) in [("CNI_IFNAME", &b"a/b"[..]), ("CNI_NETNS", &b"/x\xff"[..])] {
        let a = thick.run(call(&thick, &thick_script, "ADD", &here).var_bytes(var, value));
        let b = thick.run(call(&thick, &thick_script, "ADD", &thick_conf).var_bytes(var, value));
        a.failure();
        assert_eq!(seen(&a), seen(&b), "{var}");
    }
    thick.assert_clean();

    // The daemon down: the plugin serves the call itself and says so.
    daemon.kill();
    let out = thick.run(call(&thick, &thick_script, "ADD", &thick_conf));
    let r = out.success();
    assert!(out.stderr.contains("is down"), "{}", out.stderr);
    assert!(out.stderr.contains("thin mode"), "{}", out.stderr);
    let (a, _) = (thin.run(call(&thin, &thin_script, "ADD", &thin_conf)), ());
    assert_eq!(normalized(&a.success(), &thin), normalized(&r, &thick));
    assert_same_state(&thin, &thick);
    thick
        .run(call(&thick, &thick_script, "DEL", &thick_conf))
        .quiet_success();
    thin.run(call(&thin, &thin_script, "DEL", &thin_conf))
        .quiet_success();
    thick.assert_clean();
    thin.assert_clean();
}

/// A conf whose cluster network is `kube-system/s1` and networks `s2`, `s3`: three
/// attachments of the scripted plugin.
fn scripted_pod() -> (Pod, ScriptedPlugin) {
    let (pod, scripted) = pod_with_scripted();
    for (ns, name) in [("kube-system", "s1"), ("default", "s2"), ("default", "s3")] {
        pod.write_nad(
            ns,
            name,
            &nad(name, json!({"cniVersion": "1.0.0", "type": SCRIPTED})),
        );
    }
    (pod, scripted)
}

fn scripted_conf(pod: &Pod, extra: Value) -> String {
    let mut conf: Value =
        serde_json::from_str(&pod.conf(json!([{"name": "s2"}, {"name": "s3"}]), extra)).unwrap();
    conf["clusterNetwork"] = json!("s1");
    conf.to_string()
}

fn timed(pod: &Pod, call: Call) -> (Output, Duration) {
    let started = std::time::Instant::now();
    let out = pod.run(call);
    (out, started.elapsed())
}

#[test]
fn attachments_run_at_once_in_the_daemon_and_one_after_another_when_asked() {
    let (pod, scripted) = scripted_pod();
    scripted.set_sleep(0.3);
    let daemon = MetaDaemon::start(&netns(&pod.node), &[]);
    let socket = json!({"daemonSocket": daemon.socket()});
    let parallel = scripted_conf(&pod, socket.clone());
    let (out, took) = timed(&pod, call(&pod, &scripted, "ADD", &parallel));
    let r = out.success();
    assert!(
        took < Duration::from_millis(750),
        "3 delegates of 300 ms at once took {took:?}"
    );
    // Results stay in the plan's order.
    let names: Vec<&str> = r["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["eth0", "net1", "net2"], "{r}");
    pod.run(call(&pod, &scripted, "DEL", &parallel))
        .quiet_success();

    // The same through the daemon with the option off, and in a plugin call (off by
    // default there): one after another.
    let mut sequential_socket = socket;
    sequential_socket["parallelAttachments"] = json!(false);
    for conf in [
        scripted_conf(&pod, sequential_socket),
        scripted_conf(&pod, json!({})),
    ] {
        let (out, took) = timed(&pod, call(&pod, &scripted, "ADD", &conf));
        let sequential = out.success();
        assert_eq!(sequential["interfaces"], r["interfaces"]);
        assert!(
            took > Duration::from_millis(850),
            "3 delegates of 300 ms one after another took {took:?}"
        );
        pod.run(call(&pod, &scripted, "DEL", &conf)).quiet_success();
    }
    assert_eq!(pod.cache_files(), 0);
}

#[test]
fn a_failed_attachment_rolls_every_parallel_one_back() {
    let (pod, scripted) = pod_with_scripted();
    let daemon = MetaDaemon::start(&netns(&pod.node), &[]);
    let conf = pod.conf(three_networks(), json!({"daemonSocket": daemon.socket()}));
    // net-s is net3; the bridges of eth0, data0 and net2 are made at the same time.
    scripted.set_failing_on("ADD", "net3", true);
    let out = pod.run(call(&pod, &scripted, "ADD", &conf));
    let e = out.fails_with(117);
    assert!(e["msg"].as_str().unwrap().contains("net-s"), "{e}");
    pod.assert_clean();
    let dels: Vec<String> = scripted
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("DEL "))
        .collect();
    assert_eq!(
        dels.len(),
        1,
        "the failed attachment is undone too: {dels:?}"
    );
    // And the pod can be added again.
    scripted.set_failing_on("ADD", "net3", false);
    pod.run(call(&pod, &scripted, "ADD", &conf)).success();
    pod.run(call(&pod, &scripted, "DEL", &conf)).quiet_success();
    pod.assert_clean();
}

#[test]
fn metrics_count_the_calls_made_and_health_answers() {
    let (pod, scripted) = pod_with_scripted();
    let daemon = MetaDaemon::start(&netns(&pod.node), &[]);
    assert_eq!(daemon.get("/healthz").0, 200);
    assert_eq!(daemon.get("/readyz").0, 200, "no watches: ready at once");
    let conf = pod.conf(three_networks(), json!({"daemonSocket": daemon.socket()}));
    pod.run(call(&pod, &scripted, "ADD", &conf)).success();
    pod.run(call(&pod, &scripted, "CHECK", &conf))
        .quiet_success();
    pod.run(call(&pod, &scripted, "CHECK", &conf))
        .quiet_success();
    scripted.set_failing("DEL", true);
    pod.run(call(&pod, &scripted, "DEL", &conf)).fails_with(117);
    scripted.set_failing("DEL", false);
    pod.run(call(&pod, &scripted, "DEL", &conf)).quiet_success();
    let (_, text) = daemon.get("/metrics");
    let metric = |sample: &str| {
        daemon
            .metric(sample)
            .unwrap_or_else(|| panic!("no {sample} in\n{text}"))
    };
    assert_eq!(
        metric(r#"meta_cni_daemon_requests_total{verb="ADD",result="ok"}"#),
        1.0
    );
    assert_eq!(
        metric(r#"meta_cni_daemon_requests_total{verb="CHECK",result="ok"}"#),
        2.0
    );
    assert_eq!(
        metric(r#"meta_cni_daemon_requests_total{verb="DEL",result="error",code="117"}"#),
        1.0
    );
    assert_eq!(
        metric(r#"meta_cni_daemon_requests_total{verb="DEL",result="ok"}"#),
        1.0
    );
    assert_eq!(
        metric(r#"meta_cni_daemon_request_seconds_count{verb="ADD"}"#),
        1.0
    );
    // Each bridge ADD runs host-local in-process: both are timed, by type.
    assert!(metric(r#"meta_cni_daemon_delegate_seconds_count{type="bridge"}"#) >= 3.0);
    assert!(metric(r#"meta_cni_daemon_delegate_seconds_count{type="host-local"}"#) >= 3.0);
    assert!(metric(r#"meta_cni_daemon_delegate_seconds_count{type="scripted"}"#) >= 1.0);
    assert_eq!(metric("meta_cni_daemon_in_flight"), 0.0);
}

#[test]
fn sigterm_finishes_the_calls_in_flight_and_later_calls_are_served_by_the_plugin() {
    let (pod, scripted) = pod_with_scripted();
    let mut daemon = MetaDaemon::start(&netns(&pod.node), &[]);
    let conf = pod.conf(three_networks(), json!({"daemonSocket": daemon.socket()}));
    scripted.set_sleep(1.0);
    let adding = call(&pod, &scripted, "ADD", &conf).spawn_in(&netns(&pod.node));
    // The ADD is in the daemon once the scripted delegate logged it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !scripted.calls().iter().any(|c| c.starts_with("ADD ")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the ADD never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = daemon.stop(Duration::from_secs(20));
    assert!(status.success(), "{status}");
    let out = adding.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !daemon.socket().exists(),
        "the socket is removed on the way out"
    );
    assert!(
        daemon.log_text().contains("every call answered"),
        "{}",
        daemon.log_text()
    );
    // The daemon gone, the plugin serves the DEL.
    scripted.set_sleep(0.0);
    let out = pod.run(call(&pod, &scripted, "DEL", &conf));
    out.quiet_success();
    assert!(out.stderr.contains("thin mode"), "{}", out.stderr);
    pod.assert_clean();
}

#[test]
fn calls_beyond_the_limit_wait_for_a_slot() {
    let (pod, scripted) = scripted_pod();
    scripted.set_sleep(0.3);
    let daemon = MetaDaemon::start(
        &netns(&pod.node),
        &["--max-concurrent", "1", "--sequential"],
    );
    let conf = scripted_conf(&pod, json!({"daemonSocket": daemon.socket()}));
    let started = std::time::Instant::now();
    let children: Vec<_> = ["c1", "c2"]
        .iter()
        .map(|id| {
            let path = format!(
                "{}:{}",
                PluginSet::Ours.bin_dir().display(),
                scripted.dir().display()
            );
            pod.call_for(id, "eth0", "ADD", &conf)
                .var("CNI_PATH", &path)
                .spawn_in(&netns(&pod.node))
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // Two ADDs of three 300 ms delegates each, one slot: one after the other.
    let took = started.elapsed();
    assert!(took > Duration::from_millis(1700), "two ADDs took {took:?}");
    assert_eq!(daemon.metric("meta_cni_daemon_in_flight"), Some(0.0));
    for id in ["c1", "c2"] {
        let path = format!(
            "{}:{}",
            PluginSet::Ours.bin_dir().display(),
            scripted.dir().display()
        );
        pod.run(
            pod.call_for(id, "eth0", "DEL", &conf)
                .var("CNI_PATH", &path),
        )
        .quiet_success();
    }
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[test]
fn a_trace_id_given_on_add_reaches_every_delegate_and_its_log_lines() {
    let (pod, scripted) = scripted_pod();
    let mut daemon = MetaDaemon::start(&netns(&pod.node), &[]);
    daemon.set_log_level("debug");
    // Three scripted networks (exec'd) and three bridges (in-process, with host-local).
    let conf_with = |extra: Value| {
        let networks =
            json!([{"name": "s2"}, {"name": "s3"}, {"name": "net-a"}, {"name": "net-b"}]);
        let mut conf: Value = serde_json::from_str(&pod.conf(networks, extra)).unwrap();
        conf["clusterNetwork"] = json!("s1");
        conf.to_string()
    };
    let conf = conf_with(json!({"daemonSocket": daemon.socket()}));
    pod.run(call(&pod, &scripted, "ADD", &conf).var("TRACEPARENT", TRACEPARENT))
        .success();
    let calls = scripted.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    for line in &calls {
        assert!(
            line.ends_with(&format!("traceparent={TRACEPARENT}")),
            "{line}"
        );
    }
    let log = daemon.log_text();
    let delegate_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("attachment{") && l.contains("verb=ADD"))
        .collect();
    assert!(delegate_lines.len() >= 5, "{log}");
    for line in &delegate_lines {
        assert!(line.contains(&format!("trace_id={TRACE_ID}")), "{line}");
    }
    // In-process delegates (bridge, its host-local) log under the same trace.
    let in_process = delegate_lines
        .iter()
        .filter(|l| l.contains("running delegate in-process"))
        .count();
    assert!(in_process >= 5, "{log}");
    pod.run(call(&pod, &scripted, "DEL", &conf)).quiet_success();

    // The same in a plugin call (thin mode): the runtime's environment reaches exec'd
    // delegates, and the log lines of every attachment carry the trace ID.
    let thin = conf_with(json!({}));
    let out = pod.run(
        call(&pod, &scripted, "ADD", &thin)
            .var("TRACEPARENT", TRACEPARENT)
            .var("META_CNI_LOG", "debug"),
    );
    out.success();
    let attachment_lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("attachment{"))
        .collect();
    assert!(!attachment_lines.is_empty(), "{}", out.stderr);
    for line in attachment_lines {
        assert!(line.contains(&format!("trace_id={TRACE_ID}")), "{line}");
    }
    let calls = scripted.calls();
    for line in &calls[calls.len() - 3..] {
        assert!(
            line.ends_with(&format!("traceparent={TRACEPARENT}")),
            "{line}"
        );
    }
    pod.run(call(&pod, &scripted, "DEL", &thin)).quiet_success();
}

#[test]
fn a_daemon_killed_mid_add_leaves_nothing_after_the_runtimes_del_through_the_shim() {
    let (pod, scripted) = pod_with_scripted();
    let mut daemon = MetaDaemon::start(&netns(&pod.node), &[]);
    let conf = pod.conf(three_networks(), json!({"daemonSocket": daemon.socket()}));
    scripted.set_sleep(3.0);
    let adding = call(&pod, &scripted, "ADD", &conf).spawn_in(&netns(&pod.node));
    // Killed once the bridges are made and the scripted delegate is running.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let links = conformance::inspect::link_names(&pod.pod);
        let made = ["eth0", "data0", "net2"].iter().all(|l| links.contains(*l));
        if made && scripted.calls().iter().any(|c| c.starts_with("ADD ")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ADD never got going"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    daemon.kill();
    let out = adding.wait_with_output().unwrap();
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(e["code"], 11, "{e}");
    // The runtime's DEL, the daemon down: the plugin serves it from the cache.
    scripted.set_sleep(0.0);
    let out = pod.run(call(&pod, &scripted, "DEL", &conf));
    out.quiet_success();
    assert!(out.stderr.contains("is down"), "{}", out.stderr);
    pod.assert_clean();
}

/// The most the daemon's resident memory may reach while it serves 200 ADDs at once.
const BURST_RSS_BOUND_MIB: u64 = 64;

#[test]
fn two_hundred_adds_at_once_all_pass_within_a_memory_bound_and_all_del_clean() {
    const PODS: usize = 200;
    let node = Pod::new();
    let daemon = MetaDaemon::start(&netns(&node.node), &[]);
    let conf = node.conf(json!([]), json!({"daemonSocket": daemon.socket()}));
    let pods: Vec<kernel::PrivateNetns> = (0..PODS)
        .map(|_| kernel::PrivateNetns::new().unwrap())
        .collect();
    let run_all = |verb: &str| -> Vec<Output> {
        let children: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(k, ns)| {
                Call::new(PluginSet::Ours, "meta-cni", verb)
                    .container(&format!("burst-{k}"), &ns.path(), "eth0")
                    .stdin(conf.as_str())
                    .spawn_in(&netns(&node.node))
            })
            .collect();
        children
            .into_iter()
            .map(|child| {
                let out = child.wait_with_output().unwrap();
                Output {
                    code: out.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                }
            })
            .collect()
    };
    let added = run_all("ADD");
    let mut addresses = std::collections::BTreeSet::new();
    for out in &added {
        let r = out.success();
        assert!(!out.stderr.contains("thin mode"), "{}", out.stderr);
        addresses.insert(r["ips"][0]["address"].as_str().unwrap().to_string());
    }
    assert_eq!(addresses.len(), PODS, "one address each");
    let peak = daemon.peak_rss_kib();
    eprintln!("daemon peak RSS after {PODS} ADDs at once: {} KiB", peak);
    assert!(
        peak < BURST_RSS_BOUND_MIB * 1024,
        "daemon peak RSS {peak} KiB over {BURST_RSS_BOUND_MIB} MiB"
    );
    for out in run_all("DEL") {
        out.quiet_success();
    }
    assert_eq!(node.host_veths(), 0);
    assert!(node.reservations().is_empty());
    assert_eq!(node.cache_files(), 0);
    assert_eq!(
        daemon.metric(r#"meta_cni_daemon_requests_total{verb="ADD",result="ok"}"#),
        Some(PODS as f64)
    );
}
