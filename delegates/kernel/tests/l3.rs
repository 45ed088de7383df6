//! Addresses, routes, policy rules and neighbours in a private namespace.

mod common;

use std::net::IpAddr;

use common::{sandbox, veth_up};
use ipnet::IpNet;
use kernel::{AddressOptions, Family, Route, RouteScope, Rule, RT_TABLE_MAIN};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn addresses_v4_v6() {
    let mut sb = sandbox();
    let idx = veth_up(&mut sb.nl, "a0", "a0p");
    sb.nl
        .add_address(idx, net("10.1.0.5/24"), AddressOptions::default())
        .unwrap();
    let nodad = AddressOptions {
        nodad: true,
        noprefixroute: false,
    };
    sb.nl.add_address(idx, net("fd00::5/64"), nodad).unwrap();

    let v4 = sb.nl.addresses(Some(idx), Some(Family::V4)).unwrap();
    assert_eq!(v4.len(), 1, "{v4:?}");
    assert_eq!(v4[0].addr, net("10.1.0.5/24"));
    assert_eq!(v4[0].scope, 0);
    let v6 = sb.nl.addresses(Some(idx), Some(Family::V6)).unwrap();
    let global = v6
        .iter()
        .find(|a| a.addr == net("fd00::5/64"))
        .expect("v6 address");
    assert!(!global.is_tentative(), "{global:?}");
    assert!(sb.nl.addresses(None, None).unwrap().len() >= 2);

    let err = sb
        .nl
        .add_address(idx, net("10.1.0.5/24"), AddressOptions::default())
        .unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert!(err.to_string().contains("add address 10.1.0.5/24"), "{err}");

    sb.nl.del_address(idx, net("10.1.0.5/24")).unwrap();
    sb.nl.del_address(idx, net("fd00::5/64")).unwrap();
    assert!(sb
        .nl
        .addresses(Some(idx), Some(Family::V4))
        .unwrap()
        .is_empty());
    assert!(!sb
        .nl
        .addresses(Some(idx), Some(Family::V6))
        .unwrap()
        .iter()
        .any(|a| a.addr == net("fd00::5/64")));
    let err = sb.nl.del_address(idx, net("10.1.0.5/24")).unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[test]
fn routes_with_gateway_metrics_and_tables() {
    let mut sb = sandbox();
    let idx = veth_up(&mut sb.nl, "r0", "r0p");
    sb.nl
        .add_address(idx, net("10.1.0.1/24"), AddressOptions::default())
        .unwrap();
    let nodad = AddressOptions {
        nodad: true,
        noprefixroute: false,
    };
    sb.nl.add_address(idx, net("fd00::1/64"), nodad).unwrap();

    let gw_route = Route::new(net("10.2.0.0/24"))
        .via(ip("10.1.0.2"))
        .dev(idx)
        .mtu(1300)
        .advmss(1260);
    sb.nl.add_route(&gw_route).unwrap();
    let err = sb.nl.add_route(&gw_route).unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert!(
        err.to_string()
            .contains("add route 10.2.0.0/24 via 10.1.0.2"),
        "{err}"
    );

    let table_route = Route::new(net("10.3.0.0/24"))
        .dev(idx)
        .scope(RouteScope::Link)
        .table(1000);
    sb.nl.add_route(&table_route).unwrap();
    let default_route = Route::new(net("0.0.0.0/0"))
        .via(ip("10.1.0.254"))
        .table(1000);
    sb.nl.add_route(&default_route).unwrap();

    let main = sb.nl.routes(Family::V4, Some(RT_TABLE_MAIN)).unwrap();
    let found = main
        .iter()
        .find(|r| r.dst == net("10.2.0.0/24"))
        .expect("gateway route");
    assert_eq!(found.gateway, Some(ip("10.1.0.2")));
    assert_eq!(found.oif, Some(idx));
    assert_eq!(found.mtu, Some(1300));
    assert_eq!(found.advmss, Some(1260));
    assert_eq!(found.table, RT_TABLE_MAIN);
    // The connected route exists with link scope.
    let connected = main
        .iter()
        .find(|r| r.dst == net("10.1.0.0/24"))
        .expect("connected");
    assert_eq!(connected.scope, RouteScope::Link);

    let t1000 = sb.nl.routes(Family::V4, Some(1000)).unwrap();
    assert_eq!(t1000.len(), 2, "{t1000:?}");
    let direct = t1000.iter().find(|r| r.dst == net("10.3.0.0/24")).unwrap();
    assert_eq!(direct.scope, RouteScope::Link);
    assert_eq!(direct.gateway, None);
    assert!(t1000
        .iter()
        .any(|r| r.dst == net("0.0.0.0/0") && r.gateway == Some(ip("10.1.0.254"))));
    assert!(!main.iter().any(|r| r.dst == net("10.3.0.0/24")));

    // Replace changes the metric-less route in place.
    sb.nl.replace_route(&gw_route.clone().mtu(1200)).unwrap();
    let main = sb.nl.routes(Family::V4, Some(RT_TABLE_MAIN)).unwrap();
    let replaced = main.iter().find(|r| r.dst == net("10.2.0.0/24")).unwrap();
    assert_eq!(replaced.mtu, Some(1200));

    // IPv6 route with a metric.
    let v6 = Route::new(net("fd01::/64"))
        .via(ip("fd00::2"))
        .dev(idx)
        .metric(100);
    sb.nl.add_route(&v6).unwrap();
    let v6routes = sb.nl.routes(Family::V6, None).unwrap();
    let found = v6routes
        .iter()
        .find(|r| r.dst == net("fd01::/64"))
        .expect("v6 route");
    assert_eq!(found.metric, Some(100));
    assert_eq!(found.gateway, Some(ip("fd00::2")));

    sb.nl.del_route(&gw_route).unwrap();
    sb.nl.del_route(&table_route).unwrap();
    sb.nl.del_route(&default_route).unwrap();
    sb.nl.del_route(&v6).unwrap();
    assert!(!sb
        .nl
        .routes(Family::V4, None)
        .unwrap()
        .iter()
        .any(|r| r.dst == net("10.2.0.0/24")));
    assert!(sb.nl.routes(Family::V4, Some(1000)).unwrap().is_empty());
    assert!(!sb
        .nl
        .routes(Family::V6, None)
        .unwrap()
        .iter()
        .any(|r| r.dst == net("fd01::/64")));
    let err = sb.nl.del_route(&gw_route).unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[test]
fn neighbours_v4_v6() {
    let mut sb = sandbox();
    let idx = veth_up(&mut sb.nl, "n0", "n0p");
    let mac = [0x02, 0, 0, 0, 0, 0x09];
    sb.nl.add_neighbour(idx, ip("10.1.0.9"), mac).unwrap();
    sb.nl.add_neighbour(idx, ip("fd00::9"), mac).unwrap();
    let err = sb.nl.add_neighbour(idx, ip("10.1.0.9"), mac).unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert!(
        err.to_string()
            .contains("10.1.0.9 lladdr 02:00:00:00:00:09"),
        "{err}"
    );

    let ns = sb.nl.neighbours(Some(idx), None).unwrap();
    for addr in ["10.1.0.9", "fd00::9"] {
        let n = ns.iter().find(|n| n.ip == ip(addr)).expect(addr);
        assert!(n.permanent);
        assert_eq!(n.mac, Some(mac));
        assert_eq!(n.index, idx);
    }
    assert_eq!(
        sb.nl.neighbours(Some(idx), Some(Family::V4)).unwrap().len(),
        1
    );

    let new_mac = [0x02, 0, 0, 0, 0, 0x0a];
    sb.nl
        .replace_neighbour(idx, ip("10.1.0.9"), new_mac)
        .unwrap();
    let n = sb.nl.neighbours(Some(idx), Some(Family::V4)).unwrap();
    assert_eq!(n[0].mac, Some(new_mac));

    sb.nl.del_neighbour(idx, ip("10.1.0.9")).unwrap();
    sb.nl.del_neighbour(idx, ip("fd00::9")).unwrap();
    let left = sb.nl.neighbours(Some(idx), None).unwrap();
    assert!(
        !left
            .iter()
            .any(|n| n.ip == ip("10.1.0.9") || n.ip == ip("fd00::9")),
        "{left:?}"
    );
    assert!(sb
        .nl
        .del_neighbour(idx, ip("10.1.0.9"))
        .unwrap_err()
        .is_not_found());
}

#[test]
fn policy_rules_by_priority_source_destination_and_table() {
    let mut sb = sandbox();
    let to_pod = Rule::new(Family::V4, RT_TABLE_MAIN)
        .to(net("10.0.1.20/32"))
        .priority(512);
    let from_pod = Rule::new(Family::V4, 2)
        .from(net("10.0.1.20/32"))
        .priority(1536);
    // A table id above 255 only fits in FRA_TABLE.
    let big_table = Rule::new(Family::V4, 10_001)
        .from(net("10.0.9.0/24"))
        .priority(1536);
    sb.nl.add_rule(&to_pod).unwrap();
    sb.nl.add_rule(&from_pod).unwrap();
    sb.nl.add_rule(&big_table).unwrap();
    let err = sb.nl.add_rule(&to_pod).unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert!(
        err.to_string()
            .contains("add rule pref 512 from all to 10.0.1.20/32 lookup 254"),
        "{err}"
    );

    assert_eq!(
        sb.nl.rules(Family::V4, Some(512)).unwrap(),
        std::slice::from_ref(&to_pod)
    );
    let at_1536 = sb.nl.rules(Family::V4, Some(1536)).unwrap();
    assert_eq!(at_1536.len(), 2, "{at_1536:?}");
    assert!(at_1536.contains(&from_pod) && at_1536.contains(&big_table));
    // The kernel's own rules are listed too (local at 0, main, default).
    let all = sb.nl.rules(Family::V4, None).unwrap();
    assert!(all
        .iter()
        .any(|r| r.priority == Some(32766) && r.table == RT_TABLE_MAIN));

    // The kernel deletes the first rule matching every field set: each goes by itself.
    sb.nl.del_rule(&from_pod).unwrap();
    sb.nl.del_rule(&big_table).unwrap();
    sb.nl.del_rule(&to_pod).unwrap();
    assert!(sb.nl.rules(Family::V4, Some(512)).unwrap().is_empty());
    assert!(sb.nl.rules(Family::V4, Some(1536)).unwrap().is_empty());
    assert!(sb.nl.del_rule(&to_pod).unwrap_err().is_not_found());

    // The connmark steering rule of the ENI datapath: by mark and mask.
    let marked = Rule::new(Family::V4, RT_TABLE_MAIN)
        .fwmark(0x80, 0x80)
        .priority(1024);
    sb.nl.add_rule(&marked).unwrap();
    assert_eq!(
        sb.nl.rules(Family::V4, Some(1024)).unwrap(),
        std::slice::from_ref(&marked)
    );
    assert!(sb.nl.add_rule(&marked).unwrap_err().is_exists());
    sb.nl.del_rule(&marked).unwrap();
    assert!(sb.nl.rules(Family::V4, Some(1024)).unwrap().is_empty());

    let mixed = Rule::new(Family::V6, RT_TABLE_MAIN).to(net("10.0.1.20/32"));
    let err = sb.nl.add_rule(&mixed).unwrap_err();
    assert!(
        err.to_string().contains("not of the rule's family"),
        "{err}"
    );
}
