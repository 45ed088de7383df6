//! The `policy` delegate through the multi-call binary, with real packets between namespaces
//! the tests make: a "pod" namespace whose `net1` (and `net2`, `eth0`) is a veth to a client
//! namespace holding several source addresses, TCP/UDP listeners in the pod, clients with
//! short timeouts. The plugin is chained after nothing: each call gets a synthesized
//! prevResult. Everything vanishes with the test, panics included.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use conformance::policy_traffic::{lo_up, ping, run_in, tcp, udp, wire, Listener, Sender, Verdict};
use conformance::{Call, Output, PluginSet};
use kernel::PrivateNetns;
use serde_json::{json, Value};

use Verdict::{Allow, Deny};

const POD: &str = "10.50.0.1";
const POD6: &str = "fd50::1";
/// Client sources: A, B, C, and their IPv6 addresses.
const A: &str = "10.50.0.2";
const B: &str = "10.50.0.3";
const C: &str = "10.50.0.4";
const A6: &str = "fd50::2";
const B6: &str = "fd50::3";
const C6: &str = "fd50::4";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A pod namespace with `net1` wired to a client namespace.
struct Pod {
    pod: PrivateNetns,
    client: PrivateNetns,
}

impl Pod {
    fn new() -> Pod {
        let pod = PrivateNetns::new().expect("pod namespace");
        let client = PrivateNetns::new().expect("client namespace");
        lo_up(&pod);
        lo_up(&client);
        wire(
            &pod,
            "net1",
            &["10.50.0.1/24", "fd50::1/64"],
            &client,
            "c1",
            &[
                "10.50.0.2/24",
                "10.50.0.3/24",
                "10.50.0.4/24",
                "fd50::2/64",
                "fd50::3/64",
                "fd50::4/64",
            ],
        );
        Pod { pod, client }
    }

    fn call(&self, verb: &str, ifname: &str, conf: &Value) -> Output {
        call_in(&self.pod.path(), verb, ifname, conf)
    }

    /// ADD, asserting success, that the result is the prevResult unchanged, and that CHECK
    /// then passes.
    fn add(&self, ifname: &str, conf: &Value) {
        let result = self.call("ADD", ifname, conf).success();
        assert_eq!(result["interfaces"], conf["prevResult"]["interfaces"]);
        assert_eq!(result["ips"], conf["prevResult"]["ips"]);
        self.call("CHECK", ifname, conf).quiet_success();
    }

    fn tcp_from(&self, src: &str, port: u16) -> Verdict {
        tcp(
            &self.client,
            Some(ip(src)),
            ip(if src.contains(':') { POD6 } else { POD }),
            port,
        )
    }

    fn udp_from(&self, src: &str, port: u16) -> Verdict {
        udp(
            &self.client,
            Some(ip(src)),
            ip(if src.contains(':') { POD6 } else { POD }),
            port,
        )
    }

    fn ruleset(&self) -> String {
        ruleset(&self.pod)
    }
}

