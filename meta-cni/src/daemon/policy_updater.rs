//! The policy updater: after any change of the policy caches (debounced, so a burst makes
//! one pass), and every [`RESYNC`] to retry what failed, every attachment cached in the
//! followed cache directories gets its policy brought up to date
//! ([`crate::meta::policy_refresh`]), on a blocking thread. Failures are logged and
//! counted, never fatal.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use policy::live::Applied;
use tokio::sync::watch;

use super::metrics::Metrics;
use super::policy_watch::PolicyWatch;
use crate::meta::policy_refresh;

/// How long a change waits for the ones that follow it (a rollout relabels many pods).
const DEBOUNCE: Duration = Duration::from_millis(150);
/// A pass even without a change: retries what failed, catches an ADD that raced a change.
const RESYNC: Duration = Duration::from_secs(60);

/// Runs until `stopped` turns true. `dirs` are the cache directories followed from the
/// start; those a served ADD used are added as they come.
pub(crate) async fn run(
    watch: Arc<PolicyWatch>,
    dirs: Vec<PathBuf>,
    metrics: Arc<Metrics>,
    mut stopped: watch::Receiver<bool>,
) {
    let changed = watch.changed();
    let mut announced = false;
    loop {
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep(RESYNC) => {}
            _ = stopped.changed() => return,
        }
        tokio::time::sleep(DEBOUNCE).await;
        // The wake-up stored during the debounce is this pass's: it reads the caches after.
        let _ = changed.notified().now_or_never();
        if !watch.synced() {
            continue;
        }
        if !announced {
            announced = true;
            tracing::info!("policy caches synced: ADDs read them, running pods follow them");
        }
        let mut followed = dirs.clone();
        followed.extend(policy_refresh::followed());
        followed.sort();
        followed.dedup();
        let lookup = Arc::clone(&watch);
        let pass = tokio::task::spawn_blocking(move || {
            followed
                .iter()
                .map(|dir| policy_refresh::refresh_dir(dir, lookup.as_ref()))
                .collect::<Vec<_>>()
        })
        .await;
        let reports = match pass {
            Ok(reports) => reports,
            Err(e) => {
                tracing::error!("policy update pass: {e}");
                metrics.policy_update("error");
                continue;
            }
        };
        for report in reports {
            for (_, _, done) in &report.applied {
                metrics.policy_update(match done {
                    Applied::Installed => "installed",
                    Applied::Removed => "removed",
                    Applied::NetnsGone => "skipped",
                });
            }
            for failure in &report.failed {
                let mut text = failure.to_string();
                let mut source = std::error::Error::source(failure);
                while let Some(s) = source {
                    text.push_str(&format!(": {s}"));
                    source = s.source();
                }
                tracing::warn!("policy update failed: {text}");
                metrics.policy_update("error");
            }
        }
    }
}
