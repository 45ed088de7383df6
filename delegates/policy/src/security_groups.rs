//! Inline security groups (`securityGroups` in the netconf): parsed and validated rule by
//! rule, each refusal naming its JSON path, then turned into the IR for the groups an
//! attachment gets.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde_json::Value;

use crate::error::PolicyError;
use crate::fields::{index, Fields};
use crate::ir::{Direction, Peer, PortProtocol, Rule, L4};

/// One group: its allow rules per direction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SecurityGroup {
    /// Rules for traffic into the pod.
    pub ingress: Vec<GroupRule>,
    /// Rules for traffic out of the pod.
    pub egress: Vec<GroupRule>,
}

/// One rule of a group, before group peers are resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRule {
    /// Protocol and ports.
    pub l4: L4,
    /// The peers, ORed.
    pub peers: Vec<GroupPeer>,
}

/// A peer of a group rule.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupPeer {
    /// An address block minus exceptions.
    Cidr {
        /// The block.
        net: IpNet,
        /// Blocks of it this peer does not allow.
        excepts: Vec<IpNet>,
    },
    /// The members of a group (`groupMembers`).
    Group(String),
}

/// Whether `name` is a valid group identifier: `[A-Za-z0-9_.-]{1,63}`.
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Parses `securityGroups` at `path`.
pub(crate) fn parse(
    path: &str,
    value: Value,
) -> Result<BTreeMap<String, SecurityGroup>, PolicyError> {
    let Value::Object(groups) = value else {
        return Err(PolicyError::invalid(
            path,
            value,
            "must be an object of groups",
        ));
    };
    let mut out = BTreeMap::new();
    for (name, group) in groups {
        let group_path = format!("{path}.{name}");
        if !valid_name(&name) {
            return Err(PolicyError::invalid(
                &group_path,
                &name,
                "a group name is 1-63 of [A-Za-z0-9_.-]",
            ));
        }
        let mut fields = Fields::new(&group_path, group)?;
        let mut parsed = SecurityGroup::default();
        for (key, peer_key, rules) in [
            ("ingress", "from", &mut parsed.ingress),
            ("egress", "to", &mut parsed.egress),
        ] {
            let list: Vec<Value> = fields.take(key)?.unwrap_or_default();
            let list_path = fields.path_of(key);
            for (i, rule) in list.into_iter().enumerate() {
                rules.push(parse_rule(&index(&list_path, i), peer_key, rule)?);
            }
        }
        fields.finish()?;
        out.insert(name, parsed);
    }
    Ok(out)
}

fn parse_rule(path: &str, peer_key: &str, value: Value) -> Result<GroupRule, PolicyError> {
    let mut f = Fields::new(path, value)?;
    let protocol: Value = f
        .take("protocol")?
        .ok_or_else(|| PolicyError::invalid(f.path_of("protocol"), "null", "is required"))?;
    let ports: Option<Vec<String>> = f.take("ports")?;
    let icmp_type: Option<i64> = f.take("icmpType")?;
    let icmp_code: Option<i64> = f.take("icmpCode")?;
    let peers: Vec<Value> = f.take(peer_key)?.unwrap_or_default();
    let peers_path = f.path_of(peer_key);
    let l4 = l4(&f, &protocol, ports, icmp_type, icmp_code)?;
    if peers.is_empty() {
        return Err(PolicyError::invalid(
            peers_path,
            "[]",
            "a rule needs at least one peer (0.0.0.0/0 and ::/0 allow everyone)",
        ));
    }
    let peers = peers
        .into_iter()
        .enumerate()
        .map(|(i, p)| parse_peer(&index(&peers_path, i), p))
        .collect::<Result<_, _>>()?;
    f.finish()?;
    Ok(GroupRule { l4, peers })
}

