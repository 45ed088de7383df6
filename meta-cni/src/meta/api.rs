//! The Kubernetes API in Kubernetes mode: GET the pod, GET NADs, one merge PATCH of the
//! pod's `network-status`; for a pod with a policy delegate, LIST its namespace's
//! MultiNetworkPolicies and, when there is any, every namespace and pod. The client runs on a current-thread runtime made only here, so
//! standalone calls never start one. Each attempt is bounded by the configured timeout; 5xx,
//! 429, timeouts and connection failures are retried with backoff, anything else fails at
//! once; so is a TLS handshake that fails (a server certificate of another CA, a client
//! certificate refused), named with the server. The configuration ([`KubeSource`]: a
//! kubeconfig, or the pod's service account) and a token file it names are read fresh by
//! every call.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api as Resources, Client};
use tokio::runtime::{Handle, Runtime};

use nad_crd::{
    network_status_patch, MultiNetworkPolicy, NetworkAttachmentDefinition, NetworkStatus,
};

use super::error::{ApiError, AttemptFailure};
use super::kube_config::KubeSource;
use super::policy_context::PolicyObjects;

/// The first retry's delay; each later one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The runtime a client's requests run on.
enum Driver {
    /// A plugin call's own current-thread runtime, made for it.
    Own(Runtime),
    /// A long-running process's multi-thread runtime (the daemon), shared by its calls;
    /// blocked on from their blocking threads.
    Shared(Handle),
}

impl Driver {
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self {
            Driver::Own(runtime) => runtime.block_on(future),
            Driver::Shared(handle) => handle.block_on(future),
        }
    }
}

/// A connected client with its retry policy.
pub(crate) struct Api {
    runtime: Driver,
    client: Client,
    /// The API server's URL, for errors.
    server: String,
    timeout: Duration,
    retries: u32,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds credentials: show the policy only.
        f.debug_struct("Api")
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

/// Whether a failure may pass if the same request is sent again.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// rustls's reason when `e` is a failed TLS handshake, found down its chain of sources.
/// An `io::Error` hides the error it wraps from `source()` (it answers with that error's
/// source), so the walk steps into it instead.
fn tls_failure(e: &kube::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

/// A failure that retrying will not fix.
fn refused(what: &str, e: kube::Error) -> ApiError {
    let what = what.to_string();
    match e {
        kube::Error::Api(status) => {
            // The reason (`Forbidden`, ...), else the summary (`Failure`).
            let reason = match (status.reason.as_str(), status.status) {
                ("", Some(summary)) => format!("{summary:?}"),
                (reason, _) => reason.to_owned(),
            };
            ApiError::Refused {
                what,
                status: status.code,
                reason,
                message: status.message,
            }
        }
        kube::Error::SerdeError(source) => ApiError::Decode { what, source },
        source => ApiError::Failed { what, source },
    }
}

impl Api {
    /// Reads `source` and builds a client whose every request is bounded by `timeout`
    /// and retried up to `retries` times.
    pub(crate) fn connect(
        source: &KubeSource,
        timeout: Duration,
        retries: u32,
    ) -> Result<Api, ApiError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| ApiError::Runtime { source })?;
        Api::on(Driver::Own(runtime), source, timeout, retries)
    }

    /// As [`Api::connect`], for a process with a multi-thread runtime: the client's
    /// connections live on `runtime`, and its requests may be made from any thread outside
    /// it (a blocking thread of it included).
    pub(crate) fn on_runtime(
        runtime: Handle,
        source: &KubeSource,
        timeout: Duration,
        retries: u32,
    ) -> Result<Api, ApiError> {
        Api::on(Driver::Shared(runtime), source, timeout, retries)
    }

    fn on(
        runtime: Driver,
        source: &KubeSource,
        timeout: Duration,
        retries: u32,
    ) -> Result<Api, ApiError> {
        let (client, server) = runtime.block_on(async {
            let mut config = source.config().await?;
            // kube retries 429, 503 and 504 itself by default (up to 15 times, backing off):
            // this module's policy (`apiRetries`, `apiTimeoutSeconds` per attempt) is the only one.
            config.default_retry = false;
            config.connect_timeout = Some(timeout);
            config.read_timeout = Some(timeout);
            config.write_timeout = Some(timeout);
            let server = config
                .cluster_url
                .to_string()
                .trim_end_matches('/')
                .to_owned();
            let client = Client::try_from(config).map_err(|e| ApiError::Client {
                from: source.to_string(),
                source: e,
            })?;
            Ok::<_, ApiError>((client, server))
        })?;
        Ok(Api {
            runtime,
            client,
            server,
            timeout,
            retries,
        })
    }

