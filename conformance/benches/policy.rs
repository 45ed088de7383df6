//! The policy benchmark (issue 14): what the policy delegate adds to a pod's ADD.
//!
//! `cargo bench -p conformance --bench policy` (as root) measures, pod by pod in turns, in
//! private namespaces:
//! - through `meta-cni` (standalone, `nadDir`), the product's path: a pod with the cluster
//!   network (`eth0`) and `net1`, whose NAD chains bridge + host-local, with and without a
//!   chained `policy` carrying a 20-rule policy on `net1`. The p50 delta is the target
//!   (at most 5 ms): the meta plugin runs its bundled delegates in its own process, so the
//!   policy costs its rendering and one nft transaction;
//! - exec'd as a runtime runs a conflist (libcni, no meta plugin): bridge + host-local with
//!   and without a `policy` exec'd after it (its prevResult the bridge's result), which adds
//!   a process start of our binary;
//! - the policy call alone, and its floor: the same nft batch piped into one `nft -j -f -` in
//!   a fresh namespace by hand (what any nft-based delegate pays: nft's process start and the
//!   transaction).
//!
//! It prints p50 and p99 of each and both p50 deltas.
//!
//! The binary is `$META_CNI_BIN`, else the `meta-cni` next to the bench (build it first:
//! `cargo build --release -p meta-cni`). `BENCH_PODS` (default 50) sets the pods per variant.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conformance::Call;
use kernel::{Netlink, PrivateNetns};
use serde_json::{json, Value};

