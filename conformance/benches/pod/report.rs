//! Everything one run measured: the table on stdout, the JSON, and the acceptance checks of
//! issue 6, with every ratio taken between figures of this same run.

use serde_json::{json, Map, Value};

use super::concurrent::Burst;
use super::stats::{ratio, round, Timings};

/// One peak-RSS reading.
#[derive(Debug, Clone)]
pub(crate) struct RssReading {
    /// Which call.
    pub(crate) what: String,
    /// True for our `meta-cni`, false for a reference plugin.
    pub(crate) ours: bool,
    /// ru_maxrss, KiB.
    pub(crate) kib: u64,
}

/// The figures of one run.
#[derive(Debug)]
pub(crate) struct Results {
    /// Pods per latency scenario.
    pub(crate) pods: usize,
    /// Pods per size of the interface sweep.
    pub(crate) scale_pods: usize,
    /// The kernel floor, three interfaces.
    pub(crate) floor: Timings,
    /// Our meta plugin, nadDir, three interfaces.
    pub(crate) ours: Timings,
    /// The reference plugins, or why they did not run.
    pub(crate) reference: Result<Timings, String>,
    /// The meta plugin through the API stand-in and its requests per call, or why not.
    pub(crate) kube: Result<(Timings, Value), String>,
    /// The same through `meta-cni-daemon` (thick mode), or why not.
    pub(crate) daemon: Result<(Timings, Value), String>,
    /// What each scenario's DELs left behind.
    pub(crate) leftovers: Map<String, Value>,
    /// Pods at once.
    pub(crate) burst: Burst,
    /// (interfaces, timings) of the sweep.
    pub(crate) scaling: Vec<(usize, Timings)>,
    /// Peak RSS readings.
    pub(crate) rss: Vec<RssReading>,
}

/// One acceptance criterion: `value <= limit` passes.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    what: &'static str,
    value: Option<f64>,
    limit: f64,
    unit: &'static str,
}

impl Check {
    fn pass(&self) -> Option<bool> {
        self.value.map(|v| v <= self.limit)
    }

    fn to_json(&self) -> Value {
        json!({"what": self.what, "value": self.value, "limit": self.limit,
            "unit": self.unit, "pass": self.pass()})
    }
}

impl Results {
    /// The sweep's timings for `n` interfaces.
    fn scaled(&self, n: usize) -> Option<&Timings> {
        self.scaling.iter().find(|(i, _)| *i == n).map(|(_, t)| t)
    }

