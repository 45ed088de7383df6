//! The IPAM configuration host-local reads from the netconf it receives: `ipam` (legacy
//! single range, `ranges`, `routes`, `dataDir`, `resolvConf`), `runtimeConfig.ips` and
//! `.ipRanges`, `args.cni.ips` and `CNI_ARGS` `IP=`.
//!
//! The netconf is read field by field, so every error names the field and value (code 7).
//! Keys match case-insensitively when no exact match exists, as Go's `encoding/json` (which
//! the reference uses) does.

use std::net::IpAddr;
use std::path::PathBuf;

use cni::{Error, Request, Route, Version};
use ipnet::IpNet;
use serde_json::{Map, Value};

use crate::range::{RangeSet, RawRange};

/// Where reservations are kept when `ipam.dataDir` is not set.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

/// An address the caller asked for, and where it asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requested {
    /// The address (any prefix given with it is dropped).
    pub(crate) ip: IpAddr,
    /// The field it came from (`CNI_ARGS IP`, `args.cni.ips[0]`, `runtimeConfig.ips[1]`).
    pub(crate) source: String,
}

/// A loaded, canonical IPAM configuration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    /// The network's name: the store's directory.
    pub(crate) name: String,
    /// The range sets, in allocation order: `runtimeConfig.ipRanges`, the legacy
    /// `ipam.subnet` range, then `ipam.ranges`.
    pub(crate) range_sets: Vec<RangeSet>,
    /// `ipam.routes`, passed to the result.
    pub(crate) routes: Vec<Route>,
    /// `ipam.dataDir`.
    pub(crate) data_dir: PathBuf,
    /// `ipam.resolvConf`.
    pub(crate) resolv_conf: Option<PathBuf>,
    /// Requested addresses without duplicates, in order: `CNI_ARGS`, `args.cni.ips`,
    /// `runtimeConfig.ips`.
    pub(crate) requested: Vec<Requested>,
}

/// `obj[key]`, null counting as absent; exact key first, then any case, as Go does.
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key)
        .or_else(|| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// A JSON value as it reads in a message: strings bare, anything else as JSON.
fn show(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn as_object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, Error> {
    v.as_object()
        .ok_or_else(|| Error::invalid_config(field, show(v), "must be an object"))
}

fn as_array<'a>(v: &'a Value, field: &str) -> Result<&'a [Value], Error> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| Error::invalid_config(field, show(v), "must be a list"))
}

fn as_str<'a>(v: &'a Value, field: &str) -> Result<&'a str, Error> {
    v.as_str()
        .ok_or_else(|| Error::invalid_config(field, show(v), "must be a string"))
}

/// An address, IPv4-mapped IPv6 read as IPv4 (Go's `To4`).
fn parse_ip(text: &str, field: &str) -> Result<IpAddr, Error> {
    text.trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| Error::invalid_config(field, text, "not an IP address"))
}

/// An address given bare or with a prefix (`10.1.2.9/24`): the prefix is dropped.
fn parse_request(text: &str, field: &str) -> Result<IpAddr, Error> {
    parse_ip(text, field).or_else(|e| {
        text.trim()
            .parse::<IpNet>()
            .map(|n| n.addr().to_canonical())
            .map_err(|_| e)
    })
}

