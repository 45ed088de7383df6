//! The bridge netconfs the suite runs (`tests/bridge.rs`, statements 20-28), shared by the
//! tests that check each against ours and the reference, and by the differential
//! kernel-state test (`tests/bridge_kernel_state.rs`) that compares what they leave.

use std::path::Path;

use serde_json::{json, Value};

/// The network name of every bridge scenario.
pub const NET: &str = "br-net";
/// The bridge every scenario uses.
pub const BR: &str = "cnitest0";
/// The IPAM subnet unless a scenario names another.
pub const SUBNET: &str = "10.1.2.0/24";

/// A bridge netconf of `version` (host-local in `data_dir`, [`SUBNET`]) with `extra` keys
/// set on top (an `ipam` in `extra` replaces the whole IPAM object).
pub fn netconf(version: &str, data_dir: &Path, extra: &Value) -> String {
    let mut conf = json!({
        "cniVersion": version, "name": NET, "type": "bridge", "bridge": BR,
        "ipam": host_local(data_dir, SUBNET)
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        conf[k] = v.clone();
    }
    conf.to_string()
}

/// A host-local IPAM object for `subnet`, keeping its state in `data_dir`.
pub fn host_local(data_dir: &Path, subnet: &str) -> Value {
    json!({"type": "host-local", "subnet": subnet, "dataDir": data_dir})
}

/// One netconf of the suite, by the test it comes from.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// A short name for messages.
    pub name: &'static str,
    /// The `tests/bridge.rs` test that runs it.
    pub test: &'static str,
    /// Keys set on top of the base netconf (see [`netconf`]).
    pub extra: Value,
    /// Another IPAM subnet (`None`: [`SUBNET`]); ignored in L2 mode.
    pub subnet: Option<&'static str>,
    /// L2 mode: `"ipam": {}`.
    pub l2: bool,
    /// `CNI_ARGS`, when the scenario passes any.
    pub cni_args: Option<&'static str>,
    /// The bridge exists beforehand, carrying this address.
    pub bridge_address: Option<&'static str>,
    /// The container MAC the scenario asks for.
    pub mac: Option<[u8; 6]>,
    /// Needs bridge VLAN filtering in the kernel.
    pub needs_vlan_filtering: bool,
}

impl Scenario {
    fn new(name: &'static str, test: &'static str, extra: Value) -> Scenario {
        Scenario {
            name,
            test,
            extra,
            subnet: None,
            l2: false,
            cni_args: None,
            bridge_address: None,
            mac: None,
            needs_vlan_filtering: false,
        }
    }

    /// The netconf, its IPAM state in `data_dir`.
    pub fn netconf(&self, data_dir: &Path) -> String {
        let mut extra = self.extra.clone();
        if self.l2 {
            extra["ipam"] = json!({});
        } else if let Some(subnet) = self.subnet {
            extra["ipam"] = host_local(data_dir, subnet);
        }
        netconf("1.0.0", data_dir, &extra)
    }
}

/// Every option combination `tests/bridge.rs` runs an ADD with.
pub fn scenarios() -> Vec<Scenario> {
    let mac = |m: &str| -> [u8; 6] {
        let bytes: Vec<u8> = m
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).expect("hex MAC"))
            .collect();
        bytes.try_into().expect("six bytes")
    };
    vec![
        Scenario::new(
            "default gateway",
            "statement_20_11_add_result_and_kernel_state",
            json!({"isDefaultGateway": true}),
        ),
        Scenario::new(
            "no options",
            "statement_21_bridge_created_reused_and_non_bridge_refused",
            json!({}),
        ),
        Scenario::new(
            "gateway",
            "statement_22_gateway_on_the_bridge_and_forwarding",
            json!({"isGateway": true}),
        ),
        Scenario {
            bridge_address: Some("10.9.9.1/24"),
            ..Scenario::new(
                "forceAddress over another address",
                "statement_22_gateway_on_the_bridge_and_forwarding",
                json!({"isGateway": true, "forceAddress": true}),
            )
        },
        Scenario::new(
            "mtu and hairpin",
            "statement_23_mtu_hairpin_promisc",
            json!({"mtu": 1400, "hairpinMode": true}),
        ),
        Scenario::new(
            "promiscuous bridge",
            "statement_23_mtu_hairpin_promisc",
            json!({"promiscMode": true}),
        ),
        Scenario {
            needs_vlan_filtering: true,
            ..Scenario::new("vlan", "statement_23_vlan", json!({"vlan": 100}))
        },
        Scenario::new(
            "MAC spoof check",
            "statement_23_macspoofchk_drops_spoofed_frames",
            json!({"macspoofchk": true}),
        ),
        Scenario {
            subnet: Some("fd00:5::/64"),
            ..Scenario::new(
                "IPv6, DAD off",
                "statement_23_enabledad",
                json!({"enabledad": false}),
            )
        },
        Scenario {
            subnet: Some("fd00:5::/64"),
            ..Scenario::new(
                "IPv6, DAD on",
                "statement_23_enabledad",
                json!({"enabledad": true}),
            )
        },
        Scenario::new(
            "masquerade",
            "statement_23_ip_masq",
            json!({"isDefaultGateway": true, "ipMasq": true}),
        ),
        Scenario {
            mac: Some(mac("02:00:00:00:00:01")),
            cni_args: Some("IgnoreUnknown=1;MAC=02:00:00:00:00:03"),
            ..Scenario::new(
                "MAC from runtimeConfig",
                "statement_24_mac_precedence",
                json!({"runtimeConfig": {"mac": "02:00:00:00:00:01"},
                       "args": {"cni": {"mac": "02:00:00:00:00:02"}}}),
            )
        },
        Scenario {
            mac: Some(mac("02:00:00:00:00:03")),
            cni_args: Some("IgnoreUnknown=1;MAC=02:00:00:00:00:03"),
            ..Scenario::new(
                "MAC from CNI_ARGS",
                "statement_24_mac_precedence",
                json!({}),
            )
        },
        Scenario {
            l2: true,
            ..Scenario::new("L2 mode", "statement_28_l2_mode", json!({}))
        },
    ]
}

/// Whether this kernel can filter VLANs on a bridge (`CONFIG_BRIDGE_VLAN_FILTERING`): tried
/// on a bridge in a throw-away namespace.
pub fn vlan_filtering_supported() -> bool {
    let ns = kernel::PrivateNetns::new().expect("a test namespace");
    crate::inspect::netlink(&ns)
        .create_bridge(&kernel::BridgeRequest {
            name: "vlantest".into(),
            vlan_filtering: true,
            ..kernel::BridgeRequest::default()
        })
        .is_ok()
}
