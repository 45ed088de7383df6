//! Routes: the [`Route`] description and add/replace/delete/list.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteMetric, RouteProtocol, RouteScope as NlScope,
    RouteType,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::Result;
use crate::family::Family;
use crate::netlink::Netlink;

/// The main routing table (`RT_TABLE_MAIN`), used when none is named.
pub const RT_TABLE_MAIN: u32 = 254;
/// The local routing table (`RT_TABLE_LOCAL`), filled by the kernel.
pub const RT_TABLE_LOCAL: u32 = 255;
/// `RTPROT_BOOT`: what `ip route add` marks routes with.
const RTPROT_BOOT: u8 = 3;
/// `RT_TABLE_UNSPEC` in the header when the real id goes in `RTA_TABLE`.
const RT_TABLE_UNSPEC: u8 = 0;

/// How far a route's destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteScope {
    /// Anywhere (routes via a gateway).
    #[default]
    Universe,
    /// On the directly attached link.
    Link,
    /// On this host.
    Host,
    /// Any other `RT_SCOPE_*` value.
    Other(u8),
}

impl From<RouteScope> for NlScope {
    fn from(s: RouteScope) -> Self {
        match s {
            RouteScope::Universe => NlScope::Universe,
            RouteScope::Link => NlScope::Link,
            RouteScope::Host => NlScope::Host,
            RouteScope::Other(v) => NlScope::from(v),
        }
    }
}

/// A raw `RT_SCOPE_*` value, such as a CNI route's `scope`.
impl From<u8> for RouteScope {
    fn from(v: u8) -> Self {
        NlScope::from(v).into()
    }
}

impl From<NlScope> for RouteScope {
    fn from(s: NlScope) -> Self {
        match s {
            NlScope::Universe => RouteScope::Universe,
            NlScope::Link => RouteScope::Link,
            NlScope::Host => RouteScope::Host,
            other => RouteScope::Other(u8::from(other)),
        }
    }
}

/// A unicast route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix (`0.0.0.0/0` or `::/0` for a default route).
    pub dst: IpNet,
    /// Next hop.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Routing table id (tables above 255 are supported).
    pub table: u32,
    /// Scope.
    pub scope: RouteScope,
    /// Metric (`RTA_PRIORITY`).
    pub metric: Option<u32>,
    /// Path MTU (`RTAX_MTU`).
    pub mtu: Option<u32>,
    /// Advertised TCP MSS (`RTAX_ADVMSS`).
    pub advmss: Option<u32>,
    /// Originator (`RTPROT_*`); [`Route::new`] uses boot (3), like `ip`.
    pub protocol: u8,
    /// Preferred source address (`RTA_PREFSRC`).
    pub src: Option<IpAddr>,
}

impl Route {
    /// A route to `dst` in the main table, scope universe, no next hop yet:
    /// chain [`Route::via`], [`Route::dev`] and the other setters.
    pub fn new(dst: IpNet) -> Route {
        Route {
            dst,
            gateway: None,
            oif: None,
            table: RT_TABLE_MAIN,
            scope: RouteScope::Universe,
            metric: None,
            mtu: None,
            advmss: None,
            protocol: RTPROT_BOOT,
            src: None,
        }
    }

    /// Sets the gateway.
    pub fn via(mut self, gateway: IpAddr) -> Route {
        self.gateway = Some(gateway);
        self
    }

    /// Sets the output interface.
    pub fn dev(mut self, oif: u32) -> Route {
        self.oif = Some(oif);
        self
    }

    /// Sets the table.
    pub fn table(mut self, table: u32) -> Route {
        self.table = table;
        self
    }

    /// Sets the scope.
    pub fn scope(mut self, scope: RouteScope) -> Route {
        self.scope = scope;
        self
    }

    /// Sets the metric.
    pub fn metric(mut self, metric: u32) -> Route {
        self.metric = Some(metric);
        self
    }

    /// Sets the MTU metric.
    pub fn mtu(mut self, mtu: u32) -> Route {
        self.mtu = Some(mtu);
        self
    }

    /// Sets the advertised MSS metric.
    pub fn advmss(mut self, advmss: u32) -> Route {
        self.advmss = Some(advmss);
        self
    }

    /// Sets the preferred source address.
    pub fn src(mut self, src: IpAddr) -> Route {
        self.src = Some(src);
        self
    }

    fn describe(&self) -> String {
        let mut s = self.dst.to_string();
        if let Some(gw) = self.gateway {
            s.push_str(&format!(" via {gw}"));
        }
        if let Some(oif) = self.oif {
            s.push_str(&format!(" dev {oif}"));
        }
        if self.table != RT_TABLE_MAIN {
            s.push_str(&format!(" table {}", self.table));
        }
        s
    }

