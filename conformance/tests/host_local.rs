//! CONFORMANCE.md statements 12-19: the host-local IPAM plugin, run as a plugin of its own
//! (`"type":"host-local"` with an `ipam` object, as a main plugin would pass it on) against
//! ours and the reference (Debian's containernetworking-plugins 1.1.1) in the same run.
//! Each test has its own data dir. host-local never enters `CNI_NETNS`, so any path does.
//!
//! Where the two differ the test says how and pins both behaviours:
//! - error codes: the reference answers every failure with code 999; ours uses 7 for invalid
//!   configs (naming the field), 11 for an exhausted range or a taken requested address,
//!   4 for a second ADD of the same attachment, 102 for a failed CHECK;
//! - file modes: ours creates reservation, cursor and lock files 0600, the reference 0644
//!   (lock 0750); ownership and contents are identical, so either can take over the dir;
//! - GC exists in ours only (the reference predates spec 1.1.0);
//! - `CNI_ARGS IP=` takes a comma-separated list in ours, a single address in the reference.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conformance::{Call, Output, PluginSet};
use nix::fcntl::{Flock, FlockArg};
use serde_json::{json, Value};

const NETNS: &str = "/nonexistent/netns";
const NET: &str = "hl-net";

/// A netconf for host-local with `ipam` (type and dataDir filled in) and extra top-level keys.
fn netconf(data_dir: &Path, ipam: Value, extra: Value) -> String {
    let mut ipam = ipam;
    ipam["type"] = json!("host-local");
    ipam["dataDir"] = json!(data_dir);
    let mut conf = json!({"cniVersion":"1.0.0","name":NET,"type":"host-local","ipam":ipam});
    for (k, v) in extra.as_object().into_iter().flatten() {
        conf[k] = v.clone();
    }
    conf.to_string()
}

fn v4(data_dir: &Path) -> String {
    netconf(
        data_dir,
        json!({"ranges":[[{"subnet":"10.1.2.0/24"}]]}),
        json!({}),
    )
}

fn call(set: PluginSet, verb: &str, id: &str, ifname: &str, conf: &str) -> Call {
    Call::new(set, "host-local", verb)
        .container(id, Path::new(NETNS), ifname)
        .stdin(conf)
}

fn add(set: PluginSet, id: &str, ifname: &str, conf: &str) -> Output {
    call(set, "ADD", id, ifname, conf).run()
}

/// The addresses of a successful ADD.
fn addresses(out: &Output) -> Vec<String> {
    out.success()["ips"]
        .as_array()
        .expect("ips")
        .iter()
        .map(|ip| ip["address"].as_str().unwrap().to_string())
        .collect()
}

fn add_ok(set: PluginSet, id: &str, ifname: &str, conf: &str) -> String {
    let ips = addresses(&add(set, id, ifname, conf));
    assert_eq!(ips.len(), 1, "{set:?}: {ips:?}");
    ips[0].clone()
}

fn net_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(NET)
}

/// The network directory's files but ours alone keeps, the spares (compared across
/// implementations).
fn listing(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(net_dir(data_dir))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| !cni::spare_file::is_spare(n))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn error_text(e: &Value) -> String {
    format!("{} {}", e["msg"], e["details"])
}

/// Ours answers `ours`; the reference answers 999 for every failure.
fn expect_code(set: PluginSet, out: &Output, ours: u64) -> Value {
    match set {
        PluginSet::Ours => out.fails_with(ours),
        PluginSet::Reference => out.fails_with(999),
    }
}

