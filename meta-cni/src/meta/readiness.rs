//! `readinessindicatorfile`: the cluster network's "ready" file. ADD, STATUS and GC wait for
//! it (bounded by `readinessTimeoutSeconds`); DEL does not wait, so teardown never blocks on
//! a network that is not up.

use std::path::Path;
use std::time::{Duration, Instant};

use cni::{Error, ErrorCode};

use super::config::MetaConf;

const POLL: Duration = Duration::from_millis(100);

/// Waits until the readiness file exists; code 11 when it does not appear in time.
pub(crate) fn wait(conf: &MetaConf) -> Result<(), Error> {
    let Some(file) = &conf.readiness_file else {
        return Ok(());
    };
    let deadline = Instant::now() + conf.readiness_timeout;
    while !file.exists() {
        if Instant::now() >= deadline {
            return Err(not_ready(file, conf.readiness_timeout));
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

fn not_ready(file: &Path, waited: Duration) -> Error {
    Error::new(
        ErrorCode::TRY_AGAIN_LATER,
        "the cluster network is not ready",
        format!(
            "readinessindicatorfile {} did not appear within {waited:?}",
            file.display()
        ),
    )
}
