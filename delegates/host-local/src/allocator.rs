//! Taking one address from one range set: the requested one, or the next free one
//! round-robin from where the last reservation in that set left off.

use std::net::IpAddr;

use cni::{Error, ErrorCode, IpConfig};

use crate::config::Requested;
use crate::range::RangeSet;
use crate::store::Store;

/// The allocator of range set `index`, over a locked store.
#[derive(Debug)]
pub(crate) struct Allocator<'a> {
    set: &'a RangeSet,
    store: &'a Store,
    index: usize,
}

impl<'a> Allocator<'a> {
    /// The allocator of set `index` (the index names its `last_reserved_ip.<index>` file).
    pub(crate) fn new(set: &'a RangeSet, store: &'a Store, index: usize) -> Self {
        Allocator { set, store, index }
    }

    /// Reserves an address of the set for `(id, ifname)`: exactly `requested` when given
    /// (it must lie in the set), else the next free one.
    pub(crate) fn get(
        &self,
        id: &str,
        ifname: &str,
        requested: Option<&Requested>,
    ) -> Result<IpConfig, Error> {
        match requested {
            Some(req) => self.get_requested(id, ifname, req),
            None => self.get_next(id, ifname),
        }
    }

    fn get_requested(&self, id: &str, ifname: &str, req: &Requested) -> Result<IpConfig, Error> {
        let ip = req.ip;
        let range = self.set.range_for(ip).ok_or_else(|| {
            Error::internal("requested address outside its range set", ip.to_string())
        })?;
        if let Some(role) = range.reserved_role(ip) {
            return Err(Error::new(
                ErrorCode::INVALID_NETWORK_CONFIG,
                format!("requested ip {ip} is subnet's {role}"),
                format!("requested by {}", req.source),
            ));
        }
        if !self.store.reserve(ip, id, ifname, self.index)? {
            let holder = self
                .store
                .owner(ip)?
                .map(|o| format!("held by {o}"))
                .unwrap_or_default();
            return Err(Error::new(
                ErrorCode::TRY_AGAIN_LATER,
                format!(
                    "requested IP address {ip} is not available in range set {}",
                    self.set
                ),
                holder,
            ));
        }
        Ok(IpConfig {
            interface: None,
            address: range.with_prefix(ip),
            gateway: Some(range.gateway),
        })
    }

    fn get_next(&self, id: &str, ifname: &str) -> Result<IpConfig, Error> {
        // The spec forbids a second ADD without DEL: refuse rather than hand out another.
        let held: Vec<IpAddr> = self.store.find(id, ifname)?;
        if let Some(ip) = held.iter().find(|ip| self.set.contains(**ip)) {
            return Err(Error::new(
                ErrorCode::INVALID_ENVIRONMENT,
                format!("{ip} has been allocated to {id}, duplicate allocation is not allowed"),
                format!("interface {ifname} of container {id} already holds {ip}; DEL it first"),
            ));
        }
        for (ip, range) in self.set.iter_from(self.store.last_reserved(self.index)) {
            if self.store.reserve(ip, id, ifname, self.index)? {
                return Ok(IpConfig {
                    interface: None,
                    address: range.with_prefix(ip),
                    gateway: Some(range.gateway),
                });
            }
        }
        Err(Error::new(
            ErrorCode::TRY_AGAIN_LATER,
            format!("no IP addresses available in range set: {}", self.set),
            format!("every address of {} is reserved", self.set.path),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::range::RawRange;

    fn set(subnet: &str, start: Option<&str>, end: Option<&str>) -> RangeSet {
        RangeSet::canonicalize(
            "ipam.ranges[0]".into(),
            &[RawRange {
                path: "ipam.ranges[0][0]".into(),
                subnet: Some(subnet.parse().unwrap()),
                start: start.map(|s| s.parse().unwrap()),
                end: end.map(|s| s.parse().unwrap()),
                gateway: None,
            }],
        )
        .unwrap()
    }

    fn addr(c: &IpConfig) -> String {
        c.address.to_string()
    }

    fn requested(ip: &str) -> Requested {
        Requested {
            ip: ip.parse().unwrap(),
            source: "runtimeConfig.ips[0]".into(),
        }
    }

    #[test]
    fn round_robin_and_exhaustion() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), "net1").unwrap();
        let s = set("10.1.2.0/29", None, None);
        let a = Allocator::new(&s, &store, 0);
        let first = a.get("a", "eth0", None).unwrap();
        assert_eq!(addr(&first), "10.1.2.2/29");
        assert_eq!(first.gateway, Some("10.1.2.1".parse().unwrap()));
        assert_eq!(addr(&a.get("b", "eth0", None).unwrap()), "10.1.2.3/29");
        store.release_owner("a", "eth0").unwrap();
        // Round-robin: the released .2 is not reused before the range wraps.
        assert_eq!(addr(&a.get("c", "eth0", None).unwrap()), "10.1.2.4/29");
        for (id, want) in [
            ("d", "10.1.2.5/29"),
            ("e", "10.1.2.6/29"),
            ("f", "10.1.2.2/29"),
        ] {
            assert_eq!(addr(&a.get(id, "eth0", None).unwrap()), want);
        }
        let e = a.get("g", "eth0", None).unwrap_err();
        assert_eq!(e.code, ErrorCode::TRY_AGAIN_LATER);
        assert_eq!(
            e.msg,
            "no IP addresses available in range set: 10.1.2.1-10.1.2.6"
        );
    }

