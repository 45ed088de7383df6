//! A scenario's world: a private node namespace with its own state directory, and private
//! pod namespaces. Everything goes away on drop, also when the bench panics.

use std::path::PathBuf;

use kernel::{Family, Netlink, Netns, PrivateNetns};

/// A private node namespace (`lo` up) and a directory for IPAM, cache and NAD files.
#[derive(Debug)]
pub(crate) struct Node {
    netns: Netns,
    dir: tempfile::TempDir,
    // Last: the namespace outlives nothing that refers to it.
    _ns: PrivateNetns,
}

impl Node {
    /// A fresh node namespace with `lo` up (the API stand-in listens there).
    pub(crate) fn new() -> Node {
        let ns = PrivateNetns::new().expect("create the node namespace");
        let netns = ns.netns().expect("open the node namespace");
        let mut nl = Netlink::in_netns(&netns).expect("netlink in the node namespace");
        let lo = nl
            .link_by_name("lo")
            .expect("find lo in the node namespace")
            .expect("the node namespace has lo");
        nl.set_link_up(lo.index)
            .expect("bring lo up in the node namespace");
        Node {
            netns,
            dir: tempfile::Builder::new()
                .prefix("meta-cni-bench-")
                .tempdir()
                .expect("create the node's state dir"),
            _ns: ns,
        }
    }

    /// The node namespace.
    pub(crate) fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Runs `f` on the calling thread inside the node namespace: plugins spawned there run
    /// in the node namespace, as under a runtime.
    pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        self.netns.run(f).expect("enter the node namespace")
    }

    /// host-local's data dir.
    pub(crate) fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam")
    }

    /// The meta plugin's cache dir.
    pub(crate) fn cni_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The meta plugin's `nadDir`.
    pub(crate) fn nad_dir(&self) -> PathBuf {
        self.dir.path().join("nads")
    }

    /// A file path in the node's state dir.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Links in the node namespace other than `lo` and the bridges: what a DEL left behind.
    pub(crate) fn leftover_links(&self) -> usize {
        Netlink::in_netns(&self.netns)
            .and_then(|mut nl| nl.links())
            .expect("list the node's links")
            .iter()
            .filter(|l| l.name != "lo" && !l.name.starts_with("bench-br"))
            .count()
    }

    /// host-local reservations still on disk.
    pub(crate) fn leftover_reservations(&self) -> usize {
        let Ok(nets) = std::fs::read_dir(self.ipam_dir()) else {
            return 0;
        };
        nets.flatten()
            .filter_map(|net| std::fs::read_dir(net.path()).ok())
            .flat_map(|files| files.flatten())
            .filter(|f| {
                let name = f.file_name();
                let name = name.to_string_lossy();
                name != "lock"
                    && !name.starts_with("last_reserved_ip")
                    && !cni::spare_file::is_spare(&name)
            })
            .count()
    }
}

/// `n` private pod namespaces.
pub(crate) fn pods(n: usize) -> Vec<PrivateNetns> {
    (0..n)
        .map(|_| PrivateNetns::new().expect("create a pod namespace"))
        .collect()
}

/// The IPv4 addresses on every link of a pod namespace but `lo`, as the kernel has them.
pub(crate) fn pod_addresses(pod: &PrivateNetns) -> Vec<String> {
    let netns = pod.netns().expect("open a pod namespace");
    let mut nl = Netlink::in_netns(&netns).expect("netlink in a pod namespace");
    let links = nl.links().expect("list a pod's links");
    let mut out = Vec::new();
    for link in links.iter().filter(|l| l.name != "lo") {
        for a in nl
            .addresses(Some(link.index), Some(Family::V4))
            .expect("list a pod's addresses")
        {
            out.push(a.addr.addr().to_string());
        }
    }
    out
}
