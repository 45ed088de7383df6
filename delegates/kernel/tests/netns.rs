//! Namespace handles, guards, private and pinned namespaces.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use kernel::{Netns, PrivateNetns};

#[test]
fn open_missing_path_is_not_found() {
    let err = Netns::open(Path::new("/proc/self/ns/does-not-exist-xyz")).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("does-not-exist-xyz"), "{err}");
}

#[test]
fn open_regular_file_is_rejected() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let err = Netns::open(file.path()).unwrap_err();
    assert!(!err.is_not_found());
    assert!(err.to_string().contains("not a namespace"), "{err}");
}

#[test]
fn open_other_namespace_type_is_rejected() {
    let err = Netns::open(Path::new("/proc/thread-self/ns/uts")).unwrap_err();
    assert!(err.to_string().contains("not a network namespace"), "{err}");
}

#[test]
fn private_netns_is_distinct_and_openable() {
    let private = PrivateNetns::new().unwrap();
    let path = private.path();
    assert!(path.starts_with("/proc"));
    let ns = Netns::open(&path).unwrap();
    assert!(!ns.same_as(&Netns::current().unwrap()).unwrap());
    assert!(ns.same_as(&private.netns().unwrap()).unwrap());
    drop(private);
    // join() returns when the thread has exited; the kernel reaps its /proc entry a moment
    // later, which a loaded machine can stretch.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while path.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(!path.exists(), "helper thread still alive after drop");
}

#[test]
fn guard_restores_namespace() {
    let before = Netns::current().unwrap();
    let private = PrivateNetns::new().unwrap();
    let ns = private.netns().unwrap();
    {
        let _guard = ns.enter().unwrap();
        assert!(Netns::current().unwrap().same_as(&ns).unwrap());
    }
    assert!(Netns::current().unwrap().same_as(&before).unwrap());
    let inside = ns.run(|| Netns::current().unwrap()).unwrap();
    assert!(inside.same_as(&ns).unwrap());
    assert!(Netns::current().unwrap().same_as(&before).unwrap());
}

#[test]
fn guard_restores_namespace_after_panic() {
    let before = Netns::current().unwrap();
    let private = PrivateNetns::new().unwrap();
    let ns = private.netns().unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _guard = ns.enter().unwrap();
        assert!(Netns::current().unwrap().same_as(&ns).unwrap());
        panic!("deliberate panic inside the namespace");
    }));
    assert!(result.is_err());
    assert!(Netns::current().unwrap().same_as(&before).unwrap());
}
