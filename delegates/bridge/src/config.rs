//! The bridge netconf: every option of the reference plugin, validated before anything is
//! touched, each problem a code-7 error naming the field and the value.

use serde_json::Value;

use cni::{Error, Request};

/// The bridge used when the netconf names none (the reference's default).
pub const DEFAULT_BRIDGE: &str = "cni0";

/// Smallest MTU the kernel accepts for an Ethernet device carrying IPv4.
const MIN_MTU: u32 = 68;

/// One VLAN range of `vlanTrunk`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VlanRange {
    pub(crate) min: u16,
    pub(crate) max: u16,
}

/// The validated configuration of one call.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// `name`: the network (masquerade rules carry it).
    pub(crate) network: String,
    /// `bridge`.
    pub(crate) bridge: String,
    /// `isGateway` (implied by `isDefaultGateway`).
    pub(crate) is_gateway: bool,
    /// `isDefaultGateway`.
    pub(crate) is_default_gateway: bool,
    /// `forceAddress`.
    pub(crate) force_address: bool,
    /// `ipMasq`.
    pub(crate) ip_masq: bool,
    /// `mtu` (`None`: the kernel's default).
    pub(crate) mtu: Option<u32>,
    /// `hairpinMode`.
    pub(crate) hairpin: bool,
    /// `promiscMode`.
    pub(crate) promisc: bool,
    /// `vlan` (`None` for 0).
    pub(crate) vlan: Option<u16>,
    /// `vlanTrunk`.
    pub(crate) vlan_trunk: Vec<VlanRange>,
    /// `preserveDefaultVlan` (default true).
    pub(crate) preserve_default_vlan: bool,
    /// `macspoofchk`.
    pub(crate) mac_spoof_check: bool,
    /// `enabledad`.
    pub(crate) enable_dad: bool,
    /// `disableContainerInterface`.
    pub(crate) disable_container_interface: bool,
    /// `ipam.type`; `None` is L2 mode (`"ipam": {}`).
    pub(crate) ipam_type: Option<String>,
    /// The container MAC: `runtimeConfig.mac`, else `args.cni.mac`, else `CNI_ARGS MAC`.
    pub(crate) mac: Option<[u8; 6]>,
}

impl Config {
    /// Whether the bridge must have VLAN filtering on.
    pub(crate) fn vlan_filtering(&self) -> bool {
        self.vlan.is_some() || !self.vlan_trunk.is_empty()
    }

    /// Reads and validates the netconf of `req`.
    pub(crate) fn load(req: &Request) -> Result<Config, Error> {
        let conf = &req.netconf;
        let extra = &conf.extra;
        let bridge = conf
            .field::<String>("bridge")?
            .unwrap_or_else(|| DEFAULT_BRIDGE.into());
        if let Some(why) = cni::validate::ifname_problem(&bridge) {
            return Err(Error::invalid_config("bridge", &bridge, why));
        }
        let flag = |key: &str| conf.field::<bool>(key).map(Option::unwrap_or_default);
        let is_default_gateway = flag("isDefaultGateway")?;
        let hairpin = flag("hairpinMode")?;
        let promisc = flag("promiscMode")?;
        if hairpin && promisc {
            return Err(Error::invalid_config(
                "hairpinMode",
                true,
                "cannot set hairpin mode and promiscuous mode (promiscMode) at the same time",
            ));
        }
        let mtu = match conf.field::<u64>("mtu")? {
            None | Some(0) => None,
            Some(m) if (u64::from(MIN_MTU)..=65535).contains(&m) => Some(m as u32),
            Some(m) => {
                return Err(Error::invalid_config(
                    "mtu",
                    m,
                    format!("must be 0 (the default) or between {MIN_MTU} and 65535"),
                ))
            }
        };
        let vlan = match conf.field::<i64>("vlan")? {
            None | Some(0) => None,
            Some(v) if (1..=4094).contains(&v) => Some(v as u16),
            Some(v) => {
                return Err(Error::invalid_config(
                    "vlan",
                    v,
                    "invalid VLAN ID (must be between 0 and 4094)",
                ))
            }
        };
        let vlan_trunk = vlan_trunk(extra.get("vlanTrunk"))?;
        if vlan.is_some() && !vlan_trunk.is_empty() {
            return Err(Error::invalid_config(
                "vlanTrunk",
                extra.get("vlanTrunk").map(shown).unwrap_or_default(),
                "cannot set vlan and vlanTrunk at the same time (a port is either an access \
                 port or a trunk port)",
            ));
        }
        let disable_container_interface = flag("disableContainerInterface")?;
        let ipam_type = ipam_type(conf.ipam.as_ref())?;
        if disable_container_interface && ipam_type.is_some() {
            return Err(Error::invalid_config(
                "disableContainerInterface",
                true,
                "an IPAM plugin cannot configure a container interface that is kept down",
            ));
        }
        if let Some(backend) = conf.field::<String>("ipMasqBackend")? {
            if backend != "nftables" && backend != "iptables" {
                return Err(Error::invalid_config(
                    "ipMasqBackend",
                    &backend,
                    "must be \"nftables\" or \"iptables\"",
                ));
            }
        }
        Ok(Config {
            network: conf.name.clone(),
            bridge,
            is_gateway: flag("isGateway")? || is_default_gateway,
            is_default_gateway,
            force_address: flag("forceAddress")?,
            ip_masq: flag("ipMasq")?,
            mtu,
            hairpin,
            promisc,
            vlan,
            vlan_trunk,
            preserve_default_vlan: conf.field::<bool>("preserveDefaultVlan")?.unwrap_or(true),
            mac_spoof_check: flag("macspoofchk")?,
            enable_dad: flag("enabledad")?,
            disable_container_interface,
            ipam_type,
            mac: requested_mac(req)?,
        })
    }
}

