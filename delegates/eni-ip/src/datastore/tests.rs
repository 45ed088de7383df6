//! Datastore tests: assignment, release, cooldown, counts, prefix mode, block and ENI
//! management, deletable-ENI checks, restore.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::*;
use crate::test_util::*;

fn addr(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn assign_is_idempotent_for_the_same_key() {
    let (mut ds, _) = store(false);
    ds.add_eni(eni(0, true, &["10.0.0.5/32", "10.0.0.6/32"]))
        .unwrap();
    let first = ds.assign(&key(1), meta()).unwrap();
    let again = ds
        .assign(
            &key(1),
            AllocationMetadata {
                pod_name: "other".into(),
                ..meta()
            },
        )
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(ds.stats().assigned, 1);
    // Another interface of the same sandbox is another key.
    let eth1 = IpamKey::new("aws-cni", "sandbox-1", "eth1");
    assert_ne!(ds.assign(&eth1, meta()).unwrap().address, first.address);
}

#[test]
fn assign_walks_enis_by_device_index_then_addresses() {
    let (mut ds, _) = store(false);
    // Added out of order on purpose.
    ds.add_eni(eni(2, false, &["10.0.2.1/32"])).unwrap();
    ds.add_eni(eni(0, true, &["10.0.0.9/32", "10.0.0.7/32"]))
        .unwrap();
    let got: Vec<(Ipv4Addr, String, u32)> = (0..3)
        .map(|k| {
            let a = ds.assign(&key(k), meta()).unwrap();
            (a.address, a.eni_id, a.device_index)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (addr("10.0.0.7"), "eni-0".to_string(), 0),
            (addr("10.0.0.9"), "eni-0".to_string(), 0),
            (addr("10.0.2.1"), "eni-2".to_string(), 2),
        ]
    );
    assert_eq!(
        ds.assign(&key(9), meta()),
        Err(DataStoreError::NoAvailableAddress)
    );
}

#[test]
fn release_is_idempotent_and_returns_what_was_freed() {
    let (mut ds, clock) = store(false);
    ds.add_eni(eni(0, true, &["10.0.0.5/32"])).unwrap();
    let a = ds.assign(&key(1), meta()).unwrap();
    clock.advance(Duration::from_secs(5));
    assert_eq!(ds.release(&key(1)), Some(a));
    assert_eq!(ds.release(&key(1)), None);
    assert_eq!(ds.release(&key(2)), None);
    assert_eq!(ds.stats().assigned, 0);
}

#[test]
fn released_address_is_not_handed_out_before_the_cooldown() {
    // (seconds after the release, expected outcome for a new key)
    let cases: &[(u64, Option<&str>)] = &[
        (0, None),
        (1, None),
        (29, None),
        (30, Some("10.0.0.5")),
        (300, Some("10.0.0.5")),
    ];
    for (after, want) in cases {
        let (mut ds, clock) = store(false);
        ds.add_eni(eni(0, true, &["10.0.0.5/32"])).unwrap();
        ds.assign(&key(1), meta()).unwrap();
        ds.release(&key(1)).unwrap();
        clock.advance(Duration::from_secs(*after));
        let got = ds.assign(&key(2), meta()).map(|a| a.address);
        match want {
            None => assert_eq!(got, Err(DataStoreError::NoAvailableAddress), "+{after}s"),
            Some(a) => assert_eq!(got, Ok(addr(a)), "+{after}s"),
        }
    }
}

#[test]
fn cooldown_prefers_other_addresses_and_follows_the_option() {
    let clock = std::sync::Arc::new(crate::ManualClock::new(t(0)));
    let options = DataStoreOptions {
        ip_cooldown: Duration::from_secs(5),
        ..DataStoreOptions::default()
    };
    let mut ds = DataStore::new(options, clock.clone());
    ds.add_eni(eni(0, true, &["10.0.0.5/32", "10.0.0.6/32"]))
        .unwrap();
    ds.assign(&key(1), meta()).unwrap(); // .5
    ds.release(&key(1));
    assert_eq!(
        ds.assign(&key(2), meta()).unwrap().address,
        addr("10.0.0.6")
    );
    ds.release(&key(2));
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        ds.assign(&key(3), meta()).unwrap().address,
        addr("10.0.0.5")
    );
}

