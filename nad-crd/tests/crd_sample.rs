//! `samples/deploy/crd.yaml` is [`nad_crd::crd_yaml()`] and
//! `samples/deploy/multi-networkpolicy-crd.yaml` the MultiNetworkPolicy CRD, so the shipped
//! CRDs never drift from the types. `UPDATE_SAMPLES=1 cargo test -p nad-crd --test
//! crd_sample` rewrites them.

use std::path::PathBuf;

/// `samples/deploy/<file>` holds `yaml` under the generated-file header, or is rewritten
/// with it under `UPDATE_SAMPLES=1`.
fn generated(file: &str, yaml: String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/deploy")
        .join(file);
    let header = "# Generated from the nad-crd crate: \
                  UPDATE_SAMPLES=1 cargo test -p nad-crd --test crd_sample\n";
    let want = format!("{header}{yaml}");
    if std::env::var_os("UPDATE_SAMPLES").is_some_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let have =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        have == want,
        "{} differs from the crate's CRD; regenerate it with \
         UPDATE_SAMPLES=1 cargo test -p nad-crd --test crd_sample",
        path.display()
    );
}

#[test]
fn deploy_crd_yaml_is_generated() {
    generated("crd.yaml", nad_crd::crd_yaml());
}

#[test]
fn deploy_multi_network_policy_crd_yaml_is_generated() {
    generated(
        "multi-networkpolicy-crd.yaml",
        nad_crd::multi_network_policy_crd::multi_network_policy_crd_yaml(),
    );
}
