//! What a test reads back after a call: a namespace's links and addresses, and host-local's
//! reservations. Every function panics on failure: the callers are tests.

use std::collections::BTreeSet;
use std::path::Path;

use kernel::{Family, Netlink, Netns, PrivateNetns};

/// A handle on `ns`.
pub fn netns(ns: &PrivateNetns) -> Netns {
    ns.netns().expect("open a test namespace")
}

/// A netlink socket inside `ns`.
pub fn netlink(ns: &PrivateNetns) -> Netlink {
    Netlink::in_netns(&netns(ns)).expect("netlink socket in a test namespace")
}

/// The names of every link in `ns`.
pub fn link_names(ns: &PrivateNetns) -> BTreeSet<String> {
    netlink(ns)
        .links()
        .expect("list links")
        .into_iter()
        .map(|l| l.name)
        .collect()
}

/// The host ends of veth pairs in `ns` (the bridge plugin names them `veth...`).
pub fn host_veths(ns: &PrivateNetns) -> Vec<String> {
    link_names(ns)
        .into_iter()
        .filter(|n| n.starts_with("veth"))
        .collect()
}

/// The IPv4 addresses (`a.b.c.d/len`) of `ifname` in `ns`; none if there is no such link.
pub fn ipv4_addrs(ns: &PrivateNetns, ifname: &str) -> Vec<String> {
    let mut nl = netlink(ns);
    let Some(link) = nl.link_by_name(ifname).expect("look a link up") else {
        return Vec::new();
    };
    nl.addresses(Some(link.index), Some(Family::V4))
        .expect("list addresses")
        .into_iter()
        .map(|a| a.addr.to_string())
        .collect()
}

/// The addresses host-local holds in any network under `data_dir` (one directory per
/// network; the lock, cursor and spare files are not reservations), sorted.
pub fn reservations(data_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for network in std::fs::read_dir(data_dir).into_iter().flatten() {
        let network = network.expect("read the IPAM data dir").path();
        if !network.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&network).expect("read a network's IPAM dir") {
            let name = file
                .expect("read a network's IPAM dir")
                .file_name()
                .to_string_lossy()
                .into_owned();
            if name != "lock"
                && !name.starts_with("last_reserved_ip")
                && !cni::spare_file::is_spare(&name)
            {
                found.push(name);
            }
        }
    }
    found.sort();
    found
}

/// `nft list ruleset` in `ns`.
pub fn ruleset(ns: &PrivateNetns) -> String {
    let out = netns(ns)
        .run(|| {
            std::process::Command::new("nft")
                .args(["list", "ruleset"])
                .output()
        })
        .expect("enter a test namespace")
        .expect("run nft");
    assert!(out.status.success(), "nft list ruleset: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The rules of every chain in `ns`, one line each (tables, chains and their base-chain
/// declarations are not rules).
pub fn nft_rules(ns: &PrivateNetns) -> Vec<String> {
    ruleset(ns)
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && *l != "}"
                && !["table ", "chain ", "type ", "policy "]
                    .iter()
                    .any(|p| l.starts_with(p))
        })
        .map(String::from)
        .collect()
}

/// The lock file of a meta-cni cniDir: one for every container, it stays.
pub const META_CNI_LOCK: &str = "meta-cni.lock";

/// The files in meta-cni's cniDir `dir` but its lock file, sorted: cache entries and
/// anything a call left. None when the directory does not exist.
pub fn meta_cache_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|e| {
            e.expect("read a cniDir")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != META_CNI_LOCK && !cni::spare_file::is_spare(name))
        .collect();
    names.sort();
    names
}