#[test]
fn statement_12_first_address_and_dual_stack() {
    for set in PluginSet::under_test() {
        let dir = tempfile::tempdir().unwrap();
        let result = add(set, "c1", "eth0", &v4(dir.path())).success();
        assert_eq!(
            result["ips"],
            json!([{"address":"10.1.2.2/24","gateway":"10.1.2.1"}]),
            "{set:?}"
        );
        assert_eq!(result["cniVersion"], "1.0.0");

        let dir = tempfile::tempdir().unwrap();
        let conf = netconf(
            dir.path(),
            json!({"ranges":[[{"subnet":"fd00:1::/64"}],[{"subnet":"10.1.2.0/24"}]]}),
            json!({}),
        );
        let result = add(set, "c1", "eth0", &conf).success();
        assert_eq!(
            result["ips"],
            json!([{"address":"fd00:1::2/64","gateway":"fd00:1::1"},
                   {"address":"10.1.2.2/24","gateway":"10.1.2.1"}]),
            "{set:?}: one address per set, in set order"
        );
    }
}

#[test]
fn statement_13_data_dir_layout() {
    use std::os::unix::fs::PermissionsExt;
    for set in PluginSet::under_test() {
        let dir = tempfile::tempdir().unwrap();
        let conf = netconf(
            dir.path(),
            json!({"ranges":[[{"subnet":"10.1.2.0/24"}],[{"subnet":"fd00:1::/64"}]]}),
            json!({}),
        );
        add(set, "c1", "eth0", &conf).success();
        assert_eq!(
            listing(dir.path()),
            [
                "10.1.2.2",
                "fd00:1::2",
                "last_reserved_ip.0",
                "last_reserved_ip.1",
                "lock"
            ],
            "{set:?}"
        );
        let net = net_dir(dir.path());
        let read = |name: &str| std::fs::read(net.join(name)).unwrap();
        assert_eq!(read("10.1.2.2"), b"c1\r\neth0", "{set:?}");
        assert_eq!(read("fd00:1::2"), b"c1\r\neth0", "{set:?}");
        assert_eq!(read("last_reserved_ip.0"), b"10.1.2.2", "{set:?}");
        assert_eq!(read("last_reserved_ip.1"), b"fd00:1::2", "{set:?}");
        // The reference's lock is empty; ours keeps the owners index in it (JSON, which the
        // reference, reading every file when it looks for an owner, never takes for one).
        match set {
            PluginSet::Reference => assert!(read("lock").is_empty()),
            PluginSet::Ours => {
                let index: Value = serde_json::from_slice(&read("lock")).unwrap();
                assert_eq!(index["entries"]["10.1.2.2"]["id"], "c1", "{index}");
                assert_eq!(index["entries"]["fd00:1::2"]["ifname"], "eth0", "{index}");
            }
        }
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&net), 0o755, "{set:?}");
        // Ours keeps reservations private; the reference leaves them world-readable.
        let (file_mode, lock_mode) = match set {
            PluginSet::Ours => (0o600, 0o600),
            PluginSet::Reference => (0o644, 0o750),
        };
        assert_eq!(mode(&net.join("10.1.2.2")), file_mode, "{set:?}");
        assert_eq!(mode(&net.join("last_reserved_ip.0")), file_mode, "{set:?}");
        assert_eq!(mode(&net.join("lock")), lock_mode, "{set:?}");
    }
}

#[test]
fn statement_13_lock_is_honoured() {
    for set in PluginSet::under_test() {
        let dir = tempfile::tempdir().unwrap();
        let conf = v4(dir.path());
        add(set, "c0", "eth0", &conf).success();
        // Hold the lock as the other implementation would: ADD must wait for it.
        let lock = Flock::lock(
            File::open(net_dir(dir.path()).join("lock")).unwrap(),
            FlockArg::LockExclusive,
        )
        .map_err(|(_, e)| e)
        .unwrap();
        let started = Instant::now();
        let worker = std::thread::spawn(move || add_ok(set, "c1", "eth0", &conf));
        std::thread::sleep(Duration::from_millis(700));
        assert!(
            !worker.is_finished(),
            "{set:?} allocated while the lock was held"
        );
        assert!(!listing(dir.path()).contains(&"10.1.2.3".to_string()));
        drop(lock);
        assert_eq!(worker.join().unwrap(), "10.1.2.3/24");
        assert!(started.elapsed() >= Duration::from_millis(700));
    }
}