    #[test]
    fn duplicate_allocation_is_refused_per_set() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), "net1").unwrap();
        let v4 = set("10.1.2.0/24", None, None);
        let v6 = set("fd00::/64", None, None);
        Allocator::new(&v4, &store, 0)
            .get("a", "eth0", None)
            .unwrap();
        let e = Allocator::new(&v4, &store, 0)
            .get("a", "eth0", None)
            .unwrap_err();
        assert_eq!(
            e.msg,
            "10.1.2.2 has been allocated to a, duplicate allocation is not allowed"
        );
        // Another set, or another interface of the same container, is fine.
        Allocator::new(&v6, &store, 1)
            .get("a", "eth0", None)
            .unwrap();
        Allocator::new(&v4, &store, 0)
            .get("a", "net1", None)
            .unwrap();
    }

    #[test]
    fn requested_addresses() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), "net1").unwrap();
        let s = set("10.1.2.0/24", None, None);
        let a = Allocator::new(&s, &store, 0);
        let got = a.get("a", "eth0", Some(&requested("10.1.2.9"))).unwrap();
        assert_eq!(addr(&got), "10.1.2.9/24");
        assert_eq!(store.last_reserved(0), Some("10.1.2.9".parse().unwrap()));
        let e = a
            .get("b", "eth0", Some(&requested("10.1.2.9")))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::TRY_AGAIN_LATER);
        assert_eq!(
            (e.msg.as_str(), e.details.as_str()),
            (
                "requested IP address 10.1.2.9 is not available in range set 10.1.2.1-10.1.2.254",
                "held by a/eth0"
            )
        );
        let e = a
            .get("b", "eth0", Some(&requested("10.1.2.1")))
            .unwrap_err();
        assert_eq!(e.msg, "requested ip 10.1.2.1 is subnet's gateway");
        assert_eq!(e.code, ErrorCode::INVALID_NETWORK_CONFIG);
        // The next round-robin address follows the requested one.
        assert_eq!(addr(&a.get("c", "eth0", None).unwrap()), "10.1.2.10/24");
    }

    #[test]
    fn explicit_network_and_broadcast_bounds_are_never_handed_out() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), "net1").unwrap();
        let s = set("10.1.2.0/30", Some("10.1.2.0"), Some("10.1.2.3"));
        let a = Allocator::new(&s, &store, 0);
        assert_eq!(addr(&a.get("a", "eth0", None).unwrap()), "10.1.2.2/30");
        assert!(a.get("b", "eth0", None).is_err());
        let e = a
            .get("b", "eth0", Some(&requested("10.1.2.3")))
            .unwrap_err();
        assert_eq!(e.msg, "requested ip 10.1.2.3 is subnet's broadcast address");
        let e = a
            .get("b", "eth0", Some(&requested("10.1.2.0")))
            .unwrap_err();
        assert_eq!(e.msg, "requested ip 10.1.2.0 is subnet's network address");
    }
}
