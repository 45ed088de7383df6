//! The kernel floor: the links, addresses and routes the plugins make, made by one
//! `ip -batch` per namespace (the node's: veth pairs with their peer created in the pod, on
//! the bridges, up; the pod's: addresses, links up, default route), with addresses planned
//! up front. No IPAM, no cache, no netconf: what no plugin can go below.
//!
//! DEL removes the pod's host veths (taking their peers along) in one request, by link
//! group: the kernel then waits for one RCU grace period for all of them instead of one per
//! link (deleting three veths one by one costs about three times as much).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kernel::{Netns, PrivateNetns};

use super::network::Network;
use super::node::{self, Node};
use super::scenario::Scenario;

/// A node whose bridges exist, and pod namespaces to attach.
#[derive(Debug)]
pub(crate) struct Floor {
    networks: Vec<Network>,
    /// Each pod's namespace, with a handle on it and the ID of the thread holding it
    /// (`ip ... netns <id>` moves a link into the namespace of that task).
    pods: Vec<(PrivateNetns, Netns, u32)>,
    node: Node,
}

impl Floor {
    /// The node with its bridges (as the plugins' first ADD would leave it), `pods + 1`
    /// pod namespaces, and a warm-up with the spare pod.
    pub(crate) fn new(pods: usize) -> Floor {
        let node = Node::new();
        let networks = Network::first(3);
        let mut setup = String::new();
        for net in &networks {
            let br = net.bridge();
            let _ = writeln!(setup, "link add {br} type bridge");
            let _ = writeln!(
                setup,
                "addr add {}/{} dev {br}",
                net.gateway(),
                Network::PREFIX
            );
            let _ = writeln!(setup, "link set {br} up");
        }
        ip_batch(node.netns(), &setup);
        let pods = node::pods(pods + 1)
            .into_iter()
            .map(|ns| {
                let netns = ns.netns().expect("open a pod namespace");
                let tid = ns.thread_id();
                (ns, netns, tid)
            })
            .collect::<Vec<_>>();
        let floor = Floor {
            networks,
            pods,
            node,
        };
        let spare = floor.pods.len() - 1;
        floor.add(spare);
        floor.del(spare);
        floor
    }

    /// The link group of pod `k`'s host veths (0 is every link's default group).
    fn group(k: usize) -> usize {
        k + 1
    }

    /// The host end of pod `k`'s veth on network `i` (at most 15 bytes).
    fn host_veth(k: usize, i: usize) -> String {
        format!("bv{k}x{i}")
    }
}

impl Scenario for Floor {
    fn name(&self) -> String {
        "kernel floor (ip -batch)".into()
    }

    fn add(&self, k: usize) -> Duration {
        let (_, pod, tid) = &self.pods[k];
        let mut host = String::new();
        let mut inside = String::new();
        for (i, net) in self.networks.iter().enumerate() {
            let veth = Self::host_veth(k, i);
            let ifname = net.ifname();
            let _ = writeln!(
                host,
                "link add {veth} type veth peer name {ifname} netns {tid}"
            );
            // One request for master, group and up; the group is set here because
            // `link add` drops it when the peer goes to another namespace.
            let _ = writeln!(
                host,
                "link set {veth} master {} group {} up",
                net.bridge(),
                Self::group(k)
            );
            let _ = writeln!(
                inside,
                "addr add {}/{} dev {ifname}",
                net.pod_addr(k),
                Network::PREFIX
            );
            let _ = writeln!(inside, "link set {ifname} up");
        }
        let cluster = self.networks[0];
        let _ = writeln!(
            inside,
            "route add default via {} dev {}",
            cluster.gateway(),
            cluster.ifname()
        );
        ip_batch(self.node.netns(), &host) + ip_batch(pod, &inside)
    }

    fn del(&self, k: usize) -> Duration {
        // Deleting the host ends takes the pod ends with them.
        ip_batch(
            self.node.netns(),
            &format!("link del group {}\n", Self::group(k)),
        )
    }
}

/// Runs `ip -batch -` with `script` in `ns`; returns how long the process took, from spawn
/// to exit. Panics if it fails.
fn ip_batch(ns: &Netns, script: &str) -> Duration {
    ns.run(|| {
        let start = Instant::now();
        let mut child = Command::new("ip")
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ip -batch (iproute2)");
        let mut stdin = child.stdin.take().expect("ip's stdin");
        stdin
            .write_all(script.as_bytes())
            .expect("write the ip batch");
        drop(stdin);
        let out = child.wait_with_output().expect("wait for ip -batch");
        let took = start.elapsed();
        if !out.status.success() {
            // The namespace's links, groups included, say what the script did not expect.
            let links = Command::new("ip")
                .args(["-d", "-o", "link", "show"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            panic!(
                "ip -batch failed ({}): {}\nscript:\n{script}\nlinks:\n{links}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        took
    })
    .expect("enter a namespace for ip -batch")
}
