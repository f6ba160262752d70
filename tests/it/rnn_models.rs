//! Recurrent layers against ONNX Runtime: every `tests/models/rnn/NAME.onnx` (written by
//! `tools/export_rnn_models.py`: PyTorch's 2-layer bidirectional `nn.LSTM` and batch-first
//! `nn.GRU`, the LSTM after `quantize_dynamic` (`com.microsoft::DynamicQuantizeLSTM`), and
//! single LSTM / GRU / RNN nodes with clip, `input_forget`, peepholes, sequence lengths, reverse
//! and bidirectional directions, `linear_before_reset` 0 and 1, activations with alpha/beta)
//! runs on the CPU backend (compiled once) and the reference interpreter on the inputs of
//! `NAME.a.npz` and `NAME.b.npz` (two sequence lengths and batch sizes, so both stay symbolic),
//! and every output is compared with ONNX Runtime's (`ort:OUTPUT`). The CPU backend must run
//! each layer on the native recurrent kernel.
//!
//! Tolerances: float models within 1e-5 (measured ≤ 5e-7). The quantized model: Kiln
//! dequantizes the int8 W and R at import and computes in f32, while ONNX Runtime also
//! quantizes x and h to uint8 (over each product's range) at every step. With |x| ≤ ~3 and
//! |h| < 1 that rounding is up to ~0.012 and ~0.004 per element; through 8 (x) or 16 (h)
//! products with weights |w| ≲ 0.25 it moves a gate pre-activation by ~1e-3 (random signs), and
//! sigmoid and tanh slopes (≤ 0.25, ≤ 1) pass at most that on. So outputs within 1e-2 absolute
//! of ONNX Runtime's quantized outputs (measured ≤ 2.8e-3), and of its float outputs
//! (`ort_float:`; measured ≤ 3.1e-3, the int8 weight rounding).

use crate::common::allclose;
use kiln::backend::{compile_model, CompileOptions};
use kiln_runtime::{LoadOptions, Model, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FLOAT_TOL: f64 = 1e-5;
const QUANT_ATOL: f64 = 1e-2;

fn rnn_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/models/rnn")
}

/// The graph inputs and the expected outputs (`prefix` + name) of an `.npz`.
type Expected = BTreeMap<String, Tensor>;

fn split(npz: &Path, prefix: &str) -> (BTreeMap<String, Tensor>, Expected) {
    let all = kiln::read_npz(npz).unwrap_or_else(|e| panic!("{e}"));
    let inputs = all
        .iter()
        .filter(|(k, _)| !k.contains(':'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let want = all
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
        .collect();
    (inputs, want)
}

/// Compares every expected output; returns the largest difference.
fn compare(
    what: &str,
    outs: &[(String, Tensor)],
    want: &Expected,
    rtol: f64,
    atol: f64,
) -> Result<f64, String> {
    let mut worst = 0f64;
    for (name, w) in want {
        let got = outs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| format!("{what}: no output `{name}`"))?;
        let d = allclose(got, w, rtol, atol).map_err(|e| format!("{what} `{name}`: {e}"))?;
        worst = worst.max(d);
    }
    Ok(worst)
}

fn check_model(onnx: &Path) -> Result<String, String> {
    let stem = onnx
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let quantized = stem.ends_with("-qdq");
    let bytes = compile_model(onnx, &CompileOptions::default()).map_err(|e| e.to_string())?;
    let model = Model::from_bytes(bytes, &LoadOptions::default()).map_err(|e| e.to_string())?;
    let kernels: Vec<String> = model.plan().steps.iter().map(|s| s.kernel.name()).collect();
    let native = kernels
        .iter()
        .filter(|k| k.starts_with("recurrent:"))
        .count();
    if native == 0 || kernels.iter().any(|k| k.starts_with("reference:lstm")) {
        return Err(format!(
            "{stem}: the layers do not all run natively: {kernels:?}"
        ));
    }
    let graph = kiln::load_model(onnx).map_err(|e| e.to_string())?;
    let mut line = format!("{stem}: {native} native layers");
    for tag in ["a", "b"] {
        let npz = onnx.with_file_name(format!("{stem}.{tag}.npz"));
        let mut checks = vec![("ort:", 0.0)];
        if quantized {
            checks.push(("ort_float:", 0.0));
        }
        for (prefix, _) in &checks {
            let (inputs, want) = split(&npz, prefix);
            if want.is_empty() {
                return Err(format!("{}: no `{prefix}` outputs", npz.display()));
            }
            let (rtol, atol) = if quantized {
                (0.0, QUANT_ATOL)
            } else {
                (FLOAT_TOL, FLOAT_TOL)
            };
            let cpu = model.session().run(&inputs).map_err(|e| e.to_string())?;
            let d_cpu = compare(&format!("{stem}.{tag} cpu"), &cpu, &want, rtol, atol)?;
            let reference =
                kiln_compiler::interp::run(&graph, &inputs).map_err(|e| e.to_string())?;
            let d_ref = compare(&format!("{stem}.{tag} ref"), &reference, &want, rtol, atol)?;
            line += &format!(", {tag} {prefix} cpu {d_cpu:.1e} ref {d_ref:.1e}");
        }
    }
    Ok(line)
}

#[test]
fn recurrent_models_match_onnx_runtime() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(rnn_dir())
        .expect("tests/models/rnn exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 6,
        "expected the exported models, found {files:?}"
    );
    let mut failed = Vec::new();
    for f in &files {
        match check_model(f) {
            Ok(line) => println!("{line}"),
            Err(e) => failed.push(e),
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
