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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use conformance::plugin_set::REFERENCE_DIR;

/// CONFORMANCE.md's statements are numbered 1..=STATEMENTS.
const STATEMENTS: u32 = 43;

const TABLE_FILE: &str = "conformance/COVERAGE.md";
const TESTS_DIR: &str = "conformance/tests";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("conformance lives in the workspace")
        .to_path_buf()
}

/// One test function that names statements.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct StatementTest {
    /// The test file's stem: `bridge` for `tests/bridge.rs`.
    file: String,
    /// The function name.
    name: String,
    /// The statements its name carries, in order.
    statements: Vec<u32>,
}

impl StatementTest {
    /// `file::name`, as the table shows it.
    fn id(&self) -> String {
        format!("{}::{}", self.file, self.name)
    }
}

/// The statement numbers of a test name: `statement_31_32_x` -> [31, 32]; not a statement
/// test -> None.
fn statement_numbers(name: &str) -> Option<Vec<u32>> {
    let rest = name.strip_prefix("statement_")?;
    let numbers: Vec<u32> = rest
        .split('_')
        .map_while(|part| part.parse().ok())
        .collect();
    (!numbers.is_empty()).then_some(numbers)
}

/// Every `fn statement_...` in the test files, sorted by file and name.
fn scan_tests(dir: &Path) -> Result<Vec<StatementTest>, String> {
    let mut tests = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("list {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("list {}: {e}", dir.display()))?
            .path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let file = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
        for line in text.lines() {
            let line = line.trim_start();
            let Some(rest) = line.strip_prefix("fn ").or(line.strip_prefix("async fn ")) else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if let Some(statements) = statement_numbers(&name) {
                tests.push(StatementTest {
                    file: file.clone(),
                    name,
                    statements,
                });
            }
        }
    }
    tests.sort();
    Ok(tests)
}

/// One CONFORMANCE.md statement.
#[derive(Debug, Clone)]
struct Statement {
    number: u32,
    /// `[U]` or `[R]`.
    mark: String,
    /// The section it is under (`bridge`, `Meta plugin`, ...).
    section: String,
    text: String,
}

/// The numbered statements of CONFORMANCE.md: `N. [U] text` lines under `## section`.
fn parse_statements(markdown: &str) -> Vec<Statement> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in markdown.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            section = title.trim().to_owned();
            continue;
        }
        let Some((number, rest)) = line.split_once(". ") else {
            continue;
        };
        let (Ok(number), Some(rest)) = (number.parse::<u32>(), rest.strip_prefix('[')) else {
            continue;
        };
        let Some((mark, text)) = rest.split_once("] ") else {
            continue;
        };
        out.push(Statement {
            number,
            mark: format!("[{mark}]"),
            section: section.clone(),
            text: text.trim().to_owned(),
        });
    }
    out
}

fn conformance_md() -> Result<(PathBuf, String), String> {
    let root = workspace();
    let candidates: Vec<PathBuf> = match std::env::var_os("CONFORMANCE_MD") {
        Some(path) => vec![PathBuf::from(path)],
        None => vec![
            root.join("CONFORMANCE.md"),
            root.join("conformance/CONFORMANCE.md"),
            root.join("../shared/CONFORMANCE.md"),
        ],
    };
    for path in &candidates {
        if let Ok(text) = std::fs::read_to_string(path) {
            return Ok((path.clone(), text));
        }
    }
    Err(format!(
        "no CONFORMANCE.md at {candidates:?}; set CONFORMANCE_MD to its path"
    ))
}

/// What one run of one test gave.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Pass,
    /// Passed, but printed that it skipped (part of) its work.
    Skipped(String),
    Fail,
    /// Does not run against this plugin set.
    NotApplicable,
    /// The run did not report it (did not compile, or was not run).
    Missing,
}

impl Outcome {
    fn cell(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Skipped(_) => "pass, skipped in part",
            Outcome::Fail => "**FAIL**",
            Outcome::NotApplicable => "n.a.",
            Outcome::Missing => "not run",
        }
    }
}

/// Parses libtest's output (run with `--show-output`): the `test NAME ... RESULT` lines and
/// the captured output of each test.
fn parse_test_output(stdout: &str) -> BTreeMap<String, Outcome> {
    let mut captured: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut results = Vec::new();
    for line in stdout.lines() {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            current = Some(name.to_owned());
            continue;
        }
        if line == "successes:" || line == "failures:" {
            current = None;
            continue;
        }
        if let Some(name) = &current {
            let text = captured.entry(name.clone()).or_default();
            text.push_str(line);
            text.push('\n');
            continue;
        }
        if let Some(rest) = line.strip_prefix("test ") {
            if let Some((name, result)) = rest.split_once(" ... ") {
                results.push((name.to_owned(), result.trim().to_owned()));
            }
        }
    }
    results
        .into_iter()
        .map(|(name, result)| {
            let output = captured.get(&name).map(String::as_str).unwrap_or("");
            let outcome = if result == "ok" {
                match output
                    .lines()
                    .find(|l| l.trim_start().starts_with("skipped"))
                {
                    Some(line) => Outcome::Skipped(line.trim().to_owned()),
                    None => Outcome::Pass,
                }
            } else {
                Outcome::Fail
            };
            (name, outcome)
        })
        .collect()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace());
    cmd
}

