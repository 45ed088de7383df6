//! A stand-in for the kubelet's PodResources v1 API: the server generated from the kubelet's
//! proto (the `pod-resources` crate), served by tonic on a Unix socket in the test's
//! directory, on a current-thread runtime of its own thread. Tests allocate device-plugin
//! devices and DRA claim devices to pods, may make `Get` unimplemented (a kubelet before
//! 1.27), and read which methods were called.
//!
//! ```no_run
//! use conformance::kubelet_stand_in::KubeletStandIn;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let kubelet = KubeletStandIn::start(&dir.path().join("kubelet.sock"));
//! kubelet.allocate("default", "nfv-pod", "app", "example.com/vf", &["0000:81:00.2"]);
//! // ... run the plugin with `podResourcesSocket` = kubelet.socket() ...
//! assert_eq!(kubelet.calls(), ["Get"]);
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use pod_resources::v1::pod_resources_lister_server::{
    PodResourcesLister, PodResourcesListerServer,
};
use pod_resources::v1::{
    AllocatableResourcesRequest, AllocatableResourcesResponse, ClaimResource, ContainerDevices,
    ContainerResources, DynamicResource, GetPodResourcesRequest, GetPodResourcesResponse,
    ListPodResourcesRequest, ListPodResourcesResponse, PodResources,
};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

/// What the stand-in holds and has seen.
#[derive(Debug, Default)]
struct Allocations {
    pods: Vec<PodResources>,
    /// Answer `Get` with `Unimplemented`, as a kubelet before 1.27 does.
    get_unimplemented: bool,
    /// The methods called, in order.
    calls: Vec<&'static str>,
}

fn lock(state: &Mutex<Allocations>) -> MutexGuard<'_, Allocations> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The service: answers from the shared [`Allocations`].
#[derive(Debug, Clone)]
struct Service(Arc<Mutex<Allocations>>);

#[tonic::async_trait]
impl PodResourcesLister for Service {
    async fn list(
        &self,
        _request: Request<ListPodResourcesRequest>,
    ) -> Result<Response<ListPodResourcesResponse>, Status> {
        let mut state = lock(&self.0);
        state.calls.push("List");
        Ok(Response::new(ListPodResourcesResponse {
            pod_resources: state.pods.clone(),
        }))
    }

    async fn get_allocatable_resources(
        &self,
        _request: Request<AllocatableResourcesRequest>,
    ) -> Result<Response<AllocatableResourcesResponse>, Status> {
        lock(&self.0).calls.push("GetAllocatableResources");
        Ok(Response::new(AllocatableResourcesResponse::default()))
    }

    async fn get(
        &self,
        request: Request<GetPodResourcesRequest>,
    ) -> Result<Response<GetPodResourcesResponse>, Status> {
        let mut state = lock(&self.0);
        state.calls.push("Get");
        if state.get_unimplemented {
            return Err(Status::unimplemented(
                "Get is not implemented by this kubelet",
            ));
        }
        let want = request.into_inner();
        let pod = state
            .pods
            .iter()
            .find(|p| p.name == want.pod_name && p.namespace == want.pod_namespace)
            .cloned();
        match pod {
            Some(pod) => Ok(Response::new(GetPodResourcesResponse {
                pod_resources: Some(pod),
            })),
            // The kubelet's own answer for a pod it does not know.
            None => Err(Status::not_found(format!(
                "pod {} in namespace {} not found",
                want.pod_name, want.pod_namespace
            ))),
        }
    }
}

