//! A pod's `eni-ip` ADD and DEL, its address a warm-pool hit, against the kernel floor of the
//! same datapath, in one run.
//!
//! - ours: the `eni-ip` plugin (the multi-call binary, exec'd as a runtime does) in the node
//!   namespace of an emulated VPC, `eni-ipamd` there (its pool grown before the timing);
//! - the floor: the same links, addresses, routes, neighbour and rule 512 by one `ip -batch`
//!   per namespace, with the address planned up front: no agent, no cache, no netconf.
//!
//! As root: `cargo build --release -p meta-cni && ENI_IPAMD_BIN=target/debug/eni-ipamd cargo
//! bench -p conformance --bench eni_pod` (`ENI_BENCH_PODS` pods per scenario, default 30;
//! `META_CNI_BIN` for another plugin binary).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conformance::ec2_emulator::NodeSpec;
use conformance::emulated_vpc::EmulatedVpc;
use conformance::eni_agent::EniAgent;
use conformance::{Call, PluginSet};
use kernel::{Netns, PrivateNetns};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Runs `ip -batch -` with `script` in `ns`; returns how long the process took.
fn ip_batch(ns: &Netns, script: &str) -> Duration {
    ns.run(|| {
        let started = Instant::now();
        let mut child = Command::new("ip")
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ip -batch");
        child
            .stdin
            .take()
            .expect("ip's stdin")
            .write_all(script.as_bytes())
            .expect("write the batch");
        let out = child.wait_with_output().expect("wait for ip");
        assert!(
            out.status.success(),
            "ip -batch failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
        started.elapsed()
    })
    .expect("enter a namespace")
}

/// The floor's ADD of pod `k` with address `addr`: the host veth (with a MAC chosen up
/// front, for the pod's neighbour entry) and its /32 route and rule 512 in the node; the
/// address, the gateway's link route, the default route and the permanent neighbour in
/// the pod.
fn floor_add(node: &Netns, pod: &PrivateNetns, k: usize, addr: Ipv4Addr) -> Duration {
    let mac = format!("02:fe:00:00:{:02x}:{:02x}", k / 256, k % 256);
    let veth = format!("fl{k}");
    let mut host = String::new();
    let _ = writeln!(
        host,
        "link add {veth} address {mac} mtu 9001 type veth peer name eth0 mtu 9001 netns {}",
        pod.thread_id()
    );
    let _ = writeln!(host, "link set {veth} up");
    let _ = writeln!(host, "route add {addr}/32 dev {veth} scope link");
    let _ = writeln!(host, "rule add to {addr}/32 lookup main prio 512");
    let mut inside = String::new();
    let _ = writeln!(inside, "link set eth0 up");
    let _ = writeln!(inside, "route add 169.254.1.1/32 dev eth0 scope link");
    let _ = writeln!(inside, "route add default via 169.254.1.1 dev eth0");
    let _ = writeln!(inside, "addr add {addr}/32 dev eth0");
    let _ = writeln!(
        inside,
        "neigh add 169.254.1.1 lladdr {mac} dev eth0 nud permanent"
    );
    ip_batch(node, &host) + ip_batch(&pod.netns().expect("a pod namespace"), &inside)
}

fn floor_del(node: &Netns, k: usize, addr: Ipv4Addr) -> Duration {
    ip_batch(
        node,
        &format!("rule del to {addr}/32 lookup main prio 512\nlink del fl{k}\n"),
    )
}

fn main() {
    let pods: usize = std::env::var("ENI_BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    // An m5.xlarge (4 ENIs of 14 pod addresses) with a pool as deep as the run.
    let vpc = EmulatedVpc::start(&NodeSpec::new("m5.xlarge"));
    let target = (pods + 1).to_string();
    let agent = EniAgent::start_in(
        &vpc,
        &[
            ("WARM_IP_TARGET", target.as_str()),
            ("MINIMUM_IP_TARGET", target.as_str()),
        ],
    );
    agent.wait_for(
        "a pool as deep as the run",
        Duration::from_secs(120),
        || agent.get("/v1/pool")["available"].as_u64() >= Some(pods as u64 + 1),
    );
    let node = vpc.node().netns().expect("the node namespace");
    let conf = json!({"cniVersion": "1.1.0", "name": "vpc", "type": "eni-ip",
        "agentSocket": agent.socket()})
    .to_string();
    let call = |verb: &str, pod: &PrivateNetns, k: usize, conf: &str| {
        Call::new(PluginSet::Ours, "eni-ip", verb)
            .container(&format!("bench-{k}"), &pod.path(), "eth0")
            .var(
                "CNI_ARGS",
                &format!("K8S_POD_NAMESPACE=default;K8S_POD_NAME=bench-{k}"),
            )
            .stdin(conf)
    };

    let (mut ours_add, mut ours_del, mut floor_adds, mut floor_dels) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // One pod of each, alternately, so both meet the same machine; the first of each warms up.
    for k in 0..=pods {
        let pod = PrivateNetns::new().expect("a pod namespace");
        let started = Instant::now();
        let out = call("ADD", &pod, k, &conf).run_in(&node);
        let add = started.elapsed();
        let result = out.success();
        let mut with_prev: serde_json::Value = serde_json::from_str(&conf).unwrap();
        with_prev["prevResult"] = result.clone();
        let started = Instant::now();
        call("DEL", &pod, k, &with_prev.to_string())
            .run_in(&node)
            .quiet_success();
        let del = started.elapsed();

        let floor_pod = PrivateNetns::new().expect("a pod namespace");
        let addr = Ipv4Addr::new(10, 0, 200, (k % 250) as u8 + 1);
        let fadd = floor_add(&node, &floor_pod, k, addr);
        let fdel = floor_del(&node, k, addr);
        if k > 0 {
            ours_add.push(add);
            ours_del.push(del);
            floor_adds.push(fadd);
            floor_dels.push(fdel);
        }
    }
    for v in [
        &mut ours_add,
        &mut ours_del,
        &mut floor_adds,
        &mut floor_dels,
    ] {
        v.sort();
    }
    let ratio = |a: &[Duration], b: &[Duration]| {
        percentile(a, 0.5).as_secs_f64() / percentile(b, 0.5).as_secs_f64()
    };
    println!("eni-ip pod, warm-pool address ({pods} pods per scenario, p50 / p99)");
    println!("| scenario | ADD p50 | ADD p99 | DEL p50 | DEL p99 |");
    println!("|---|---|---|---|---|");
    for (name, add, del) in [
        ("kernel floor (ip -batch)", &floor_adds, &floor_dels),
        ("eni-ip + eni-ipamd", &ours_add, &ours_del),
    ] {
        println!(
            "| {name} | {} | {} | {} | {} |",
            ms(percentile(add, 0.5)),
            ms(percentile(add, 0.99)),
            ms(percentile(del, 0.5)),
            ms(percentile(del, 0.99))
        );
    }
    println!(
        "ratios to the floor: ADD {:.2}x, DEL {:.2}x",
        ratio(&ours_add, &floor_adds),
        ratio(&ours_del, &floor_dels)
    );
}
