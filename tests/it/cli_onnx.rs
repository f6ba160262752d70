//! `kiln inspect` and `kiln run` on ONNX files: a hand-built model (summary, IR text, outputs),
//! an op Kiln has no importer for (one-line error naming node, op type, domain and opset),
//! input-name errors, and a case of the shared ONNX node tests run through the CLI.

use crate::common;

use common::onnx::{add_bias_model, model, node, value_f32};
use common::{kiln, stdout_ok};
use kiln_runtime::Tensor;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

fn write_model(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("m.onnx");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn write_inputs(dir: &Path, inputs: BTreeMap<String, Tensor>) -> PathBuf {
    let path = dir.join("in.npz");
    kiln::write_npz(&path, &inputs, kiln::npz::Compression::Stored).unwrap();
    path
}

/// A user error naming `file`: status 1, one line `error: <file>: ...`; returns the message.
fn user_error(o: &Output, file: &Path) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let want = format!("error: {}: ", file.display());
    assert!(err.starts_with(&want), "{err}");
    err
}

#[test]
fn inspect_summarizes_an_onnx_model() {
    let dir = tempfile::tempdir().unwrap();
    let m = write_model(dir.path(), &add_bias_model());
    let v: serde_json::Value =
        serde_json::from_str(&stdout_ok(&kiln(&[&"inspect", &m, &"--format", &"json"]))).unwrap();
    assert_eq!(v["nodes"], json!(1));
    assert_eq!(v["ops"], json!({"add": 1}));
    assert_eq!(v["weights"], json!({"count": 1, "bytes": 8}));
    assert_eq!(v["inputs"][0]["name"], json!("x"));
    assert_eq!(v["inputs"][0]["dtype"], json!("f32"));
    let shape = v["inputs"][0]["shape"].as_array().unwrap();
    assert!(shape[0].is_string() && shape[1] == json!(2), "{shape:?}");
    assert_eq!(v["outputs"][0]["name"], json!("y"));

    let text = stdout_ok(&kiln(&[&"inspect", &m]));
    assert!(text.contains("add"), "{text}");
}

#[test]
fn run_writes_the_outputs_of_an_onnx_model() {
    let dir = tempfile::tempdir().unwrap();
    let m = write_model(dir.path(), &add_bias_model());
    let x = Tensor::from_f32(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let inputs = write_inputs(dir.path(), BTreeMap::from([("x".to_string(), x)]));
    let out = dir.path().join("out.npz");
    let o = kiln(&[&"run", &m, &"--inputs", &inputs, &"--outputs", &out]);
    assert!(stdout_ok(&o).contains("y: f32[2, 2]"));
    let got = kiln::read_npz(&out).unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), vec!["y"]);
    assert_eq!(got["y"].to_f64_vec(), [11.0, 22.0, 13.0, 24.0]);
}

#[test]
fn an_unsupported_op_names_node_op_domain_and_opset() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = model(
        vec![node("frob0", "com.example", "Frob", &["x"], &["y"])],
        vec![],
        vec![value_f32("x", &["n"])],
        vec![value_f32("y", &["n"])],
        &[("", 17), ("com.example", 3)],
    );
    let m = write_model(dir.path(), &bytes);
    for args in [
        vec![&"inspect" as &dyn AsRef<std::ffi::OsStr>, &m],
        vec![&"run", &m, &"--inputs", &"x.npz", &"--outputs", &"y.npz"],
    ] {
        let err = user_error(&kiln(&args), &m);
        for want in ["frob0", "com.example::Frob", "opset 3", "unsupported"] {
            assert!(err.contains(want), "{want} missing: {err}");
        }
    }
}

#[test]
fn malformed_onnx_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    for bytes in [
        &b""[..],
        b"\xff\xff\xff not protobuf",
        &add_bias_model()[..20],
    ] {
        let m = write_model(dir.path(), bytes);
        let err = user_error(&kiln(&[&"inspect", &m]), &m);
        assert!(!err.contains("not available"), "{err}");
    }
}

#[test]
fn an_unknown_input_key_is_ignored_with_a_note_listing_the_onnx_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let m = write_model(dir.path(), &add_bias_model());
    let t = Tensor::from_f32(vec![1, 2], vec![1.0, 2.0]).unwrap();
    let inputs = BTreeMap::from([("x".to_string(), t.clone()), ("out".to_string(), t)]);
    let npz = write_inputs(dir.path(), inputs);
    let out = dir.path().join("out.npz");
    let o = kiln(&[&"run", &m, &"--inputs", &npz, &"--outputs", &out]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.starts_with("note: ") && err.contains("`out`") && err.contains("inputs are `x`"),
        "{err}"
    );
    assert!(out.exists());
}

#[test]
fn a_shared_node_test_runs_through_the_cli() {
    let Some(node) = common::node_tests_dir() else {
        return;
    };
    let case = node.join("test_add");
    let set = case.join("test_data_set_0");
    let mut inputs = BTreeMap::new();
    for i in 0..2 {
        let (name, t) = kiln_frontends::onnx::read_tensor_file(set.join(format!("input_{i}.pb")))
            .expect("the case's inputs decode");
        inputs.insert(name, t);
    }
    let (_, want) = kiln_frontends::onnx::read_tensor_file(set.join("output_0.pb")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let npz = write_inputs(dir.path(), inputs);
    let out = dir.path().join("out.npz");
    let o = kiln(&[
        &"run",
        &case.join("model.onnx"),
        &"--inputs",
        &npz,
        &"--outputs",
        &out,
    ]);
    stdout_ok(&o);
    let got = kiln::read_npz(&out).unwrap();
    let (_, got) = got.iter().next().unwrap();
    assert_eq!(got.shape(), want.shape());
    common::allclose(got, &want, 1e-6, 1e-7).unwrap();
}
