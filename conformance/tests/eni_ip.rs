//! The `eni-ip` plugin's own behaviour through the multi-call binary, on real namespaces:
//! every test has its own node namespace (where the plugin runs: host veths, the /32
//! routes, rules 512 and 1536) and pod namespaces; nothing touches the machine's root
//! namespace, and everything vanishes with the test, panics included.
//!
//! The agent here is the protocol stand-in (`conformance::eni_stand_in`), which can answer
//! what the real agent cannot be made to on demand: another protocol version, "not ready",
//! a reply held back while the plugin is killed, a chosen address on a chosen ENI. The
//! statements themselves (44, 45) are tested end to end with the real agent in the emulated
//! VPC, in `eni_vpc.rs`.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use conformance::eni_stand_in::{Behaviour, PoolAddress, StandInAgent};
use conformance::inspect::{ipv4_addrs, link_names, netlink, netns};
use conformance::meta_pod::{nad, MetaPod};
use conformance::{Call, Output, PluginSet};
use eni_ip::protocol::Call as AgentCall;
use kernel::{Family, PrivateNetns, Route, Rule, RT_TABLE_MAIN};
use serde_json::{json, Value};

/// The host veth of `default/sample-pod` (upstream's test vector).
const SAMPLE_POD_VETH: &str = "enicc21c2d7785";
const SAMPLE_POD_ARGS: &str = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=sample-pod";

/// A node: its namespace, and a directory for the agent's socket.
struct Node {
    ns: PrivateNetns,
    dir: tempfile::TempDir,
}

