//! Peak RSS of one plugin call. `getrusage(RUSAGE_CHILDREN)` reports the largest child a
//! process has waited for, so the bench re-executes itself as a probe that runs just the one
//! call: nothing else it ran (cargo, `ip`, the reference plugins) can count.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use conformance::{Call, Output};
use nix::sys::resource::{getrusage, UsageWho};

/// Set to the plugin to run: the bench is then the probe, not the benchmark.
const PROBE_VAR: &str = "BENCH_RSS_PROBE";

/// The line the probe appends to the plugin's stderr.
const RSS_PREFIX: &str = "bench-rss-kib=";

/// True when this process is a probe.
pub(crate) fn is_probe() -> bool {
    std::env::var_os(PROBE_VAR).is_some()
}

/// The probe: runs the plugin named by [`PROBE_VAR`] with this process's environment and
/// stdin, passes its stdout and stderr on, appends its peak RSS to stderr, and exits with
/// its code.
pub(crate) fn probe_main() -> ! {
    let plugin = std::env::var_os(PROBE_VAR).expect("probe without a plugin");
    let out = Command::new(&plugin)
        .env_remove(PROBE_VAR)
        .stdin(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("probe: run {}: {e}", plugin.to_string_lossy()));
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("probe: getrusage");
    let _ = std::io::stdout().write_all(&out.stdout);
    let mut stderr = std::io::stderr();
    let _ = stderr.write_all(&out.stderr);
    // ru_maxrss is in KiB on Linux.
    let _ = writeln!(stderr, "\n{RSS_PREFIX}{}", usage.max_rss());
    std::process::exit(out.status.code().unwrap_or(-1));
}

/// The binary to put in a [`Call`] in place of `plugin`, and the variable that makes it a
/// probe of `plugin`: `wrap(|probe| build_call(probe), plugin)`.
pub(crate) fn wrap(call: impl FnOnce(&Path) -> Call, plugin: &Path) -> Call {
    let exe: PathBuf = std::env::current_exe().expect("path of the running bench");
    call(&exe).var(PROBE_VAR, &plugin.display().to_string())
}

/// Runs a wrapped call (from the calling thread's namespace); returns what the plugin
/// printed and its peak RSS in KiB. Panics if the plugin failed.
pub(crate) fn run(call: &Call, what: &str) -> (Output, u64) {
    let mut out = call.run();
    assert_eq!(
        out.code, 0,
        "{what} failed under the RSS probe: stdout {} stderr {}",
        out.stdout, out.stderr
    );
    let at = out
        .stderr
        .rfind(RSS_PREFIX)
        .unwrap_or_else(|| panic!("{what}: the probe reported no RSS: {}", out.stderr));
    let kib = out.stderr[at + RSS_PREFIX.len()..]
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{what}: bad RSS report {:?}: {e}", &out.stderr[at..]));
    out.stderr.truncate(at);
    (out, kib)
}