#[test]
fn statement_14_round_robin_and_reserved_addresses() {
    for set in PluginSet::under_test() {
        let dir = tempfile::tempdir().unwrap();
        let conf = v4(dir.path());
        assert_eq!(add_ok(set, "a", "eth0", &conf), "10.1.2.2/24");
        assert_eq!(add_ok(set, "b", "eth0", &conf), "10.1.2.3/24");
        call(set, "DEL", "a", "eth0", &conf).run().quiet_success();
        assert_eq!(
            add_ok(set, "c", "eth0", &conf),
            "10.1.2.4/24",
            "{set:?}: a's address is not reused before the range wraps"
        );
        // The cursor is the file: whoever wrote it, allocation continues after it.
        std::fs::write(net_dir(dir.path()).join("last_reserved_ip.0"), "10.1.2.200").unwrap();
        assert_eq!(add_ok(set, "d", "eth0", &conf), "10.1.2.201/24", "{set:?}");
    }
    for set in PluginSet::under_test() {
        // A /29 holds .0 (network), .1 (gateway), .7 (broadcast) and five usable addresses.
        let dir = tempfile::tempdir().unwrap();
        let conf = netconf(dir.path(), json!({"subnet":"10.1.2.0/29"}), json!({}));
        let got: BTreeSet<String> = (0..5)
            .map(|i| add_ok(set, &format!("c{i}"), "eth0", &conf))
            .collect();
        let want: BTreeSet<String> = (2..=6).map(|i| format!("10.1.2.{i}/29")).collect();
        assert_eq!(got, want, "{set:?}");
        let e = expect_code(set, &add(set, "c5", "eth0", &conf), 11);
        assert!(
            error_text(&e).contains("no IP addresses available in range set"),
            "{set:?}: {e}"
        );
        // The failed ADD reserved nothing.
        assert_eq!(listing(dir.path()).len(), 5 + 2, "{set:?}");
    }
}

#[test]
fn statement_15_range_bounds_routes_and_dns() {
    for set in PluginSet::under_test() {
        let dir = tempfile::tempdir().unwrap();
        let resolv = dir.path().join("resolv.conf");
        std::fs::write(
            &resolv,
            "# comment\nnameserver 10.0.0.10\nnameserver fd00::53\ndomain example.com\n\
             search a.example b.example\noptions ndots:5 edns0\n",
        )
        .unwrap();
        let conf = netconf(
            dir.path(),
            json!({
                "ranges":[[{"subnet":"10.1.2.0/24","rangeStart":"10.1.2.100","rangeEnd":"10.1.2.101",
                            "gateway":"10.1.2.254"}]],
                "routes":[{"dst":"0.0.0.0/0"},{"dst":"192.168.0.0/16","gw":"10.1.2.254"}],
                "resolvConf":resolv,
            }),
            json!({}),
        );
        let result = add(set, "a", "eth0", &conf).success();
        assert_eq!(
            result["ips"],
            json!([{"address":"10.1.2.100/24","gateway":"10.1.2.254"}]),
            "{set:?}"
        );
        assert_eq!(
            result["routes"],
            json!([{"dst":"0.0.0.0/0"},{"dst":"192.168.0.0/16","gw":"10.1.2.254"}]),
            "{set:?}"
        );
        assert_eq!(
            result["dns"],
            json!({"nameservers":["10.0.0.10","fd00::53"],"domain":"example.com",
                   "search":["a.example","b.example"],"options":["ndots:5","edns0"]}),
            "{set:?}"
        );
        assert_eq!(add_ok(set, "b", "eth0", &conf), "10.1.2.101/24");
        expect_code(set, &add(set, "c", "eth0", &conf), 11);
    }
}

