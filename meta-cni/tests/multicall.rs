//! The multi-call binary answers as the plugin it is linked as, and refuses other names.
//!
//! Being an integration test of this package also makes `cargo test --workspace` build the
//! `meta-cni` binary before any test runs, which the conformance suite relies on.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn run_as(name: &str) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join(name);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_meta-cni"), &link).unwrap();
    let out = Command::new(&link)
        .env_clear()
        .env("CNI_COMMAND", "VERSION")
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    (out.status.code().unwrap(), json)
}

#[test]
fn link_name_selects_the_plugin() {
    let (code, v) = run_as("loopback");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["cniVersion"], "1.1.0");
    assert_eq!(v["supportedVersions"].as_array().unwrap().len(), 7);
}

#[test]
fn unknown_name_is_a_clear_error() {
    let (code, e) = run_as("frobnicate");
    assert_ne!(code, 0);
    assert_eq!(e["code"], 7);
    assert!(e["msg"].as_str().unwrap().contains("frobnicate"), "{e}");
    assert!(e["details"].as_str().unwrap().contains("loopback"), "{e}");
}

#[test]
fn binary_is_where_the_conformance_suite_looks() {
    // conformance::plugin_set::meta_cni_binary expects target/<profile>/meta-cni.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_meta-cni"));
    assert_eq!(bin.file_name(), Some(Path::new("meta-cni").as_os_str()));
    assert!(
        bin.parent().unwrap().join("deps").is_dir(),
        "{}",
        bin.display()
    );
}
