//! Golden tests: representative netconfs rendered to the nft JSON batch ADD applies (and
//! DEL's), as insta snapshots.

use policy::transaction::{add_batch, del_batch};
use policy::{interface_policy, render, Config};
use serde_json::{json, Value};

fn batch(conf: Value, ifname: &str) -> Value {
    let netconf = cni::NetConf::parse(conf.to_string().as_bytes()).expect("netconf decodes");
    let config = Config::parse(&netconf).expect("config is valid");
    let policy = interface_policy(&config, ifname).expect("policy builds");
    if !policy.enforces_any() {
        return Value::Null;
    }
    serde_json::to_value(add_batch(&render::render(ifname, &policy), false).to_nftables()).unwrap()
}

fn base(extra: Value) -> Value {
    let mut conf = json!({"cniVersion": "1.0.0", "name": "net-a", "type": "policy"});
    conf.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    conf
}

/// A MultiNetworkPolicy context: pod `p1` (app=db) in `default` on `default/net-a`, peers in
/// two namespaces, and the given policies.
fn context(policies: Value) -> Value {
    json!({
        "network": {"namespace": "default", "name": "net-a"},
        "pod": {"namespace": "default", "name": "p1", "labels": {"app": "db"},
                "containerPorts": [{"name": "pg", "containerPort": 5432, "protocol": "TCP"}]},
        "namespaces": [{"name": "default", "labels": {"team": "a"}},
                       {"name": "other", "labels": {"team": "b"}}],
        "pods": [
            {"namespace": "default", "name": "web", "labels": {"app": "web", "env": "prod"},
             "ips": ["10.1.0.5", "fd00::5"]},
            {"namespace": "default", "name": "dev", "labels": {"app": "web", "env": "dev"},
             "ips": ["10.1.0.6"]},
            {"namespace": "other", "name": "mon", "labels": {"app": "mon"}, "ips": ["10.1.0.7"]}
        ],
        "policies": policies
    })
}

fn mnp(name: &str, policy_for: &str, spec: Value) -> Value {
    json!({"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
           "metadata": {"name": name, "namespace": "default",
                        "annotations": {"k8s.v1.cni.cncf.io/policy-for": policy_for}},
           "spec": spec})
}

#[test]
fn security_groups_with_ports_excepts_icmp_and_groups() {
    insta::assert_json_snapshot!(batch(
        base(json!({
            "policyTypes": ["Ingress", "Egress"],
            "securityGroups": {
                "web": {
                    "ingress": [
                        {"protocol": "tcp", "ports": ["80", "8000-8080", "8080-8090"],
                         "from": [{"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16", "10.8.0.0/16"]},
                                  {"cidr": "10.9.1.0/24"}]},
                        {"protocol": "icmp", "icmpType": 8, "icmpCode": 0, "from": [{"cidr": "0.0.0.0/0"}]},
                        {"protocol": "icmpv6", "from": [{"cidr": "::/0"}]},
                        {"protocol": "47", "from": [{"group": "dns"}]}
                    ],
                    "egress": [{"protocol": "udp", "ports": ["53"], "to": [{"group": "dns"}]}]
                },
                "dns": {}
            },
            "groupMembers": {"dns": ["10.0.0.10/32", "fd00::10/128"]},
            "attach": ["web"]
        })),
        "net1"
    ));
}

#[test]
fn egress_only_stateless_with_dhcp_and_no_ndp() {
    insta::assert_json_snapshot!(batch(
        base(json!({
            "policyTypes": ["Egress"], "stateful": false, "allowNDP": false, "allowDHCP": true,
            "securityGroups": {"out": {"egress": [{"protocol": "all", "to": [{"cidr": "192.168.0.0/16"}]}]}},
            "attach": ["out"]
        })),
        "net2"
    ));
}

#[test]
fn pod_selected_groups_add_to_attached_ones() {
    insta::assert_json_snapshot!(batch(
        base(json!({
            "securityGroups": {
                "base": {"ingress": [{"protocol": "tcp", "ports": ["22"], "from": [{"cidr": "10.0.0.0/8"}]}]},
                "extra": {"ingress": [{"protocol": "udp", "ports": ["5000-5010"], "from": [{"cidr": "fd00::/64"}]}]}
            },
            "attach": ["base"],
            "podSelectableGroups": ["extra"],
            "args": {"cni": {"securityGroups": ["extra"]}}
        })),
        "net1"
    ));
}

#[test]
fn multi_network_policies_with_selectors_named_ports_and_ip_blocks() {
    let policies = json!([
        mnp(
            "db-in",
            "net-a",
            json!({
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [
                    {"from": [{"podSelector": {"matchExpressions": [
                                  {"key": "env", "operator": "In", "values": ["prod"]}]}},
                              {"namespaceSelector": {"matchLabels": {"team": "b"}}}],
                     "ports": [{"port": "pg"}, {"port": "missing"}, {"port": 9000, "endPort": 9010, "protocol": "UDP"}]},
                    {"from": [{"ipBlock": {"cidr": "172.16.0.0/12", "except": ["172.16.5.0/24"]}}]}
                ],
                "egress": [{"to": [{"podSelector": {}, "namespaceSelector": {"matchLabels": {"team": "b"}}}]}]
            })
        ),
        mnp(
            "other-net",
            "default/net-b",
            json!({"podSelector": {}, "ingress": [{}]})
        ),
        mnp(
            "other-pod",
            "net-a",
            json!({"podSelector": {"matchLabels": {"app": "web"}}})
        )
    ]);
    insta::assert_json_snapshot!(batch(
        base(json!({"multiNetworkPolicy": context(policies)})),
        "net1"
    ));
}

#[test]
fn multi_network_policy_ored_with_inline_groups() {
    let policies = json!([mnp(
        "deny-all",
        "default/net-a",
        json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    )]);
    insta::assert_json_snapshot!(batch(
        base(json!({
            "securityGroups": {"ssh": {"ingress": [{"protocol": "tcp", "ports": ["22"], "from": [{"cidr": "10.0.0.0/8"}]}]}},
            "attach": ["ssh"],
            "multiNetworkPolicy": context(policies)
        })),
        "net1"
    ));
}

#[test]
fn nothing_enforced_installs_nothing() {
    let policies = json!([mnp("elsewhere", "net-b", json!({"podSelector": {}}))]);
    assert_eq!(batch(base(json!({})), "net1"), Value::Null);
    assert_eq!(
        batch(
            base(json!({"multiNetworkPolicy": context(policies)})),
            "net1"
        ),
        Value::Null
    );
    assert_eq!(
        batch(
            base(json!({"securityGroups": {"g": {}}, "podSelectableGroups": ["g"]})),
            "net1"
        ),
        Value::Null
    );
}

#[test]
fn del_batch_removes_every_chain_of_the_interface() {
    insta::assert_json_snapshot!(serde_json::to_value(del_batch("net1").to_nftables()).unwrap());
}
