//! CONFORMANCE.md statement 41: podman (Debian's 4.3, CNI backend, runc) runs a container
//! attached through the meta plugin to three networks (one podman network whose conflist is
//! the meta plugin: the cluster network and two NADs); the container sees all three
//! interfaces and reaches a peer on each; `podman rm -f` leaves no link, address, IPAM
//! reservation, meta-cni cache or libcni cache behind.
//!
//! podman is kept off the machine entirely:
//! - it runs inside a private "node" network namespace, so the plugins it execs put their
//!   bridges and host veths there;
//! - and inside a private mount namespace whose `/run` and `/var/lib` are empty tmpfs, so
//!   its container netns bind mounts (`/run/netns`), runc's state (`/run/runc`), libcni's
//!   cache (`/var/lib/cni`) and containers/image's blob cache vanish with the namespace;
//! - its config, storage and network config dir live in a temp dir (`CONTAINERS_CONF`,
//!   `CONTAINERS_STORAGE_CONF`);
//! - conmon gets no cgroup, and the container's cgroup sits directly under each hierarchy's
//!   root, where runc removes it on delete (no `libpod_parent` left behind).
//!
//! The image is an import of a busybox-static rootfs: nothing is pulled.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use conformance::inspect::{link_names, netlink};
use conformance::{Output, PluginSet};
use kernel::{AddressOptions, BridgeRequest, Family, PrivateNetns, VethRequest};
use serde_json::json;

/// Where busybox-static installs its binary.
const BUSYBOX: &str = "/bin/busybox";
const IMAGE: &str = "localhost/meta-cni-busybox";
const NETWORK: &str = "metanet";

/// The three networks: NAD namespace and name, bridge, /24 prefix. The container gets .2 on
/// each (the first address host-local hands out), the peer has .254.
const NETWORKS: [(&str, &str, &str, &str); 3] = [
    ("kube-system", "cluster", "br-pm0", "10.41.0"),
    ("default", "net-a", "br-pm1", "10.41.1"),
    ("default", "net-b", "br-pm2", "10.41.2"),
];

/// A podman confined to a private node network namespace, a private mount namespace and a
/// temp dir. Dropping it removes every container, then ends the mount namespace's holder.
struct Podman {
    dir: tempfile::TempDir,
    /// `unshare --mount` holding the private mount namespace (inside the node namespace);
    /// podman commands enter both through its pid.
    holder: Child,
    node: PrivateNetns,
}

