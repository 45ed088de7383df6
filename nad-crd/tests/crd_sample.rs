//! `samples/deploy/crd.yaml` is [`nad_crd::crd_yaml()`], so the shipped CRD never drifts from
//! the type. `UPDATE_SAMPLES=1 cargo test -p nad-crd --test crd_sample` rewrites it.

use std::path::PathBuf;

#[test]
fn deploy_crd_yaml_is_generated() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/deploy/crd.yaml");
    let header = "# Generated from the nad-crd crate: \
                  UPDATE_SAMPLES=1 cargo test -p nad-crd --test crd_sample\n";
    let want = format!("{header}{}", nad_crd::crd_yaml());
    if std::env::var_os("UPDATE_SAMPLES").is_some_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let have =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        have == want,
        "{} differs from nad_crd::crd_yaml(); regenerate it with \
         UPDATE_SAMPLES=1 cargo test -p nad-crd --test crd_sample",
        path.display()
    );
}