impl Node {
    /// A node that forwards (as the agent's node setup leaves it) with `lo` up.
    fn new() -> Node {
        let node = Node {
            ns: PrivateNetns::new().expect("node namespace"),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let mut nl = netlink(&node.ns);
        let lo = nl.link_by_name("lo").unwrap().unwrap();
        nl.set_link_up(lo.index).unwrap();
        netns(&node.ns)
            .run(|| kernel::sysctl::write("net.ipv4.ip_forward", "1"))
            .unwrap()
            .unwrap();
        node
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("eni-ipamd.sock")
    }

    fn agent(&self, pool: &[(&str, u32)], behaviour: Behaviour) -> StandInAgent {
        let pool = pool.iter().map(|(a, d)| PoolAddress::new(a, *d)).collect();
        StandInAgent::start(&self.socket(), pool, behaviour)
    }

    fn conf(&self, extra: Value) -> String {
        let mut conf = json!({"cniVersion": "1.1.0", "name": "vpc", "type": "eni-ip",
            "agentSocket": self.socket()});
        for (k, v) in extra.as_object().into_iter().flatten() {
            conf[k] = v.clone();
        }
        conf.to_string()
    }

    /// A call of the eni-ip plugin for `default/sample-pod` (container `id`) on `eth0`.
    fn call(&self, verb: &str, pod: &PrivateNetns, id: &str, conf: &str) -> Call {
        Call::new(PluginSet::Ours, "eni-ip", verb)
            .container(id, &pod.path(), "eth0")
            .var("CNI_ARGS", SAMPLE_POD_ARGS)
            .stdin(conf)
    }

    fn run(&self, call: Call) -> Output {
        call.run_in(&netns(&self.ns))
    }

    fn rules(&self, priority: u32) -> Vec<Rule> {
        netlink(&self.ns)
            .rules(Family::V4, Some(priority))
            .expect("list rules")
    }

    fn host_routes(&self) -> Vec<Route> {
        netlink(&self.ns)
            .routes(Family::V4, Some(RT_TABLE_MAIN))
            .expect("list routes")
            .into_iter()
            .filter(|r| r.dst.prefix_len() == 32)
            .collect()
    }

    fn host_veths(&self) -> Vec<String> {
        link_names(&self.ns)
            .into_iter()
            .filter(|n| n.starts_with("eni"))
            .collect()
    }

    /// No per-pod state on the node: no host veth, no /32 route, no rule 512 or 1536.
    fn assert_clean(&self) {
        assert_eq!(self.host_veths(), Vec::<String>::new(), "host veths left");
        assert_eq!(self.host_routes(), [], "host routes left");
        assert_eq!(self.rules(512), [], "rules 512 left");
        assert_eq!(self.rules(1536), [], "rules 1536 left");
    }
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

fn with_prev(conf: &str, prev: &Value) -> String {
    let mut conf: Value = serde_json::from_str(conf).unwrap();
    conf["prevResult"] = prev.clone();
    conf.to_string()
}

fn pod_routes(pod: &PrivateNetns, table: u32) -> Vec<Route> {
    netlink(pod).routes(Family::V4, Some(table)).unwrap()
}

/// The pod side as statement 44 has it: the /32, the gateway's link route, the default
/// route via it, and the gateway's permanent neighbour with the host veth's MAC.
fn assert_pod_datapath(pod: &PrivateNetns, address: &str, host_mac: [u8; 6]) {
    assert_eq!(ipv4_addrs(pod, "eth0"), [format!("{address}/32")]);
    let mut nl = netlink(pod);
    let eth0 = nl.link_by_name("eth0").unwrap().unwrap();
    assert_eq!(eth0.mtu, 9001);
    let routes = pod_routes(pod, RT_TABLE_MAIN);
    assert!(
        routes.iter().any(|r| r.dst == net("169.254.1.1/32")
            && r.oif == Some(eth0.index)
            && r.scope == kernel::RouteScope::Link),
        "{routes:?}"
    );
    assert!(
        routes.iter().any(|r| r.dst == net("0.0.0.0/0")
            && r.gateway == Some("169.254.1.1".parse().unwrap())
            && r.oif == Some(eth0.index)),
        "{routes:?}"
    );
    let neighbours = nl.neighbours(Some(eth0.index), Some(Family::V4)).unwrap();
    assert!(
        neighbours.iter().any(
            |n| n.ip == "169.254.1.1".parse::<std::net::IpAddr>().unwrap()
                && n.permanent
                && n.mac == Some(host_mac)
        ),
        "{neighbours:?}"
    );
}

fn host_mac(node: &Node, name: &str) -> [u8; 6] {
    netlink(&node.ns)
        .link_by_name(name)
        .unwrap()
        .unwrap_or_else(|| panic!("host veth {name} missing"))
        .mac
        .unwrap()
}

fn to_pod(address: &str) -> Rule {
    Rule::new(Family::V4, RT_TABLE_MAIN)
        .to(net(&format!("{address}/32")))
        .priority(512)
}

fn from_pod(address: &str, table: u32) -> Rule {
    Rule::new(Family::V4, table)
        .from(net(&format!("{address}/32")))
        .priority(1536)
}

#[test]
fn add_builds_the_datapath_of_a_primary_eni_address() {
    let node = Node::new();
    let pod = PrivateNetns::new().unwrap();
    let agent = node.agent(&[("10.0.1.20", 0)], Behaviour::Ready);
    let conf = node.conf(json!({}));
    let r = node.run(node.call("ADD", &pod, "c1", &conf)).success();

    let mac = host_mac(&node, SAMPLE_POD_VETH);
    assert_eq!(r["interfaces"][0]["name"], SAMPLE_POD_VETH, "{r}");
    assert_eq!(r["interfaces"][1]["name"], "eth0");
    assert_eq!(
        r["interfaces"][1]["sandbox"],
        pod.path().display().to_string()
    );
    assert_eq!(
        r["ips"],
        json!([{"interface": 1, "address": "10.0.1.20/32", "gateway": "169.254.1.1"}])
    );
    assert_eq!(
        r["routes"],
        json!([{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}])
    );
    assert_pod_datapath(&pod, "10.0.1.20", mac);

    let host = netlink(&node.ns)
        .link_by_name(SAMPLE_POD_VETH)
        .unwrap()
        .unwrap();
    assert!(host.up);
    let routes = node.host_routes();
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert_eq!(routes[0].dst, net("10.0.1.20/32"));
    assert_eq!(routes[0].oif, Some(host.index));
    assert_eq!(routes[0].scope, kernel::RouteScope::Link);
    assert_eq!(node.rules(512), [to_pod("10.0.1.20")]);
    assert_eq!(node.rules(1536), [], "no rule 1536 on the primary ENI");

    // The agent was asked once, with the CNI key and the pod as metadata.
    let calls = agent.calls();
    let [AgentCall::AddNetwork(add)] = calls.as_slice() else {
        panic!("{calls:?}")
    };
    assert_eq!(
        (
            add.key.network.as_str(),
            add.key.container_id.as_str(),
            add.key.ifname.as_str()
        ),
        ("vpc", "c1", "eth0")
    );
    assert_eq!(
        (add.pod_namespace.as_str(), add.pod_name.as_str()),
        ("default", "sample-pod")
    );

    node.run(node.call("CHECK", &pod, "c1", &with_prev(&conf, &r)))
        .quiet_success();
    node.run(node.call("DEL", &pod, "c1", &with_prev(&conf, &r)))
        .quiet_success();
    node.assert_clean();
}

#[test]
fn a_secondary_eni_address_gets_rule_1536_to_its_table() {
    let node = Node::new();
    let pod = PrivateNetns::new().unwrap();
    let _agent = node.agent(&[("10.0.1.60", 1)], Behaviour::Ready);
    let conf = node.conf(json!({"vethPrefix": "pod", "mtu": 1500}));
    let r = node.run(node.call("ADD", &pod, "c1", &conf)).success();
    let host = r["interfaces"][0]["name"].as_str().unwrap().to_string();
    assert!(host.starts_with("pod") && host.len() == 14, "{host}");
    assert_eq!(node.rules(512), [to_pod("10.0.1.60")]);
    // Device index 1: table 2.
    assert_eq!(node.rules(1536), [from_pod("10.0.1.60", 2)]);
    assert_eq!(
        netlink(&pod).link_by_name("eth0").unwrap().unwrap().mtu,
        1500
    );
    node.run(node.call("CHECK", &pod, "c1", &with_prev(&conf, &r)))
        .quiet_success();
    node.run(node.call("DEL", &pod, "c1", &with_prev(&conf, &r)))
        .quiet_success();
    node.assert_clean();
}

fn ping(from: &PrivateNetns, to: &str) -> bool {
    netns(from)
        .run(|| {
            std::process::Command::new("ping")
                .args(["-c", "1", "-W", "2", to])
                .output()
        })
        .unwrap()
        .unwrap()
        .status
        .success()
}

/// Two pods of one node reach each other with their own addresses, through the node's
/// rules and /32 routes (the VPC parts of statement 44 need the emulated VPC router).
#[test]
fn two_pods_reach_each_other_through_the_node() {
    let node = Node::new();
    let (a, b) = (PrivateNetns::new().unwrap(), PrivateNetns::new().unwrap());
    let _agent = node.agent(&[("10.0.1.20", 0), ("10.0.1.60", 1)], Behaviour::Ready);
    let conf = node.conf(json!({}));
    let add = |pod: &PrivateNetns, id: &str, name: &str| {
        let call = node.call("ADD", pod, id, &conf).var(
            "CNI_ARGS",
            &format!("K8S_POD_NAMESPACE=default;K8S_POD_NAME={name}"),
        );
        node.run(call).success()
    };
    add(&a, "ca", "a");
    add(&b, "cb", "b");
    assert!(ping(&a, "10.0.1.60"), "pod a cannot reach pod b");
    assert!(ping(&b, "10.0.1.20"), "pod b cannot reach pod a");
}

#[test]
fn del_removes_every_per_pod_rule_route_and_link_and_returns_the_address() {
    let node = Node::new();
    let pod = PrivateNetns::new().unwrap();
    let agent = node.agent(&[("10.0.1.60", 1)], Behaviour::Ready);
    let conf = node.conf(json!({}));
    let r = node.run(node.call("ADD", &pod, "c1", &conf)).success();
    assert_eq!(agent.held().len(), 1);
    node.run(node.call("DEL", &pod, "c1", &with_prev(&conf, &r)))
        .quiet_success();
    node.assert_clean();
    assert_eq!(link_names(&pod), BTreeSet::from(["lo".to_string()]));
    assert!(agent.held().is_empty(), "the address went back");
    let calls = agent.calls();
    assert!(
        matches!(calls.last(), Some(AgentCall::DelNetwork(d)) if d.reason == "PodDeleted"),
        "{calls:?}"
    );
    // DEL again, and a DEL of what was never added: success.
    node.run(node.call("DEL", &pod, "c1", &with_prev(&conf, &r)))
        .quiet_success();
    node.run(node.call("DEL", &pod, "never", &conf))
        .quiet_success();
    node.assert_clean();
}

/// A DEL whose prevResult names an address the node routes to another pod's veth (a
/// stale result) leaves that pod's rules alone.
#[test]
fn a_del_naming_another_pods_address_leaves_that_pod_alone() {
    let node = Node::new();
    let (a, b) = (PrivateNetns::new().unwrap(), PrivateNetns::new().unwrap());
    let _agent = node.agent(&[("10.0.1.60", 1)], Behaviour::Ready);
    let conf = node.conf(json!({}));
    let r = node.run(node.call("ADD", &a, "ca", &conf)).success();
    let call = node
        .call("DEL", &b, "cb", &with_prev(&conf, &r))
        .var("CNI_ARGS", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=other");
    node.run(call).quiet_success();
    assert_eq!(node.rules(512), [to_pod("10.0.1.60")]);
    assert_eq!(node.rules(1536), [from_pod("10.0.1.60", 2)]);
    node.run(node.call("CHECK", &a, "ca", &with_prev(&conf, &r)))
        .quiet_success();
}

#[test]
fn del_with_the_agent_down_still_removes_the_per_pod_state() {
    let node = Node::new();
    let conf = node.conf(json!({}));
    // With the address from prevResult (the runtime's or meta plugin's cache), and without
    // it: then the host veth's own /32 route names it.
    for with_prev_result in [true, false] {
        let pod = PrivateNetns::new().unwrap();
        let agent = node.agent(&[("10.0.1.60", 1)], Behaviour::Ready);
        let r = node.run(node.call("ADD", &pod, "c1", &conf)).success();
        agent.stop();
        let del_conf = if with_prev_result {
            with_prev(&conf, &r)
        } else {
            conf.clone()
        };
        node.run(node.call("DEL", &pod, "c1", &del_conf))
            .quiet_success();
        node.assert_clean();
        assert_eq!(link_names(&pod), BTreeSet::from(["lo".to_string()]));
    }
    // And a DEL of nothing with no agent succeeds.
    let pod = PrivateNetns::new().unwrap();
    node.run(node.call("DEL", &pod, "c1", &conf))
        .quiet_success();
}

#[test]
fn check_fails_after_any_piece_is_removed() {
    type Remove = fn(&Node, &PrivateNetns, &StandInAgent);
    let pieces: [(&str, Remove); 9] = [
        ("address 10.0.1.60/32 on eth0", |_, pod, _| {
            let mut nl = netlink(pod);
            let eth0 = nl.link_by_name("eth0").unwrap().unwrap();
            nl.del_address(eth0.index, net("10.0.1.60/32")).unwrap();
        }),
        ("pod route 169.254.1.1/32", |_, pod, _| {
            let mut nl = netlink(pod);
            let route = nl.routes(Family::V4, Some(RT_TABLE_MAIN)).unwrap();
            let r = route
                .iter()
                .find(|r| r.dst == net("169.254.1.1/32"))
                .unwrap();
            // The default route via the gateway goes with it; put it back.
            nl.del_route(r).unwrap();
            let eth0 = nl.link_by_name("eth0").unwrap().unwrap();
            let _ = nl.add_route(
                &Route::new(net("0.0.0.0/0"))
                    .via("169.254.1.1".parse().unwrap())
                    .dev(eth0.index)
                    .scope(kernel::RouteScope::Universe),
            );
        }),
        ("pod route default via 169.254.1.1", |_, pod, _| {
            let mut nl = netlink(pod);
            let route = nl.routes(Family::V4, Some(RT_TABLE_MAIN)).unwrap();
            nl.del_route(route.iter().find(|r| r.dst.prefix_len() == 0).unwrap())
                .unwrap();
        }),
        ("permanent neighbour 169.254.1.1", |_, pod, _| {
            let mut nl = netlink(pod);
            let eth0 = nl.link_by_name("eth0").unwrap().unwrap();
            nl.del_neighbour(eth0.index, "169.254.1.1".parse().unwrap())
                .unwrap();
        }),
        ("node route 10.0.1.60/32", |node, _, _| {
            let route = node.host_routes().remove(0);
            netlink(&node.ns).del_route(&route).unwrap();
        }),
        ("rule \"pref 512", |node, _, _| {
            netlink(&node.ns).del_rule(&to_pod("10.0.1.60")).unwrap();
        }),
        ("rule \"pref 1536", |node, _, _| {
            netlink(&node.ns)
                .del_rule(&from_pod("10.0.1.60", 2))
                .unwrap();
        }),
        ("host veth enicc21c2d7785", |node, _, _| {
            let mut nl = netlink(&node.ns);
            let link = nl.link_by_name(SAMPLE_POD_VETH).unwrap().unwrap();
            nl.del_link(link.index).unwrap();
        }),
        (
            "the ENI agent's allocation for vpc/c1/eth0",
            |_, _, agent| agent.forget_all(),
        ),
    ];
    let node = Node::new();
    let conf = node.conf(json!({}));
    for (piece, remove) in pieces {
        let pod = PrivateNetns::new().unwrap();
        let agent = node.agent(&[("10.0.1.60", 1)], Behaviour::Ready);
        let r = node.run(node.call("ADD", &pod, "c1", &conf)).success();
        let prev = with_prev(&conf, &r);
        node.run(node.call("CHECK", &pod, "c1", &prev))
            .quiet_success();
        remove(&node, &pod, &agent);
        let e = node
            .run(node.call("CHECK", &pod, "c1", &prev))
            .fails_with(102);
        let msg = e["msg"].as_str().unwrap();
        assert!(
            msg.contains(piece) && msg.contains("missing"),
            "{piece}: {e}"
        );
        node.run(node.call("DEL", &pod, "c1", &prev))
            .quiet_success();
        node.assert_clean();
    }
}

#[test]
fn status_is_50_while_the_agent_is_unavailable_or_the_pool_is_empty() {
    let node = Node::new();
    let pod = PrivateNetns::new().unwrap();
    let conf = node.conf(json!({}));
    let status =
        |node: &Node| node.run(Call::new(PluginSet::Ours, "eni-ip", "STATUS").stdin(conf.clone()));

    let e = status(&node).fails_with(50);
    assert!(e["msg"].as_str().unwrap().contains("not running"), "{e}");

    let starting = node.agent(&[("10.0.1.60", 1)], Behaviour::NotReady);
    let e = status(&node).fails_with(50);
    assert!(e["msg"].as_str().unwrap().contains("not ready"), "{e}");
    starting.stop();

    let agent = node.agent(&[("10.0.1.60", 1)], Behaviour::Ready);
    status(&node).quiet_success();
    let r = node.run(node.call("ADD", &pod, "c1", &conf)).success();
    let e = status(&node).fails_with(50);
    assert!(
        e["msg"]
            .as_str()
            .unwrap()
            .contains("no available addresses"),
        "{e}"
    );
    // An ADD with the pool empty is "try again later", and makes nothing.
    let other = PrivateNetns::new().unwrap();
    let e = node
        .run(node.call("ADD", &other, "c2", &conf))
        .fails_with(11);
    assert!(e["msg"].as_str().unwrap().contains("pool is empty"), "{e}");
    assert_eq!(link_names(&other), BTreeSet::from(["lo".to_string()]));
    node.run(node.call("DEL", &pod, "c1", &with_prev(&conf, &r)))
        .quiet_success();
    status(&node).quiet_success();
    drop(agent);
    node.assert_clean();
}

/// The meta plugin's netconf for a pod whose cluster network is eni-ip.
fn meta_with_eni_cluster(p: &MetaPod, node: &Node) -> String {
    let eni = json!({"cniVersion": "1.0.0", "type": "eni-ip", "agentSocket": node.socket()});
    p.write_nad("kube-system", "vpc", &nad("vpc", eni));
    p.conf(json!([]), json!({"clusterNetwork": "vpc"}))
}

#[test]
fn add_with_the_agent_absent_fails_with_11_and_leaves_nothing() {
    let p = MetaPod::new();
    let node = Node {
        ns: PrivateNetns::new().unwrap(),
        dir: tempfile::tempdir().unwrap(),
    };
    let conf = meta_with_eni_cluster(&p, &node);
    // Through the meta plugin, in the pod's own node namespace.
    let e = p.run(p.call("ADD", &conf)).fails_with(11);
    let msg = e["msg"].as_str().unwrap();
    assert!(
        msg.contains("not running") && msg.contains("try again later"),
        "{e}"
    );
    assert!(msg.contains(&node.socket().display().to_string()), "{e}");
    assert_eq!(link_names(&p.pod), BTreeSet::from(["lo".to_string()]));
    assert_eq!(link_names(&p.node), BTreeSet::from(["lo".to_string()]));
    let rules = netlink(&p.node).rules(Family::V4, None).unwrap();
    let priorities: Vec<Option<u32>> = rules.iter().map(|r| r.priority).collect();
    assert_eq!(priorities, [Some(0), Some(32766), Some(32767)], "{rules:?}");
    assert_eq!(p.cni_dir_files(), Vec::<String>::new(), "cache left");
    // The eni-ip plugin alone, too.
    let pod = PrivateNetns::new().unwrap();
    let e = node
        .run(node.call("ADD", &pod, "c1", &node.conf(json!({}))))
        .fails_with(11);
    assert!(
        e["msg"]
            .as_str()
            .unwrap()
            .contains("ENI agent is not running"),
        "{e}"
    );
    node.assert_clean();
}

/// The meta plugin killed while eni-ip waits for the agent's answer (the address assigned,
/// nothing in the kernel yet): DEL, with no result cached, returns the address and leaves
/// nothing.
#[test]
fn killed_mid_add_then_del_returns_the_address_and_leaves_nothing() {
    let p = MetaPod::new();
    let node = Node {
        ns: PrivateNetns::new().unwrap(),
        dir: tempfile::tempdir().unwrap(),
    };
    let agent = node.agent(&[("10.0.1.60", 1)], Behaviour::Ready);
    agent.set_add_delay(Duration::from_secs(30));
    let conf = meta_with_eni_cluster(&p, &node);
    let bin = PluginSet::Ours.bin_dir();
    let mut child = netns(&p.node)
        .run(|| {
            std::process::Command::new(bin.join("meta-cni"))
                .env_clear()
                .env("CNI_COMMAND", "ADD")
                .env("CNI_CONTAINERID", "pod1")
                .env("CNI_NETNS", p.pod.path())
                .env("CNI_IFNAME", "eth0")
                .env("CNI_PATH", bin)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
        })
        .unwrap()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(conf.as_bytes()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent.held().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        agent.held().len(),
        1,
        "the agent assigned while the plugin waits"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        p.cache_files(),
        1,
        "the plan was cached before the delegate ran"
    );

    agent.set_add_delay(Duration::ZERO);
    p.run(p.call("DEL", &conf)).quiet_success();
    assert!(agent.held().is_empty(), "the address went back");
    assert_eq!(p.cni_dir_files(), Vec::<String>::new(), "cache left");
    assert_eq!(link_names(&p.pod), BTreeSet::from(["lo".to_string()]));
    assert_eq!(link_names(&p.node), BTreeSet::from(["lo".to_string()]));
}

#[test]
fn an_agent_of_another_protocol_version_is_a_clear_error() {
    let node = Node::new();
    let pod = PrivateNetns::new().unwrap();
    let _agent = node.agent(&[("10.0.1.60", 1)], Behaviour::Version(2));
    let e = node
        .run(node.call("ADD", &pod, "c1", &node.conf(json!({}))))
        .fails_with(11);
    let msg = e["msg"].as_str().unwrap();
    assert!(
        msg.contains("protocol version 2") && msg.contains("speaks 1"),
        "{e}"
    );
    assert_eq!(link_names(&pod), BTreeSet::from(["lo".to_string()]));
    node.assert_clean();
}

#[test]
fn a_failed_setup_undoes_what_it_made_and_returns_the_address() {
    let node = Node::new();
    let pod = PrivateNetns::new().unwrap();
    let agent = node.agent(&[("10.0.1.60", 1)], Behaviour::Ready);
    // Someone else's link holds the host veth's name: not a veth, so not the plugin's to
    // delete as stale.
    let mut nl = netlink(&node.ns);
    nl.create_bridge(&kernel::BridgeRequest {
        name: SAMPLE_POD_VETH.into(),
        ..Default::default()
    })
    .unwrap();
    let e = node
        .run(node.call("ADD", &pod, "c1", &node.conf(json!({}))))
        .fails_with(4);
    assert!(e["msg"].as_str().unwrap().contains("not a veth"), "{e}");
    assert!(
        nl.link_by_name(SAMPLE_POD_VETH).unwrap().is_some(),
        "the bridge stays"
    );
    assert!(agent.held().is_empty(), "the address went back");
    let calls = agent.calls();
    assert!(
        matches!(calls.last(), Some(AgentCall::DelNetwork(d)) if d.reason == "SetupNSFailed"),
        "{calls:?}"
    );
    assert_eq!(link_names(&pod), BTreeSet::from(["lo".to_string()]));
    assert_eq!(node.rules(512), []);
    assert_eq!(node.rules(1536), []);
}

#[test]
fn bad_config_is_code_7_naming_the_field_and_asks_no_agent() {
    let node = Node::new();
    let pod = PrivateNetns::new().unwrap();
    let agent = node.agent(&[("10.0.1.60", 1)], Behaviour::Ready);
    for (extra, field) in [
        (json!({"vethPrefix": "toolong"}), "vethPrefix"),
        (json!({"mtu": 40}), "mtu"),
        (json!({"agentSocket": "relative"}), "agentSocket"),
    ] {
        let e = node
            .run(node.call("ADD", &pod, "c1", &node.conf(extra)))
            .fails_with(7);
        assert!(e["msg"].as_str().unwrap().contains(field), "{e}");
    }
    assert!(agent.calls().is_empty());
    node.assert_clean();
}

#[test]
fn gc_releases_the_attachments_not_valid_and_their_rules() {
    let node = Node::new();
    let agent = node.agent(&[("10.0.1.20", 0), ("10.0.1.60", 1)], Behaviour::Ready);
    let conf = node.conf(json!({}));
    let (a, b) = (PrivateNetns::new().unwrap(), PrivateNetns::new().unwrap());
    node.run(node.call("ADD", &a, "ca", &conf).var("CNI_ARGS", ""))
        .success();
    node.run(node.call("ADD", &b, "cb", &conf).var("CNI_ARGS", ""))
        .success();
    // Pod b's namespace goes without a DEL: its veth and route go, its rules stay.
    drop(b);
    let mut gc: Value = serde_json::from_str(&conf).unwrap();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "ca", "ifname": "eth0"}]);
    node.run(Call::new(PluginSet::Ours, "eni-ip", "GC").stdin(gc.to_string()))
        .quiet_success();
    let held: Vec<Ipv4Addr> = agent.held().into_values().collect();
    assert_eq!(held, ["10.0.1.20".parse::<Ipv4Addr>().unwrap()]);
    assert_eq!(node.rules(512), [to_pod("10.0.1.20")]);
    assert_eq!(
        node.rules(1536),
        [],
        "pod b's rule 1536 went with its address"
    );
}

