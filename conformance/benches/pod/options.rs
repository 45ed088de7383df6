//! The benchmark's knobs, from the environment (a `harness = false` bench gets cargo's own
//! arguments, so options travel as variables).

use std::path::{Path, PathBuf};

/// What one run measures and where it writes.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// `BENCH_PODS` (default 50): pods per latency scenario, and pods added at once.
    pub(crate) pods: usize,
    /// `BENCH_SCALE_PODS` (default `min(BENCH_PODS, 25)`): pods per size of the
    /// interface-count sweep.
    pub(crate) scale_pods: usize,
    /// `BENCH_OUT` (default `target/bench`): where `pod.json` and `pod.svg` go.
    pub(crate) out_dir: PathBuf,
    /// `BENCH_NO_BUILD=1`: use the `meta-cni` binary as it is instead of running
    /// `cargo build --release -p meta-cni` first.
    pub(crate) no_build: bool,
}

/// Host addresses a /16 gives the floor's static plan and host-local: far more than any
/// sensible run, but a typo like `BENCH_PODS=50000` should fail before any namespace exists.
const MAX_PODS: usize = 2000;

impl Options {
    /// Reads the options; panics, naming the variable, on a value that is not a count.
    pub(crate) fn from_env() -> Options {
        let pods = count("BENCH_PODS").unwrap_or(50);
        let scale_pods = count("BENCH_SCALE_PODS").unwrap_or(pods.min(25));
        let out_dir = std::env::var_os("BENCH_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(default_out_dir);
        Options {
            pods,
            scale_pods,
            out_dir,
            no_build: std::env::var("BENCH_NO_BUILD").is_ok_and(|v| v == "1"),
        }
    }
}

fn count(var: &str) -> Option<usize> {
    let value = std::env::var(var).ok()?;
    let n: usize = value
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{var}={value:?} is not a count: {e}"));
    assert!(
        (1..=MAX_PODS).contains(&n),
        "{var}={n}: must be between 1 and {MAX_PODS}"
    );
    Some(n)
}

/// `<target>/bench`: the bench runs as `<target>/release/deps/pod-<hash>`, with the package
/// directory as its working directory, so a relative default would land in `conformance/`.
fn default_out_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the running bench");
    exe.parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(|target| target.join("bench"))
        .expect("the bench lives in <target>/<profile>/deps")
}
