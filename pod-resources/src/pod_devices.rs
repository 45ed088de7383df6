//! What the kubelet allocated to one pod, by device-plugin resource and by DRA claim.

use std::collections::BTreeMap;

use crate::v1::PodResources;

/// A device allocated to the pod through a DRA ResourceClaim, as the kubelet reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimDevice {
    /// The claim's namespace.
    pub claim_namespace: String,
    /// The claim's name.
    pub claim_name: String,
    /// The DRA driver.
    pub driver: String,
    /// The pool the device belongs to.
    pub pool: String,
    /// The device's name in its pool.
    pub device: String,
}

/// The devices of one pod: device-plugin resources (resource name to device IDs, sorted as
/// Multus sorts them, so the NADs of one resource take them in a stable order) and the
/// devices of its DRA claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodDevices {
    /// Device IDs by resource name, each list sorted, every container's together.
    pub resources: BTreeMap<String, Vec<String>>,
    /// Devices of DRA claims, in the order the kubelet listed them.
    pub claims: Vec<ClaimDevice>,
}

impl PodDevices {
    /// Adds `ids` to `resource`'s devices, keeping them sorted.
    pub(crate) fn add(&mut self, resource: &str, ids: impl IntoIterator<Item = String>) {
        let devices = self.resources.entry(resource.to_string()).or_default();
        devices.extend(ids);
        devices.sort();
    }

    /// The devices of a pod as the PodResources API reports it: every container's.
    pub(crate) fn from_pod_resources(pod: &PodResources) -> PodDevices {
        let mut devices = PodDevices::default();
        for container in &pod.containers {
            for d in &container.devices {
                devices.add(&d.resource_name, d.device_ids.iter().cloned());
            }
            for dynamic in &container.dynamic_resources {
                for r in &dynamic.claim_resources {
                    let device = ClaimDevice {
                        claim_namespace: dynamic.claim_namespace.clone(),
                        claim_name: dynamic.claim_name.clone(),
                        driver: r.driver_name.clone(),
                        pool: r.pool_name.clone(),
                        device: r.device_name.clone(),
                    };
                    // A claim shared by several containers is listed under each of them.
                    if !devices.claims.contains(&device) {
                        devices.claims.push(device);
                    }
                }
            }
        }
        devices
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{ContainerDevices, ContainerResources};

    #[test]
    fn every_containers_devices_sorted_by_resource() {
        let container = |name: &str, res: &str, ids: &[&str]| ContainerResources {
            name: name.into(),
            devices: vec![ContainerDevices {
                resource_name: res.into(),
                device_ids: ids.iter().map(|s| s.to_string()).collect(),
                topology: None,
            }],
            ..Default::default()
        };
        let pod = PodResources {
            name: "p".into(),
            namespace: "default".into(),
            containers: vec![
                container("a", "intel.com/sriov", &["0000:03:02.3", "0000:03:02.0"]),
                container("b", "intel.com/sriov", &["0000:03:02.1"]),
                container("b", "example.com/dpdk", &["vf9"]),
            ],
            ..Default::default()
        };
        let devices = PodDevices::from_pod_resources(&pod);
        assert_eq!(
            devices.resources["intel.com/sriov"],
            ["0000:03:02.0", "0000:03:02.1", "0000:03:02.3"]
        );
        assert_eq!(devices.resources["example.com/dpdk"], ["vf9"]);
        assert!(devices.claims.is_empty());
    }
}
