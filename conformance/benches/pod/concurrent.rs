//! Many pods at once: every pod's ADD started together (one thread per pod, released by a
//! barrier), then every DEL together. Wall time, errors, and whether any address was given
//! twice, by the results and by the kernel.

use std::collections::HashSet;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use conformance::Output;
use serde_json::{json, Value};

use super::binaries::Plugins;
use super::meta::{MetaNode, Mode};
use super::node;
use super::stats::{round, Samples};

/// What a burst of pods did.
#[derive(Debug)]
pub(crate) struct Burst {
    /// How many pods.
    pub(crate) pods: usize,
    /// From release to the last ADD's exit.
    pub(crate) add_wall: Duration,
    /// From release to the last DEL's exit.
    pub(crate) del_wall: Duration,
    /// Each ADD's own latency.
    pub(crate) add: Samples,
    /// Each DEL's own latency.
    pub(crate) del: Samples,
    /// Failed ADDs (first lines of their errors).
    pub(crate) add_errors: Vec<String>,
    /// Failed DELs.
    pub(crate) del_errors: Vec<String>,
    /// Addresses handed out more than once, by the ADD results.
    pub(crate) duplicate_results: usize,
    /// Addresses found on more than one pod interface, by the kernel.
    pub(crate) duplicate_kernel: usize,
    /// Addresses the kernel has on pod interfaces after the ADDs.
    pub(crate) kernel_addresses: usize,
    /// What the DELs left behind.
    pub(crate) leftovers: Value,
}

impl Burst {
    /// Errors of both phases.
    pub(crate) fn errors(&self) -> usize {
        self.add_errors.len() + self.del_errors.len()
    }

    /// Duplicates by either count.
    pub(crate) fn duplicates(&self) -> usize {
        self.duplicate_results.max(self.duplicate_kernel)
    }

    /// As JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "pods": self.pods,
            "add_wall_ms": round(self.add_wall.as_secs_f64() * 1e3),
            "del_wall_ms": round(self.del_wall.as_secs_f64() * 1e3),
            "add": self.add.to_json(),
            "del": self.del.to_json(),
            "add_errors": self.add_errors,
            "del_errors": self.del_errors,
            "duplicate_addresses_results": self.duplicate_results,
            "duplicate_addresses_kernel": self.duplicate_kernel,
            "kernel_addresses": self.kernel_addresses,
            "leftovers": self.leftovers,
        })
    }
}

/// Adds `pods` three-interface pods at once through the meta plugin, then deletes them at
/// once.
pub(crate) fn run(plugins: &Plugins, pods: usize) -> Burst {
    let meta = MetaNode::new(plugins, 3, pods, Mode::Standalone);
    meta.warm_up();

    let (add_wall, adds) = all_at_once(&meta, "ADD", pods);
    let mut handed_out = Vec::new();
    for (_, out) in adds.iter().filter(|(_, o)| o.code == 0) {
        let result = out.json();
        for ip in result["ips"].as_array().into_iter().flatten() {
            let addr = ip["address"].as_str().unwrap_or_default();
            handed_out.push(addr.split('/').next().unwrap_or_default().to_owned());
        }
    }
    let on_pods: Vec<String> = (0..pods)
        .flat_map(|k| node::pod_addresses(meta.pod(k)))
        .collect();

    let (del_wall, dels) = all_at_once(&meta, "DEL", pods);
    Burst {
        pods,
        add_wall,
        del_wall,
        add: samples(&adds),
        del: samples(&dels),
        add_errors: errors(&adds),
        del_errors: errors(&dels),
        duplicate_results: duplicates(&handed_out),
        duplicate_kernel: duplicates(&on_pods),
        kernel_addresses: on_pods.len(),
        leftovers: meta.leftovers(),
    }
}

/// Runs `verb` for pods `0..pods`, each on its own thread in the node namespace, all
/// released together; returns the wall time from release to the last exit.
fn all_at_once(
    meta: &MetaNode<'_>,
    verb: &str,
    pods: usize,
) -> (Duration, Vec<(Duration, Output)>) {
    let barrier = Barrier::new(pods + 1);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..pods)
            .map(|k| {
                let barrier = &barrier;
                s.spawn(move || {
                    meta.node().run(|| {
                        barrier.wait();
                        meta.timed(verb, k)
                    })
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let outs: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("a pod thread panicked"))
            .collect();
        (start.elapsed(), outs)
    })
}

fn samples(outs: &[(Duration, Output)]) -> Samples {
    let mut s = Samples::default();
    for (t, _) in outs {
        s.push(*t);
    }
    s
}

fn errors(outs: &[(Duration, Output)]) -> Vec<String> {
    outs.iter()
        .enumerate()
        .filter(|(_, (_, o))| o.code != 0)
        .map(|(k, (_, o))| format!("pod {k}: exit {}: {}", o.code, o.stdout.trim()))
        .collect()
}

/// How many entries repeat an earlier one.
fn duplicates(addrs: &[String]) -> usize {
    let unique: HashSet<&String> = addrs.iter().collect();
    addrs.len() - unique.len()
}
