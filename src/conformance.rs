//! Running the ONNX backend node tests in parallel (`kiln conformance` and the pass-list test):
//! finding the case folder, running cases on worker threads with results sorted by case name,
//! the report lines and summary line, and the committed pass-list format.

pub use crate::parallel::{default_workers, QuietPanics};
use crate::parallel::{parallel_map, parallel_ordered, take_panic_location};
use kiln_frontends::onnx::conformance::run_case_with;
pub use kiln_frontends::onnx::conformance::{case_dirs, compare, run_case, CaseResult, Outcome};
use std::path::{Path, PathBuf};

/// The folder holding the cases: `dir` itself when it holds case folders (`test_*/model.onnx`),
/// else `dir/node` when that holds them (so both `onnx-node-tests/` and `onnx-node-tests/node/`
/// work). The error is one line naming `dir`.
pub fn resolve_cases_dir(dir: &Path) -> Result<PathBuf, String> {
    let shown = dir.display();
    if !dir.is_dir() {
        return Err(match std::fs::metadata(dir) {
            Ok(_) => format!("{shown}: not a directory"),
            Err(e) => format!("{shown}: {e}"),
        });
    }
    let has_cases = |d: &Path| case_dirs(d, None).is_ok_and(|v| !v.is_empty());
    if has_cases(dir) {
        return Ok(dir.to_path_buf());
    }
    let node = dir.join("node");
    if has_cases(&node) {
        return Ok(node);
    }
    Err(format!(
        "{shown}: no ONNX test cases here or in {shown}/node (expected folders holding \
         `model.onnx` and `test_data_set_*`)"
    ))
}

/// The name of a case folder (`test_abs`).
pub fn case_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Which backend runs the cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The reference interpreter on the imported graph.
    Reference,
    /// The CPU backend: optimize, compile to an artifact in memory, load it and run it.
    Cpu,
}

/// Runs one case; a panic is a failure, reported with where it happened when known. Messages
/// lose the `<case>/model.onnx: ` prefix, which the case name already says.
pub fn run_one(dir: &Path, backend: Backend) -> CaseResult {
    take_panic_location();
    let mut outcome = match backend {
        Backend::Reference => run_case(dir),
        Backend::Cpu => run_case_with(dir, &crate::backend::run_graph_cpu),
    };
    let prefix = format!("{}: ", dir.join("model.onnx").display());
    if let Outcome::Fail(m) | Outcome::Skip(m) = &mut outcome {
        if let Some(rest) = m.strip_prefix(&prefix) {
            *m = rest.to_string();
        }
    }
    if let Outcome::Fail(m) = &mut outcome {
        if m.starts_with("panic:") {
            if let Some(at) = take_panic_location() {
                m.push_str(&format!(" (at {at})"));
            }
        }
    }
    CaseResult {
        name: case_name(dir),
        outcome,
    }
}

/// Runs the given case folders on `workers` threads, handing each result to `emit` in the
/// order of `dirs` as soon as it is known; returns every result, sorted by case name.
pub fn run_cases_with<E>(
    dirs: &[PathBuf],
    workers: usize,
    backend: Backend,
    mut emit: impl FnMut(&CaseResult) -> Result<(), E>,
) -> Result<Vec<CaseResult>, E> {
    let mut results = Vec::with_capacity(dirs.len());
    parallel_ordered(
        dirs,
        workers,
        |d| run_one(d, backend),
        |_, r| {
            emit(&r)?;
            results.push(r);
            Ok(())
        },
    )?;
    results.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(results)
}

/// Runs the given case folders on `workers` threads; the results are sorted by case name.
pub fn run_cases(dirs: &[PathBuf], workers: usize, backend: Backend) -> Vec<CaseResult> {
    let mut results = parallel_map(dirs, workers, |d| run_one(d, backend));
    results.sort_by(|a, b| a.name.cmp(&b.name));
    results
}

/// Pass, fail and skip counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Cases whose every output matched.
    pub passed: usize,
    /// Wrong answers, errors and panics.
    pub failed: usize,
    /// Cases Kiln reports as unsupported.
    pub skipped: usize,
}

