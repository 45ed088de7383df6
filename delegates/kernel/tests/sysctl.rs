//! sysctl access, scoped to a private namespace.

mod common;

use kernel::sysctl;

#[test]
fn ip_forward_changes_only_inside_namespace() {
    let root_before = sysctl::read("net.ipv4.ip_forward").unwrap();
    let sb = common::sandbox();
    let inside = sb
        .ns
        .run(|| {
            let initial = sysctl::read("net.ipv4.ip_forward").unwrap();
            let wanted = if initial == "1" { "0" } else { "1" };
            sysctl::write("net.ipv4.ip_forward", wanted).unwrap();
            assert_eq!(sysctl::read("net/ipv4/ip_forward").unwrap(), wanted);
            wanted.to_owned()
        })
        .unwrap();
    assert_eq!(sysctl::read("net.ipv4.ip_forward").unwrap(), root_before);
    // The value sticks in the namespace.
    let again = sb
        .ns
        .run(|| sysctl::read("net.ipv4.ip_forward").unwrap())
        .unwrap();
    assert_eq!(again, inside);
}

#[test]
fn path_form_handles_dotted_interface_names() {
    let sb = common::sandbox();
    sb.ns
        .run(|| {
            sysctl::write_path(&["net", "ipv6", "conf", "lo", "disable_ipv6"], "1").unwrap();
            let v = sysctl::read_path(&["net", "ipv6", "conf", "lo", "disable_ipv6"]).unwrap();
            assert_eq!(v, "1");
        })
        .unwrap();
}

#[test]
fn invalid_keys_are_refused() {
    for key in [
        "",
        "/proc/sys/net/ipv4/ip_forward",
        "net..ipv4",
        "net/../../etc/passwd",
        "net/ipv4/",
    ] {
        let err = sysctl::read(key).unwrap_err();
        assert!(err.to_string().contains("sysctl key"), "{key}: {err}");
        assert!(matches!(err, kernel::Error::Invalid { .. }), "{key}: {err}");
    }
    let err = sysctl::write_path(&["net", "..", "x"], "1").unwrap_err();
    assert!(err.to_string().contains("net/../x"), "{err}");
    let err = sysctl::read("net.ipv4.no_such_key").unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

/// `list_path` names a directory's parameters, in the namespace the thread is in.
#[test]
fn list_path_names_an_interfaces_parameters() {
    let sb = common::sandbox();
    let keys = sb
        .ns
        .run(|| kernel::sysctl::list_path(&["net", "ipv4", "conf", "lo"]))
        .unwrap()
        .unwrap();
    assert!(keys.contains(&"arp_notify".to_string()), "{keys:?}");
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "sorted");
    let missing = sb
        .ns
        .run(|| kernel::sysctl::list_path(&["net", "ipv4", "conf", "nosuchif"]))
        .unwrap();
    assert!(missing.is_err());
}
