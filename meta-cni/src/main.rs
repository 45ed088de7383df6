//! `meta-cni`: one multi-call binary for every bundled plugin.
//!
//! The plugin that runs is chosen by the name the binary was run as, so a link named
//! `loopback` pointing at `meta-cni` is the loopback plugin.

use std::path::Path;
use std::process::ExitCode;

use cni::Plugin;

mod in_process;
mod meta;

use in_process::InProcess;

/// Every plugin linked into this binary, by the name it is run as.
const PLUGINS: &[(&str, &dyn Plugin)] = &[
    ("loopback", &loopback::Loopback),
    ("host-local", &host_local::HostLocal),
    ("bridge", &bridge::Bridge::new(&InProcess)),
    ("meta-cni", &meta::MetaPlugin),
];

/// The environment variables every plugin of this binary logs by, when its netconf does not
/// say (the README documents them).
const LOG_ENV: cni::logging::EnvNames = cni::logging::EnvNames {
    level: "META_CNI_LOG",
    file: "META_CNI_LOG_FILE",
};

fn plugin_named(name: &str) -> Option<&'static dyn Plugin> {
    PLUGINS.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match plugin_named(&name) {
        Some(plugin) => cni::skeleton::main(plugin, &LOG_ENV),
        None => {
            let e = cni::Error::new(
                cni::ErrorCode::INVALID_NETWORK_CONFIG,
                format!("meta-cni was run as {name:?}, which is not a plugin it contains"),
                format!(
                    "link it under one of these names: {}",
                    PLUGINS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            println!("{}", e.to_json(cni::Version::LATEST));
            ExitCode::FAILURE
        }
    }
}