    fn to_message(&self, for_delete: bool) -> RouteMessage {
        let mut msg = RouteMessage::default();
        let h = &mut msg.header;
        h.address_family = Family::to_af(Some(Family::of(self.dst.addr())));
        h.destination_prefix_length = self.dst.prefix_len();
        // Ids above 255 only fit in RTA_TABLE, which is always sent.
        h.table = u8::try_from(self.table).unwrap_or(RT_TABLE_UNSPEC);
        h.kind = RouteType::Unicast;
        if for_delete {
            // Wildcards for the kernel's match: any scope, any protocol.
            h.scope = NlScope::NoWhere;
            h.protocol = RouteProtocol::Unspec;
        } else {
            h.scope = self.scope.into();
            h.protocol = RouteProtocol::from(self.protocol);
        }
        let a = &mut msg.attributes;
        a.push(RouteAttribute::Table(self.table));
        if self.dst.prefix_len() > 0 {
            a.push(RouteAttribute::Destination(self.dst.network().into()));
        }
        if let Some(gw) = self.gateway {
            a.push(RouteAttribute::Gateway(gw.into()));
        }
        if let Some(oif) = self.oif {
            a.push(RouteAttribute::Oif(oif));
        }
        if let Some(m) = self.metric {
            a.push(RouteAttribute::Priority(m));
        }
        if let Some(src) = self.src {
            a.push(RouteAttribute::PrefSource(src.into()));
        }
        let mut metrics = Vec::new();
        if let Some(mtu) = self.mtu {
            metrics.push(RouteMetric::Mtu(mtu));
        }
        if let Some(advmss) = self.advmss {
            metrics.push(RouteMetric::Advmss(advmss));
        }
        if !metrics.is_empty() && !for_delete {
            a.push(RouteAttribute::Metrics(metrics));
        }
        msg
    }

    fn from_message(msg: &RouteMessage) -> Option<Route> {
        let h = &msg.header;
        let family = Family::from_af(h.address_family)?;
        // No RTA_DST means the default route of the family.
        let any = match family {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let mut route = Route::new(IpNet::new(any, 0).ok()?);
        route.table = u32::from(h.table);
        route.scope = h.scope.into();
        route.protocol = u8::from(h.protocol);
        let mut dst_addr = None;
        for attr in &msg.attributes {
            match attr {
                RouteAttribute::Destination(a) => dst_addr = ip_of(a),
                RouteAttribute::Gateway(a) => route.gateway = ip_of(a),
                RouteAttribute::PrefSource(a) => route.src = ip_of(a),
                RouteAttribute::Oif(i) => route.oif = Some(*i),
                RouteAttribute::Priority(p) => route.metric = Some(*p),
                RouteAttribute::Table(t) => route.table = *t,
                RouteAttribute::Metrics(ms) => {
                    for m in ms {
                        match m {
                            RouteMetric::Mtu(v) => route.mtu = Some(*v),
                            RouteMetric::Advmss(v) => route.advmss = Some(*v),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(dst) = dst_addr {
            route.dst = IpNet::new(dst, h.destination_prefix_length).ok()?;
        }
        Some(route)
    }
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

impl Netlink {
    /// Unicast routes of one family, optionally of one table only (all
    /// tables otherwise, including local).
    pub fn routes(&mut self, family: Family, table: Option<u32>) -> Result<Vec<Route>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = Family::to_af(Some(family));
        let replies = self.dump(RouteNetlinkMessage::GetRoute(msg), "list routes")?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRoute(m) if m.header.kind == RouteType::Unicast => {
                    Route::from_message(m)
                }
                _ => None,
            })
            .filter(|r| table.is_none_or(|t| r.table == t))
            .collect())
    }

    /// Adds a route; fails with [`crate::Error::is_exists`] if it exists.
    pub fn add_route(&mut self, route: &Route) -> Result<()> {
        let op = format!("add route {}", route.describe());
        self.execute(
            RouteNetlinkMessage::NewRoute(route.to_message(false)),
            NLM_F_CREATE | NLM_F_EXCL,
            &op,
        )
    }

    /// Adds a route or replaces the one with the same destination, table and
    /// metric.
    pub fn replace_route(&mut self, route: &Route) -> Result<()> {
        let op = format!("replace route {}", route.describe());
        self.execute(
            RouteNetlinkMessage::NewRoute(route.to_message(false)),
            NLM_F_CREATE | NLM_F_REPLACE,
            &op,
        )
    }

    /// Deletes a route (matched on destination, table, and gateway, device
    /// and metric when set).
    pub fn del_route(&mut self, route: &Route) -> Result<()> {
        let op = format!("delete route {}", route.describe());
        self.execute(
            RouteNetlinkMessage::DelRoute(route.to_message(true)),
            0,
            &op,
        )
    }
}