impl Counts {
    /// Counts the outcomes of `results`.
    pub fn of(results: &[CaseResult]) -> Counts {
        let mut c = Counts::default();
        for r in results {
            match r.outcome {
                Outcome::Pass => c.passed += 1,
                Outcome::Fail(_) => c.failed += 1,
                Outcome::Skip(_) => c.skipped += 1,
            }
        }
        c
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// The report line of a case that did not pass (`FAIL test_x: reason`, `SKIP test_y: reason`),
/// on one line; `None` for a pass.
pub fn report_line(r: &CaseResult) -> Option<String> {
    let (tag, reason) = match &r.outcome {
        Outcome::Pass => return None,
        Outcome::Fail(m) => ("FAIL", m),
        Outcome::Skip(m) => ("SKIP", m),
    };
    let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(format!("{tag} {}: {reason}", r.name))
}

/// The header of the committed pass list.
pub const PASS_LIST_HEADER: &str = "\
# ONNX backend node-test cases that must pass on the reference interpreter; checked by
# tests/onnx_conformance.rs, which fails when a listed case stops passing.
# One case name per line, sorted; lines starting with `#` are comments.
# Regenerate (from the workspace root) after adding op support:
#   cargo run --release -- conformance ../shared/onnx-node-tests --write-pass-list tests/onnx-node-pass.txt
";

/// The case names of a pass list: one per line, blank lines and `#` comments ignored.
pub fn parse_pass_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The text of a pass list holding the passing cases of `results`, sorted, with the header.
pub fn pass_list_text(results: &[CaseResult]) -> String {
    let mut names: Vec<&str> = results
        .iter()
        .filter(|r| r.outcome == Outcome::Pass)
        .map(|r| r.name.as_str())
        .collect();
    names.sort_unstable();
    let mut text = PASS_LIST_HEADER.to_string();
    for n in names {
        text.push_str(n);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, outcome: Outcome) -> CaseResult {
        CaseResult {
            name: name.to_string(),
            outcome,
        }
    }

    #[test]
    fn counts_lines_and_pass_lists() {
        let rs = vec![
            result("test_b", Outcome::Pass),
            result("test_a", Outcome::Pass),
            result(
                "test_c",
                Outcome::Fail("element 0 is 1,\nexpected 2".into()),
            ),
            result("test_d", Outcome::Skip("no importer".into())),
        ];
        assert_eq!(Counts::of(&rs).to_string(), "2 passed, 1 failed, 1 skipped");
        assert_eq!(report_line(&rs[0]), None);
        assert_eq!(
            report_line(&rs[2]).unwrap(),
            "FAIL test_c: element 0 is 1, expected 2"
        );
        assert_eq!(report_line(&rs[3]).unwrap(), "SKIP test_d: no importer");
        let text = pass_list_text(&rs);
        assert!(text.starts_with("# ONNX backend node-test cases"));
        assert!(text.ends_with("test_a\ntest_b\n"), "{text}");
        assert_eq!(parse_pass_list(&text), vec!["test_a", "test_b"]);
        assert_eq!(parse_pass_list("\n # c\n x \n\ny"), vec!["x", "y"]);
    }

    #[test]
    fn a_missing_or_empty_folder_is_named() {
        let dir = std::env::temp_dir().join(format!("kiln-conf-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("node")).unwrap();
        let msg = resolve_cases_dir(&dir).unwrap_err();
        assert!(msg.contains("no ONNX test cases"), "{msg}");
        let case = dir.join("node").join("test_x");
        std::fs::create_dir_all(&case).unwrap();
        std::fs::write(case.join("model.onnx"), b"").unwrap();
        assert_eq!(resolve_cases_dir(&dir).unwrap(), dir.join("node"));
        assert_eq!(
            resolve_cases_dir(&dir.join("node")).unwrap(),
            dir.join("node")
        );
        let msg = resolve_cases_dir(&dir.join("missing")).unwrap_err();
        assert!(msg.contains("missing"), "{msg}");
        std::fs::remove_dir_all(dir).ok();
    }
}