fn ip_field(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<IpAddr>, Error> {
    let field = format!("{path}.{key}");
    get(obj, key)
        .map(|v| parse_ip(as_str(v, &field)?, &field))
        .transpose()
}

fn net_field(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<IpNet>, Error> {
    let field = format!("{path}.{key}");
    get(obj, key)
        .map(|v| {
            let text = as_str(v, &field)?;
            text.trim()
                .parse::<IpNet>()
                .map_err(|_| Error::invalid_config(&field, text, "not a CIDR (address/prefix)"))
        })
        .transpose()
}

fn u32_field(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<u32>, Error> {
    get(obj, key)
        .map(|v| {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    Error::invalid_config(
                        &format!("{path}.{key}"),
                        show(v),
                        "must be a whole number",
                    )
                })
        })
        .transpose()
}

/// A range object at `path`.
fn parse_range(v: &Value, path: String) -> Result<RawRange, Error> {
    let obj = as_object(v, &path)?;
    Ok(RawRange {
        subnet: net_field(obj, "subnet", &path)?,
        start: ip_field(obj, "rangeStart", &path)?,
        end: ip_field(obj, "rangeEnd", &path)?,
        gateway: ip_field(obj, "gateway", &path)?,
        path,
    })
}

/// A list of range sets at `path` (`ipam.ranges`, `runtimeConfig.ipRanges`).
fn parse_range_sets(v: &Value, path: &str) -> Result<Vec<RangeSet>, Error> {
    as_array(v, path)?
        .iter()
        .enumerate()
        .map(|(i, set)| {
            let set_path = format!("{path}[{i}]");
            let raws = as_array(set, &set_path)?
                .iter()
                .enumerate()
                .map(|(j, r)| parse_range(r, format!("{set_path}[{j}]")))
                .collect::<Result<Vec<_>, _>>()?;
            RangeSet::canonicalize(set_path, &raws)
        })
        .collect()
}

fn parse_route(v: &Value, path: &str) -> Result<Route, Error> {
    let obj = as_object(v, path)?;
    let dst = net_field(obj, "dst", path)?.ok_or_else(|| {
        Error::invalid_config(&format!("{path}.dst"), "", "a route needs a destination")
    })?;
    let mut route = Route::new(dst, ip_field(obj, "gw", path)?);
    route.mtu = u32_field(obj, "mtu", path)?;
    route.advmss = u32_field(obj, "advmss", path)?;
    route.priority = u32_field(obj, "priority", path)?;
    route.table = u32_field(obj, "table", path)?;
    route.scope = u32_field(obj, "scope", path)?
        .map(|s| {
            u8::try_from(s).map_err(|_| {
                Error::invalid_config(&format!("{path}.scope"), s, "must be at most 255")
            })
        })
        .transpose()?;
    Ok(route)
}

/// A list of requested addresses at `path`.
fn parse_requests(v: &Value, path: &str) -> Result<Vec<Requested>, Error> {
    as_array(v, path)?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = format!("{path}[{i}]");
            Ok(Requested {
                ip: parse_request(as_str(item, &field)?, &field)?,
                source: field,
            })
        })
        .collect()
}

/// The `ipam` object of a call.
fn ipam_object(req: &Request) -> Result<&Map<String, Value>, Error> {
    let ipam = req
        .netconf
        .ipam
        .as_ref()
        .filter(|v| !v.is_null())
        .ok_or_else(|| Error::invalid_config("ipam", "", "IPAM config missing 'ipam' key"))?;
    as_object(ipam, "ipam")
}

/// `ipam.<key>` as a path; empty counts as unset.
fn path_field(ipam: &Map<String, Value>, key: &str) -> Result<Option<PathBuf>, Error> {
    get(ipam, key)
        .map(|v| as_str(v, &format!("ipam.{key}")))
        .transpose()
        .map(|s| s.filter(|s| !s.is_empty()).map(PathBuf::from))
}

/// Where a network's reservations live: all DEL needs. Nothing else of the call is read,
/// so a DEL after an ADD refused for its requests or ranges still releases what it can.
pub(crate) fn store_location(req: &Request) -> Result<(String, PathBuf), Error> {
    let data_dir = path_field(ipam_object(req)?, "dataDir")?;
    Ok((
        req.netconf.name.clone(),
        data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
    ))
}

