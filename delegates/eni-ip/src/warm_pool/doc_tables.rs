//! Upstream's documented examples, replayed: `docs/eni-and-ip-target.md` (secondary IPs) and
//! `docs/prefix-and-ip-target.md` (prefixes). Pods arrive one at a time and the pool manager
//! ticks until it has nothing left to do after each, as ipamd's 5 s loop would between pods.

use super::*;
use crate::limits::{self, InstanceLimits};
use crate::test_util::*;

/// 3 ENIs × 4 IPv4: 3 secondary IPs (or prefixes) per ENI.
const T3_SMALL: InstanceLimits = InstanceLimits {
    max_enis: 3,
    ipv4_per_eni: 4,
};
/// 15 ENIs × 50 IPv4: 49 per ENI.
const P3DN_24XLARGE: InstanceLimits = InstanceLimits {
    max_enis: 15,
    ipv4_per_eni: 50,
};

/// Blocks per ENI (by device index) after `pods` pods arrived one by one.
fn replay(
    config: &WarmPoolConfig,
    instance: InstanceLimits,
    max_pods: u32,
    pods: u32,
) -> (Vec<u32>, u32) {
    let limits = PoolLimits::new(instance, config);
    let (mut ds, _) = store(config.prefix_delegation);
    ds.add_eni(eni(0, true, &[])).unwrap();
    let mut ec2 = FakeEc2::default();
    let mut tick = |ds: &mut crate::DataStore| {
        for _ in 0..50 {
            let p = plan(config, &limits, ds, max_pods);
            if p == Plan::default() || p.grow == Some(Grow::AtEniLimit) {
                return;
            }
            ec2.apply(ds, &p);
        }
        panic!("the pool did not settle");
    };
    tick(&mut ds);
    for k in 0..pods {
        ds.assign(&key(k), meta()).unwrap();
        tick(&mut ds);
    }
    let per_eni = ds.enis().iter().map(|e| e.cidrs().count() as u32).collect();
    (per_eni, ds.stats().available())
}

