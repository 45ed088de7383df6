//! What the table is made from: the statements of CONFORMANCE.md and the `statement_NN_...`
//! tests in `conformance/tests`.

use std::path::{Path, PathBuf};

pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("conformance lives in the workspace")
        .to_path_buf()
}

/// One test function that names statements.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct StatementTest {
    /// The test file's stem: `bridge` for `tests/bridge.rs`.
    pub(crate) file: String,
    /// The function name.
    pub(crate) name: String,
    /// The statements its name carries, in order.
    pub(crate) statements: Vec<u32>,
}

impl StatementTest {
    /// `file::name`, as the table shows it.
    pub(crate) fn id(&self) -> String {
        format!("{}::{}", self.file, self.name)
    }
}

/// The statement numbers of a test name: `statement_31_32_x` -> [31, 32]; not a statement
/// test -> None.
pub(crate) fn statement_numbers(name: &str) -> Option<Vec<u32>> {
    let rest = name.strip_prefix("statement_")?;
    let numbers: Vec<u32> = rest
        .split('_')
        .map_while(|part| part.parse().ok())
        .collect();
    (!numbers.is_empty()).then_some(numbers)
}

/// Every `fn statement_...` in the test files, sorted by file and name.
pub(crate) fn scan_tests(dir: &Path) -> Result<Vec<StatementTest>, String> {
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
pub(crate) struct Statement {
    pub(crate) number: u32,
    /// `[U]` or `[R]`.
    pub(crate) mark: String,
    /// The section it is under (`bridge`, `Meta plugin`, ...).
    pub(crate) section: String,
    pub(crate) text: String,
}

/// The numbered statements of CONFORMANCE.md: `N. [U] text` lines under `## section`.
pub(crate) fn parse_statements(markdown: &str) -> Vec<Statement> {
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

pub(crate) fn conformance_md() -> Result<(PathBuf, String), String> {
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
