//! The reference plugins, exec'd as a runtime does: one `bridge` ADD per network (each
//! exec'ing `host-local`), DEL in reverse order.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conformance::{Call, Output};
use kernel::PrivateNetns;

use super::meta::{cni_args, container_id};
use super::network::Network;
use super::node::{self, Node};
use super::scenario::Scenario;

/// A node where the reference `bridge` attaches three networks per pod.
#[derive(Debug)]
pub(crate) struct Reference {
    dir: PathBuf,
    networks: Vec<Network>,
    confs: Vec<String>,
    pods: Vec<PrivateNetns>,
    node: Node,
}

impl Reference {
    /// The node, `pods + 1` pod namespaces, and a warm-up with the spare pod.
    pub(crate) fn new(dir: &Path, pods: usize) -> Reference {
        let node = Node::new();
        let networks = Network::first(3);
        let confs = networks
            .iter()
            .map(|n| n.netconf(&node.ipam_dir()).to_string())
            .collect();
        let r = Reference {
            dir: dir.to_path_buf(),
            networks,
            confs,
            pods: node::pods(pods + 1),
            node,
        };
        r.add(pods);
        r.del(pods);
        r
    }

    /// The `verb` call of the reference `binary` for pod `k` on network `i`.
    pub(crate) fn call_of(&self, binary: &Path, verb: &str, k: usize, i: usize) -> Call {
        Call::binary(binary, verb)
            .container(
                &container_id(k),
                &self.pods[k].path(),
                &self.networks[i].ifname(),
            )
            .var("CNI_PATH", &self.dir.display().to_string())
            .var("CNI_ARGS", &cni_args(k))
            .stdin(self.confs[i].as_str())
    }

    /// The reference `bridge`.
    pub(crate) fn bridge(&self) -> PathBuf {
        self.dir.join("bridge")
    }

    /// The spare pod.
    pub(crate) fn spare(&self) -> usize {
        self.pods.len() - 1
    }

    /// The node.
    pub(crate) fn node(&self) -> &Node {
        &self.node
    }

    fn run(&self, verb: &str, k: usize, order: impl Iterator<Item = usize>) -> Duration {
        self.node.run(|| {
            let mut total = Duration::ZERO;
            for i in order {
                let call = self.call_of(&self.bridge(), verb, k, i);
                let start = Instant::now();
                let out = call.run();
                total += start.elapsed();
                check(&out, verb, k, i);
            }
            total
        })
    }

    /// Whatever DEL left behind.
    pub(crate) fn leftovers(&self) -> serde_json::Value {
        serde_json::json!({
            "links": self.node.leftover_links(),
            "reservations": self.node.leftover_reservations(),
        })
    }
}

fn check(out: &Output, verb: &str, k: usize, i: usize) {
    assert_eq!(
        out.code, 0,
        "reference bridge {verb} of pod {k}, network {i} failed: stdout {} stderr {}",
        out.stdout, out.stderr
    );
}

impl Scenario for Reference {
    fn name(&self) -> String {
        "reference (bridge + host-local)".into()
    }

    fn add(&self, k: usize) -> Duration {
        self.run("ADD", k, 0..self.networks.len())
    }

    fn del(&self, k: usize) -> Duration {
        // A runtime deletes attachments in the reverse order of ADD.
        self.run("DEL", k, (0..self.networks.len()).rev())
    }
}
