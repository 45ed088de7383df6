//! The `host-local` IPAM plugin: addresses from configured ranges, reserved in files on the
//! node, a drop-in replacement for the reference containernetworking plugin.
//!
//! It reads the `ipam` object of the netconf it is given (so a bridge or other main plugin
//! can pass its own netconf through, exec'd or in-process via [`HostLocal`]'s
//! [`cni::Plugin`] methods). The data directory layout is the reference's (see the `store`
//! module), so a node can switch between the two implementations with reservations kept.
//!
//! - ADD reserves one address per range set (a requested one where the set holds one, else
//!   round-robin) and returns them with the configured routes and `resolvConf` DNS.
//! - DEL releases the attachment's addresses; CHECK verifies they are still reserved.
//! - STATUS reports whether the data directory is writable; GC releases every reservation
//!   whose attachment is not in `cni.dev/valid-attachments`.
//!
//! Every operation holds the network's `lock` file for its whole duration.

mod allocator;
mod config;
mod owner;
mod owners_index;
mod range;
mod resolv_conf;
mod store;

use std::net::IpAddr;

use cni::chain;
use cni::{CniResult, Dns, Error, ErrorCode, Plugin, Request};

use allocator::Allocator;
use config::Config;
use store::Store;

pub use config::DEFAULT_DATA_DIR;

/// The host-local IPAM plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostLocal;

/// Releases what this call reserved before failing; the failure is what gets reported.
fn roll_back(store: &Store, reserved: &[IpAddr]) {
    for ip in reserved {
        if let Err(e) = store.release(*ip) {
            tracing::warn!(%ip, "releasing after a failed ADD: {e}");
        }
    }
}

