//! Elementwise, activation and reduction importers: opset-variant behaviour (axes as attribute
//! or input, `noop_with_empty_axes`, Softmax/Hardmax coercion before opset 13, Clip bounds,
//! legacy broadcasting, Dropout masks, Cast-1 type names) and the refusals. (The reduce
//! conformance cases with pinned axes run in the root package's `onnx_pinned` test.)

// `Error` is large by design (see the crate root).
#![allow(clippy::result_large_err)]

use crate::onnx_ops_model;

use kiln_frontends::onnx::proto::tensor_proto::DataType;
use kiln_runtime::DType;
use onnx_ops_model::{af, ai, ais, as_, close, f32s, ramp, unsupported, Model};

#[test]
fn reduce_axes_as_attribute_or_input_and_noop() {
    let x = ramp(&[2, 3]);
    let old = Model::new(11).input("x", DataType::Float, &["2", "3"]);
    let old = old.node(
        "ReduceSum",
        &["x"],
        &["y"],
        vec![ais("axes", &[1]), ai("keepdims", 0)],
    );
    let new = Model::new(13)
        .input("x", DataType::Float, &["2", "3"])
        .ints("a", &[1], &[-1]);
    let new = new.node("ReduceSum", &["x", "a"], &["y"], vec![ai("keepdims", 0)]);
    close(&old.eval(&["y"], x.clone())[0], &[-2.25, 0.0]);
    close(&new.eval(&["y"], x.clone())[0], &[-2.25, 0.0]);
    // No axes: all of them, unless noop_with_empty_axes (then composite ops keep their
    // elementwise part: ReduceSumSquare gives x²).
    let all = Model::new(13)
        .input("x", DataType::Float, &["2", "3"])
        .node("ReduceSum", &["x"], &["y"], vec![]);
    close(&all.eval(&["y"], x.clone())[0], &[-2.25]);
    let noop = Model::new(18)
        .input("x", DataType::Float, &["2", "3"])
        .ints("a", &[0], &[]);
    let noop = noop.node(
        "ReduceSumSquare",
        &["x", "a"],
        &["y"],
        vec![ai("noop_with_empty_axes", 1)],
    );
    let sq: Vec<f64> = x.to_f64_vec().iter().map(|v| v * v).collect();
    close(&noop.eval(&["y"], x.clone())[0], &sq);
    // Axes that only exist at run time cannot become the IR's static axes.
    let rt = Model::new(18)
        .input("x", DataType::Float, &["2", "3"])
        .input("a", DataType::Int64, &["1"]);
    unsupported(
        rt.node("ReduceMean", &["x", "a"], &["y"], vec![])
            .import(&["y"]),
        "axes computed at run time",
    );
}

/// Softmax of each row of `v` (rows of length `n`).
fn softmax_rows(v: &[f64], n: usize) -> Vec<f64> {
    v.chunks(n)
        .flat_map(|r| {
            let s: f64 = r.iter().map(|x| x.exp()).sum();
            r.iter().map(move |x| x.exp() / s)
        })
        .collect()
}

#[test]
fn softmax_coerces_to_2d_before_opset_13() {
    let x = ramp(&[2, 3, 2]);
    let v = x.to_f64_vec();
    let m = |opset| {
        let m = Model::new(opset).input("x", DataType::Float, &["batch", "3", "2"]);
        m.node("Softmax", &["x"], &["y"], vec![ai("axis", 1)])
    };
    // Opset 11: one softmax over the 6 elements of each batch row.
    close(&m(11).eval(&["y"], x.clone())[0], &softmax_rows(&v, 6));
    // Opset 13: over axis 1 only (transpose so that axis 1 is innermost, then back).
    let t: Vec<f64> = (0..12)
        .map(|i| v[(i / 6) * 6 + (i % 3) * 2 + (i % 6) / 3])
        .collect();
    let st = softmax_rows(&t, 3);
    let want: Vec<f64> = (0..12)
        .map(|j| st[(j / 6) * 6 + (j % 2) * 3 + (j % 6) / 2])
        .collect();
    close(&m(13).eval(&["y"], x.clone())[0], &want);
    // The symbolic batch survives the coercion reshapes.
    let g = m(11).import(&["y"]).unwrap();
    assert_eq!(g.value(g.outputs()[0].1).ty.to_string(), "f32[batch, 3, 2]");
    // Hardmax: one 1 per coerced row (the first maximum), or per axis-1 line at opset 13.
    let h = |opset| {
        Model::new(opset)
            .input("x", DataType::Float, &["2", "3", "2"])
            .node("Hardmax", &["x"], &["y"], vec![ai("axis", 1)])
    };
    let one_hot = |k: usize, n: usize| (0..n).map(move |i| f64::from(u8::from(i == k)));
    let want11: Vec<f64> = one_hot(5, 6).chain(one_hot(5, 6)).collect();
    close(&h(11).eval(&["y"], x.clone())[0], &want11);
    close(
        &h(13).eval(&["y"], x)[0],
        &[0., 0., 0., 0., 1., 1., 0., 0., 0., 0., 1., 1.],
    );
}

