//! The `network-status` entries of a pod: one per sandbox interface of each attachment, as
//! Multus writes them, from the delegates' final results (default routes already moved), with
//! the attachment's device-info (its `CNIDeviceInfoFile`, else a result interface's `pciID`).

use std::net::IpAddr;

use serde_json::json;

use cni::CniResult;
use nad_crd::NetworkStatus;

use super::attachment::Attachment;

/// Multus's device-info for a PCI device (its `device-info` spec, version 1.1.0).
fn device_info(pci: &str) -> serde_json::Value {
    json!({"type": "pci", "version": "1.1.0", "pci": {"pci-address": pci}})
}

/// The gateways of `result`'s default routes.
fn default_gateways(result: &CniResult) -> Vec<String> {
    result
        .routes
        .iter()
        .filter(|r| r.dst.prefix_len() == 0)
        .filter_map(|r| r.gw.map(|gw: IpAddr| gw.to_string()))
        .collect()
}

/// One entry per sandbox interface (an attachment whose result names none gets one entry
/// under its planned interface name), in attachment order.
pub(crate) fn of(attachments: &[Attachment]) -> Vec<NetworkStatus> {
    let mut statuses = Vec::new();
    for att in attachments {
        let Some(result) = att.cached_result() else {
            continue;
        };
        let gateway = default_gateways(result);
        let ips_of = |index: Option<usize>| -> Vec<String> {
            result
                .ips
                .iter()
                .filter(|ip| index.is_none() || ip.interface == index)
                .map(|ip| ip.address.addr().to_string())
                .collect()
        };
        let file_info = att.device.as_ref().and_then(|d| d.info.clone());
        let base = NetworkStatus {
            name: att.network.clone(),
            default: att.cluster,
            dns: result.dns.clone(),
            gateway,
            ..NetworkStatus::default()
        };
        let sandboxed: Vec<(usize, &cni::Interface)> = result
            .interfaces
            .iter()
            .enumerate()
            .filter(|(_, i)| !i.sandbox.is_empty())
            .collect();
        // A userspace device (DPDK, vhost-user, memif) has no kernel interface: the entry
        // still names the planned interface and carries the device-info its user needs.
        if sandboxed.is_empty() {
            statuses.push(NetworkStatus {
                interface: Some(att.ifname.clone()),
                ips: ips_of(None),
                device_info: file_info,
                ..base
            });
            continue;
        }
        for (index, iface) in sandboxed {
            statuses.push(NetworkStatus {
                interface: Some(iface.name.clone()),
                ips: ips_of(Some(index)),
                mac: Some(iface.mac.clone()).filter(|m| !m.is_empty()),
                mtu: iface.mtu,
                device_info: file_info
                    .clone()
                    .or_else(|| iface.pci_id.as_deref().map(device_info)),
                ..base.clone()
            });
        }
    }
    statuses
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value};

    use super::*;
    use crate::meta::attachment::ListResult;

    fn attachment(network: &str, ifname: &str, cluster: bool, result: Value) -> Attachment {
        let (result, version) = CniResult::from_labelled(result).unwrap();
        Attachment {
            network: network.into(),
            ifname: ifname.into(),
            cluster,
            conf: cni::ConfList::default(),
            runtime_config: Map::new(),
            cni_args: cni::CniArgs::default(),
            default_route: Vec::new(),
            result: Some(ListResult { result, version }),
            device: None,
        }
    }

    #[test]
    fn one_entry_per_sandbox_interface_cluster_marked_default() {
        let attachments = [
            attachment(
                "cluster",
                "eth0",
                true,
                json!({"cniVersion": "1.0.0",
                "interfaces": [{"name": "br0", "mac": "02:00:00:00:00:01"},
                               {"name": "veth1", "mac": "02:00:00:00:00:02"},
                               {"name": "eth0", "mac": "0a:58:0a:0a:00:02", "sandbox": "/run/netns/p"}],
                "ips": [{"address": "10.10.0.2/24", "gateway": "10.10.0.1", "interface": 2}],
                "routes": [{"dst": "0.0.0.0/0", "gw": "10.10.0.1"}],
                "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]}}),
            ),
            attachment(
                "default/net-a",
                "net1",
                false,
                json!({"cniVersion": "1.1.0",
                "interfaces": [{"name": "net1", "mac": "0a:58:0a:0a:01:02", "mtu": 9000,
                                "sandbox": "/run/netns/p", "pciID": "0000:03:00.1"}],
                "ips": [{"address": "10.10.1.2/24", "interface": 0},
                        {"address": "fd00::2/64", "interface": 0}]}),
            ),
            attachment("default/l2", "net2", false, json!({"cniVersion": "1.0.0"})),
        ];
        insta::assert_json_snapshot!(of(&attachments));
    }

    #[test]
    fn the_attachments_device_info_wins_and_reaches_an_entry_without_interfaces() {
        let device = |id: &str, info: Value| crate::meta::devices::Device {
            id: id.into(),
            resource: Some("example.com/vf".into()),
            dp_info_file: None,
            cni_info_file: "/run/devinfo/cni/x".into(),
            info: Some(info),
            claim: None,
        };
        let vf = json!({"type": "pci", "version": "1.1.0", "pci": {"pci-address": "0000:81:00.2",
            "pf-pci-address": "0000:81:00.0"}});
        let vhost = json!({"type": "vhost-user", "version": "1.1.0",
            "vhost-user": {"mode": "server", "path": "/run/vhost/vhu-3.sock"}});
        let mut with_pci_id = attachment(
            "default/data-a",
            "data0",
            false,
            json!({"cniVersion": "1.1.0",
                "interfaces": [{"name": "data0", "sandbox": "/run/netns/p", "pciID": "0000:81:00.2"}]}),
        );
        with_pci_id.device = Some(device("0000:81:00.2", vf.clone()));
        let mut userspace = attachment(
            "default/dpdk",
            "dpdk0",
            false,
            json!({"cniVersion": "1.0.0"}),
        );
        userspace.device = Some(device("vhu-3", vhost.clone()));
        let statuses = of(&[with_pci_id, userspace]);
        assert_eq!(statuses.len(), 2);
        assert_eq!(statuses[0].device_info, Some(vf));
        assert_eq!(statuses[1].interface.as_deref(), Some("dpdk0"));
        assert_eq!(statuses[1].device_info, Some(vhost));
    }
}
