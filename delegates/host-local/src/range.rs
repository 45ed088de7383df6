//! Address ranges and range sets: canonicalization, membership, and the round-robin walk.
//!
//! A range is an inclusive span `rangeStart..=rangeEnd` inside one subnet, with the subnet's
//! gateway. A range set is a list of ranges of one family from which one address is taken.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cni::Error;
use ipnet::IpNet;

/// A range as written in the config, before defaults and checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawRange {
    /// Where the range sits in the config (`ipam.ranges[0][1]`), for error messages.
    pub(crate) path: String,
    /// `subnet`.
    pub(crate) subnet: Option<IpNet>,
    /// `rangeStart`.
    pub(crate) start: Option<IpAddr>,
    /// `rangeEnd`.
    pub(crate) end: Option<IpAddr>,
    /// `gateway`.
    pub(crate) gateway: Option<IpAddr>,
}

/// A canonical range: every address known, every bound inside the subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Range {
    /// The subnet, host bits clear.
    pub(crate) subnet: IpNet,
    /// First address handed out, inclusive.
    pub(crate) start: IpAddr,
    /// Last address handed out, inclusive.
    pub(crate) end: IpAddr,
    /// The gateway reported with addresses of this range (never handed out).
    pub(crate) gateway: IpAddr,
}

/// A canonical range set: one or more ranges of one family that do not overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RangeSet {
    /// Where the set sits in the config (`ipam.ranges[0]`), for error messages.
    pub(crate) path: String,
    /// The ranges, in config order (the order the allocator walks them).
    pub(crate) ranges: Vec<Range>,
}

