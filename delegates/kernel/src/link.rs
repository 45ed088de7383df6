//! Network interfaces: the [`Link`] view, creation requests for veth and
//! bridge, link attribute changes, and bridge port settings (hairpin, VLANs).

use std::os::fd::AsRawFd;

use netlink_packet_core::{DefaultNla, Nla, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    AfSpecBridge, BridgeFlag, BridgeVlanInfo, BridgeVlanInfoFlags, InfoBridge, InfoData, InfoKind,
    InfoVeth, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo, LinkMessage, LinkProtoInfoBridge,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Result;
use crate::netlink::Netlink;
use crate::netns::Netns;

/// `IFLA_BRPORT_MODE`: the bridge port hairpin flag.
const IFLA_BRPORT_MODE: u16 = 4;

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index (unique within its namespace).
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Link type from `IFLA_INFO_KIND` (`"veth"`, `"bridge"`, `"macvlan"`,
    /// ...); `None` for devices without one, such as `lo`.
    pub kind: Option<String>,
    /// Hardware address, when the device has an Ethernet-sized one.
    pub mac: Option<[u8; 6]>,
    /// MTU in bytes.
    pub mtu: u32,
    /// Administrative state (`IFF_UP`).
    pub up: bool,
    /// Index of the master device (e.g. the bridge this is a port of).
    pub master: Option<u32>,
    /// Promiscuous mode as set by the administrator (`IFF_PROMISC`).
    pub promisc: bool,
    /// `IFLA_LINK`: for a veth, its peer's index (in the peer's namespace); for a
    /// macvlan or vxlan, its parent's.
    pub parent: Option<u32>,
    /// `IFLA_GROUP`: the device group (0, the default group, unless set).
    pub group: u32,
    /// `IFLA_TXQLEN`: the transmit queue length (the default packet limit of
    /// FIFO qdiscs attached to the device).
    pub txqueuelen: u32,
    /// `IFLA_NUM_TX_QUEUES` and `IFLA_NUM_RX_QUEUES`.
    pub queues: (u32, u32),
    /// Every `IFF_*` flag of the link header, administrative and operational
    /// (`IFF_UP` is [`Link::up`], `IFF_PROMISC` [`Link::promisc`]).
    pub flags: u32,
}

impl Link {
    /// The MAC formatted as `aa:bb:cc:dd:ee:ff`.
    pub fn mac_string(&self) -> Option<String> {
        self.mac.as_ref().map(format_mac)
    }

    fn from_message(msg: &LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            kind: None,
            mac: None,
            mtu: 0,
            up: msg.header.flags.contains(LinkFlags::Up),
            master: None,
            promisc: msg.header.flags.contains(LinkFlags::Promisc),
            parent: None,
            group: 0,
            txqueuelen: 0,
            queues: (0, 0),
            flags: msg.header.flags.bits(),
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Mtu(m) => link.mtu = *m,
                LinkAttribute::Controller(m) if *m != 0 => link.master = Some(*m),
                LinkAttribute::Link(p) if *p != 0 => link.parent = Some(*p),
                LinkAttribute::Group(g) => link.group = *g,
                LinkAttribute::TxQueueLen(q) => link.txqueuelen = *q,
                LinkAttribute::NumTxQueues(q) => link.queues.0 = *q,
                LinkAttribute::NumRxQueues(q) => link.queues.1 = *q,
                LinkAttribute::Address(a) => link.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(k) = info {
                            link.kind = Some(k.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// Formats a MAC address as lowercase `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A veth pair to create.
#[derive(Debug, Clone, Default)]
pub struct VethRequest<'a> {
    /// Name of the end created in the socket's namespace.
    pub name: String,
    /// Name of the peer end.
    pub peer_name: String,
    /// Namespace to create the peer directly in (no move afterwards, so the
    /// peer name never has to be free in the socket's namespace).
    pub peer_netns: Option<&'a Netns>,
    /// MTU for both ends.
    pub mtu: Option<u32>,
    /// MAC of the local end.
    pub mac: Option<[u8; 6]>,
    /// MAC of the peer end.
    pub peer_mac: Option<[u8; 6]>,
    /// Bridge (or other master) to enslave the local end to, in the same request.
    pub master: Option<u32>,
    /// Bring the local end up in the same request. (The peer cannot be: the kernel
    /// applies the peer's flags before the pair is linked, and fails with ENOTCONN.)
    pub up: bool,
}

/// A bridge to create.
#[derive(Debug, Clone, Default)]
pub struct BridgeRequest {
    /// Bridge name.
    pub name: String,
    /// MTU.
    pub mtu: Option<u32>,
    /// Enable 802.1Q VLAN filtering.
    pub vlan_filtering: bool,
    /// Default PVID for new ports (kernel default 1; 0 disables).
    pub vlan_default_pvid: Option<u16>,
}

/// A VLAN entry of a bridge or bridge port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeVlan {
    /// VLAN id.
    pub vid: u16,
    /// Untagged ingress traffic is assigned to this VLAN.
    pub pvid: bool,
    /// Egress traffic of this VLAN leaves untagged.
    pub untagged: bool,
}

fn link_msg(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg
}

fn info(kind: InfoKind, data: Option<InfoData>) -> LinkAttribute {
    let mut infos = vec![LinkInfo::Kind(kind)];
    infos.extend(data.map(LinkInfo::Data));
    LinkAttribute::LinkInfo(infos)
}

fn common_attrs(msg: &mut LinkMessage, name: &str, mtu: Option<u32>, mac: Option<[u8; 6]>) {
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    if let Some(mtu) = mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = mac {
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
}

impl Netlink {
    /// Looks a link up by name; `None` if there is none.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        let mut msg = link_msg(0);
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.get_link(msg, &format!("get link {name}"))
    }

    /// Looks a link up by index; `None` if there is none.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>> {
        self.get_link(link_msg(index), &format!("get link {index}"))
    }

    fn get_link(&mut self, msg: LinkMessage, op: &str) -> Result<Option<Link>> {
        match self.request(RouteNetlinkMessage::GetLink(msg), 0, op) {
            Ok(replies) => Ok(replies.iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => Some(Link::from_message(m)),
                _ => None,
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// All links of the namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let replies = self.dump(RouteNetlinkMessage::GetLink(link_msg(0)), "list links")?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => Some(Link::from_message(m)),
                _ => None,
            })
            .collect())
    }

    fn set_link(&mut self, msg: LinkMessage, op: &str) -> Result<()> {
        self.execute(RouteNetlinkMessage::SetLink(msg), 0, op)
    }

    fn set_flag(&mut self, index: u32, flag: LinkFlags, on: bool, op: &str) -> Result<()> {
        let mut msg = link_msg(index);
        msg.header.change_mask = flag;
        if on {
            msg.header.flags = flag;
        }
        self.set_link(msg, op)
    }

    /// Brings a link up.
    pub fn set_link_up(&mut self, index: u32) -> Result<()> {
        self.set_flag(index, LinkFlags::Up, true, &format!("set link {index} up"))
    }

    /// Brings a link down.
    pub fn set_link_down(&mut self, index: u32) -> Result<()> {
        self.set_flag(
            index,
            LinkFlags::Up,
            false,
            &format!("set link {index} down"),
        )
    }

    /// Turns promiscuous mode on or off.
    pub fn set_promisc(&mut self, index: u32, on: bool) -> Result<()> {
        let op = format!("set link {index} promisc {}", if on { "on" } else { "off" });
        self.set_flag(index, LinkFlags::Promisc, on, &op)
    }

    /// Sets the MTU.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        let mut msg = link_msg(index);
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link(msg, &format!("set link {index} mtu {mtu}"))
    }

    /// Sets the hardware address.
    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<()> {
        let mut msg = link_msg(index);
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.set_link(
            msg,
            &format!("set link {index} address {}", format_mac(&mac)),
        )
    }

    /// Enslaves a link to a master (e.g. a bridge).
    pub fn set_master(&mut self, index: u32, master: u32) -> Result<()> {
        let mut msg = link_msg(index);
        msg.attributes.push(LinkAttribute::Controller(master));
        self.set_link(msg, &format!("set link {index} master {master}"))
    }

    /// Releases a link from its master.
    pub fn set_nomaster(&mut self, index: u32) -> Result<()> {
        let mut msg = link_msg(index);
        msg.attributes.push(LinkAttribute::Controller(0));
        self.set_link(msg, &format!("set link {index} nomaster"))
    }

    /// Moves a link to another network namespace (its index may change
    /// there, and its addresses are lost).
    pub fn set_netns(&mut self, index: u32, ns: &Netns) -> Result<()> {
        let mut msg = link_msg(index);
        msg.attributes
            .push(LinkAttribute::NetNsFd(ns.as_fd().as_raw_fd()));
        let op = format!("move link {index} to netns {}", ns.path().display());
        self.set_link(msg, &op)
    }

    /// Renames a link (the kernel requires it to be down).
    pub fn rename(&mut self, index: u32, name: &str) -> Result<()> {
        let mut msg = link_msg(index);
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.set_link(msg, &format!("rename link {index} to {name}"))
    }

    /// Deletes a link (for a veth, both ends go).
    pub fn del_link(&mut self, index: u32) -> Result<()> {
        let op = format!("delete link {index}");
        self.execute(RouteNetlinkMessage::DelLink(link_msg(index)), 0, &op)
    }

    /// Puts a link in device group `group`.
    pub fn set_group(&mut self, index: u32, group: u32) -> Result<()> {
        let mut msg = link_msg(index);
        msg.attributes.push(LinkAttribute::Group(group));
        self.set_link(msg, &format!("set link {index} group {group}"))
    }

    /// Deletes every link of device group `group` in one request, as `ip link del group`
    /// does. The kernel unregisters them together and waits for one RCU grace period
    /// instead of one per link (about 17 ms each here), so a pod's links go at once.
    /// Group 0 (every link's default) is refused.
    pub fn del_group(&mut self, group: u32) -> Result<()> {
        if group == 0 {
            return Err(crate::Error::invalid(
                "delete link group 0",
                "group 0 holds every link",
            ));
        }
        let mut msg = link_msg(0);
        msg.attributes.push(LinkAttribute::Group(group));
        self.execute(
            RouteNetlinkMessage::DelLink(msg),
            0,
            &format!("delete link group {group}"),
        )
    }

    fn create_link(&mut self, msg: LinkMessage, op: &str) -> Result<()> {
        self.execute(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            op,
        )
    }

    /// Creates a veth pair; with `peer_netns`, the peer is created directly
    /// in that namespace.
    pub fn create_veth(&mut self, req: &VethRequest<'_>) -> Result<()> {
        let mut peer = LinkMessage::default();
        common_attrs(&mut peer, &req.peer_name, req.mtu, req.peer_mac);
        if let Some(ns) = req.peer_netns {
            peer.attributes
                .push(LinkAttribute::NetNsFd(ns.as_fd().as_raw_fd()));
        }
        let mut msg = LinkMessage::default();
        common_attrs(&mut msg, &req.name, req.mtu, req.mac);
        if req.up {
            msg.header.flags |= LinkFlags::Up;
            msg.header.change_mask |= LinkFlags::Up;
        }
        if let Some(master) = req.master {
            msg.attributes.push(LinkAttribute::Controller(master));
        }
        msg.attributes.push(info(
            InfoKind::Veth,
            Some(InfoData::Veth(InfoVeth::Peer(peer))),
        ));
        let op = format!("create veth {} (peer {})", req.name, req.peer_name);
        self.create_link(msg, &op)
    }

    /// Creates a bridge.
    pub fn create_bridge(&mut self, req: &BridgeRequest) -> Result<()> {
        let mut msg = LinkMessage::default();
        common_attrs(&mut msg, &req.name, req.mtu, None);
        // Only send VLAN attributes when asked: kernels built without
        // CONFIG_BRIDGE_VLAN_FILTERING reject them (even "off") with EOPNOTSUPP.
        let mut data = Vec::new();
        if req.vlan_filtering {
            data.push(InfoBridge::VlanFiltering(true));
        }
        if let Some(pvid) = req.vlan_default_pvid {
            data.push(InfoBridge::VlanDefaultPvid(pvid));
        }
        let data = (!data.is_empty()).then_some(InfoData::Bridge(data));
        msg.attributes.push(info(InfoKind::Bridge, data));
        self.create_link(msg, &format!("create bridge {}", req.name))
    }

    /// Turns hairpin mode of a bridge port on or off (traffic may be sent
    /// back out of the port it came in on).
    pub fn set_port_hairpin(&mut self, index: u32, on: bool) -> Result<()> {
        // Bridge port settings go through AF_BRIDGE with a nested
        // IFLA_PROTINFO; the library marks that attribute NLA_F_NESTED.
        let mut msg = link_msg(index);
        msg.header.interface_family = AddressFamily::Bridge;
        msg.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
            LinkProtoInfoBridge::Other(DefaultNla::new(IFLA_BRPORT_MODE, vec![u8::from(on)])),
        ]));
        let op = format!(
            "set bridge port {index} hairpin {}",
            if on { "on" } else { "off" }
        );
        self.set_link(msg, &op)
    }

    /// Whether hairpin mode is on for a bridge port (`None` if `index` is not
    /// a bridge port).
    pub fn port_hairpin(&mut self, index: u32) -> Result<Option<bool>> {
        let op = format!("get bridge port {index}");
        for msg in self.bridge_dump(false, &op)? {
            if msg.header.index != index {
                continue;
            }
            for attr in &msg.attributes {
                if let LinkAttribute::ProtoInfoBridge(infos) = attr {
                    for info in infos {
                        if let LinkProtoInfoBridge::Other(nla) = info {
                            if nla.kind() == IFLA_BRPORT_MODE {
                                let mut value = vec![0u8; nla.value_len()];
                                nla.emit_value(&mut value);
                                return Ok(Some(value.first().is_some_and(|v| *v != 0)));
                            }
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    fn bridge_dump(&mut self, vlans: bool, op: &str) -> Result<Vec<LinkMessage>> {
        let mut msg = link_msg(0);
        msg.header.interface_family = AddressFamily::Bridge;
        if vlans {
            msg.attributes
                .push(LinkAttribute::ExtMask(vec![LinkExtentMask::Brvlan]));
        }
        Ok(self
            .dump(RouteNetlinkMessage::GetLink(msg), op)?
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => Some(m),
                _ => None,
            })
            .collect())
    }

    fn bridge_vlan_msg(index: u32, vlan: BridgeVlan, self_: bool) -> LinkMessage {
        let mut flags = BridgeVlanInfoFlags::empty();
        if vlan.pvid {
            flags |= BridgeVlanInfoFlags::Pvid;
        }
        if vlan.untagged {
            flags |= BridgeVlanInfoFlags::Untagged;
        }
        let mut spec = Vec::new();
        if self_ {
            spec.push(AfSpecBridge::Flags(BridgeFlag::LowerDev));
        }
        spec.push(AfSpecBridge::VlanInfo(BridgeVlanInfo {
            flags,
            vid: vlan.vid,
        }));
        let mut msg = link_msg(index);
        msg.header.interface_family = AddressFamily::Bridge;
        msg.attributes.push(LinkAttribute::AfSpecBridge(spec));
        msg
    }

    /// Adds a VLAN to a bridge port, or with `self_` to the bridge device
    /// itself (`bridge vlan add ... self`).
    pub fn add_bridge_vlan(&mut self, index: u32, vlan: BridgeVlan, self_: bool) -> Result<()> {
        let msg = Self::bridge_vlan_msg(index, vlan, self_);
        let op = format!("add vlan {} to bridge port {index}", vlan.vid);
        self.set_link(msg, &op)
    }

    /// Removes a VLAN from a bridge port (or, with `self_`, the bridge).
    pub fn del_bridge_vlan(&mut self, index: u32, vid: u16, self_: bool) -> Result<()> {
        let vlan = BridgeVlan {
            vid,
            pvid: false,
            untagged: false,
        };
        let msg = Self::bridge_vlan_msg(index, vlan, self_);
        let op = format!("delete vlan {vid} from bridge port {index}");
        self.execute(RouteNetlinkMessage::DelLink(msg), 0, &op)
    }

    /// The VLANs of a bridge port or bridge device (empty when VLAN
    /// filtering is off or `index` is not bridge-related).
    pub fn bridge_vlans(&mut self, index: u32) -> Result<Vec<BridgeVlan>> {
        let op = format!("list vlans of bridge port {index}");
        let mut vlans = Vec::new();
        for msg in self.bridge_dump(true, &op)? {
            if msg.header.index != index {
                continue;
            }
            for attr in &msg.attributes {
                if let LinkAttribute::AfSpecBridge(spec) = attr {
                    for entry in spec {
                        if let AfSpecBridge::VlanInfo(v) = entry {
                            vlans.push(BridgeVlan {
                                vid: v.vid,
                                pvid: v.flags.contains(BridgeVlanInfoFlags::Pvid),
                                untagged: v.flags.contains(BridgeVlanInfoFlags::Untagged),
                            });
                        }
                    }
                }
            }
        }
        Ok(vlans)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mac_is_lowercase_colon_separated() {
        assert_eq!(
            super::format_mac(&[0xAA, 0xbb, 0x0c, 0, 0xee, 0xff]),
            "aa:bb:0c:00:ee:ff"
        );
    }
}