#[test]
fn clip_bounds_by_opset() {
    let x = f32s(&[5], &[-3.0, 0.5, 3.0, f32::INFINITY, f32::NAN]);
    let clip = |opset, ins: &[&str], attrs| {
        Model::new(opset)
            .input("x", DataType::Float, &["5"])
            .floats("lo", &[], &[2.0])
            .floats("hi", &[1], &[1.0])
            .node("Clip", ins, &["y"], attrs)
    };
    let nan = f64::NAN;
    let got = clip(11, &["x"], vec![]).eval(&["y"], x.clone());
    assert_eq!(
        format!("{:?}", got[0].to_f64_vec()),
        format!("{:?}", [-3.0, 0.5, 3.0, f64::INFINITY, nan])
    );
    let got = clip(11, &["x", "", "hi"], vec![]).eval(&["y"], x.clone());
    assert_eq!(got[0].to_f64_vec()[..4], [-3.0, 0.5, 1.0, 1.0]);
    // min > max gives max everywhere (NaN stays NaN).
    let got = clip(13, &["x", "lo", "hi"], vec![]).eval(&["y"], x.clone());
    assert_eq!(got[0].to_f64_vec()[..4], [1.0; 4]);
    let got = clip(6, &["x"], vec![af("min", -1.0), af("max", 2.0)]).eval(&["y"], x.clone());
    assert_eq!(got[0].to_f64_vec()[..4], [-1.0, 0.5, 2.0, 2.0]);
    // Clip-6 defaults are ±FLT_MAX, so infinity is clamped.
    let got = clip(6, &["x"], vec![]).eval(&["y"], x);
    assert_eq!(got[0].to_f64_vec()[3], f64::from(f32::MAX));
}

#[test]
fn dropout_masks_cast_and_legacy_broadcast() {
    let x = ramp(&[2, 3]);
    let d = |opset, ins: &[&str]| {
        Model::new(opset)
            .input("x", DataType::Float, &["2", "3"])
            .node("Dropout", ins, &["y", "m"], vec![])
    };
    let out = d(7, &["x"]).eval(&["y", "m"], x.clone());
    assert_eq!(
        (out[0].to_f64_vec(), out[1].dtype(), out[1].to_f64_vec()),
        (x.to_f64_vec(), DType::F32, vec![1.0; 6])
    );
    assert_eq!(
        d(10, &["x"]).eval(&["m"], x.clone())[0].to_bool_vec(),
        vec![true; 6]
    );
    let rt = d(13, &["x", "", "t"]).input("t", DataType::Bool, &[]);
    unsupported(
        rt.import(&["y"]),
        "training_mode input computed at run time",
    );
    // A constant training flag is ignored (inference), unless the random mask is requested.
    let train = |outs: &[&str]| {
        Model::new(6)
            .input("x", DataType::Float, &["2", "3"])
            .node("Dropout", &["x"], outs, vec![])
    };
    assert_eq!(train(&["y"]).eval(&["y"], x.clone())[0], x);
    unsupported(train(&["y", "m"]).import(&["y", "m"]), "training mode");
    // Cast-1 names the type; float 8 targets are refused.
    let cast = |to| {
        Model::new(1).input("x", DataType::Float, &["2", "3"]).node(
            "Cast",
            &["x"],
            &["y"],
            vec![to],
        )
    };
    let got = cast(as_("to", "INT32")).eval(&["y"], x.clone());
    assert_eq!(
        (got[0].dtype(), got[0].to_i64_vec()),
        (DType::I32, vec![-1, 0, 0, 0, 0, 0])
    );
    unsupported(
        cast(ai("to", DataType::Float8e4m3fn as i64)).import(&["y"]),
        "FLOAT8E4M3FN",
    );
    // Add-6 with broadcast=1, axis=0: B [2] aligns with A's first dim.
    let add = Model::new(6)
        .input("x", DataType::Float, &["2", "3"])
        .floats("b", &[2], &[10.0, 20.0]);
    let add = add.node(
        "Add",
        &["x", "b"],
        &["y"],
        vec![ai("broadcast", 1), ai("axis", 0)],
    );
    close(
        &add.eval(&["y"], x)[0],
        &[9.0, 9.25, 9.5, 19.75, 20.0, 20.25],
    );
}