#[test]
fn counts() {
    let (mut ds, clock) = store(false);
    ds.add_eni(eni(0, true, &refs(&ips(0, 4)))).unwrap();
    ds.add_eni(eni(1, false, &refs(&ips(1, 3)))).unwrap();
    fill(&mut ds, 0, 5);
    ds.release(&key(0));
    ds.release(&key(1));
    // (seconds later, total, assigned, available, cooling)
    for (later, total, assigned, available, cooling) in [(0, 7, 3, 4, 2), (30, 7, 3, 4, 0)] {
        clock.set(t(later));
        let s = ds.stats();
        assert_eq!(
            (s.total, s.assigned, s.available(), s.cooling),
            (total, assigned, available, cooling),
            "+{later}s"
        );
        assert_eq!((s.total_prefixes, s.free_prefixes), (0, 0));
    }
}

#[test]
fn prefix_mode_assigns_from_prefixes_only_network_address_first() {
    let (mut ds, _) = store(true);
    ds.add_eni(eni(0, true, &["10.0.0.5/32", "10.100.0.0/28"]))
        .unwrap();
    let got: Vec<Ipv4Addr> = (0..16)
        .map(|k| ds.assign(&key(k), meta()).unwrap().address)
        .collect();
    let want: Vec<Ipv4Addr> = (0..16).map(|i| Ipv4Addr::new(10, 100, 0, i)).collect();
    assert_eq!(got, want);
    // The leftover secondary IP of the other mode is not used.
    assert_eq!(
        ds.assign(&key(99), meta()),
        Err(DataStoreError::NoAvailableAddress)
    );
    let s = ds.stats();
    assert_eq!(
        (s.total, s.assigned, s.total_prefixes, s.free_prefixes),
        (16, 16, 1, 0)
    );
}

#[test]
fn prefix_mode_counts_prefixes_and_other_mode_leftovers() {
    let (mut ds, _) = store(true);
    ds.add_eni(eni(0, true, &["10.0.0.5/32"])).unwrap();
    // A pod restored on a secondary IP from before the switch to prefix mode.
    ds.restore_allocation(key(0), addr("10.0.0.5"), t(0), meta())
        .unwrap();
    ds.add_cidr("eni-0", "10.100.0.0/28".parse().unwrap())
        .unwrap();
    ds.add_cidr("eni-0", "10.100.0.16/28".parse().unwrap())
        .unwrap();
    fill(&mut ds, 1, 1);
    let s = ds.stats();
    // 32 prefix addresses + the held leftover; one prefix untouched.
    assert_eq!(
        (s.total, s.assigned, s.total_prefixes, s.free_prefixes),
        (33, 2, 2, 1)
    );
    ds.release(&key(0));
    assert_eq!(ds.stats().total, 32);
    assert_eq!(
        ds.other_mode_free_cidrs(),
        vec![("eni-0".to_string(), "10.0.0.5/32".parse().unwrap())]
    );
    assert_eq!(
        ds.freeable_cidrs("eni-0"),
        vec!["10.100.0.16/28".parse::<Ipv4Net>().unwrap()]
    );
}

#[test]
fn block_and_eni_management_refusals() {
    let (mut ds, _) = store(false);
    ds.add_eni(eni(0, true, &["10.0.0.5/32"])).unwrap();
    ds.add_eni(eni(1, false, &["10.100.0.0/28"])).unwrap();
    let cases: Vec<(Result<(), DataStoreError>, &str)> = vec![
        (
            ds.clone().add_eni(eni(0, false, &[])),
            "ENI eni-0 is already in the datastore",
        ),
        (
            ds.clone().add_cidr("eni-1", "10.0.0.5/32".parse().unwrap()),
            "10.0.0.5/32 overlaps 10.0.0.5/32 already on ENI eni-0",
        ),
        (
            ds.clone()
                .add_cidr("eni-0", "10.100.0.3/32".parse().unwrap()),
            "10.100.0.3/32 overlaps 10.100.0.0/28 already on ENI eni-1",
        ),
        (
            ds.clone().add_cidr("eni-0", "10.0.0.0/24".parse().unwrap()),
            "10.0.0.0/24 is neither a /32 secondary IP nor a /28 prefix",
        ),
        (
            ds.clone().add_cidr("eni-9", "10.0.0.9/32".parse().unwrap()),
            "unknown ENI eni-9",
        ),
        (
            ds.clone().add_eni(eni(5, false, &["10.0.0.5/32"])),
            "10.0.0.5/32 overlaps 10.0.0.5/32 already on ENI eni-0",
        ),
    ];
    for (got, message) in cases {
        assert_eq!(got.unwrap_err().to_string(), message);
    }
    // A refused ENI leaves nothing behind.
    let mut copy = ds.clone();
    let _ = copy.add_eni(eni(5, false, &["10.0.5.1/32", "10.0.0.5/32"]));
    assert!(copy.eni("eni-5").is_none());
}