/// A running stand-in; dropping it stops the server and removes its socket.
#[derive(Debug)]
pub struct KubeletStandIn {
    socket: PathBuf,
    state: Arc<Mutex<Allocations>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl KubeletStandIn {
    /// Listens on `socket` (made now, so a client may connect as soon as this returns).
    /// Panics if it cannot.
    pub fn start(socket: &Path) -> KubeletStandIn {
        let state = Arc::new(Mutex::new(Allocations::default()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the stand-in kubelet's runtime");
        let listener = {
            let _entered = runtime.enter();
            tokio::net::UnixListener::bind(socket)
                .unwrap_or_else(|e| panic!("listen on {}: {e}", socket.display()))
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let service = PodResourcesListerServer::new(Service(Arc::clone(&state)));
        let thread = std::thread::Builder::new()
            .name("kubelet stand-in".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
                    let served = tonic::transport::Server::builder()
                        .add_service(service)
                        .serve_with_incoming_shutdown(incoming, async {
                            let _ = stopped.await;
                        })
                        .await;
                    if let Err(e) = served {
                        eprintln!("kubelet stand-in: {e}");
                    }
                });
            })
            .expect("the stand-in kubelet's thread");
        KubeletStandIn {
            socket: socket.to_path_buf(),
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The socket it listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The entry of pod `namespace/name`, made if missing.
    fn pod<'a>(state: &'a mut Allocations, namespace: &str, name: &str) -> &'a mut PodResources {
        let at = state
            .pods
            .iter()
            .position(|p| p.namespace == namespace && p.name == name);
        let at = at.unwrap_or_else(|| {
            state.pods.push(PodResources {
                name: name.into(),
                namespace: namespace.into(),
                ..PodResources::default()
            });
            state.pods.len() - 1
        });
        &mut state.pods[at]
    }

    /// The entry of `container` in `pod`, made if missing.
    fn container<'a>(pod: &'a mut PodResources, container: &str) -> &'a mut ContainerResources {
        let at = pod.containers.iter().position(|c| c.name == container);
        let at = at.unwrap_or_else(|| {
            pod.containers.push(ContainerResources {
                name: container.into(),
                ..ContainerResources::default()
            });
            pod.containers.len() - 1
        });
        &mut pod.containers[at]
    }

    /// Allocates device-plugin devices `ids` of `resource` to `container` of pod
    /// `namespace/name`, as the kubelet's device manager does when the container asks for them.
    pub fn allocate(
        &self,
        namespace: &str,
        name: &str,
        container: &str,
        resource: &str,
        ids: &[&str],
    ) {
        let mut state = lock(&self.state);
        let pod = Self::pod(&mut state, namespace, name);
        Self::container(pod, container)
            .devices
            .push(ContainerDevices {
                resource_name: resource.into(),
                device_ids: ids.iter().map(|s| s.to_string()).collect(),
                topology: None,
            });
    }

    /// Reports device `device` of `pool` (driver `driver`), allocated through the claim
    /// `claim` in the pod's namespace, for `container` of pod `namespace/name`: what the
    /// kubelet reports once DRA prepared it.
    pub fn allocate_claim(
        &self,
        namespace: &str,
        name: &str,
        container: &str,
        claim: &str,
        (driver, pool, device): (&str, &str, &str),
    ) {
        let mut state = lock(&self.state);
        let pod = Self::pod(&mut state, namespace, name);
        let container = Self::container(pod, container);
        let resource = ClaimResource {
            cdi_devices: Vec::new(),
            driver_name: driver.into(),
            pool_name: pool.into(),
            device_name: device.into(),
            share_id: None,
        };
        match container
            .dynamic_resources
            .iter_mut()
            .find(|d| d.claim_name == claim && d.claim_namespace == namespace)
        {
            Some(dynamic) => dynamic.claim_resources.push(resource),
            None => container.dynamic_resources.push(DynamicResource {
                claim_name: claim.into(),
                claim_namespace: namespace.into(),
                claim_resources: vec![resource],
            }),
        }
    }

    /// Makes `Get` answer `Unimplemented` (a kubelet before 1.27), or answer again.
    pub fn set_get_unimplemented(&self, unimplemented: bool) {
        lock(&self.state).get_unimplemented = unimplemented;
    }

    /// The methods called so far, in order.
    pub fn calls(&self) -> Vec<&'static str> {
        lock(&self.state).calls.clone()
    }
}

impl Drop for KubeletStandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}