impl Plugin for HostLocal {
    fn name(&self) -> &'static str {
        "host-local"
    }

    fn known_args(&self) -> &'static [&'static str] {
        &["IP"]
    }

    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        let config = Config::load(req)?;
        let dns = match &config.resolv_conf {
            Some(path) => resolv_conf::read(path)?,
            None => Dns::default(),
        };
        let store = Store::open(&config.data_dir, &config.name)?;
        let mut pending = config.requested.clone();
        let mut reserved = Vec::new();
        let mut ips = Vec::new();
        for (i, set) in config.range_sets.iter().enumerate() {
            let wanted = pending
                .iter()
                .position(|r| set.contains(r.ip))
                .map(|k| pending.remove(k));
            match Allocator::new(set, &store, i).get(
                &req.inv.container_id,
                &req.inv.ifname,
                wanted.as_ref(),
            ) {
                Ok(ip) => {
                    reserved.push(ip.address.addr());
                    ips.push(ip);
                }
                Err(e) => {
                    roll_back(&store, &reserved);
                    return Err(e.context(format!("failed to allocate for range {i}")));
                }
            }
        }
        if !pending.is_empty() {
            roll_back(&store, &reserved);
            let ips: Vec<String> = pending.iter().map(|r| r.ip.to_string()).collect();
            let why: Vec<String> = pending
                .iter()
                .map(|r| format!("{} (from {})", r.ip, r.source))
                .collect();
            return Err(Error::new(
                ErrorCode::INVALID_NETWORK_CONFIG,
                format!("failed to allocate all requested IPs: {}", ips.join(" ")),
                format!("no range set holds {}", why.join(", ")),
            ));
        }
        Ok(CniResult {
            ips,
            routes: config.routes,
            dns,
            ..CniResult::default()
        })
    }

    fn del(&self, req: &Request) -> Result<(), Error> {
        let (network, data_dir) = config::store_location(req)?;
        let Some(store) = Store::open_existing(&data_dir, &network)? else {
            return Ok(());
        };
        let released = store.release_owner(&req.inv.container_id, &req.inv.ifname)?;
        tracing::debug!(?released, "released");
        Ok(())
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        let config = Config::load(req)?;
        let store = Store::open(&config.data_dir, &config.name)?;
        let (id, ifname) = (&req.inv.container_id, &req.inv.ifname);
        if store.find(id, ifname)?.is_empty() {
            return Err(Error::new(
                ErrorCode::CHECK_FAILED,
                format!("host-local: Failed to find address added by container {id}"),
                format!(
                    "no reservation for interface {ifname} in {}",
                    store.dir().display()
                ),
            ));
        }
        let Some(prev) = req.netconf.prev_result(req.version)? else {
            return Ok(());
        };
        for ip in prev.ips.iter().map(|c| c.address.addr()) {
            if !config.range_sets.iter().any(|s| s.contains(ip)) {
                continue;
            }
            let owner = store.owner(ip)?;
            if !owner.as_ref().is_some_and(|o| o.matches(id, ifname)) {
                return Err(Error::new(
                    ErrorCode::CHECK_FAILED,
                    format!(
                        "host-local: address {ip} of prevResult is not reserved for {id}/{ifname}"
                    ),
                    match owner {
                        Some(o) => format!("it is held by {o}"),
                        None => "it is not reserved".into(),
                    },
                ));
            }
        }
        Ok(())
    }

    fn status(&self, req: &Request) -> Result<(), Error> {
        let config = Config::load(req)?;
        let unavailable = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorCode::PLUGIN_NOT_AVAILABLE,
                format!("data dir {} is not writable", config.data_dir.display()),
                e.to_string(),
            )
        };
        std::fs::create_dir_all(&config.data_dir).map_err(|e| unavailable(&e))?;
        nix::unistd::access(
            &config.data_dir,
            nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
        )
        .map_err(|e| unavailable(&e))
    }

    fn gc(&self, req: &Request) -> Result<(), Error> {
        let config = Config::load(req)?;
        let valid = chain::valid_attachments(&req.netconf)?;
        let store = Store::open(&config.data_dir, &config.name)?;
        for (ip, owner) in store.reservations()? {
            let keep = valid.iter().any(|a| match &owner.ifname {
                Some(_) => owner.is(&a.container_id, &a.ifname),
                None => owner.is_legacy_of(&a.container_id),
            });
            if !keep {
                tracing::info!(%ip, %owner, "GC releases");
                store.release(ip)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use cni::chain::VALID_ATTACHMENTS;
    use cni::skeleton::{run, Outcome};
    use serde_json::{json, Value};

    use super::*;

    /// Runs one verb in-process through the skeleton, as the binary would.
    fn call(verb: &str, id: &str, ifname: &str, netconf: &Value, cni_args: &str) -> (u8, Value) {
        let map: HashMap<String, String> = [
            ("CNI_COMMAND", verb),
            ("CNI_CONTAINERID", id),
            ("CNI_NETNS", "/nonexistent/netns"),
            ("CNI_IFNAME", ifname),
            ("CNI_PATH", "/opt/cni/bin"),
            ("CNI_ARGS", cni_args),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let env = move |k: &str| map.get(k).cloned();
        let Outcome { stdout, exit_code } =
            run(&HostLocal, &env, serde_json::to_vec(netconf).unwrap());
        let value = if stdout.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout).unwrap()
        };
        (exit_code, value)
    }

    fn netconf(dir: &Path, ipam: Value) -> Value {
        let mut ipam = ipam;
        ipam["type"] = json!("host-local");
        ipam["dataDir"] = json!(dir);
        json!({"cniVersion":"1.1.0","name":"net1","type":"bridge","ipam":ipam})
    }

    /// The network's files, spares aside (the store's tests show those).
    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("net1"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .filter(|n| !cni::spare_file::is_spare(n))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn add_returns_one_address_per_set_with_routes_and_dns() {
        let tmp = tempfile::tempdir().unwrap();
        let resolv = tmp.path().join("resolv.conf");
        std::fs::write(&resolv, "nameserver 10.0.0.10\nsearch a.example\n").unwrap();
        let conf = netconf(
            tmp.path(),
            json!({"ranges":[[{"subnet":"10.1.2.0/24"}],[{"subnet":"fd00::/64"}]],
                   "routes":[{"dst":"0.0.0.0/0"}],"resolvConf":resolv}),
        );
        let (code, result) = call("ADD", "c1", "eth0", &conf, "");
        assert_eq!(code, 0, "{result}");
        assert_eq!(
            result,
            json!({"cniVersion":"1.1.0",
                   "ips":[{"address":"10.1.2.2/24","gateway":"10.1.2.1"},
                          {"address":"fd00::2/64","gateway":"fd00::1"}],
                   "routes":[{"dst":"0.0.0.0/0"}],
                   "dns":{"nameservers":["10.0.0.10"],"search":["a.example"]}})
        );
        let (code, _) = call("CHECK", "c1", "eth0", &conf, "");
        assert_eq!(code, 0);
        let mut with_prev = conf.clone();
        with_prev["prevResult"] = result;
        assert_eq!(call("CHECK", "c1", "eth0", &with_prev, "").0, 0);
        assert_eq!(call("DEL", "c1", "eth0", &conf, "").0, 0);
        assert_eq!(
            files(tmp.path()),
            ["last_reserved_ip.0", "last_reserved_ip.1", "lock"]
        );
        let (_, e) = call("CHECK", "c1", "eth0", &conf, "");
        assert_eq!(e["code"], 102);
        assert_eq!(call("DEL", "c1", "eth0", &conf, "").0, 0, "DEL twice");
    }

    #[test]
    fn check_with_prev_result_needs_every_address_reserved() {
        let tmp = tempfile::tempdir().unwrap();
        let conf = netconf(tmp.path(), json!({"subnet":"10.1.2.0/24"}));
        let (_, result) = call("ADD", "c1", "eth0", &conf, "");
        let mut prev = result.clone();
        prev["ips"]
            .as_array_mut()
            .unwrap()
            .push(json!({"address":"10.1.2.77/24","gateway":"10.1.2.1"}));
        // Addresses outside our ranges belong to someone else: not ours to check.
        prev["ips"]
            .as_array_mut()
            .unwrap()
            .push(json!({"address":"192.168.0.5/24"}));
        let mut with_prev = conf.clone();
        with_prev["prevResult"] = prev;
        let (code, e) = call("CHECK", "c1", "eth0", &with_prev, "");
        assert_eq!(code, 1);
        assert_eq!(e["code"], 102);
        assert!(e["msg"].as_str().unwrap().contains("10.1.2.77"), "{e}");
    }

    #[test]
    fn failed_request_releases_everything_reserved_in_the_call() {
        let tmp = tempfile::tempdir().unwrap();
        let conf = netconf(
            tmp.path(),
            json!({"ranges":[[{"subnet":"10.1.2.0/24"}],[{"subnet":"10.1.3.0/24"}]]}),
        );
        let (code, e) = call("ADD", "c1", "eth0", &conf, "IP=10.1.2.9,10.9.9.9");
        assert_eq!(code, 1);
        assert_eq!(e["code"], 7);
        assert_eq!(e["msg"], "failed to allocate all requested IPs: 10.9.9.9");
        assert!(!files(tmp.path()).iter().any(|f| f.starts_with("10.")));
        // A taken request in the second set releases the first set's address.
        assert_eq!(call("ADD", "other", "eth0", &conf, "IP=10.1.3.5").0, 0);
        let (_, e) = call("ADD", "c1", "eth0", &conf, "IP=10.1.3.5");
        assert_eq!(e["code"], 11);
        assert!(
            e["msg"]
                .as_str()
                .unwrap()
                .starts_with("failed to allocate for range 1: requested IP address 10.1.3.5"),
            "{e}"
        );
        // Only "other"'s two addresses remain: c1's 10.1.2.11 was released.
        let left: Vec<String> = files(tmp.path())
            .into_iter()
            .filter(|f| f.starts_with("10."))
            .collect();
        assert_eq!(left, ["10.1.2.10", "10.1.3.5"]);
    }

    #[test]
    fn invalid_config_writes_nothing_and_fails_every_verb_but_del() {
        let tmp = tempfile::tempdir().unwrap();
        let conf = netconf(tmp.path(), json!({"subnet":"10.1.2.0/31"}));
        for verb in ["ADD", "CHECK", "STATUS", "GC"] {
            let (code, e) = call(verb, "c1", "eth0", &conf, "");
            assert_eq!((code, &e["code"]), (1, &json!(7)), "{verb}: {e}");
        }
        // DEL reads only where reservations live: an ADD this config refused made none, and
        // a DEL that failed on it would be retried forever.
        for args in ["", "IP=garbage"] {
            assert_eq!(call("DEL", "c1", "eth0", &conf, args).0, 0, "{args}");
        }
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn status() {
        let tmp = tempfile::tempdir().unwrap();
        let conf = netconf(&tmp.path().join("new/dir"), json!({"subnet":"10.1.2.0/24"}));
        assert_eq!(call("STATUS", "", "", &conf, "").0, 0);
        assert!(tmp.path().join("new/dir").is_dir());
        // A file where the data dir should be: not available.
        std::fs::write(tmp.path().join("file"), "").unwrap();
        let conf = netconf(
            &tmp.path().join("file/sub"),
            json!({"subnet":"10.1.2.0/24"}),
        );
        let (code, e) = call("STATUS", "", "", &conf, "");
        assert_eq!((code, &e["code"]), (1, &json!(50)), "{e}");
    }

    #[test]
    fn gc_keeps_valid_attachments_only() {
        let tmp = tempfile::tempdir().unwrap();
        let conf = netconf(tmp.path(), json!({"subnet":"10.1.2.0/24"}));
        for (id, ifname) in [("keep", "eth0"), ("keep", "net1"), ("gone", "eth0")] {
            assert_eq!(call("ADD", id, ifname, &conf, "").0, 0);
        }
        let dir = tmp.path().join("net1");
        std::fs::write(dir.join("10.1.2.50"), "legacykeep").unwrap();
        std::fs::write(dir.join("10.1.2.51"), "legacygone").unwrap();
        let mut gc = conf.clone();
        let (code, e) = call("GC", "", "", &gc, "");
        assert_eq!(
            (code, &e["code"]),
            (1, &json!(7)),
            "GC without the list is refused"
        );
        gc[VALID_ATTACHMENTS] = json!([
            {"containerID":"keep","ifname":"eth0"},
            {"containerID":"legacykeep","ifname":"eth0"}
        ]);
        assert_eq!(call("GC", "", "", &gc, "").0, 0);
        assert_eq!(
            files(tmp.path()),
            ["10.1.2.2", "10.1.2.50", "last_reserved_ip.0", "lock"]
        );
    }

    #[test]
    fn result_in_old_versions() {
        let tmp = tempfile::tempdir().unwrap();
        let mut conf = netconf(tmp.path(), json!({"subnet":"10.1.2.0/24"}));
        conf["cniVersion"] = json!("0.2.0");
        let (code, result) = call("ADD", "c1", "eth0", &conf, "");
        assert_eq!(code, 0);
        assert_eq!(result["ip4"]["ip"], "10.1.2.2/24");
        conf["cniVersion"] = json!("0.3.1");
        let (_, result) = call("ADD", "c1", "eth1", &conf, "");
        assert_eq!(result["ips"][0]["version"], "4");
    }
}
