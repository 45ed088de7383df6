//! The multi-call binary answers as the plugin it is linked as, and refuses other names.

use conformance::plugin_set::meta_cni_binary;
use conformance::Call;

#[test]
fn unknown_name_is_a_clear_error() {
    let dir = tempfile_dir();
    let link = dir.join("frobnicate");
    std::os::unix::fs::symlink(meta_cni_binary(), &link).unwrap();
    let e = Call::binary(&link, "VERSION").run().fails_with(7);
    assert!(e["msg"].as_str().unwrap().contains("frobnicate"), "{e}");
    assert!(e["details"].as_str().unwrap().contains("loopback"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn link_name_selects_the_plugin() {
    let dir = tempfile_dir();
    let link = dir.join("loopback");
    std::os::unix::fs::symlink(meta_cni_binary(), &link).unwrap();
    let v = Call::binary(&link, "VERSION").run().success();
    assert_eq!(v["cniVersion"], "1.1.0");
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "meta-cni-multicall-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
