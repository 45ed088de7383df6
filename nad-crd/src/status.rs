//! The `k8s.v1.cni.cncf.io/network-status` pod annotation: what each attachment got, written
//! by the meta plugin after ADD in one merge patch.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::annotations::NETWORK_STATUS_ANNOTATION;

/// One sandbox interface of one attachment. Field names, order and omissions are Multus's, so
/// tools that read Multus's annotation read ours.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkStatus {
    /// `namespace/nad-name` (the cluster network: its netconf name).
    pub name: String,
    /// The interface name in the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The interface's addresses, without prefix length.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    /// The interface's MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The interface's MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Set on the cluster network's entry only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub default: bool,
    /// The attachment's DNS settings. Always written, `{}` when empty, as Multus does;
    /// absence decodes as empty.
    #[serde(default)]
    pub dns: Dns,
    /// Device details from the delegate (e.g. SR-IOV PCI address), passed on as given.
    #[serde(
        rename = "device-info",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub device_info: Option<Value>,
    /// The gateways of the attachment's default routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway: Vec<String>,
}

/// DNS settings: exactly a CNI result's.
pub use cni::Dns;

impl NetworkStatus {
    /// Renders `statuses` as the annotation's value: a JSON list indented by four spaces, the
    /// layout Multus writes, so `kubectl describe pod` looks the same.
    pub fn annotation_value(statuses: &[NetworkStatus]) -> String {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        statuses
            .serialize(&mut serializer)
            .expect("statuses have only string keys and write to memory");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// Decodes an annotation value written by meta-cni or Multus.
    pub fn parse_annotation(value: &str) -> Result<Vec<NetworkStatus>, serde_json::Error> {
        serde_json::from_str(value)
    }
}

/// The JSON merge-patch body that sets the pod's `network-status` annotation to `statuses`
/// and touches nothing else: `{"metadata":{"annotations":{"k8s.v1.cni.cncf.io/network-status":
/// "<json>"}}}`.
pub fn network_status_patch(statuses: &[NetworkStatus]) -> Value {
    json!({
        "metadata": {
            "annotations": {
                NETWORK_STATUS_ANNOTATION: NetworkStatus::annotation_value(statuses)
            }
        }
    })
}

fn is_false(value: &bool) -> bool {
    !value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Vec<NetworkStatus> {
        vec![
            NetworkStatus {
                name: "cbr0".to_owned(),
                interface: Some("eth0".to_owned()),
                ips: vec!["10.244.1.6".to_owned(), "fd00:10:244:1::6".to_owned()],
                mac: Some("0a:58:0a:f4:01:06".to_owned()),
                mtu: Some(1450),
                default: true,
                dns: Dns::default(),
                device_info: None,
                gateway: vec!["10.244.1.1".to_owned()],
            },
            NetworkStatus {
                name: "default/macvlan-conf".to_owned(),
                interface: Some("net1".to_owned()),
                ips: vec!["192.168.1.205".to_owned()],
                mac: Some("86:1d:96:ff:55:0d".to_owned()),
                dns: Dns {
                    nameservers: vec!["192.168.1.1".to_owned()],
                    domain: Some("example.internal".to_owned()),
                    search: vec!["example.internal".to_owned()],
                    options: vec!["ndots:2".to_owned()],
                },
                ..NetworkStatus::default()
            },
            NetworkStatus {
                name: "sriov/sriov-net".to_owned(),
                interface: Some("data0".to_owned()),
                device_info: Some(json!({
                    "type": "pci",
                    "version": "1.1.0",
                    "pci": {"pci-address": "0000:03:02.0"}
                })),
                ..NetworkStatus::default()
            },
        ]
    }

    #[test]
    fn three_entry_status_snapshot() {
        insta::assert_snapshot!(
            "network_status_value",
            NetworkStatus::annotation_value(&three())
        );
    }

    #[test]
    fn patch_snapshot() {
        insta::assert_json_snapshot!("network_status_patch", network_status_patch(&three()));
    }

    #[test]
    fn the_annotation_reads_back() {
        let statuses = three();
        let value = NetworkStatus::annotation_value(&statuses);
        assert_eq!(NetworkStatus::parse_annotation(&value).unwrap(), statuses);
        let patch = network_status_patch(&statuses);
        let written = patch["metadata"]["annotations"][NETWORK_STATUS_ANNOTATION]
            .as_str()
            .unwrap();
        assert_eq!(written, value);
    }

    #[test]
    fn reads_what_multus_writes() {
        let multus = r#"[{
            "name": "cbr0",
            "ips": ["10.244.1.73"],
            "default": true,
            "dns": {}
        },{
            "name": "macvlan-conf",
            "interface": "net1",
            "ips": ["192.168.1.205"],
            "mac": "86:1d:96:ff:55:0d",
            "dns": {},
            "some-newer-field": 1
        }]"#;
        let statuses = NetworkStatus::parse_annotation(multus).unwrap();
        assert_eq!(statuses.len(), 2);
        assert!(statuses[0].default);
        assert_eq!(statuses[1].interface.as_deref(), Some("net1"));
        assert_eq!(
            serde_json::to_string(&statuses[0]).unwrap(),
            r#"{"name":"cbr0","ips":["10.244.1.73"],"default":true,"dns":{}}"#
        );
    }
}
