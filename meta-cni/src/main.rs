//! `meta-cni`: one multi-call binary for every bundled plugin.
//!
//! The plugin that runs is chosen by the name the binary was run as, so a link named
//! `loopback` pointing at `meta-cni` is the loopback plugin, and `meta-cni` itself is the
//! meta plugin. Run as `meta-cni-daemon` it is the daemon of thick mode, which the meta
//! plugin forwards its calls to when its netconf names the daemon's socket. Run as
//! `meta-cni` with arguments and no `CNI_COMMAND`, it is the operator's command line
//! (`meta-cni --help`).

use std::path::Path;
use std::process::ExitCode;

use cni::Plugin;

mod cli;
mod daemon;
mod delegate_timing;
mod delegates;
mod install;
mod meta;

/// The name the meta plugin answers to.
const META_PLUGIN: &str = "meta-cni";

/// The environment variables every plugin of this binary logs by, when its netconf does not
/// say (the README documents them).
const LOG_ENV: cni::logging::EnvNames = cni::logging::EnvNames {
    level: "META_CNI_LOG",
    file: "META_CNI_LOG_FILE",
};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let argv0 = args.first().cloned().unwrap_or_default();
    let name = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name == daemon::DAEMON {
        return daemon::main(&LOG_ENV);
    }
    // A runtime never passes arguments; a person at a shell does.
    if name == META_PLUGIN && args.len() > 1 && std::env::var_os("CNI_COMMAND").is_none() {
        return cli::main(args);
    }
    let plugin: Option<&dyn Plugin> = match name.as_str() {
        META_PLUGIN => Some(&meta::MetaPlugin),
        other => delegates::bundled(other),
    };
    match plugin {
        // The meta plugin is the daemon's shim when its netconf names the daemon's socket.
        Some(plugin) if name == META_PLUGIN => {
            cni::skeleton::main_forwarding(plugin, &LOG_ENV, &daemon::shim::forward)
        }
        Some(plugin) => cni::skeleton::main(plugin, &LOG_ENV),
        None => {
            let names: Vec<&str> = [META_PLUGIN, daemon::DAEMON]
                .into_iter()
                .chain(delegates::bundled_names())
                .collect();
            let e = cni::Error::new(
                cni::ErrorCode::INVALID_NETWORK_CONFIG,
                format!("meta-cni was run as {name:?}, which is not a plugin it contains"),
                format!("link it under one of these names: {}", names.join(", ")),
            );
            println!("{}", e.to_json(cni::Version::LATEST));
            ExitCode::FAILURE
        }
    }
}
