//! Logs go to stderr or a file, never stdout: stdout belongs to the result.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

/// The environment variable holding the log filter (`warn` when unset), e.g. `debug`.
pub const LOG_LEVEL_ENV: &str = "META_CNI_LOG";
/// The environment variable naming a log file to append to instead of stderr.
pub const LOG_FILE_ENV: &str = "META_CNI_LOG_FILE";

/// Installs the process-wide subscriber once; later calls do nothing.
pub fn init(level: Option<&str>, file: Option<&Path>) {
    let level = level
        .map(str::to_string)
        .or_else(|| std::env::var(LOG_LEVEL_ENV).ok())
        .unwrap_or_else(|| "warn".into());
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("warn"));
    let file = file
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(LOG_FILE_ENV).map(Into::into));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false);
    let opened = file.and_then(|p| OpenOptions::new().create(true).append(true).open(p).ok());
    // A second init (in-process delegates, tests) is harmless: try_init just fails.
    let _ = match opened {
        Some(f) => builder.with_writer(Mutex::new(f)).try_init(),
        None => builder.with_writer(std::io::stderr).try_init(),
    };
}
