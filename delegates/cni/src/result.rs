//! The result of ADD, held in the newest (1.1.0) model, and its wire form in every version.
//!
//! A result is parsed from the version it is labelled with and printed in the version the
//! caller asked for. Going down drops what the older version cannot say (interfaces before
//! 0.3.0, 1.1.0 attributes before 1.1.0, all but the first address per family before 0.3.0),
//! as libcni does; going to 0.1.0/0.2.0 with no address at all is refused.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::json_decode;
use crate::version::{ResultFormat, Version};

/// An ADD result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    /// Interfaces created or used, host side and sandbox side.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// Addresses assigned, each pointing at its interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    /// Routes installed in the sandbox.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// DNS settings for the sandbox.
    #[serde(default)]
    pub dns: Dns,
}

/// An interface in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// Hardware address, `aa:bb:cc:dd:ee:ff`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The netns path for a sandbox interface; empty for a host interface.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
    /// vhost-user socket path (1.1.0).
    #[serde(
        default,
        rename = "socketPath",
        skip_serializing_if = "Option::is_none"
    )]
    pub socket_path: Option<String>,
    /// PCI address of the device (1.1.0).
    #[serde(default, rename = "pciID", skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

/// An address in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// Index into `interfaces` of the interface holding the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    /// Address with prefix length, host bits kept (`10.1.2.2/24`).
    pub address: IpNet,
    /// Default gateway of the subnet, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// A route in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination.
    pub dst: IpNet,
    /// Next hop; none means the interface's own gateway or on-link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    /// Route MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Advertised MSS (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    /// Metric (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Routing table (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// Route scope (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u8>,
}

impl Route {
    /// A route to `dst` via `gw` with no 1.1.0 attributes.
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Self {
        Route {
            dst,
            gw,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        }
    }
}

/// DNS settings (also the netconf's `dns` key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers, in order of preference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// 1.0.0/1.1.0 on the wire: the model itself, labelled.
#[derive(Serialize)]
struct CurrentWire<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: Version,
    #[serde(flatten)]
    result: &'a CniResult,
}

/// 0.3.0-0.4.0 on the wire.
#[derive(Serialize, Deserialize)]
struct VersionedWire {
    #[serde(rename = "cniVersion", skip_deserializing)]
    cni_version: Option<Version>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<VersionedInterface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ips: Vec<VersionedIp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routes: Vec<LegacyRoute>,
    #[serde(default)]
    dns: Dns,
}

#[derive(Serialize, Deserialize)]
struct VersionedInterface {
    name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    mac: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    sandbox: String,
}

#[derive(Serialize, Deserialize)]
struct VersionedIp {
    #[serde(default)]
    version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interface: Option<usize>,
    address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
}

#[derive(Serialize, Deserialize)]
struct LegacyRoute {
    dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gw: Option<IpAddr>,
}

/// 0.1.0/0.2.0 on the wire.
#[derive(Serialize, Deserialize)]
struct LegacyWire {
    #[serde(rename = "cniVersion", skip_deserializing)]
    cni_version: Option<Version>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip4: Option<LegacyIp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip6: Option<LegacyIp>,
    #[serde(default)]
    dns: Dns,
}

#[derive(Serialize, Deserialize)]
struct LegacyIp {
    ip: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routes: Vec<LegacyRoute>,
}

impl CniResult {
    /// Parses a result labelled with `version` (the `cniVersion` in the JSON is not trusted
    /// over the caller's knowledge of what it asked for; see [`CniResult::parse_labelled`]).
    pub fn from_value(value: &Value, version: Version) -> Result<Self, Error> {
        let bad = |e: String| Error::decoding(format!("decode {version} result"), e);
        let result = match version.result_format() {
            ResultFormat::Current => json_decode::from_value(value).map_err(bad)?,
            ResultFormat::Versioned => {
                let w: VersionedWire = json_decode::from_value(value).map_err(bad)?;
                CniResult {
                    interfaces: w
                        .interfaces
                        .into_iter()
                        .map(|i| Interface {
                            name: i.name,
                            mac: i.mac,
                            sandbox: i.sandbox,
                            ..Interface::default()
                        })
                        .collect(),
                    ips: w
                        .ips
                        .into_iter()
                        .map(|ip| IpConfig {
                            interface: ip.interface,
                            address: ip.address,
                            gateway: ip.gateway,
                        })
                        .collect(),
                    routes: w
                        .routes
                        .into_iter()
                        .map(|r| Route::new(r.dst, r.gw))
                        .collect(),
                    dns: w.dns,
                }
            }
            ResultFormat::Legacy => {
                let w: LegacyWire = json_decode::from_value(value).map_err(bad)?;
                let mut result = CniResult {
                    dns: w.dns,
                    ..CniResult::default()
                };
                for ip in [w.ip4, w.ip6].into_iter().flatten() {
                    result.ips.push(IpConfig {
                        interface: None,
                        address: ip.ip,
                        gateway: ip.gateway,
                    });
                    result
                        .routes
                        .extend(ip.routes.into_iter().map(|r| Route::new(r.dst, r.gw)));
                }
                result
            }
        };
        result.validate()?;
        Ok(result)
    }

