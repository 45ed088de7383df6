//! MultiNetworkPolicy: the objects the meta plugin injects ([`MultiNetworkContext`]), which
//! policies apply to this attachment, and their rules in the IR, with NetworkPolicy's
//! semantics (see the crate docs for where they differ from the reference implementations).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::ContainerPort;
use k8s_openapi::api::networking::v1::{NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use nad_crd::{MultiNetworkPolicy, PolicyNetwork};
use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::fields::index;
use crate::ir::{Direction, Peer, PortProtocol, Rule, L4};
use crate::security_groups::check_excepts;
use crate::selector;

/// What the meta plugin gathers from Kubernetes and injects under the netconf's top-level
/// `multiNetworkPolicy` key: the delegate itself never talks to Kubernetes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MultiNetworkContext {
    /// The NAD this attachment is on.
    pub network: NetworkRef,
    /// The pod being attached.
    pub pod: TargetPod,
    /// Every namespace, with its labels (for `namespaceSelector`).
    #[serde(default)]
    pub namespaces: Vec<NamespaceInfo>,
    /// Every pod that could be a peer, with its addresses on this network.
    #[serde(default)]
    pub pods: Vec<PeerPod>,
    /// The MultiNetworkPolicy objects, as the API returns them.
    #[serde(default)]
    pub policies: Vec<MultiNetworkPolicy>,
}

/// A NAD, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRef {
    /// The NAD's namespace.
    pub namespace: String,
    /// The NAD's name.
    pub name: String,
}

/// The pod the rules are for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetPod {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its containers' ports, against which named ports are resolved.
    #[serde(default)]
    pub container_ports: Vec<ContainerPort>,
}

/// A namespace and its labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceInfo {
    /// The namespace's name.
    pub name: String,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A pod that may be a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerPod {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its addresses on this attachment's network (from its network-status).
    #[serde(default)]
    pub ips: Vec<IpAddr>,
}

/// The part of the interface's policy that the applicable MultiNetworkPolicies make.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyRules {
    /// Some applicable policy enforces ingress.
    pub ingress: bool,
    /// Some applicable policy enforces egress.
    pub egress: bool,
    /// The allow rules of all of them.
    pub rules: Vec<Rule>,
}

