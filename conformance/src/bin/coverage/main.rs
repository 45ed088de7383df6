//! The statement coverage table, `conformance/COVERAGE.md`: for every CONFORMANCE.md
//! statement, the tests that check it and how they fare against our plugins and against the
//! reference plugins.
//!
//! - `cargo run -p conformance --bin coverage` runs every `statement_NN_...` test twice
//!   (`CONFORMANCE_PLUGINS=ours`; then `=reference`, one test at a time, with our binary
//!   replaced by a tripwire, so a test that runs ours shows as n.a. for the reference) and
//!   writes the table. It reads the
//!   statements from CONFORMANCE.md: `$CONFORMANCE_MD`, else the first of
//!   `CONFORMANCE.md`, `conformance/CONFORMANCE.md`, `../shared/CONFORMANCE.md` (from the
//!   workspace root) that exists.
//! - `coverage --check` (run by `tests/coverage.rs`) fails when a statement has no test, or
//!   when the table lists other tests than the sources hold. It runs nothing.
//!
//! A test names the statements it checks in its name: `statement_31_32_three_networks...`
//! checks 31 and 32. Only `conformance/tests/*.rs` is scanned; nothing else names tests so.

mod runs;
mod sources;
mod table;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use conformance::plugin_set::REFERENCE_DIR;
use runs::{cargo, run_ours, run_reference};
use sources::{conformance_md, parse_statements, scan_tests, workspace};
use table::{check, render};

/// The statements of CONFORMANCE.md that must each have a test, as inclusive ranges; the
/// others belong to work still open and join as it lands.
pub(crate) const IN_FORCE: &[(u32, u32)] = &[(1, 51)];

/// Whether statement `n` is in force.
pub(crate) fn in_force(n: u32) -> bool {
    IN_FORCE
        .iter()
        .any(|&(first, last)| (first..=last).contains(&n))
}

/// The statements in force, in order.
pub(crate) fn statements_in_force() -> impl Iterator<Item = u32> {
    IN_FORCE.iter().flat_map(|&(first, last)| first..=last)
}

/// The highest statement in force: CONFORMANCE.md must number at least this many.
fn last_in_force() -> u32 {
    statements_in_force().max().unwrap_or(0)
}

pub(crate) const TABLE_FILE: &str = "conformance/COVERAGE.md";
pub(crate) const TESTS_DIR: &str = "conformance/tests";

fn generate() -> Result<(), String> {
    let root = workspace();
    let (source_path, source) = conformance_md()?;
    let mut statements = parse_statements(&source);
    let numbers: Vec<u32> = statements.iter().map(|s| s.number).collect();
    let last = numbers.len() as u32;
    if numbers != (1..=last).collect::<Vec<_>>() || last < last_in_force() {
        return Err(format!(
            "{} numbers its statements {numbers:?}; this generator expects 1..=N with N at \
             least {}: update IN_FORCE",
            source_path.display(),
            last_in_force()
        ));
    }
    statements.retain(|s| in_force(s.number));
    let tests = scan_tests(&root.join(TESTS_DIR))?;
    let files: BTreeSet<&str> = tests.iter().map(|t| t.file.as_str()).collect();

    let build = cargo()
        .args(["build", "-p", "meta-cni"])
        .status()
        .map_err(|e| format!("run cargo build: {e}"))?;
    if !build.success() {
        return Err("cargo build -p meta-cni failed".into());
    }
    let ours = run_ours(&files)?;
    let reference = if Path::new(REFERENCE_DIR).join("loopback").exists() {
        Some(run_reference(&tests)?)
    } else {
        eprintln!("coverage: no reference plugins in {REFERENCE_DIR}; that column stays empty");
        None
    };
    let table = render(
        "CONFORMANCE.md",
        &statements,
        &tests,
        &ours,
        reference.as_ref(),
    );
    let path = root.join(TABLE_FILE);
    std::fs::write(&path, &table).map_err(|e| format!("write {}: {e}", path.display()))?;
    eprintln!("coverage: wrote {}", path.display());
    for problem in check(&tests, &table) {
        eprintln!("coverage: {problem}");
    }
    Ok(())
}