/// What DEL needs to find what an ADD may have made: the network (it tags the nftables
/// rules), the IPAM plugin, and whether rules were asked for. Nothing else of the call is
/// read, so a DEL after an ADD refused for its options or MAC still succeeds, as the
/// reference's does.
#[derive(Debug, Clone)]
pub(crate) struct Teardown {
    /// The network's name.
    pub(crate) network: String,
    /// `ipam.type`; `None` when there is none, or none that an ADD could have run.
    pub(crate) ipam_type: Option<String>,
    /// `ipMasq`, or `true` when it does not read as a bool (removing no rule is harmless).
    pub(crate) ip_masq: bool,
    /// `macspoofchk`, likewise.
    pub(crate) mac_spoof_check: bool,
}

impl Teardown {
    /// Reads what DEL needs from `req`; never fails.
    pub(crate) fn load(req: &Request) -> Teardown {
        let conf = &req.netconf;
        let flag = |key: &str| {
            conf.field::<bool>(key)
                .map_or(true, Option::unwrap_or_default)
        };
        Teardown {
            network: conf.name.clone(),
            // An ADD refused the config before IPAM ran: nothing to release.
            ipam_type: ipam_type(conf.ipam.as_ref()).ok().flatten(),
            ip_masq: flag("ipMasq"),
            mac_spoof_check: flag("macspoofchk"),
        }
    }
}

/// A value as an error message names it: strings bare, anything else as JSON.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn ipam_type(ipam: Option<&Value>) -> Result<Option<String>, Error> {
    let Some(ipam) = ipam else { return Ok(None) };
    let Some(obj) = ipam.as_object() else {
        return Err(Error::invalid_config(
            "ipam",
            shown(ipam),
            "must be an object",
        ));
    };
    match obj.get("type") {
        None => Ok(None),
        Some(Value::String(t)) if t.is_empty() => Ok(None),
        Some(Value::String(t)) => match cni::validate::plugin_type(t) {
            Ok(()) => Ok(Some(t.clone())),
            Err(e) => Err(Error::invalid_config("ipam.type", t, e.details)),
        },
        Some(other) => Err(Error::invalid_config(
            "ipam.type",
            other,
            "must be a string",
        )),
    }
}

/// `vlanTrunk`: a list of `{"id": n}` or `{"minID": a, "maxID": b}`, ids 1-4094.
fn vlan_trunk(value: Option<&Value>) -> Result<Vec<VlanRange>, Error> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Some(items) = value.as_array() else {
        return Err(Error::invalid_config("vlanTrunk", value, "must be a list"));
    };
    let vid = |item: &Value, key: &str| -> Result<Option<u16>, Error> {
        match item.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(id) if (1..=4094).contains(&id) => Ok(Some(id as u16)),
                _ => Err(Error::invalid_config(
                    &format!("vlanTrunk {key}"),
                    shown(v),
                    "must be a VLAN ID between 1 and 4094",
                )),
            },
        }
    };
    let mut ranges = Vec::new();
    for item in items {
        if !item.is_object() {
            return Err(Error::invalid_config(
                "vlanTrunk",
                item,
                "each entry must be an object with id, or minID and maxID",
            ));
        }
        match (vid(item, "id")?, vid(item, "minID")?, vid(item, "maxID")?) {
            (Some(id), None, None) => ranges.push(VlanRange { min: id, max: id }),
            (None, Some(min), Some(max)) if min <= max => ranges.push(VlanRange { min, max }),
            (None, Some(_), Some(_)) => {
                return Err(Error::invalid_config(
                    "vlanTrunk",
                    shown(item),
                    "minID is greater than maxID",
                ))
            }
            _ => {
                return Err(Error::invalid_config(
                    "vlanTrunk",
                    shown(item),
                    "each entry needs either id, or both minID and maxID",
                ))
            }
        }
    }
    Ok(ranges)
}

