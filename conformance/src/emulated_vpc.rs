//! The emulated VPC of the ENI tests: the network the emulated cloud's ENIs plug into.
//!
//! EC2 gives an instance ENIs; a hypervisor makes each one a NIC of the instance, and the VPC
//! delivers every address EC2 assigned to an ENI to that ENI's MAC, and drops what an ENI
//! sends from an address that is not its own (the source/destination check). Here, from the
//! live state of an [`Ec2Emulator`] (research `eni.md` 6.5, prototype
//! `research/eni-lab/emulated_vpc.sh`):
//!
//! - a **node** namespace per node, each attached ENI of its instance a veth end
//!   `eth<device index>` there with the MAC EC2 assigned, as a hot-plugged NIC would; the
//!   primary ENI comes up configured (its primary address on the subnet, default route via
//!   the subnet's gateway), as the node's OS does it; secondary ENIs come up bare, for the
//!   agent to set up. The emulator itself runs in the first node's namespace, listening on
//!   every address: each node's agent reaches EC2 and IMDS at the first node's primary
//!   address ([`EmulatedVpc::ec2_url`]), through the VPC for the others, and IMDS tells the
//!   nodes apart by that source address, as EC2's IMDS knows its caller's instance;
//! - a **router** namespace (the VPC fabric): the subnet gateway on every ENI port, a /32
//!   route and a permanent neighbour entry for every address of every ENI (EC2 delivers by
//!   MAC and never ARPs for secondary addresses) and a /28 route plus neighbours for every
//!   delegated prefix; an nftables `forward` chain dropping packets whose source is not an
//!   address of the ENI they came from, with a counter per port;
//! - a **peer** host in another subnet of the VPC ([`PEER_IP`]);
//! - an **internet** host outside the VPC ([`INTERNET_IP`]) that can answer only the nodes'
//!   primary addresses, as an internet gateway with NAT would.
//!
//! A hot-plug thread re-reads the emulator's state every [`HOT_PLUG_PERIOD`] while the value
//! lives; [`EmulatedVpc::sync`] does one pass at once. Everything is in private namespaces
//! that go away with the value, also when a test panics.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net};
use kernel::{AddressOptions, Netlink, PrivateNetns, Route, RouteScope, VethRequest};
use serde_json::Value;

use crate::ec2_emulator::{Ec2Emulator, Node, NodeSpec};

mod echo;
mod src_check;
mod wiring;

pub use echo::{seen_from, EchoServer, ECHO_PORT, PROBES};
pub use wiring::gateway_of;

use wiring::{every_address, host, namespace, netlink, parse_mac, run_in, sysctl, wire_host};

/// A host of the VPC outside the node's subnet (the peer subnet is `10.0.2.0/24`, inside
/// the default VPC CIDR `10.0.0.0/16`).
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 10);
/// The router's address on the peer subnet.
const PEER_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
/// A host on the internet (TEST-NET-2): it answers only the node's primary address.
pub const INTERNET_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// The router's address towards the internet host.
const INTERNET_GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// How often the hot-plug thread re-reads the emulator's state.
pub const HOT_PLUG_PERIOD: Duration = Duration::from_millis(100);

/// An emulated cloud with its nodes seeded, and the VPC around them.
pub struct EmulatedVpc {
    inner: Arc<Inner>,
    stop: Arc<AtomicBool>,
    hot_plug: Option<JoinHandle<()>>,
    _echo: Vec<EchoServer>,
}

struct Inner {
    // Before the namespaces: the emulator's process runs in the first node's.
    cloud: Ec2Emulator,
    nodes: Vec<VpcNode>,
    router: PrivateNetns,
    peer: PrivateNetns,
    internet: PrivateNetns,
    ports: Mutex<BTreeMap<String, Port>>,
}

/// A node of the VPC: its instance and its namespace.
pub struct VpcNode {
    seeded: Node,
    netns: PrivateNetns,
    subnet: Ipv4Net,
}

impl VpcNode {
    /// The node's instance, as EC2 made it.
    pub fn seeded(&self) -> &Node {
        &self.seeded
    }

    /// The node's namespace: its NICs are the ENIs.
    pub fn netns(&self) -> &PrivateNetns {
        &self.netns
    }