fn ruleset(ns: &PrivateNetns) -> String {
    let out = run_in(ns, || {
        std::process::Command::new("nft")
            .args(["list", "ruleset"])
            .output()
    })
    .expect("nft list ruleset");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn nft(ns: &PrivateNetns, args: &str) {
    let out = run_in(ns, || {
        std::process::Command::new("nft")
            .args(args.split_whitespace())
            .output()
    })
    .expect("run nft");
    assert!(
        out.status.success(),
        "nft {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn call_in(netns: &Path, verb: &str, ifname: &str, conf: &Value) -> Output {
    Call::new(PluginSet::Ours, "policy", verb)
        .container("ctr1", netns, ifname)
        .stdin(conf.to_string())
        .run()
}

/// A netconf for `ifname` with the plugin keys `extra` and a synthesized prevResult.
fn conf(ifname: &str, extra: Value) -> Value {
    let mut conf = json!({
        "cniVersion": "1.0.0", "name": "net-a", "type": "policy",
        "prevResult": {"cniVersion": "1.0.0",
            "interfaces": [{"name": ifname, "sandbox": "/var/run/netns/pod"}],
            "ips": [{"address": "10.50.0.1/24", "interface": 0}]}
    });
    conf.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    conf
}

/// Inline groups: one group `g` with `ingress` (and `egress`) rules, attached.
fn groups(types: &[&str], ingress: Value, egress: Value) -> Value {
    json!({"policyTypes": types,
           "securityGroups": {"g": {"ingress": ingress, "egress": egress}},
           "attach": ["g"]})
}

fn listeners_tcp(ns: &PrivateNetns, addr: &str, ports: &[u16]) -> Vec<Listener> {
    ports
        .iter()
        .map(|p| Listener::tcp(ns, ip(addr), *p))
        .collect()
}

#[test]
fn statement_47_ports_and_ranges_first_last_and_past_last() {
    let p = Pod::new();
    let _l = listeners_tcp(&p.pod, POD, &[8080, 8081, 9000, 9001, 9002, 9003]);
    for port in [8080, 8081, 9000, 9003] {
        assert_eq!(p.tcp_from(A, port), Allow, "before ADD, port {port}");
    }
    p.add("net1", &conf("net1", groups(&["Ingress"],
        json!([{"protocol": "tcp", "ports": ["8080", "9000-9002"], "from": [{"cidr": "10.50.0.0/24"}]}]),
        json!([]))));
    let got: Vec<(u16, Verdict)> = [8080, 8081, 9000, 9001, 9002, 9003]
        .into_iter()
        .map(|port| (port, p.tcp_from(A, port)))
        .collect();
    assert_eq!(
        got,
        [
            (8080, Allow),
            (8081, Deny),
            (9000, Allow),
            (9001, Allow),
            (9002, Allow),
            (9003, Deny)
        ]
    );
}

#[test]
fn statement_47_protocols_udp_not_tcp_all_and_icmp_echo() {
    let p = Pod::new();
    let _t = Listener::tcp(&p.pod, ip(POD), 5000);
    let _u = Listener::udp(&p.pod, ip(POD), 5000);
    let _t2 = Listener::tcp(&p.pod, ip(POD), 6000);
    assert_eq!(p.tcp_from(A, 5000), Allow);
    assert_eq!(
        ping(&p.client, Some(ip(C)), ip(POD)),
        Allow,
        "ping before ADD"
    );
    p.add(
        "net1",
        &conf(
            "net1",
            groups(
                &["Ingress"],
                json!([
                    {"protocol": "udp", "ports": ["5000"], "from": [{"cidr": "10.50.0.2/32"}]},
                    {"protocol": "all", "from": [{"cidr": "10.50.0.3/32"}]},
                    {"protocol": "icmp", "icmpType": 8, "from": [{"cidr": "10.50.0.2/32"}]}
                ]),
                json!([]),
            ),
        ),
    );
    assert_eq!(p.udp_from(A, 5000), Allow, "udp 5000 from A");
    assert_eq!(
        p.tcp_from(A, 5000),
        Deny,
        "tcp 5000 from A: same port, other protocol"
    );
    assert_eq!(p.tcp_from(B, 6000), Allow, "all from B");
    assert_eq!(p.udp_from(B, 5000), Allow, "all from B");
    assert_eq!(p.tcp_from(C, 6000), Deny);
    assert_eq!(ping(&p.client, Some(ip(A)), ip(POD)), Allow, "echo from A");
    assert_eq!(ping(&p.client, Some(ip(C)), ip(POD)), Deny, "echo from C");
}

#[test]
fn statement_47_except_excludes_only_within_its_own_peer() {
    let p = Pod::new();
    let _l = listeners_tcp(&p.pod, POD, &[80]);
    let except_b = json!({"protocol": "tcp", "ports": ["80"],
                          "from": [{"cidr": "10.50.0.0/24", "except": ["10.50.0.3/32"]}]});
    p.add(
        "net1",
        &conf("net1", groups(&["Ingress"], json!([except_b]), json!([]))),
    );
    assert_eq!(
        (p.tcp_from(A, 80), p.tcp_from(B, 80)),
        (Allow, Deny),
        "B excepted"
    );
    p.call("DEL", "net1", &conf("net1", json!({})))
        .quiet_success();

    // A second rule allowing the excepted /32 allows it: the except is no DROP.
    p.add(
        "net1",
        &conf(
            "net1",
            groups(
                &["Ingress"],
                json!([except_b,
        {"protocol": "tcp", "ports": ["80"], "from": [{"cidr": "10.50.0.3/32"}]}]),
                json!([]),
            ),
        ),
    );
    assert_eq!(
        (p.tcp_from(A, 80), p.tcp_from(B, 80)),
        (Allow, Allow),
        "second rule"
    );
    p.call("DEL", "net1", &conf("net1", json!({})))
        .quiet_success();

    // Two peers in one rule, A inside the first peer's except: the second peer allows A.
    p.add(
        "net1",
        &conf(
            "net1",
            groups(
                &["Ingress"],
                json!([{"protocol": "tcp", "ports": ["80"],
        "from": [{"cidr": "10.50.0.0/24", "except": ["10.50.0.0/30"]}, {"cidr": "10.50.0.2/32"}]}]),
                json!([]),
            ),
        ),
    );
    assert_eq!(
        (p.tcp_from(A, 80), p.tcp_from(B, 80), p.tcp_from(C, 80)),
        (Allow, Deny, Allow),
        "A by the second peer, B excepted, C by the first"
    );
}

#[test]
fn statement_47_or_across_rules_and_within_a_rule() {
    let p = Pod::new();
    let _l = listeners_tcp(&p.pod, POD, &[80, 81]);
    p.add(
        "net1",
        &conf(
            "net1",
            groups(
                &["Ingress"],
                json!([
                    {"protocol": "tcp", "ports": ["80"], "from": [{"cidr": "10.50.0.2/32"}]},
                    {"protocol": "tcp", "ports": ["81"], "from": [{"cidr": "10.50.0.3/32"}]}
                ]),
                json!([]),
            ),
        ),
    );
    assert_eq!(
        [
            p.tcp_from(A, 80),
            p.tcp_from(A, 81),
            p.tcp_from(B, 81),
            p.tcp_from(B, 80),
            p.tcp_from(C, 80)
        ],
        [Allow, Deny, Allow, Deny, Deny]
    );
}

#[test]
fn statement_47_egress_default_deny_and_stateful_replies() {
    let p = Pod::new();
    let _in = Listener::tcp(&p.pod, ip(POD), 80);
    let _out = listeners_tcp(&p.client, A, &[7000, 7001]);
    assert_eq!(tcp(&p.pod, None, ip(A), 7000), Allow, "before ADD");
    p.add(
        "net1",
        &conf(
            "net1",
            groups(
                &["Ingress", "Egress"],
                json!([{"protocol": "tcp", "ports": ["80"], "from": [{"cidr": "0.0.0.0/0"}]}]),
                json!([]),
            ),
        ),
    );
    assert_eq!(
        p.tcp_from(A, 80),
        Allow,
        "egress denies all, yet the reply passes"
    );
    assert_eq!(tcp(&p.pod, None, ip(A), 7000), Deny, "server-initiated");
    p.call("DEL", "net1", &conf("net1", json!({})))
        .quiet_success();

    p.add(
        "net1",
        &conf(
            "net1",
            groups(
                &["Ingress", "Egress"],
                json!([]),
                json!([{"protocol": "tcp", "ports": ["7000"], "to": [{"cidr": "10.50.0.2/32"}]}]),
            ),
        ),
    );
    assert_eq!(
        tcp(&p.pod, None, ip(A), 7000),
        Allow,
        "allowed destination and port"
    );
    assert_eq!(tcp(&p.pod, None, ip(A), 7001), Deny, "other port");
    assert_eq!(p.tcp_from(A, 80), Deny, "ingress enforced, nothing allowed");
}

/// Research 5.9 cases 16 and 20: egress DNS over UDP 53 where allowed (another UDP port
/// denied), and DHCP through default deny when `allowDHCP` is set (a server's datagram to
/// the client ports, 68 and 546) and not otherwise.
#[test]
fn dns_egress_and_dhcp_when_configured() {
    let p = Pod::new();
    let _dns = Listener::udp(&p.client, ip(A), 53);
    let _not_dns = Listener::udp(&p.client, ip(A), 54);
    let _dhcp = Listener::udp(&p.pod, ip(POD), 68);
    let _dhcp6 = Listener::udp(&p.pod, ip(POD6), 546);
    let _other = Listener::udp(&p.pod, ip(POD), 69);
    let policy = |dhcp: bool| {
        let mut conf = conf(
            "net1",
            groups(
                &["Ingress", "Egress"],
                json!([]),
                json!([{"protocol": "udp", "ports": ["53"], "to": [{"cidr": "10.50.0.2/32"}]}]),
            ),
        );
        conf["allowDHCP"] = json!(dhcp);
        conf
    };
    let from_pod = |port| udp(&p.pod, Some(ip(POD)), ip(A), port);

    p.add("net1", &policy(true));
    assert_eq!(from_pod(53), Allow, "DNS to the allowed server");
    // Dropped at the pod's output hook, the datagram's send itself fails (EPERM).
    assert_ne!(from_pod(54), Allow, "another UDP port to it");
    assert_eq!(p.udp_from(C, 68), Allow, "DHCPv4 to the client port");
    assert_eq!(p.udp_from(A6, 546), Allow, "DHCPv6 to the client port");
    assert_eq!(p.udp_from(C, 69), Deny, "another port under default deny");
    p.call("DEL", "net1", &policy(true)).quiet_success();

    p.add("net1", &policy(false));
    assert_eq!(p.udp_from(C, 68), Deny, "DHCP without allowDHCP");
    assert_eq!(from_pod(53), Allow, "DNS all the same");
    p.call("DEL", "net1", &policy(false)).quiet_success();
}

#[test]
fn statement_47_stateless_needs_its_own_return_rules() {
    let p = Pod::new();
    let _in = Listener::tcp(&p.pod, ip(POD), 80);
    let ingress = json!([{"protocol": "tcp", "ports": ["80"], "from": [{"cidr": "0.0.0.0/0"}]}]);
    let mut c = conf("net1", groups(&["Ingress", "Egress"], ingress, json!([])));
    c["stateful"] = json!(false);
    p.add("net1", &c);
    assert_eq!(
        p.tcp_from(A, 80),
        Deny,
        "no ct rule: the SYN-ACK meets egress deny"
    );
}

#[test]
fn statement_47_ipv6_and_ndp_under_default_deny() {
    let p = Pod::new();
    let _l = listeners_tcp(&p.pod, POD6, &[80, 81]);
    let rules = json!([{"protocol": "tcp", "ports": ["80"], "from": [{"cidr": "fd50::/64"}]}]);
    p.add(
        "net1",
        &conf(
            "net1",
            groups(
                &["Ingress", "Egress"],
                rules.clone(),
                json!([{"protocol": "tcp", "ports": ["1"], "to": [{"cidr": "fd50::/64"}]}]),
            ),
        ),
    );
    // Nothing talked before the ADD, so the neighbours resolve under the policy.
    assert_eq!(p.tcp_from(A6, 80), Allow, "v6 allowed after NDP");
    assert_eq!(p.tcp_from(A6, 81), Deny);

    // With NDP not allowed, the same allowed flow fails: neighbour discovery is what let it.
    let q = Pod::new();
    let _l = listeners_tcp(&q.pod, POD6, &[80]);
    let mut c = conf(
        "net1",
        groups(
            &["Ingress", "Egress"],
            rules,
            json!([{"protocol": "tcp", "ports": ["1"], "to": [{"cidr": "fd50::/64"}]}]),
        ),
    );
    c["allowNDP"] = json!(false);
    q.add("net1", &c);
    assert_eq!(q.tcp_from(A6, 80), Deny, "NDP dropped");
}

/// Research 5.9 cases 11 to 15 over IPv6: a CIDR and port, a range's first, last and past
/// last, UDP where TCP is denied, ICMPv6 echo, and an `except` that excludes only within its
/// own rule (another rule allowing the excepted source allows it).
#[test]
fn ipv6_ports_ranges_protocols_and_except() {
    let p = Pod::new();
    let _t = listeners_tcp(&p.pod, POD6, &[80, 2000, 2005, 2006]);
    let _u = Listener::udp(&p.pod, ip(POD6), 5000);
    p.add(
        "net1",
        &conf(
            "net1",
            groups(
                &["Ingress"],
                json!([
                    {"protocol": "tcp", "ports": ["80", "2000-2005"],
                     "from": [{"cidr": "fd50::/64", "except": ["fd50::3/128"]}]},
                    {"protocol": "tcp", "ports": ["80"], "from": [{"cidr": "fd50::3/128"}]},
                    {"protocol": "udp", "ports": ["5000"], "from": [{"cidr": "fd50::2/128"}]},
                    {"protocol": "icmpv6", "icmpType": 128, "from": [{"cidr": "fd50::2/128"}]}
                ]),
                json!([]),
            ),
        ),
    );
    assert_eq!(p.tcp_from(A6, 80), Allow, "allowed source and port");
    assert_eq!(
        (
            p.tcp_from(A6, 2000),
            p.tcp_from(A6, 2005),
            p.tcp_from(A6, 2006)
        ),
        (Allow, Allow, Deny),
        "a range's first, last and past last"
    );
    assert_eq!(p.tcp_from(B6, 2000), Deny, "the excepted source");
    assert_eq!(
        p.tcp_from(B6, 80),
        Allow,
        "the excepted source, by the other rule"
    );
    assert_eq!(p.udp_from(A6, 5000), Allow, "udp");
    assert_eq!(p.tcp_from(A6, 5000), Deny, "tcp on the udp port");
    assert_eq!(p.udp_from(C6, 5000), Deny, "udp from another source");
    assert_eq!(
        ping(&p.client, Some(ip(A6)), ip(POD6)),
        Allow,
        "echo from A"
    );
    assert_eq!(ping(&p.client, Some(ip(C6)), ip(POD6)), Deny, "echo from C");
}

#[test]
fn statement_47_interfaces_are_independent_and_others_untouched() {
    let pod = PrivateNetns::new().unwrap();
    let c1 = PrivateNetns::new().unwrap();
    let c2 = PrivateNetns::new().unwrap();
    let c0 = PrivateNetns::new().unwrap();
    for ns in [&pod, &c1, &c2, &c0] {
        lo_up(ns);
    }
    wire(
        &pod,
        "net1",
        &["10.50.0.1/24"],
        &c1,
        "c1",
        &["10.50.0.2/24"],
    );
    wire(
        &pod,
        "net2",
        &["10.60.0.1/24"],
        &c2,
        "c2",
        &["10.60.0.2/24"],
    );
    wire(
        &pod,
        "eth0",
        &["10.70.0.1/24"],
        &c0,
        "c0",
        &["10.70.0.2/24"],
    );
    let _l: Vec<Listener> = [80, 81]
        .into_iter()
        .map(|p| Listener::tcp(&pod, ip("0.0.0.0"), p))
        .collect();
    let only = |port: &str| {
        groups(
            &["Ingress"],
            json!([{"protocol": "tcp", "ports": [port], "from": [{"cidr": "0.0.0.0/0"}]}]),
            json!([]),
        )
    };
    let conf1 = conf("net1", only("80"));
    let conf2 = conf("net2", only("81"));
    call_in(&pod.path(), "ADD", "net1", &conf1).success();
    call_in(&pod.path(), "ADD", "net2", &conf2).success();
    let from = |ns: &PrivateNetns, dst: &str, port| tcp(ns, None, ip(dst), port);
    assert_eq!(
        [from(&c1, "10.50.0.1", 80), from(&c1, "10.50.0.1", 81)],
        [Allow, Deny],
        "net1"
    );
    assert_eq!(
        [from(&c2, "10.60.0.1", 80), from(&c2, "10.60.0.1", 81)],
        [Deny, Allow],
        "net2"
    );
    assert_eq!(
        [from(&c0, "10.70.0.1", 80), from(&c0, "10.70.0.1", 81)],
        [Allow, Allow],
        "eth0"
    );
    assert_eq!(tcp(&pod, None, ip("127.0.0.1"), 81), Allow, "lo");

    call_in(&pod.path(), "DEL", "net1", &conf1).quiet_success();
    assert_eq!(
        [from(&c1, "10.50.0.1", 80), from(&c1, "10.50.0.1", 81)],
        [Allow, Allow],
        "net1 after its DEL"
    );
    assert_eq!(
        [from(&c2, "10.60.0.1", 80), from(&c2, "10.60.0.1", 81)],
        [Deny, Allow],
        "net2 still enforced"
    );
    call_in(&pod.path(), "CHECK", "net2", &conf2).quiet_success();
}

/// The "no window": a sender fires from before ADD until after it; once ADD has
/// returned, no datagram from the disallowed source reaches the listener, while the allowed
/// source's keep arriving. The listener never answers, so neither flow is ever established
/// in conntrack (an established flow would rightly survive, as security groups do).
#[test]
fn statement_47_no_window_rules_apply_before_add_returns() {
    let p = Pod::new();
    let sink = Listener::udp_sink(&p.pod, ip(POD), 6000);
    let allowed = Sender::start(&p.client, ip(A), ip(POD), 6000);
    let disallowed = Sender::start(&p.client, ip(B), ip(POD), 6000);
    std::thread::sleep(Duration::from_millis(200));
    let add_started = Instant::now();
    p.add(
        "net1",
        &conf(
            "net1",
            groups(
                &["Ingress"],
                json!([{"protocol": "udp", "ports": ["6000"], "from": [{"cidr": "10.50.0.2/32"}]}]),
                json!([]),
            ),
        ),
    );
    let add_returned = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let (sent_a, sent_b) = (allowed.stop(), disallowed.stop());
    let seen = sink.seen();
    let count = |who: &str, after: bool| {
        seen.iter()
            .filter(|s| s.from == ip(who) && (s.at > add_returned) == after)
            .count()
    };
    assert!(sent_a > 0 && sent_b > 0);
    assert!(
        seen.iter().any(|s| s.from == ip(B) && s.at < add_started),
        "the disallowed sender reached the listener before ADD"
    );
    assert_eq!(
        count(B, true),
        0,
        "a disallowed datagram arrived after ADD returned"
    );
    assert!(
        count(A, true) > 0,
        "the allowed sender kept arriving after ADD"
    );
}

#[test]
fn statement_49_del_restores_connectivity_and_is_idempotent() {
    let p = Pod::new();
    let _l = listeners_tcp(&p.pod, POD, &[80]);
    let c = conf("net1", groups(&["Ingress"], json!([]), json!([])));
    p.add("net1", &c);
    assert_eq!(p.tcp_from(A, 80), Deny, "deny all");
    // A repeated ADD refills the chains: CHECK (in `add`) finds no duplicate rule.
    p.add("net1", &c);
    p.call("DEL", "net1", &c).quiet_success();
    assert_eq!(p.tcp_from(A, 80), Allow, "after DEL");
    assert!(!p.ruleset().contains("net1"), "{}", p.ruleset());
    p.call("DEL", "net1", &c).quiet_success();
    // DEL with a config that has since become invalid still cleans up.
    p.add("net1", &c);
    let mut broken = c.clone();
    broken["securityGroups"]["g"]["ingress"] = json!([{"protocol": "tcp", "ports": ["0"]}]);
    p.call("DEL", "net1", &broken).quiet_success();
    assert_eq!(
        p.tcp_from(A, 80),
        Allow,
        "after DEL with a now-invalid config"
    );
    let gone = p.pod.path();
    drop(p);
    call_in(&gone, "DEL", "net1", &c).quiet_success();
}

#[test]
fn statement_49_check_fails_when_any_rule_is_removed_or_changed() {
    let c = conf(
        "net1",
        groups(
            &["Ingress", "Egress"],
            json!([{"protocol": "tcp", "ports": ["80"], "from": [{"cidr": "10.50.0.0/24"}]}]),
            json!([{"protocol": "udp", "ports": ["53"], "to": [{"cidr": "10.50.0.2/32"}]}]),
        ),
    );
    let tamperings = [
        ("rule deleted", "delete rule inet cni_policy net1_in handle {in0}"),
        ("chain flushed", "flush chain inet cni_policy net1_out"),
        ("hook chain deleted", "delete chain inet cni_policy net1_hin"),
        ("rule added", "add rule inet cni_policy net1_in tcp dport 22 accept"),
        ("rule replaced", "replace rule inet cni_policy net1_in handle {in0} tcp dport 22 accept comment \"g/in/0\""),
        ("port changed", "replace rule inet cni_policy net1_in handle {in0} ip saddr 10.50.0.0/24 tcp dport 81 accept comment \"g/in/0\""),
        ("source changed", "replace rule inet cni_policy net1_in handle {in0} ip saddr 10.50.0.0/16 tcp dport 80 accept comment \"g/in/0\""),
    ];
    for (what, command) in tamperings {
        let p = Pod::new();
        p.add("net1", &c);
        p.call("CHECK", "net1", &c).quiet_success();
        let listing = run_in(&p.pod, || {
            std::process::Command::new("nft")
                .args(["-a", "list", "chain", "inet", "cni_policy", "net1_in"])
                .output()
        })
        .unwrap();
        let text = String::from_utf8_lossy(&listing.stdout).into_owned();
        let handle = text
            .lines()
            .find(|l| l.contains("\"g/in/0\""))
            .and_then(|l| l.rsplit(' ').next())
            .expect("the rule of g/in/0 is listed");
        if what == "hook chain deleted" {
            nft(&p.pod, "flush chain inet cni_policy net1_hin");
        }
        let command = command.replace("{in0}", handle);
        let out = run_in(&p.pod, || {
            std::process::Command::new("sh")
                .args(["-c", &format!("nft '{}'", command.replace('\'', ""))])
                .output()
        })
        .unwrap();
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let e = p.call("CHECK", "net1", &c).fails_with(102);
        assert!(
            e["details"].as_str().unwrap().contains("net1_"),
            "{what}: {e}"
        );
    }
}

#[test]
fn statement_49_a_refused_batch_leaves_the_ruleset_unchanged() {
    let p = Pod::new();
    // A plain chain where ADD puts its input hook chain: the kernel refuses to turn it into
    // a base chain, so the whole batch fails.
    nft(&p.pod, "add table inet cni_policy");
    nft(&p.pod, "add chain inet cni_policy net1_hin");
    nft(&p.pod, "add rule inet cni_policy net1_hin counter");
    let before = p.ruleset();
    let e = p
        .call(
            "ADD",
            "net1",
            &conf("net1", groups(&["Ingress"], json!([]), json!([]))),
        )
        .failure();
    assert!(e["code"].as_u64().unwrap() >= 100, "{e}");
    assert!(
        !e["details"].as_str().unwrap_or_default().is_empty(),
        "nft's stderr: {e}"
    );
    assert_eq!(p.ruleset(), before, "ruleset changed by a refused batch");
}

fn mnp(name: &str, policy_for: &str, spec: Value) -> Value {
    json!({"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
           "metadata": {"name": name, "namespace": "default",
                        "annotations": {"k8s.v1.cni.cncf.io/policy-for": policy_for}},
           "spec": spec})
}

/// The context the meta plugin injects: pod `server` (app=db, port `http` 8080) on
/// `default/net-a`; A is `default/web` (env=prod), B `default/dev` (env=dev), C
/// `other/mon` (team=b).
fn context(policies: Value) -> Value {
    json!({"multiNetworkPolicy": {
        "network": {"namespace": "default", "name": "net-a"},
        "pod": {"namespace": "default", "name": "server", "labels": {"app": "db"},
                "containerPorts": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]},
        "namespaces": [{"name": "default", "labels": {"team": "a"}},
                       {"name": "other", "labels": {"team": "b"}}],
        "pods": [
            {"namespace": "default", "name": "web", "labels": {"app": "web", "env": "prod"}, "ips": [A]},
            {"namespace": "default", "name": "dev", "labels": {"app": "web", "env": "dev"}, "ips": [B]},
            {"namespace": "other", "name": "mon", "labels": {"app": "mon"}, "ips": [C]}
        ],
        "policies": policies}})
}

#[test]
fn statement_48_policy_for_scopes_policies_to_their_network() {
    let p = Pod::new();
    let _l = listeners_tcp(&p.pod, POD, &[80]);
    let deny_all = |pf: &str| mnp("deny", pf, json!({"podSelector": {}}));
    // For another NAD (bare name, and ns/name in another namespace): nothing is installed.
    for pf in ["net-b", "other/net-a"] {
        p.add("net1", &conf("net1", context(json!([deny_all(pf)]))));
        assert_eq!(p.tcp_from(A, 80), Allow, "policy-for {pf}");
        assert!(
            !p.ruleset().contains("net1_in"),
            "policy-for {pf}: {}",
            p.ruleset()
        );
    }
    for pf in ["net-a", "default/net-a", "net-b, default/net-a"] {
        let c = conf("net1", context(json!([deny_all(pf)])));
        p.add("net1", &c);
        assert_eq!(p.tcp_from(A, 80), Deny, "policy-for {pf}");
        p.call("DEL", "net1", &c).quiet_success();
    }
    // A policy whose podSelector does not select this pod does not apply either.
    p.add(
        "net1",
        &conf(
            "net1",
            context(json!([mnp(
                "web-only",
                "net-a",
                json!({"podSelector": {"matchLabels": {"app": "web"}}})
            )])),
        ),
    );
    assert_eq!(p.tcp_from(A, 80), Allow, "podSelector not matching the pod");
}

#[test]
fn statement_48_pod_and_namespace_selectors_with_match_expressions() {
    let p = Pod::new();
    let _l = listeners_tcp(&p.pod, POD, &[80]);
    p.add("net1", &conf("net1", context(json!([mnp("sel", "net-a", json!({
        "podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
        "ingress": [{"from": [
            {"podSelector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}},
            // AND: team=b namespaces, pods there with app NotIn [web].
            {"namespaceSelector": {"matchLabels": {"team": "b"}},
             "podSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}}
        ]}]}))]))));
    assert_eq!(
        [p.tcp_from(A, 80), p.tcp_from(B, 80), p.tcp_from(C, 80)],
        [Allow, Deny, Allow]
    );

    // The same namespace selector ANDed with a pod selector C does not match: C is denied.
    let q = Pod::new();
    let _l = listeners_tcp(&q.pod, POD, &[80]);
    q.add(
        "net1",
        &conf(
            "net1",
            context(json!([mnp(
                "and",
                "net-a",
                json!({
        "podSelector": {},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "b"}},
                               "podSelector": {"matchLabels": {"app": "web"}}}]}]})
            )])),
        ),
    );
    assert_eq!([q.tcp_from(A, 80), q.tcp_from(C, 80)], [Deny, Deny]);
}

