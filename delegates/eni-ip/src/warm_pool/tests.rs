//! Warm-pool tests: the formulas as tables, then whole scenarios driven through
//! [`plan`] and a fake EC2, with upstream's documented outcomes.

use std::time::Duration;

use super::*;
use crate::datastore::DataStore;
use crate::limits::InstanceLimits;
use crate::test_util::*;

/// m5.large: 3 ENIs × 10 IPv4 → 9 pod addresses (or 9 prefixes) per ENI; max pods 29.
const M5_LARGE: InstanceLimits = InstanceLimits {
    max_enis: 3,
    ipv4_per_eni: 10,
};

fn cfg(warm_ip: u32, minimum_ip: u32) -> WarmPoolConfig {
    WarmPoolConfig {
        warm_ip_target: warm_ip,
        minimum_ip_target: minimum_ip,
        ..WarmPoolConfig::default()
    }
}

fn pd_cfg(warm_ip: u32, minimum_ip: u32, warm_prefix: u32) -> WarmPoolConfig {
    WarmPoolConfig {
        prefix_delegation: true,
        warm_prefix_target: warm_prefix,
        ..cfg(warm_ip, minimum_ip)
    }
}

/// A primary ENI with `total` secondary IPs, `assigned` of them held.
fn ip_pool(total: u32, assigned: u32) -> DataStore {
    let (mut ds, _) = store(false);
    ds.add_eni(eni(0, true, &refs(&ips(0, total)))).unwrap();
    fill(&mut ds, 0, assigned);
    ds
}

/// A primary ENI with `n` prefixes, `assigned` addresses held (filling the first ones).
fn prefix_pool(n: u32, assigned: u32) -> DataStore {
    let (mut ds, _) = store(true);
    ds.add_eni(eni(0, true, &refs(&prefixes(0, n)))).unwrap();
    fill(&mut ds, 0, assigned);
    ds
}

#[test]
fn datastore_target_state_secondary_ips() {
    // (WARM_IP_TARGET, MINIMUM_IP_TARGET, total, assigned, short, over)
    let cases = [
        (5, 0, 3, 3, 5, 0),   // 3 in use, 5 warm wanted: grow to 8
        (5, 0, 8, 3, 0, 0),   // there
        (5, 0, 10, 3, 0, 2),  // two too many
        (0, 10, 0, 0, 10, 0), // the floor alone
        (2, 10, 4, 3, 6, 0),  // the floor beats the warm target
        (2, 10, 12, 0, 0, 2), // over, but only down to the floor
        (2, 10, 12, 9, 0, 1),
        (2, 10, 10, 10, 2, 0),
    ];
    for (warm, min, total, assigned, short, over) in cases {
        let got = datastore_target_state(&cfg(warm, min), &ip_pool(total, assigned));
        assert_eq!(
            got,
            Some(TargetState { short, over }),
            "warm {warm} min {min} total {total} assigned {assigned}"
        );
    }
    assert_eq!(datastore_target_state(&cfg(0, 0), &ip_pool(3, 3)), None);
}

#[test]
fn datastore_target_state_prefixes() {
    // (WARM_IP_TARGET, MINIMUM_IP_TARGET, prefixes, assigned, short prefixes, over prefixes)
    let cases = [
        (5, 0, 0, 0, 1, 0),
        (20, 0, 1, 0, 1, 0), // 16 available, 4 short: one more prefix
        (16, 0, 2, 1, 0, 0), // upstream's example: 1 + 16 needs 2 prefixes, none over
        (5, 0, 3, 1, 0, 2),  // 1 + 5 fits in one prefix: both free ones are over
        (5, 20, 3, 1, 0, 1), // but MINIMUM 20 keeps two prefixes
        (5, 0, 2, 17, 0, 0), // no free prefix: nothing can go even if addresses are spare
    ];
    for (warm, min, n, assigned, short, over) in cases {
        let got = datastore_target_state(&pd_cfg(warm, min, 0), &prefix_pool(n, assigned));
        assert_eq!(
            got,
            Some(TargetState { short, over }),
            "warm {warm} min {min} prefixes {n} assigned {assigned}"
        );
    }
}