#[test]
fn removing_held_blocks_needs_force_and_reports_the_allocations() {
    let (mut ds, _) = store(false);
    ds.add_eni(eni(0, true, &["10.0.0.5/32", "10.0.0.6/32"]))
        .unwrap();
    let a = ds.assign(&key(1), meta()).unwrap();
    let net: Ipv4Net = "10.0.0.5/32".parse().unwrap();
    assert_eq!(
        ds.remove_cidr("eni-0", net, false).unwrap_err().to_string(),
        "10.0.0.5/32 holds 1 assigned address(es)"
    );
    assert_eq!(
        ds.remove_cidr("eni-0", net, true).unwrap(),
        vec![(key(1), a)]
    );
    assert_eq!(ds.release(&key(1)), None, "a later DEL finds nothing");
    assert!(ds.remove_cidr("eni-0", net, false).is_err(), "gone");
    assert_eq!(
        ds.remove_cidr("eni-0", "10.0.0.6/32".parse().unwrap(), false),
        Ok(vec![])
    );
}

#[test]
fn forced_eni_removal_drops_its_allocations_only() {
    let (mut ds, _) = store(false);
    ds.add_eni(eni(0, true, &["10.0.0.5/32"])).unwrap();
    ds.add_eni(eni(1, false, &["10.0.1.5/32"])).unwrap();
    fill(&mut ds, 0, 2);
    assert!(matches!(
        ds.remove_eni("eni-1", false),
        Err(DataStoreError::InUse { assigned: 1, .. })
    ));
    let (gone, dropped) = ds.remove_eni("eni-1", true).unwrap();
    assert_eq!(gone.id, "eni-1");
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].1.address, addr("10.0.1.5"));
    assert_eq!(ds.stats().assigned, 1);
    assert_eq!(ds.eni_count(), 1);
}

#[test]
fn eni_needing_cidrs_skips_full_and_optionally_primary() {
    let (mut ds, _) = store(false);
    ds.add_eni(eni(0, true, &refs(&ips(0, 2)))).unwrap();
    ds.add_eni(eni(1, false, &refs(&ips(1, 1)))).unwrap();
    assert_eq!(ds.eni_needing_cidrs(3, false).unwrap().id, "eni-0");
    assert_eq!(ds.eni_needing_cidrs(2, false).unwrap().id, "eni-1");
    assert_eq!(ds.eni_needing_cidrs(3, true).unwrap().id, "eni-1");
    assert!(ds.eni_needing_cidrs(1, false).is_none());
}

#[test]
fn restore_allocation_refusals() {
    let (mut ds, _) = store(false);
    ds.add_eni(eni(0, true, &["10.0.0.5/32", "10.0.0.6/32"]))
        .unwrap();
    ds.restore_allocation(key(1), addr("10.0.0.5"), t(0), meta())
        .unwrap();
    assert_eq!(
        ds.restore_allocation(key(2), addr("10.9.9.9"), t(0), meta()),
        Err(DataStoreError::AddressNotFound(addr("10.9.9.9")))
    );
    assert!(matches!(
        ds.restore_allocation(key(2), addr("10.0.0.5"), t(0), meta()),
        Err(DataStoreError::AddressTaken { .. })
    ));
    assert!(matches!(
        ds.restore_allocation(key(1), addr("10.0.0.6"), t(0), meta()),
        Err(DataStoreError::KeyTaken { .. })
    ));
    // A restored address is held: a new key gets the other one.
    assert_eq!(
        ds.assign(&key(3), meta()).unwrap().address,
        addr("10.0.0.6")
    );
}
