//! Properties over random operation sequences: the datastore never gives one address to two
//! keys and stays consistent, and the pool manager never goes past the limits nor touches a
//! held block, whatever the targets and the churn.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;

use crate::config::WarmPoolConfig;
use crate::datastore::DataStore;
use crate::limits::{InstanceLimits, PoolLimits};
use crate::test_util::*;
use crate::warm_pool::{plan, Grow};

#[derive(Debug, Clone)]
enum Op {
    Assign(u32),
    Release(u32),
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u32..40).prop_map(Op::Assign),
        3 => (0u32..40).prop_map(Op::Release),
        1 => (0u64..45).prop_map(Op::Wait),
    ]
}

/// Every invariant that ties allocations to blocks.
fn check_consistent(ds: &DataStore) {
    let mut seen = BTreeSet::new();
    for (key, a) in ds.allocations() {
        assert!(
            seen.insert(a.address),
            "{} held twice (second: {key})",
            a.address
        );
        let eni = ds.eni(&a.eni_id).expect("allocation on a known ENI");
        assert_eq!(eni.device_index, a.device_index);
        let block = eni
            .cidrs()
            .find(|c| c.net().contains(&a.address))
            .expect("allocation inside a block of its ENI");
        assert!(block.is_assigned(a.address));
    }
    let held: u32 = ds.enis().iter().map(|e| e.assigned_count()).sum();
    let s = ds.stats();
    assert_eq!(held as usize, seen.len());
    assert_eq!(s.assigned as usize, seen.len());
    assert!(s.assigned <= s.total);
}

proptest! {
    #[test]
    fn datastore_never_double_assigns(
        prefix_delegation in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let (mut ds, clock) = store(prefix_delegation);
        let blocks = if prefix_delegation { prefixes(0, 2) } else { ips(0, 12) };
        ds.add_eni(eni(0, true, &refs(&blocks))).unwrap();
        let more = if prefix_delegation { prefixes(1, 1) } else { ips(1, 6) };
        ds.add_eni(eni(1, false, &refs(&more))).unwrap();
        for op in ops {
            match op {
                Op::Assign(k) => {
                    let before = ds.allocation(&key(k)).cloned();
                    let got = ds.assign(&key(k), meta());
                    if let Some(before) = before {
                        prop_assert_eq!(got.unwrap(), before, "idempotent");
                    } else if let Ok(a) = got {
                        // Never an address released less than the cooldown ago.
                        let eni = ds.eni(&a.eni_id).unwrap();
                        let block = eni.cidrs().find(|c| c.net().contains(&a.address)).unwrap();
                        prop_assert!(!block.in_cooldown(a.address, ds.now(), ds.options().ip_cooldown));
                    }
                }
                Op::Release(k) => {
                    let held = ds.allocation(&key(k)).cloned();
                    prop_assert_eq!(ds.release(&key(k)), held);
                    prop_assert!(ds.release(&key(k)).is_none());
                }
                Op::Wait(s) => clock.advance(Duration::from_secs(s)),
            }
            check_consistent(&ds);
        }
    }

    #[test]
    fn pool_manager_respects_the_limits(
        prefix_delegation in any::<bool>(),
        warm_eni in 0u32..3,
        warm_ip in 0u32..20,
        minimum_ip in 0u32..40,
        warm_prefix in 0u32..3,
        max_eni in proptest::option::of(1u32..4),
        max_enis in 1u32..5,
        ipv4_per_eni in 2u32..12,
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let config = WarmPoolConfig {
            warm_eni_target: warm_eni,
            warm_ip_target: warm_ip,
            minimum_ip_target: minimum_ip,
            warm_prefix_target: warm_prefix,
            max_eni,
            prefix_delegation,
            ..WarmPoolConfig::default()
        };
        let limits = PoolLimits::new(InstanceLimits { max_enis, ipv4_per_eni }, &config);
        let (mut ds, clock) = store(prefix_delegation);
        ds.add_eni(eni(0, true, &[])).unwrap();
        let mut ec2 = FakeEc2::default();
        let max_pods = 250;
        for op in ops {
            match op {
                Op::Assign(k) => { let _ = ds.assign(&key(k), meta()); }
                Op::Release(k) => { ds.release(&key(k)); }
                Op::Wait(s) => clock.advance(Duration::from_secs(s)),
            }
            let p = plan(&config, &limits, &ds, max_pods);
            if let Some(Grow::Assign { count, .. } | Grow::AttachEni { count, .. }) = &p.grow {
                prop_assert!(*count >= 1, "a grow step adds something: {:?}", p);
            }
            let before = ds.stats().assigned;
            // Unforced removals: a plan touching a held block or a busy ENI panics here.
            ec2.apply(&mut ds, &p);
            prop_assert_eq!(ds.stats().assigned, before, "no allocation lost");
            // The primary ENI always stays, and nothing goes past the limits.
            prop_assert!(ds.eni("eni-0").is_some());
            prop_assert!(ds.eni_count() as u32 <= limits.max_enis.max(1));
            for e in ds.enis() {
                prop_assert!(e.cidrs().count() as u32 <= limits.max_cidrs_per_eni());
            }
            check_consistent(&ds);
        }
    }
}