#[test]
fn pool_too_low() {
    let limits = PoolLimits::new(M5_LARGE, &WarmPoolConfig::default());
    let eni_target = |n| WarmPoolConfig {
        warm_eni_target: n,
        ..WarmPoolConfig::default()
    };
    // (config, total, assigned, max pods, too low?)
    let cases = [
        (eni_target(1), 9, 0, 29, false), // a full spare ENI's worth
        (eni_target(1), 9, 1, 29, true),
        (eni_target(2), 18, 1, 29, true),
        (eni_target(2), 18, 0, 29, false),
        (eni_target(0), 9, 8, 29, false),
        (eni_target(0), 9, 9, 29, true), // target 0 still means "not empty"
        (eni_target(1), 9, 9, 9, false), // max pods reached
        (cfg(5, 0), 8, 3, 29, false),
        (cfg(5, 0), 8, 4, 29, true),
        (cfg(5, 0), 8, 4, 8, false),
    ];
    for (i, (config, total, assigned, max_pods, want)) in cases.into_iter().enumerate() {
        let got = is_pool_too_low(&config, &limits, &ip_pool(total, assigned), max_pods);
        assert_eq!(got, want, "case {i}");
    }
    let pd_limits = PoolLimits::new(M5_LARGE, &pd_cfg(0, 0, 1));
    // WARM_PREFIX_TARGET 1: low while fewer than 16 addresses are available.
    assert!(is_pool_too_low(
        &pd_cfg(0, 0, 1),
        &pd_limits,
        &prefix_pool(1, 1),
        110
    ));
    assert!(!is_pool_too_low(
        &pd_cfg(0, 0, 1),
        &pd_limits,
        &prefix_pool(2, 16),
        110
    ));
    assert!(is_pool_too_low(
        &pd_cfg(0, 0, 0),
        &pd_limits,
        &prefix_pool(1, 16),
        110
    ));
}

#[test]
fn pool_too_high() {
    // WARM_ENI_TARGET alone never gives back secondary IPs.
    assert!(!is_pool_too_high(
        &WarmPoolConfig::default(),
        &ip_pool(9, 0)
    ));
    assert!(is_pool_too_high(&cfg(5, 0), &ip_pool(9, 2)));
    assert!(!is_pool_too_high(&cfg(5, 0), &ip_pool(7, 2)));
    assert!(!is_pool_too_high(&cfg(5, 20), &ip_pool(9, 2)));
    // Prefix target: more free prefixes than wanted.
    assert!(is_pool_too_high(&pd_cfg(0, 0, 1), &prefix_pool(3, 1)));
    assert!(!is_pool_too_high(&pd_cfg(0, 0, 2), &prefix_pool(3, 1)));
}

#[test]
fn prefixes_needed_and_eni_resources() {
    let pd = PoolLimits::new(M5_LARGE, &pd_cfg(0, 0, 1));
    assert_eq!(prefixes_needed(&pd_cfg(0, 0, 3), &prefix_pool(1, 0)), 2);
    assert_eq!(prefixes_needed(&pd_cfg(0, 0, 1), &prefix_pool(1, 0)), 1); // at least one
    assert_eq!(prefixes_needed(&pd_cfg(40, 0, 3), &prefix_pool(0, 0)), 3); // IP target wins
    assert_eq!(
        eni_resources_to_allocate(&pd_cfg(0, 0, 20), &pd, &prefix_pool(0, 0)),
        9
    );
    let plain = PoolLimits::new(M5_LARGE, &WarmPoolConfig::default());
    assert_eq!(
        eni_resources_to_allocate(&WarmPoolConfig::default(), &plain, &ip_pool(9, 9)),
        9
    );
    assert_eq!(
        eni_resources_to_allocate(&cfg(3, 0), &plain, &ip_pool(9, 9)),
        3
    );
    assert_eq!(
        eni_resources_to_allocate(&cfg(0, 30), &plain, &ip_pool(9, 9)),
        9
    );
}

/// Ticks the pool manager until it has nothing to do (at most 10 times).
fn settle(config: &WarmPoolConfig, limits: &PoolLimits, ds: &mut DataStore, ec2: &mut FakeEc2) {
    for _ in 0..10 {
        let p = plan(config, limits, ds, 29);
        if p == Plan::default() || p.grow == Some(Grow::AtEniLimit) {
            return;
        }
        ec2.apply(ds, &p);
    }
    panic!("the pool did not settle");
}

#[test]
fn warm_ip_target_5_with_3_in_use_grows_to_8() {
    let config = cfg(5, 0);
    let limits = PoolLimits::new(M5_LARGE, &config);
    let mut ds = ip_pool(3, 3);
    let p = plan(&config, &limits, &ds, 29);
    assert_eq!(
        p.grow,
        Some(Grow::Assign {
            eni_id: "eni-0".into(),
            count: 5,
            kind: CidrKind::SecondaryIps
        })
    );
    FakeEc2::default().apply(&mut ds, &p);
    assert_eq!(ds.stats().total, 8);
    assert_eq!(plan(&config, &limits, &ds, 29), Plan::default());
}

