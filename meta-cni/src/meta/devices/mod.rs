//! Devices of attachments: a NAD's `k8s.v1.cni.cncf.io/resourceName` mapped to the device the
//! pod was allocated (by a DRA ResourceClaim, else by a device plugin through the kubelet:
//! Multus's behaviour), or a selection's `deviceID`; the device
//! ID handed to the delegates (`deviceID` and `pciBusID` in every plugin's netconf, the
//! `deviceID` capability), and the device-info files of the device-info spec 1.1.0 (the
//! device plugin's, copied for the delegates as `CNIDeviceInfoFile`, read back for
//! network-status, removed on DEL).

mod allocations;
mod device;
mod dra;
mod info_file;

pub(crate) use allocations::Allocations;
pub(crate) use device::Device;
pub(crate) use dra::publish_network_data;