fn l4(
    f: &Fields,
    protocol: &Value,
    ports: Option<Vec<String>>,
    icmp_type: Option<i64>,
    icmp_code: Option<i64>,
) -> Result<L4, PolicyError> {
    let proto_path = f.path_of("protocol");
    let word = match protocol {
        Value::String(s) => s.to_ascii_lowercase(),
        Value::Number(n) => n.to_string(),
        other => return Err(PolicyError::invalid(proto_path, other, "must be a string")),
    };
    let port_protocol = match word.as_str() {
        "tcp" | "6" => Some(PortProtocol::Tcp),
        "udp" | "17" => Some(PortProtocol::Udp),
        "sctp" | "132" => Some(PortProtocol::Sctp),
        _ => None,
    };
    let icmp = match word.as_str() {
        "icmp" | "1" => Some(false),
        "icmpv6" | "58" => Some(true),
        _ => None,
    };
    if ports.is_some() && port_protocol.is_none() {
        return Err(PolicyError::invalid(
            f.path_of("ports"),
            serde_json::to_string(&ports).unwrap_or_default(),
            format!("ports need protocol tcp, udp or sctp, not {word:?}"),
        ));
    }
    if (icmp_type.is_some() || icmp_code.is_some()) && icmp.is_none() {
        return Err(PolicyError::invalid(
            f.path_of("icmpType"),
            icmp_type.or(icmp_code).unwrap_or_default(),
            format!("icmpType and icmpCode need protocol icmp or icmpv6, not {word:?}"),
        ));
    }
    if let Some(p) = port_protocol {
        let Some(ports) = ports else {
            return Ok(L4::Ports(p, vec![(1, 65535)]));
        };
        if ports.is_empty() {
            return Err(PolicyError::invalid(f.path_of("ports"), "[]", "empty list"));
        }
        let ranges = ports
            .iter()
            .enumerate()
            .map(|(i, text)| port_range(&index(&f.path_of("ports"), i), text))
            .collect::<Result<_, _>>()?;
        return Ok(L4::ports(p, ranges));
    }
    if let Some(v6) = icmp {
        let byte = |key: &str, v: Option<i64>| -> Result<Option<u8>, PolicyError> {
            v.map(|n| {
                u8::try_from(n)
                    .map_err(|_| PolicyError::invalid(f.path_of(key), n, "must be 0-255"))
            })
            .transpose()
        };
        let icmp_type = byte("icmpType", icmp_type)?;
        let code = byte("icmpCode", icmp_code)?;
        if code.is_some() && icmp_type.is_none() {
            return Err(PolicyError::invalid(
                f.path_of("icmpCode"),
                code.unwrap_or_default(),
                "icmpCode needs icmpType",
            ));
        }
        return Ok(L4::Icmp {
            v6,
            icmp_type,
            code,
        });
    }
    if word == "all" || word == "-1" {
        return Ok(L4::Any);
    }
    match word.parse::<u8>() {
        Ok(n) => Ok(L4::Protocol(n)),
        Err(_) => Err(PolicyError::invalid(
            proto_path,
            word,
            "must be tcp, udp, sctp, icmp, icmpv6, all or a protocol number 0-255",
        )),
    }
}

/// `"N"` or `"A-B"`, 1 <= A <= B <= 65535.
fn port_range(path: &str, text: &str) -> Result<(u16, u16), PolicyError> {
    let port = |s: &str| -> Result<u16, PolicyError> {
        match s.trim().parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
            Ok(_) => Err(PolicyError::invalid(path, text, "a port is 1-65535")),
            Err(_) => Err(PolicyError::invalid(
                path,
                text,
                "a port is a number 1-65535 or a range A-B (named ports need a MultiNetworkPolicy)",
            )),
        }
    };
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(text)?;
            (p, p)
        }
    };
    if a > b {
        return Err(PolicyError::invalid(
            path,
            text,
            "range start is above its end",
        ));
    }
    Ok((a, b))
}

