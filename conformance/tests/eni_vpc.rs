//! The ENI datapath end to end (CONFORMANCE.md statements 44 and 45), with every part real:
//! the emulated cloud (moto's EC2 and IMDS), the emulated VPC around it (ENIs hot-plugged into
//! the node with their EC2 MACs, a router that delivers each address to its ENI and drops
//! what an ENI sends from another's address), `eni-ipamd` in the node's namespace keeping the
//! warm pool and the node-wide datapath (rule 1024, SNAT, each secondary ENI's table and
//! rule 32765), and the `eni-ip` plugin through the multi-call binary.
//!
//! Everything lives in namespaces the test makes; traffic goes only between them.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use conformance::ec2_emulator::NodeSpec;
use conformance::emulated_vpc::{
    seen_from, EchoServer, EmulatedVpc, ECHO_PORT, INTERNET_IP, PEER_IP,
};
use conformance::eni_agent::EniAgent;
use conformance::inspect::{ipv4_addrs, link_names, meta_cache_files, netlink, netns};
use conformance::meta_pod::{nad, MetaPod};
use conformance::{Call, Output, PluginSet};
use eni_ip::protocol::{AddNetwork, AttachmentKey};
use kernel::{Family, PrivateNetns, Rule, RT_TABLE_MAIN};
use serde_json::{json, Value};

/// A node of the emulated VPC with its agent.
struct Node {
    // Before `vpc`: the agent is stopped before its node goes.
    agent: EniAgent,
    vpc: Arc<EmulatedVpc>,
    /// The node's index in the VPC.
    index: usize,
}

impl Node {
    /// A t3.medium (3 ENIs of 6 addresses: 5 for pods on each) and its agent, with a short
    /// `IP_COOLDOWN_PERIOD`.
    fn start() -> Node {
        Node::of("t3.medium")
    }

    fn of(instance_type: &str) -> Node {
        Node::on(
            Arc::new(EmulatedVpc::start(&NodeSpec::new(instance_type))),
            0,
        )
    }

    /// Node `index` of `vpc`, with its agent.
    fn on(vpc: Arc<EmulatedVpc>, index: usize) -> Node {
        let agent = EniAgent::start_on(&vpc, index, &[("IP_COOLDOWN_PERIOD", "2")]);
        Node { agent, vpc, index }
    }

    /// The node's namespace.
    fn ns(&self) -> &PrivateNetns {
        self.vpc.nodes()[self.index].netns()
    }

    /// The node's instance.
    fn seeded(&self) -> &conformance::ec2_emulator::Node {
        self.vpc.nodes()[self.index].seeded()
    }

    fn conf(&self) -> String {
        json!({"cniVersion": "1.1.0", "name": "vpc", "type": "eni-ip",
            "agentSocket": self.agent.socket()})
        .to_string()
    }

    /// One call of the plugin for pod `name` (container `name`).
    fn plugin(&self, verb: &str, pod: &PrivateNetns, name: &str, conf: &str) -> Call {
        Call::new(PluginSet::Ours, "eni-ip", verb)
            .container(name, &pod.path(), "eth0")
            .var(
                "CNI_ARGS",
                &format!("K8S_POD_NAMESPACE=default;K8S_POD_NAME={name}"),
            )
            .stdin(conf)
    }

    /// [`Node::plugin`], run from the node.
    fn call(&self, verb: &str, pod: &PrivateNetns, name: &str, conf: &str) -> Output {
        self.plugin(verb, pod, name, conf).run_in(&netns(self.ns()))
    }