fn p(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// The 20-rule policy, as the plugin entry of a conflist.
fn policy_plugin() -> Value {
    let mut conf = policy_conf(&Value::Null);
    let entry = conf.as_object_mut().expect("an object");
    for key in ["cniVersion", "name", "prevResult"] {
        entry.remove(key);
    }
    conf
}

/// A standalone meta node: NADs in `nadDir` (the cluster network and `net1` with and without
/// the policy), its cache and IPAM under one temporary directory.
struct MetaPods {
    dir: tempfile::TempDir,
    binary: std::path::PathBuf,
    /// The plugins' links to the binary under test (bundled delegates run in-process once
    /// found there).
    bin_dir: std::path::PathBuf,
}

impl MetaPods {
    fn new(binary: &Path, bin_dir: &Path) -> Self {
        let dir = tempfile::tempdir().expect("meta node dir");
        let ipam = dir.path().join("ipam").display().to_string();
        let nad = |namespace: &str, name: &str, plugins: Vec<Value>| {
            let config = json!({"cniVersion": "1.0.0", "name": name, "plugins": plugins});
            let nad = json!({"apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"config": config.to_string()}});
            let ns_dir = dir.path().join("nads").join(namespace);
            std::fs::create_dir_all(&ns_dir).expect("nad dir");
            std::fs::write(ns_dir.join(format!("{name}.json")), nad.to_string()).expect("nad");
        };
        let bridge = |bridge: &str, subnet: &str| {
            json!({"type": "bridge", "bridge": bridge, "isGateway": true,
                   "ipam": {"type": "host-local", "subnet": subnet, "dataDir": ipam}})
        };
        nad(
            "kube-system",
            "cluster",
            vec![bridge("mbench0", "10.96.0.0/16")],
        );
        nad(
            "default",
            "net-plain",
            vec![bridge("mbench1", "10.95.0.0/16")],
        );
        nad(
            "default",
            "net-policy",
            vec![bridge("mbench1", "10.95.0.0/16"), policy_plugin()],
        );
        MetaPods {
            dir,
            binary: binary.to_path_buf(),
            bin_dir: bin_dir.to_path_buf(),
        }
    }

    /// The meta netconf of a pod whose `net1` is `network`.
    fn conf(&self, network: &str) -> Value {
        json!({"cniVersion": "1.0.0", "name": "meta", "type": "meta-cni",
               "clusterNetwork": "cluster",
               "nadDir": self.dir.path().join("nads"),
               "cniDir": self.dir.path().join("cache"),
               "binDir": self.bin_dir,
               "networks": [{"name": network, "interface": "net1"}]})
    }

    /// ADD (timed) then DEL of one pod through the meta plugin.
    fn pod(&self, node: &kernel::Netns, id: &str, pod: &Path, network: &str) -> Duration {
        let conf = self.conf(network).to_string();
        let call = |verb: &str| {
            Call::binary(&self.binary, verb)
                .var("CNI_PATH", &self.bin_dir.display().to_string())
                .container(id, pod, "eth0")
                .stdin(conf.clone())
                .run_in(node)
        };
        let started = Instant::now();
        call("ADD").success();
        let took = started.elapsed();
        call("DEL").quiet_success();
        took
    }
}

fn policy_conf(prev: &Value) -> Value {
    let rules: Vec<Value> = (0..20)
        .map(|i| {
            json!({"protocol": "tcp", "ports": [format!("{}", 1000 + i), format!("{}-{}", 2000 + 10 * i, 2005 + 10 * i)],
                   "from": [{"cidr": format!("10.{i}.0.0/16"), "except": [format!("10.{i}.9.0/24")]}]})
        })
        .collect();
    json!({"cniVersion": "1.0.0", "name": "bench", "type": "policy",
           "policyTypes": ["Ingress"],
           "securityGroups": {"g": {"ingress": rules}}, "attach": ["g"],
           "prevResult": prev})
}

/// The batch the policy delegate applies for `conf` on `net1`, as nft's JSON input.
fn batch_json(conf: &Value) -> Vec<u8> {
    let netconf = cni::NetConf::parse(conf.to_string().as_bytes()).expect("netconf");
    let config = policy::Config::parse(&netconf).expect("valid policy");
    let ir = policy::interface_policy(&config, "net1").expect("policy builds");
    let batch = policy::transaction::add_batch(&policy::render::render("net1", &ir), false);
    serde_json::to_vec(&batch.to_nftables()).expect("batch serializes")
}

/// `nft -j -f -` of `payload` inside `ns`.
fn nft_floor(ns: &PrivateNetns, payload: &[u8]) -> Duration {
    let started = Instant::now();
    let status = ns
        .netns()
        .unwrap()
        .run(|| {
            let mut child = Command::new("nft")
                .args(["-j", "-f", "-"])
                .stdin(Stdio::piped())
                .spawn()
                .expect("run nft");
            child.stdin.take().unwrap().write_all(payload).unwrap();
            child.wait().expect("wait for nft")
        })
        .unwrap();
    assert!(status.success(), "the floor's batch failed");
    started.elapsed()
}

fn main() {
    let pods: usize = std::env::var("BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let binary = conformance::meta_cni_binary();
    let bin = tempfile::tempdir().expect("bin dir");
    let data = tempfile::tempdir().expect("host-local data dir");
    for name in ["bridge", "host-local", "policy"] {
        std::os::unix::fs::symlink(&binary, bin.path().join(name)).expect("link plugin");
    }
    eprintln!(
        "bench: {pods} pods per variant, meta-cni {}",
        binary.display()
    );
    let node = PrivateNetns::new().expect("node namespace");
    let node_ns = node.netns().unwrap();
    {
        let mut nl = Netlink::in_netns(&node_ns).unwrap();
        let lo = nl.link_by_name("lo").unwrap().unwrap();
        nl.set_link_up(lo.index).unwrap();
    }
    let bridge_conf = json!({"cniVersion": "1.0.0", "name": "bench", "type": "bridge",
        "bridge": "cbench0", "isGateway": true,
        "ipam": {"type": "host-local", "subnet": "10.99.0.0/16",
                 "dataDir": data.path().display().to_string()}});
    let call = |plugin: &str, verb: &str, id: &str, pod: &Path, conf: &Value| {
        Call::binary(&bin.path().join(plugin), verb)
            .var("CNI_PATH", &bin.path().display().to_string())
            .container(id, pod, "net1")
            .stdin(conf.to_string())
            .run_in(&node_ns)
    };

    let payload = batch_json(&policy_conf(&json!({"cniVersion": "1.0.0"})));
    let meta = MetaPods::new(&binary, bin.path());
    let (mut without, mut with, mut alone, mut floor) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut meta_without, mut meta_with) = (Vec::new(), Vec::new());
    // One warm-up of each, then the variants in turns so drift hits both alike.
    for i in 0..=(2 * pods) {
        let pod = PrivateNetns::new().expect("pod namespace");
        let id = format!("bench{i}");
        let chained = i % 2 == 1;
        let started = Instant::now();
        let out = call("bridge", "ADD", &id, &pod.path(), &bridge_conf);
        let prev = out.success();
        let policy_started = Instant::now();
        if chained {
            call("policy", "ADD", &id, &pod.path(), &policy_conf(&prev)).success();
        }
        let done = Instant::now();
        if i > 0 {
            if chained {
                with.push(done - started);
                alone.push(done - policy_started);
            } else {
                without.push(done - started);
            }
        }
        if chained {
            call("policy", "DEL", &id, &pod.path(), &policy_conf(&prev)).quiet_success();
        }
        call("bridge", "DEL", &id, &pod.path(), &bridge_conf).quiet_success();
        if chained && i > 0 {
            let fresh = PrivateNetns::new().expect("floor namespace");
            floor.push(nft_floor(&fresh, &payload));
        }
        let meta_pod = PrivateNetns::new().expect("meta pod namespace");
        let network = if chained { "net-policy" } else { "net-plain" };
        let took = meta.pod(&node_ns, &format!("meta{i}"), &meta_pod.path(), network);
        if i > 0 {
            if chained {
                &mut meta_with
            } else {
                &mut meta_without
            }
            .push(took);
        }
    }
    for v in [
        &mut without,
        &mut with,
        &mut alone,
        &mut floor,
        &mut meta_without,
        &mut meta_with,
    ] {
        v.sort();
    }
    println!("| ADD | p50 ms | p99 ms |");
    println!("|---|---|---|");
    for (what, v) in [
        (
            "meta-cni pod: eth0 + net1 (bridge + host-local)",
            &meta_without,
        ),
        (
            "meta-cni pod: eth0 + net1 (bridge + host-local + policy, 20 rules)",
            &meta_with,
        ),
        (
            "exec'd conflist, one interface: bridge + host-local",
            &without,
        ),
        ("exec'd conflist, one interface: + policy (20 rules)", &with),
        ("exec'd policy call alone", &alone),
        ("floor: the same batch by one nft -j -f -", &floor),
    ] {
        println!("| {what} | {:.2} | {:.2} |", p(v, 0.5), p(v, 0.99));
    }
    let delta = p(&meta_with, 0.5) - p(&meta_without, 0.5);
    println!(
        "p50 delta of the policy delegate through meta-cni: {delta:.2} ms (target <= 5 ms: {}); \
         exec'd by a runtime: {:.2} ms; policy call alone {:.2}x its nft floor",
        if delta <= 5.0 { "met" } else { "missed" },
        p(&with, 0.5) - p(&without, 0.5),
        p(&alone, 0.5) / p(&floor, 0.5)
    );
}