    /// The node's primary address.
    pub fn primary_ip(&self) -> Ipv4Addr {
        self.seeded
            .primary_ip
            .parse()
            .expect("the node's primary IP")
    }
}

/// One ENI plugged into a node and the router.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Port {
    /// The node's index in [`Inner::nodes`].
    node: usize,
    device_index: u32,
    mac: [u8; 6],
    /// The router's end.
    router_link: String,
    /// What the fabric delivers to this port: /32s and /28s.
    blocks: BTreeSet<Ipv4Net>,
}

impl EmulatedVpc {
    /// Starts an emulator in a fresh node namespace, seeds a node of `spec` (its subnet must
    /// lie in its VPC and not be `10.0.2.0/24`), builds the fabric, plugs in its primary ENI
    /// and starts the hot-plug thread and the echo servers of the peer and internet hosts.
    pub fn start(spec: &NodeSpec) -> EmulatedVpc {
        EmulatedVpc::start_nodes(std::slice::from_ref(spec))
    }

    /// [`EmulatedVpc::start`] with a node per spec, all in the first one's VPC (the other
    /// specs' `vpc_cidr` is ignored; their subnets must differ from each other's).
    pub fn start_nodes(specs: &[NodeSpec]) -> EmulatedVpc {
        assert!(!specs.is_empty(), "a VPC needs a node");
        let router = namespace();
        let peer = namespace();
        let internet = namespace();
        run_in(&router, || sysctl("net.ipv4.ip_forward", "1"));
        let namespaces: Vec<PrivateNetns> = specs.iter().map(|_| namespace()).collect();
        for ns in &namespaces {
            run_in(ns, || sysctl("net.ipv4.ip_forward", "1"));
        }
        let cloud = run_in(&namespaces[0], || {
            Ec2Emulator::builder()
                .host(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                .start()
        });
        let mut nodes: Vec<VpcNode> = Vec::with_capacity(specs.len());
        for (spec, netns) in specs.iter().zip(namespaces) {
            let spec = match nodes.first() {
                Some(first) => spec.clone().in_vpc(&first.seeded.vpc_id),
                None => spec.clone(),
            };
            let seeded = cloud.seed_node(&spec);
            let subnet = seeded.subnet_cidr.parse().expect("the subnet CIDR");
            nodes.push(VpcNode {
                seeded,
                netns,
                subnet,
            });
        }

        // The peer subnet and the internet, each a veth from the router to a host.
        wire_host(&router, &peer, "v-peer", PEER_GATEWAY, PEER_IP, true);
        wire_host(
            &router,
            &internet,
            "v-igw",
            INTERNET_GATEWAY,
            INTERNET_IP,
            false,
        );
        {
            // The internet reaches the nodes' primary addresses only (the NAT gateway's view).
            let mut nl = netlink(&internet);
            for node in &nodes {
                let route = Route::new(IpNet::V4(host(node.primary_ip())))
                    .via(IpAddr::V4(INTERNET_GATEWAY));
                nl.add_route(&route)
                    .expect("internet host: route to a node");
            }
        }

        run_in(&router, src_check::create);
        let inner = Arc::new(Inner {
            cloud,
            nodes,
            router,
            peer,
            internet,
            ports: Mutex::new(BTreeMap::new()),
        });
        inner.sync();
        let echo = vec![
            EchoServer::start(&inner.peer, PEER_IP, ECHO_PORT),
            EchoServer::start(&inner.internet, INTERNET_IP, ECHO_PORT),
        ];
        let stop = Arc::new(AtomicBool::new(false));
        let hot_plug = {
            let (inner, stop) = (Arc::clone(&inner), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("vpc-hot-plug".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(HOT_PLUG_PERIOD);
                        inner.sync();
                    }
                })
                .expect("spawn the hot-plug thread")
        };
        EmulatedVpc {
            inner,
            stop,
            hot_plug: Some(hot_plug),
            _echo: echo,
        }
    }

    /// The emulated cloud (its EC2 and IMDS listen in the first node's namespace).
    pub fn cloud(&self) -> &Ec2Emulator {
        &self.inner.cloud
    }

    /// The nodes, in the order of their specs.
    pub fn nodes(&self) -> &[VpcNode] {
        &self.inner.nodes
    }

