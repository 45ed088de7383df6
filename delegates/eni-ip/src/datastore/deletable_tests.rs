//! getDeletableENI's checks, one reason at a time, then the targets.

use std::time::Duration;

use super::*;
use crate::test_util::*;

const NO_TARGETS: DeletableTargets = DeletableTargets {
    warm_ip_target: 0,
    minimum_ip_target: 0,
    warm_prefix_target: 0,
};

#[test]
fn each_reason_an_eni_is_kept() {
    type Setup = fn(&mut DataStore, &crate::ManualClock);
    let cases: Vec<(&str, Setup, Result<(), NotDeletable>)> = vec![
        ("idle secondary ENI", |_, _| {}, Ok(())),
        (
            "primary",
            |ds, _| {
                ds.remove_eni("eni-1", true).unwrap();
                let mut e = eni(1, true, &["10.0.1.1/32"]);
                e.id = "eni-1".into();
                ds.add_eni(e).unwrap();
            },
            Err(NotDeletable::Primary),
        ),
        (
            "attached 59 s ago",
            |ds, _| {
                ds.remove_eni("eni-1", true).unwrap();
                let mut e = eni(1, false, &["10.0.1.1/32"]);
                e.attached_at = t(0) - Duration::from_secs(59);
                ds.add_eni(e).unwrap();
            },
            Err(NotDeletable::TooYoung),
        ),
        (
            "IP released 10 s ago",
            |ds, clock| {
                ds.assign(&key(1), meta()).unwrap();
                ds.release(&key(1));
                clock.advance(Duration::from_secs(10));
            },
            Err(NotDeletable::IpInCooldown),
        ),
        (
            "IP released 30 s ago",
            |ds, clock| {
                ds.assign(&key(1), meta()).unwrap();
                ds.release(&key(1));
                clock.advance(Duration::from_secs(30));
            },
            Ok(()),
        ),
        (
            "a pod on it",
            |ds, _| {
                ds.assign(&key(1), meta()).unwrap();
            },
            Err(NotDeletable::HasPods),
        ),
        (
            "trunk",
            |ds, _| {
                let (mut e, _) = ds.remove_eni("eni-1", true).unwrap();
                e.trunk = true;
                ds.add_eni(e).unwrap();
            },
            Err(NotDeletable::Trunk),
        ),
        (
            "EFA",
            |ds, _| {
                let (mut e, _) = ds.remove_eni("eni-1", true).unwrap();
                e.efa = true;
                ds.add_eni(e).unwrap();
            },
            Err(NotDeletable::Efa),
        ),
    ];
    for (name, setup, want) in cases {
        let (mut ds, clock) = store(false);
        // The primary ENI is full, so the first assignment lands on eni-1.
        ds.add_eni(eni(0, true, &[])).unwrap();
        ds.add_eni(eni(1, false, &["10.0.1.1/32"])).unwrap();
        setup(&mut ds, &clock);
        assert_eq!(ds.check_deletable("eni-1", &NO_TARGETS), want, "{name}");
        assert_eq!(
            ds.deletable_eni(&NO_TARGETS).is_some(),
            want.is_ok(),
            "{name}"
        );
    }
    let (ds, _) = store(false);
    assert_eq!(
        ds.check_deletable("eni-7", &NO_TARGETS),
        Err(NotDeletable::UnknownEni)
    );
}

#[test]
fn enis_needed_for_the_targets_are_kept() {
    // Primary: 3 IPs, 1 held (2 free). eni-1: 4 free IPs.
    let build = || {
        let (mut ds, _) = store(false);
        ds.add_eni(eni(0, true, &refs(&ips(0, 3)))).unwrap();
        ds.add_eni(eni(1, false, &refs(&ips(1, 4)))).unwrap();
        fill(&mut ds, 0, 1);
        ds
    };
    // (warm, minimum, expected for eni-1)
    let cases = [
        (2, 0, Ok(())),
        (3, 0, Err(NotDeletable::RequiredForWarmIpTarget)),
        (0, 3, Ok(())),
        (0, 4, Err(NotDeletable::RequiredForMinimumIpTarget)),
        (1, 4, Err(NotDeletable::RequiredForMinimumIpTarget)),
    ];
    for (warm, minimum, want) in cases {
        let targets = DeletableTargets {
            warm_ip_target: warm,
            minimum_ip_target: minimum,
            warm_prefix_target: 0,
        };
        assert_eq!(
            build().check_deletable("eni-1", &targets),
            want,
            "warm {warm} min {minimum}"
        );
    }
}

#[test]
fn prefix_mode_targets_round_up_to_whole_prefixes() {
    // Primary: 1 prefix with 1 held (15 free). eni-1: 1 free prefix.
    let build = || {
        let (mut ds, _) = store(true);
        ds.add_eni(eni(0, true, &refs(&prefixes(0, 1)))).unwrap();
        ds.add_eni(eni(1, false, &refs(&prefixes(1, 1)))).unwrap();
        fill(&mut ds, 0, 1);
        ds
    };
    // (warm IP, minimum IP, warm prefix, expected). WARM_IP_TARGET 5 needs one whole prefix
    // (16) free elsewhere, and the primary has only 15.
    let cases = [
        (5, 0, 0, Err(NotDeletable::RequiredForWarmIpTarget)),
        (0, 16, 0, Ok(())),
        (0, 17, 0, Err(NotDeletable::RequiredForMinimumIpTarget)),
        (0, 0, 1, Err(NotDeletable::RequiredForWarmPrefixTarget)),
        (0, 0, 0, Ok(())),
    ];
    for (warm, minimum, warm_prefix, want) in cases {
        let targets = DeletableTargets {
            warm_ip_target: warm,
            minimum_ip_target: minimum,
            warm_prefix_target: warm_prefix,
        };
        assert_eq!(
            build().check_deletable("eni-1", &targets),
            want,
            "warm {warm} min {minimum} prefix {warm_prefix}"
        );
    }
}

#[test]
fn remove_unused_eni_takes_one_at_a_time() {
    let (mut ds, _) = store(false);
    ds.add_eni(eni(0, true, &[])).unwrap();
    ds.add_eni(eni(1, false, &["10.0.1.1/32"])).unwrap();
    ds.add_eni(eni(2, false, &["10.0.2.1/32"])).unwrap();
    assert_eq!(ds.remove_unused_eni(&NO_TARGETS).unwrap().id, "eni-1");
    assert_eq!(ds.remove_unused_eni(&NO_TARGETS).unwrap().id, "eni-2");
    assert!(ds.remove_unused_eni(&NO_TARGETS).is_none());
    assert_eq!(ds.eni_count(), 1);
}
