//! `kiln conformance DIR`: on a synthetic suite (one passing, one failing, one unsupported
//! case) the report lines, totals, filter, `node/` parent folder, `--write-pass-list` and the
//! argument errors; on the shared ONNX node tests, the output format.

use crate::common;

use common::onnx::{add_bias_model, model, node, tensor_f32, value_f32, write_case};
use common::{kiln, stdout_ok};
use std::path::Path;
use std::process::Output;

/// Writes three cases into `dir`: `test_add_bias` (passes), `test_add_wrong` (wrong expected
/// output) and `test_frob` (an op Kiln has no importer for).
fn synthetic_suite(dir: &Path) {
    let x = || tensor_f32("x", &[1, 2], &[1.0, 2.0]);
    let y = tensor_f32("y", &[1, 2], &[11.0, 22.0]);
    write_case(dir, "test_add_bias", &add_bias_model(), &[x()], &[y]);
    let wrong = tensor_f32("y", &[1, 2], &[0.0, 22.0]);
    write_case(dir, "test_add_wrong", &add_bias_model(), &[x()], &[wrong]);
    let frob = model(
        vec![node("frob0", "com.example", "Frob", &["x"], &["y"])],
        vec![],
        vec![value_f32("x", &["1", "2"])],
        vec![value_f32("y", &["1", "2"])],
        &[("", 17), ("com.example", 1)],
    );
    write_case(dir, "test_frob", &frob, &[x()], &[x()]);
}

fn lines(o: &Output) -> Vec<String> {
    stdout_ok(o).lines().map(str::to_string).collect()
}

/// A user error: status 1, one line on stderr starting with `error: `; returns the line.
fn user_error(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

#[test]
fn a_synthetic_suite_reports_each_case_and_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_suite(dir.path());
    let out = lines(&kiln(&[&"conformance", &dir.path()]));
    assert_eq!(out.len(), 3, "{out:#?}");
    assert!(
        out[0].starts_with("FAIL test_add_wrong: ") && out[0].contains("expected 0"),
        "{}",
        out[0]
    );
    assert!(out[1].starts_with("SKIP test_frob: "), "{}", out[1]);
    assert!(
        out[1].contains("frob0") && out[1].contains("com.example::Frob"),
        "{}",
        out[1]
    );
    assert_eq!(out[2], "1 passed, 1 failed, 1 skipped");

    let verbose = lines(&kiln(&[&"conformance", &dir.path(), &"-v", &"-j", &"1"]));
    assert_eq!(verbose[0], "PASS test_add_bias");
    assert_eq!(verbose[1..], out[..]);

    let add = lines(&kiln(&[&"conformance", &dir.path(), &"--filter", &"add"]));
    assert_eq!(add.last().unwrap(), "1 passed, 1 failed, 0 skipped");
    let all = lines(&kiln(&[&"conformance", &dir.path(), &"--filter", &""]));
    assert_eq!(all, out);
    let none = lines(&kiln(&[&"conformance", &dir.path(), &"--filter", &"zzz"]));
    assert_eq!(none, vec!["0 passed, 0 failed, 0 skipped"]);
}

#[test]
fn the_parent_of_a_node_folder_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_suite(&dir.path().join("node"));
    let a = lines(&kiln(&[&"conformance", &dir.path()]));
    let b = lines(&kiln(&[
        &"conformance",
        &dir.path().join("node"),
        &"--backend",
        &"reference",
    ]));
    assert_eq!(a, b);
    assert_eq!(a.last().unwrap(), "1 passed, 1 failed, 1 skipped");
}

#[test]
fn write_pass_list_writes_the_passing_cases_under_the_header() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_suite(dir.path());
    let list = dir.path().join("pass.txt");
    std::fs::write(&list, "# old\ntest_add_wrong\n").unwrap();
    let o = kiln(&[&"conformance", &dir.path(), &"--write-pass-list", &list]);
    assert_eq!(lines(&o).last().unwrap(), "1 passed, 1 failed, 1 skipped");
    let note = String::from_utf8_lossy(&o.stderr);
    assert!(
        note.contains("no longer pass") && note.contains("test_add_wrong"),
        "{note}"
    );
    let text = std::fs::read_to_string(&list).unwrap();
    assert_eq!(
        text,
        format!("{}test_add_bias\n", kiln::conformance::PASS_LIST_HEADER)
    );

    let o = kiln(&[
        &"conformance",
        &dir.path(),
        &"--filter",
        &"add",
        &"--write-pass-list",
        &list,
    ]);
    let err = user_error(&o);
    assert!(err.contains("--filter"), "{err}");
}

#[test]
fn bad_arguments_exit_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = user_error(&kiln(&[&"conformance", &missing]));
    assert!(err.contains(&missing.display().to_string()), "{err}");

    let err = user_error(&kiln(&[&"conformance", &dir.path()]));
    assert!(err.contains("no ONNX test cases"), "{err}");

    synthetic_suite(dir.path());
    let err = user_error(&kiln(&[&"conformance", &dir.path(), &"--backend", &"cuda"]));
    assert!(
        err.contains("backend `cuda` is not available yet") && err.contains("--backend reference"),
        "{err}"
    );
    // `--jobs 0` is a usage error: clap's status 2 (`cli_errors::usage_errors_keep_clap_status_2`).
    let o = kiln(&[&"conformance", &dir.path(), &"--jobs", &"0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--jobs"));
}

#[test]
fn the_shared_node_tests_report_in_the_contract_format() {
    let Some(node) = common::node_tests_dir() else {
        return;
    };
    let parent = node.parent().unwrap();
    let a = lines(&kiln(&[&"conformance", &parent, &"--filter", &"test_abs"]));
    let b = lines(&kiln(&[&"conformance", &node, &"--filter", &"test_abs"]));
    assert_eq!(a, b);
    let (last, cases) = a.split_last().unwrap();
    let counts: Vec<usize> = last
        .split(", ")
        .zip(["passed", "failed", "skipped"])
        .map(|(part, word)| {
            let (n, w) = part.split_once(' ').unwrap();
            assert_eq!(w, word, "{last}");
            n.parse().unwrap()
        })
        .collect();
    assert_eq!(counts.len(), 3, "{last}");
    let total = kiln::conformance::case_dirs(&node, Some("test_abs"))
        .unwrap()
        .len();
    assert_eq!(counts.iter().sum::<usize>(), total, "{last}");
    assert_eq!(cases.len(), counts[1] + counts[2], "{a:#?}");
    let names: Vec<&str> = cases
        .iter()
        .map(|l| {
            assert!(l.starts_with("FAIL ") || l.starts_with("SKIP "), "{l}");
            l[5..].split(':').next().unwrap()
        })
        .collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "not sorted: {names:?}"
    );
}
