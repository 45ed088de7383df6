//! DRA: the devices of the pod's ResourceClaims, and what the claims are told after ADD.
//!
//! A claim's name is its `spec.resourceClaims[].resourceClaimName`, or for one made from a
//! template the name `status.resourceClaimStatuses` gives. Each allocation result of a claim
//! (`status.allocation.devices.results[]`: driver, pool, device) is looked up in the driver's
//! ResourceSlices; a device whose attributes hold `k8s.cni.cncf.io/resourceName` and
//! `k8s.cni.cncf.io/deviceID` serves the NADs of that resource name with that device ID, as
//! Multus maps them (other devices, a GPU say, are skipped). After ADD, each claim's
//! `status.devices[]` gets the `networkData` of its devices' interfaces (interface name,
//! addresses in CIDR form, MAC) in one merge patch per claim, which Multus never writes.

use std::collections::BTreeMap;

use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};

use serde_json::{json, Value};

use super::device::ClaimDevice;
use crate::meta::attachment::Attachment;
use crate::meta::error::{DeviceError, SourceError};
use crate::meta::source::Source;

/// The device attribute naming the NAD resource a device serves.
const RESOURCE_NAME_ATTRIBUTE: &str = "k8s.cni.cncf.io/resourceName";
/// The device attribute holding the ID the delegate gets.
const DEVICE_ID_ATTRIBUTE: &str = "k8s.cni.cncf.io/deviceID";

/// A string attribute of a device.
fn string_attribute(
    attributes: Option<&BTreeMap<String, k8s_openapi::api::resource::v1::DeviceAttribute>>,
    name: &str,
) -> Option<String> {
    attributes?.get(name)?.string.clone()
}

/// `(resource name, device ID, claim device)` of every CNI device of the claims `names` in
/// `namespace`.
pub(crate) fn allocations(
    source: &Source<'_>,
    namespace: &str,
    names: &[String],
) -> Result<Vec<(String, String, ClaimDevice)>, DeviceError> {
    let failed = |claim: &str| {
        let claim = format!("{namespace}/{claim}");
        move |source: SourceError| DeviceError::Claim {
            claim,
            source: Box::new(source),
        }
    };
    let mut slices: BTreeMap<String, Vec<ResourceSlice>> = BTreeMap::new();
    let mut found = Vec::new();
    for name in names {
        let claim: ResourceClaim = source
            .resource_claim(namespace, name)
            .map_err(failed(name))?
            .ok_or_else(|| DeviceError::ClaimMissing {
                claim: format!("{namespace}/{name}"),
            })?;
        let results = claim
            .status
            .and_then(|s| s.allocation)
            .and_then(|a| a.devices)
            .and_then(|d| d.results)
            .ok_or_else(|| DeviceError::ClaimUnallocated {
                claim: format!("{namespace}/{name}"),
            })?;
        for result in results {
            if !slices.contains_key(&result.driver) {
                let listed = source
                    .resource_slices(&result.driver)
                    .map_err(failed(name))?;
                slices.insert(result.driver.clone(), listed);
            }
            let device = slices[&result.driver]
                .iter()
                .filter(|s| s.spec.driver == result.driver && s.spec.pool.name == result.pool)
                .flat_map(|s| s.spec.devices.iter().flatten())
                .find(|d| d.name == result.device);
            let attributes = device.and_then(|d| d.attributes.as_ref());
            let (Some(resource), Some(id)) = (
                string_attribute(attributes, RESOURCE_NAME_ATTRIBUTE),
                string_attribute(attributes, DEVICE_ID_ATTRIBUTE),
            ) else {
                tracing::info!(
                    "claim {namespace}/{name}: device {}/{}/{} is no CNI device: skipped",
                    result.driver,
                    result.pool,
                    result.device
                );
                continue;
            };
            found.push((
                resource,
                id,
                ClaimDevice {
                    namespace: namespace.to_string(),
                    claim: name.clone(),
                    driver: result.driver,
                    pool: result.pool,
                    device: result.device,
                },
            ));
        }
    }
    Ok(found)
}

/// `networkData` of `att`'s interface: its name, its addresses (CIDR) and MAC, from the
/// ADD result.
fn network_data(att: &Attachment) -> Value {
    let Some(result) = att.cached_result() else {
        return json!({"interfaceName": att.ifname});
    };
    let index = result
        .interfaces
        .iter()
        .position(|i| !i.sandbox.is_empty() && i.name == att.ifname);
    let ips: Vec<String> = result
        .ips
        .iter()
        .filter(|ip| index.is_none() || ip.interface == index)
        .map(|ip| ip.address.to_string())
        .collect();
    let mut data = json!({"interfaceName": att.ifname});
    if !ips.is_empty() {
        data["ips"] = json!(ips);
    }
    if let Some(mac) = index
        .map(|i| &result.interfaces[i].mac)
        .filter(|m| !m.is_empty())
    {
        data["hardwareAddress"] = json!(mac);
    }
    data
}

/// After ADD: each claim whose devices the attachments got is told their `networkData`, in
/// one merge patch of its status (every other entry and field kept, guarded by its
/// `resourceVersion`).
pub(crate) fn publish_network_data(
    source: &Source<'_>,
    attachments: &[Attachment],
) -> Result<(), SourceError> {
    let mut by_claim: BTreeMap<(String, String), Vec<(&ClaimDevice, Value)>> = BTreeMap::new();
    for att in attachments {
        if let Some(claim) = att.device.as_ref().and_then(|d| d.claim.as_ref()) {
            by_claim
                .entry((claim.namespace.clone(), claim.claim.clone()))
                .or_default()
                .push((claim, network_data(att)));
        }
    }
    for ((namespace, name), ours) in by_claim {
        let Some(current) = source.resource_claim(&namespace, &name)? else {
            continue;
        };
        let ours_for = |driver: &str, pool: &str, device: &str| {
            ours.iter()
                .find(|(c, _)| c.driver == driver && c.pool == pool && c.device == device)
        };
        // The list is replaced whole by a merge patch: every entry is sent, an entry of
        // ours keeps what the driver wrote (conditions, data) with networkData set.
        let existing = current.status.and_then(|s| s.devices).unwrap_or_default();
        let mut devices: Vec<Value> = Vec::with_capacity(existing.len() + ours.len());
        for entry in &existing {
            let mut value = serde_json::to_value(entry).expect("a decoded status encodes");
            if let Some((_, data)) = ours_for(&entry.driver, &entry.pool, &entry.device) {
                value["networkData"] = data.clone();
            }
            devices.push(value);
        }
        for (c, data) in &ours {
            let listed = existing
                .iter()
                .any(|e| e.driver == c.driver && e.pool == c.pool && e.device == c.device);
            if !listed {
                devices.push(
                    json!({"driver": c.driver, "pool": c.pool, "device": c.device,
                                    "networkData": data}),
                );
            }
        }
        let patch = json!({
            "metadata": {"resourceVersion": current.metadata.resource_version},
            "status": {"devices": devices}
        });
        source.patch_resource_claim_status(&namespace, &name, &patch)?;
    }
    Ok(())
}