/// A CIDR with no host bits.
pub(crate) fn strict_cidr(path: &str, text: &str) -> Result<IpNet, PolicyError> {
    let net: IpNet = text
        .parse()
        .map_err(|e| PolicyError::invalid(path, text, format!("not a CIDR: {e}")))?;
    if net.trunc() != net {
        return Err(PolicyError::invalid(
            path,
            text,
            format!("host bits set: the block is {}", net.trunc()),
        ));
    }
    Ok(net)
}

/// Checks each except is of `net`'s family and inside it.
pub(crate) fn check_excepts(
    path: &str,
    net: IpNet,
    excepts: &[(String, IpNet)],
) -> Result<(), PolicyError> {
    for (i, (text, ex)) in excepts.iter().enumerate() {
        let ex_path = index(path, i);
        let same_family = matches!(
            (net, ex),
            (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
        );
        if !same_family {
            return Err(PolicyError::invalid(
                ex_path,
                text,
                format!("not of the family of {net}"),
            ));
        }
        if !net.contains(ex) {
            return Err(PolicyError::invalid(
                ex_path,
                text,
                format!("not inside {net}"),
            ));
        }
    }
    Ok(())
}

fn parse_peer(path: &str, value: Value) -> Result<GroupPeer, PolicyError> {
    let mut f = Fields::new(path, value)?;
    if let Some(list) = f.take_value("prefixList") {
        return Err(PolicyError::NotSupported {
            path: f.path_of("prefixList"),
            value: list.to_string(),
        });
    }
    let cidr: Option<String> = f.take("cidr")?;
    let group: Option<String> = f.take("group")?;
    let except: Option<Vec<String>> = f.take("except")?;
    let except_path = f.path_of("except");
    let peer = match (cidr, group) {
        (Some(text), None) => {
            let net = strict_cidr(&f.path_of("cidr"), &text)?;
            let excepts = except
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, t)| {
                    let ex = strict_cidr(&index(&except_path, i), &t)?;
                    Ok((t, ex))
                })
                .collect::<Result<Vec<_>, PolicyError>>()?;
            check_excepts(&except_path, net, &excepts)?;
            GroupPeer::Cidr {
                net,
                excepts: excepts.into_iter().map(|(_, ex)| ex).collect(),
            }
        }
        (None, Some(name)) => {
            if except.is_some() {
                return Err(PolicyError::invalid(
                    except_path,
                    "[...]",
                    "except goes with cidr, not group",
                ));
            }
            GroupPeer::Group(name)
        }
        _ => {
            return Err(PolicyError::invalid(
                path,
                "{...}",
                "a peer has exactly one of cidr or group",
            ))
        }
    };
    f.finish()?;
    Ok(peer)
}

/// The IR rules of `applied` groups (in the order given), group peers resolved through
/// `members`. Every group and member reference is known: the config checked them.
pub(crate) fn rules(
    groups: &BTreeMap<String, SecurityGroup>,
    members: &BTreeMap<String, Vec<IpNet>>,
    applied: &[String],
    policy_types: &[Direction],
) -> Vec<Rule> {
    let mut out = Vec::new();
    for name in applied {
        let Some(group) = groups.get(name) else {
            continue;
        };
        for (direction, list, word) in [
            (Direction::Ingress, &group.ingress, "in"),
            (Direction::Egress, &group.egress, "out"),
        ] {
            if !policy_types.contains(&direction) {
                continue;
            }
            for (i, rule) in list.iter().enumerate() {
                out.push(Rule {
                    origin: format!("{name}/{word}/{i}"),
                    direction,
                    l4: rule.l4.clone(),
                    peers: rule
                        .peers
                        .iter()
                        .map(|p| match p {
                            GroupPeer::Cidr { net, excepts } => Peer::Cidr {
                                net: *net,
                                excepts: excepts.clone(),
                            },
                            GroupPeer::Group(g) => Peer::Set {
                                name: format!("group {g}"),
                                members: members.get(g).cloned().unwrap_or_default(),
                            },
                        })
                        .collect(),
                });
            }
        }
    }
    out
}