/// The reference's precedence: `runtimeConfig.mac`, then `args.cni.mac`, then `CNI_ARGS MAC`.
fn requested_mac(req: &Request) -> Result<Option<[u8; 6]>, Error> {
    let conf = &req.netconf;
    let runtime = conf
        .runtime_config
        .as_ref()
        .and_then(|rc| rc.get("mac"))
        .filter(|v| !v.is_null());
    let candidates = [
        ("runtimeConfig.mac", runtime.cloned()),
        (
            "args.cni.mac",
            conf.cni_arg("mac").filter(|v| !v.is_null()).cloned(),
        ),
        ("CNI_ARGS MAC", req.inv.args.get("MAC").map(Value::from)),
    ];
    for (field, value) in candidates {
        let Some(value) = value else { continue };
        return match value.as_str().map(parse_mac) {
            Some(Ok(mac)) => Ok(Some(mac)),
            Some(Err(why)) => Err(Error::invalid_config(field, shown(&value), why)),
            None => Err(Error::invalid_config(
                field,
                shown(&value),
                "must be a string",
            )),
        };
    }
    Ok(None)
}

/// Parses a requested MAC; a multicast address cannot be an interface's.
fn parse_mac(text: &str) -> Result<[u8; 6], &'static str> {
    let mac = cni::MacAddress::parse(text)
        .ok_or("not a MAC address (expected six hex pairs such as 0a:58:0a:01:02:03)")?
        .octets();
    if mac[0] & 1 != 0 {
        return Err("a multicast address cannot be an interface's MAC");
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni::{Command, Version};

    fn load(netconf: Value, cni_args: &str) -> Result<Config, Error> {
        let stdin = serde_json::to_vec(&netconf).unwrap();
        let env = |k: &str| -> Option<String> {
            match k {
                "CNI_CONTAINERID" => Some("c1".into()),
                "CNI_NETNS" => Some("/proc/self/ns/net".into()),
                "CNI_IFNAME" => Some("eth0".into()),
                "CNI_PATH" => Some("/opt/cni/bin".into()),
                "CNI_ARGS" => Some(cni_args.into()),
                _ => None,
            }
        };
        let req = Request::parse(Command::Add, &env, &stdin, &Version::ALL)?;
        Config::load(&req)
    }

    fn base() -> Value {
        serde_json::json!({"cniVersion": "1.0.0", "name": "net1", "type": "bridge",
            "ipam": {"type": "host-local", "subnet": "10.1.2.0/24"}})
    }

    fn with(extra: Value) -> Value {
        let mut v = base();
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    #[test]
    fn defaults_match_the_reference() {
        let c = load(base(), "").unwrap();
        assert_eq!(c.bridge, "cni0");
        assert!(!c.is_gateway && !c.ip_masq && !c.hairpin && !c.promisc);
        assert!(c.preserve_default_vlan);
        assert_eq!(c.ipam_type.as_deref(), Some("host-local"));
        assert_eq!(c.mtu, None);
        assert_eq!(c.mac, None);
    }

    #[test]
    fn default_gateway_implies_gateway() {
        let c = load(with(serde_json::json!({"isDefaultGateway": true})), "").unwrap();
        assert!(c.is_gateway && c.is_default_gateway);
    }

    #[test]
    fn l2_mode_has_no_ipam_type() {
        let c = load(with(serde_json::json!({"ipam": {}})), "").unwrap();
        assert_eq!(c.ipam_type, None);
    }

    #[test]
    fn mac_precedence_is_runtime_config_then_args_then_cni_args() {
        let all = with(serde_json::json!({
            "runtimeConfig": {"mac": "02:00:00:00:00:01"},
            "args": {"cni": {"mac": "02:00:00:00:00:02"}}}));
        let c = load(all, "MAC=02:00:00:00:00:03").unwrap();
        assert_eq!(c.mac, Some([2, 0, 0, 0, 0, 1]));
        let args = with(serde_json::json!({"args": {"cni": {"mac": "02:00:00:00:00:02"}}}));
        assert_eq!(
            load(args, "MAC=02:00:00:00:00:03").unwrap().mac,
            Some([2, 0, 0, 0, 0, 2])
        );
        assert_eq!(
            load(base(), "MAC=02:00:00:00:00:03").unwrap().mac,
            Some([2, 0, 0, 0, 0, 3])
        );
    }

    #[test]
    fn trunk_ranges_parse() {
        let c = load(
            with(serde_json::json!({"vlanTrunk": [{"id": 5}, {"minID": 10, "maxID": 20}]})),
            "",
        )
        .unwrap();
        assert_eq!(
            c.vlan_trunk,
            vec![VlanRange { min: 5, max: 5 }, VlanRange { min: 10, max: 20 }]
        );
        assert!(c.vlan_filtering());
    }

    /// Every invalid option, its code and message: one snapshot.
    #[test]
    fn invalid_options_are_code_7_naming_field_and_value() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "bridge too long",
                serde_json::json!({"bridge": "abcdefghijklmnop"}),
                "",
            ),
            (
                "bridge with slash",
                serde_json::json!({"bridge": "br/0"}),
                "",
            ),
            ("bridge not a string", serde_json::json!({"bridge": 5}), ""),
            (
                "isGateway not a bool",
                serde_json::json!({"isGateway": "yes"}),
                "",
            ),
            (
                "hairpin and promisc",
                serde_json::json!({"hairpinMode": true, "promiscMode": true}),
                "",
            ),
            ("mtu too small", serde_json::json!({"mtu": 10}), ""),
            ("mtu too big", serde_json::json!({"mtu": 70000}), ""),
            ("mtu negative", serde_json::json!({"mtu": -1}), ""),
            ("vlan negative", serde_json::json!({"vlan": -1}), ""),
            ("vlan too big", serde_json::json!({"vlan": 4095}), ""),
            (
                "vlanTrunk not a list",
                serde_json::json!({"vlanTrunk": 5}),
                "",
            ),
            (
                "vlanTrunk id 0",
                serde_json::json!({"vlanTrunk": [{"id": 0}]}),
                "",
            ),
            (
                "vlanTrunk id 5000",
                serde_json::json!({"vlanTrunk": [{"id": 5000}]}),
                "",
            ),
            (
                "vlanTrunk min > max",
                serde_json::json!({"vlanTrunk": [{"minID": 20, "maxID": 10}]}),
                "",
            ),
            (
                "vlanTrunk min only",
                serde_json::json!({"vlanTrunk": [{"minID": 20}]}),
                "",
            ),
            (
                "vlan and vlanTrunk",
                serde_json::json!({"vlan": 3, "vlanTrunk": [{"id": 4}]}),
                "",
            ),
            (
                "ipam not an object",
                serde_json::json!({"ipam": "host-local"}),
                "",
            ),
            (
                "ipam type with slash",
                serde_json::json!({"ipam": {"type": "../x"}}),
                "",
            ),
            (
                "disableContainerInterface with ipam",
                serde_json::json!({"disableContainerInterface": true}),
                "",
            ),
            (
                "bad ipMasqBackend",
                serde_json::json!({"ipMasqBackend": "pf"}),
                "",
            ),
            (
                "bad runtimeConfig mac",
                serde_json::json!({"runtimeConfig": {"mac": "zz:00:00:00:00:01"}}),
                "",
            ),
            (
                "multicast args mac",
                serde_json::json!({"args": {"cni": {"mac": "01:00:5e:00:00:01"}}}),
                "",
            ),
            (
                "short CNI_ARGS MAC",
                serde_json::json!({}),
                "MAC=02:00:00:00:01",
            ),
        ];
        let out: Vec<Value> = cases
            .into_iter()
            .map(|(what, extra, args)| {
                let e = load(with(extra), args).expect_err(what);
                serde_json::json!({"case": what, "code": e.code.0, "msg": e.msg, "details": e.details})
            })
            .collect();
        assert!(out.iter().all(|o| o["code"] == 7), "{out:#?}");
        insta::assert_json_snapshot!(out);
    }
}
