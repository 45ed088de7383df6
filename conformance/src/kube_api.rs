//! A Kubernetes API server stand-in for tests: the real REST protocol (paths, JSON shapes,
//! status codes, `Status` bodies, bearer tokens, merge patches) over HTTP/1.1 (plain, or
//! HTTPS with a CA of its own and client certificates: [`KubeApiBuilder::tls`]), for
//! the few resources the meta plugin uses: pods (GET, PATCH of the object and of
//! `pods/status`), NetworkAttachmentDefinitions (GET, LIST per namespace and
//! cluster-wide), and DRA's ResourceClaims (GET, PATCH of `resourceclaims/status`) and
//! ResourceSlices (LIST); lists take `fieldSelector` (`spec.nodeName`, `metadata.name`), and
//! every collection can be watched (`?watch=true` from a `resourceVersion`, bookmarks),
//! enough for kube-runtime's watcher and reflectors.
//!
//! ```no_run
//! use conformance::kube_api::{fixture, write_kubeconfig, KubeApi};
//!
//! let api = KubeApi::builder().token("secret").start();
//! api.add_pod(fixture("pod-three-networks"));
//! api.add_nad(fixture("nad-net-a"));
//! let dir = tempfile::tempdir().unwrap();
//! let kubeconfig = write_kubeconfig(dir.path(), &api);
//! // ... run the plugin with `kubeconfig` ...
//! let patches = api
//!     .requests()
//!     .iter()
//!     .filter(|r| r.is("PATCH", "/api/v1/namespaces/default/pods/nfv-pod/status"))
//!     .count();
//! assert_eq!(patches, 1);
//! ```
//!
//! The server runs on a thread of its own and stops when the [`KubeApi`] is dropped. Its
//! listening socket is bound by the thread that starts it, so a test can start it inside a
//! private network namespace, where the plugin under test runs (a plugin in a private
//! "node" namespace cannot reach the machine's loopback). Bring `lo` up there first:
//!
//! ```no_run
//! use conformance::kube_api::KubeApi;
//!
//! let node = kernel::PrivateNetns::new().unwrap();
//! let netns = node.netns().unwrap();
//! let mut nl = kernel::Netlink::in_netns(&netns).unwrap();
//! let lo = nl.link_by_name("lo").unwrap().unwrap();
//! nl.set_link_up(lo.index).unwrap();
//! let api = netns.run(KubeApi::start).unwrap();
//! // `go_down`/`come_up` may be called from any thread: the listener comes back in `node`.
//! ```

mod discovery;
mod faults;
mod field_selector;
mod fixtures;
mod handler;
mod kubeconfig;
mod patch;
mod query;
mod recorded;
mod route;
mod server;
mod service_account;
mod state;
mod status;
mod store;
mod tls;
mod watch;
mod watch_stream;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub use discovery::ApiResource;
pub use fixtures::{fixture, fixtures_dir};
pub use kubeconfig::{
    write_kubeconfig, write_kubeconfig_with_ca, write_kubeconfig_with_client_cert,
    write_kubeconfig_with_token_file, write_token_file, KUBECONFIG_FILE, TOKEN_FILE,
};
pub use recorded::RecordedRequest;
pub use service_account::{service_env, write_service_account, SERVICE_ACCOUNT_TOKEN};
pub use tls::{ClientCert, ClientCerts};

use server::Server;
use state::State;
use store::Kind;
use tls::Tls;

/// A running API server stand-in. Every method is thread-safe; dropping it stops the
/// server.
#[derive(Debug)]
pub struct KubeApi {
    state: Arc<Mutex<State>>,
    /// Set: HTTPS, with this CA.
    tls: Option<Tls>,
    server: Server,
}

/// How to start a [`KubeApi`]: address, token, or a listener bound elsewhere.
#[derive(Debug)]
pub struct KubeApiBuilder {
    addr: SocketAddr,
    token: Option<String>,
    listener: Option<TcpListener>,
    discovery: Vec<ApiResource>,
    /// `Some`: HTTPS, asking for client certificates as said.
    tls: Option<ClientCerts>,
}

impl KubeApiBuilder {
    /// Lists `kinds` in API discovery too (pods and NADs always are), so a client that
    /// maps manifests through discovery (`kubectl apply --dry-run=client`) accepts them;
    /// objects of those kinds are never found.
    pub fn discovery(mut self, kinds: &[ApiResource]) -> Self {
        self.discovery.extend_from_slice(kinds);
        self
    }