#[test]
fn statement_15_requested_addresses() {
    for set in PluginSet::under_test() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = json!({"ranges":[[{"subnet":"10.1.2.0/24"}]]});
        let with = |extra: Value| netconf(dir.path(), ipam.clone(), extra);
        let conf = with(json!({"args":{"cni":{"ips":["10.1.2.9"]}}}));
        assert_eq!(add_ok(set, "a", "eth0", &conf), "10.1.2.9/24", "{set:?}");
        let out = call(set, "ADD", "b", "eth0", &v4(dir.path()))
            .var("CNI_ARGS", "IP=10.1.2.10")
            .run();
        assert_eq!(addresses(&out), ["10.1.2.10/24"], "{set:?}");
        let conf = with(json!({"runtimeConfig":{"ips":["10.1.2.11/24"]}}));
        assert_eq!(add_ok(set, "c", "eth0", &conf), "10.1.2.11/24", "{set:?}");
        // Round-robin continues after the last requested address.
        assert_eq!(add_ok(set, "d", "eth0", &v4(dir.path())), "10.1.2.12/24");

        // Taken, gateway, and outside every range: all refused, nothing reserved.
        let before = listing(dir.path());
        let conf = with(json!({"runtimeConfig":{"ips":["10.1.2.9"]}}));
        let e = expect_code(set, &add(set, "e", "eth0", &conf), 11);
        assert!(
            error_text(&e).contains("10.1.2.9 is not available"),
            "{set:?}: {e}"
        );
        let conf = with(json!({"runtimeConfig":{"ips":["10.1.2.1"]}}));
        let e = expect_code(set, &add(set, "e", "eth0", &conf), 7);
        assert!(
            error_text(&e).contains("is subnet's gateway"),
            "{set:?}: {e}"
        );
        let conf = with(json!({"args":{"cni":{"ips":["10.9.9.9"]}}}));
        let e = expect_code(set, &add(set, "e", "eth0", &conf), 7);
        assert!(
            error_text(&e).contains("failed to allocate all requested IPs: 10.9.9.9"),
            "{set:?}: {e}"
        );
        assert_eq!(listing(dir.path()), before, "{set:?}");

        // A comma-separated CNI_ARGS list: ours takes one address per set; the reference
        // reads IP= as a single address and refuses the list.
        let dir = tempfile::tempdir().unwrap();
        let conf = netconf(
            dir.path(),
            json!({"ranges":[[{"subnet":"10.1.2.0/24"}],[{"subnet":"fd00:1::/64"}]]}),
            json!({}),
        );
        let out = call(set, "ADD", "f", "eth0", &conf)
            .var("CNI_ARGS", "IP=10.1.2.50,fd00:1::50")
            .run();
        match set {
            PluginSet::Ours => {
                assert_eq!(addresses(&out), ["10.1.2.50/24", "fd00:1::50/64"])
            }
            PluginSet::Reference => {
                out.fails_with(999);
            }
        }
    }
}

#[test]
fn statement_15_runtime_ip_ranges() {
    for set in PluginSet::under_test() {
        // ipRanges come first, before the configured ranges (the reference prepends them).
        let dir = tempfile::tempdir().unwrap();
        let conf = netconf(
            dir.path(),
            json!({"ranges":[[{"subnet":"10.1.2.0/24"}]]}),
            json!({"runtimeConfig":{"ipRanges":[[{"subnet":"10.9.0.0/24","rangeStart":"10.9.0.50"}]]}}),
        );
        assert_eq!(
            addresses(&add(set, "a", "eth0", &conf)),
            ["10.9.0.50/24", "10.1.2.2/24"],
            "{set:?}"
        );
        // With no configured range, ipRanges alone.
        let dir = tempfile::tempdir().unwrap();
        let conf = netconf(
            dir.path(),
            json!({}),
            json!({"runtimeConfig":{"ipRanges":[[{"subnet":"fd00:9::/64"}]]}}),
        );
        assert_eq!(
            addresses(&add(set, "a", "eth0", &conf)),
            ["fd00:9::2/64"],
            "{set:?}"
        );
    }
}

