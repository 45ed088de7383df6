//! The HTTP/1.1 server: hyper on a current-thread tokio runtime that runs on a thread of its
//! own, serving [`handler::handle`] on a listening socket the caller bound, over plain TCP
//! or TLS.
//!
//! A socket belongs to the network namespace of the thread that created it, so the listener
//! is always bound outside the runtime: by the caller at start, and at
//! [`Server::come_up`] inside the namespace the server was started in.

use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::TokioIo;
use kernel::Netns;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::handler::{self, Reply};
use super::state::{self, State};
use super::{watch, watch_stream};

/// The running server. Dropping it closes the listener and every connection, then stops
/// the runtime and joins its thread.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    /// The namespace the server was started in; `None` if it could not be opened.
    netns: Option<Netns>,
    runtime: tokio::runtime::Handle,
    state: Arc<Mutex<State>>,
    /// Set: HTTPS.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The accept loop, while the server is up.
    listening: Mutex<Option<Listening>>,
    stop_runtime: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Control of one accept loop.
#[derive(Debug)]
struct Listening {
    /// Stops the loop.
    stop: oneshot::Sender<()>,
    /// Receives once the listener and every connection are closed.
    stopped: mpsc::Receiver<()>,
}

impl Server {
    /// Serves `state` on `listener` (HTTPS with `tls`) until dropped.
    pub(crate) fn start(
        listener: TcpListener,
        state: Arc<Mutex<State>>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop_runtime, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("kube-api {addr}"))
            .spawn(move || {
                // Spawned tasks run while this blocks; dropping the runtime afterwards
                // drops them all, closing every socket they hold.
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        let server = Server {
            addr,
            netns: Netns::current().ok(),
            runtime: handle,
            state,
            tls,
            listening: Mutex::new(None),
            stop_runtime: Some(stop_runtime),
            thread: Some(thread),
        };
        server.listen(&mut server.lock_listening(), listener)?;
        Ok(server)
    }

    /// The address the server listens on (also while it is down).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// True while the server accepts connections.
    pub(crate) fn is_up(&self) -> bool {
        self.lock_listening().is_some()
    }

    /// Closes the listener and every open connection (requests in flight get no answer);
    /// returns once they are closed, so a connection attempt right after is refused.
    pub(crate) fn go_down(&self) {
        Self::stop(&mut self.lock_listening());
    }

    /// Listens again on the same address, in the network namespace the server was started
    /// in, whatever namespace the calling thread is in. Nothing happens if it is up.
    pub(crate) fn come_up(&self) -> io::Result<()> {
        let mut listening = self.lock_listening();
        if listening.is_some() {
            return Ok(());
        }
        let listener = bind_again(self.netns.as_ref(), self.addr)?;
        self.listen(&mut listening, listener)
    }

    fn lock_listening(&self) -> std::sync::MutexGuard<'_, Option<Listening>> {
        self.listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn listen(&self, slot: &mut Option<Listening>, listener: TcpListener) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        let listener = {
            let _runtime = self.runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let (stop, stop_rx) = oneshot::channel();
        let (stopped_tx, stopped) = mpsc::channel();
        self.runtime.spawn(accept_loop(
            listener,
            Arc::clone(&self.state),
            self.tls.clone().map(TlsAcceptor::from),
            stop_rx,
            stopped_tx,
        ));
        *slot = Some(Listening { stop, stopped });
        Ok(())
    }

    fn stop(slot: &mut Option<Listening>) {
        if let Some(listening) = slot.take() {
            let _ = listening.stop.send(());
            // Err means the loop is gone already: nothing left open either way.
            let _ = listening.stopped.recv();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        Self::stop(&mut self.lock_listening());
        if let Some(stop) = self.stop_runtime.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds `addr` again inside `netns` (from a helper thread when the caller is elsewhere).
/// The port was ours a moment ago: a few retries cover a socket the kernel has not
/// released yet.
fn bind_again(netns: Option<&Netns>, addr: SocketAddr) -> io::Result<TcpListener> {
    let bind = || {
        let mut tries = 0;
        loop {
            match TcpListener::bind(addr) {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && tries < 40 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(25));
                }
                result => return result,
            }
        }
    };
    let Some(netns) = netns else {
        return bind();
    };
    let here = Netns::current()
        .and_then(|current| current.same_as(netns))
        .unwrap_or(false);
    if here {
        return bind();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| netns.run(bind))
            .join()
            .map_err(|_| io::Error::other("the bind thread panicked"))?
            .map_err(|e| io::Error::other(format!("enter the server's network namespace: {e}")))?
    })
}

