//! The binaries under test: our release `meta-cni` (built first unless told not to), linked
//! under every plugin name in a private bin dir, and the reference plugins.

use std::path::{Path, PathBuf};
use std::process::Command;

use conformance::plugin_set::{OUR_PLUGINS, REFERENCE_DIR};

/// Our plugins in a temporary bin dir (links to the release binary), and where the
/// reference plugins are.
#[derive(Debug)]
pub(crate) struct Plugins {
    /// The release `meta-cni` binary itself.
    pub(crate) meta_cni: PathBuf,
    dir: tempfile::TempDir,
}

impl Plugins {
    /// Builds `meta-cni` in release (unless `no_build`), then links it into a temporary
    /// bin dir as `meta-cni`, `loopback`, `bridge` and `host-local`.
    pub(crate) fn prepare(no_build: bool) -> Plugins {
        if !no_build && std::env::var_os("META_CNI_BIN").is_none() {
            build_release();
        }
        // target/release/deps/pod-<hash> -> target/release/meta-cni, or $META_CNI_BIN.
        let meta_cni = conformance::meta_cni_binary();
        let dir = tempfile::Builder::new()
            .prefix("meta-cni-bench-bin-")
            .tempdir()
            .expect("create the bench's bin dir");
        for name in OUR_PLUGINS.iter().chain(&["meta-cni"]) {
            std::os::unix::fs::symlink(&meta_cni, dir.path().join(name))
                .unwrap_or_else(|e| panic!("link {name} to {}: {e}", meta_cni.display()));
        }
        Plugins { meta_cni, dir }
    }

    /// Our bin dir: `binDir` and `CNI_PATH` of our scenarios.
    pub(crate) fn bin_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The meta plugin, as the runtime calls it.
    pub(crate) fn meta(&self) -> PathBuf {
        self.dir.path().join("meta-cni")
    }

    /// The reference bin dir, if the reference bridge and host-local are installed.
    pub(crate) fn reference_dir() -> Option<&'static Path> {
        let dir = Path::new(REFERENCE_DIR);
        (dir.join("bridge").exists() && dir.join("host-local").exists()).then_some(dir)
    }
}

/// `cargo build --release -p meta-cni`: the bench measures the release binary, which
/// `cargo bench` does not build (a binary crate is no dependency of `conformance`).
fn build_release() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("conformance lives in the workspace");
    eprintln!("bench: cargo build --release -p meta-cni");
    let status = Command::new(&cargo)
        .args(["build", "--release", "-p", "meta-cni"])
        .current_dir(workspace)
        .status()
        .unwrap_or_else(|e| panic!("run {} build: {e}", cargo.to_string_lossy()));
    assert!(
        status.success(),
        "cargo build --release -p meta-cni failed ({status})"
    );
}
