//! Loss importers: `NegativeLogLikelihoodLoss` with weights, a negative `ignore_index` and a
//! symbolic batch (reductions none, sum, mean), and `SoftmaxCrossEntropyLoss` with i32 labels,
//! `ignore_index` and its `log_prob` output, checked against hand-computed losses.

// `Error` is large by design (see the crate root).
#![allow(clippy::result_large_err)]

use crate::onnx_ops_model;

use kiln_frontends::onnx::proto::tensor_proto::DataType;
use kiln_frontends::Error;
use kiln_runtime::{DType, Tensor};
use onnx_ops_model::{ai, as_, close, f32s, Model};
use std::collections::BTreeMap;

/// Imports `m` and runs it on the named inputs; the outputs in order.
fn eval(m: &Model, outs: &[&str], inputs: Vec<(&str, Tensor)>) -> Vec<Tensor> {
    let g = m.import(outs).unwrap_or_else(|e| panic!("{e}"));
    let inputs: BTreeMap<String, Tensor> = inputs
        .into_iter()
        .map(|(n, t)| (n.to_string(), t))
        .collect();
    kiln_compiler::interp::run(&g, &inputs)
        .unwrap()
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

/// An NLL model over `x: [batch, 3, 2]`, `t: [batch, 2]` with weights `[1, 2, 0.5]` and
/// `ignore_index = -1`.
fn nll_model(reduction: &str) -> Model {
    Model::new(22)
        .input("x", DataType::Float, &["batch", "3", "2"])
        .input("t", DataType::Int64, &["batch", "2"])
        .floats("w", &[3], &[1.0, 2.0, 0.5])
        .node(
            "NegativeLogLikelihoodLoss",
            &["x", "t", "w"],
            &["y"],
            vec![as_("reduction", reduction), ai("ignore_index", -1)],
        )
}

#[test]
fn nll_weights_ignore_index_and_reductions() {
    // x[n, c, d] = -0.1 · (flat index + 1).
    let x = f32s(
        &[2, 3, 2],
        &(0..12).map(|i| -0.1 * (i + 1) as f32).collect::<Vec<_>>(),
    );
    // The ignored -1 would be out of range for the gathers: it must be masked before them.
    let t = Tensor::from_i64(vec![2, 2], vec![0, 2, -1, 1]).unwrap();
    let run = |reduction: &str| {
        let ins = vec![("x", x.clone()), ("t", t.clone())];
        eval(&nll_model(reduction), &["y"], ins).remove(0)
    };
    // loss[0,0] = 0.1·w0, loss[0,1] = x[0,2,1] → 0.6·w2, loss[1,0] ignored, loss[1,1] =
    // x[1,1,1] → 1.0·w1.
    let none = run("none");
    assert_eq!(none.shape(), &[2, 2]);
    close(&none, &[0.1, 0.3, 0.0, 2.0]);
    let sum = run("sum");
    assert!(sum.shape().is_empty());
    close(&sum, &[2.4]);
    // Mean divides by the weights of the non-ignored positions: 1 + 0.5 + 2.
    close(&run("mean"), &[2.4 / 3.5]);

    // Without weights or ignore_index, mean is the plain average.
    let plain = Model::new(13)
        .input("x", DataType::Float, &["2", "3", "2"])
        .input("t", DataType::Int64, &["2", "2"])
        .node("NegativeLogLikelihoodLoss", &["x", "t"], &["y"], vec![]);
    let t = Tensor::from_i64(vec![2, 2], vec![0, 2, 0, 1]).unwrap();
    let y = eval(&plain, &["y"], vec![("x", x), ("t", t)]);
    close(&y[0], &[(0.1 + 0.6 + 0.7 + 1.0) / 4.0]);
}

/// `ln(Σ exp(row))`.
fn lse(row: &[f64]) -> f64 {
    row.iter().map(|v| v.exp()).sum::<f64>().ln()
}

#[test]
fn sce_i32_labels_ignore_index_and_log_prob() {
    let rows = [[0.0, 1.0, 2.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]];
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    let x = f32s(&[3, 3], &flat);
    let labels = Tensor::from_i64_values(DType::I32, vec![3], &[2, 1, 0]).unwrap();
    let m = Model::new(13)
        .input("x", DataType::Float, &["n", "3"])
        .input("l", DataType::Int32, &["n"])
        .node(
            "SoftmaxCrossEntropyLoss",
            &["x", "l"],
            &["loss", "log_prob"],
            vec![ai("ignore_index", 1)],
        );
    let out = eval(&m, &["loss", "log_prob"], vec![("x", x), ("l", labels)]);
    // Row 1 is ignored; the mean is over the two others.
    let l0 = lse(&rows[0]) - 2.0;
    let l2 = lse(&rows[2]) - 3.0;
    close(&out[0], &[(l0 + l2) / 2.0]);
    let lp: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.iter().map(move |v| v - lse(r)))
        .collect();
    close(&out[1], &lp);
}

#[test]
fn bad_reduction_and_shapes_are_refused() {
    let bad = nll_model("avg").import(&["y"]);
    let e = bad.unwrap_err();
    assert!(matches!(e, Error::Node { .. }), "{e}");
    assert!(e.to_string().contains("reduction"), "{e}");
    // The target must have one rank less than the input.
    let m = Model::new(12)
        .input("x", DataType::Float, &["2", "3"])
        .input("t", DataType::Int64, &["2", "3"])
        .node("SoftmaxCrossEntropyLoss", &["x", "t"], &["y"], vec![]);
    let e = m.import(&["y"]).unwrap_err();
    assert!(e.to_string().contains("one rank less"), "{e}");
}
