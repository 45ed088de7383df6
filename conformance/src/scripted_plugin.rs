//! A CNI plugin for tests that is a shell script, exec'd as any third-party plugin is: what
//! it does is set by files beside it, so a test can make it slow or failing between calls.
//! - `sleep`: seconds to sleep in ADD and DEL (e.g. `0.3`);
//! - `fail-ADD`, `fail-DEL`, `fail-CHECK`: that verb fails with code 117;
//!   `fail-<verb>-<ifname>`: only for that interface;
//! - `calls.log`: one line per call, `<verb> <container> <ifname> traceparent=<TRACEPARENT>`.
//!
//! ADD reports the interface it was asked for (no link is made: the plugin stands for a
//! delegate whose work takes time, such as an SR-IOV or a cloud one).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The plugin's `type`.
pub const SCRIPTED: &str = "scripted";

const SCRIPT: &str = r#"#!/bin/sh
# A CNI plugin for tests: see conformance/src/scripted_plugin.rs.
dir=$(dirname "$0")
cat > /dev/null
if [ "$CNI_COMMAND" = VERSION ]; then
  echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}'
  exit 0
fi
echo "$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME traceparent=$TRACEPARENT" >> "$dir/calls.log"
if [ -f "$dir/sleep" ]; then sleep "$(cat "$dir/sleep")"; fi
if [ -f "$dir/fail-$CNI_COMMAND" ] || [ -f "$dir/fail-$CNI_COMMAND-$CNI_IFNAME" ]; then
  echo "{\"cniVersion\":\"1.0.0\",\"code\":117,\"msg\":\"scripted $CNI_COMMAND failure\",\"details\":\"$CNI_IFNAME\"}"
  exit 1
fi
if [ "$CNI_COMMAND" = ADD ]; then
  echo "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"$CNI_IFNAME\",\"sandbox\":\"$CNI_NETNS\"}],\"ips\":[]}"
fi
exit 0
"#;

/// The plugin installed in a directory of its own.
#[derive(Debug, Clone)]
pub struct ScriptedPlugin {
    dir: PathBuf,
}

impl ScriptedPlugin {
    /// Installs the plugin as `<dir>/scripted` (`dir` is made if missing).
    pub fn install(dir: &Path) -> ScriptedPlugin {
        std::fs::create_dir_all(dir).expect("make the scripted plugin's dir");
        let path = dir.join(SCRIPTED);
        std::fs::write(&path, SCRIPT).expect("write the scripted plugin");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make the scripted plugin executable");
        ScriptedPlugin {
            dir: dir.to_path_buf(),
        }
    }

    /// The directory: add it to `CNI_PATH`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// ADD and DEL sleep `seconds` from now on (0: not at all).
    pub fn set_sleep(&self, seconds: f64) {
        let file = self.dir.join("sleep");
        if seconds > 0.0 {
            std::fs::write(file, seconds.to_string()).expect("write sleep");
        } else {
            let _ = std::fs::remove_file(file);
        }
    }

    /// `verb` fails from now on (or no longer).
    pub fn set_failing(&self, verb: &str, failing: bool) {
        let file = self.dir.join(format!("fail-{verb}"));
        if failing {
            std::fs::write(file, "").expect("write fail marker");
        } else {
            let _ = std::fs::remove_file(file);
        }
    }

    /// `verb` fails for interface `ifname` from now on (or no longer).
    pub fn set_failing_on(&self, verb: &str, ifname: &str, failing: bool) {
        self.set_failing(&format!("{verb}-{ifname}"), failing);
    }

    /// Every call logged so far, one line each.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}
