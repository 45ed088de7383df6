//! A snapshot of a network namespace's kernel state, with its random parts (MACs, interface
//! indexes, host veth names) replaced by the rules they follow, so that the state two plugin
//! sets leave after the same call can be compared entry by entry.
//!
//! A [`Snapshot`] is a sorted map from a key that names one fact (`link <host-veth> mtu`,
//! `addr eth0 10.1.2.2/24`, `sysctl net/ipv4/conf/eth0/arp_notify`) to its value. What it
//! holds:
//! - links: kind, MTU, transmit queue length and queue counts, `IFF_*` flags, master,
//!   device group, bridge port hairpin mode, how the MAC was assigned
//!   (`addr_assign_type`) and the MAC itself as a rule: `random` (locally administered
//!   unicast), `port <name>` (a bridge's, equal to one of its ports'), or literal when
//!   the caller names it as expected, or when it fits no rule;
//! - addresses with prefix length, scope and `IFA_F_*` flags; an IPv6 link-local address
//!   derived from the link's own MAC (EUI-64) shows as `fe80::<eui-64>/64`, one derived
//!   from another link's as `fe80::<eui-64 of NAME>/64`, and one derived from a MAC no
//!   link has now as `fe80::<eui-64 of a former MAC>/64`;
//! - unicast routes of every table, with their device by name;
//! - permanent neighbour entries (dynamic ones depend on traffic, not on the plugin);
//! - every parameter under `net/ipv4/conf/<if>/` and `net/ipv6/conf/<if>/` for each link
//!   and for `all` and `default`, and `net/ipv4/ip_forward`.
//!
//! What the kernel does on its own, later, after a link comes up (linkwatch's `RUNNING`
//! flag, the IPv6 link-local address and its duplicate address detection) is compared
//! once over: see [`Snapshot::settled`]. The parameters that drive it (`accept_dad`, ...)
//! are compared as they are.
//!
//! Host veths (`veth...`, random names) become `<host-veth>`, or `<host-veth-N>` in name
//! order when there are several. Every function panics on failure: the callers are tests.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use kernel::{Family, Link, Netlink, Netns};

/// The kernel state of one namespace, normalised; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Fact -> value, sorted by fact.
    pub entries: BTreeMap<String, String>,
}

/// One fact on which two snapshots disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The fact's key.
    pub key: String,
    /// Its value in the first snapshot (`None`: absent there).
    pub left: Option<String>,
    /// Its value in the second snapshot.
    pub right: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
        write!(
            f,
            "{}: {} | {}",
            self.key,
            show(&self.left),
            show(&self.right)
        )
    }
}

/// `IFF_*` flag names, as `ip link` prints them.
const IFF_NAMES: &[(u32, &str)] = &[
    (0x1, "UP"),
    (0x2, "BROADCAST"),
    (0x4, "DEBUG"),
    (0x8, "LOOPBACK"),
    (0x10, "POINTOPOINT"),
    (0x20, "NOTRAILERS"),
    (0x40, "RUNNING"),
    (0x80, "NOARP"),
    (0x100, "PROMISC"),
    (0x200, "ALLMULTI"),
    (0x400, "MASTER"),
    (0x800, "SLAVE"),
    (0x1000, "MULTICAST"),
    (0x2000, "PORTSEL"),
    (0x4000, "AUTOMEDIA"),
    (0x8000, "DYNAMIC"),
    (0x10000, "LOWER_UP"),
    (0x20000, "DORMANT"),
    (0x40000, "ECHO"),
];

/// `IFA_F_*` flag names, as `ip address` prints them.
const IFA_NAMES: &[(u32, &str)] = &[
    (0x01, "secondary"),
    (0x02, "nodad"),
    (0x04, "optimistic"),
    (0x08, "dadfailed"),
    (0x10, "homeaddress"),
    (0x20, "deprecated"),
    (0x40, "tentative"),
    (0x80, "permanent"),
    (0x100, "managetempaddr"),
    (0x200, "noprefixroute"),
    (0x400, "mcautojoin"),
    (0x800, "stable-privacy"),
];