impl Config {
    /// Loads the configuration of a call (code 7 for anything invalid).
    pub(crate) fn load(req: &Request) -> Result<Config, Error> {
        let conf = &req.netconf;
        let ipam = ipam_object(req)?;
        let empty = Map::new();
        let runtime = conf.runtime_config.as_ref().unwrap_or(&empty);

        let mut requested = Vec::new();
        if let Some(list) = req.inv.args.get("IP") {
            for text in list.split(',').filter(|t| !t.trim().is_empty()) {
                requested.push(Requested {
                    ip: parse_request(text, "CNI_ARGS IP")?,
                    source: "CNI_ARGS IP".into(),
                });
            }
        }
        if let Some(ips) = conf.cni_arg("ips").filter(|v| !v.is_null()) {
            requested.extend(parse_requests(ips, "args.cni.ips")?);
        }
        if let Some(ips) = get(runtime, "ips") {
            requested.extend(parse_requests(ips, "runtimeConfig.ips")?);
        }
        let mut seen = Vec::new();
        requested.retain(|r| {
            let new = !seen.contains(&r.ip);
            seen.push(r.ip);
            new
        });

        let mut range_sets = Vec::new();
        if let Some(v) = get(runtime, "ipRanges") {
            range_sets.extend(parse_range_sets(v, "runtimeConfig.ipRanges")?);
        }
        if get(ipam, "subnet").is_some() {
            let legacy = parse_range(&Value::Object(ipam.clone()), "ipam".into())?;
            range_sets.push(RangeSet::canonicalize("ipam".into(), &[legacy])?);
        } else if let Some(key) = ["rangeStart", "rangeEnd", "gateway"]
            .into_iter()
            .find(|k| get(ipam, k).is_some())
        {
            // Ignored without a subnet, as the reference does (so configs it accepts keep
            // working), but said, since it is most likely a mistake.
            tracing::warn!("ipam.{key} is ignored: it needs ipam.subnet");
        }
        if let Some(v) = get(ipam, "ranges") {
            range_sets.extend(parse_range_sets(v, "ipam.ranges")?);
        }
        if range_sets.is_empty() {
            return Err(Error::invalid_config(
                "ipam.ranges",
                "",
                "no IP ranges specified (set ipam.ranges, ipam.subnet or runtimeConfig.ipRanges)",
            ));
        }
        if req.version < Version::V0_3_0 {
            for v4 in [true, false] {
                let count = range_sets.iter().filter(|s| s.is_ipv4() == v4).count();
                if count > 1 {
                    return Err(Error::invalid_config(
                        "cniVersion",
                        req.version,
                        format!(
                            "CNI version {} does not support more than 1 address per family",
                            req.version
                        ),
                    ));
                }
            }
        }
        for (j, later) in range_sets.iter().enumerate() {
            if let Some((i, earlier)) = range_sets[..j]
                .iter()
                .enumerate()
                .find(|(_, s)| s.overlaps(later))
            {
                return Err(Error::invalid_config(
                    &later.path,
                    later,
                    format!(
                        "range set {j} overlaps with {i} ({}: {earlier})",
                        earlier.path
                    ),
                ));
            }
        }

        let routes = match get(ipam, "routes") {
            Some(v) => as_array(v, "ipam.routes")?
                .iter()
                .enumerate()
                .map(|(i, r)| parse_route(r, &format!("ipam.routes[{i}]")))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Config {
            name: conf.name.clone(),
            range_sets,
            routes,
            data_dir: path_field(ipam, "dataDir")?
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            resolv_conf: path_field(ipam, "resolvConf")?,
            requested,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni::{CniArgs, Command, Invocation, NetConf};

    fn request(netconf: &str, cni_args: &str) -> Request {
        let (netconf, raw_netconf) = NetConf::decode(netconf.as_bytes()).unwrap();
        let version = Version::from_config(&netconf.cni_version, &Version::ALL).unwrap();
        Request {
            inv: Invocation {
                command: Command::Add,
                container_id: "c1".into(),
                netns: None,
                ifname: "eth0".into(),
                args: CniArgs::parse(cni_args).unwrap(),
                path: vec![],
            },
            raw_netconf,
            netconf,
            version,
        }
    }

    fn load(ipam: &str) -> Result<Config, Error> {
        Config::load(&request(
            &format!(r#"{{"cniVersion":"1.0.0","name":"net1","ipam":{ipam}}}"#),
            "",
        ))
    }

    fn sets(c: &Config) -> Vec<String> {
        c.range_sets.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn legacy_range_comes_before_ranges_and_runtime_ranges_first() {
        let c = Config::load(&request(
            r#"{"cniVersion":"1.0.0","name":"net1",
                "ipam":{"type":"host-local","subnet":"10.1.2.0/24","rangeStart":"10.1.2.10",
                        "ranges":[[{"subnet":"fd00::/64"}]],
                        "routes":[{"dst":"0.0.0.0/0"},{"dst":"10.9.0.0/16","gw":"10.1.2.254"}],
                        "dataDir":"/tmp/x","resolvConf":"/etc/r.conf"},
                "runtimeConfig":{"ipRanges":[[{"subnet":"10.5.0.0/16"}]]}}"#,
            "",
        ))
        .unwrap();
        assert_eq!(
            sets(&c),
            [
                "10.5.0.1-10.5.255.254",
                "10.1.2.10-10.1.2.254",
                "fd00::1-fd00::ffff:ffff:ffff:ffff"
            ]
        );
        let paths: Vec<&str> = c.range_sets.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            ["runtimeConfig.ipRanges[0]", "ipam", "ipam.ranges[0]"]
        );
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[1].gw, Some("10.1.2.254".parse().unwrap()));
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.resolv_conf, Some(PathBuf::from("/etc/r.conf")));
    }

    #[test]
    fn defaults() {
        let c =
            load(r#"{"ranges":[[{"subnet":"10.1.2.0/24"}]],"dataDir":"","gateway":null}"#).unwrap();
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(c.resolv_conf, None);
        assert!(c.routes.is_empty() && c.requested.is_empty());
        // Go's encoding/json matches keys in any case.
        let c = load(r#"{"Ranges":[[{"Subnet":"10.1.2.0/24","rangestart":"10.1.2.5"}]]}"#).unwrap();
        assert_eq!(sets(&c), ["10.1.2.5-10.1.2.254"]);
        // A legacy bound without a legacy subnet is ignored, as by the reference.
        let c = load(r#"{"rangeStart":"10.1.2.9","ranges":[[{"subnet":"10.1.2.0/24"}]]}"#).unwrap();
        assert_eq!(sets(&c), ["10.1.2.1-10.1.2.254"]);
    }

    #[test]
    fn requested_ips_from_every_source_in_order_without_duplicates() {
        let c = Config::load(&request(
            r#"{"cniVersion":"1.0.0","name":"net1","ipam":{"subnet":"10.1.2.0/24"},
                "args":{"cni":{"ips":["10.1.2.7/24","10.1.2.5"]}},
                "runtimeConfig":{"ips":["10.1.2.8","::ffff:10.1.2.9"]}}"#,
            "IP=10.1.2.5,10.1.2.6",
        ))
        .unwrap();
        let got: Vec<(String, &str)> = c
            .requested
            .iter()
            .map(|r| (r.ip.to_string(), r.source.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("10.1.2.5".to_string(), "CNI_ARGS IP"),
                ("10.1.2.6".to_string(), "CNI_ARGS IP"),
                ("10.1.2.7".to_string(), "args.cni.ips[0]"),
                ("10.1.2.8".to_string(), "runtimeConfig.ips[0]"),
                ("10.1.2.9".to_string(), "runtimeConfig.ips[1]"),
            ]
        );
    }

    #[test]
    fn every_invalid_config_is_code_7_naming_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("no ipam", r#"{"cniVersion":"1.0.0","name":"n"}"#, ""),
            (
                "ipam not an object",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":[1]}"#,
                "",
            ),
            (
                "no ranges",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local"}}"#,
                "",
            ),
            (
                "subnet not a cidr",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.1.2.0"}}"#,
                "",
            ),
            (
                "subnet not a string",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":5}}"#,
                "",
            ),
            (
                "slash 31",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.1.2.0/24"},{"subnet":"10.1.3.0/31"}]]}}"#,
                "",
            ),
            (
                "host bits",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.1.2.1/24"}}"#,
                "",
            ),
            (
                "start outside",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.1.2.0/24","rangeStart":"10.1.3.5"}]]}}"#,
                "",
            ),
            (
                "bad end",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.1.2.0/24","rangeEnd":"nope"}]]}}"#,
                "",
            ),
            (
                "empty set",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[]]}}"#,
                "",
            ),
            (
                "mixed families",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.1.2.0/24"},{"subnet":"fd00::/64"}]]}}"#,
                "",
            ),
            (
                "overlap in set",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.1.2.0/24"},{"subnet":"10.1.2.128/25"}]]}}"#,
                "",
            ),
            (
                "overlapping sets",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.1.0.0/16","ranges":[[{"subnet":"10.1.2.0/24"}]]}}"#,
                "",
            ),
            (
                "two v4 sets at 0.2.0",
                r#"{"cniVersion":"0.2.0","name":"n","ipam":{"ranges":[[{"subnet":"10.1.2.0/24"}],[{"subnet":"10.1.3.0/24"}]]}}"#,
                "",
            ),
            (
                "bad runtime range",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{},"runtimeConfig":{"ipRanges":[[{"subnet":"10.1.2.0/32"}]]}}"#,
                "",
            ),
            (
                "bad route",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.1.2.0/24","routes":[{"gw":"10.1.2.1"}]}}"#,
                "",
            ),
            (
                "bad requested ip",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.1.2.0/24"},"runtimeConfig":{"ips":["10.1.2.x"]}}"#,
                "",
            ),
            (
                "bad CNI_ARGS ip",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.1.2.0/24"}}"#,
                "IP=10.1.2.2,bogus",
            ),
            (
                "bad dataDir",
                r#"{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.1.2.0/24","dataDir":7}}"#,
                "",
            ),
        ];
        let mut all = String::new();
        for (what, netconf, args) in cases {
            let e = Config::load(&request(netconf, args)).unwrap_err();
            assert_eq!(
                e.code,
                cni::ErrorCode::INVALID_NETWORK_CONFIG,
                "{what}: {e}"
            );
            all.push_str(&format!("{what}: {}\n", e.to_json(Version::V1_0_0)));
        }
        insta::assert_snapshot!("config_errors", all);
    }

    #[test]
    fn two_sets_per_family_are_fine_from_0_3_0() {
        let c = Config::load(&request(
            r#"{"cniVersion":"0.3.0","name":"n","ipam":{"ranges":[[{"subnet":"10.1.2.0/24"}],[{"subnet":"10.1.3.0/24"}]]}}"#,
            "",
        ))
        .unwrap();
        assert_eq!(c.range_sets.len(), 2);
    }
}