    /// The first node's instance.
    pub fn seeded(&self) -> &Node {
        &self.inner.nodes[0].seeded
    }

    /// The first node's namespace: its NICs are the ENIs.
    pub fn node(&self) -> &PrivateNetns {
        &self.inner.nodes[0].netns
    }

    /// EC2's endpoint as every node reaches it: the first node's primary address.
    pub fn ec2_url(&self) -> String {
        let port = self.inner.cloud.ec2_addr().port();
        format!("http://{}:{port}", self.inner.nodes[0].primary_ip())
    }

    /// IMDS's endpoint as every node reaches it: from its own primary address, IMDS answers
    /// with its own instance.
    pub fn imds_url(&self) -> String {
        let port = self.inner.cloud.imds_addr().port();
        format!("http://{}:{port}", self.inner.nodes[0].primary_ip())
    }

    /// The peer host's namespace.
    pub fn peer(&self) -> &PrivateNetns {
        &self.inner.peer
    }

    /// The internet host's namespace.
    pub fn internet(&self) -> &PrivateNetns {
        &self.inner.internet
    }

    /// Plugs and unplugs ENIs and reprograms the fabric from the emulator's state now.
    pub fn sync(&self) {
        self.inner.sync();
    }

    /// Packets the source/destination check dropped so far, by the node's index and the
    /// ENI's device index.
    pub fn spoof_drops(&self) -> BTreeMap<(usize, u32), u64> {
        let ports = self.inner.ports.lock().expect("ports lock");
        ports
            .values()
            .map(|port| {
                let drops = run_in(&self.inner.router, || src_check::drops(&port.router_link));
                ((port.node, port.device_index), drops)
            })
            .collect()
    }
}

impl Drop for EmulatedVpc {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.hot_plug.take() {
            let _ = thread.join();
        }
    }
}

impl Inner {
    fn sync(&self) {
        let state = self.cloud.state();
        let mut ports = self.ports.lock().expect("ports lock");
        let wanted: BTreeMap<String, (usize, u32, [u8; 6], BTreeSet<Ipv4Net>)> = self
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(i, node)| {
                enis_of(&state, &node.seeded.instance_id)
                    .map(move |eni| eni_port(i, eni))
                    .collect::<Vec<_>>()
            })
            .collect();

