//! The pod benchmark (issue 6): what a pod's network setup costs through `meta-cni`, next
//! to the reference plugins and the kernel floor, all in private network namespaces.
//!
//! `cargo bench -p conformance --bench pod` (as root) builds `meta-cni` in release, then in
//! one run measures, with three bridge + host-local networks per pod:
//! - ADD and DEL latency (p50, p99) of the kernel floor (`ip -batch`), our meta plugin
//!   (`nadDir`), the meta plugin in Kubernetes mode (API stand-in) by itself and through
//!   its daemon (thick mode), and the reference plugins exec'd as a runtime does, pod by
//!   pod in turns;
//! - every pod added at once, then deleted at once: wall time, errors, duplicate addresses;
//! - per-pod cost for 1, 3, 8 and 16 interfaces;
//! - peak RSS of one `meta-cni` call.
//!
//! It prints a table and writes `pod.json` and `pod.svg` to `BENCH_OUT` (default
//! `target/bench`). `BENCH_PODS` (default 50) sets the pods per scenario (`BENCH_PODS=3` is
//! a quick smoke run), `BENCH_SCALE_PODS` (default `min(BENCH_PODS, 25)`) those per sweep
//! size, `BENCH_NO_BUILD=1` skips the release build, `META_CNI_BIN` names another binary.
//! The nodes' state (caches, reservations) lives in the temporary directory (`TMPDIR`), whose
//! file system the report names: the floor writes no files, we and the reference do.

// The parts live in `benches/pod/` (the crate root is `benches/pod.rs`).
mod pod {
    pub(crate) mod binaries;
    pub(crate) mod concurrent;
    pub(crate) mod floor;
    pub(crate) mod kube;
    pub(crate) mod meta;
    pub(crate) mod network;
    pub(crate) mod node;
    pub(crate) mod options;
    pub(crate) mod plot;
    pub(crate) mod reference;
    pub(crate) mod report;
    pub(crate) mod rss;
    pub(crate) mod scenario;
    pub(crate) mod stats;
}

use std::time::Instant;

use serde_json::{json, Map};

use pod::binaries::Plugins;
use pod::floor::Floor;
use pod::kube::KubeScenario;
use pod::meta::{MetaNode, Mode};
use pod::options::Options;
use pod::reference::Reference;
use pod::report::{Results, RssReading};
use pod::scenario::{in_turns, Scenario};

/// The interface counts of the sweep.
const SIZES: [usize; 4] = [1, 3, 8, 16];