#[test]
fn minimum_ip_target_is_a_floor() {
    let config = cfg(2, 10);
    let limits = PoolLimits::new(M5_LARGE, &config);
    let (mut ds, _) = store(false);
    ds.add_eni(eni(0, true, &[])).unwrap();
    let mut ec2 = FakeEc2::default();
    // 10 short: the primary takes 9, then a second ENI only the 1 missing.
    let p = plan(&config, &limits, &ds, 29);
    assert_eq!(
        p.grow,
        Some(Grow::Assign {
            eni_id: "eni-0".into(),
            count: 9,
            kind: CidrKind::SecondaryIps
        })
    );
    ec2.apply(&mut ds, &p);
    let p = plan(&config, &limits, &ds, 29);
    assert_eq!(
        p.grow,
        Some(Grow::AttachEni {
            count: 1,
            kind: CidrKind::SecondaryIps
        })
    );
    ec2.apply(&mut ds, &p);
    assert_eq!((ds.stats().total, ds.eni_count()), (10, 2));
    assert_eq!(plan(&config, &limits, &ds, 29), Plan::default());
    // Nine pods: 1 free, WARM_IP_TARGET 2 wants one more.
    fill(&mut ds, 0, 9);
    settle(&config, &limits, &mut ds, &mut ec2);
    assert_eq!((ds.stats().total, ds.stats().available()), (11, 2));
}

#[test]
fn warm_eni_target_1_keeps_one_spare_enis_worth() {
    let config = WarmPoolConfig::default();
    let limits = PoolLimits::new(M5_LARGE, &config);
    let (mut ds, clock) = store(false);
    ds.add_eni(eni(0, true, &refs(&ips(0, 9)))).unwrap();
    let mut ec2 = FakeEc2::default();
    assert_eq!(plan(&config, &limits, &ds, 29), Plan::default());
    // One pod: 8 available < 9, and the primary is full: attach a full ENI.
    fill(&mut ds, 0, 1);
    let p = plan(&config, &limits, &ds, 29);
    assert_eq!(
        p.grow,
        Some(Grow::AttachEni {
            count: 9,
            kind: CidrKind::SecondaryIps
        })
    );
    ec2.apply(&mut ds, &p);
    assert_eq!(ds.stats().available(), 17);
    // The pod goes: 18 available ≥ (1 + 1) × 9, but the new ENI is too young…
    ds.release(&key(0));
    assert_eq!(plan(&config, &limits, &ds, 29), Plan::default());
    // …until a minute has passed; no secondary IP is ever given back on the way.
    clock.advance(Duration::from_secs(60));
    let p = plan(&config, &limits, &ds, 29);
    assert!(p.release.is_empty());
    assert_eq!(p.free_eni.as_deref(), Some("eni-1"));
    ec2.apply(&mut ds, &p);
    assert_eq!((ds.eni_count(), ds.stats().available()), (1, 9));
}

#[test]
fn warm_prefix_target_keeps_free_prefixes() {
    let config = pd_cfg(0, 0, 1);
    let limits = PoolLimits::new(M5_LARGE, &config);
    let (mut ds, _) = store(true);
    ds.add_eni(eni(0, true, &[])).unwrap();
    let mut ec2 = FakeEc2::default();
    let p = plan(&config, &limits, &ds, 110);
    assert_eq!(
        p.grow,
        Some(Grow::Assign {
            eni_id: "eni-0".into(),
            count: 1,
            kind: CidrKind::Prefixes
        })
    );
    ec2.apply(&mut ds, &p);
    assert_eq!(plan(&config, &limits, &ds, 110), Plan::default());
    // A pod takes an address of the only prefix: no free prefix left, add one.
    fill(&mut ds, 0, 1);
    let p = plan(&config, &limits, &ds, 110);
    ec2.apply(&mut ds, &p);
    assert_eq!(
        (ds.stats().total_prefixes, ds.stats().free_prefixes),
        (2, 1)
    );
    // The pod goes: two free prefixes, one over the target, and only a whole one goes.
    ds.release(&key(0));
    let p = plan(&config, &limits, &ds, 110);
    assert_eq!(p.release.len(), 1);
    assert_eq!(p.release[0].cidrs.len(), 1);
    assert!(p.release[0].cidrs[0].prefix_len() == 28);
    ec2.apply(&mut ds, &p);
    assert_eq!(
        (ds.stats().total_prefixes, ds.stats().free_prefixes),
        (1, 1)
    );
}