    /// Listens on `addr` (default `127.0.0.1:0`: a free port on loopback).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Requires `Authorization: Bearer <token>` on every request (default: no check).
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// Serves HTTPS: a CA is made for this server, and a certificate for `localhost`,
    /// `127.0.0.1`, `::1` and the address it listens on ([`KubeApi::ca_pem`];
    /// [`write_kubeconfig`] writes it as `certificate-authority-data`). No client
    /// certificates are asked for unless [`KubeApiBuilder::client_certs`] says so.
    pub fn tls(mut self) -> Self {
        self.tls.get_or_insert(ClientCerts::Off);
        self
    }

    /// Serves HTTPS ([`KubeApiBuilder::tls`]) and asks for client certificates of its CA
    /// ([`KubeApi::client_cert`]): [`ClientCerts::Optional`] verifies one when sent and lets
    /// a client without one use its bearer token; [`ClientCerts::Required`] refuses, during
    /// the TLS handshake, any client without one. A request over a connection with a
    /// verified certificate is authenticated as its common name (no token needed) and
    /// recorded with it ([`RecordedRequest::client_cn`]).
    pub fn client_certs(mut self, mode: ClientCerts) -> Self {
        self.tls = Some(mode);
        self
    }

    /// [`KubeApiBuilder::client_certs`] with [`ClientCerts::Required`].
    pub fn client_certs_required(self) -> Self {
        self.client_certs(ClientCerts::Required)
    }

    /// Serves on an already bound listener instead of binding [`KubeApiBuilder::addr`].
    /// [`KubeApi::come_up`] re-binds its address in the namespace of the thread that
    /// calls [`KubeApiBuilder::start`].
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Binds (on the calling thread, so in its network namespace) and starts the server.
    pub fn try_start(self) -> io::Result<KubeApi> {
        let listener = match self.listener {
            Some(listener) => listener,
            None => TcpListener::bind(self.addr)?,
        };
        let state = Arc::new(Mutex::new(State {
            token: self.token,
            discovery: self.discovery,
            ..State::default()
        }));
        let tls = match self.tls {
            Some(mode) => Some(Tls::new(listener.local_addr()?.ip(), mode)?),
            None => None,
        };
        let config = tls.as_ref().map(Tls::server_config);
        let server = Server::start(listener, Arc::clone(&state), config)?;
        Ok(KubeApi { state, tls, server })
    }

    /// [`KubeApiBuilder::try_start`], panicking on failure.
    pub fn start(self) -> KubeApi {
        let addr = self.addr;
        self.try_start()
            .unwrap_or_else(|e| panic!("start the Kubernetes API stand-in on {addr}: {e}"))
    }
}

impl KubeApi {
    /// Starts a server on a free loopback port that takes any request (no token).
    pub fn start() -> KubeApi {
        KubeApi::builder().start()
    }

    /// A builder, for an address or a token.
    pub fn builder() -> KubeApiBuilder {
        KubeApiBuilder {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            token: None,
            listener: None,
            discovery: Vec::new(),
            tls: None,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        state::lock(&self.state)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://<addr>` (`https://` when serving TLS): the `server` of a kubeconfig cluster.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr())
    }

    /// The CA certificate (PEM) the server's certificate is signed by, when serving TLS.
    pub fn ca_pem(&self) -> Option<String> {
        self.tls.as_ref().map(Tls::ca_pem)
    }

    /// Issues a client certificate of the server's CA for user `cn`; requests over a
    /// connection presenting it are authenticated as `cn`. Panics unless serving TLS.
    pub fn client_cert(&self, cn: &str) -> ClientCert {
        let tls = self
            .tls
            .as_ref()
            .expect("client certificates need a stand-in serving TLS");
        let (cert, der) = tls
            .issue(cn)
            .unwrap_or_else(|e| panic!("issue a client certificate for {cn}: {e}"));
        self.state()
            .client_certs
            .insert(der.as_ref().to_vec(), cn.to_owned());
        cert
    }

    /// The token requests must carry, if any.
    pub fn token(&self) -> Option<String> {
        self.state().token.clone()
    }

    /// Changes the token requests must carry (`None`: stop checking). Takes effect for the
    /// next request, on connections already open too.
    pub fn set_token(&self, token: Option<&str>) {
        let mut state = self.state();
        state.token = token.map(str::to_owned);
        state.old_tokens.clear();
    }

    /// Requires `token` from now on but keeps accepting the tokens it replaces, as a
    /// rotated service-account token stays valid for a while after the kubelet writes the
    /// new one; [`KubeApi::revoke_old_tokens`] ends that grace.
    pub fn rotate_token(&self, token: &str) {
        let mut state = self.state();
        if let Some(old) = state.token.replace(token.to_owned()) {
            state.old_tokens.push(old);
        }
    }

    /// Stops accepting the tokens [`KubeApi::rotate_token`] replaced.
    pub fn revoke_old_tokens(&self) {
        self.state().old_tokens.clear();
    }

    /// Stores a pod as if it had just been created (replacing one of the same namespace and
    /// name): `apiVersion`/`kind` are set, `metadata.namespace` defaults to `default`,
    /// `uid` and `creationTimestamp` are kept or filled in, `resourceVersion` is the next
    /// revision. Returns the stored object. Panics without `metadata.name`.
    pub fn add_pod(&self, pod: Value) -> Value {
        self.state().store.create(Kind::Pod, pod)
    }

    /// Deletes a pod; returns it if it existed.
    pub fn remove_pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.state().store.remove(Kind::Pod, namespace, name)
    }

