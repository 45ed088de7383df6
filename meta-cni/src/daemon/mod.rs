//! The daemon (thick mode), `meta-cni-daemon`: serves the meta plugin's calls, forwarded by
//! the plugin acting as its shim ([`shim`]), on a root-only Unix socket. Its calls read pods
//! and NADs from watch caches ([`cluster`]) and send one API request per ADD (the
//! `network-status` PATCH); they run the same code as the plugin binary, with the same
//! cache, locks, rollback and output. At most `--max-concurrent` calls run at once. With a
//! kubeconfig it also watches MultiNetworkPolicies, namespaces and pods ([`policy_watch`]):
//! ADDs read a policy delegate's objects from those caches, and running pods' policy rules
//! follow their changes ([`policy_updater`]).
//!
//! SIGTERM or SIGINT: the socket stops accepting and is removed (shims serve calls
//! themselves from then on), calls in flight finish and answer, and the daemon exits. The
//! node's CNI configuration is never touched.

mod cluster;
mod error;
mod health;
mod metrics;
mod policy_updater;
mod policy_view;
mod policy_watch;
mod protocol;
mod reflect;
mod server;
mod settings;
pub(crate) mod shim;
mod socket;

use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Semaphore};

use crate::meta::cluster_view;
use crate::meta::kube_config::{self, KubeSource};
use cluster::Cluster;
use error::DaemonError;
use health::Health;
use metrics::Metrics;
use policy_view::PolicyView;
use policy_watch::PolicyWatch;
use settings::Settings;

/// The name the daemon answers to (a link to the multi-call binary).
pub(crate) const DAEMON: &str = "meta-cni-daemon";

/// The daemon's `main`: logs as every call of the binary does (`META_CNI_LOG`,
/// `META_CNI_LOG_FILE`), then runs until SIGTERM.
pub(crate) fn main(log_env: &cni::logging::EnvNames) -> ExitCode {
    let mut settings = cni::logging::Settings::default();
    // A daemon's log is where an operator looks: `info` unless told otherwise.
    if std::env::var_os(log_env.level).is_none() {
        settings.level = Some("info".into());
    }
    cni::logging::init(settings, log_env);
    let node_env = std::env::var("NODE_NAME").ok();
    let outcome = Settings::parse(std::env::args().skip(1), node_env)
        .map_err(DaemonError::from)
        .and_then(run);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            tracing::error!("{text}");
            eprintln!("{text}");
            ExitCode::FAILURE
        }
    }
}

fn run(settings: Settings) -> Result<(), DaemonError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("meta-cni-daemon")
        .build()
        .map_err(|source| DaemonError::Runtime { source })?;
    let metrics = Arc::new(Metrics::new());
    let observed = Arc::clone(&metrics);
    crate::delegate_timing::observe_with(Box::new(move |plugin_type, took| {
        observed.delegate(plugin_type, took)
    }));
    crate::meta::parallel::set_default(!settings.sequential);
    if let Some(dir) = &settings.service_account_dir {
        // The calls this daemon serves use its service account, not the default mount.
        kube_config::set_default_service_account_dir(dir.clone());
    }
    let source = KubeSource::from_env(
        settings.kubeconfig.clone(),
        settings.service_account_dir.clone(),
    );
    let mut policy = None;
    let cluster = match source {
        Some(source) => {
            tracing::info!("cluster: {source}");
            let cluster =
                Cluster::start(runtime.handle(), &source, &settings, Arc::clone(&metrics))
                    .map_err(|source| DaemonError::Cluster { source })?;
            let cluster = Arc::new(cluster);
            let view: Arc<dyn cluster_view::ClusterView> = if settings.policy_updates {
                let watch = Arc::new(PolicyWatch::start(runtime.handle(), cluster.watch_client()));
                policy = Some(Arc::clone(&watch));
                Arc::new(PolicyView {
                    cluster: Arc::clone(&cluster),
                    watch,
                    metrics: Arc::clone(&metrics),
                })
            } else {
                Arc::clone(&cluster) as _
            };
            cluster_view::install(source, view);
            Some(cluster)
        }
        None => None,
    };
    let health = Arc::new(Health {
        cluster,
        metrics: Arc::clone(&metrics),
    });
    runtime.block_on(serve(&settings, health, metrics, policy))
}

async fn serve(
    settings: &Settings,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    policy: Option<Arc<PolicyWatch>>,
) -> Result<(), DaemonError> {
    let signal_err = |source| DaemonError::Signal { source };
    let mut term = signal(SignalKind::terminate()).map_err(signal_err)?;
    let mut int = signal(SignalKind::interrupt()).map_err(signal_err)?;
    let http = TcpListener::bind(settings.metrics)
        .await
        .map_err(|source| DaemonError::Metrics {
            addr: settings.metrics,
            source,
        })?;
    let http_addr = http.local_addr().unwrap_or(settings.metrics);
    let listener = socket::bind(&settings.socket)?;
    let (stop, stopped) = watch::channel(false);
    let slots = u32::try_from(settings.max_concurrent).unwrap_or(u32::MAX);
    let limit = Arc::new(Semaphore::new(settings.max_concurrent));
    let health_task = tokio::spawn(health::serve(http, health, stopped.clone()));
    let updater = policy.map(|watch| {
        tokio::spawn(policy_updater::run(
            watch,
            settings.cni_dirs.clone(),
            Arc::clone(&metrics),
            stopped.clone(),
        ))
    });
    let calls = tokio::spawn(server::serve(listener, metrics, limit, slots, stopped));
    tracing::info!(
        socket = %settings.socket.display(),
        health = %http_addr,
        max_concurrent = settings.max_concurrent,
        "serving"
    );
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: finishing the calls in flight"),
        _ = int.recv() => tracing::info!("SIGINT: finishing the calls in flight"),
    }
    let _ = stop.send(true);
    // Shims that connect from now on find no socket and serve their calls themselves.
    socket::remove(&settings.socket);
    let _ = calls.await;
    let _ = health_task.await;
    // A pass under way finishes: each update is one transaction and its cache write.
    if let Some(updater) = updater {
        let _ = updater.await;
    }
    tracing::info!("every call answered: exiting");
    Ok(())
}
