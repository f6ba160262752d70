//! Outcomes and reports: how a case ended, the pass/fail/skip counts and the final summary
//! line, the one-line `FAIL`/`SKIP` report of a case, and the committed pass-list format.

/// How one case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every output matched.
    Pass,
    /// A wrong answer, an error that is not "unsupported", or a panic.
    Fail(String),
    /// Kiln reported a clear "unsupported" error (op, attribute value, dtype).
    Skip(String),
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's folder name (`test_abs`).
    pub name: String,
    /// What happened.
    pub outcome: Outcome,
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
}
