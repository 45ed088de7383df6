//! The devices allocated to the pod, handed out to the NADs that name their resource: those
//! of its DRA ResourceClaims (the allocated devices whose ResourceSlice entries carry
//! `k8s.cni.cncf.io/resourceName` and `k8s.cni.cncf.io/deviceID`, as Multus maps them), then
//! the device-plugin devices the kubelet reports (the PodResources API, or the device
//! manager's checkpoint when the socket is absent or does not answer), asked only when a
//! resource is not a claim's. Several NADs of one resource take its devices in order.

use std::collections::HashMap;

use cni::Request;

use super::device::ClaimDevice;
use super::dra;
use crate::meta::config::MetaConf;
use crate::meta::error::DeviceError;
use crate::meta::pod_object::PodObject;
use crate::meta::source::Source;

/// A device ID and the claim it was allocated through, if any.
type Allocated = (String, Option<ClaimDevice>);

/// The pod's devices by resource, and how many of each were handed out.
pub(crate) struct Allocations<'a> {
    conf: &'a MetaConf,
    req: &'a Request,
    namespace: &'a str,
    by_resource: HashMap<String, Vec<Allocated>>,
    kubelet_asked: bool,
    taken: HashMap<String, usize>,
}

impl<'a> Allocations<'a> {
    /// The devices of the pod's claims, read now; the kubelet is asked when first needed.
    pub(crate) fn new(
        conf: &'a MetaConf,
        req: &'a Request,
        source: &Source<'_>,
        pod: Option<&PodObject>,
        namespace: &'a str,
    ) -> Result<Allocations<'a>, DeviceError> {
        let mut by_resource: HashMap<String, Vec<Allocated>> = HashMap::new();
        if let Some(pod) = pod.filter(|p| !p.resource_claims.is_empty()) {
            for (resource, id, claim) in dra::allocations(source, namespace, &pod.resource_claims)?
            {
                by_resource
                    .entry(resource)
                    .or_default()
                    .push((id, Some(claim)));
            }
            // Sorted as the device plugins' are, so the order never depends on the API's.
            for devices in by_resource.values_mut() {
                devices.sort_by(|a, b| a.0.cmp(&b.0));
            }
        }
        Ok(Allocations {
            conf,
            req,
            namespace,
            by_resource,
            kubelet_asked: false,
            taken: HashMap::new(),
        })
    }

    /// The next device of `resource` for `network`.
    pub(crate) fn take(&mut self, network: &str, resource: &str) -> Result<Allocated, DeviceError> {
        if !self.by_resource.contains_key(resource) && !self.kubelet_asked {
            self.kubelet_asked = true;
            let devices = self.ask_kubelet(network, resource)?;
            for (resource, ids) in devices.resources {
                let entry = self.by_resource.entry(resource).or_default();
                entry.extend(ids.into_iter().map(|id| (id, None)));
            }
        }
        let devices = self
            .by_resource
            .get(resource)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let taken = self.taken.entry(resource.to_string()).or_default();
        let device = devices.get(*taken).ok_or_else(|| DeviceError::Exhausted {
            network: network.to_string(),
            resource: resource.to_string(),
            allocated: devices.len(),
        })?;
        *taken += 1;
        Ok(device.clone())
    }

    /// The device-plugin devices of the pod `req` names; `network` and `resource` name the
    /// attachment that needs one, for the error when no pod is named.
    fn ask_kubelet(
        &self,
        network: &str,
        resource: &str,
    ) -> Result<pod_resources::PodDevices, DeviceError> {
        let (conf, req) = (self.conf, self.req);
        let name = req
            .inv
            .args
            .get("K8S_POD_NAME")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| DeviceError::NoPod {
                network: network.to_string(),
                resource: resource.to_string(),
            })?;
        // Multus asks the API when its socket exists, else reads the checkpoint.
        let api = if conf.pod_resources_socket.exists() {
            match pod_resources::pod_devices(
                &conf.pod_resources_socket,
                self.namespace,
                name,
                conf.api_timeout,
            ) {
                Ok(devices) => return Ok(devices),
                Err(e) => {
                    tracing::warn!("{e}: trying the device-plugin checkpoint");
                    Some(Box::new(e))
                }
            }
        } else {
            None
        };
        let Some(uid) = req.inv.args.get("K8S_POD_UID").filter(|u| !u.is_empty()) else {
            return Err(DeviceError::Unavailable {
                api,
                checkpoint: None,
            });
        };
        pod_resources::checkpoint_devices(&conf.device_checkpoint, uid).map_err(|e| {
            DeviceError::Unavailable {
                api,
                checkpoint: Some(Box::new(e)),
            }
        })
    }
}