/// (instance, WARM_ENI or WARM_PREFIX, WARM_IP, MINIMUM_IP, pods, blocks per ENI, unused IPs)
type Row = (InstanceLimits, u32, u32, u32, u32, &'static [u32], u32);

fn targets(warm_eni: u32, warm_ip: u32, minimum_ip: u32) -> WarmPoolConfig {
    WarmPoolConfig {
        warm_eni_target: warm_eni,
        warm_ip_target: warm_ip,
        minimum_ip_target: minimum_ip,
        ..WarmPoolConfig::default()
    }
}

#[test]
fn eni_and_ip_target_table() {
    // (instance, WARM_ENI, WARM_IP, MINIMUM_IP, pods, secondary IPs per ENI, unused IPs)
    let rows: &[Row] = &[
        (T3_SMALL, 1, 0, 0, 0, &[3], 3),
        (T3_SMALL, 1, 0, 0, 5, &[3, 3, 3], 4),
        (T3_SMALL, 1, 0, 0, 9, &[3, 3, 3], 0),
        (T3_SMALL, 1, 1, 1, 0, &[1], 1),
        (T3_SMALL, 1, 1, 1, 5, &[3, 3], 1),
        (T3_SMALL, 1, 1, 1, 9, &[3, 3, 3], 0),
        // The doc lists "2,3": the same two ENIs, ours in device order.
        (T3_SMALL, 1, 2, 5, 0, &[3, 2], 5),
        (T3_SMALL, 1, 2, 5, 5, &[3, 3, 1], 2),
        (T3_SMALL, 1, 2, 5, 9, &[3, 3, 3], 0),
        (P3DN_24XLARGE, 1, 0, 0, 0, &[49], 49),
        (P3DN_24XLARGE, 1, 0, 0, 3, &[49, 49], 95),
        (P3DN_24XLARGE, 1, 0, 0, 95, &[49, 49, 49], 52),
        (P3DN_24XLARGE, 1, 5, 10, 0, &[10], 10),
        (P3DN_24XLARGE, 1, 5, 10, 7, &[12], 5),
        (P3DN_24XLARGE, 1, 5, 10, 15, &[20], 5),
        (P3DN_24XLARGE, 1, 5, 10, 45, &[49, 1], 5),
    ];
    for (instance, warm_eni, warm_ip, minimum_ip, pods, per_eni, unused) in rows {
        let config = targets(*warm_eni, *warm_ip, *minimum_ip);
        let got = replay(&config, *instance, limits::max_pods(*instance), *pods);
        assert_eq!(
            got,
            (per_eni.to_vec(), *unused),
            "{instance:?} WARM_ENI {warm_eni} WARM_IP {warm_ip} MIN {minimum_ip}, {pods} pods"
        );
    }
}

#[test]
fn prefix_and_ip_target_table() {
    // (instance, WARM_PREFIX, WARM_IP, MINIMUM_IP, pods, prefixes per ENI, unused IPs)
    let rows: &[Row] = &[
        (T3_SMALL, 1, 0, 0, 0, &[1], 16),
        (T3_SMALL, 1, 0, 0, 5, &[2], 27),
        (T3_SMALL, 1, 0, 0, 16, &[2], 16),
        (T3_SMALL, 1, 0, 0, 17, &[3], 31),
        (T3_SMALL, 1, 0, 0, 58, &[3, 2], 22),
        (T3_SMALL, 0, 1, 1, 0, &[1], 16),
        (T3_SMALL, 0, 1, 1, 5, &[1], 11),
        (T3_SMALL, 0, 1, 1, 17, &[2], 15),
        (T3_SMALL, 0, 1, 1, 58, &[3, 1], 6),
        // The doc's 0-pod row is self-contradictory (1 attached prefix, 2 prefixes per ENI);
        // MINIMUM_IP_TARGET 20 rounds up to two whole prefixes, as the same doc explains.
        (T3_SMALL, 0, 7, 20, 0, &[2], 32),
        (T3_SMALL, 0, 7, 20, 5, &[2], 27),
        (T3_SMALL, 0, 7, 20, 17, &[2], 15),
        (T3_SMALL, 0, 7, 20, 58, &[3, 2], 22),
    ];
    for (instance, warm_prefix, warm_ip, minimum_ip, pods, per_eni, unused) in rows {
        let config = WarmPoolConfig {
            prefix_delegation: true,
            warm_prefix_target: *warm_prefix,
            ..targets(1, *warm_ip, *minimum_ip)
        };
        let got = replay(&config, *instance, 110, *pods);
        assert_eq!(
            got,
            (per_eni.to_vec(), *unused),
            "WARM_PREFIX {warm_prefix} WARM_IP {warm_ip} MIN {minimum_ip}, {pods} pods"
        );
    }
    // p3dn.24xlarge rows: the doc's ENI column counts an ENI that holds no prefix (a trunk
    // or EFA interface); the prefixes and unused addresses are what the rules decide.
    let rows: &[(u32, u32, u32, u32, u32, u32)] = &[
        (1, 0, 0, 0, 1, 16),
        (1, 0, 0, 3, 2, 29),
        (1, 0, 0, 95, 7, 17),
        (0, 5, 10, 0, 1, 16),
        (0, 5, 10, 7, 1, 9),
        (0, 5, 10, 15, 2, 17),
        (0, 5, 10, 45, 4, 19),
    ];
    for (warm_prefix, warm_ip, minimum_ip, pods, prefixes, unused) in rows {
        let config = WarmPoolConfig {
            prefix_delegation: true,
            warm_prefix_target: *warm_prefix,
            ..targets(1, *warm_ip, *minimum_ip)
        };
        let (per_eni, got_unused) = replay(&config, P3DN_24XLARGE, 250, *pods);
        assert_eq!(
            (per_eni.iter().sum::<u32>(), got_unused),
            (*prefixes, *unused),
            "p3dn WARM_PREFIX {warm_prefix} WARM_IP {warm_ip} MIN {minimum_ip}, {pods} pods"
        );
    }
}
