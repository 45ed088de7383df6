//! Checkpoint file tests: the fixture in the exact upstream layout, restore, atomic writes.

use std::time::Duration;

use super::*;
use crate::test_util::*;

/// What aws-node writes, in the exact layout (entries in key order, so our re-encoding
/// is byte-identical; Go's order is its map's, which any reader must accept).
const FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/ipam.json");

/// The ENIs the fixture's addresses live on: a secondary IP on each ENI and a prefix.
fn node() -> DataStore {
    node_in(false)
}

fn node_in(prefix_delegation: bool) -> DataStore {
    let (mut ds, _) = store(prefix_delegation);
    ds.add_eni(eni(0, true, &["10.0.1.20/32"])).unwrap();
    ds.add_eni(eni(1, false, &["10.0.1.60/32", "10.100.0.0/28"]))
        .unwrap();
    ds
}

#[test]
fn fixture_reads_field_by_field() {
    let data = CheckpointData::parse(FIXTURE, Path::new("ipam.json")).unwrap();
    assert_eq!(data.version, "vpc-cni-ipam/1");
    assert_eq!(data.allocations.len(), 3);
    let web = &data.allocations[0];
    assert_eq!(
        (
            web.network_name.as_str(),
            web.if_name.as_str(),
            web.ipv4.as_str()
        ),
        ("aws-cni", "eth0", "10.0.1.60")
    );
    assert_eq!(web.allocation_timestamp, 1_763_712_000_000_000_000);
    assert_eq!(
        web.metadata,
        CheckpointMetadata {
            k8s_pod_namespace: "default".into(),
            k8s_pod_name: "web-2".into(),
            interfaces_count: 1,
        }
    );
    assert_eq!(data.allocations[1].metadata.interfaces_count, 0);
    assert_eq!(data.allocations[2].metadata, CheckpointMetadata::default());
}

#[test]
fn fixture_round_trips_byte_for_byte_through_a_datastore() {
    let data = CheckpointData::parse(FIXTURE, Path::new("ipam.json")).unwrap();
    let mut ds = node();
    let report = restore(&mut ds, &data);
    assert!(report.dropped.is_empty(), "{:?}", report.dropped);
    assert_eq!(report.restored.len(), 3);
    let web = ds
        .allocations()
        .find(|(_, a)| a.metadata.pod_name == "web-2")
        .unwrap()
        .1;
    assert_eq!((web.eni_id.as_str(), web.device_index), ("eni-1", 1));
    assert_eq!(
        web.allocated_at,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_712_000)
    );
    let out = CheckpointData::from_datastore(&ds).to_json();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        String::from_utf8(FIXTURE.to_vec()).unwrap()
    );
}

#[test]
fn restored_addresses_are_held() {
    let data = CheckpointData::parse(FIXTURE, Path::new("ipam.json")).unwrap();
    let mut ds = node_in(true);
    restore(&mut ds, &data);
    // The prefix's .3 is held; new pods get .0, .1, .2, .4…
    let got: Vec<String> = (0..4)
        .map(|k| ds.assign(&key(k), meta()).unwrap().address.to_string())
        .collect();
    assert_eq!(
        got,
        ["10.100.0.0", "10.100.0.1", "10.100.0.2", "10.100.0.4"]
    );
}

#[test]
fn restore_drops_stale_and_unusable_entries_and_reports_them() {
    let mut data = CheckpointData::parse(FIXTURE, Path::new("ipam.json")).unwrap();
    let base = data.allocations[0].clone();
    let variant = |id: &str, ipv4: &str, ipv6: &str| CheckpointEntry {
        container_id: id.into(),
        ipv4: ipv4.into(),
        ipv6: ipv6.into(),
        ..base.clone()
    };
    data.allocations.extend([
        variant("gone", "10.0.9.9", ""),
        variant("v6", "", "2001:db8::5"),
        variant("bad", "10.0.1.999", ""),
        variant("dup-address", "10.0.1.60", ""),
    ]);
    data.allocations.push(data.allocations[0].clone()); // the same key twice
                                                        // The ENI holding 10.0.1.20 is gone since the file was written.
    let mut ds = node();
    ds.remove_eni("eni-0", false).unwrap();
    let report = restore(&mut ds, &data);
    assert_eq!(report.restored.len(), 2);
    let dropped: Vec<(String, String)> = report
        .dropped
        .iter()
        .map(|(e, why)| (e.container_id.chars().take(11).collect(), why.to_string()))
        .collect();
    assert_eq!(
        dropped,
        vec![
            (
                "5c6d7e8f90a".to_string(),
                "10.0.1.20 is not on any ENI".to_string()
            ),
            ("gone".to_string(), "10.0.9.9 is not on any ENI".to_string()),
            ("v6".to_string(), "no IPv4 address".to_string()),
            (
                "bad".to_string(),
                "invalid IPv4 address \"10.0.1.999\"".to_string()
            ),
            (
                "dup-address".to_string(),
                format!(
                    "10.0.1.60 is already assigned to aws-cni/{}/eth0",
                    base.container_id
                )
            ),
            (
                "0a1b2c3d4e5".to_string(),
                format!("aws-cni/{}/eth0 already holds 10.0.1.60", base.container_id)
            ),
        ]
    );
}

#[test]
fn atomic_write_replaces_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipam.json");
    assert!(read(&path).unwrap().is_none(), "a fresh node has no file");
    let mut ds = node();
    fill(&mut ds, 0, 1);
    let first = CheckpointData::from_datastore(&ds);
    write_atomic(&path, &first).unwrap();
    assert_eq!(read(&path).unwrap(), Some(first));
    fill(&mut ds, 1, 1);
    let second = CheckpointData::from_datastore(&ds);
    write_atomic(&path, &second).unwrap();
    assert_eq!(read(&path).unwrap(), Some(second.clone()));
    assert_eq!(std::fs::read(&path).unwrap(), second.to_json());
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["ipam.json"]);
}

#[test]
fn empty_store_writes_an_empty_list() {
    let (ds, _) = store(false);
    assert_eq!(
        CheckpointData::from_datastore(&ds).to_json(),
        b"{\"version\":\"vpc-cni-ipam/1\",\"allocations\":[]}\n"
    );
}

#[test]
fn write_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing/ipam.json");
    let err = write_atomic(&path, &CheckpointData::from_datastore(&node())).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("create temporary file in "), "{text}");
    assert!(text.contains("missing"), "{text}");
}
