//! Builders shared by the unit tests.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::ManualClock;
use crate::datastore::{DataStore, DataStoreOptions};
use crate::eni::Eni;
use crate::key::{AllocationMetadata, IpamKey};

/// Where every test clock starts: ENIs built by [`eni`] are an hour old by then.
pub(crate) const T0: u64 = 1_763_712_000;

pub(crate) fn t(secs_after_t0: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs_after_t0)
}

/// An empty datastore in secondary-IP or prefix mode, and its clock.
pub(crate) fn store(prefix_delegation: bool) -> (DataStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t(0)));
    let options = DataStoreOptions {
        prefix_delegation,
        ..DataStoreOptions::default()
    };
    (DataStore::new(options, clock.clone()), clock)
}

/// An hour-old ENI `eni-<index>` in 10.0.0.0/16 with the given blocks ("10.0.1.5/32",
/// "10.0.2.0/28").
pub(crate) fn eni(index: u32, primary: bool, cidrs: &[&str]) -> Eni {
    let mut e = Eni::new(
        format!("eni-{index}"),
        index,
        primary,
        "10.0.0.0/16".parse().unwrap(),
        t(0) - Duration::from_secs(3600),
    );
    for c in cidrs {
        let net: ipnet::Ipv4Net = c.parse().unwrap();
        e.cidrs.insert(net, crate::eni::Cidr::new(net));
    }
    e
}

/// `n` secondary IPs 10.0.<index>.1.. as /32 strings.
pub(crate) fn ips(index: u32, n: u32) -> Vec<String> {
    (1..=n).map(|i| format!("10.0.{index}.{i}/32")).collect()
}

/// `n` prefixes 10.<100+index>.<k*16>/28.
pub(crate) fn prefixes(index: u32, n: u32) -> Vec<String> {
    (0..n)
        .map(|k| format!("10.{}.0.{}/28", 100 + index, k * 16))
        .collect()
}

pub(crate) fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

pub(crate) fn key(n: u32) -> IpamKey {
    IpamKey::new("aws-cni", format!("sandbox-{n}"), "eth0")
}

pub(crate) fn meta() -> AllocationMetadata {
    AllocationMetadata::default()
}

/// Assigns keys `from..from+n`.
pub(crate) fn fill(ds: &mut DataStore, from: u32, n: u32) {
    for k in from..from + n {
        ds.assign(&key(k), meta()).unwrap();
    }
}
