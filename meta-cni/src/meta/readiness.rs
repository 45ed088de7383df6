//! `readinessindicatorfile`: the cluster network's "ready" file. ADD, STATUS and GC wait for
//! it (bounded by `readinessTimeoutSeconds`); DEL does not wait, so teardown never blocks on
//! a network that is not up.

use std::time::{Duration, Instant};

use super::config::MetaConf;
use super::error::MetaError;

const POLL: Duration = Duration::from_millis(100);

/// Waits until the readiness file exists; code 11 when it does not appear in time.
pub(crate) fn wait(conf: &MetaConf) -> Result<(), MetaError> {
    let Some(file) = &conf.readiness_file else {
        return Ok(());
    };
    let deadline = Instant::now() + conf.readiness_timeout;
    while !file.exists() {
        if Instant::now() >= deadline {
            return Err(MetaError::NotReady {
                file: file.clone(),
                waited: conf.readiness_timeout,
            });
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// Logs, without waiting, when the readiness file is missing (DEL).
pub(crate) fn note(conf: &MetaConf) {
    if let Some(file) = conf.readiness_file.as_deref().filter(|f| !f.exists()) {
        tracing::warn!(
            "readinessindicatorfile {} is missing: the cluster network may not be ready",
            file.display()
        );
    }
}
