//! AddNetwork + DelNetwork latency through the ENI agent's socket on a warm-pool hit: the
//! real `eni-ipamd` against the emulated cloud, the blocking client the plugin uses.
//!
//! `cargo bench -p conformance --bench eni_agent` (after `cargo build --release -p eni-ipamd`,
//! or with `ENI_IPAMD_BIN`). `ENI_BENCH_PAIRS` sets the number of pairs (default 500).
//! `IP_COOLDOWN_PERIOD` is 0 so every ADD is a pool hit: with AWS's 30 s, a long run would
//! measure pool growth instead.
//!
//! The floor, in the same run: the same client against a server that answers every call at
//! once with a fixed reply (one connection, one JSON line each way, no work): what no agent
//! can go below. The ratios are the agent's p50 over the floor's.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use conformance::ec2_emulator::{Ec2Emulator, NodeSpec};
use conformance::eni_agent::EniAgent;
use eni_ip::protocol::client::Client;
use eni_ip::protocol::{
    AddNetwork, AttachmentKey, DelNetwork, Outcome, Released, Response, PROTOCOL_VERSION,
};

/// `pairs` DelNetwork calls of the client against a server answering each at once with a
/// fixed reply: the protocol's round trip, nothing else.
fn floor(pairs: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("floor.sock");
    let listener = UnixListener::bind(&socket).expect("bind the floor's socket");
    let mut reply = serde_json::to_vec(&Response {
        protocol: PROTOCOL_VERSION,
        server: "floor".into(),
        outcome: Outcome::Released(Released { address: None }),
    })
    .expect("a reply");
    reply.push(b'\n');
    let server = std::thread::spawn(move || {
        for _ in 0..pairs {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut request = Vec::new();
            stream.read_to_end(&mut request).expect("read a request");
            stream.write_all(&reply).expect("answer");
        }
    });
    let client = Client::new(&socket, "bench");
    let mut times = Vec::with_capacity(pairs);
    for n in 0..pairs {
        let started = Instant::now();
        client
            .del_network(DelNetwork {
                key: AttachmentKey {
                    network: "bench".into(),
                    container_id: format!("sandbox{n}"),
                    ifname: "eth0".into(),
                },
                reason: "PodDeleted".into(),
            })
            .expect("the floor answers");
        times.push(started.elapsed());
    }
    server.join().expect("the floor's server");
    times.sort();
    times
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let pairs: usize = std::env::var("ENI_BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let cloud = Ec2Emulator::start();
    let node = cloud.seed_node(&NodeSpec::new("m5.large"));
    let agent = EniAgent::start(&cloud, &[("IP_COOLDOWN_PERIOD", "0")]);
    agent.wait_for("a warm pool", Duration::from_secs(60), || {
        agent.get("/v1/pool")["total"].as_u64() >= Some(9)
    });
    let client = agent.client();
    cloud.clear_calls();
    let key = |n: usize| AttachmentKey {
        network: "bench".into(),
        container_id: format!("sandbox{n}"),
        ifname: "eth0".into(),
    };
    let (mut adds, mut dels) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs));
    for n in 0..pairs {
        let started = Instant::now();
        client
            .add_network(AddNetwork {
                key: key(n),
                netns: String::new(),
                pod_namespace: "default".into(),
                pod_name: format!("pod{n}"),
            })
            .expect("ADD");
        adds.push(started.elapsed());
        let started = Instant::now();
        client
            .del_network(DelNetwork {
                key: key(n),
                reason: "PodDeleted".into(),
            })
            .expect("DEL");
        dels.push(started.elapsed());
    }
    let ec2_calls = cloud.calls().len();
    adds.sort();
    dels.sort();
    let floor = floor(pairs);
    let floor_p50 = percentile(&floor, 0.5);
    let ratio = |v: &[Duration]| percentile(v, 0.5).as_secs_f64() / floor_p50.as_secs_f64();
    println!(
        "eni-ipamd on {} ({pairs} pairs, warm-pool hits; each call checkpoints with fsync)",
        node.instance_type
    );
    println!("| call | p50 | p99 | max | p50 / floor |");
    println!("|---|---|---|---|---|");
    for (name, v) in [
        ("AddNetwork", &adds),
        ("DelNetwork", &dels),
        ("floor (fixed reply)", &floor),
    ] {
        println!(
            "| {name} | {} | {} | {} | {:.1}x |",
            micros(percentile(v, 0.5)),
            micros(percentile(v, 0.99)),
            micros(*v.last().unwrap()),
            ratio(v)
        );
    }
    println!("EC2 calls during the run (pool upkeep): {ec2_calls}");
}
