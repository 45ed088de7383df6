//! Every refusal of the pure validation: the CNI code and the JSON path it names.

use policy::{interface_policy, Config};
use serde_json::{json, Value};

/// The code and details (the JSON path) of the error `extra` gets.
fn refusal(extra: Value) -> (u32, String, String) {
    let mut conf = json!({"cniVersion": "1.0.0", "name": "net-a", "type": "policy"});
    conf.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let netconf = cni::NetConf::parse(conf.to_string().as_bytes()).unwrap();
    let err = Config::parse(&netconf)
        .and_then(|c| interface_policy(&c, "net1").map(|_| ()))
        .expect_err("refused");
    let e = cni::Error::from(err);
    (e.code.0, e.details, e.msg)
}

fn rule(rule: Value) -> Value {
    json!({"securityGroups": {"g": {"ingress": [rule]}}, "attach": ["g"]})
}

fn mnp(spec: Value) -> Value {
    json!({"multiNetworkPolicy": {
        "network": {"namespace": "default", "name": "net-a"},
        "pod": {"namespace": "default", "name": "p1"},
        "policies": [{"metadata": {"name": "p", "namespace": "default",
                      "annotations": {"k8s.v1.cni.cncf.io/policy-for": "net-a"}},
                      "spec": spec}]}})
}