#[test]
fn statement_16_invalid_configs() {
    let cases: &[(&str, Value, &str)] = &[
        (
            "/31",
            json!({"ranges":[[{"subnet":"10.1.2.0/31"}]]}),
            "ipam.ranges[0][0].subnet",
        ),
        (
            "/32",
            json!({"ranges":[[{"subnet":"10.1.2.0/32"}]]}),
            "ipam.ranges[0][0].subnet",
        ),
        ("/127", json!({"subnet":"fd00::/127"}), "ipam.subnet"),
        (
            "host bits set",
            json!({"subnet":"10.1.2.1/24"}),
            "ipam.subnet",
        ),
        (
            "range start outside subnet",
            json!({"ranges":[[{"subnet":"10.1.2.0/24","rangeStart":"10.1.3.1"}]]}),
            "ipam.ranges[0][0].rangeStart",
        ),
        (
            "overlapping range sets",
            json!({"ranges":[[{"subnet":"10.1.0.0/16"}],[{"subnet":"10.1.2.0/24"}]]}),
            "ipam.ranges[1]",
        ),
        (
            "overlapping ranges in a set",
            json!({"ranges":[[{"subnet":"10.1.2.0/24"},{"subnet":"10.1.2.0/25"}]]}),
            "ipam.ranges[0][1]",
        ),
        (
            "mixed families in a set",
            json!({"ranges":[[{"subnet":"10.1.2.0/24"},{"subnet":"fd00::/64"}]]}),
            "ipam.ranges[0][1].subnet",
        ),
        ("no range", json!({}), "ipam.ranges"),
    ];
    for set in PluginSet::under_test() {
        for (what, ipam, field) in cases {
            let dir = tempfile::tempdir().unwrap();
            let conf = netconf(dir.path(), ipam.clone(), json!({}));
            // Ours: code 7 naming the field; the reference: 999 with a bare message.
            let e = expect_code(set, &add(set, "c1", "eth0", &conf), 7);
            if set == PluginSet::Ours {
                assert!(
                    e["msg"].as_str().unwrap().contains(field),
                    "{what}: {field} not named in {e}"
                );
            }
            // DEL: the reference loads the whole config and fails; ours reads only where
            // reservations live, and an ADD this config refused made none (a DEL that failed
            // here would keep the runtime retrying forever).
            let del = call(set, "DEL", "c1", "eth0", &conf).run();
            match set {
                PluginSet::Ours => del.quiet_success(),
                PluginSet::Reference => {
                    expect_code(set, &del, 7);
                }
            }
            assert_eq!(
                std::fs::read_dir(dir.path()).unwrap().count(),
                0,
                "{set:?} {what}: wrote to the data dir"
            );
        }
    }
}

#[test]
fn statement_17_second_add_fails_and_del_releases_only_its_pair() {
    for set in PluginSet::under_test() {
        let dir = tempfile::tempdir().unwrap();
        let conf = v4(dir.path());
        assert_eq!(add_ok(set, "c1", "eth0", &conf), "10.1.2.2/24");
        let e = expect_code(set, &add(set, "c1", "eth0", &conf), 4);
        assert!(
            error_text(&e).contains("duplicate allocation is not allowed"),
            "{set:?}: {e}"
        );
        assert_eq!(add_ok(set, "c1", "net1", &conf), "10.1.2.3/24");
        assert_eq!(add_ok(set, "c2", "eth0", &conf), "10.1.2.4/24");
        call(set, "DEL", "c1", "eth0", &conf).run().quiet_success();
        assert_eq!(
            listing(dir.path()),
            ["10.1.2.3", "10.1.2.4", "last_reserved_ip.0", "lock"],
            "{set:?}"
        );
        call(set, "CHECK", "c1", "net1", &conf)
            .run()
            .quiet_success();
        expect_code(set, &call(set, "CHECK", "c1", "eth0", &conf).run(), 102);
        // DEL of what is already gone succeeds.
        call(set, "DEL", "c1", "eth0", &conf).run().quiet_success();
    }
}

