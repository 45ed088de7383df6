//! The table: rendered from the statements, tests and outcomes, and checked against the
//! sources.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use conformance::plugin_set::REFERENCE_DIR;

use crate::runs::Outcome;
use crate::sources::{Statement, StatementTest};
use crate::{is_required, required_statements, TABLE_FILE, TESTS_DIR};

/// A table cell: one line, no `|`, at most `max` characters, cut at a word.
pub(crate) fn cell_text(text: &str, max: usize) -> String {
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

pub(crate) fn render(
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
pub(crate) fn listed_in_table(table: &str) -> BTreeSet<(u32, String)> {
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
pub(crate) fn check(tests: &[StatementTest], table: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for n in required_statements() {
        if !tests.iter().any(|t| t.statements.contains(&n)) {
            problems.push(format!(
                "statement {n} has no test: name one `statement_{n:02}_...` in {TESTS_DIR}"
            ));
        }
    }
    for t in tests {
        for n in &t.statements {
            if !is_required(*n) {
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
        .filter(|(n, _)| is_required(*n))
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