/// An address as a number, so both families share one arithmetic.
pub(crate) fn to_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a).into(),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address `bits` in the family of `like`.
fn from_bits(like: IpAddr, bits: u128) -> IpAddr {
    match like {
        // Truncation cannot happen: v4 arithmetic never leaves the v4 subnet.
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(bits as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

impl Range {
    /// Applies the reference's defaults and checks: the subnet must leave at least two
    /// addresses (no /31, /32, /127, /128) and have no host bits; the gateway defaults to
    /// subnet+1; `rangeStart` defaults to subnet+1, `rangeEnd` to the last address (the one
    /// before broadcast for IPv4), and both must lie in the subnet, start before end.
    pub(crate) fn canonicalize(raw: &RawRange) -> Result<Range, Error> {
        let field = |name: &str| format!("{}.{name}", raw.path);
        let subnet = raw
            .subnet
            .ok_or_else(|| Error::invalid_config(&field("subnet"), "", "a range needs a subnet"))?;
        if subnet.prefix_len() + 2 > subnet.max_prefix_len() {
            return Err(Error::invalid_config(
                &field("subnet"),
                subnet,
                format!("network {subnet} too small to allocate from"),
            ));
        }
        if subnet.addr() != subnet.network() {
            return Err(Error::invalid_config(
                &field("subnet"),
                subnet,
                format!(
                    "network has host bits set: for a prefix of length {} the network address is {}",
                    subnet.prefix_len(),
                    subnet.network()
                ),
            ));
        }
        let first = from_bits(subnet.network(), to_bits(subnet.network()) + 1);
        let gateway = raw.gateway.unwrap_or(first);
        if !same_family(gateway, subnet.addr()) {
            return Err(Error::invalid_config(
                &field("gateway"),
                gateway,
                format!(
                    "{} gateway for {} subnet {subnet}",
                    family(gateway),
                    family(subnet.addr())
                ),
            ));
        }
        let in_subnet = |ip: IpAddr| same_family(ip, subnet.addr()) && subnet.contains(&ip);
        let start = raw.start.unwrap_or(first);
        if !in_subnet(start) {
            return Err(Error::invalid_config(
                &field("rangeStart"),
                start,
                format!("rangeStart {start} not in network {subnet}"),
            ));
        }
        let end = raw.end.unwrap_or_else(|| {
            let last = to_bits(subnet.broadcast());
            from_bits(
                subnet.addr(),
                if subnet.addr().is_ipv4() {
                    last - 1
                } else {
                    last
                },
            )
        });
        if !in_subnet(end) {
            return Err(Error::invalid_config(
                &field("rangeEnd"),
                end,
                format!("rangeEnd {end} not in network {subnet}"),
            ));
        }
        if to_bits(end) < to_bits(start) {
            return Err(Error::invalid_config(
                &field("rangeEnd"),
                end,
                format!("rangeEnd {end} is before rangeStart {start}"),
            ));
        }
        Ok(Range {
            subnet,
            start,
            end,
            gateway,
        })
    }

    /// Whether `ip` lies in this range (subnet and start..=end), as the reference's
    /// `Range.Contains`: the gateway counts as contained.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        same_family(ip, self.start)
            && self.subnet.contains(&ip)
            && (to_bits(self.start)..=to_bits(self.end)).contains(&to_bits(ip))
    }

    /// Whether any address lies in both ranges.
    pub(crate) fn overlaps(&self, other: &Range) -> bool {
        same_family(self.start, other.start)
            && to_bits(self.start) <= to_bits(other.end)
            && to_bits(other.start) <= to_bits(self.end)
    }

    /// Why `ip` must never be handed out, if it must not: the gateway, and (only reachable
    /// with an explicit rangeStart/rangeEnd) the network and IPv4 broadcast addresses.
    pub(crate) fn reserved_role(&self, ip: IpAddr) -> Option<&'static str> {
        if ip == self.gateway {
            Some("gateway")
        } else if ip == self.subnet.network() {
            Some("network address")
        } else if ip.is_ipv4() && ip == self.subnet.broadcast() {
            Some("broadcast address")
        } else {
            None
        }
    }

    /// The address with the subnet's prefix, as results carry it.
    pub(crate) fn with_prefix(&self, ip: IpAddr) -> IpNet {
        IpNet::new(ip, self.subnet.prefix_len()).expect("prefix comes from a valid subnet")
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl RangeSet {
    /// Canonicalizes every range and checks the set: not empty, one family, no overlaps.
    pub(crate) fn canonicalize(path: String, raws: &[RawRange]) -> Result<RangeSet, Error> {
        if raws.is_empty() {
            return Err(Error::invalid_config(&path, "[]", "empty range set"));
        }
        let mut ranges: Vec<Range> = Vec::with_capacity(raws.len());
        for raw in raws {
            let range = Range::canonicalize(raw)?;
            if let Some(first) = ranges.first() {
                if !same_family(first.start, range.start) {
                    return Err(Error::invalid_config(
                        &format!("{}.subnet", raw.path),
                        range.subnet,
                        format!(
                            "mixed address families: {} range in a set of {} ranges",
                            family(range.start),
                            family(first.start)
                        ),
                    ));
                }
            }
            if let Some((i, other)) = ranges.iter().enumerate().find(|(_, r)| r.overlaps(&range)) {
                return Err(Error::invalid_config(
                    &raw.path,
                    &range,
                    format!(
                        "subnets {other} and {range} overlap ({}: {other})",
                        raws[i].path
                    ),
                ));
            }
            ranges.push(range);
        }
        Ok(RangeSet { path, ranges })
    }

    /// Whether the set's addresses are IPv4.
    pub(crate) fn is_ipv4(&self) -> bool {
        self.ranges[0].start.is_ipv4()
    }

    /// The range holding `ip`, if any.
    pub(crate) fn range_for(&self, ip: IpAddr) -> Option<&Range> {
        self.ranges.iter().find(|r| r.contains(ip))
    }

    /// Whether some range of the set holds `ip`.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        self.range_for(ip).is_some()
    }

    /// Whether any range of one set overlaps any range of the other.
    pub(crate) fn overlaps(&self, other: &RangeSet) -> bool {
        self.ranges
            .iter()
            .any(|a| other.ranges.iter().any(|b| a.overlaps(b)))
    }

    /// The round-robin walk: from the address after `last` when the set holds it, else from
    /// the first range's start.
    pub(crate) fn iter_from(&self, last: Option<IpAddr>) -> RangeIter<'_> {
        let start_at = last.and_then(|ip| {
            self.ranges
                .iter()
                .position(|r| r.contains(ip))
                .map(|i| (i, ip))
        });
        match start_at {
            Some((index, ip)) => RangeIter {
                set: self,
                index,
                cur: Some(ip),
                stop: None,
            },
            None => RangeIter {
                set: self,
                index: 0,
                cur: None,
                stop: None,
            },
        }
    }
}

impl fmt::Display for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// The reference allocator's walk over a range set: every address of every range once,
/// ranges in order, wrapping around, skipping addresses that must not be handed out.
#[derive(Debug, Clone)]
pub(crate) struct RangeIter<'a> {
    set: &'a RangeSet,
    /// The range `cur` is in.
    index: usize,
    /// The address last returned (or the last reserved one, before the first step).
    cur: Option<IpAddr>,
    /// The first address visited: reaching it again ends the walk.
    stop: Option<IpAddr>,
}