/// Accepts connections until told to stop, then closes the listener and every connection
/// and says so on `stopped`.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    state: Arc<Mutex<State>>,
    tls: Option<TlsAcceptor>,
    mut stop: oneshot::Receiver<()>,
    stopped: mpsc::Sender<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let state = Arc::clone(&state);
                    match tls.clone() {
                        Some(tls) => connections.spawn(serve_tls(stream, tls, state)),
                        None => connections.spawn(serve_connection(stream, state, None)),
                    };
                }
                // Out of file descriptors or similar: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
    let _ = stopped.send(());
}

/// The TLS handshake, then [`serve_connection`] as the user of the client's certificate (if
/// it sent one the server's CA issued). A failed handshake (no certificate where one is
/// required, an unknown CA, a client that gives up) closes the connection.
async fn serve_tls(stream: tokio::net::TcpStream, tls: TlsAcceptor, state: Arc<Mutex<State>>) {
    let handshake = tokio::time::timeout(Duration::from_secs(10), tls.accept(stream)).await;
    let Ok(Ok(stream)) = handshake else {
        return;
    };
    let client_cn = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|cert| {
            let state = state::lock(&state);
            state.client_certs.get(cert.as_ref()).cloned()
        });
    serve_connection(stream, state, client_cn).await;
}

/// Serves HTTP/1.1 requests on one connection (keep-alive included) until the client
/// closes it; `client_cn` is the user its client certificate authenticated.
async fn serve_connection<S>(stream: S, state: Arc<Mutex<State>>, client_cn: Option<String>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let client_cn: Option<Arc<str>> = client_cn.map(Arc::from);
    let service =
        service_fn(move |request| respond(request, Arc::clone(&state), client_cn.clone()));
    // A client that goes away mid-request is the client's business.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Answers one request: the handler decides under the lock, the delay is served after it;
/// a watch is streamed.
async fn respond(
    request: hyper::Request<Incoming>,
    state: Arc<Mutex<State>>,
    client_cn: Option<Arc<str>>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let request = handler::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        content_type: header(CONTENT_TYPE),
        authorization: header(AUTHORIZATION),
        client_cn: client_cn.as_deref(),
        body: &body,
    };
    if watch::requested(request.query) {
        let watch = handler::handle_watch(&mut state::lock(&state), &request);
        return Ok(match watch {
            Ok(watch) => Response::builder()
                .status(200)
                .header(CONTENT_TYPE, "application/json")
                .header(CACHE_CONTROL, "no-cache, private")
                .body(watch_stream::start(watch, Arc::clone(&state)).boxed())
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed())),
            Err(reply) => response(&reply).map(BodyExt::boxed),
        });
    }
    let (reply, delay) = {
        let mut state = state::lock(&state);
        (handler::handle(&mut state, &request), state.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Ok(response(&reply).map(BodyExt::boxed))
}

/// The HTTP response for `reply`, with the headers kube-apiserver sends.
fn response(reply: &Reply) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&reply.body).unwrap_or_default();
    let mut builder = Response::builder()
        .status(reply.status)
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-cache, private");
    if let Some(seconds) = reply.retry_after {
        builder = builder.header(RETRY_AFTER, seconds);
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
