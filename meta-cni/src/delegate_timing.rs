//! How long each delegate call takes, for a process that measures it (the daemon's
//! metrics): it installs one observer; a plugin call installs none and pays one check.

use std::sync::OnceLock;
use std::time::Duration;

/// What is told of each delegate call: its `type` and how long it took.
type Observer = Box<dyn Fn(&str, Duration) + Send + Sync>;

static OBSERVER: OnceLock<Observer> = OnceLock::new();

/// Installs `observer` for every later delegate call; once per process.
pub(crate) fn observe_with(observer: Observer) {
    if OBSERVER.set(observer).is_err() {
        tracing::warn!("a delegate timing observer is installed already");
    }
}

/// One delegate call of `plugin_type` took `took`.
pub(crate) fn record(plugin_type: &str, took: Duration) {
    if let Some(observer) = OBSERVER.get() {
        observer(plugin_type, took);
    }
}
