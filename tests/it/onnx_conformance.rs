//! The ONNX node-test pass list (`tests/onnx-node-pass.txt`): every case it names must still pass
//! on the reference interpreter (a case that stops passing is a regression), and every name must
//! be a case folder of `../shared/onnx-node-tests/node`. The list is sorted, without duplicates.
//!
//! Regenerate the list after adding op support (from the workspace root):
//! `cargo run --release -- conformance ../shared/onnx-node-tests --write-pass-list tests/onnx-node-pass.txt`

use crate::common;

use kiln::conformance::{
    default_workers, parse_pass_list, report_line, run_cases, Backend, Outcome, QuietPanics,
};
use std::path::{Path, PathBuf};
use std::time::Instant;

const LIST: &str = "tests/onnx-node-pass.txt";

fn pass_list() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(LIST);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_pass_list(&text)
}

#[test]
fn every_listed_case_still_passes() {
    listed_cases_pass_on(Backend::Reference);
}

/// The CPU backend (optimizer, lowering, generated code, library kernels, artifact round trip)
/// passes every case the reference interpreter passes.
#[test]
fn every_listed_case_passes_on_the_cpu_backend() {
    listed_cases_pass_on(Backend::Cpu);
}

fn listed_cases_pass_on(backend: Backend) {
    let Some(node) = common::node_tests_dir() else {
        return;
    };
    let listed = pass_list();
    // Names without a folder are reported by `every_listed_case_exists`.
    let dirs: Vec<PathBuf> = listed
        .iter()
        .map(|n| node.join(n))
        .filter(|d| d.join("model.onnx").is_file())
        .collect();
    let start = Instant::now();
    let workers = default_workers();
    // A panicking case is reported with its location on its line, not as a separate note.
    let quiet = QuietPanics::install();
    let results = run_cases(&dirs, workers, backend);
    drop(quiet);
    let regressions: Vec<String> = results
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .filter_map(report_line)
        .collect();
    println!(
        "{} listed cases run on {backend:?} with {workers} threads in {:.1}s: {} regressions",
        results.len(),
        start.elapsed().as_secs_f64(),
        regressions.len()
    );
    assert!(
        regressions.is_empty(),
        "{} case(s) of {LIST} no longer pass on {backend:?}:\n{}",
        regressions.len(),
        regressions.join("\n")
    );
}

#[test]
fn every_listed_case_exists() {
    let Some(node) = common::node_tests_dir() else {
        return;
    };
    assert!(
        node.is_dir(),
        "{} is missing: the shared folder has no ONNX node tests",
        node.display()
    );
    let listed = pass_list();
    let missing: Vec<&String> = listed
        .iter()
        .filter(|n| !node.join(n.as_str()).join("model.onnx").is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "{LIST} names {} case(s) with no folder (holding model.onnx) in {}: {missing:?}",
        missing.len(),
        node.display()
    );
}

#[test]
fn the_list_is_sorted_without_duplicates() {
    let listed = pass_list();
    let bad: Vec<String> = listed
        .windows(2)
        .filter(|w| w[0] >= w[1])
        .map(|w| format!("`{}` then `{}`", w[0], w[1]))
        .collect();
    assert!(
        bad.is_empty(),
        "{LIST} is not sorted or repeats names: {}",
        bad.join(", ")
    );
    for name in &listed {
        assert!(
            name.starts_with("test_") && !name.contains(char::is_whitespace),
            "{LIST}: `{name}` is not a case name"
        );
    }
}

#[test]
fn the_list_header_says_how_to_regenerate_it() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(LIST);
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.starts_with(kiln::conformance::PASS_LIST_HEADER),
        "{LIST} does not start with the header that `kiln conformance --write-pass-list` writes"
    );
}
