//! A kube-runtime reflector on the daemon's runtime: its store, a flag set once the store
//! holds the first list, and optionally a wake-up on every event (the policy updater's).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api as Resources, Resource};
use serde::de::DeserializeOwned;
use tokio::runtime::Handle;
use tokio::sync::Notify;

/// Starts a reflector of `resources` (narrowed by `config`) on `runtime`. `wake`, when
/// given, is notified on every event and once the first list is in (one stored wake-up at
/// most: bursts coalesce).
pub(super) fn reflect<K>(
    runtime: &Handle,
    resources: Resources<K>,
    config: watcher::Config,
    wake: Option<&Arc<Notify>>,
) -> (Store<K>, Arc<AtomicBool>)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store::<K>();
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let events = reflector::reflector(writer, watcher(resources, config).default_backoff());
    let on_event = wake.cloned();
    runtime.spawn(events.for_each(move |event| {
        match event {
            Ok(_) => {
                if let Some(wake) = &on_event {
                    wake.notify_one();
                }
            }
            // The watcher retries with backoff by itself; an error only needs saying.
            Err(e) => tracing::warn!("watch of {kind}: {e}"),
        }
        futures::future::ready(())
    }));
    let synced = Arc::new(AtomicBool::new(false));
    let (flag, ready, on_sync) = (Arc::clone(&synced), store.clone(), wake.cloned());
    runtime.spawn(async move {
        if ready.wait_until_ready().await.is_ok() {
            flag.store(true, Ordering::Release);
            if let Some(wake) = on_sync {
                wake.notify_one();
            }
        }
    });
    (store, synced)
}
