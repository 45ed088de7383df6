//! Running delegates in-process: when `CNI_PATH` resolves a delegate's `type` to this very
//! binary, the plugin it would answer as is called directly, with the same validation,
//! result and errors as an exec would give; anything else is exec'd as the spec says.

use std::path::Path;
use std::sync::OnceLock;

use cni::chain::Executor;
use cni::invoke::{exec, find_in_path, Invocation};
use cni::Error;

/// The executor the bundled plugins hand their delegates (IPAM) to.
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

/// Whether `plugin_type`, looked up in `path` as an exec would, is a plugin of this binary:
/// then it runs in-process.
pub(crate) fn is_bundled(plugin_type: &str, path: &[std::path::PathBuf]) -> bool {
    crate::plugin_named(plugin_type).is_some()
        && find_in_path(plugin_type, path).is_ok_and(|binary| is_this_binary(&binary))
}

impl Executor for InProcess {
    fn run(&self, plugin_type: &str, inv: &Invocation, config: &[u8]) -> Result<Vec<u8>, Error> {
        let binary = find_in_path(plugin_type, &inv.path)?;
        if is_this_binary(&binary) {
            if let Some(plugin) = crate::plugin_named(plugin_type) {
                tracing::debug!(plugin = plugin_type, "running delegate in-process");
                return cni::skeleton::call(plugin, inv, config);
            }
        }
        exec(&binary, inv, config)
    }
}