/// Runs the statement tests of `files` against our plugins, one test binary after another.
fn run_ours(files: &BTreeSet<&str>) -> Result<BTreeMap<(String, String), Outcome>, String> {
    let mut outcomes = BTreeMap::new();
    for file in files {
        eprintln!("coverage: ours: cargo test --test {file}");
        let out = cargo()
            .args([
                "test",
                "-p",
                "conformance",
                "--test",
                file,
                "--",
                "statement_",
            ])
            .arg("--show-output")
            .env("CONFORMANCE_PLUGINS", "ours")
            .output()
            .map_err(|e| format!("run cargo test --test {file}: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if stdout.trim().is_empty() {
            return Err(format!(
                "cargo test --test {file} ran nothing:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        for (name, outcome) in parse_test_output(&stdout) {
            outcomes.insert((file.to_string(), name), outcome);
        }
    }
    Ok(outcomes)
}

/// The test executables of the conformance package, by file stem, built if need be.
fn test_executables() -> Result<BTreeMap<String, PathBuf>, String> {
    let out = cargo()
        .args(["test", "-p", "conformance", "--tests", "--no-run"])
        .arg("--message-format=json")
        .output()
        .map_err(|e| format!("run cargo test --no-run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo test --no-run failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut exes = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_test = msg["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "test"));
        if let (true, Some(name), Some(exe)) = (
            is_test,
            msg["target"]["name"].as_str(),
            msg["executable"].as_str(),
        ) {
            exes.insert(name.to_owned(), PathBuf::from(exe));
        }
    }
    Ok(exes)
}

/// Runs each statement test against the reference plugins, one at a time, with our binary
/// replaced by a tripwire: a test that runs it (directly, through a link or a copy) needs
/// our plugins, so it does not apply to the reference.
fn run_reference(tests: &[StatementTest]) -> Result<BTreeMap<(String, String), Outcome>, String> {
    let exes = test_executables()?;
    let dir = std::env::temp_dir().join(format!("meta-cni-coverage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let tripped = dir.join("tripped");
    let tripwire = dir.join("meta-cni");
    std::fs::write(
        &tripwire,
        format!(
            "#!/bin/sh\necho \"$0\" >> '{}'\n\
             echo '{{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"our plugins are hidden\"}}'\n\
             exit 1\n",
            tripped.display()
        ),
    )
    .and_then(|()| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tripwire, std::fs::Permissions::from_mode(0o755))
    })
    .map_err(|e| format!("write {}: {e}", tripwire.display()))?;

    let mut outcomes = BTreeMap::new();
    for test in tests {
        let exe = exes
            .get(&test.file)
            .ok_or_else(|| format!("no test executable for {}", test.file))?;
        eprintln!("coverage: reference: {}", test.id());
        let _ = std::fs::remove_file(&tripped);
        let out = Command::new(exe)
            .args(["--exact", &test.name, "--show-output"])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
            .env("CONFORMANCE_PLUGINS", "reference")
            .env("META_CNI_BIN", &tripwire)
            .output()
            .map_err(|e| format!("run {}: {e}", exe.display()))?;
        let outcome = if tripped.exists() {
            Outcome::NotApplicable
        } else {
            parse_test_output(&String::from_utf8_lossy(&out.stdout))
                .remove(&test.name)
                .unwrap_or(Outcome::Missing)
        };
        outcomes.insert((test.file.clone(), test.name.clone()), outcome);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(outcomes)
}

/// A table cell: one line, no `|`, at most `max` characters, cut at a word.
fn cell_text(text: &str, max: usize) -> String {
    let text = text.replace('|', "\\|");
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max).collect();
    if let Some(space) = cut.rfind(' ') {
        cut.truncate(space);
    }
    // An unbalanced backtick would swallow the rest of the row.
    if cut.matches('`').count() % 2 == 1 {
        cut.push('`');
    }
    cut.push_str(" …");
    cut
}

fn render(
    source: &str,
    statements: &[Statement],
    tests: &[StatementTest],
    ours: &BTreeMap<(String, String), Outcome>,
    reference: Option<&BTreeMap<(String, String), Outcome>>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Statement coverage\n\n\
         Every statement of {source} and the `statement_NN_...` tests (in `{TESTS_DIR}`) that \
         check it. Generated: `cargo run -p conformance --bin coverage` (as root; it runs \
         the tests). `cargo test -p conformance --test coverage` fails when a statement has \
         no test or this table names other tests than the sources do.\n\n\
         - **ours**: the test run with `CONFORMANCE_PLUGINS=ours`.\n\
         - **reference**: run with `CONFORMANCE_PLUGINS=reference` (the plugins in \
         `{REFERENCE_DIR}`), our binary replaced by a tripwire; **n.a.** when the test ran \
         our binary all the same: it needs our plugins (the reference has no meta plugin).\n\
         - **pass, skipped in part**: it passed but printed that this machine lacks \
         something; see the notes below the table.\n"
    );
    md.push_str("| # | statement | test | ours | reference |\n|---|---|---|---|---|\n");
    let mut notes = Vec::new();
    for statement in statements {
        let covering: Vec<&StatementTest> = tests
            .iter()
            .filter(|t| t.statements.contains(&statement.number))
            .collect();
        let text = format!(
            "{} {}: {}",
            statement.mark,
            statement.section,
            cell_text(&statement.text, 110)
        );
        if covering.is_empty() {
            let _ = writeln!(md, "| {} | {text} | **no test** | | |", statement.number);
        }
        for (i, test) in covering.iter().enumerate() {
            let key = (test.file.clone(), test.name.clone());
            let outcome = |runs: Option<&BTreeMap<(String, String), Outcome>>| match runs {
                None => Outcome::Missing,
                Some(runs) => runs.get(&key).cloned().unwrap_or(Outcome::Missing),
            };
            let (o, r) = (outcome(Some(ours)), outcome(reference));
            for (set, outcome) in [("ours", &o), ("reference", &r)] {
                if let Outcome::Skipped(line) = outcome {
                    let note = format!("`{}` ({set}): {line}", test.id());
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
            }
            let (number, text) = if i == 0 {
                (statement.number.to_string(), text.as_str())
            } else {
                (String::new(), "")
            };
            let _ = writeln!(
                md,
                "| {number} | {text} | `{}` | {} | {} |",
                test.id(),
                o.cell(),
                r.cell()
            );
        }
    }
    if !notes.is_empty() {
        md.push_str("\nNotes:\n\n");
        for note in notes {
            let _ = writeln!(md, "- {}", cell_text(&note, 200));
        }
    }
    md
}

/// The (statement, test id) pairs the table lists.
fn listed_in_table(table: &str) -> BTreeSet<(u32, String)> {
    let mut pairs = BTreeSet::new();
    let mut statement = None;
    for line in table.lines() {
        let cells: Vec<&str> = line.split(" | ").collect();
        if !line.starts_with("| ") || cells.len() < 3 {
            continue;
        }
        let first = cells[0].trim_start_matches('|').trim();
        if let Ok(n) = first.parse::<u32>() {
            statement = Some(n);
        } else if !first.is_empty() {
            continue; // the header
        }
        let test = cells[2].trim();
        if let (Some(n), Some(id)) = (
            statement,
            test.strip_prefix('`').and_then(|t| t.strip_suffix('`')),
        ) {
            pairs.insert((n, id.to_owned()));
        }
    }
    pairs
}

/// Every problem that makes the table wrong or a statement untested.
fn check(tests: &[StatementTest], table: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for n in 1..=STATEMENTS {
        if !tests.iter().any(|t| t.statements.contains(&n)) {
            problems.push(format!(
                "statement {n} has no test: name one `statement_{n:02}_...` in {TESTS_DIR}"
            ));
        }
    }
    for t in tests {
        for n in &t.statements {
            if !(1..=STATEMENTS).contains(n) {
                problems.push(format!(
                    "{} names statement {n}, which does not exist",
                    t.id()
                ));
            }
        }
    }
    let wanted: BTreeSet<(u32, String)> = tests
        .iter()
        .flat_map(|t| t.statements.iter().map(|n| (*n, t.id())))
        .filter(|(n, _)| (1..=STATEMENTS).contains(n))
        .collect();
    let listed = listed_in_table(table);
    for (n, id) in wanted.difference(&listed) {
        problems.push(format!("{TABLE_FILE} does not list {id} for statement {n}"));
    }
    for (n, id) in listed.difference(&wanted) {
        problems.push(format!(
            "{TABLE_FILE} lists {id} for statement {n}, but no such test checks it"
        ));
    }
    if listed.len() != wanted.len() || problems.iter().any(|p| p.contains(TABLE_FILE)) {
        problems.push(format!(
            "regenerate {TABLE_FILE}: cargo run -p conformance --bin coverage"
        ));
    }
    problems
}

fn generate() -> Result<(), String> {
    let root = workspace();
    let (source_path, source) = conformance_md()?;
    let statements = parse_statements(&source);
    let numbers: Vec<u32> = statements.iter().map(|s| s.number).collect();
    if numbers != (1..=STATEMENTS).collect::<Vec<_>>() {
        return Err(format!(
            "{} numbers its statements {numbers:?}; this generator expects 1..={STATEMENTS}: \
             update STATEMENTS",
            source_path.display()
        ));
    }
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
            STATEMENTS,
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
    use super::*;

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
        let statements: Vec<Statement> = (1..=STATEMENTS)
            .map(|number| Statement {
                number,
                mark: "[U]".into(),
                section: "S".into(),
                text: "a `long` | text ".repeat(12),
            })
            .collect();
        let mut tests: Vec<StatementTest> = (1..=STATEMENTS)
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
        assert_eq!(listed_in_table(&table).len(), STATEMENTS as usize + 2);

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
