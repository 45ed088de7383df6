//! The agent's life: bind the socket and the introspection port, learn the node, print
//! the ready line, run the pool manager, and on SIGTERM/SIGINT stop gracefully (in-flight
//! calls finish, the checkpoint is written, the socket removed).

use std::io::Write;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Semaphore};

use crate::agent::{self, Agent};
use crate::cloud::{self, Cloud};
use crate::introspection;
use crate::metrics::Metrics;
use crate::rpc_server;
use crate::service::Service;
use crate::settings::Settings;

/// The agent failed to start or to run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The plugin socket could not be set up.
    #[error(transparent)]
    Socket(#[from] rpc_server::SocketError),
    /// The introspection port could not be bound.
    #[error("introspection on {addr}: {source}")]
    Introspection {
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The signal handlers could not be installed.
    #[error("installing the signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// The cloud clients could not be built.
    #[error("connecting to the cloud: {0}")]
    Cloud(#[from] cloud::CloudError),
    /// The node could not be learnt or the checkpoint restored.
    #[error("starting: {0}")]
    Start(#[from] agent::StartError),
}

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(settings: Settings) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::new());
    let service = Arc::new(Service::new(metrics.clone()));
    let (stop, stopped) = watch::channel(false);
    let mut term = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;

    let listener = rpc_server::bind(&settings.socket)?;
    let tcp = TcpListener::bind(settings.introspection)
        .await
        .map_err(|source| RunError::Introspection {
            addr: settings.introspection,
            source,
        })?;
    let introspection_addr = tcp.local_addr().map_err(|source| RunError::Introspection {
        addr: settings.introspection,
        source,
    })?;
    let permits = settings.max_connections;
    let limit = Arc::new(Semaphore::new(permits));
    let rpc = tokio::spawn(rpc_server::serve(
        listener,
        service.clone(),
        limit.clone(),
        stopped.clone(),
    ));
    tokio::spawn(introspection::serve(tcp, service.clone(), stopped.clone()));

    let starting = async {
        let cloud = Cloud::connect(&settings.cloud, metrics.clone()).await?;
        Ok::<_, RunError>(Agent::start(settings.clone(), cloud, metrics.clone()).await?)
    };
    let agent = tokio::select! {
        agent = starting => Arc::new(agent?),
        _ = term.recv() => return stop_early(&settings, &stop),
        _ = int.recv() => return stop_early(&settings, &stop),
    };
    service.set_agent(agent.clone());
    tracing::info!(
        socket = %settings.socket.display(),
        introspection = %introspection_addr,
        "ready"
    );
    let ready = serde_json::json!({
        "socket": settings.socket.display().to_string(),
        "introspection": introspection_addr.to_string(),
    });
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{ready}").and_then(|()| stdout.flush());

    let pool = tokio::spawn(agent::run_pool_loop(agent.clone(), stopped.clone()));
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight calls");
    let _ = stop.send(true);
    let _ = rpc.await;
    // Every connection holds a permit while it is served.
    let _ = limit.acquire_many(permits as u32).await;
    let _ = pool.await;
    if let Err(err) = agent.save() {
        tracing::error!(%err, "final checkpoint write failed");
    }
    remove_socket(&settings);
    tracing::info!("stopped");
    Ok(())
}

fn stop_early(settings: &Settings, stop: &watch::Sender<bool>) -> Result<(), RunError> {
    tracing::info!("signalled before the node was learnt: stopping");
    let _ = stop.send(true);
    remove_socket(settings);
    Ok(())
}

fn remove_socket(settings: &Settings) {
    if let Err(err) = std::fs::remove_file(&settings.socket) {
        tracing::warn!(%err, socket = %settings.socket.display(), "could not remove the socket");
    }
}
