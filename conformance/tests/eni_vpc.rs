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
    vpc: EmulatedVpc,
}

impl Node {
    /// A t3.medium (3 ENIs of 6 addresses: 5 for pods on each) and its agent, with a short
    /// `IP_COOLDOWN_PERIOD`.
    fn start() -> Node {
        Node::of("t3.medium")
    }

    fn of(instance_type: &str) -> Node {
        let vpc = EmulatedVpc::start(&NodeSpec::new(instance_type));
        let agent = EniAgent::start_in(&vpc, &[("IP_COOLDOWN_PERIOD", "2")]);
        Node { agent, vpc }
    }

    fn conf(&self) -> String {
        json!({"cniVersion": "1.1.0", "name": "vpc", "type": "eni-ip",
            "agentSocket": self.agent.socket()})
        .to_string()
    }

    /// One call of the plugin for pod `name` (container `name`), from the node.
    fn call(&self, verb: &str, pod: &PrivateNetns, name: &str, conf: &str) -> Output {
        Call::new(PluginSet::Ours, "eni-ip", verb)
            .container(name, &pod.path(), "eth0")
            .var(
                "CNI_ARGS",
                &format!("K8S_POD_NAMESPACE=default;K8S_POD_NAME={name}"),
            )
            .stdin(conf)
            .run_in(&netns(self.vpc.node()))
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
        let primary = self.vpc.seeded().primary_eni_id.clone();
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
        netlink(self.vpc.node())
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
    let primary_ip: Ipv4Addr = node.vpc.seeded().primary_ip.parse().unwrap();

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
        netlink(node.vpc.node())
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
        link_names(node.vpc.node()).contains("eth1"),
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

    let drops = node.vpc.spoof_drops();
    assert!(
        drops.values().all(|d| *d == 0),
        "spoofed packets: {drops:?}"
    );
    // The negative control: without rule 1024 the secondary ENI's pod leaves through its own
    // ENI, where nothing SNATs it (only what leaves the primary ENI is translated), and the
    // internet cannot answer a VPC-private address.
    let marked = Rule::new(Family::V4, RT_TABLE_MAIN)
        .fwmark(0x80, 0x80)
        .priority(1024);
    assert_eq!(node.rules(1024), std::slice::from_ref(&marked));
    netlink(node.vpc.node()).del_rule(&marked).unwrap();
    assert_eq!(seen_from(&pod2, None, INTERNET_IP), None);
    assert_eq!(
        node.vpc.spoof_drops()[&1],
        0,
        "its own address: not spoofed"
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
    netlink(node.vpc.node()).del_rule(&to_pod).unwrap();
    let err = node
        .call("CHECK", &pod, "web-1", &node.with_prev(&result))
        .failure();
    assert!(err["msg"].as_str().unwrap().contains("512"), "{err}");

    // DEL removes every per-pod rule, route and link and returns the address...
    node.call("DEL", &pod, "web-1", &node.with_prev(&result))
        .quiet_success();
    assert!(node.rules(512).is_empty() && node.rules(1536).is_empty());
    let host_veth = result["interfaces"][0]["name"].as_str().unwrap();
    assert!(!link_names(node.vpc.node()).contains(host_veth));
    assert!(!node.allocated().contains(&addr.to_string()));
    // ... which is not handed out again within the cooldown.
    let (_pod2, _, addr2) = node.add("web-2");
    assert_ne!(addr2, addr, "reused within IP_COOLDOWN_PERIOD");

    // STATUS: ready with addresses; code 50 once none is left...
    let status = |node: &Node| {
        Call::new(PluginSet::Ours, "eni-ip", "STATUS")
            .stdin(node.conf())
            .run_in(&netns(node.vpc.node()))
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
    let mut down = Node {
        agent,
        vpc: node.vpc,
    };
    status(&down).fails_with(50);
    down.call("DEL", &pod3, "web-3", &down.with_prev(&result3))
        .quiet_success();
    let host_veth = result3["interfaces"][0]["name"].as_str().unwrap();
    assert!(!link_names(down.vpc.node()).contains(host_veth));
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
        assert!(!link_names(node.vpc.node())
            .iter()
            .any(|l| l.starts_with("eni")));
        assert_eq!(link_names(&pod), ["lo".to_string()].into());
    };
    nothing(&node);

    let mut agent = node.agent;
    agent.kill9();
    let down = Node {
        agent,
        vpc: node.vpc,
    };
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
    let on_node = |call: Call| call.run_in(&netns(node.vpc.node()));
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
    let host_links: Vec<String> = link_names(node.vpc.node())
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
    assert!(!link_names(node.vpc.node())
        .iter()
        .any(|l| l.starts_with("eni")));
    assert_eq!(node.allocated(), Vec::<String>::new());
    let drops = node.vpc.spoof_drops();
    assert!(
        drops.values().all(|d| *d == 0),
        "spoofed packets: {drops:?}"
    );
}