impl MultiNetworkContext {
    /// The rules of the policies that apply to this pod on this network: a policy in the
    /// pod's namespace, whose `policy-for` names the network and whose `podSelector`
    /// selects the pod. Every policy is validated, applicable or not, so a broken policy
    /// never goes unnoticed.
    pub fn rules(&self) -> Result<PolicyRules, PolicyError> {
        let network = PolicyNetwork {
            namespace: self.network.namespace.clone(),
            name: self.network.name.clone(),
        };
        let mut out = PolicyRules::default();
        for (i, policy) in self.policies.iter().enumerate() {
            let path = index("multiNetworkPolicy.policies", i);
            let spec_path = format!("{path}.spec");
            let pod_selector = policy.spec.pod_selector.clone().unwrap_or_default();
            selector::validate(&format!("{spec_path}.podSelector"), &pod_selector)?;
            let types = policy_types(&spec_path, policy)?;
            let applies = policy.namespace() == self.pod.namespace
                && policy.policy_for().contains(&network)
                && selector::matches(&pod_selector, &self.pod.labels);
            let origin = format!("mnp:{}/{}", policy.namespace(), policy.name());
            let mut rules = Vec::new();
            for (j, rule) in policy.spec.ingress.iter().flatten().enumerate() {
                rules.extend(self.rule(
                    policy,
                    &index(&format!("{spec_path}.ingress"), j),
                    &format!("{origin}/in/{j}"),
                    Direction::Ingress,
                    rule.ports.as_deref().unwrap_or_default(),
                    rule.from.as_deref().unwrap_or_default(),
                    "from",
                )?);
            }
            for (j, rule) in policy.spec.egress.iter().flatten().enumerate() {
                rules.extend(self.rule(
                    policy,
                    &index(&format!("{spec_path}.egress"), j),
                    &format!("{origin}/out/{j}"),
                    Direction::Egress,
                    rule.ports.as_deref().unwrap_or_default(),
                    rule.to.as_deref().unwrap_or_default(),
                    "to",
                )?);
            }
            if !applies {
                continue;
            }
            out.ingress |= types.contains(&Direction::Ingress);
            out.egress |= types.contains(&Direction::Egress);
            // Rules of a direction the policy does not enforce are ignored, as NetworkPolicy
            // ignores them.
            out.rules
                .extend(rules.into_iter().filter(|r| types.contains(&r.direction)));
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn rule(
        &self,
        policy: &MultiNetworkPolicy,
        path: &str,
        origin: &str,
        direction: Direction,
        ports: &[NetworkPolicyPort],
        peers: &[NetworkPolicyPeer],
        peer_key: &str,
    ) -> Result<Vec<Rule>, PolicyError> {
        let peers = if peers.is_empty() {
            vec![Peer::Any]
        } else {
            peers
                .iter()
                .enumerate()
                .map(|(k, p)| self.peer(policy, &index(&format!("{path}.{peer_key}"), k), p))
                .collect::<Result<Vec<_>, _>>()?
        };
        if ports.is_empty() {
            return Ok(vec![Rule {
                origin: origin.to_owned(),
                direction,
                l4: L4::Any,
                peers,
            }]);
        }
        // Port entries grouped by protocol: one rule per protocol, its ranges in one set.
        let mut by_protocol: BTreeMap<PortProtocol, Vec<(u16, u16)>> = BTreeMap::new();
        for (k, port) in ports.iter().enumerate() {
            let port_path = index(&format!("{path}.ports"), k);
            let (protocol, range) = self.port(&port_path, port)?;
            // An unresolvable named port matches nothing, as in NetworkPolicy.
            if let Some(range) = range {
                by_protocol.entry(protocol).or_default().push(range);
            }
        }
        Ok(by_protocol
            .into_iter()
            .map(|(protocol, ranges)| Rule {
                origin: format!("{origin}/{}", protocol.word()),
                direction,
                l4: L4::ports(protocol, ranges),
                peers: peers.clone(),
            })
            .collect())
    }

    /// The protocol and range of one port entry; `None` for a named port this pod does not
    /// have.
    fn port(
        &self,
        path: &str,
        port: &NetworkPolicyPort,
    ) -> Result<(PortProtocol, Option<(u16, u16)>), PolicyError> {
        let protocol = match port.protocol.as_deref().unwrap_or("TCP") {
            "TCP" => PortProtocol::Tcp,
            "UDP" => PortProtocol::Udp,
            "SCTP" => PortProtocol::Sctp,
            other => {
                return Err(PolicyError::invalid(
                    format!("{path}.protocol"),
                    other,
                    "must be TCP, UDP or SCTP",
                ))
            }
        };
        let number = |n: i32, key: &str| -> Result<u16, PolicyError> {
            u16::try_from(n).ok().filter(|p| *p >= 1).ok_or_else(|| {
                PolicyError::invalid(format!("{path}.{key}"), n, "a port is 1-65535")
            })
        };
        let range = match &port.port {
            None => {
                if let Some(end) = port.end_port {
                    return Err(PolicyError::invalid(
                        format!("{path}.endPort"),
                        end,
                        "endPort needs a numeric port",
                    ));
                }
                Some((1, 65535))
            }
            Some(IntOrString::Int(n)) => {
                let first = number(*n, "port")?;
                let last = match port.end_port {
                    Some(end) => number(end, "endPort")?,
                    None => first,
                };
                if last < first {
                    return Err(PolicyError::invalid(
                        format!("{path}.endPort"),
                        last,
                        format!("below port {first}"),
                    ));
                }
                Some((first, last))
            }
            Some(IntOrString::String(name)) => {
                if let Some(end) = port.end_port {
                    return Err(PolicyError::invalid(
                        format!("{path}.endPort"),
                        end,
                        "endPort needs a numeric port, not a named one",
                    ));
                }
                self.pod
                    .container_ports
                    .iter()
                    .find(|cp| {
                        cp.name.as_deref() == Some(name.as_str())
                            && cp.protocol.as_deref().unwrap_or("TCP")
                                == port.protocol.as_deref().unwrap_or("TCP")
                    })
                    .and_then(|cp| u16::try_from(cp.container_port).ok())
                    .filter(|p| *p >= 1)
                    .map(|p| (p, p))
            }
        };
        Ok((protocol, range))
    }

    fn peer(
        &self,
        policy: &MultiNetworkPolicy,
        path: &str,
        peer: &NetworkPolicyPeer,
    ) -> Result<Peer, PolicyError> {
        if let Some(block) = &peer.ip_block {
            if peer.pod_selector.is_some() || peer.namespace_selector.is_some() {
                return Err(PolicyError::invalid(
                    path,
                    "{...}",
                    "ipBlock excludes podSelector and namespaceSelector",
                ));
            }
            let cidr_path = format!("{path}.ipBlock.cidr");
            // Host bits are masked, as the API server accepts them.
            let net = block
                .cidr
                .parse::<IpNet>()
                .map_err(|e| PolicyError::invalid(&cidr_path, &block.cidr, e.to_string()))?
                .trunc();
            let except_path = format!("{path}.ipBlock.except");
            let excepts = block
                .except
                .iter()
                .flatten()
                .enumerate()
                .map(|(i, t)| {
                    t.parse::<IpNet>()
                        .map(|ex| (t.clone(), ex.trunc()))
                        .map_err(|e| PolicyError::invalid(index(&except_path, i), t, e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            check_excepts(&except_path, net, &excepts)?;
            return Ok(Peer::Cidr {
                net,
                excepts: excepts.into_iter().map(|(_, ex)| ex).collect(),
            });
        }
        let (pods, namespaces) = match (&peer.pod_selector, &peer.namespace_selector) {
            (None, None) => {
                return Err(PolicyError::invalid(
                    path,
                    "{}",
                    "a peer needs ipBlock, podSelector or namespaceSelector",
                ))
            }
            (p, n) => (p.clone().unwrap_or_default(), n.clone()),
        };
        selector::validate(&format!("{path}.podSelector"), &pods)?;
        if let Some(ns) = &namespaces {
            selector::validate(&format!("{path}.namespaceSelector"), ns)?;
        }
        let in_namespace = |pod_ns: &str| match &namespaces {
            // Without a namespaceSelector, peers are in the policy's namespace.
            None => pod_ns == policy.namespace(),
            Some(selector) => self
                .namespaces
                .iter()
                .find(|n| n.name == pod_ns)
                .is_some_and(|n| selector::matches(selector, &n.labels)),
        };
        let mut members: Vec<IpNet> = self
            .pods
            .iter()
            .filter(|p| in_namespace(&p.namespace) && selector::matches(&pods, &p.labels))
            .flat_map(|p| p.ips.iter().map(|ip| IpNet::from(*ip)))
            .collect();
        members.sort();
        members.dedup();
        Ok(Peer::Set {
            name: describe(&pods, namespaces.as_ref()),
            members,
        })
    }
}

/// A short description of a selector peer, for the IR (and so the digest changes with it).
fn describe(pods: &LabelSelector, namespaces: Option<&LabelSelector>) -> String {
    let text = |s: &LabelSelector| serde_json::to_string(s).unwrap_or_default();
    match namespaces {
        None => format!("pods {}", text(pods)),
        Some(ns) => format!("pods {} in namespaces {}", text(pods), text(ns)),
    }
}

/// The directions a policy enforces: `policyTypes`, or NetworkPolicy's default (Ingress
/// always, Egress when there are egress rules).
fn policy_types(path: &str, policy: &MultiNetworkPolicy) -> Result<Vec<Direction>, PolicyError> {
    match &policy.spec.policy_types {
        Some(types) if !types.is_empty() => types
            .iter()
            .enumerate()
            .map(|(i, t)| match t.as_str() {
                "Ingress" => Ok(Direction::Ingress),
                "Egress" => Ok(Direction::Egress),
                other => Err(PolicyError::invalid(
                    index(&format!("{path}.policyTypes"), i),
                    other,
                    "must be Ingress or Egress",
                )),
            })
            .collect(),
        _ => {
            let mut types = vec![Direction::Ingress];
            if policy.spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                types.push(Direction::Egress);
            }
            Ok(types)
        }
    }
}
