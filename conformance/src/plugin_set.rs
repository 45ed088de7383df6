//! The plugin sets a scenario can run against.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the reference plugins live (Debian's containernetworking-plugins).
pub const REFERENCE_DIR: &str = "/usr/lib/cni";

/// The plugin names our multi-call binary answers to.
pub const OUR_PLUGINS: &[&str] = &["loopback", "host-local", "bridge", "eni-ip", "policy"];

/// A set of CNI plugin binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginSet {
    /// Our plugins: links to the `meta-cni` binary of this build.
    Ours,
    /// The reference plugins in [`REFERENCE_DIR`].
    Reference,
}

impl PluginSet {
    /// Both sets, ours first.
    pub const BOTH: [PluginSet; 2] = [PluginSet::Ours, PluginSet::Reference];

    /// The directory to use as `CNI_PATH`.
    pub fn bin_dir(self) -> &'static Path {
        match self {
            PluginSet::Ours => our_bin_dir(),
            PluginSet::Reference => Path::new(REFERENCE_DIR),
        }
    }

    /// The binary of plugin `name`.
    pub fn plugin(self, name: &str) -> PathBuf {
        self.bin_dir().join(name)
    }

    /// The sets the suite runs against: both, unless `CONFORMANCE_PLUGINS` names one
    /// (`ours` or `reference`).
    pub fn selected() -> Vec<PluginSet> {
        match std::env::var("CONFORMANCE_PLUGINS").as_deref() {
            Ok("ours") => vec![PluginSet::Ours],
            Ok("reference") => vec![PluginSet::Reference],
            _ => PluginSet::BOTH.to_vec(),
        }
    }

    /// The sets a scenario runs against: those selected and present on this machine. Ours
    /// must be present when selected, so a missing build never passes as "nothing to test".
    pub fn under_test() -> Vec<PluginSet> {
        let sets: Vec<PluginSet> = Self::BOTH.into_iter().filter(|s| s.available()).collect();
        assert!(
            sets.contains(&PluginSet::Ours) || !Self::selected().contains(&PluginSet::Ours),
            "our plugin set is selected but not built"
        );
        sets
    }

    /// Whether this set is selected and present on the machine.
    pub fn available(self) -> bool {
        Self::selected().contains(&self) && self.plugin("loopback").exists()
    }
}

/// The `meta-cni` binary under test: `$META_CNI_BIN`, else the one cargo built next to the
/// running test (`cargo test --workspace` builds it before any test runs).
pub fn meta_cni_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("META_CNI_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test> -> target/<profile>/meta-cni
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("meta-cni"))
        .expect("test executable lives in target/<profile>/deps");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p meta-cni`) first, \
         or set META_CNI_BIN",
        bin.display()
    );
    bin
}

/// A directory of links, one per plugin, to the binary under test: `target/<profile>/cni-bin`,
/// shared by every test process (each link is made under a private name and renamed into
/// place, so concurrent test binaries never see a missing link).
fn our_bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let bin = meta_cni_binary();
        let dir = bin.with_file_name("cni-bin");
        std::fs::create_dir_all(&dir).expect("create plugin link dir");
        for name in OUR_PLUGINS.iter().chain(&["meta-cni"]) {
            let staged = dir.join(format!(".{name}.{}", std::process::id()));
            let _ = std::fs::remove_file(&staged);
            std::os::unix::fs::symlink(&bin, &staged).expect("link plugin");
            std::fs::rename(&staged, dir.join(name)).expect("move plugin link into place");
        }
        dir
    })
}
