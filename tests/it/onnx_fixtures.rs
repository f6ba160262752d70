//! The shared model fixtures (`../shared/fixtures`) through the ONNX frontend and the reference
//! interpreter: for each family, the legacy TorchScript export (`NAME.onnx`, opset 14, dynamic
//! batch and sequence) and the dynamo export (`NAME-dynamo.onnx` + `.onnx.data`, opset 18).
//!
//! 1. Import, run on the fixture's inputs (`NAME.npz`), compare the first output with PyTorch's
//!    (`out`) within rtol 1e-3, atol 1e-4.
//! 2. Run the same graph at another shape built from the fixture inputs and compare with the
//!    first run where the semantics say they must agree: duplicated batch rows give identical
//!    rows; a causal model on a shorter sequence gives the prefix of the logits; a bidirectional
//!    model with extra masked padding tokens gives the same outputs at every unmasked position.
//!    The dynamo exports have static input shapes (`[2, 10]`, `[2, 3, 32, 32]`), so for them the
//!    other shape must be refused with an error naming the input.
//!
//! Each test prints one summary line (`fixture NAME: PASS|FAIL ...`); see them all with
//! `cargo test --test onnx_fixtures -- --nocapture`.

use crate::common;

use common::{resize_axis1, take_rows, unmasked, Kind};

use kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-4;

/// The inputs at the other shape, the expected first output (from the run at the original
/// shape), a function of the new first output to compare with it, and a label.
type Variant = (
    BTreeMap<String, Tensor>,
    Tensor,
    Box<dyn Fn(&Tensor) -> Tensor>,
    String,
);

fn variant(kind: Kind, inputs: &BTreeMap<String, Tensor>, first: &Tensor) -> Variant {
    let rows: &[usize] = if kind == Kind::Vision {
        &[1, 0, 1]
    } else {
        &[0, 1, 0]
    };
    let seq = inputs.values().next().map_or(0, |t| t.shape()[1]);
    let mut new = BTreeMap::new();
    for (k, t) in inputs {
        let t = take_rows(t, rows);
        let t = match kind {
            Kind::Vision => t,
            Kind::Causal => resize_axis1(&t, seq / 2, 0.0),
            // Padding tokens: id 0, token type 0, attention mask 0.
            Kind::Encoder => resize_axis1(&t, seq + 3, 0.0),
        };
        new.insert(k.clone(), t);
    }
    let want = take_rows(first, rows);
    let b = rows.len();
    match kind {
        Kind::Vision => (new, want, Box::new(Tensor::clone), format!("batch {b}")),
        Kind::Causal => {
            let label = format!("batch {b} × seq {} (logits prefix)", seq / 2);
            (
                new,
                resize_axis1(&want, seq / 2, 0.0),
                Box::new(Tensor::clone),
                label,
            )
        }
        Kind::Encoder => {
            let mask = take_rows(&inputs["attention_mask"], rows);
            let all: Vec<usize> = (0..b).collect();
            let want = unmasked(&want, &mask, &all);
            let label = format!("batch {b} × seq {} (masked padding)", seq + 3);
            (
                new,
                want,
                Box::new(move |t| unmasked(t, &mask, &all)),
                label,
            )
        }
    }
}

/// Runs one fixture; `Ok` is the summary, `Err` the failure (both one line).
fn check(shared: &Path, name: &str, kind: Kind, dynamo: bool) -> Result<String, String> {
    let dir = shared.join("fixtures");
    let file = if dynamo {
        format!("{name}-dynamo.onnx")
    } else {
        format!("{name}.onnx")
    };
    let model = dir.join(&file);
    let npz = dir.join(format!("{name}.npz"));
    let mut inputs = kiln::read_npz(&npz).map_err(|e| format!("reading inputs: {e}"))?;
    let reference = inputs.remove("out").ok_or("the .npz has no `out`")?;

    let t0 = Instant::now();
    let g = kiln::load_model(&model).map_err(|e| format!("import: {e}"))?;
    let t_import = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let outs = kiln::run_reference(
        &g,
        &model,
        &inputs,
        &npz,
        &kiln_runtime::MemoryBudget::available(),
    )
    .map_err(|e| format!("run: {e}"))?;
    let t_run = t0.elapsed().as_secs_f64();
    let (out_name, first) = outs.first().ok_or("the graph has no outputs")?;
    let max = common::allclose(first, &reference, RTOL, ATOL)
        .map_err(|e| format!("output `{out_name}` vs PyTorch: {e}"))?;
    let mut summary = format!(
        "{} nodes, import {t_import:.2}s, run {t_run:.2}s, max |diff| vs PyTorch {max:.2e}",
        g.num_nodes()
    );

    let (new_inputs, want, pick, label) = variant(kind, &inputs, first);
    let is_static = common::has_static_inputs(&g);
    let result = kiln::run_reference(
        &g,
        &model,
        &new_inputs,
        &npz,
        &kiln_runtime::MemoryBudget::available(),
    );
    if is_static {
        let e = match result {
            Ok(_) => return Err(format!("{label}: static-shape graph accepted other shapes")),
            Err(e) => e.to_string(),
        };
        if !e.contains("input `") {
            return Err(format!("{label}: refused without naming the input: {e}"));
        }
        summary.push_str(&format!(
            "; static input shapes, {label} refused as it must be"
        ));
        return Ok(summary);
    }
    let outs = result.map_err(|e| format!("{label}: run: {e}"))?;
    let got = pick(&outs[0].1);
    let max = common::allclose(&got, &want, RTOL, ATOL)
        .map_err(|e| format!("{label} vs the original shape: {e}"))?;
    summary.push_str(&format!("; {label}: max |diff| {max:.2e}"));
    Ok(summary)
}

fn fixture(name: &str, kind: Kind, dynamo: bool) {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let label = if dynamo {
        format!("{name}-dynamo")
    } else {
        name.to_string()
    };
    match check(&shared, name, kind, dynamo) {
        Ok(s) => println!("fixture {label}: PASS {s}"),
        Err(e) => {
            let e = e.split_whitespace().collect::<Vec<_>>().join(" ");
            println!("fixture {label}: FAIL {e}");
            panic!("fixture {label}: {e}");
        }
    }
}

#[test]
fn bert_tiny_legacy() {
    fixture("bert-tiny", Kind::Encoder, false);
}

#[test]
fn bert_tiny_dynamo() {
    fixture("bert-tiny", Kind::Encoder, true);
}

#[test]
fn gpt2_tiny_legacy() {
    fixture("gpt2-tiny", Kind::Causal, false);
}

#[test]
fn gpt2_tiny_dynamo() {
    fixture("gpt2-tiny", Kind::Causal, true);
}

#[test]
fn llama_tiny_legacy() {
    fixture("llama-tiny", Kind::Causal, false);
}

#[test]
fn llama_tiny_dynamo() {
    fixture("llama-tiny", Kind::Causal, true);
}

#[test]
fn vit_tiny_legacy() {
    fixture("vit-tiny", Kind::Vision, false);
}

#[test]
fn vit_tiny_dynamo() {
    fixture("vit-tiny", Kind::Vision, true);
}

#[test]
fn resnet_tiny_legacy() {
    fixture("resnet-tiny", Kind::Vision, false);
}

#[test]
fn resnet_tiny_dynamo() {
    fixture("resnet-tiny", Kind::Vision, true);
}