    /// ADD of pod `name`: its namespace, the result, and its address.
    fn add(&self, name: &str) -> (PrivateNetns, Value, Ipv4Addr) {
        let pod = PrivateNetns::new().expect("a pod namespace");
        let result = self.call("ADD", &pod, name, &self.conf()).success();
        let address = result["ips"][0]["address"]
            .as_str()
            .and_then(|a| a.strip_suffix("/32"))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("a /32 in {result}"));
        (pod, result, address)
    }

    fn with_prev(&self, result: &Value) -> String {
        let mut conf: Value = serde_json::from_str(&self.conf()).unwrap();
        conf["prevResult"] = result.clone();
        conf.to_string()
    }

    /// Takes addresses from the agent for other attachments until one comes from an ENI
    /// other than the primary: the primary ENI is then full, and the next pod's address is
    /// a secondary ENI's.
    fn fill_the_primary_eni(&self) {
        let primary = self.seeded().primary_eni_id.clone();
        let client = self.agent.client();
        for i in 0.. {
            assert!(i < 10, "the primary ENI never filled up");
            let assigned = client
                .add_network(filler(i))
                .expect("an address for a filler");
            if assigned.eni_id != primary {
                return;
            }
        }
    }

    fn rules(&self, priority: u32) -> Vec<Rule> {
        netlink(self.ns())
            .rules(Family::V4, Some(priority))
            .expect("list the node's rules")
    }

    fn allocated(&self) -> Vec<String> {
        self.agent
            .get("/v1/pods")
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["address"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// The source/destination check dropped nothing, on any ENI of any node.
fn assert_nothing_spoofed(vpc: &EmulatedVpc) {
    let drops = vpc.spoof_drops();
    assert!(
        drops.values().all(|d| *d == 0),
        "spoofed packets: {drops:?}"
    );
}

/// The agent's rule 1024: what carries the connmark sends out of the primary ENI.
fn rule_1024() -> Rule {
    Rule::new(Family::V4, RT_TABLE_MAIN)
        .fwmark(0x80, 0x80)
        .priority(1024)
}

/// An attachment with no pod behind it, holding an address of the pool.
fn filler(i: usize) -> AddNetwork {
    AddNetwork {
        key: AttachmentKey {
            network: "vpc".into(),
            container_id: format!("filler-{i}"),
            ifname: "eth0".into(),
        },
        netns: String::new(),
        pod_namespace: String::new(),
        pod_name: String::new(),
    }
}

fn host(addr: Ipv4Addr) -> ipnet::IpNet {
    ipnet::IpNet::V4(ipnet::Ipv4Net::new(addr, 32).unwrap())
}

#[test]
fn statement_44_pods_on_the_primary_and_a_secondary_eni_reach_the_vpc_and_the_internet() {
    let node = Node::start();
    let primary_ip: Ipv4Addr = node.seeded().primary_ip.parse().unwrap();

    // A pod on the primary ENI: its /32, the default route via 169.254.1.1 and a permanent
    // neighbour for it; on the node the /32 route and rule 512, no rule 1536 (table main).
    let (pod1, result1, addr1) = node.add("web-1");
    assert_eq!(ipv4_addrs(&pod1, "eth0"), [format!("{addr1}/32")]);
    assert_eq!(result1["ips"][0]["gateway"], "169.254.1.1");
    let gateway_mac =
        {
            let mut nl = netlink(&pod1);
            let eth0 = nl.link_by_name("eth0").unwrap().unwrap();
            let routes = nl.routes(Family::V4, Some(RT_TABLE_MAIN)).unwrap();
            assert!(
                routes.iter().any(|r| r.dst.prefix_len() == 0
                    && r.gateway == Some("169.254.1.1".parse().unwrap())),
                "{routes:?}"
            );
            let neighbours = nl.neighbours(Some(eth0.index), Some(Family::V4)).unwrap();
            let gw = neighbours
                .iter()
                .find(|n| n.ip == "169.254.1.1".parse::<std::net::IpAddr>().unwrap())
                .unwrap_or_else(|| panic!("no neighbour for the gateway: {neighbours:?}"));
            assert!(gw.permanent, "{gw:?}");
            gw.mac
        };
    let host_veth = result1["interfaces"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        netlink(node.ns())
            .link_by_name(&host_veth)
            .unwrap()
            .unwrap()
            .mac,
        gateway_mac,
        "the gateway's neighbour is the host veth"
    );
    let to_pod1 = Rule::new(Family::V4, RT_TABLE_MAIN)
        .to(host(addr1))
        .priority(512);
    assert!(node.rules(512).contains(&to_pod1));
    assert!(node.rules(1536).is_empty(), "{:?}", node.rules(1536));

    // A pod on a secondary ENI: rule 1536 to that ENI's table (device index 1: table 2).
    node.fill_the_primary_eni();
    let (pod2, _, addr2) = node.add("web-2");
    let from_pod2 = Rule::new(Family::V4, 2).from(host(addr2)).priority(1536);
    assert_eq!(node.rules(1536), [from_pod2]);
    assert!(
        link_names(node.ns()).contains("eth1"),
        "the second ENI is plugged in"
    );

    // Inside the VPC both keep their own address, both ways; the secondary ENI's pod
    // leaves through its ENI (else the source/destination check would drop it).
    assert_eq!(seen_from(&pod1, None, PEER_IP), Some(addr1));
    assert_eq!(seen_from(&pod2, None, PEER_IP), Some(addr2));
    let _echo = EchoServer::start(&pod2, addr2, ECHO_PORT);
    assert_eq!(seen_from(node.vpc.peer(), None, addr2), Some(PEER_IP));

    // Outside the VPC both are SNATed to the node's primary address (the internet answers
    // no other), the secondary ENI's pod steered out of the primary ENI by the connmark.
    assert_eq!(seen_from(&pod1, None, INTERNET_IP), Some(primary_ip));
    assert_eq!(seen_from(&pod2, None, INTERNET_IP), Some(primary_ip));

    assert_nothing_spoofed(&node.vpc);
    // The negative control: without rule 1024 the secondary ENI's pod leaves through its own
    // ENI, where nothing SNATs it (only what leaves the primary ENI is translated), and the
    // internet cannot answer a VPC-private address.
    let marked = rule_1024();
    assert_eq!(node.rules(1024), std::slice::from_ref(&marked));
    netlink(node.ns()).del_rule(&marked).unwrap();
    assert_eq!(seen_from(&pod2, None, INTERNET_IP), None);
    assert_eq!(
        node.vpc.spoof_drops()[&(0, 1)],
        0,
        "its own address: not spoofed"
    );
}

/// A pod of [`two_nodes_pods_on_primary_and_secondary_enis_reach_each_other_across_nodes`].
struct PodOn {
    name: String,
    node: usize,
    ns: PrivateNetns,
    addr: Ipv4Addr,
}

/// Two nodes of one VPC (in two subnets), each with its own agent reaching EC2 and IMDS
/// through the VPC: pods on the primary and on a secondary ENI of each node reach every pod
/// of the other node and the VPC peer with their own addresses (as the receiving side sees
/// them), are reachable from the peer, and reach the internet through SNAT to their node's
/// primary address; nothing trips the source/destination check. Without rule 1024 on one
/// node, that node's secondary-ENI pod loses the internet and the other node's does not.
#[test]
fn two_nodes_pods_on_primary_and_secondary_enis_reach_each_other_across_nodes() {
    let vpc = Arc::new(EmulatedVpc::start_nodes(&[
        NodeSpec::new("t3.medium"),
        NodeSpec::new("t3.medium").subnet_cidr("10.0.3.0/24"),
    ]));
    let nodes = [Node::on(Arc::clone(&vpc), 0), Node::on(Arc::clone(&vpc), 1)];
    let mut pods = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let subnet: ipnet::Ipv4Net = node.seeded().subnet_cidr.parse().unwrap();
        let (ns, _, addr) = node.add(&format!("n{i}-primary"));
        assert!(
            node.rules(1536).is_empty(),
            "on the primary ENI: table main"
        );
        pods.push(PodOn {
            name: format!("n{i}-primary"),
            node: i,
            ns,
            addr,
        });
        node.fill_the_primary_eni();
        let (ns, _, addr) = node.add(&format!("n{i}-secondary"));
        let on_eth1 = Rule::new(Family::V4, 2).from(host(addr)).priority(1536);
        assert_eq!(node.rules(1536), [on_eth1], "on the secondary ENI's table");
        pods.push(PodOn {
            name: format!("n{i}-secondary"),
            node: i,
            ns,
            addr,
        });
        assert!(
            pods.iter()
                .filter(|p| p.node == i)
                .all(|p| subnet.contains(&p.addr)),
            "node {i}'s pods have addresses of its subnet"
        );
    }
    let _echo: Vec<EchoServer> = pods
        .iter()
        .map(|p| EchoServer::start(&p.ns, p.addr, ECHO_PORT))
        .collect();

    for from in &pods {
        for to in pods.iter().filter(|to| to.node != from.node) {
            assert_eq!(
                seen_from(&from.ns, None, to.addr),
                Some(from.addr),
                "{} -> {}",
                from.name,
                to.name
            );
        }
        assert_eq!(
            seen_from(&from.ns, None, PEER_IP),
            Some(from.addr),
            "{}",
            from.name
        );
        assert_eq!(
            seen_from(vpc.peer(), None, from.addr),
            Some(PEER_IP),
            "peer -> {}",
            from.name
        );
        assert_eq!(
            seen_from(&from.ns, None, INTERNET_IP),
            Some(vpc.nodes()[from.node].primary_ip()),
            "{} -> internet, SNATed to its node's primary address",
            from.name
        );
    }
    assert_nothing_spoofed(&vpc);

    // The negative control: node 1 without rule 1024.
    let marked = rule_1024();
    netlink(nodes[1].ns()).del_rule(&marked).unwrap();
    let secondary = |node: usize| {
        pods.iter()
            .find(|p| p.node == node && p.name.ends_with("secondary"))
            .unwrap()
    };
    assert_eq!(seen_from(&secondary(1).ns, None, INTERNET_IP), None);
    assert_eq!(
        seen_from(&secondary(0).ns, None, INTERNET_IP),
        Some(vpc.nodes()[0].primary_ip())
    );
}

#[test]
fn statement_45_del_check_and_status_against_the_real_agent() {
    let node = Node::start();
    let (pod, result, addr) = node.add("web-1");
    assert!(node.allocated().contains(&addr.to_string()));

    // CHECK passes, then fails once a piece is gone (rule 512 here), naming it.
    node.call("CHECK", &pod, "web-1", &node.with_prev(&result))
        .quiet_success();
    let to_pod = Rule::new(Family::V4, RT_TABLE_MAIN)
        .to(host(addr))
        .priority(512);
    netlink(node.ns()).del_rule(&to_pod).unwrap();
    let err = node
        .call("CHECK", &pod, "web-1", &node.with_prev(&result))
        .failure();
    assert!(err["msg"].as_str().unwrap().contains("512"), "{err}");

    // DEL removes every per-pod rule, route and link and returns the address...
    node.call("DEL", &pod, "web-1", &node.with_prev(&result))
        .quiet_success();
    assert!(node.rules(512).is_empty() && node.rules(1536).is_empty());
    let host_veth = result["interfaces"][0]["name"].as_str().unwrap();
    assert!(!link_names(node.ns()).contains(host_veth));
    assert!(!node.allocated().contains(&addr.to_string()));
    // ... which is not handed out again within the cooldown.
    let (_pod2, _, addr2) = node.add("web-2");
    assert_ne!(addr2, addr, "reused within IP_COOLDOWN_PERIOD");

    // STATUS: ready with addresses; code 50 once none is left...
    let status = |node: &Node| {
        Call::new(PluginSet::Ours, "eni-ip", "STATUS")
            .stdin(node.conf())
            .run_in(&netns(node.ns()))
    };
    status(&node).quiet_success();
    let client = node.agent.client();
    // Past the cooldown the released address is handed out too: then nothing is left.
    std::thread::sleep(Duration::from_millis(2500));
    for i in 0.. {
        if client.add_network(filler(i)).is_err() {
            break;
        }
        assert!(i < 20, "a t3.medium holds 15 addresses");
    }
    assert_eq!(node.agent.get("/v1/pool")["available"], 0);
    let err = status(&node).fails_with(50);
    assert!(err["msg"].as_str().unwrap().contains("no"), "{err}");

    // ... and code 50 while the agent is down, when DEL still removes the pod's state.
    let (pod3, result3, addr3) = {
        // One address is free again once a filler is released.
        client
            .del_network(eni_ip::protocol::DelNetwork {
                key: AttachmentKey {
                    network: "vpc".into(),
                    container_id: "filler-0".into(),
                    ifname: "eth0".into(),
                },
                reason: "PodDeleted".into(),
            })
            .unwrap();
        std::thread::sleep(Duration::from_secs(3));
        node.add("web-3")
    };
    let mut agent = node.agent;
    agent.kill9();
    let mut down = Node { agent, ..node };
    status(&down).fails_with(50);
    down.call("DEL", &pod3, "web-3", &down.with_prev(&result3))
        .quiet_success();
    let host_veth = result3["interfaces"][0]["name"].as_str().unwrap();
    assert!(!link_names(down.ns()).contains(host_veth));
    assert!(!down.rules(512).iter().any(|r| r.dst == Some(host(addr3))));

    // Back, the agent finds the pod's veth gone and takes the address back (as upstream
    // prunes its checkpoint against the veths); the allocations without a pod go too.
    down.agent.restart();
    let allocated = down.allocated();
    assert!(!allocated.contains(&addr3.to_string()), "{allocated:?}");
    assert!(
        allocated.contains(&addr2.to_string()),
        "web-2 keeps its address: {allocated:?}"
    );
}

/// The plugin SIGKILLed at points through its ADD, as a runtime's timeout kills it, with the
/// real agent: whatever it had made by then (nothing, an allocation, some of the datapath or
/// all of it), a DEL without a result removes it and returns the address.
#[test]
fn killed_mid_add_then_del_leaves_nothing_with_the_real_agent() {
    let node = Node::start();
    let conf = node.conf();
    let mut reached = BTreeSet::new();
    for (n, delay_ms) in [0u64, 2, 5, 10, 20, 40, 80].into_iter().enumerate() {
        let name = format!("killed-{n}");
        let pod = PrivateNetns::new().unwrap();
        let mut child = node
            .plugin("ADD", &pod, &name, &conf)
            .spawn_in(&netns(node.ns()));
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        let stage = (
            !node.allocated().is_empty(),
            link_names(node.ns()).iter().any(|l| l.starts_with("eni")),
            !node.rules(512).is_empty(),
        );
        reached.insert(stage);

        node.call("DEL", &pod, &name, &conf).quiet_success();
        assert_eq!(
            node.allocated(),
            Vec::<String>::new(),
            "killed after {delay_ms} ms"
        );
        assert!(node.rules(512).is_empty() && node.rules(1536).is_empty());
        assert!(
            !link_names(node.ns()).iter().any(|l| l.starts_with("eni")),
            "killed after {delay_ms} ms: a host veth is left"
        );
        assert_eq!(link_names(&pod), ["lo".to_string()].into());
    }
    // (allocated, host veth, rule 512) as the kills left them: which stages were hit.
    eprintln!("stages reached by the kills: {reached:?}");
}

/// The plugin's refusals with the real agent: down (code 11, nothing made) and out of
/// addresses (code 11 naming the limit, nothing made).
#[test]
fn the_agent_down_or_out_of_addresses_is_code_11_and_nothing_is_made() {
    let node = Node::start();
    let client = node.agent.client();
    for i in 0.. {
        if client.add_network(filler(i)).is_err() {
            break;
        }
        assert!(i < 20, "a t3.medium holds 15 addresses");
    }
    let pod = PrivateNetns::new().unwrap();
    let err = node.call("ADD", &pod, "web-1", &node.conf()).fails_with(11);
    let msg = err["msg"].as_str().unwrap().to_owned() + err["details"].as_str().unwrap_or("");
    assert!(msg.contains("t3.medium allows 3 ENIs"), "{err}");
    let nothing = |node: &Node| {
        assert!(node.rules(512).is_empty() && node.rules(1536).is_empty());
        assert!(!link_names(node.ns()).iter().any(|l| l.starts_with("eni")));
        assert_eq!(link_names(&pod), ["lo".to_string()].into());
    };
    nothing(&node);

    let mut agent = node.agent;
    agent.kill9();
    let down = Node { agent, ..node };
    let err = down.call("ADD", &pod, "web-1", &down.conf()).fails_with(11);
    assert!(
        err["msg"].as_str().unwrap().contains("not running"),
        "{err}"
    );
    nothing(&down);
}

/// A pod with three interfaces through meta-cni: the cluster bridge on eth0, a bridge NAD on
/// net2 and an eni-ip NAD on net1 (its address from the real agent, its routes in a table of
/// its own so eth0 keeps the default route); DEL leaves no link, rule, route, reservation,
/// allocation or cache entry.
#[test]
fn three_interfaces_through_meta_cni_with_an_eni_address_on_net1() {
    let node = Node::start();
    let meta = MetaPod::new();
    let eni_nad = nad(
        "vpc",
        json!({"cniVersion": "1.0.0", "type": "eni-ip", "agentSocket": node.agent.socket()}),
    );
    meta.write_nad("default", "vpc", &eni_nad);
    let conf = meta.conf(
        json!([{"name": "net-a", "interface": "net2"}, {"name": "vpc", "interface": "net1"}]),
        json!({}),
    );
    let on_node = |call: Call| call.run_in(&netns(node.ns()));
    let result = on_node(meta.call("ADD", &conf)).success();
    let eth0 = ipv4_addrs(&meta.pod, "eth0");
    let net2 = ipv4_addrs(&meta.pod, "net2");
    let net1 = ipv4_addrs(&meta.pod, "net1");
    assert!(eth0[0].starts_with("10.10.0."), "{eth0:?}");
    assert!(net2[0].starts_with("10.10.1."), "{net2:?}");
    let eni_addr: Ipv4Addr = net1[0].strip_suffix("/32").unwrap().parse().unwrap();
    assert!(node.allocated().contains(&eni_addr.to_string()));

    // The ENI address reaches the VPC with itself as the source; the pod's default route
    // stays the cluster network's.
    assert_eq!(
        seen_from(&meta.pod, Some(eni_addr), PEER_IP),
        Some(eni_addr)
    );
    let default = netlink(&meta.pod)
        .routes(Family::V4, Some(RT_TABLE_MAIN))
        .unwrap()
        .into_iter()
        .find(|r| r.dst.prefix_len() == 0)
        .expect("a default route");
    assert_eq!(
        default.gateway,
        Some("10.10.0.1".parse().unwrap()),
        "{result}"
    );

    on_node(meta.call("CHECK", &with_prev(&conf, &result))).quiet_success();
    on_node(meta.call("DEL", &conf)).quiet_success();
    assert_eq!(link_names(&meta.pod), ["lo".to_string()].into());
    let host_links: Vec<String> = link_names(node.ns())
        .into_iter()
        .filter(|l| l.starts_with("veth") || l.starts_with("eni"))
        .collect();
    assert!(host_links.is_empty(), "{host_links:?}");
    assert!(node.rules(512).is_empty() && node.rules(1536).is_empty());
    assert_eq!(meta.reservations(), Vec::<String>::new());
    assert!(!node.allocated().contains(&eni_addr.to_string()));
    assert_eq!(meta_cache_files(&meta.cni_dir()), Vec::<String>::new());
}

fn with_prev(conf: &str, result: &Value) -> String {
    let mut conf: Value = serde_json::from_str(conf).unwrap();
    conf["prevResult"] = result.clone();
    conf.to_string()
}

/// 50 pods at once on one node (an m5.xlarge: 4 ENIs of 14 pod addresses): 50 distinct
/// addresses, each pod reaching the VPC with its own; 50 DELs at once leave nothing.
#[test]
fn fifty_pods_at_once_on_one_node() {
    let node = Node::of("m5.xlarge");
    let conf = node.conf();
    let pods: Vec<(String, PrivateNetns, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|n| {
                let (node, conf) = (&node, &conf);
                s.spawn(move || {
                    let name = format!("web-{n}");
                    let pod = PrivateNetns::new().expect("a pod namespace");
                    let result = node.call("ADD", &pod, &name, conf).success();
                    (name, pod, result)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let addresses: BTreeSet<Ipv4Addr> = pods
        .iter()
        .map(|(_, _, result)| {
            result["ips"][0]["address"]
                .as_str()
                .and_then(|a| a.strip_suffix("/32"))
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("a /32 in {result}"))
        })
        .collect();
    assert_eq!(addresses.len(), 50, "distinct addresses");
    for (name, pod, result) in &pods {
        let own = result["ips"][0]["address"].as_str().unwrap();
        let seen = seen_from(pod, None, PEER_IP).unwrap_or_else(|| panic!("{name} is cut off"));
        assert_eq!(format!("{seen}/32"), own, "{name} keeps its own address");
    }
    assert_eq!(node.rules(512).len(), 50);

    std::thread::scope(|s| {
        for (name, pod, result) in &pods {
            let node = &node;
            s.spawn(move || {
                node.call("DEL", pod, name, &node.with_prev(result))
                    .quiet_success();
            });
        }
    });
    assert!(node.rules(512).is_empty() && node.rules(1536).is_empty());
    assert!(!link_names(node.ns()).iter().any(|l| l.starts_with("eni")));
    assert_eq!(node.allocated(), Vec::<String>::new());
    assert_nothing_spoofed(&node.vpc);
}