/// eni-ip as a secondary network through the meta plugin: the cluster bridge keeps the
/// pod's default route; the ENI address's traffic goes through net1 by the pod's rule.
#[test]
fn a_secondary_network_through_meta_keeps_the_cluster_default_route() {
    let p = MetaPod::new();
    let node = Node {
        ns: PrivateNetns::new().unwrap(),
        dir: tempfile::tempdir().unwrap(),
    };
    let _agent = StandInAgent::start(
        &node.socket(),
        vec![PoolAddress::new("10.0.1.60", 1)],
        Behaviour::Ready,
    );
    let eni = json!({"cniVersion": "1.1.0", "type": "eni-ip", "agentSocket": node.socket()});
    p.write_nad("default", "vpc", &nad("vpc", eni));
    let conf = p.conf(json!([{"name": "vpc", "interface": "net1"}]), json!({}));
    let r = p.run(p.call("ADD", &conf)).success();
    assert_eq!(ipv4_addrs(&p.pod, "net1"), ["10.0.1.60/32"], "{r}");
    let main = pod_routes(&p.pod, RT_TABLE_MAIN);
    let defaults: Vec<&Route> = main.iter().filter(|r| r.dst.prefix_len() == 0).collect();
    assert_eq!(defaults.len(), 1, "{main:?}");
    assert_eq!(defaults[0].gateway, Some("10.10.0.1".parse().unwrap()));
    let mut nl = netlink(&p.pod);
    let net1 = nl.link_by_name("net1").unwrap().unwrap();
    let table = 1000 + net1.index;
    let pod_rules = nl.rules(Family::V4, Some(1)).unwrap();
    assert_eq!(
        pod_rules,
        [Rule::new(Family::V4, table)
            .from(net("10.0.1.60/32"))
            .priority(1)]
    );
    assert!(pod_routes(&p.pod, table)
        .iter()
        .any(|r| r.dst.prefix_len() == 0 && r.gateway == Some("169.254.1.1".parse().unwrap())));
    p.run(p.call("CHECK", &conf)).quiet_success();
    p.run(p.call("DEL", &conf)).quiet_success();
    p.assert_clean();
    assert_eq!(netlink(&p.pod).rules(Family::V4, Some(1)).unwrap(), []);
    let rules = netlink(&p.node).rules(Family::V4, None).unwrap();
    assert!(
        !rules.iter().any(|r| matches!(r.priority, Some(512 | 1536))),
        "{rules:?}"
    );
}
