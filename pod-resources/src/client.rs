//! The PodResources v1 client: one `Get` for the pod (kubelet 1.27 on), or `List` filtered to
//! it when the kubelet does not implement `Get`, on a current-thread runtime made for the
//! call, over the kubelet's Unix socket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use crate::error::PodResourcesError;
use crate::pod_devices::PodDevices;
use crate::v1::pod_resources_lister_client::PodResourcesListerClient;
use crate::v1::{GetPodResourcesRequest, ListPodResourcesRequest};

/// The kubelet's pod-resources socket.
pub const DEFAULT_SOCKET: &str = "/var/lib/kubelet/pod-resources/kubelet.sock";

/// The largest answer taken: a `List` on a busy node is large (Multus takes 16 MiB too).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The devices the kubelet allocated to pod `namespace/name`, asked on `socket`; each step
/// (connect, each request) bounded by `timeout`. A pod the kubelet does not know has none.
pub fn pod_devices(
    socket: &Path,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<PodDevices, PodResourcesError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| PodResourcesError::Runtime { source })?;
    runtime.block_on(ask(socket, namespace, name, timeout))
}

async fn connect(socket: &Path, timeout: Duration) -> Result<Channel, PodResourcesError> {
    let path: PathBuf = socket.to_path_buf();
    // The URI is a placeholder: the connector below always dials the socket.
    Endpoint::from_static("http://kubelet.invalid")
        .connect_timeout(timeout)
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|source| PodResourcesError::Connect {
            socket: socket.to_path_buf(),
            source,
        })
}

async fn ask(
    socket: &Path,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<PodDevices, PodResourcesError> {
    let channel = connect(socket, timeout).await?;
    let mut client = PodResourcesListerClient::new(channel).max_decoding_message_size(MAX_MESSAGE);
    let failed = |method: &'static str| {
        move |status: tonic::Status| PodResourcesError::Call {
            socket: socket.to_path_buf(),
            method,
            status: Box::new(status),
        }
    };
    let timed_out = |method: &'static str| PodResourcesError::Timeout {
        socket: socket.to_path_buf(),
        method,
        timeout,
    };
    let request = GetPodResourcesRequest {
        pod_name: name.to_string(),
        pod_namespace: namespace.to_string(),
    };
    let got = tokio::time::timeout(timeout, client.get(request))
        .await
        .map_err(|_| timed_out("Get"))?;
    match got {
        Ok(answer) => Ok(answer
            .into_inner()
            .pod_resources
            .map(|pod| PodDevices::from_pod_resources(&pod))
            .unwrap_or_default()),
        // A kubelet before 1.27 (or with the Get feature gate off) only lists.
        Err(status) if status.code() == Code::Unimplemented => {
            let listed = tokio::time::timeout(timeout, client.list(ListPodResourcesRequest {}))
                .await
                .map_err(|_| timed_out("List"))?
                .map_err(failed("List"))?;
            Ok(listed
                .into_inner()
                .pod_resources
                .iter()
                .find(|pod| pod.name == name && pod.namespace == namespace)
                .map(PodDevices::from_pod_resources)
                .unwrap_or_default())
        }
        // The kubelet answers NotFound for a pod it does not know (yet): nothing allocated.
        Err(status) if status.code() == Code::NotFound => Ok(PodDevices::default()),
        Err(status) => Err(failed("Get")(status)),
    }
}
