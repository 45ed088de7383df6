//! Running the statement tests against our plugins and against the reference plugins, and
//! reading libtest's output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sources::{workspace, StatementTest};

/// What one run of one test gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
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
    pub(crate) fn cell(&self) -> &'static str {
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
pub(crate) fn parse_test_output(stdout: &str) -> BTreeMap<String, Outcome> {
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

pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace());
    cmd
}

/// Runs the statement tests of `files` against our plugins, one test binary after another.
pub(crate) fn run_ours(
    files: &BTreeSet<&str>,
) -> Result<BTreeMap<(String, String), Outcome>, String> {
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
pub(crate) fn test_executables() -> Result<BTreeMap<String, PathBuf>, String> {
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
pub(crate) fn run_reference(
    tests: &[StatementTest],
) -> Result<BTreeMap<(String, String), Outcome>, String> {
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
