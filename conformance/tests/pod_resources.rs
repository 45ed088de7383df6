//! The kubelet's PodResources v1 API: the `pod-resources` client against the stand-in server
//! generated from the same proto (`Get`, the `List` fallback of a kubelet without `Get`, a pod
//! the kubelet does not know, no kubelet at all). No root needed.

use std::time::Duration;

use conformance::kubelet_stand_in::KubeletStandIn;
use pod_resources::{pod_devices, ClaimDevice, PodResourcesError};

const TIMEOUT: Duration = Duration::from_secs(5);

fn kubelet(dir: &tempfile::TempDir) -> KubeletStandIn {
    let kubelet = KubeletStandIn::start(&dir.path().join("kubelet.sock"));
    kubelet.allocate(
        "default",
        "nfv-pod",
        "app",
        "example.com/vf",
        &["0000:81:00.3"],
    );
    kubelet.allocate(
        "default",
        "nfv-pod",
        "sidecar",
        "example.com/vf",
        &["0000:81:00.2"],
    );
    kubelet.allocate("default", "nfv-pod", "app", "example.com/vhost", &["vhu0"]);
    kubelet.allocate(
        "default",
        "other",
        "app",
        "example.com/vf",
        &["0000:81:00.4"],
    );
    kubelet.allocate_claim(
        "default",
        "nfv-pod",
        "app",
        "nfv-pod-data",
        ("vf.example.com", "node-1", "vf-3"),
    );
    kubelet
}

#[test]
fn get_answers_the_pods_devices_sorted_by_resource_and_its_claims() {
    let dir = tempfile::tempdir().unwrap();
    let kubelet = kubelet(&dir);
    let devices = pod_devices(kubelet.socket(), "default", "nfv-pod", TIMEOUT).unwrap();
    assert_eq!(
        devices.resources["example.com/vf"],
        ["0000:81:00.2", "0000:81:00.3"]
    );
    assert_eq!(devices.resources["example.com/vhost"], ["vhu0"]);
    assert_eq!(
        devices.claims,
        [ClaimDevice {
            claim_namespace: "default".into(),
            claim_name: "nfv-pod-data".into(),
            driver: "vf.example.com".into(),
            pool: "node-1".into(),
            device: "vf-3".into(),
        }]
    );
    assert_eq!(kubelet.calls(), ["Get"]);
}

#[test]
fn a_kubelet_without_get_is_asked_to_list() {
    let dir = tempfile::tempdir().unwrap();
    let kubelet = kubelet(&dir);
    kubelet.set_get_unimplemented(true);
    let devices = pod_devices(kubelet.socket(), "default", "nfv-pod", TIMEOUT).unwrap();
    assert_eq!(
        devices.resources["example.com/vf"],
        ["0000:81:00.2", "0000:81:00.3"]
    );
    assert_eq!(devices.claims.len(), 1);
    assert_eq!(kubelet.calls(), ["Get", "List"]);
    // List names every pod: only this one's devices are taken.
    let other = pod_devices(kubelet.socket(), "default", "other", TIMEOUT).unwrap();
    assert_eq!(other.resources["example.com/vf"], ["0000:81:00.4"]);
    assert_eq!(other.resources.len(), 1);
}

#[test]
fn a_pod_the_kubelet_does_not_know_has_no_devices() {
    let dir = tempfile::tempdir().unwrap();
    let kubelet = kubelet(&dir);
    let devices = pod_devices(kubelet.socket(), "default", "unknown", TIMEOUT).unwrap();
    assert!(devices.resources.is_empty() && devices.claims.is_empty());
    kubelet.set_get_unimplemented(true);
    let devices = pod_devices(kubelet.socket(), "elsewhere", "nfv-pod", TIMEOUT).unwrap();
    assert!(devices.resources.is_empty());
}

#[test]
fn no_kubelet_is_a_connect_error_naming_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("kubelet.sock");
    let e = pod_devices(&socket, "default", "nfv-pod", TIMEOUT).unwrap_err();
    assert!(matches!(e, PodResourcesError::Connect { .. }), "{e:?}");
    assert!(e.to_string().contains("kubelet.sock"), "{e}");
}