    /// The largest RSS of one of our calls, KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        self.rss.iter().filter(|r| r.ours).map(|r| r.kib).max()
    }

    /// Ratios between scenarios of this run, p50 and p99, ADD and DEL.
    fn ratios(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        let mut pair = |name: &str, a: &Timings, b: &Timings| {
            for (op, x, y) in [("add", &a.add, &b.add), ("del", &a.del, &b.del)] {
                out.push((format!("{name}_{op}_p50"), ratio(x.p50(), y.p50())));
                out.push((format!("{name}_{op}_p99"), ratio(x.p99(), y.p99())));
            }
        };
        pair("ours_over_floor", &self.ours, &self.floor);
        if let Ok(reference) = &self.reference {
            pair("ours_over_reference", &self.ours, reference);
            pair("reference_over_floor", reference, &self.floor);
        }
        if let Ok((kube, _)) = &self.kube {
            pair("kube_over_ours", kube, &self.ours);
        }
        if let Ok((daemon, _)) = &self.daemon {
            pair("daemon_kube_over_ours", daemon, &self.ours);
        }
        if let (Some(t16), Some(t3)) = (self.scaled(16), self.scaled(3)) {
            pair("interfaces_16_over_3", t16, t3);
        }
        out
    }

    /// Issue 6's acceptance criteria, measured.
    pub(crate) fn checks(&self) -> Vec<Check> {
        let reference = self.reference.as_ref().ok();
        let (t16, t3) = (self.scaled(16), self.scaled(3));
        vec![
            Check {
                what: "3-interface ADD p50, ours / kernel floor",
                value: Some(ratio(self.ours.add.p50(), self.floor.add.p50())),
                limit: 1.5,
                unit: "x",
            },
            Check {
                what: "3-interface ADD p50, ours / reference",
                value: reference.map(|r| ratio(self.ours.add.p50(), r.add.p50())),
                limit: 0.33,
                unit: "x",
            },
            Check {
                what: "3-interface DEL p50, ours / reference",
                value: reference.map(|r| ratio(self.ours.del.p50(), r.del.p50())),
                limit: 0.5,
                unit: "x",
            },
            Check {
                what: "3-interface ADD p50, daemon (Kubernetes) / nadDir",
                value: self
                    .daemon
                    .as_ref()
                    .ok()
                    .map(|(d, _)| ratio(d.add.p50(), self.ours.add.p50())),
                limit: 1.3,
                unit: "x",
            },
            Check {
                what: "pods at once: errors (ADD + DEL)",
                value: Some(self.burst.errors() as f64),
                limit: 0.0,
                unit: "",
            },
            Check {
                what: "pods at once: duplicate addresses",
                value: Some(self.burst.duplicates() as f64),
                limit: 0.0,
                unit: "",
            },
            Check {
                what: "ADD p50, 16 interfaces / 3 interfaces",
                value: t16.zip(t3).map(|(a, b)| ratio(a.add.p50(), b.add.p50())),
                limit: 6.0,
                unit: "x",
            },
            Check {
                what: "DEL p50, 16 interfaces / 3 interfaces",
                value: t16.zip(t3).map(|(a, b)| ratio(a.del.p50(), b.del.p50())),
                limit: 6.0,
                unit: "x",
            },
            Check {
                what: "peak RSS of one meta-cni call",
                value: self.peak_rss_kib().map(|k| round(k as f64 / 1024.0)),
                limit: 10.0,
                unit: "MiB",
            },
        ]
    }

    /// The whole run as JSON (`pod.json`).
    pub(crate) fn to_json(&self) -> Value {
        let mut scenarios = Map::new();
        scenarios.insert("floor".into(), self.floor.to_json());
        scenarios.insert("ours".into(), self.ours.to_json());
        scenarios.insert(
            "reference".into(),
            match &self.reference {
                Ok(t) => t.to_json(),
                Err(why) => json!({ "skipped": why }),
            },
        );
        scenarios.insert(
            "kube".into(),
            match &self.kube {
                Ok((t, requests)) => {
                    let mut v = t.to_json();
                    v["api_requests"] = requests.clone();
                    v
                }
                Err(why) => json!({ "skipped": why }),
            },
        );
        scenarios.insert(
            "daemon".into(),
            match &self.daemon {
                Ok((t, requests)) => {
                    let mut v = t.to_json();
                    v["api_requests"] = requests.clone();
                    v
                }
                Err(why) => json!({ "skipped": why }),
            },
        );
        let scaling: Vec<Value> = self
            .scaling
            .iter()
            .map(|(n, t)| {
                json!({
                    "interfaces": n,
                    "add": t.add.to_json(),
                    "del": t.del.to_json(),
                    "add_p50_per_interface_ms": round(t.add.p50() / *n as f64),
                    "del_p50_per_interface_ms": round(t.del.p50() / *n as f64),
                })
            })
            .collect();
        let rss: Vec<Value> = self
            .rss
            .iter()
            .map(|r| json!({"call": r.what, "ours": r.ours, "max_rss_kib": r.kib}))
            .collect();
        json!({
            "benchmark": "meta-cni pod network setup",
            "machine": machine(),
            "pods": self.pods,
            "scale_pods": self.scale_pods,
            "interfaces": 3,
            "scenarios": scenarios,
            "ratios": self.ratios().into_iter().map(|(k, v)| (k, json!(v))).collect::<Map<String, Value>>(),
            "concurrent": self.burst.to_json(),
            "scaling": scaling,
            "rss": rss,
            "leftovers": self.leftovers,
            "acceptance": self.checks().iter().map(Check::to_json).collect::<Vec<_>>(),
        })
    }

    /// The table on stdout.
    pub(crate) fn print(&self) {
        println!();
        println!(
            "meta-cni pod benchmark: {} pods per scenario, 3 interfaces (bridge + host-local), {}",
            self.pods,
            machine()["summary"].as_str().unwrap_or_default()
        );
        println!();
        println!(
            "{:<34} {:>9} {:>9} {:>9} {:>9}   (ms)",
            "3 interfaces", "ADD p50", "ADD p99", "DEL p50", "DEL p99"
        );
        let row = |name: &str, t: &Timings| {
            println!(
                "{name:<34} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                t.add.p50(),
                t.add.p99(),
                t.del.p50(),
                t.del.p99()
            );
        };
        row("kernel floor (ip -batch)", &self.floor);
        row("meta-cni (nadDir)", &self.ours);
        match &self.kube {
            Ok((t, _)) => row("meta-cni (Kubernetes API)", t),
            Err(why) => println!("{:<34} {why}", "meta-cni (Kubernetes API)"),
        }
        match &self.daemon {
            Ok((t, _)) => row("meta-cni (daemon, Kubernetes API)", t),
            Err(why) => println!("{:<34} {why}", "meta-cni (daemon, Kubernetes API)"),
        }
        match &self.reference {
            Ok(t) => row("reference (bridge + host-local)", t),
            Err(why) => println!("{:<34} {why}", "reference (bridge + host-local)"),
        }
        if let Ok((_, requests)) = &self.kube {
            println!("  API requests per call: {}", requests["per_call"]);
        }
        if let Ok((_, requests)) = &self.daemon {
            println!("  through the daemon: {}", requests["per_call"]);
        }
        println!();
        println!("ratios (same run):");
        for (name, r) in self.ratios() {
            println!("  {name:<34} {r:>6.2}");
        }
        let b = &self.burst;
        println!();
        println!(
            "{} pods at once: ADD wall {:.1} ms (per call p50 {:.1}, max {:.1}), DEL wall {:.1} ms; \
             errors {}; duplicate addresses {} (results) / {} (kernel, {} addresses); leftovers {}",
            b.pods,
            b.add_wall.as_secs_f64() * 1e3,
            b.add.p50(),
            b.add.percentile(100.0),
            b.del_wall.as_secs_f64() * 1e3,
            b.errors(),
            b.duplicate_results,
            b.duplicate_kernel,
            b.kernel_addresses,
            b.leftovers
        );
        for e in b.add_errors.iter().chain(&b.del_errors).take(5) {
            println!("  error: {e}");
        }
        println!();
        println!(
            "{:<12} {:>9} {:>9} {:>9} {:>9}   (ms, meta-cni nadDir, {} pods each)",
            "interfaces", "ADD p50", "per if", "DEL p50", "per if", self.scale_pods
        );
        for (n, t) in &self.scaling {
            println!(
                "{n:<12} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                t.add.p50(),
                t.add.p50() / *n as f64,
                t.del.p50(),
                t.del.p50() / *n as f64
            );
        }
        println!();
        println!("peak RSS of one call:");
        for r in &self.rss {
            println!("  {:<40} {:>8.2} MiB", r.what, r.kib as f64 / 1024.0);
        }
        println!();
        println!("acceptance (issue 6):");
        for c in self.checks() {
            let verdict = match c.pass() {
                Some(true) => "PASS",
                Some(false) => "FAIL",
                None => "n/a ",
            };
            let value = c
                .value
                .map(|v| format!("{v:.2}{}", c.unit))
                .unwrap_or_else(|| "not measured".into());
            println!(
                "  [{verdict}] {:<42} {value:>12}  (limit {}{})",
                c.what, c.limit, c.unit
            );
        }
    }
}

