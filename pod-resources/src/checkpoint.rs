//! The kubelet device manager's checkpoint (`kubelet_internal_checkpoint`): the fallback when
//! the PodResources socket is absent, read as Multus reads it. Entries are keyed by pod UID.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::CheckpointError;
use crate::pod_devices::PodDevices;

/// Where the kubelet keeps it.
pub const DEFAULT_CHECKPOINT: &str = "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint";

/// The file: `{"Data": {"PodDeviceEntries": [...], "RegisteredDevices": {...}}, "Checksum": n}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CheckpointFile {
    data: CheckpointData,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CheckpointData {
    #[serde(default)]
    pod_device_entries: Vec<PodDevicesEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PodDevicesEntry {
    #[serde(rename = "PodUID")]
    pod_uid: String,
    resource_name: String,
    #[serde(rename = "DeviceIDs")]
    device_ids: DeviceIds,
}

/// Device IDs by NUMA node (kubelet 1.20 on, `{"-1": [...]}`), or one list (before).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DeviceIds {
    ByNode(BTreeMap<String, Vec<String>>),
    Flat(Vec<String>),
}

impl DeviceIds {
    fn into_ids(self) -> Vec<String> {
        match self {
            DeviceIds::ByNode(nodes) => nodes.into_values().flatten().collect(),
            DeviceIds::Flat(ids) => ids,
        }
    }
}

/// The device-plugin devices of the pod with UID `pod_uid`, from the checkpoint at `path`.
/// DRA claims are not in the checkpoint: `claims` stays empty.
pub fn checkpoint_devices(path: &Path, pod_uid: &str) -> Result<PodDevices, CheckpointError> {
    let text = std::fs::read(path).map_err(|source| CheckpointError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file: CheckpointFile =
        serde_json::from_slice(&text).map_err(|source| CheckpointError::Decode {
            path: path.to_path_buf(),
            source,
        })?;
    let mut devices = PodDevices::default();
    for entry in file.data.pod_device_entries {
        if entry.pod_uid == pod_uid {
            devices.add(&entry.resource_name, entry.device_ids.into_ids());
        }
    }
    Ok(devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "970a395d-bb3b-11e8-89df-408d5c537d23";

    #[test]
    fn the_pods_entries_by_resource_in_both_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubelet_internal_checkpoint");
        let file = serde_json::json!({"Data": {"PodDeviceEntries": [
            {"PodUID": UID, "ContainerName": "app", "ResourceName": "intel.com/sriov_a",
             "DeviceIDs": {"-1": ["0000:03:02.3", "0000:03:02.0"]}, "AllocResp": "Cik="},
            {"PodUID": UID, "ContainerName": "side", "ResourceName": "intel.com/sriov_a",
             "DeviceIDs": {"0": ["0000:03:02.1"]}, "AllocResp": ""},
            {"PodUID": UID, "ContainerName": "app", "ResourceName": "example.com/old",
             "DeviceIDs": ["b", "a"], "AllocResp": ""},
            {"PodUID": "other", "ContainerName": "app", "ResourceName": "intel.com/sriov_a",
             "DeviceIDs": {"-1": ["0000:03:02.7"]}, "AllocResp": ""}],
            "RegisteredDevices": {"intel.com/sriov_a": ["0000:03:02.0"]}},
            "Checksum": 1234});
        std::fs::write(&path, file.to_string()).unwrap();
        let devices = checkpoint_devices(&path, UID).unwrap();
        assert_eq!(
            devices.resources["intel.com/sriov_a"],
            ["0000:03:02.0", "0000:03:02.1", "0000:03:02.3"]
        );
        assert_eq!(devices.resources["example.com/old"], ["a", "b"]);
        assert_eq!(devices.resources.len(), 2);
        assert!(checkpoint_devices(&path, "nobody")
            .unwrap()
            .resources
            .is_empty());
    }

    #[test]
    fn a_missing_or_foreign_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        let e = checkpoint_devices(&path, UID).unwrap_err();
        assert!(matches!(e, CheckpointError::Read { .. }), "{e}");
        std::fs::write(&path, "{\"Data\": 3}").unwrap();
        let e = checkpoint_devices(&path, UID).unwrap_err();
        assert!(e.to_string().contains("cp"), "{e}");
        assert!(matches!(e, CheckpointError::Decode { .. }), "{e}");
    }
}
