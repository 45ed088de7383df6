//! The bundled delegates and how a delegate runs: the plugins linked into this binary, by
//! the name each answers to, and the executor that runs one of them in-process when
//! `CNI_PATH` resolves its `type` to this very binary (with the same validation, result and
//! errors as an exec would give), and execs anything else as the spec says.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cni::chain::Executor;
use cni::invoke::{exec_plugin, find_in_path, find_named_in_path};
use cni::Invocation;
use cni::{CniResult, ConfList, Error, Plugin};
use serde_json::{Map, Value};

/// The bundled delegates, by the name each is run as.
const BUNDLED: &[(&str, &dyn Plugin)] = &[
    ("loopback", &loopback::Loopback),
    ("host-local", &host_local::HostLocal),
    ("bridge", &bridge::Bridge::new(&InProcess)),
    ("eni-ip", &eni_ip_plugin::EniIp),
    ("policy", &policy::Policy),
];

/// The bundled delegate answering to `name`.
pub(crate) fn bundled(name: &str) -> Option<&'static dyn Plugin> {
    BUNDLED.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

/// The names of the bundled delegates.
pub(crate) fn bundled_names() -> impl Iterator<Item = &'static str> {
    BUNDLED.iter().map(|(n, _)| *n)
}

/// The executor the bundled plugins hand their delegates (IPAM) to, and the meta plugin its
/// networks' plugins.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct InProcess;

/// The (device, inode) of a file, following links: how "is this our binary" is decided,
/// so a symlink, a hard link or a copy-free install all count.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn is_this_binary(path: &Path) -> bool {
    static SELF: OnceLock<Option<(u64, u64)>> = OnceLock::new();
    let me = SELF.get_or_init(|| file_id(Path::new("/proc/self/exe")));
    me.is_some() && file_id(path) == *me
}

impl Executor for InProcess {
    fn run(
        &self,
        plugin_type: &str,
        inv: &Invocation,
        config: Map<String, Value>,
    ) -> Result<Option<CniResult>, Error> {
        let started = std::time::Instant::now();
        let outcome = self.run_untimed(plugin_type, inv, config);
        crate::delegate_timing::record(plugin_type, started.elapsed());
        outcome
    }
}

impl InProcess {
    fn run_untimed(
        &self,
        plugin_type: &str,
        inv: &Invocation,
        config: Map<String, Value>,
    ) -> Result<Option<CniResult>, Error> {
        let binary = find_in_path(plugin_type, &inv.path)?;
        if is_this_binary(&binary) {
            if let Some(plugin) = bundled(plugin_type) {
                tracing::debug!(plugin = plugin_type, "running delegate in-process");
                return cni::skeleton::call(plugin, inv, config);
            }
        }
        exec_plugin(&binary, inv, &config)
    }
}

/// The delegates of one call of the meta plugin: where their binaries are looked up
/// (`binDir`, then `CNI_PATH`), built once per call.
#[derive(Debug, Clone)]
pub(crate) struct Delegates {
    path: Vec<PathBuf>,
}

impl Delegates {
    /// `bin_dir` first, then the runtime's `CNI_PATH` without it.
    pub(crate) fn new(bin_dir: &Path, cni_path: &[PathBuf]) -> Delegates {
        let mut path = vec![bin_dir.to_path_buf()];
        path.extend(cni_path.iter().filter(|p| *p != bin_dir).cloned());
        Delegates { path }
    }

    /// The `CNI_PATH` the delegates get.
    pub(crate) fn path(&self) -> &[PathBuf] {
        &self.path
    }

    /// The binary of `plugin_type`: code 7 naming it and the path when there is none.
    pub(crate) fn find(&self, plugin_type: &str) -> Result<PathBuf, Error> {
        find_in_path(plugin_type, &self.path)
    }

    /// As [`Delegates::find`], for a plugin named by config key `field` (`ipam.type`).
    pub(crate) fn find_named(&self, field: &str, plugin_type: &str) -> Result<PathBuf, Error> {
        find_named_in_path(field, plugin_type, &self.path)
    }

    /// Every plugin or IPAM `type` of `list` that the path does not hold: the plugin's index,
    /// the key (`type` or `ipam.type`) and the error naming it, in the list's order.
    pub(crate) fn missing(&self, list: &ConfList) -> Vec<(usize, &'static str, Error)> {
        let mut missing = Vec::new();
        for (i, plugin) in list.plugins.iter().enumerate() {
            let plugin_type = plugin
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if let Err(e) = self.find(plugin_type) {
                missing.push((i, "type", e));
            }
            let ipam_type = plugin
                .get("ipam")
                .and_then(|ipam| ipam.get("type"))
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty());
            if let Some(Err(e)) = ipam_type.map(|t| self.find_named("ipam.type", t)) {
                missing.push((i, "ipam.type", e));
            }
        }
        missing
    }

    /// Whether `plugin_type` is one of our delegates, run in-process.
    pub(crate) fn is_bundled(&self, plugin_type: &str) -> bool {
        bundled(plugin_type).is_some()
            && self
                .find(plugin_type)
                .is_ok_and(|binary| is_this_binary(&binary))
    }

    /// The executor the delegates run through.
    pub(crate) fn executor(&self) -> &'static InProcess {
        &InProcess
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_dir_comes_first_and_once() {
        let d = Delegates::new(
            Path::new("/opt/cni/bin"),
            &["/usr/lib/cni".into(), "/opt/cni/bin".into()],
        );
        assert_eq!(
            d.path(),
            [PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]
        );
    }

    #[test]
    fn only_this_binary_runs_in_process() {
        let dir = tempfile::tempdir().unwrap();
        // A file named like a bundled plugin that is not this binary is exec'd.
        let fake = dir.path().join("bridge");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let d = Delegates::new(dir.path(), &[]);
        assert!(!d.is_bundled("bridge"));
        assert!(!d.is_bundled("macvlan"));
        assert!(d.find("macvlan").is_err());
    }
}
