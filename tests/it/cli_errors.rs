//! User errors of the `kiln` command line: each exits with status 1 and prints one line,
//! `error: <file>: <cause>`, on stderr (no panic, no backtrace, no `Error:` debug form); usage
//! errors keep clap's status 2; `--help` lists every subcommand.

use crate::common;

use common::{example, kiln};

use kiln_runtime::{DType, Tensor};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

/// Asserts a user error and returns its one-line message (without `error: `), checking that it
/// names `file`.
fn user_error(o: &Output, file: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "status {:?}: {err}", o.status);
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.ends_with('\n'), "{err:?}");
    assert!(
        !err.contains("panicked") && !err.contains("Error: "),
        "{err}"
    );
    let msg = err
        .trim_end()
        .strip_prefix("error: ")
        .unwrap_or_else(|| panic!("no `error: ` prefix: {err}"))
        .to_string();
    assert!(
        msg.starts_with(&format!("{file}: ")),
        "does not start with {file}: {msg}"
    );
    msg
}

/// Runs the example model on the given inputs, returning the npz path and the result.
fn run_with(inputs: BTreeMap<String, Tensor>) -> (tempfile::TempDir, PathBuf, Output) {
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("in.npz");
    kiln::write_npz(&npz, &inputs, kiln::npz::Compression::Stored).unwrap();
    let out = dir.path().join("out.npz");
    let model = example("tiny_classifier.kir");
    let o = kiln(&[&"run", &model, &"--inputs", &npz, &"--outputs", &out]);
    assert!(!out.exists(), "a failed run wrote {}", out.display());
    (dir, npz, o)
}

fn tokens(shape: Vec<usize>, dtype: DType) -> BTreeMap<String, Tensor> {
    let n = shape.iter().product();
    let t = Tensor::from_f64_values(dtype, shape, &vec![1.0; n]).unwrap();
    BTreeMap::from([("tokens".to_string(), t)])
}

#[test]
fn missing_model_file() {
    let o = kiln(&[&"inspect", &"/nonexistent/model.kir"]);
    let msg = user_error(&o, "/nonexistent/model.kir");
    assert!(msg.contains("No such file"), "{msg}");
}

#[test]
fn malformed_ir_reports_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.kir");
    std::fs::write(&bad, "graph {\n  %x = frobnicate(\n").unwrap();
    let file = bad.display().to_string();
    let msg = user_error(&kiln(&[&"inspect", &bad]), &file);
    let rest = &msg[file.len() + 2..];
    let (line, rest) = rest.split_once(':').unwrap();
    let (col, _) = rest.split_once(':').unwrap();
    assert!(
        line.parse::<usize>().is_ok() && col.parse::<usize>().is_ok(),
        "no line:col in {msg}"
    );
}

#[test]
fn a_misspelt_npz_key_is_noted_and_the_missing_input_named() {
    let mut inputs = BTreeMap::new();
    inputs.insert(
        "token".into(),
        Tensor::from_i64(vec![1, 2], vec![1, 2]).unwrap(),
    );
    let (_d, npz, o) = run_with(inputs);
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("note: ") && lines[0].contains("ignoring `token`"),
        "{err}"
    );
    let want = format!("error: {}: input `tokens`", npz.display());
    assert!(
        lines[1].starts_with(&want) && lines[1].contains("missing"),
        "{err}"
    );
}

#[test]
fn a_missing_input_is_named() {
    let (_d, npz, o) = run_with(BTreeMap::new());
    let msg = user_error(&o, &npz.display().to_string());
    assert!(msg.contains("`tokens`") && msg.contains("missing"), "{msg}");
}

#[test]
fn a_wrong_input_dtype_is_named() {
    let (_d, npz, o) = run_with(tokens(vec![1, 2], DType::F32));
    let msg = user_error(&o, &npz.display().to_string());
    assert!(
        msg.contains("`tokens`") && msg.contains("f32") && msg.contains("i64"),
        "{msg}"
    );
}

#[test]
fn a_wrong_input_rank_is_named() {
    let (_d, npz, o) = run_with(tokens(vec![2], DType::I64));
    let msg = user_error(&o, &npz.display().to_string());
    assert!(msg.contains("`tokens`") && msg.contains("rank"), "{msg}");
}

#[test]
fn a_malformed_npz_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("in.npz");
    std::fs::write(&npz, b"not a zip").unwrap();
    let model = example("tiny_classifier.kir");
    let out = dir.path().join("out.npz");
    let o = kiln(&[&"run", &model, &"--inputs", &npz, &"--outputs", &out]);
    let msg = user_error(&o, &npz.display().to_string());
    assert!(msg.contains("not a valid .npz"), "{msg}");
}

#[test]
fn the_unavailable_cuda_backend_points_to_the_cpu_backend() {
    let model = example("tiny_classifier.kir");
    let inputs = example("tiny_classifier_inputs.npz");
    let o = kiln(&[
        &"run",
        &model,
        &"--inputs",
        &inputs,
        &"--outputs",
        &"/tmp/unused.npz",
        &"--backend",
        &"cuda",
    ]);
    let msg = user_error(&o, &model.display().to_string());
    assert!(
        msg.contains("backend `cuda` is not available yet") && msg.contains("use --backend cpu"),
        "{msg}"
    );
}

#[test]
fn unsupported_model_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("model.txt");
    std::fs::write(&txt, b"").unwrap();
    let cases = [
        (
            dir.path().to_path_buf(),
            "not a Hugging Face model folder (no `config.json`)",
        ),
        (txt, "unknown model kind"),
    ];
    for (path, want) in cases {
        let o = kiln(&[&"inspect", &path]);
        let msg = user_error(&o, &path.display().to_string());
        assert!(msg.contains(want), "{msg}");
    }
}

#[test]
fn an_empty_onnx_file_is_an_import_error_not_a_missing_feature() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("model.onnx");
    std::fs::write(&onnx, b"").unwrap();
    let msg = user_error(&kiln(&[&"inspect", &onnx]), &onnx.display().to_string());
    assert!(!msg.contains("not available"), "{msg}");
}

#[test]
fn the_cuda_target_is_not_available_yet() {
    let model = example("tiny_classifier.kir");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.kiln");
    let o = kiln(&[&"compile", &model, &"-o", &out, &"--target", &"cuda"]);
    let msg = user_error(&o, &model.display().to_string());
    assert!(msg.contains("target `cuda` is not available yet"), "{msg}");
    assert!(!out.exists());
}

#[test]
fn usage_errors_keep_clap_status_2() {
    for args in [
        vec!["run", "m.kir"],
        vec!["inspect", "m.kir", "--format", "xml"],
        vec!["frobnicate"],
        vec![],
        // Values that are never valid are usage errors too (issue 18).
        vec!["bench", "m.kir", "--inputs", "i.npz", "--iters", "0"],
        vec!["conformance", "dir", "-j", "0"],
        vec![
            "compile",
            "m.kir",
            "-o",
            "m.kiln",
            "--cpu-features",
            "avx9000",
        ],
        vec!["compile", "m.kir", "-o", "m.kiln", "-O", "2"],
        vec![
            "run",
            "m.kir",
            "--inputs",
            "i",
            "--outputs",
            "o",
            "--max-memory",
            "lots",
        ],
    ] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
        let o = c.args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn help_lists_all_five_subcommands() {
    let o = kiln(&[&"--help"]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    for sub in ["compile", "run", "inspect", "bench", "conformance"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(sub)),
            "{sub} missing from:\n{help}"
        );
    }
    let o = kiln(&[&"inspect", &"--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("execution plan"), "{help}");
}
