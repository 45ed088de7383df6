//! The device of one attachment, fixed at plan time and cached: its ID, the resource it was
//! allocated from, its device-info files, and the device-info read back after ADD.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::info_file;
use crate::meta::config::MetaConf;

/// An attachment's device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Device {
    /// The device ID (a PCI address, a netdev or vhost-user socket name, ...).
    pub(crate) id: String,
    /// The device-plugin resource it was allocated from; none for a selection's `deviceID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) resource: Option<String>,
    /// The device plugin's device-info file for it (device-plugin devices only).
    #[serde(
        rename = "dpInfoFile",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) dp_info_file: Option<PathBuf>,
    /// `CNIDeviceInfoFile`: the device-info file of this attachment, removed on DEL.
    #[serde(rename = "cniInfoFile")]
    pub(crate) cni_info_file: PathBuf,
    /// The device-info read back after ADD, for network-status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) info: Option<Value>,
    /// The DRA claim it was allocated through, told the interface's network data after ADD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) claim: Option<ClaimDevice>,
}

impl Device {
    /// Device `id` (from `resource`, if allocated from one; add the claim with
    /// [`Device::through`]) for interface `ifname` on `network`, with its files under
    /// `conf`'s `deviceInfoDir`.
    pub(crate) fn new(
        conf: &MetaConf,
        container_id: &str,
        (network, ifname): (&str, &str),
        id: String,
        resource: Option<String>,
    ) -> Device {
        let dir = &conf.device_info_dir;
        Device {
            dp_info_file: resource.as_deref().map(|r| info_file::dp_file(dir, r, &id)),
            cni_info_file: info_file::cni_file(dir, network, container_id, ifname),
            id,
            resource,
            info: None,
            claim: None,
        }
    }

    /// The device, allocated through `claim` (DRA).
    pub(crate) fn through(mut self, claim: Option<ClaimDevice>) -> Device {
        self.claim = claim;
        self
    }

    /// Before ADD: `CNIDeviceInfoFile`'s directory made, so a delegate can write its
    /// device-info there, and the device plugin's device-info, if it wrote any, copied to it,
    /// where delegates read (and may rewrite) it. As with Multus, a file that cannot be
    /// copied only costs the device-info; the attachment goes on.
    pub(crate) fn prepare(&self) {
        let made = info_file::make_dir(&self.cni_info_file);
        let copied = made.and_then(|()| match &self.dp_info_file {
            Some(dp) => match info_file::read(dp)? {
                Some(info) => info_file::write(&self.cni_info_file, &info),
                None => Ok(()),
            },
            None => Ok(()),
        });
        if let Err(e) = copied {
            tracing::warn!("device-info {}: {e}", self.cni_info_file.display());
        }
    }

    /// After ADD: the device-info the device plugin or the delegates left, kept for
    /// network-status. A file that is not device-info is logged and left out.
    pub(crate) fn read_back(&mut self) {
        self.info = info_file::read(&self.cni_info_file).unwrap_or_else(|e| {
            tracing::warn!("device-info {}: {e}", self.cni_info_file.display());
            None
        });
    }

    /// After DEL: the attachment's device-info file removed.
    pub(crate) fn remove_info(&self) -> std::io::Result<()> {
        info_file::remove(&self.cni_info_file)
    }
}

/// A device allocated through a claim: the claim, and the device as the allocation names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClaimDevice {
    /// The claim's namespace.
    pub(crate) namespace: String,
    /// The claim's name.
    pub(crate) claim: String,
    /// The DRA driver.
    pub(crate) driver: String,
    /// The pool.
    pub(crate) pool: String,
    /// The device's name in the pool.
    pub(crate) device: String,
}