/// The file system of the state directories (the temporary directory: `TMPDIR` moves
/// them). It matters to our figures and not to the floor's, which writes no files: each of
/// our ADDs creates a cache entry and a reservation per network, and on an ext4 without a
/// journal the inode allocator skips (reading each) every inode deleted in the last one to
/// six minutes, so our ADD slows with every run before it; the report says so.
fn state_fs() -> String {
    use nix::sys::statfs::{
        statfs, BTRFS_SUPER_MAGIC, EXT4_SUPER_MAGIC, OVERLAYFS_SUPER_MAGIC, TMPFS_MAGIC,
        XFS_SUPER_MAGIC,
    };
    let dir = std::env::temp_dir();
    let kind = match statfs(&dir).map(|s| s.filesystem_type()) {
        Ok(t) if t == EXT4_SUPER_MAGIC => match ext4_journaled(&dir) {
            Some(true) => "ext4 with a journal",
            Some(false) => {
                "ext4 WITHOUT a journal: file creation slows with recent deletions, \
                 our ADD drifts up from run to run; TMPDIR on a journaled file system avoids it"
            }
            None => "ext2/3/4",
        },
        Ok(t) if t == TMPFS_MAGIC => "tmpfs",
        Ok(t) if t == XFS_SUPER_MAGIC => "xfs",
        Ok(t) if t == BTRFS_SUPER_MAGIC => "btrfs",
        Ok(t) if t == OVERLAYFS_SUPER_MAGIC => "overlayfs",
        Ok(_) => "another file system",
        Err(_) => "unknown",
    };
    format!("{} ({kind})", dir.display())
}

/// Whether the ext4 file system holding `dir` has a journal: jbd2 lists every journal it
/// runs in `/proc/fs/jbd2` as `<device>-<journal inode>`. `None` when the device has no
/// name in sysfs.
fn ext4_journaled(dir: &std::path::Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).ok()?.dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let uevent = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent")).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    // No /proc/fs/jbd2 at all: no file system here has a journal.
    let mut journals = std::fs::read_dir("/proc/fs/jbd2")
        .into_iter()
        .flatten()
        .flatten();
    Some(journals.any(|e| {
        e.file_name()
            .to_str()
            .and_then(|n| n.rsplit_once('-'))
            .is_some_and(|(device, _)| device == name)
    }))
}

/// CPUs, kernel and where the state lives, for the record.
fn machine() -> Value {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let state = state_fs();
    json!({
        "cpus": cpus,
        "kernel": kernel,
        "state_dir": state,
        "summary": format!("{cpus} CPUs, Linux {kernel}, state in {state}"),
    })
}
