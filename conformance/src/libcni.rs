//! libcni, the Go library behind cnitool and podman's CNI backend, as a client of the plugins
//! under test. `libcni-driver/main.go` is a small program of ours built against Debian's
//! packaged libcni (golang-github-appc-cni-dev); each [`LibcniCall`] runs it once, so the
//! result cache, `prevResult` handling and version conversion are libcni's own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::run::Output;

/// Where Debian's golang-github-appc-cni-dev puts the libcni sources (a GOPATH entry).
pub const GOCODE_DIR: &str = "/usr/share/gocode";

/// One libcni network-list operation under construction.
#[derive(Debug, Clone)]
pub struct LibcniCall {
    verb: String,
    conflist: PathBuf,
    id: String,
    netns: PathBuf,
    ifname: String,
    plugin_dirs: Vec<PathBuf>,
    cache_dir: PathBuf,
    cni_args: Option<String>,
    capability_args: Option<Value>,
}

impl LibcniCall {
    /// `verb` (`add`, `check`, `del`, or `cached` for `GetNetworkListCachedResult`) of the
    /// network list in file `conflist`, with libcni's cache in `cache_dir`.
    pub fn new(verb: &str, conflist: &Path, cache_dir: &Path) -> Self {
        LibcniCall {
            verb: verb.into(),
            conflist: conflist.into(),
            id: String::new(),
            netns: PathBuf::new(),
            ifname: "eth0".into(),
            plugin_dirs: Vec::new(),
            cache_dir: cache_dir.into(),
            cni_args: None,
            capability_args: None,
        }
    }

    /// The container: ID, network namespace path, interface name.
    pub fn container(mut self, id: &str, netns: &Path, ifname: &str) -> Self {
        self.id = id.into();
        self.netns = netns.into();
        self.ifname = ifname.into();
        self
    }

    /// The directories libcni searches for plugins (`CNI_PATH`), in order.
    pub fn plugin_dirs(mut self, dirs: &[&Path]) -> Self {
        self.plugin_dirs = dirs.iter().map(|d| d.to_path_buf()).collect();
        self
    }

    /// `CNI_ARGS` as `K=V;K=V`.
    pub fn cni_args(mut self, args: &str) -> Self {
        self.cni_args = Some(args.into());
        self
    }

    /// The runtime's capability arguments (libcni passes each plugin those it declares).
    pub fn capability_args(mut self, args: Value) -> Self {
        self.capability_args = Some(args);
        self
    }

    /// Runs the operation from inside network namespace `ns` (a test's "node"): libcni
    /// execs the plugins in the namespace it runs in.
    pub fn run_in(&self, ns: &kernel::Netns) -> Output {
        ns.run(|| self.run())
            .unwrap_or_else(|e| panic!("enter {}: {e}", ns.path().display()))
    }

    /// Runs the operation to completion. The driver prints the result (add, cached) or
    /// nothing (check, del); on failure one JSON object `{msg, code?, details?}` and exit 1.
    pub fn run(&self) -> Output {
        let path = std::env::join_paths(&self.plugin_dirs).expect("plugin dirs joinable");
        let mut cmd = Command::new(driver());
        cmd.arg(&self.verb)
            .arg("-conflist")
            .arg(&self.conflist)
            .arg("-id")
            .arg(&self.id)
            .arg("-netns")
            .arg(&self.netns)
            .arg("-ifname")
            .arg(&self.ifname)
            .arg("-path")
            .arg(path)
            .arg("-cache-dir")
            .arg(&self.cache_dir);
        if let Some(args) = &self.cni_args {
            cmd.arg("-args").arg(args);
        }
        if let Some(args) = &self.capability_args {
            cmd.arg("-capability-args").arg(args.to_string());
        }
        // The plugins inherit the driver's environment: keep the test's own out of it.
        let out = cmd
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run libcni driver {}: {e}", driver().display()));
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The file libcni caches a network list's result in: `<cache>/results/<net>-<id>-<ifname>`.
pub fn cache_file(cache_dir: &Path, network: &str, id: &str, ifname: &str) -> PathBuf {
    cache_dir
        .join("results")
        .join(format!("{network}-{id}-{ifname}"))
}

/// The driver binary, built once per test process into `target/<profile>/libcni-driver`
/// (under a private name, then renamed into place, so concurrent test binaries never run a
/// half-written file). Panics, saying what to install, when Go or libcni is missing.
pub fn driver() -> &'static Path {
    static DRIVER: OnceLock<PathBuf> = OnceLock::new();
    DRIVER.get_or_init(build_driver)
}

fn build_driver() -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("libcni-driver/main.go");
    let libcni = Path::new(GOCODE_DIR).join("src/github.com/containernetworking/cni/libcni");
    assert!(
        libcni.is_dir(),
        "{} is missing: install golang-github-appc-cni-dev (.ci/run does)",
        libcni.display()
    );
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let go_dir = profile_dir.join("go");
    let out = profile_dir.join("libcni-driver");
    let staged = profile_dir.join(format!(".libcni-driver.{}", std::process::id()));
    let gopath = std::env::join_paths([go_dir.join("path"), PathBuf::from(GOCODE_DIR)])
        .expect("GOPATH joinable");
    // GOPATH mode: Debian packages Go libraries as GOPATH sources, and the build must
    // work offline. The cache lives under target/ so CI needs no $HOME.
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&staged)
        .arg(&source)
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        .env("GOCACHE", go_dir.join("cache"))
        .env("GOFLAGS", "")
        .output()
        .unwrap_or_else(|e| {
            panic!("run `go build` for the libcni driver ({e}): install golang-go (.ci/run does)")
        });
    assert!(
        built.status.success(),
        "go build {} failed: {}",
        source.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    std::fs::rename(&staged, &out).expect("move libcni driver into place");
    out
}