/// `IFF_UP`, `IFF_LOOPBACK`, `IFF_RUNNING`, `IFF_LOWER_UP`.
const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;
const IFF_RUNNING: u32 = 0x40;
const IFF_LOWER_UP: u32 = 0x10000;
/// `RT_SCOPE_LINK`.
const SCOPE_LINK: u8 = 253;
/// `IFA_F_TENTATIVE`.
const TENTATIVE: u32 = 0x40;
/// `NUD_PERMANENT`.
const NUD_PERMANENT: u16 = 0x80;

fn flag_names(flags: u32, names: &[(u32, &str)]) -> String {
    let mut out: Vec<String> = names
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| (*name).to_string())
        .collect();
    let known = names.iter().fold(0, |acc, (bit, _)| acc | bit);
    if flags & !known != 0 {
        out.push(format!("{:#x}", flags & !known));
    }
    out.join(",")
}

/// `aa:bb:cc:dd:ee:ff`.
fn mac_text(mac: &[u8; 6]) -> String {
    kernel::format_mac(mac)
}

/// The modified EUI-64 interface identifier of `mac`, as the kernel derives an IPv6
/// link-local address from it.
fn eui64_link_local(mac: &[u8; 6]) -> IpAddr {
    let b = [
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ];
    IpAddr::from(b)
}

/// Whether `ip` is an IPv6 link-local address with an EUI-64 interface identifier
/// (`fe80::xxxx:xxff:fexx:xxxx`).
fn is_eui64_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => {
            let o = v6.octets();
            o[..8] == [0xfe, 0x80, 0, 0, 0, 0, 0, 0] && o[11] == 0xff && o[12] == 0xfe
        }
        IpAddr::V4(_) => false,
    }
}

/// The names the snapshot uses for the links of a namespace: host veths normalised.
fn link_names(links: &[Link]) -> BTreeMap<u32, String> {
    let mut veths: Vec<&Link> = links
        .iter()
        .filter(|l| l.name.starts_with("veth"))
        .collect();
    veths.sort_by(|a, b| a.name.cmp(&b.name));
    let mut names: BTreeMap<u32, String> =
        links.iter().map(|l| (l.index, l.name.clone())).collect();
    match veths.as_slice() {
        [only] => {
            names.insert(only.index, "<host-veth>".into());
        }
        many => {
            for (n, l) in many.iter().enumerate() {
                names.insert(l.index, format!("<host-veth-{}>", n + 1));
            }
        }
    }
    names
}