fn main() {
    if pod::rss::is_probe() {
        pod::rss::probe_main();
    }
    let opts = Options::from_env();
    let plugins = Plugins::prepare(opts.no_build);
    eprintln!(
        "bench: {} pods, sweep {} pods per size, meta-cni {}",
        opts.pods,
        opts.scale_pods,
        plugins.meta_cni.display()
    );
    let started = Instant::now();
    let mut leftovers = Map::new();
    let mut rss = Vec::new();

    // The 3-interface scenarios, in turns.
    let (floor, ours, reference, kube, daemon) = {
        let floor = Floor::new(opts.pods);
        let ours = MetaNode::new(&plugins, 3, opts.pods, Mode::Standalone);
        ours.warm_up();
        let reference = Plugins::reference_dir()
            .map(|dir| Reference::new(dir, opts.pods))
            .ok_or_else(|| "skipped: no bridge and host-local in /usr/lib/cni".to_owned());
        let kube = KubeScenario::new(&plugins, opts.pods, Mode::Kube);
        let daemon = KubeScenario::new(&plugins, opts.pods, Mode::Daemon);
        let mut scenarios: Vec<&dyn Scenario> = vec![&floor, &ours];
        if let Ok(r) = &reference {
            scenarios.push(r);
        }
        if let Ok(k) = &kube {
            scenarios.push(k);
        }
        if let Ok(d) = &daemon {
            scenarios.push(d);
        }
        let names: Vec<String> = scenarios.iter().map(|s| s.name()).collect();
        eprintln!("bench: latency in turns: {}", names.join(", "));
        let mut timings = in_turns(&scenarios, opts.pods).into_iter();
        let floor_t = timings.next().expect("floor timings");
        let ours_t = timings.next().expect("meta-cni timings");
        let reference_t = reference
            .as_ref()
            .map(|_| timings.next().expect("reference"));
        let kube_t = kube.as_ref().map(|k| {
            let t = timings.next().expect("kube timings");
            (t, k.requests_json(opts.pods))
        });
        let daemon_t = daemon.as_ref().map(|d| {
            let t = timings.next().expect("daemon timings");
            (t, d.requests_json(opts.pods))
        });
        leftovers.insert("ours".into(), ours.leftovers());
        if let Ok(r) = &reference {
            leftovers.insert("reference".into(), r.leftovers());
        }
        if let Ok(k) = &kube {
            leftovers.insert("kube".into(), k.leftovers());
        }
        if let Ok(d) = &daemon {
            leftovers.insert("daemon".into(), d.leftovers());
        }

        eprintln!("bench: peak RSS");
        rss.extend(meta_rss(&ours));
        if let Ok(r) = &reference {
            rss.push(reference_rss(r));
        }
        (
            floor_t,
            ours_t,
            reference_t.map_err(|e| e.clone()),
            kube_t.map_err(|e| e.clone()),
            daemon_t.map_err(|e| e.clone()),
        )
    };

    eprintln!("bench: {} pods at once", opts.pods);
    let burst = pod::concurrent::run(&plugins, opts.pods);

    eprintln!("bench: interfaces {SIZES:?}, in turns");
    let scaling = {
        let nodes: Vec<MetaNode<'_>> = SIZES
            .iter()
            .map(|&n| MetaNode::new(&plugins, n, opts.scale_pods, Mode::Standalone))
            .collect();
        for node in &nodes {
            node.warm_up();
        }
        let scenarios: Vec<&dyn Scenario> = nodes.iter().map(|n| n as &dyn Scenario).collect();
        let timings = in_turns(&scenarios, opts.scale_pods);
        if let Some(largest) = nodes.last() {
            rss.extend(meta_rss(largest));
        }
        SIZES.iter().copied().zip(timings).collect::<Vec<_>>()
    };

    let results = Results {
        pods: opts.pods,
        scale_pods: opts.scale_pods,
        floor,
        ours,
        reference,
        kube,
        daemon,
        leftovers,
        burst,
        scaling,
        rss,
    };
    results.print();

    std::fs::create_dir_all(&opts.out_dir)
        .unwrap_or_else(|e| panic!("create {}: {e}", opts.out_dir.display()));
    let mut doc = results.to_json();
    doc["duration_s"] = json!(pod::stats::round(started.elapsed().as_secs_f64()));
    let json_path = opts.out_dir.join("pod.json");
    let text = serde_json::to_string_pretty(&doc).expect("the figures serialise");
    std::fs::write(&json_path, text + "\n")
        .unwrap_or_else(|e| panic!("write {}: {e}", json_path.display()));
    let svg_path = opts.out_dir.join("pod.svg");
    pod::plot::render(&results, &svg_path)
        .unwrap_or_else(|e| panic!("render {}: {e}", svg_path.display()));
    println!();
    println!(
        "wrote {} and {} ({:.0} s)",
        json_path.display(),
        svg_path.display(),
        started.elapsed().as_secs_f64()
    );
}

/// Peak RSS of the meta plugin's ADD and DEL of `meta`'s spare pod.
fn meta_rss(meta: &MetaNode<'_>) -> Vec<RssReading> {
    let n = meta.interfaces();
    let spare = meta.spare();
    ["ADD", "DEL"]
        .into_iter()
        .map(|verb| {
            let call = pod::rss::wrap(|probe| meta.call_of(probe, verb, spare), &meta.plugin());
            let what = format!("meta-cni {verb}, {n} interfaces");
            let (_, kib) = meta.node().run(|| pod::rss::run(&call, &what));
            RssReading {
                what,
                ours: true,
                kib,
            }
        })
        .collect()
}

/// Peak RSS of the reference bridge's ADD on the spare pod's cluster network (and the
/// `host-local` it execs), then a DEL to leave the node clean.
fn reference_rss(reference: &Reference) -> RssReading {
    let spare = reference.spare();
    let bridge = reference.bridge();
    let what = "reference bridge ADD, 1 interface".to_owned();
    let add = pod::rss::wrap(|probe| reference.call_of(probe, "ADD", spare, 0), &bridge);
    let (_, kib) = reference.node().run(|| pod::rss::run(&add, &what));
    let del = reference.call_of(&bridge, "DEL", spare, 0);
    let out = reference.node().run(|| del.run());
    assert_eq!(out.code, 0, "reference DEL after the RSS probe: {out:?}");
    RssReading {
        what,
        ours: false,
        kib,
    }
}