#[test]
fn decrease_gives_back_only_free_whole_blocks_up_to_over() {
    // WARM_IP_TARGET 2, 9 IPs, 4 held: 3 over.
    let ds = ip_pool(9, 4);
    let releases = plan_decrease(&cfg(2, 0), &ds);
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].cidrs.len(), 3);
    for c in &releases[0].cidrs {
        assert_eq!(
            ds.eni("eni-0")
                .unwrap()
                .cidrs()
                .find(|b| b.net() == *c)
                .unwrap()
                .assigned_count(),
            0
        );
    }
    // A prefix with one held address is never split.
    let ds = prefix_pool(3, 1);
    let releases = plan_decrease(&pd_cfg(0, 0, 0), &ds);
    let freed: Vec<String> = releases
        .iter()
        .flat_map(|r| r.cidrs.iter().map(|c| c.to_string()))
        .collect();
    assert_eq!(freed, vec!["10.100.0.16/28", "10.100.0.32/28"]);
}

#[test]
fn limits_stop_growth() {
    let config = WarmPoolConfig {
        max_eni: Some(2),
        ..WarmPoolConfig::default()
    };
    let limits = PoolLimits::new(M5_LARGE, &config);
    let (mut ds, _) = store(false);
    ds.add_eni(eni(0, true, &refs(&ips(0, 9)))).unwrap();
    ds.add_eni(eni(1, false, &refs(&ips(1, 9)))).unwrap();
    fill(&mut ds, 0, 18);
    assert_eq!(plan(&config, &limits, &ds, 29).grow, Some(Grow::AtEniLimit));
    // Max pods: 18 addresses on a node capped at 18 pods is enough, whatever the target.
    assert_eq!(plan(&config, &limits, &ds, 18), Plan::default());
}

#[test]
fn eni_freed_after_the_releases_of_the_same_tick() {
    // WARM_IP_TARGET 2, MINIMUM 0, all free: the releases come from the primary first, and
    // the last free block of eni-1 is then needed for the warm target, so it stays.
    let config = cfg(2, 0);
    let limits = PoolLimits::new(M5_LARGE, &config);
    let (mut ds, _) = store(false);
    ds.add_eni(eni(0, true, &refs(&ips(0, 9)))).unwrap();
    ds.add_eni(eni(1, false, &refs(&ips(1, 3)))).unwrap();
    let p = plan(&config, &limits, &ds, 29);
    let counts: Vec<(String, usize)> = p
        .release
        .iter()
        .map(|r| (r.eni_id.clone(), r.cidrs.len()))
        .collect();
    assert_eq!(
        counts,
        vec![("eni-0".to_string(), 9), ("eni-1".to_string(), 1)]
    );
    assert_eq!(p.free_eni, None);
}

#[test]
fn demand_increase_grows_when_every_free_address_is_cooling() {
    // WARM_IP_TARGET 2 with 5 IPs on the primary ENI, 3 held and 2 released just now: the
    // targets are met (cooling addresses count as available) yet nothing can be handed out.
    let config = cfg(2, 0);
    let limits = PoolLimits::new(M5_LARGE, &config);
    let (mut ds, _clock) = store(false);
    ds.add_eni(eni(0, true, &refs(&ips(0, 5)))).unwrap();
    fill(&mut ds, 0, 5);
    ds.release(&key(0));
    ds.release(&key(1));
    assert_eq!(plan_increase(&config, &limits, &ds), None);
    assert_eq!(
        plan_demand_increase(&config, &limits, &ds),
        Grow::Assign {
            eni_id: "eni-0".into(),
            count: 1,
            kind: CidrKind::SecondaryIps
        }
    );
}

#[test]
fn demand_increase_attaches_then_stops_at_the_limit() {
    let config = WarmPoolConfig {
        max_eni: Some(2),
        ..cfg(1, 0)
    };
    let limits = PoolLimits::new(M5_LARGE, &config);
    let (mut ds, _clock) = store(false);
    ds.add_eni(eni(0, true, &refs(&ips(0, 9)))).unwrap();
    fill(&mut ds, 0, 9);
    assert!(matches!(
        plan_demand_increase(&config, &limits, &ds),
        Grow::AttachEni { count, kind: CidrKind::SecondaryIps } if count >= 1
    ));
    ds.add_eni(eni(1, false, &refs(&ips(1, 9)))).unwrap();
    fill(&mut ds, 9, 9);
    assert_eq!(
        plan_demand_increase(&config, &limits, &ds),
        Grow::AtEniLimit
    );
}