fn check_only() -> Result<(), String> {
    let root = workspace();
    let tests = scan_tests(&root.join(TESTS_DIR))?;
    let path = root.join(TABLE_FILE);
    // A missing table lists nothing: every test then shows up as unlisted.
    let table = match std::fs::read_to_string(&path) {
        Ok(table) => table,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("read {}: {e}", path.display())),
    };
    let problems = check(&tests, &table);
    if problems.is_empty() {
        println!(
            "{} statements, {} tests, {TABLE_FILE} current",
            statements_in_force().count(),
            tests.len()
        );
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn main() -> ExitCode {
    let result = match std::env::args().nth(1).as_deref() {
        None => generate(),
        Some("--check") => check_only(),
        Some(other) => Err(format!(
            "unknown argument {other:?}; usage: coverage [--check]"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coverage: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::runs::{parse_test_output, Outcome};
    use crate::sources::{statement_numbers, Statement, StatementTest};
    use crate::table::{cell_text, listed_in_table};

    #[test]
    fn statement_numbers_come_from_the_name() {
        assert_eq!(
            statement_numbers("statement_31_32_three"),
            Some(vec![31, 32])
        );
        assert_eq!(statement_numbers("statement_06_result"), Some(vec![6]));
        assert_eq!(statement_numbers("statement_x"), None);
        assert_eq!(statement_numbers("helper"), None);
    }

    #[test]
    fn statements_are_read_with_their_section_and_mark() {
        let md = "# T\n## Protocol (all)\n1. [U] VERSION works.\n2. [R] ADD `x|y`.\nnot one\n";
        let s = parse_statements(md);
        assert_eq!(s.len(), 2);
        assert_eq!((s[1].number, s[1].mark.as_str()), (2, "[R]"));
        assert_eq!(s[1].section, "Protocol (all)");
        assert_eq!(s[1].text, "ADD `x|y`.");
    }

    #[test]
    fn libtest_output_gives_outcomes() {
        let out = "running 3 tests\ntest a ... ok\ntest b ... FAILED\ntest c ... ok\n\n\
                   successes:\n\n---- c stdout ----\nskipped: no vlan here\n\nsuccesses:\n    c\n\n\
                   failures:\n\n---- b stdout ----\nthread 'b' panicked\n\nfailures:\n    b\n";
        let o = parse_test_output(out);
        assert_eq!(o["a"], Outcome::Pass);
        assert_eq!(o["b"], Outcome::Fail);
        assert_eq!(o["c"], Outcome::Skipped("skipped: no vlan here".into()));
    }

    #[test]
    fn rendered_table_passes_its_own_check_only_when_complete() {
        let statements: Vec<Statement> = statements_in_force()
            .map(|number| Statement {
                number,
                mark: "[U]".into(),
                section: "S".into(),
                text: "a `long` | text ".repeat(12),
            })
            .collect();
        let mut tests: Vec<StatementTest> = statements_in_force()
            .map(|n| StatementTest {
                file: "f".into(),
                name: format!("statement_{n:02}_x"),
                statements: vec![n],
            })
            .collect();
        tests.push(StatementTest {
            file: "g".into(),
            name: "statement_01_02_y".into(),
            statements: vec![1, 2],
        });
        let table = render("C", &statements, &tests, &BTreeMap::new(), None);
        assert_eq!(check(&tests, &table), Vec::<String>::new(), "{table}");
        assert_eq!(
            listed_in_table(&table).len(),
            statements_in_force().count() + 2
        );

        let fewer: Vec<StatementTest> = tests
            .iter()
            .filter(|t| t.name != "statement_03_x")
            .cloned()
            .collect();
        let problems = check(&fewer, &table);
        assert!(
            problems[0].starts_with("statement 3 has no test"),
            "{problems:?}"
        );
        assert!(problems
            .iter()
            .any(|p| p.contains("lists f::statement_03_x")));
    }

    #[test]
    fn cells_are_cut_at_a_word_and_keep_backticks_balanced() {
        assert_eq!(cell_text("short", 10), "short");
        assert_eq!(cell_text("a `bc de` fg", 6), "a `bc` …");
        assert_eq!(cell_text("x|y", 10), "x\\|y");
    }
}