impl Podman {
    /// Sets up the confinement, podman's config for the CNI backend with our plugin dir, the
    /// meta plugin's network (delegates from `delegates`) and the busybox image.
    fn new(delegates: PluginSet) -> Podman {
        let dir = tempfile::tempdir().unwrap();
        // The mount namespace hides /run and /var/lib: what podman must see (this dir, the
        // plugins) may not live there.
        for path in [dir.path(), PluginSet::Ours.bin_dir(), delegates.bin_dir()] {
            assert!(
                !path.starts_with("/run") && !path.starts_with("/var/lib"),
                "{} is hidden from podman by its private /run and /var/lib: set TMPDIR or \
                 CARGO_TARGET_DIR elsewhere",
                path.display()
            );
        }
        let node = PrivateNetns::new().unwrap();
        let script = "mount -n -t tmpfs tmpfs /run && mount -n -t tmpfs tmpfs /var/lib \
                      && echo ready && exec sleep infinity";
        let mut holder = node
            .netns()
            .unwrap()
            .run(|| {
                Command::new("unshare")
                    .args(["--mount", "--propagation", "private", "sh", "-c", script])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
            })
            .unwrap()
            .expect("spawn `unshare --mount` (util-linux)");
        let mut ready = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        if ready.trim() != "ready" {
            let _ = holder.kill();
            let _ = holder.wait();
            panic!("private mount namespace for podman not set up (see stderr)");
        }
        let podman = Podman { dir, holder, node };
        podman.configure(delegates);
        podman.import_image();
        podman
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn configure(&self, delegates: PluginSet) {
        for sub in ["net.d", "storage", "runroot", "tmp", "image-tmp"] {
            std::fs::create_dir_all(self.path(sub)).unwrap();
        }
        // default_ulimits: raising RLIMIT_NOFILE is not permitted here; runc: crun refuses
        // this machine's hybrid cgroups; file locks and events: nothing in /dev/shm or the
        // journal.
        let containers_conf = format!(
            "[containers]\ndefault_ulimits = []\nlog_driver = \"k8s-file\"\n\
             [network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [{plugins:?}]\n\
             network_config_dir = {net:?}\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\nlock_type = \"file\"\ntmp_dir = {tmp:?}\n\
             image_copy_tmp_dir = {image_tmp:?}\n",
            plugins = PluginSet::Ours.bin_dir(),
            net = self.path("net.d"),
            tmp = self.path("tmp"),
            image_tmp = self.path("image-tmp"),
        );
        std::fs::write(self.path("containers.conf"), containers_conf).unwrap();
        let storage_conf = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = {root:?}\nrunroot = {run:?}\n",
            root = self.path("storage"),
            run = self.path("runroot"),
        );
        std::fs::write(self.path("storage.conf"), storage_conf).unwrap();

        let ipam = self.path("ipam");
        for (ns, name, bridge, prefix) in NETWORKS {
            let conf = json!({"cniVersion": "1.0.0", "type": "bridge", "bridge": bridge,
                "ipam": {"type": "host-local", "subnet": format!("{prefix}.0/24"),
                    "dataDir": ipam}});
            let nad = json!({"apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition", "metadata": {"name": name},
                "spec": {"config": conf.to_string()}});
            let dir = self.path("nads").join(ns);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join(format!("{name}.yaml")),
                serde_saphyr::to_string(&nad).unwrap(),
            )
            .unwrap();
        }
        // podman reads only *.conflist files: one network, the meta plugin.
        let list = json!({"cniVersion": "1.0.0", "name": NETWORK, "plugins": [
            {"type": "meta-cni", "clusterNetwork": "cluster", "nadDir": self.path("nads"),
             "cniDir": self.path("meta-cache"), "binDir": delegates.bin_dir(),
             "networks": [{"name": "net-a"}, {"name": "net-b"}]}]});
        std::fs::write(
            self.path("net.d").join(format!("{NETWORK}.conflist")),
            list.to_string(),
        )
        .unwrap();
    }

    /// Imports a tarred busybox-static rootfs as [`IMAGE`].
    fn import_image(&self) {
        assert!(
            Path::new(BUSYBOX).exists(),
            "{BUSYBOX} is missing: install busybox-static (.ci/run does)"
        );
        let rootfs = self.path("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "ip", "ping", "sleep"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let tar = self.path("rootfs.tar");
        let out = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .expect("run tar");
        assert!(out.status.success(), "tar rootfs: {out:?}");
        self.podman(&["import", tar.to_str().unwrap(), IMAGE])
            .expect_success("import busybox rootfs");
    }

    /// Runs `podman ARGS` inside the node network namespace and the private mount namespace.
    fn podman(&self, args: &[&str]) -> Output {
        let out = Command::new("nsenter")
            .arg(format!("--target={}", self.holder.id()))
            .args(["--mount", "--net", "--", "podman"])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("CONTAINERS_CONF", self.path("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.path("storage.conf"))
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter (util-linux) for podman");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A file or directory as podman's private mount namespace sees it.
    fn private_path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.holder.id()))
    }

    fn entries(&self, dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn reservations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for net in self.entries(&self.path("ipam")) {
            for name in self.entries(&self.path("ipam").join(&net)) {
                if name != "lock"
                    && !name.starts_with("last_reserved_ip")
                    && !cni::spare_file::is_spare(&name)
                {
                    out.push(format!("{net}/{name}"));
                }
            }
        }
        out
    }

    /// The peer: a namespace with one veth on each network's bridge (the bridges made here
    /// first, so the bridge plugin reuses them) holding `<prefix>.254/24`.
    fn add_peer(&self, peer: &PrivateNetns) {
        let peer_ns = peer.netns().unwrap();
        let mut node = netlink(&self.node);
        let mut inside = netlink(peer);
        for (i, (_, _, bridge, prefix)) in NETWORKS.iter().enumerate() {
            node.create_bridge(&BridgeRequest {
                name: bridge.to_string(),
                ..BridgeRequest::default()
            })
            .unwrap();
            let br = node.link_by_name(bridge).unwrap().unwrap().index;
            node.set_link_up(br).unwrap();
            node.create_veth(&VethRequest {
                name: format!("peer{i}"),
                peer_name: format!("eth{i}"),
                peer_netns: Some(&peer_ns),
                master: Some(br),
                up: true,
                ..VethRequest::default()
            })
            .unwrap();
            let eth = inside.link_by_name(&format!("eth{i}")).unwrap().unwrap();
            inside
                .add_address(
                    eth.index,
                    format!("{prefix}.254/24").parse().unwrap(),
                    AddressOptions::default(),
                )
                .unwrap();
            inside.set_link_up(eth.index).unwrap();
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Every container goes (its network torn down by the plugins, its netns unmounted),
        // then the holder, and with it the mount namespace and its tmpfs.
        let out = self.podman(&["rm", "--all", "--force", "--time", "0"]);
        if out.code != 0 {
            eprintln!("podman rm --all on cleanup: {out:?}");
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

trait ExpectSuccess {
    fn expect_success(&self, what: &str) -> &str;
}

impl ExpectSuccess for Output {
    /// Asserts exit 0 and returns stdout.
    fn expect_success(&self, what: &str) -> &str {
        assert_eq!(
            self.code, 0,
            "podman {what} failed: stdout {:?} stderr {:?}",
            self.stdout, self.stderr
        );
        &self.stdout
    }
}

/// `(interface, address)` pairs of `ip -o -4 addr` output, `lo` left out.
fn ipv4_addresses(ip_output: &str) -> BTreeSet<(String, String)> {
    ip_output
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "inet")?;
            Some((words[1].to_string(), words.get(at + 1)?.to_string()))
        })
        .filter(|(ifname, _)| ifname != "lo")
        .collect()
}

#[test]
fn statement_41_podman_container_on_three_networks() {
    for delegates in PluginSet::under_test() {
        let p = Podman::new(delegates);
        let peer = PrivateNetns::new().unwrap();
        p.add_peer(&peer);

        let name = "meta-cni-ctr";
        p.podman(&[
            "run",
            "--detach",
            "--name",
            name,
            "--network",
            NETWORK,
            // conmon stays in podman's cgroup; the container's own cgroup is a direct child
            // of each hierarchy's root, which runc removes on delete.
            "--cgroups",
            "no-conmon",
            "--cgroup-parent",
            "/",
            IMAGE,
            "sleep",
            "600",
        ])
        .expect_success("run");

        // Inside the container: three interfaces, one address on each network.
        let ip = p.podman(&["exec", name, "ip", "-o", "-4", "addr"]);
        let seen = ipv4_addresses(ip.expect_success("exec ip addr"));
        let expected: BTreeSet<(String, String)> = ["eth0", "net1", "net2"]
            .iter()
            .zip(NETWORKS)
            .map(|(ifname, (_, _, _, prefix))| (ifname.to_string(), format!("{prefix}.2/24")))
            .collect();
        assert_eq!(seen, expected, "{delegates:?}: {}", ip.stdout);
        // ... and the peer answers on each of them.
        for (_, _, _, prefix) in NETWORKS {
            let target = format!("{prefix}.254");
            p.podman(&["exec", name, "ping", "-c", "1", "-W", "2", &target])
                .expect_success(&format!("exec ping {target}"));
        }
        assert_eq!(p.reservations().len(), 3, "{:?}", p.reservations());
        let cached: Vec<String> = p
            .entries(&p.path("meta-cache"))
            .into_iter()
            .filter(|e| e.ends_with(".meta-cni.json"))
            .collect();
        assert_eq!(cached.len(), 1, "meta-cni cache: {cached:?}");
        let libcni_cache = p.private_path("/var/lib/cni/results");
        assert_eq!(
            p.entries(&libcni_cache),
            [format!(
                "{NETWORK}-{}-eth0",
                p.podman(&["inspect", "--format", "{{.Id}}", name])
                    .expect_success("inspect")
                    .trim()
            )]
        );

        p.podman(&["rm", "--force", "--time", "0", name])
            .expect_success("rm");
        // Nothing of the container is left: host veths, addresses, reservations, caches,
        // the container's netns mount.
        let links = link_names(&p.node);
        let expected_links: BTreeSet<String> = ["lo", "br-pm0", "br-pm1", "br-pm2"]
            .into_iter()
            .chain(["peer0", "peer1", "peer2"])
            .map(String::from)
            .collect();
        assert_eq!(links, expected_links, "{delegates:?}");
        let node_addrs = netlink(&p.node).addresses(None, Some(Family::V4)).unwrap();
        assert!(
            node_addrs.iter().all(|a| a.addr.addr().is_loopback()),
            "{delegates:?}: addresses left in the node: {node_addrs:?}"
        );
        assert!(p.reservations().is_empty(), "{:?}", p.reservations());
        // The cniDir's one lock file (for every container) stays.
        let left = conformance::inspect::meta_cache_files(&p.path("meta-cache"));
        assert!(left.is_empty(), "meta-cni cache: {left:?}");
        assert!(p.entries(&libcni_cache).is_empty(), "libcni cache");
        assert!(p.entries(&p.private_path("/run/netns")).is_empty());
    }
}