    /// Parses a result using its own `cniVersion` label (how libcni reads a plugin's stdout).
    pub fn parse_labelled(bytes: &[u8]) -> Result<(Self, Version), Error> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| Error::decoding("decode result", e))?;
        CniResult::from_labelled(value)
    }

    /// As [`CniResult::parse_labelled`], for a result already decoded (an in-process
    /// plugin's wire form, a cached result).
    pub fn from_labelled(value: Value) -> Result<(Self, Version), Error> {
        let label = value
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let version = Version::from_config(&label, &Version::ALL)?;
        Ok((CniResult::from_value(&value, version)?, version))
    }

    /// The result in `version`'s wire form. Fails only for 0.1.0/0.2.0 with no address.
    pub fn to_value(&self, version: Version) -> Result<Value, Error> {
        let value = match version.result_format() {
            ResultFormat::Current => {
                let mut result;
                let shown = if version < Version::V1_1_0 {
                    result = self.clone();
                    result.strip_1_1_attributes();
                    &result
                } else {
                    self
                };
                serde_json::to_value(CurrentWire {
                    cni_version: version,
                    result: shown,
                })
            }
            ResultFormat::Versioned => serde_json::to_value(VersionedWire {
                cni_version: Some(version),
                interfaces: self
                    .interfaces
                    .iter()
                    .map(|i| VersionedInterface {
                        name: i.name.clone(),
                        mac: i.mac.clone(),
                        sandbox: i.sandbox.clone(),
                    })
                    .collect(),
                ips: self
                    .ips
                    .iter()
                    .map(|ip| VersionedIp {
                        version: if ip.address.addr().is_ipv4() {
                            "4"
                        } else {
                            "6"
                        }
                        .into(),
                        interface: ip.interface,
                        address: ip.address,
                        gateway: ip.gateway,
                    })
                    .collect(),
                routes: self
                    .routes
                    .iter()
                    .map(|r| LegacyRoute {
                        dst: r.dst,
                        gw: r.gw,
                    })
                    .collect(),
                dns: self.dns.clone(),
            }),
            ResultFormat::Legacy => serde_json::to_value(self.to_legacy(version)?),
        };
        value.map_err(|e| Error::internal("encode result", e))
    }

    /// The result as printed on stdout in `version`.
    pub fn to_json(&self, version: Version) -> Result<String, Error> {
        Ok(self.to_value(version)?.to_string())
    }

    /// Checks what every version requires: `ips[].interface` points at an interface.
    pub fn validate(&self) -> Result<(), Error> {
        for ip in &self.ips {
            if let Some(index) = ip.interface {
                if index >= self.interfaces.len() {
                    return Err(Error::decoding(
                        "invalid result",
                        format!(
                            "ip {} points at interface {index}, but the result has {} interfaces",
                            ip.address,
                            self.interfaces.len()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn strip_1_1_attributes(&mut self) {
        for i in &mut self.interfaces {
            i.mtu = None;
            i.socket_path = None;
            i.pci_id = None;
        }
        for r in &mut self.routes {
            *r = Route::new(r.dst, r.gw);
        }
    }

    fn to_legacy(&self, version: Version) -> Result<LegacyWire, Error> {
        // 0.2.0 holds one address per family: the first of each, as libcni converts.
        let first = |v4: bool| {
            self.ips
                .iter()
                .find(|ip| ip.address.addr().is_ipv4() == v4)
                .map(|ip| LegacyIp {
                    ip: ip.address,
                    gateway: ip.gateway,
                    routes: self
                        .routes
                        .iter()
                        .filter(|r| r.dst.addr().is_ipv4() == v4)
                        .map(|r| LegacyRoute {
                            dst: r.dst,
                            gw: r.gw,
                        })
                        .collect(),
                })
        };
        let (ip4, ip6) = (first(true), first(false));
        if ip4.is_none() && ip6.is_none() {
            return Err(Error::new(
                crate::ErrorCode::INCOMPATIBLE_VERSION,
                format!("cannot convert result to {version}"),
                "a 0.1.0/0.2.0 result needs at least one IP address",
            ));
        }
        Ok(LegacyWire {
            cni_version: Some(version),
            ip4,
            ip6,
            dns: self.dns.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![
                Interface {
                    name: "cni0".into(),
                    mac: "0a:58:0a:01:02:01".into(),
                    mtu: Some(1500),
                    ..Interface::default()
                },
                Interface {
                    name: "eth0".into(),
                    mac: "0a:58:0a:01:02:02".into(),
                    mtu: Some(1500),
                    sandbox: "/var/run/netns/pod1".into(),
                    socket_path: Some("/run/vhost.sock".into()),
                    pci_id: Some("0000:00:1f.6".into()),
                },
            ],
            ips: vec![
                IpConfig {
                    interface: Some(1),
                    address: "10.1.2.2/24".parse().unwrap(),
                    gateway: Some("10.1.2.1".parse().unwrap()),
                },
                IpConfig {
                    interface: Some(1),
                    address: "10.1.2.3/24".parse().unwrap(),
                    gateway: None,
                },
                IpConfig {
                    interface: Some(1),
                    address: "fd00::2/64".parse().unwrap(),
                    gateway: Some("fd00::1".parse().unwrap()),
                },
            ],
            routes: vec![
                Route {
                    mtu: Some(1400),
                    advmss: Some(1360),
                    priority: Some(100),
                    table: Some(100),
                    scope: Some(0),
                    ..Route::new(
                        "0.0.0.0/0".parse().unwrap(),
                        Some("10.1.2.1".parse().unwrap()),
                    )
                },
                Route::new("::/0".parse().unwrap(), None),
            ],
            dns: Dns {
                nameservers: vec!["10.1.2.53".into()],
                domain: Some("example.internal".into()),
                search: vec!["svc.example.internal".into()],
                options: vec!["ndots:5".into()],
            },
        }
    }

    #[test]
    fn one_result_in_every_version() {
        for v in Version::ALL {
            let json = serde_json::to_string_pretty(&sample().to_value(v).unwrap()).unwrap();
            insta::assert_snapshot!(format!("result_{v}"), json);
        }
    }

    #[test]
    fn every_version_labels_itself() {
        for v in Version::ALL {
            let value = sample().to_value(v).unwrap();
            assert_eq!(value["cniVersion"], v.as_str());
            let (_, label) = CniResult::parse_labelled(value.to_string().as_bytes()).unwrap();
            assert_eq!(label, v);
        }
    }

    #[test]
    fn conversions_between_every_pair() {
        // Parse the sample as printed in `from`, print it in `to`: each pair is one snapshot.
        let mut all = String::new();
        for from in Version::ALL {
            let parsed = CniResult::from_value(&sample().to_value(from).unwrap(), from).unwrap();
            for to in Version::ALL {
                let out = parsed.to_json(to).unwrap();
                all.push_str(&format!("{from} -> {to}: {out}\n"));
            }
        }
        insta::assert_snapshot!("conversions", all);
    }

    #[test]
    fn current_round_trip_is_lossless() {
        let back = CniResult::from_value(
            &sample().to_value(Version::V1_1_0).unwrap(),
            Version::V1_1_0,
        )
        .unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn legacy_needs_an_address() {
        let empty = CniResult {
            interfaces: vec![Interface {
                name: "eth0".into(),
                ..Interface::default()
            }],
            ..CniResult::default()
        };
        let e = empty.to_value(Version::V0_2_0).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::INCOMPATIBLE_VERSION);
        insta::assert_snapshot!("error_legacy_conversion", e.to_json(Version::V0_2_0));
        assert!(empty.to_value(Version::V0_3_0).is_ok());
    }

    #[test]
    fn dangling_interface_index_is_refused() {
        let v = serde_json::json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0"}],
            "ips": [{"interface": 1, "address": "10.0.0.2/24"}]
        });
        let e = CniResult::from_value(&v, Version::V1_0_0).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::DECODING_FAILURE);
        assert!(e.details.contains("interface 1"), "{e}");
    }

    #[test]
    fn garbage_is_a_decoding_error() {
        let e = CniResult::parse_labelled(
            b"{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"nope\"}]}",
        )
        .unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::DECODING_FAILURE);
        let e = CniResult::parse_labelled(b"{\"cniVersion\":\"4.0.0\"}").unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::INCOMPATIBLE_VERSION);
    }
}
