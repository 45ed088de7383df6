//! The plugin's netconf: inline security groups and switches, the MultiNetworkPolicy context
//! the meta plugin injects, and the groups a pod picked through `args.cni.securityGroups`.
//! Everything is validated here, before any kernel call.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde_json::Value;

use crate::error::PolicyError;
use crate::fields::{index, join, Fields};
use crate::ir::Direction;
use crate::multi_network::MultiNetworkContext;
use crate::security_groups::{self, GroupPeer, SecurityGroup};

/// The key under which the meta plugin injects the Kubernetes objects (see
/// [`MultiNetworkContext`]).
pub const CONTEXT_KEY: &str = "multiNetworkPolicy";

/// Default bound on the nft rules of one interface, so a transaction stays small.
const DEFAULT_MAX_RULES: usize = 1000;

/// The validated configuration of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Directions the inline groups enforce (default: ingress, as NetworkPolicy).
    pub policy_types: Vec<Direction>,
    /// Replies to allowed traffic pass; invalid packets drop.
    pub stateful: bool,
    /// ICMPv6 neighbour and router discovery pass.
    pub allow_ndp: bool,
    /// DHCP client traffic passes.
    pub allow_dhcp: bool,
    /// The groups defined inline.
    pub groups: BTreeMap<String, SecurityGroup>,
    /// The addresses of the groups used as peers.
    pub group_members: BTreeMap<String, Vec<IpNet>>,
    /// The groups applied to this attachment: `attach`, then the pod's picks.
    pub applied: Vec<String>,
    /// Bound on the rendered nft rules of the interface.
    pub max_rules: usize,
    /// The Kubernetes objects, when the meta plugin passed them.
    pub context: Option<MultiNetworkContext>,
}

fn directions(path: &str, list: Vec<String>) -> Result<Vec<Direction>, PolicyError> {
    list.iter()
        .enumerate()
        .map(|(i, t)| match t.as_str() {
            "Ingress" => Ok(Direction::Ingress),
            "Egress" => Ok(Direction::Egress),
            _ => Err(PolicyError::invalid(
                index(path, i),
                t,
                "must be Ingress or Egress",
            )),
        })
        .collect()
}

impl Config {
    /// Reads the plugin's keys from the netconf's `extra` keys and its `args`.
    pub fn parse(netconf: &cni::NetConf) -> Result<Config, PolicyError> {
        let mut f = Fields::new("", Value::Object(netconf.extra.clone()))?;
        // Runtime-injected keys the skeleton does not type.
        f.take_value("cni.dev/valid-attachments");
        for (key, allowed) in [("mode", "static"), ("placement", "pod")] {
            if let Some(v) = f.take_value(key) {
                if v != Value::String(allowed.into()) {
                    return Err(PolicyError::NotSupported {
                        path: key.into(),
                        value: v.to_string(),
                    });
                }
            }
        }
        for key in ["agent", "logDropped", "resetOnUpdate", "onUnavailable"] {
            if let Some(v) = f.take_value(key) {
                return Err(PolicyError::NotSupported {
                    path: key.into(),
                    value: v.to_string(),
                });
            }
        }
        let policy_types = match f.take::<Vec<String>>("policyTypes")? {
            Some(list) => directions("policyTypes", list)?,
            None => vec![Direction::Ingress],
        };
        let stateful = f.take("stateful")?.unwrap_or(true);
        let allow_ndp = f.take("allowNDP")?.unwrap_or(true);
        let allow_dhcp = f.take("allowDHCP")?.unwrap_or(false);
        let max_rules = f.take("maxRulesPerInterface")?.unwrap_or(DEFAULT_MAX_RULES);
        let groups = match f.take_value("securityGroups") {
            Some(v) => security_groups::parse("securityGroups", v)?,
            None => BTreeMap::new(),
        };
        let members_raw: BTreeMap<String, Vec<String>> =
            f.take("groupMembers")?.unwrap_or_default();
        let mut group_members = BTreeMap::new();
        for (name, list) in members_raw {
            let path = join("groupMembers", &name);
            if !groups.contains_key(&name) {
                return Err(PolicyError::invalid(path, &name, "no such security group"));
            }
            let nets = list
                .iter()
                .enumerate()
                .map(|(i, t)| security_groups::strict_cidr(&index(&path, i), t))
                .collect::<Result<Vec<_>, _>>()?;
            group_members.insert(name, nets);
        }
        let attach: Vec<String> = f.take("attach")?.unwrap_or_default();
        let selectable: Vec<String> = f.take("podSelectableGroups")?.unwrap_or_default();
        for (key, list) in [("attach", &attach), ("podSelectableGroups", &selectable)] {
            for (i, name) in list.iter().enumerate() {
                if !groups.contains_key(name) {
                    return Err(PolicyError::invalid(
                        index(key, i),
                        name,
                        "no such security group",
                    ));
                }
            }
        }
        let context = match f.take_value(CONTEXT_KEY) {
            Some(v) => Some(
                serde_json::from_value(v).map_err(|source| PolicyError::Decode {
                    path: CONTEXT_KEY.into(),
                    source,
                })?,
            ),
            None => None,
        };
        f.finish()?;

        // Group references inside rules must name defined groups.
        for (name, group) in &groups {
            for (word, list) in [("ingress", &group.ingress), ("egress", &group.egress)] {
                let peer_key = if word == "ingress" { "from" } else { "to" };
                for (i, rule) in list.iter().enumerate() {
                    for (j, peer) in rule.peers.iter().enumerate() {
                        if let GroupPeer::Group(g) = peer {
                            if !groups.contains_key(g) {
                                return Err(PolicyError::invalid(
                                    format!(
                                        "securityGroups.{name}.{word}[{i}].{peer_key}[{j}].group"
                                    ),
                                    g,
                                    "no such security group",
                                ));
                            }
                        }
                    }
                }
            }
        }

        let mut applied = attach;
        let picked = netconf.cni_arg("securityGroups").cloned();
        if let Some(picked) = picked {
            let path = "args.cni.securityGroups";
            let names: Vec<String> = serde_json::from_value(picked.clone())
                .map_err(|e| PolicyError::invalid(path, &picked, e.to_string()))?;
            for (i, name) in names.into_iter().enumerate() {
                if !selectable.contains(&name) {
                    return Err(PolicyError::invalid(
                        index(path, i),
                        &name,
                        "not in podSelectableGroups",
                    ));
                }
                if !applied.contains(&name) {
                    applied.push(name);
                }
            }
        }
        Ok(Config {
            policy_types,
            stateful,
            allow_ndp,
            allow_dhcp,
            groups,
            group_members,
            applied,
            max_rules,
            context,
        })
    }
}