#[test]
fn each_refusal_has_its_code_and_path() {
    let peer = json!([{"cidr": "10.0.0.0/8"}]);
    let cases: Vec<(&str, Value, u32, &str)> = vec![
        ("unknown key", json!({"frob": 1}), 2, "frob"),
        (
            "unknown rule key",
            rule(json!({"protocol": "tcp", "from": peer, "prot": 1})),
            2,
            "securityGroups.g.ingress[0].prot",
        ),
        (
            "unknown peer key",
            rule(json!({"protocol": "tcp", "from": [{"cidr": "10.0.0.0/8", "x": 1}]})),
            2,
            "securityGroups.g.ingress[0].from[0].x",
        ),
        ("dynamic mode", json!({"mode": "dynamic"}), 7, "mode"),
        (
            "host placement",
            json!({"placement": "host"}),
            7,
            "placement",
        ),
        ("agent", json!({"agent": {"socket": "/x"}}), 7, "agent"),
        (
            "logDropped",
            json!({"logDropped": {"prefix": "x"}}),
            7,
            "logDropped",
        ),
        (
            "prefix list",
            rule(json!({"protocol": "tcp", "from": [{"prefixList": "pl-1"}]})),
            7,
            "securityGroups.g.ingress[0].from[0].prefixList",
        ),
        (
            "bad policyTypes",
            json!({"policyTypes": ["Inbound"]}),
            7,
            "policyTypes[0]",
        ),
        ("wrong type", json!({"stateful": "yes"}), 7, "stateful"),
        (
            "bad group name",
            json!({"securityGroups": {"a b": {}}}),
            7,
            "securityGroups.a b",
        ),
        (
            "bad cidr",
            rule(json!({"protocol": "tcp", "from": [{"cidr": "10.0.0.0/33"}]})),
            7,
            "securityGroups.g.ingress[0].from[0].cidr",
        ),
        (
            "host bits",
            rule(json!({"protocol": "tcp", "from": [{"cidr": "10.0.0.1/8"}]})),
            7,
            "securityGroups.g.ingress[0].from[0].cidr",
        ),
        (
            "except outside",
            rule(
                json!({"protocol": "tcp", "from": [{"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}]}),
            ),
            7,
            "securityGroups.g.ingress[0].from[0].except[0]",
        ),
        (
            "except family",
            rule(
                json!({"protocol": "tcp", "from": [{"cidr": "10.0.0.0/8", "except": ["fd00::/64"]}]}),
            ),
            7,
            "securityGroups.g.ingress[0].from[0].except[0]",
        ),
        (
            "port 0",
            rule(json!({"protocol": "tcp", "ports": ["0"], "from": peer})),
            7,
            "securityGroups.g.ingress[0].ports[0]",
        ),
        (
            "port 65536",
            rule(json!({"protocol": "udp", "ports": ["80", "65536"], "from": peer})),
            7,
            "securityGroups.g.ingress[0].ports[1]",
        ),
        (
            "range reversed",
            rule(json!({"protocol": "tcp", "ports": ["90-80"], "from": peer})),
            7,
            "securityGroups.g.ingress[0].ports[0]",
        ),
        (
            "named port inline",
            rule(json!({"protocol": "tcp", "ports": ["http"], "from": peer})),
            7,
            "securityGroups.g.ingress[0].ports[0]",
        ),
        (
            "ports with icmp",
            rule(json!({"protocol": "icmp", "ports": ["80"], "from": peer})),
            7,
            "securityGroups.g.ingress[0].ports",
        ),
        (
            "ports with all",
            rule(json!({"protocol": "all", "ports": ["80"], "from": peer})),
            7,
            "securityGroups.g.ingress[0].ports",
        ),
        (
            "icmp type with tcp",
            rule(json!({"protocol": "tcp", "icmpType": 8, "from": peer})),
            7,
            "securityGroups.g.ingress[0].icmpType",
        ),
        (
            "icmp type 256",
            rule(json!({"protocol": "icmp", "icmpType": 256, "from": peer})),
            7,
            "securityGroups.g.ingress[0].icmpType",
        ),
        (
            "icmp code alone",
            rule(json!({"protocol": "icmp", "icmpCode": 0, "from": peer})),
            7,
            "securityGroups.g.ingress[0].icmpCode",
        ),
        (
            "bad protocol",
            rule(json!({"protocol": "gre2", "from": peer})),
            7,
            "securityGroups.g.ingress[0].protocol",
        ),
        (
            "no protocol",
            rule(json!({"from": peer})),
            7,
            "securityGroups.g.ingress[0].protocol",
        ),
        (
            "no peer",
            rule(json!({"protocol": "tcp"})),
            7,
            "securityGroups.g.ingress[0].from",
        ),
        (
            "two kinds of peer",
            rule(json!({"protocol": "tcp", "from": [{"cidr": "10.0.0.0/8", "group": "g"}]})),
            7,
            "securityGroups.g.ingress[0].from[0]",
        ),
        (
            "unknown group peer",
            rule(json!({"protocol": "tcp", "from": [{"group": "nope"}]})),
            7,
            "securityGroups.g.ingress[0].from[0].group",
        ),
        (
            "unknown attach",
            json!({"securityGroups": {"g": {}}, "attach": ["nope"]}),
            7,
            "attach[0]",
        ),
        (
            "unknown members group",
            json!({"securityGroups": {"g": {}}, "groupMembers": {"h": []}}),
            7,
            "groupMembers.h",
        ),
        (
            "bad member",
            json!({"securityGroups": {"g": {}}, "groupMembers": {"g": ["10.0.0.1/24"]}}),
            7,
            "groupMembers.g[0]",
        ),
        (
            "pod group not selectable",
            json!({"securityGroups": {"g": {}, "h": {}}, "podSelectableGroups": ["h"], "args": {"cni": {"securityGroups": ["g"]}}}),
            7,
            "args.cni.securityGroups[0]",
        ),
        (
            "too many rules",
            json!({"maxRulesPerInterface": 3, "securityGroups": {"g": {"ingress": [{"protocol": "tcp", "from": peer}]}}, "attach": ["g"]}),
            7,
            "maxRulesPerInterface",
        ),
        (
            "context does not decode",
            json!({"multiNetworkPolicy": {"network": 5}}),
            6,
            "multiNetworkPolicy",
        ),
        (
            "mnp bad cidr",
            mnp(json!({"ingress": [{"from": [{"ipBlock": {"cidr": "nope"}}]}]})),
            7,
            "multiNetworkPolicy.policies[0].spec.ingress[0].from[0].ipBlock.cidr",
        ),
        (
            "mnp except outside",
            mnp(
                json!({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.2.0.0/24"]}}]}]}),
            ),
            7,
            "multiNetworkPolicy.policies[0].spec.ingress[0].from[0].ipBlock.except[0]",
        ),
        (
            "mnp bad operator",
            mnp(
                json!({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}}),
            ),
            7,
            "multiNetworkPolicy.policies[0].spec.podSelector.matchExpressions[0].operator",
        ),
        (
            "mnp bad policy type",
            mnp(json!({"policyTypes": ["Sideways"]})),
            7,
            "multiNetworkPolicy.policies[0].spec.policyTypes[0]",
        ),
        (
            "mnp bad protocol",
            mnp(json!({"ingress": [{"ports": [{"protocol": "ICMP", "port": 1}]}]})),
            7,
            "multiNetworkPolicy.policies[0].spec.ingress[0].ports[0].protocol",
        ),
        (
            "mnp port 0",
            mnp(json!({"egress": [{"ports": [{"port": 0}]}]})),
            7,
            "multiNetworkPolicy.policies[0].spec.egress[0].ports[0].port",
        ),
        (
            "mnp endPort below",
            mnp(json!({"ingress": [{"ports": [{"port": 90, "endPort": 80}]}]})),
            7,
            "multiNetworkPolicy.policies[0].spec.ingress[0].ports[0].endPort",
        ),
        (
            "mnp endPort named",
            mnp(json!({"ingress": [{"ports": [{"port": "http", "endPort": 80}]}]})),
            7,
            "multiNetworkPolicy.policies[0].spec.ingress[0].ports[0].endPort",
        ),
        (
            "mnp empty peer",
            mnp(json!({"ingress": [{"from": [{}]}]})),
            7,
            "multiNetworkPolicy.policies[0].spec.ingress[0].from[0]",
        ),
        (
            "mnp ipBlock and selector",
            mnp(
                json!({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]}),
            ),
            7,
            "multiNetworkPolicy.policies[0].spec.ingress[0].from[0]",
        ),
    ];
    for (what, extra, code, path) in cases {
        let (got_code, details, msg) = refusal(extra);
        assert_eq!((got_code, details.as_str()), (code, path), "{what}: {msg}");
        assert!(msg.contains(path), "{what}: message {msg:?} names {path}");
    }
}

#[test]
fn runtime_keys_and_static_values_of_unsupported_settings_are_accepted() {
    let conf = json!({"cniVersion": "1.1.0", "name": "net-a", "type": "policy",
        "mode": "static", "placement": "pod", "cni.dev/valid-attachments": [],
        "runtimeConfig": {"x": 1}, "capabilities": {"x": true}, "args": {"cni": {}},
        "prevResult": {"cniVersion": "1.1.0"}});
    let netconf = cni::NetConf::parse(conf.to_string().as_bytes()).unwrap();
    let config = Config::parse(&netconf).unwrap();
    assert!(!interface_policy(&config, "net1").unwrap().enforces_any());
}
