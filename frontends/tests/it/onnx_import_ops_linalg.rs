//! Linear-algebra and integer importers: Gemm (transposes, alpha/beta, bias broadcast),
//! integer MatMul (lowered to multiply + sum), Einsum (diagonals, contractions, implicit
//! output, symbolic batch), BitShift-28 shift amounts, CumSum with a run-time axis.

// `Error` is large by design (see the crate root).
#![allow(clippy::result_large_err)]

use crate::onnx_ops_model;

use kiln_frontends::onnx::proto::tensor_proto::DataType;
use kiln_frontends::onnx::proto::*;
use kiln_runtime::{DType, Tensor};
use onnx_ops_model::{af, ai, as_, close, f32s, ramp, Model};
use std::collections::BTreeMap;

#[test]
fn gemm_integer_matmul_and_einsum() {
    let x = ramp(&[2, 3]);
    let gemm = Model::new(11)
        .input("x", DataType::Float, &["2", "3"])
        .floats("b", &[2, 3], &[1., 0., 1., 0., 1., 0.])
        .floats("c", &[2], &[1.0, 2.0]);
    let gemm = gemm.node(
        "Gemm",
        &["x", "b", "c"],
        &["y"],
        vec![ai("transB", 1), af("alpha", 2.0), af("beta", 0.5)],
    );
    // x·bᵀ = [[-1.5, -0.75], [0, 0]] → ·2 + [0.5, 1].
    close(&gemm.eval(&["y"], x.clone())[0], &[-2.5, -0.5, 0.5, 1.0]);
    // Integer MatMul (the IR matmul takes floats): [3] · [3, 2], exact.
    let mm =
        Model::new(13)
            .input("x", DataType::Int64, &["3"])
            .ints("b", &[3, 2], &[1, 2, 3, 4, 5, 6]);
    let got = mm
        .node("MatMul", &["x", "b"], &["y"], vec![])
        .eval(&["y"], Tensor::from_i64(vec![3], vec![1, -1, 2]).unwrap());
    assert_eq!(
        (got[0].shape().to_vec(), got[0].to_i64_vec()),
        (vec![2], vec![8, 10])
    );
    // Einsum: a trace-like diagonal, and a contraction with a symbolic batch.
    let e = |eq: &str| {
        Model::new(12)
            .input("x", DataType::Float, &["batch", "3", "3"])
            .node("Einsum", &["x", "x"], &["y"], vec![as_("equation", eq)])
    };
    let y = ramp(&[2, 3, 3]);
    let v = y.to_f64_vec();
    let diag = Model::new(12)
        .input("x", DataType::Float, &["b", "3", "3"])
        .node(
            "Einsum",
            &["x"],
            &["y"],
            vec![as_("equation", "...ii->...i")],
        );
    close(
        &diag.eval(&["y"], y.clone())[0],
        &[v[0], v[4], v[8], v[9], v[13], v[17]],
    );
    let got = e("bij,bjk->bik").eval(&["y"], y.clone());
    let want: Vec<f64> = (0..18)
        .map(|o| {
            (0..3)
                .map(|j| v[(o / 9) * 9 + ((o % 9) / 3) * 3 + j] * v[(o / 9) * 9 + j * 3 + o % 3])
                .sum()
        })
        .collect();
    close(&got[0], &want);
    let ty = |eq| {
        let g = e(eq).import(&["y"]).unwrap();
        g.value(g.outputs()[0].1).ty.to_string()
    };
    assert_eq!(ty("bij,bjk->bik"), "f32[batch, 3, 3]");
    // Implicit output: the labels used once, sorted (b is summed).
    assert_eq!(ty("bij,bjk"), "f32[3, 3]");
}

#[test]
fn shifts_and_cumsum_with_run_time_inputs() {
    // BitShift-28: negative or too-large amounts give 0, or -1 for a right shift of a negative.
    let sh = Model::new(28).input("x", DataType::Int8, &["4"]).init(
        "s",
        TensorProto {
            data_type: DataType::Int8 as i32,
            dims: vec![4],
            int32_data: vec![1, -1, 9, 2],
            ..Default::default()
        },
    );
    let x = Tensor::from_i64_values(DType::I8, vec![4], &[-8, -8, -8, 64]).unwrap();
    let r = sh
        .node(
            "BitShift",
            &["x", "s"],
            &["r"],
            vec![as_("direction", "RIGHT")],
        )
        .node(
            "BitShift",
            &["x", "s"],
            &["l"],
            vec![as_("direction", "LEFT")],
        );
    let out = r.eval(&["r", "l"], x);
    assert_eq!(
        (out[0].to_i64_vec(), out[1].to_i64_vec()),
        (vec![-4, -1, -1, 16], vec![-16, 0, 0, 0])
    );
    // CumSum with the axis fed at run time selects among the per-axis sums.
    let g = Model::new(14)
        .input("x", DataType::Float, &["2", "2"])
        .input("a", DataType::Int32, &[])
        .node("CumSum", &["x", "a"], &["y"], vec![]);
    let g = g.import(&["y"]).unwrap();
    let x = f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    for (axis, want) in [(0, [1.0, 2.0, 4.0, 6.0]), (-1, [1.0, 3.0, 3.0, 7.0])] {
        let inputs: BTreeMap<String, Tensor> = [
            ("x".to_string(), x.clone()),
            (
                "a".to_string(),
                Tensor::from_i64_values(DType::I32, vec![], &[axis]).unwrap(),
            ),
        ]
        .into();
        let got = kiln_compiler::interp::run(&g, &inputs).unwrap();
        close(&got[0].1, &want);
    }
}

#[test]
fn integer_pow_mod_and_gemm_follow_numpy() {
    let x = Tensor::from_i64_values(DType::I32, vec![4], &[-7, 2, 3, 4]).unwrap();
    // Pow-15 with an integer base and a float exponent: computed in f64, truncated back.
    let pow = Model::new(15)
        .input("x", DataType::Int32, &["4"])
        .floats("e", &[4], &[1.0, 0.5, 2.0, 1.5])
        .node("Pow", &["x", "e"], &["y"], vec![]);
    let got = pow.eval(&["y"], x.clone());
    assert_eq!(
        (got[0].dtype(), got[0].to_i64_vec()),
        (DType::I32, vec![-7, 1, 9, 8])
    );
    // Mod: floor (sign of the divisor) by default, C fmod with fmod=1.
    let m = |fmod| {
        let t = TensorProto {
            data_type: DataType::Int32 as i32,
            dims: vec![],
            int32_data: vec![-3],
            ..Default::default()
        };
        let m = Model::new(13)
            .input("x", DataType::Int32, &["4"])
            .init("d", t);
        m.node("Mod", &["x", "d"], &["y"], vec![ai("fmod", fmod)])
    };
    assert_eq!(
        m(0).eval(&["y"], x.clone())[0].to_i64_vec(),
        vec![-1, -1, 0, -2]
    );
    assert_eq!(m(1).eval(&["y"], x)[0].to_i64_vec(), vec![-1, 2, 0, 1]);
    // Integer Gemm with a fractional alpha: f64 arithmetic, truncated to the input dtype.
    let a = Tensor::from_i64(vec![1, 2], vec![3, 1]).unwrap();
    let gemm = Model::new(13)
        .input("x", DataType::Int64, &["1", "2"])
        .ints("b", &[2, 1], &[1, 2])
        .node("Gemm", &["x", "b"], &["y"], vec![af("alpha", 0.5)]);
    assert_eq!(gemm.eval(&["y"], a)[0].to_i64_vec(), vec![2]);
}
