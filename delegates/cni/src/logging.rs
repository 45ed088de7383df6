//! Logs go to stderr or a file, never stdout: stdout belongs to the result.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The environment variables a binary takes its log settings from: the binary names them
/// (they are the product's, not the protocol's), e.g. `META_CNI_LOG` and `META_CNI_LOG_FILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvNames {
    /// The variable holding the log filter (`warn` when unset), e.g. `debug`.
    pub level: &'static str,
    /// The variable naming a log file to append to instead of stderr.
    pub file: &'static str,
}

/// Where and how much a call logs. A plugin may take these from its netconf
/// ([`crate::Plugin::log_settings`]); the environment variables of [`EnvNames`] fill what it
/// leaves unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// A `tracing` filter (`error`, `warn`, `info`, `debug`, ...).
    pub level: Option<String>,
    /// A file to append to.
    pub file: Option<PathBuf>,
    /// Whether to log to stderr too when a file is set (without a file, stderr is used).
    pub stderr: bool,
    /// One JSON object per line instead of text, for log collectors.
    pub json: bool,
}

/// Both sinks of one subscriber: the file (if any) and stderr (if wanted).
struct Sinks {
    file: Option<Mutex<std::fs::File>>,
    stderr: bool,
}

/// One log line's writer over [`Sinks`].
struct SinkWriter<'a>(&'a Sinks);

impl Write for SinkWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(file) = &self.0.file {
            // A poisoned lock only means another thread panicked mid-line: keep logging.
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            f.write_all(buf)?;
        }
        if self.0.stderr {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sinks {
    type Writer = SinkWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        SinkWriter(self)
    }
}

/// Installs the process-wide subscriber once; later calls do nothing. What `settings` leaves
/// unset comes from the environment variables `env` names.
pub fn init(settings: Settings, env: &EnvNames) {
    let level = settings
        .level
        .or_else(|| std::env::var(env.level).ok())
        .unwrap_or_else(|| "warn".into());
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("warn"));
    let file = settings
        .file
        .or_else(|| std::env::var_os(env.file).map(Into::into));
    let opened = file.and_then(|p| OpenOptions::new().create(true).append(true).open(p).ok());
    let sinks = Sinks {
        stderr: settings.stderr || opened.is_none(),
        file: opened.map(Mutex::new),
    };
    // A second init (in-process delegates, tests) is harmless: try_init just fails.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false)
        .with_writer(sinks);
    let _ = if settings.json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// One line per call, after its object is made: the verb, the container and interface, how long it took and how it
/// ended (success at `info`; a failure, with its code, at `warn`, so it shows by default).
pub(crate) fn call_done(plugin: &str, exit_code: u8, stdout: &str, took: std::time::Duration) {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let (verb, container, ifname) = (
        var("CNI_COMMAND"),
        var("CNI_CONTAINERID"),
        var("CNI_IFNAME"),
    );
    let duration_ms = took.as_secs_f64() * 1000.0;
    if exit_code == 0 {
        tracing::info!(
            plugin,
            verb,
            container,
            ifname,
            duration_ms,
            outcome = "ok",
            "{verb} done"
        );
    } else {
        let code = serde_json::from_str::<serde_json::Value>(stdout)
            .ok()
            .and_then(|e| e["code"].as_u64())
            .unwrap_or_default();
        tracing::warn!(
            plugin,
            verb,
            container,
            ifname,
            duration_ms,
            outcome = "error",
            code,
            "{verb} failed"
        );
    }
}