impl Iterator for RangeIter<'_> {
    /// A candidate address and the range it belongs to.
    type Item = (IpAddr, Range);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let range = &self.set.ranges[self.index];
            let next = match self.cur {
                None => range.start,
                Some(cur) if cur == range.end => {
                    self.index = (self.index + 1) % self.set.ranges.len();
                    self.set.ranges[self.index].start
                }
                Some(cur) => from_bits(cur, to_bits(cur) + 1),
            };
            self.cur = Some(next);
            match self.stop {
                None => self.stop = Some(next),
                Some(stop) if stop == next => return None,
                Some(_) => {}
            }
            let range = &self.set.ranges[self.index];
            if range.reserved_role(next).is_none() {
                return Some((next, range.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(path: &str, subnet: &str) -> RawRange {
        RawRange {
            path: path.into(),
            subnet: Some(subnet.parse().unwrap()),
            ..RawRange::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn set(raws: &[RawRange]) -> RangeSet {
        RangeSet::canonicalize("ipam.ranges[0]".into(), raws).unwrap()
    }

    #[test]
    fn defaults_v4_and_v6() {
        let r = Range::canonicalize(&raw("r", "10.1.2.0/24")).unwrap();
        assert_eq!(
            (r.start, r.end, r.gateway),
            (ip("10.1.2.1"), ip("10.1.2.254"), ip("10.1.2.1"))
        );
        let r = Range::canonicalize(&raw("r", "fd00::/120")).unwrap();
        assert_eq!(
            (r.start, r.end, r.gateway),
            (ip("fd00::1"), ip("fd00::ff"), ip("fd00::1"))
        );
        let r = Range::canonicalize(&raw("r", "10.1.2.0/30")).unwrap();
        assert_eq!((r.start, r.end), (ip("10.1.2.1"), ip("10.1.2.2")));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            raw("ipam.ranges[0][0]", "10.1.2.0/31"),
            raw("ipam.ranges[0][0]", "10.1.2.0/32"),
            raw("ipam.ranges[0][0]", "fd00::/127"),
            raw("ipam.ranges[0][0]", "fd00::/128"),
            raw("ipam.ranges[0][0]", "10.1.2.5/24"),
            RawRange {
                start: Some(ip("10.1.3.1")),
                ..raw("ipam.ranges[0][0]", "10.1.2.0/24")
            },
            RawRange {
                end: Some(ip("10.1.3.1")),
                ..raw("ipam.ranges[0][0]", "10.1.2.0/24")
            },
            RawRange {
                start: Some(ip("10.1.2.9")),
                end: Some(ip("10.1.2.8")),
                ..raw("ipam.ranges[0][0]", "10.1.2.0/24")
            },
            RawRange {
                gateway: Some(ip("fd00::1")),
                ..raw("ipam.ranges[0][0]", "10.1.2.0/24")
            },
            RawRange {
                subnet: None,
                ..raw("ipam.ranges[0][0]", "10.1.2.0/24")
            },
        ];
        let errors: Vec<Error> = cases
            .iter()
            .map(|r| Range::canonicalize(r).unwrap_err())
            .collect();
        for e in &errors {
            assert_eq!(e.code, cni::ErrorCode::INVALID_NETWORK_CONFIG);
            assert!(e.msg.starts_with("invalid ipam.ranges[0][0]."), "{e}");
        }
        insta::assert_json_snapshot!("range_errors", errors);
    }

    #[test]
    fn set_errors() {
        let e = RangeSet::canonicalize("ipam.ranges[0]".into(), &[]).unwrap_err();
        assert_eq!(e.msg, "invalid ipam.ranges[0] \"[]\"");
        let mixed = RangeSet::canonicalize(
            "ipam.ranges[0]".into(),
            &[
                raw("ipam.ranges[0][0]", "10.1.2.0/24"),
                raw("ipam.ranges[0][1]", "fd00::/64"),
            ],
        )
        .unwrap_err();
        let overlap = RangeSet::canonicalize(
            "ipam.ranges[0]".into(),
            &[
                raw("ipam.ranges[0][0]", "10.1.0.0/16"),
                raw("ipam.ranges[0][1]", "10.1.2.0/24"),
            ],
        )
        .unwrap_err();
        insta::assert_json_snapshot!("set_errors", [mixed, overlap]);
    }

    #[test]
    fn disjoint_spans_of_one_subnet_do_not_overlap() {
        let s = set(&[
            RawRange {
                start: Some(ip("10.1.2.10")),
                end: Some(ip("10.1.2.20")),
                ..raw("a", "10.1.2.0/24")
            },
            RawRange {
                start: Some(ip("10.1.2.21")),
                end: Some(ip("10.1.2.30")),
                ..raw("b", "10.1.2.0/24")
            },
        ]);
        assert!(s.contains(ip("10.1.2.21")));
        assert!(!s.contains(ip("10.1.2.9")));
        assert!(!s.contains(ip("fd00::1")));
        assert_eq!(s.to_string(), "10.1.2.10-10.1.2.20,10.1.2.21-10.1.2.30");
    }

    fn walk(s: &RangeSet, last: Option<&str>) -> Vec<String> {
        s.iter_from(last.map(ip))
            .map(|(a, _)| a.to_string())
            .collect()
    }

    #[test]
    fn walk_skips_gateway_and_wraps_once() {
        let s = set(&[raw("a", "10.1.2.0/29")]);
        let all = ["10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"];
        assert_eq!(walk(&s, None), all);
        // From the last reserved address: the next one first, the last one last.
        assert_eq!(
            walk(&s, Some("10.1.2.4")),
            ["10.1.2.5", "10.1.2.6", "10.1.2.2", "10.1.2.3", "10.1.2.4"]
        );
        // A last address outside the set restarts at rangeStart.
        assert_eq!(walk(&s, Some("10.9.9.9")), all);
    }

    #[test]
    fn walk_crosses_ranges_in_order() {
        let s = set(&[
            RawRange {
                start: Some(ip("10.1.2.5")),
                end: Some(ip("10.1.2.6")),
                ..raw("a", "10.1.2.0/24")
            },
            raw("b", "10.1.3.0/30"),
        ]);
        assert_eq!(
            walk(&s, Some("10.1.2.6")),
            ["10.1.3.2", "10.1.2.5", "10.1.2.6"]
        );
    }

    #[test]
    fn walk_never_returns_network_or_broadcast() {
        let s = set(&[RawRange {
            start: Some(ip("10.1.2.0")),
            end: Some(ip("10.1.2.7")),
            gateway: Some(ip("10.1.2.6")),
            ..raw("a", "10.1.2.0/29")
        }]);
        assert_eq!(
            walk(&s, None),
            ["10.1.2.1", "10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5"]
        );
        let only_gateway = set(&[RawRange {
            start: Some(ip("10.1.2.1")),
            end: Some(ip("10.1.2.1")),
            ..raw("a", "10.1.2.0/29")
        }]);
        assert!(walk(&only_gateway, None).is_empty());
        assert!(walk(&only_gateway, Some("10.1.2.1")).is_empty());
    }

    #[test]
    fn ipv6_walk() {
        let s = set(&[raw("a", "fd00::/126")]);
        assert_eq!(walk(&s, None), ["fd00::2", "fd00::3"]);
        assert_eq!(
            s.ranges[0].with_prefix(ip("fd00::2")).to_string(),
            "fd00::2/126"
        );
    }
}