impl Snapshot {
    /// The state of `ns` now. MACs in `expected_macs` are shown literally (a MAC the
    /// netconf asked for); any other is shown by its rule.
    pub fn take(ns: &Netns, expected_macs: &[[u8; 6]]) -> Snapshot {
        let mut nl = Netlink::in_netns(ns).expect("netlink socket in the namespace");
        let links = nl.links().expect("list links");
        let names = link_names(&links);
        let name = |index: u32| {
            names
                .get(&index)
                .cloned()
                .unwrap_or_else(|| format!("<index {index}>"))
        };
        let mut s = Snapshot::default();
        for link in &links {
            s.add_link(&mut nl, ns, link, &links, &name, expected_macs);
        }
        for family in [Family::V4, Family::V6] {
            for a in nl.addresses(None, Some(family)).expect("list addresses") {
                let own_mac = links
                    .iter()
                    .find(|l| l.index == a.index)
                    .and_then(|l| l.mac);
                let ip = a.addr.addr();
                let shown = if own_mac.is_some_and(|m| ip == eui64_link_local(&m)) {
                    format!("fe80::<eui-64>/{}", a.addr.prefix_len())
                } else if let Some(other) = links
                    .iter()
                    .find(|l| l.mac.is_some_and(|m| ip == eui64_link_local(&m)))
                {
                    format!(
                        "fe80::<eui-64 of {}>/{}",
                        name(other.index),
                        a.addr.prefix_len()
                    )
                } else if is_eui64_link_local(ip) {
                    // A MAC the link had when its link-local address was made (a bridge
                    // that took a port's MAC afterwards).
                    format!("fe80::<eui-64 of a former MAC>/{}", a.addr.prefix_len())
                } else {
                    a.addr.to_string()
                };
                s.put(
                    format!("addr {} {shown}", name(a.index)),
                    format!(
                        "scope {} flags [{}]",
                        a.scope,
                        flag_names(a.flags, IFA_NAMES)
                    ),
                );
            }
            for r in nl.routes(family, None).expect("list routes") {
                let dev = r.oif.map(&name).unwrap_or_else(|| "-".into());
                let via = r
                    .gateway
                    .map(|g| g.to_string())
                    .unwrap_or_else(|| "-".into());
                s.put(
                    format!(
                        "route table {} {} dev {dev} via {via} metric {}",
                        r.table,
                        r.dst,
                        r.metric.unwrap_or(0)
                    ),
                    format!(
                        "proto {} scope {:?} src {} mtu {} advmss {}",
                        r.protocol,
                        r.scope,
                        r.src.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
                        r.mtu.unwrap_or(0),
                        r.advmss.unwrap_or(0)
                    ),
                );
            }
            for n in nl.neighbours(None, Some(family)).expect("list neighbours") {
                if n.state & NUD_PERMANENT == 0 {
                    continue;
                }
                s.put(
                    format!("neigh {} {}", name(n.index), n.ip),
                    n.mac.map(|m| mac_text(&m)).unwrap_or_default(),
                );
            }
        }
        let dirs: Vec<(String, String)> = links
            .iter()
            .map(|l| (l.name.clone(), name(l.index)))
            .chain(["all", "default"].map(|d| (d.to_string(), d.to_string())))
            .collect();
        let sysctls = ns
            .run(|| read_sysctls(&dirs))
            .expect("enter the namespace to read sysctls");
        s.entries.extend(sysctls);
        s
    }

    /// [`Snapshot::take`] once what the kernel does on its own after a link comes up is
    /// done, or after `timeout` whatever the state: linkwatch has marked every up link with
    /// a carrier `RUNNING`, each such link (loopback aside) has its IPv6 link-local address
    /// unless IPv6 is off there, and no address is tentative any more (duplicate address
    /// detection over). When those happen depends on when the links came up and how long
    /// the rest of the call took, not on what the plugin configured.
    pub fn settled(ns: &Netns, expected_macs: &[[u8; 6]], timeout: Duration) -> Snapshot {
        let mut nl = Netlink::in_netns(ns).expect("netlink socket in the namespace");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && !kernel_done(&mut nl, ns) {
            std::thread::sleep(Duration::from_millis(50));
        }
        Snapshot::take(ns, expected_macs)
    }

    /// Records a fact the caller established (a rule observed by acting on the kernel).
    pub fn put(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.insert(key.into(), value.into());
    }