        let mut router_nl = netlink(&self.router);
        // Unplug what was detached (deleting the router's end takes the node's with it).
        let gone: Vec<String> = ports
            .keys()
            .filter(|id| !wanted.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            let port = ports.remove(&id).expect("a listed port");
            run_in(&self.router, || src_check::unwatch(&port.router_link));
            if let Some(link) = router_nl
                .link_by_name(&port.router_link)
                .expect("router: look a port up")
            {
                router_nl
                    .del_link(link.index)
                    .expect("router: unplug a detached ENI");
            }
        }
        for (id, (node, device_index, mac, blocks)) in wanted {
            let port = match ports.get_mut(&id) {
                Some(port) => port,
                None => {
                    let port = self.plug(&mut router_nl, node, device_index, mac);
                    ports.entry(id).or_insert(port)
                }
            };
            if port.blocks != blocks {
                self.deliver(&mut router_nl, port, &blocks);
                port.blocks = blocks;
            }
        }
    }

    /// Plugs an ENI of node `node` in: `eth<index>` in the node with the ENI's MAC, its peer
    /// `v<node>-eth<index>` in the router with the subnet's gateway on it. The primary ENI is
    /// configured as the node's OS would.
    fn plug(&self, router_nl: &mut Netlink, node: usize, device_index: u32, mac: [u8; 6]) -> Port {
        let vpc_node = &self.nodes[node];
        let router_link = format!("v{node}-eth{device_index}");
        let node_ifname = format!("eth{device_index}");
        let node_netns = vpc_node.netns.netns().expect("open a node namespace");
        router_nl
            .create_veth(&VethRequest {
                name: router_link.clone(),
                peer_name: node_ifname.clone(),
                peer_netns: Some(&node_netns),
                mac: None,
                peer_mac: Some(mac),
                mtu: Some(9001),
                master: None,
                up: true,
            })
            .unwrap_or_else(|e| panic!("plug ENI {node_ifname} of node {node} in: {e}"));
        let gateway = gateway_of(vpc_node.subnet);
        let link = router_nl
            .link_by_name(&router_link)
            .expect("router: look the new port up")
            .expect("the new port");
        router_nl
            .add_address(
                link.index,
                IpNet::V4(host(gateway)),
                AddressOptions::default(),
            )
            .expect("router: the subnet's gateway on the port");
        // The port's check: a set of what it owns (filled by `deliver`) and a rule dropping
        // any other source, with a counter that lives as long as the port.
        run_in(&self.router, || src_check::watch(&router_link));
        if device_index == 0 {
            let mut nl = Netlink::in_netns(&node_netns).expect("netlink in a node");
            let eth0 = nl
                .link_by_name(&node_ifname)
                .expect("node: look eth0 up")
                .expect("eth0");
            nl.set_link_up(eth0.index).expect("node: eth0 up");
            let addr = Ipv4Net::new(vpc_node.primary_ip(), vpc_node.subnet.prefix_len())
                .expect("a prefix length");
            nl.add_address(eth0.index, IpNet::V4(addr), AddressOptions::default())
                .expect("node: the primary address on eth0");
            let default = Route::new("0.0.0.0/0".parse().expect("the default route"))
                .via(IpAddr::V4(gateway))
                .dev(eth0.index);
            nl.add_route(&default).expect("node: default route");
        }
        Port {
            node,
            device_index,
            mac,
            router_link,
            blocks: BTreeSet::new(),
        }
    }

    /// Routes every address of `blocks` to the port, each with a permanent neighbour entry
    /// for the ENI's MAC, and forgets the port's blocks that are gone.
    fn deliver(&self, router_nl: &mut Netlink, port: &Port, blocks: &BTreeSet<Ipv4Net>) {
        let link = router_nl
            .link_by_name(&port.router_link)
            .expect("router: look a port up")
            .expect("a plugged port");
        for gone in port.blocks.difference(blocks) {
            let route = Route::new(IpNet::V4(*gone))
                .dev(link.index)
                .scope(RouteScope::Link);
            let _ = router_nl.del_route(&route);
            for addr in every_address(*gone) {
                let _ = router_nl.del_neighbour(link.index, IpAddr::V4(addr));
            }
        }
        run_in(&self.router, || src_check::own(&port.router_link, blocks));
        for block in blocks.difference(&port.blocks) {
            let route = Route::new(IpNet::V4(*block))
                .dev(link.index)
                .scope(RouteScope::Link);
            router_nl
                .replace_route(&route)
                .unwrap_or_else(|e| panic!("router: route {block} to {}: {e}", port.router_link));
            for addr in every_address(*block) {
                router_nl
                    .replace_neighbour(link.index, IpAddr::V4(addr), port.mac)
                    .unwrap_or_else(|e| panic!("router: neighbour {addr}: {e}"));
            }
        }
    }
}

/// The ENIs of [`Ec2Emulator::state`] attached to `instance_id`.
fn enis_of<'a>(state: &'a Value, instance_id: &'a str) -> impl Iterator<Item = &'a Value> {
    state["enis"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |eni| eni["attachment"]["instance_id"] == instance_id)
}

/// An ENI of the emulator's state as a port of node `node`: its id, node, device index, MAC
/// and address blocks.
fn eni_port(node: usize, eni: &Value) -> (String, (usize, u32, [u8; 6], BTreeSet<Ipv4Net>)) {
    let id = eni["id"].as_str().expect("an ENI id").to_owned();
    let device_index = eni["attachment"]["device_index"]
        .as_u64()
        .and_then(|i| u32::try_from(i).ok())
        .expect("an attached ENI's device index");
    let mac = parse_mac(eni["mac"].as_str().expect("an ENI MAC"));
    let ips = eni["private_ips"].as_array().into_iter().flatten();
    let prefixes = eni["prefixes"].as_array().into_iter().flatten();
    let blocks = ips
        .filter_map(|ip| ip.as_str()?.parse::<Ipv4Addr>().ok().map(host))
        .chain(prefixes.filter_map(|p| p.as_str()?.parse::<Ipv4Net>().ok()))
        .collect();
    (id, (node, device_index, mac, blocks))
}
