//! The devices the kubelet allocated to a pod, as a CNI plugin learns them: from the
//! kubelet's PodResources v1 gRPC API (`Get`, or `List` on a kubelet without `Get`) on its
//! pod-resources socket, else from the device manager's checkpoint file, as Multus does.
//!
//! The API's messages and client are generated at build time from the kubelet's own proto
//! (`proto/k8s.io/kubelet/pkg/apis/podresources/v1/api.proto`); with the `server` feature the
//! server trait too, for stand-ins of the kubelet in tests.

mod checkpoint;
mod client;
mod error;
mod pod_devices;

/// The PodResources v1 API, generated from the kubelet's proto (package `v1`).
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod v1 {
    tonic::include_proto!("v1");
}

pub use checkpoint::{checkpoint_devices, DEFAULT_CHECKPOINT};
pub use client::{pod_devices, DEFAULT_SOCKET};
pub use error::{CheckpointError, PodResourcesError};
pub use pod_devices::{ClaimDevice, PodDevices};
