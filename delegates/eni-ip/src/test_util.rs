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

/// A stand-in for EC2: performs a [`crate::warm_pool::Plan`] on a datastore, inventing
/// addresses (secondary IPs in 172.16+d.0.0/16, prefixes in 100.64+d.0.0/16 for device d).
#[derive(Debug, Default)]
pub(crate) struct FakeEc2 {
    next: std::collections::HashMap<String, u32>,
}

impl FakeEc2 {
    fn new_block(
        &mut self,
        ds: &DataStore,
        eni_id: &str,
        kind: crate::warm_pool::CidrKind,
    ) -> ipnet::Ipv4Net {
        let d = ds.eni(eni_id).unwrap().device_index as u8;
        let k = self.next.entry(eni_id.to_string()).or_insert(0);
        *k += 1;
        let k = *k;
        match kind {
            crate::warm_pool::CidrKind::SecondaryIps => ipnet::Ipv4Net::new(
                std::net::Ipv4Addr::new(172, 16 + d, (k / 256) as u8, (k % 256) as u8),
                32,
            )
            .unwrap(),
            crate::warm_pool::CidrKind::Prefixes => {
                let base = k * 16;
                ipnet::Ipv4Net::new(
                    std::net::Ipv4Addr::new(100, 64 + d, (base / 256) as u8, (base % 256) as u8),
                    28,
                )
                .unwrap()
            }
        }
    }

    /// Applies the plan as the agent would; unforced removals, so a plan that touched a held
    /// block or a busy ENI panics.
    pub(crate) fn apply(&mut self, ds: &mut DataStore, plan: &crate::warm_pool::Plan) {
        use crate::warm_pool::Grow;
        match &plan.grow {
            Some(Grow::Assign {
                eni_id,
                count,
                kind,
            }) => {
                for _ in 0..*count {
                    let net = self.new_block(ds, eni_id, *kind);
                    ds.add_cidr(eni_id, net).unwrap();
                }
            }
            Some(Grow::AttachEni { count, kind }) => {
                let d = ds
                    .enis()
                    .iter()
                    .map(|e| e.device_index + 1)
                    .max()
                    .unwrap_or(0);
                let e = Eni::new(
                    format!("eni-{d}"),
                    d,
                    false,
                    "10.0.0.0/16".parse().unwrap(),
                    ds.now(),
                );
                let id = e.id.clone();
                ds.add_eni(e).unwrap();
                for _ in 0..*count {
                    let net = self.new_block(ds, &id, *kind);
                    ds.add_cidr(&id, net).unwrap();
                }
            }
            Some(Grow::AtEniLimit) | None => {}
        }
        for r in &plan.release {
            for c in &r.cidrs {
                ds.remove_cidr(&r.eni_id, *c, false).unwrap();
            }
        }
        if let Some(id) = &plan.free_eni {
            ds.remove_eni(id, false).unwrap();
        }
    }
}