    /// The pod as stored now (e.g. to read the annotation a client wrote).
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.state().store.get(Kind::Pod, namespace, name).cloned()
    }

    /// Stores a NetworkAttachmentDefinition, as [`KubeApi::add_pod`] stores a pod.
    pub fn add_nad(&self, nad: Value) -> Value {
        self.state().store.create(Kind::Nad, nad)
    }

    /// Deletes a NetworkAttachmentDefinition; returns it if it existed.
    pub fn remove_nad(&self, namespace: &str, name: &str) -> Option<Value> {
        self.state().store.remove(Kind::Nad, namespace, name)
    }

    /// The NetworkAttachmentDefinition as stored now.
    pub fn nad(&self, namespace: &str, name: &str) -> Option<Value> {
        self.state().store.get(Kind::Nad, namespace, name).cloned()
    }

    /// Stores a Namespace (cluster-scoped), as [`KubeApi::add_pod`] stores a pod.
    pub fn add_namespace(&self, namespace: Value) -> Value {
        self.state().store.create(Kind::Namespace, namespace)
    }

    /// Stores a MultiNetworkPolicy, as [`KubeApi::add_pod`] stores a pod.
    pub fn add_multi_network_policy(&self, policy: Value) -> Value {
        self.state().store.create(Kind::MultiNetworkPolicy, policy)
    }

    /// Deletes a MultiNetworkPolicy; returns it if it existed.
    pub fn remove_multi_network_policy(&self, namespace: &str, name: &str) -> Option<Value> {
        self.state()
            .store
            .remove(Kind::MultiNetworkPolicy, namespace, name)
    }

    /// Stores a DRA ResourceClaim, as [`KubeApi::add_pod`] stores a pod.
    pub fn add_resource_claim(&self, claim: Value) -> Value {
        self.state().store.create(Kind::ResourceClaim, claim)
    }

    /// The ResourceClaim as stored now (e.g. to read the status a client wrote).
    pub fn resource_claim(&self, namespace: &str, name: &str) -> Option<Value> {
        self.state()
            .store
            .get(Kind::ResourceClaim, namespace, name)
            .cloned()
    }

    /// Stores a DRA ResourceSlice (cluster-scoped), as [`KubeApi::add_pod`] stores a pod.
    pub fn add_resource_slice(&self, slice: Value) -> Value {
        self.state().store.create(Kind::ResourceSlice, slice)
    }

    /// Every request received so far, in the order they were handled.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.state().requests.clear();
    }

    /// The next `count` requests, whatever they are, get HTTP `status` and the `Status`
    /// body kube-apiserver sends with it (500 `InternalError`, 503 `ServiceUnavailable`,
    /// 429 `TooManyRequests` with `Retry-After: 1`, 409 `Conflict`, ...), before any token
    /// check. They are recorded like any request. Panics unless `status` is 400-599.
    pub fn fail_next(&self, count: usize, status: u16) {
        self.state().faults.fail_next(count, status);
    }

    /// The next `count` requests whose path starts with `path_prefix` fail with `status`
    /// (after any [`KubeApi::fail_next`] failures are used up).
    pub fn fail_path(&self, path_prefix: &str, status: u16, count: usize) {
        self.state().faults.fail_path(path_prefix, status, count);
    }

    /// Forgets every pending injected failure.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// Every answer waits `delay` before it is sent (zero: answer at once). The request is
    /// handled first, so a client that gives up may still have changed the state, as with
    /// a slow real server.
    pub fn set_delay(&self, delay: Duration) {
        self.state().delay = delay;
    }

    /// Stops answering: closes the listener and every open connection, so clients get
    /// connection errors (refused connections, resets), and returns once they are closed.
    pub fn go_down(&self) {
        self.server.go_down();
    }

    /// Listens again on the same address, in the network namespace the server was started
    /// in (whichever namespace the calling thread is in). Stored objects, token, faults and
    /// the request log are kept. Panics if the address cannot be bound again.
    pub fn come_up(&self) {
        self.server
            .come_up()
            .unwrap_or_else(|e| panic!("listen again on {}: {e}", self.addr()));
    }

    /// True unless [`KubeApi::go_down`] was called without [`KubeApi::come_up`] since.
    pub fn is_up(&self) -> bool {
        self.server.is_up()
    }
}
