//! CI guard for `conformance/COVERAGE.md`: every CONFORMANCE.md statement has a
//! `statement_NN_...` test, and the table names exactly the tests the sources hold, so it
//! cannot drift. The check itself is `coverage --check` (src/bin/coverage.rs), which also
//! regenerates the table.

use std::process::Command;

#[test]
fn every_statement_has_a_test_and_the_table_is_current() {
    let out = Command::new(env!("CARGO_BIN_EXE_coverage"))
        .arg("--check")
        .output()
        .expect("run the coverage binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