    /// Runs `request` until it succeeds, fails for good, or the retries are spent (code 11).
    fn call<T, F, Fut>(&self, what: &str, request: F) -> Result<T, ApiError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        self.runtime.block_on(self.attempts(what, request))
    }

    /// [`Api::call`]'s loop, as a future, so several can run at once.
    async fn attempts<T, F, Fut>(&self, what: &str, request: F) -> Result<T, ApiError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = tokio::time::timeout(self.timeout, request(self.client.clone())).await;
            let why = match outcome {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) if tls_failure(&e).is_some() => {
                    return Err(ApiError::Tls {
                        server: self.server.clone(),
                        what: what.to_string(),
                        why: tls_failure(&e).unwrap_or_default(),
                    });
                }
                Ok(Err(e)) if transient(&e) => AttemptFailure::Kube(e),
                Ok(Err(e)) => return Err(refused(what, e)),
                Err(_) => AttemptFailure::Timeout(self.timeout),
            };
            if attempt > self.retries {
                return Err(ApiError::GaveUp {
                    what: what.to_string(),
                    attempts: attempt,
                    last: why,
                });
            }
            tracing::info!("Kubernetes API: {what}: attempt {attempt} failed ({why}); retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The pod `namespace/name`; `None` if the API says it does not exist.
    pub(crate) fn pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>, ApiError> {
        self.call(
            &format!("GET pod {namespace}/{name}"),
            |client| async move {
                Resources::<Pod>::namespaced(client, namespace)
                    .get_opt(name)
                    .await
            },
        )
    }

    /// The NAD `namespace/name`; `None` if the API says it does not exist.
    pub(crate) fn nad(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, ApiError> {
        self.runtime.block_on(self.get_nad(namespace, name))
    }

    /// The NADs `refs` (namespace, name), requested all at once: a pod's networks cost one
    /// round trip, not one per network. One answer per reference, in order.
    pub(crate) fn nads(
        &self,
        refs: &[(String, String)],
    ) -> Vec<Result<Option<NetworkAttachmentDefinition>, ApiError>> {
        self.runtime.block_on(futures::future::join_all(
            refs.iter()
                .map(|(namespace, name)| self.get_nad(namespace, name)),
        ))
    }

    async fn get_nad(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, ApiError> {
        self.attempts(
            &format!("GET network-attachment-definition {namespace}/{name}"),
            |client| async move {
                Resources::<NetworkAttachmentDefinition>::namespaced(client, namespace)
                    .get_opt(name)
                    .await
            },
        )
        .await
    }

    /// The MultiNetworkPolicies of `namespace` and, when there is any, every namespace and
    /// every pod (both lists at once): the objects a policy delegate's rules are made of.
    pub(crate) fn policy_objects(&self, namespace: &str) -> Result<PolicyObjects, ApiError> {
        let policies = self.call(
            &format!("LIST multi-networkpolicies in {namespace}"),
            |client| async move {
                Resources::<MultiNetworkPolicy>::namespaced(client, namespace)
                    .list(&ListParams::default())
                    .await
                    .map(|list| list.items)
            },
        )?;
        if policies.is_empty() {
            return Ok(PolicyObjects::default());
        }
        let (namespaces, pods) = self.runtime.block_on(futures::future::join(
            self.attempts("LIST namespaces", |client| async move {
                Resources::<Namespace>::all(client)
                    .list(&ListParams::default())
                    .await
                    .map(|list| list.items)
            }),
            self.attempts("LIST pods", |client| async move {
                Resources::<Pod>::all(client)
                    .list(&ListParams::default())
                    .await
                    .map(|list| list.items)
            }),
        ));
        Ok(PolicyObjects {
            policies,
            namespaces: namespaces?,
            pods: pods?,
        })
    }

    /// The DRA ResourceClaim `namespace/name`; `None` if the API says it does not exist.
    pub(crate) fn resource_claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ResourceClaim>, ApiError> {
        self.call(
            &format!("GET resourceclaim {namespace}/{name}"),
            |client| async move {
                Resources::<ResourceClaim>::namespaced(client, namespace)
                    .get_opt(name)
                    .await
            },
        )
    }

    /// The ResourceSlices of DRA driver `driver` (`spec.driver` field selector).
    pub(crate) fn resource_slices(&self, driver: &str) -> Result<Vec<ResourceSlice>, ApiError> {
        let params = ListParams::default().fields(&format!("spec.driver={driver}"));
        self.call(&format!("LIST resourceslices of {driver}"), |client| {
            let params = &params;
            async move {
                Resources::<ResourceSlice>::all(client)
                    .list(params)
                    .await
                    .map(|list| list.items)
            }
        })
    }

    /// One merge patch of `resourceclaims/status` of `namespace/name`.
    pub(crate) fn patch_resource_claim_status(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<(), ApiError> {
        self.call(
            &format!("PATCH resourceclaim {namespace}/{name} status"),
            |client| async move {
                Resources::<ResourceClaim>::namespaced(client, namespace)
                    .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map(drop)
            },
        )
    }

    /// Sets the pod's `network-status` annotation in one merge patch of `pods/status`; a
    /// pod that is gone is code 3.
    pub(crate) fn set_network_status(
        &self,
        namespace: &str,
        name: &str,
        statuses: &[NetworkStatus],
    ) -> Result<(), ApiError> {
        let patch = network_status_patch(statuses);
        let what = format!("PATCH pod {namespace}/{name} status");
        let patched = self.call(&what, |client| {
            let patch = &patch;
            async move {
                let sent = Resources::<Pod>::namespaced(client, namespace)
                    .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await;
                match sent {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
                    Err(e) => Err(e),
                }
            }
        })?;
        if !patched {
            return Err(ApiError::PodGone {
                namespace: namespace.to_string(),
                name: name.to_string(),
                what,
            });
        }
        Ok(())
    }
}