    /// Every fact on which `self` and `other` disagree, in key order.
    pub fn diff(&self, other: &Snapshot) -> Vec<Difference> {
        let mut keys: Vec<&String> = self.entries.keys().chain(other.entries.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter_map(|k| {
                let (left, right) = (self.entries.get(k), other.entries.get(k));
                (left != right).then(|| Difference {
                    key: k.clone(),
                    left: left.cloned(),
                    right: right.cloned(),
                })
            })
            .collect()
    }

    fn add_link(
        &mut self,
        nl: &mut Netlink,
        ns: &Netns,
        link: &Link,
        links: &[Link],
        name: &impl Fn(u32) -> String,
        expected_macs: &[[u8; 6]],
    ) {
        let me = name(link.index);
        let key = |what: &str| format!("link {me} {what}");
        self.put(key("kind"), link.kind.clone().unwrap_or_else(|| "-".into()));
        self.put(key("mtu"), link.mtu.to_string());
        self.put(key("txqueuelen"), link.txqueuelen.to_string());
        self.put(
            key("queues tx/rx"),
            format!("{}/{}", link.queues.0, link.queues.1),
        );
        self.put(key("flags"), flag_names(link.flags, IFF_NAMES));
        self.put(key("group"), link.group.to_string());
        self.put(
            key("master"),
            link.master.map(name).unwrap_or_else(|| "-".into()),
        );
        if link.master.is_some() {
            let hairpin = nl.port_hairpin(link.index).expect("read bridge port");
            self.put(key("hairpin"), format!("{hairpin:?}"));
        }
        let Some(mac) = link.mac else {
            self.put(key("mac"), "-");
            return;
        };
        let assign = kernel::addr_assign_type(ns, link)
            .map(|t| format!("{t:?}"))
            .unwrap_or_else(|e| format!("unreadable ({e})"));
        self.put(key("addr_assign_type"), assign);
        let port_with_mac = links
            .iter()
            .filter(|p| p.master == Some(link.index) && p.mac == Some(mac))
            .map(|p| name(p.index))
            .next();
        let rule = if mac == [0; 6] || expected_macs.contains(&mac) {
            mac_text(&mac)
        } else if let Some(port) = port_with_mac {
            format!("port {port}")
        } else if mac[0] & 0x02 != 0 && mac[0] & 0x01 == 0 {
            "random".to_string()
        } else {
            mac_text(&mac)
        };
        self.put(key("mac"), rule);
    }
}

/// Whether the kernel's own work after links came up is over (see [`Snapshot::settled`]).
fn kernel_done(nl: &mut Netlink, ns: &Netns) -> bool {
    let links = nl.links().expect("list links");
    let addrs = nl.addresses(None, None).expect("list addresses");
    if addrs.iter().any(|a| a.flags & TENTATIVE != 0) {
        return false;
    }
    links
        .iter()
        .filter(|l| l.flags & (IFF_UP | IFF_LOWER_UP) == IFF_UP | IFF_LOWER_UP)
        .filter(|l| l.flags & IFF_LOOPBACK == 0)
        .all(|l| {
            let ipv6_off = ns
                .run(|| {
                    kernel::sysctl::read_path(&["net", "ipv6", "conf", &l.name, "disable_ipv6"])
                })
                .ok()
                .and_then(|r| r.ok())
                .is_none_or(|v| v != "0");
            let link_local = addrs
                .iter()
                .any(|a| a.index == l.index && a.addr.addr().is_ipv6() && a.scope == SCOPE_LINK);
            l.flags & IFF_RUNNING != 0 && (ipv6_off || link_local)
        })
}

/// Every readable parameter under `net/ipv{4,6}/conf/<dir>/` for each `(real, shown)`
/// directory name, keyed by the shown name, and `net/ipv4/ip_forward`. Runs inside the
/// namespace (`/proc/sys/net` is the opener's).
fn read_sysctls(dirs: &[(String, String)]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (real, shown) in dirs {
        for family in ["ipv4", "ipv6"] {
            let dir = ["net", family, "conf", real.as_str()];
            // No such directory: IPv6 off, or a link without an IPv4 config.
            let Ok(keys) = kernel::sysctl::list_path(&dir) else {
                continue;
            };
            for key in keys {
                let path = [&dir[..], &[key.as_str()]].concat();
                // Some parameters cannot be read (stable_secret unset): not state.
                if let Ok(value) = kernel::sysctl::read_path(&path) {
                    out.insert(
                        format!("sysctl net/{family}/conf/{shown}/{key}"),
                        value.split_whitespace().collect::<Vec<_>>().join(" "),
                    );
                }
            }
        }
    }
    if let Ok(v) = kernel::sysctl::read_path(&["net", "ipv4", "ip_forward"]) {
        out.insert("sysctl net/ipv4/ip_forward".into(), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_is_the_macs_modified_eui64() {
        assert_eq!(
            eui64_link_local(&[0x5a, 0x06, 0x01, 0xde, 0x3d, 0xfd]),
            "fe80::5806:1ff:fede:3dfd".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn diff_names_every_disagreement() {
        let mut a = Snapshot::default();
        let mut b = Snapshot::default();
        a.put("same", "1");
        b.put("same", "1");
        a.put("changed", "1");
        b.put("changed", "2");
        a.put("only left", "x");
        let d = a.diff(&b);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].to_string(), "changed: 1 | 2");
        assert_eq!(d[1].to_string(), "only left: x | (absent)");
    }
}