#[test]
fn statement_48_end_port_and_named_ports() {
    let p = Pod::new();
    let _l = listeners_tcp(&p.pod, POD, &[8080, 8081, 9000, 9002, 9003]);
    p.add("net1", &conf("net1", context(json!([mnp("ports", "net-a", json!({
        "podSelector": {},
        "ingress": [{"ports": [{"port": "http"}, {"port": "missing"}, {"port": 9000, "endPort": 9002}]}]}))]))));
    let got: Vec<Verdict> = [8080, 8081, 9000, 9002, 9003]
        .into_iter()
        .map(|port| p.tcp_from(A, port))
        .collect();
    assert_eq!(got, [Allow, Deny, Allow, Allow, Deny]);
}

#[test]
fn statement_48_policy_types_default_as_network_policy() {
    // Only ingress rules, no policyTypes: Ingress enforced, egress untouched.
    let p = Pod::new();
    let _in = listeners_tcp(&p.pod, POD, &[80, 81]);
    let _out = listeners_tcp(&p.client, A, &[7000]);
    p.add(
        "net1",
        &conf(
            "net1",
            context(json!([mnp(
                "in",
                "net-a",
                json!({
        "podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]})
            )])),
        ),
    );
    assert_eq!([p.tcp_from(A, 80), p.tcp_from(A, 81)], [Allow, Deny]);
    assert_eq!(tcp(&p.pod, None, ip(A), 7000), Allow, "egress not enforced");

    // Egress rules present, no policyTypes: Egress enforced as well.
    let q = Pod::new();
    let _in = listeners_tcp(&q.pod, POD, &[80]);
    let _out = listeners_tcp(&q.client, A, &[7000, 7001]);
    q.add(
        "net1",
        &conf(
            "net1",
            context(json!([mnp(
                "both",
                "net-a",
                json!({
        "podSelector": {}, "egress": [{"ports": [{"port": 7000}]}]})
            )])),
        ),
    );
    assert_eq!(tcp(&q.pod, None, ip(A), 7000), Allow);
    assert_eq!(tcp(&q.pod, None, ip(A), 7001), Deny, "egress enforced");
    assert_eq!(q.tcp_from(A, 80), Deny, "ingress always enforced");
}

#[test]
fn statement_48_ip_block_except_is_reallowed_by_another_policy() {
    let p = Pod::new();
    let _l = listeners_tcp(&p.pod, POD, &[80]);
    p.add(
        "net1",
        &conf(
            "net1",
            context(json!([
                mnp(
                    "block",
                    "net-a",
                    json!({"podSelector": {}, "ingress": [{"from": [
            {"ipBlock": {"cidr": "10.50.0.0/24", "except": ["10.50.0.3/32"]}}]}]})
                ),
                mnp(
                    "b-only",
                    "net-a",
                    json!({"podSelector": {}, "ingress": [{"from": [
            {"ipBlock": {"cidr": "10.50.0.3/32"}}]}]})
                )
            ])),
        ),
    );
    assert_eq!([p.tcp_from(A, 80), p.tcp_from(B, 80)], [Allow, Allow]);
}

#[test]
fn inline_groups_and_policies_are_ored() {
    let p = Pod::new();
    let _l = listeners_tcp(&p.pod, POD, &[80, 81]);
    let mut c = conf(
        "net1",
        context(json!([mnp(
            "p80",
            "net-a",
            json!({
        "podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]})
        )])),
    );
    c.as_object_mut().unwrap().extend(
        groups(
            &["Ingress"],
            json!([{"protocol": "tcp", "ports": ["81"], "from": [{"cidr": "10.50.0.3/32"}]}]),
            json!([]),
        )
        .as_object()
        .unwrap()
        .clone(),
    );
    p.add("net1", &c);
    assert_eq!(
        [p.tcp_from(A, 80), p.tcp_from(A, 81), p.tcp_from(B, 81)],
        [Allow, Deny, Allow]
    );
    p.call("CHECK", "net1", &c).quiet_success();
}

#[test]
fn refusals_through_the_binary_change_nothing() {
    let p = Pod::new();
    let good = conf("net1", groups(&["Ingress"], json!([]), json!([])));
    let mut unknown = good.clone();
    unknown["frob"] = json!(1);
    let e = p.call("ADD", "net1", &unknown).fails_with(2);
    assert!(e["msg"].as_str().unwrap().contains("frob"), "{e}");
    let mut bad = good.clone();
    bad["securityGroups"]["g"]["ingress"] =
        json!([{"protocol": "tcp", "from": [{"cidr": "10.0.0.1/8"}]}]);
    let e = p.call("ADD", "net1", &bad).fails_with(7);
    assert_eq!(e["details"], "securityGroups.g.ingress[0].from[0].cidr");
    let mut dynamic = good.clone();
    dynamic["mode"] = json!("dynamic");
    p.call("ADD", "net1", &dynamic).fails_with(7);
    let mut no_prev = good.clone();
    no_prev.as_object_mut().unwrap().remove("prevResult");
    p.call("ADD", "net1", &no_prev).fails_with(7);
    p.call("CHECK", "net1", &no_prev).fails_with(7);
    let e = Call::new(PluginSet::Ours, "policy", "ADD")
        .container("ctr1", &p.pod.path(), "net1")
        .stdin("{not json")
        .run()
        .fails_with(6);
    assert_eq!(e["cniVersion"], "1.1.0");
    Call::new(PluginSet::Ours, "policy", "ADD")
        .var("CNI_CONTAINERID", "ctr1")
        .var("CNI_IFNAME", "net1")
        .stdin(good.to_string())
        .run()
        .fails_with(4);
    call_in(
        Path::new("/proc/self/task/999999999/ns/net"),
        "ADD",
        "net1",
        &good,
    )
    .fails_with(3);
    assert!(
        !p.ruleset().contains("cni_policy"),
        "a refusal changed the ruleset: {}",
        p.ruleset()
    );
}

#[test]
fn status_is_50_when_nftables_is_unusable() {
    let conf = json!({"cniVersion": "1.1.0", "name": "net-a", "type": "policy"}).to_string();
    let status = || Call::new(PluginSet::Ours, "policy", "STATUS").stdin(conf.clone());
    status().run().quiet_success();
    let e = status().var("PATH", "/nonexistent").run().fails_with(50);
    assert!(e["msg"].as_str().unwrap().contains("nft"), "{e}");
    Call::new(PluginSet::Ours, "policy", "GC")
        .stdin(conf.clone())
        .run()
        .quiet_success();
}

/// The delegate as users run it: the last plugin of a NAD conflist after bridge, run
/// in-process by the meta plugin, its prevResult the bridge's result.
#[test]
fn chained_after_bridge_in_a_nad_conflist_through_the_meta_plugin() {
    use conformance::meta_pod::{nad, MetaPod};
    let m = MetaPod::new();
    let list = json!({"cniVersion": "1.0.0", "plugins": [
        {"type": "bridge", "bridge": "br-p", "isGateway": true,
         "ipam": {"type": "host-local", "subnet": "10.10.3.0/24", "dataDir": m.ipam_dir()}},
        {"type": "policy", "securityGroups": {"web": {"ingress": [
            {"protocol": "tcp", "ports": ["80"], "from": [{"cidr": "10.10.3.0/24"}]}]}},
         "attach": ["web"]}]});
    m.write_nad("default", "net-p", &nad("net-p", list));
    let conf = m.conf(json!([{"name": "net-p", "interface": "net1"}]), json!({}));
    let result = m.run(m.call("ADD", &conf)).success();
    let pod_ip = result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["address"].as_str().unwrap())
        .find(|a| a.starts_with("10.10.3."))
        .and_then(|a| a.split('/').next())
        .map(ip)
        .expect("an address on net-p");
    let _l: Vec<Listener> = [80, 81]
        .into_iter()
        .map(|p| Listener::tcp(&m.pod, pod_ip, p))
        .collect();
    assert!(ruleset(&m.pod).contains("net1_in"), "{}", ruleset(&m.pod));
    assert!(
        !ruleset(&m.pod).contains("eth0_in"),
        "the cluster network has no policy"
    );
    assert_eq!(
        [
            tcp(&m.node, None, pod_ip, 80),
            tcp(&m.node, None, pod_ip, 81)
        ],
        [Allow, Deny]
    );
    m.run(m.call("CHECK", &conf)).quiet_success();
    m.run(m.call("DEL", &conf)).quiet_success();
    assert!(!ruleset(&m.pod).contains("net1_in"), "{}", ruleset(&m.pod));
}