#[test]
fn statement_18_concurrent_adds_and_dels() {
    const N: usize = 50;
    for set in PluginSet::under_test() {
        let dir = tempfile::tempdir().unwrap();
        let conf = v4(dir.path());
        let run_all = |verb: &'static str| -> Vec<Output> {
            std::thread::scope(|s| {
                let workers: Vec<_> = (0..N)
                    .map(|i| {
                        let conf = &conf;
                        s.spawn(move || call(set, verb, &format!("c{i}"), "eth0", conf).run())
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap()).collect()
            })
        };
        let got: BTreeSet<String> = run_all("ADD")
            .iter()
            .map(|out| addresses(out).remove(0))
            .collect();
        assert_eq!(got.len(), N, "{set:?}: addresses handed out twice");
        assert_eq!(listing(dir.path()).len(), N + 2, "{set:?}");
        for out in run_all("DEL") {
            out.quiet_success();
        }
        assert_eq!(
            listing(dir.path()),
            ["last_reserved_ip.0", "lock"],
            "{set:?}"
        );
    }
}

#[test]
fn statement_19_gc_keeps_valid_attachments() {
    for set in PluginSet::under_test() {
        let dir = tempfile::tempdir().unwrap();
        let conf = v4(dir.path());
        assert_eq!(add_ok(set, "keep", "eth0", &conf), "10.1.2.2/24");
        assert_eq!(add_ok(set, "keep", "net1", &conf), "10.1.2.3/24");
        assert_eq!(add_ok(set, "gone", "eth0", &conf), "10.1.2.4/24");
        let gc = netconf(
            dir.path(),
            json!({"ranges":[[{"subnet":"10.1.2.0/24"}]]}),
            json!({"cniVersion":"1.1.0",
                   "cni.dev/valid-attachments":[{"containerID":"keep","ifname":"eth0"}]}),
        );
        let out = Call::new(set, "host-local", "GC").stdin(gc).run();
        match set {
            PluginSet::Ours => {
                out.quiet_success();
                assert_eq!(
                    listing(dir.path()),
                    ["10.1.2.2", "last_reserved_ip.0", "lock"]
                );
            }
            // 1.1.1 predates spec 1.1.0: no GC, and the 1.1.0 netconf is refused.
            PluginSet::Reference => {
                out.failure();
                assert_eq!(listing(dir.path()).len(), 3 + 2);
            }
        }
    }
}

#[test]
fn mixed_implementations_share_one_data_dir() {
    let available = PluginSet::under_test();
    if available.len() < 2 {
        return;
    }
    let (ours, reference) = (PluginSet::Ours, PluginSet::Reference);
    let dir = tempfile::tempdir().unwrap();
    let conf = v4(dir.path());
    assert_eq!(add_ok(reference, "a", "eth0", &conf), "10.1.2.2/24");
    // Ours honours the reference's reservation and its cursor...
    assert_eq!(add_ok(ours, "b", "eth0", &conf), "10.1.2.3/24");
    // ...and the reference honours ours.
    assert_eq!(add_ok(reference, "c", "eth0", &conf), "10.1.2.4/24");
    expect_code(reference, &add(reference, "b", "eth0", &conf), 4);
    expect_code(ours, &add(ours, "a", "eth0", &conf), 4);
    // Each releases the other's reservations.
    call(ours, "DEL", "a", "eth0", &conf).run().quiet_success();
    call(reference, "DEL", "b", "eth0", &conf)
        .run()
        .quiet_success();
    assert_eq!(
        listing(dir.path()),
        ["10.1.2.4", "last_reserved_ip.0", "lock"]
    );
    call(ours, "CHECK", "c", "eth0", &conf)
        .run()
        .quiet_success();
    // Old-format (container ID only) reservations are honoured and released by ours.
    std::fs::write(net_dir(dir.path()).join("10.1.2.5"), "old").unwrap();
    assert_eq!(add_ok(ours, "d", "eth0", &conf), "10.1.2.6/24");
    call(ours, "CHECK", "old", "eth0", &conf)
        .run()
        .quiet_success();
    call(ours, "DEL", "old", "eth0", &conf)
        .run()
        .quiet_success();
    assert_eq!(
        listing(dir.path()),
        ["10.1.2.4", "10.1.2.6", "last_reserved_ip.0", "lock"]
    );
}
