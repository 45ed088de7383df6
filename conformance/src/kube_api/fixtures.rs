//! Test objects shaped exactly as kube-apiserver returns them, from `conformance/fixtures/`.

use std::path::PathBuf;

use serde_json::Value;

/// The directory of the fixture files.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The fixture `name` (`pod-three-networks`, `nad-net-a.json`, ...; `.json` optional),
/// parsed. Panics, naming the file, when it is missing or not JSON.
pub fn fixture(name: &str) -> Value {
    let file = if name.ends_with(".json") {
        name.to_owned()
    } else {
        format!("{name}.json")
    };
    let path = fixtures_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse fixture {}: {e}", path.display()))
}
