//! ONNX import of neural-network and transformer ops: small models built with the proto
//! structs, imported, checked for the IR ops they lower to and run on the reference interpreter
//! against computations written out here.

// `Error` is large by design (see the crate root).
#![allow(clippy::result_large_err)]

use crate::onnx_common;

use kiln_compiler::interp::run;
use kiln_compiler::ir::Graph;
use kiln_frontends::onnx::import::import_file;
use kiln_frontends::onnx::proto::attribute_proto::AttributeType;
use kiln_frontends::onnx::proto::tensor_proto::DataType;
use kiln_frontends::onnx::proto::tensor_shape_proto::{dimension, Dimension};
use kiln_frontends::onnx::proto::*;
use kiln_frontends::Error;
use kiln_runtime::Tensor;
use onnx_common::{expect, model, node, tensor, value, write};
use std::collections::BTreeMap;

/// A typed f32 graph input; dims `< 0` are the symbol `batch`.
fn io(name: &str, dims: &[i64]) -> ValueInfoProto {
    let sym = |d: i64| match d {
        ..0 => dimension::Value::DimParam("batch".into()),
        _ => dimension::Value::DimValue(d),
    };
    let dim = dims.iter().map(|&d| Dimension {
        value: Some(sym(d)),
        ..Default::default()
    });
    let shape = Some(TensorShapeProto { dim: dim.collect() });
    let tt = type_proto::Tensor {
        elem_type: DataType::Float as i32,
        shape,
    };
    let ty = TypeProto {
        value: Some(type_proto::Value::TensorType(tt)),
        ..Default::default()
    };
    ValueInfoProto {
        r#type: Some(ty),
        ..value(name)
    }
}

/// An attribute value.
enum A<'a> {
    I(i64),
    Is(&'a [i64]),
    F(f32),
    S(&'a str),
}

/// `node` with attributes.
fn with(mut n: NodeProto, attrs: &[(&str, A)]) -> NodeProto {
    for (name, v) in attrs {
        let mut a = AttributeProto {
            name: name.to_string(),
            ..Default::default()
        };
        let t = match v {
            A::I(i) => (a.i = *i, AttributeType::Int).1,
            A::Is(v) => (a.ints = v.to_vec(), AttributeType::Ints).1,
            A::F(f) => (a.f = *f, AttributeType::Float).1,
            A::S(s) => (a.s = s.as_bytes().to_vec(), AttributeType::String).1,
        };
        a.r#type = t as i32;
        n.attribute.push(a);
    }
    n
}

fn weight(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        float_data: v.to_vec(),
        ..tensor(name, DataType::Float, dims)
    }
}

/// Deterministic values in [-1, 1].
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729) % 1009) as f32 / 504.0 - 1.0)
        .collect()
}

/// One node with attributes, f32 inputs/outputs, weights and `opset`, imported.
fn import_one(
    op: NodeProto,
    inits: Vec<TensorProto>,
    ins: &[(&str, &[i64])],
    outs: &[&str],
    opset: i64,
) -> Result<Graph, Error> {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model(inits, vec![op], &[], outs);
    m.opset_import[0].version = opset;
    m.graph.as_mut().unwrap().input = ins.iter().map(|(n, d)| io(n, d)).collect();
    import_file(&write(dir.path(), &m))
}

/// Asserts that the graph's IR text holds every `has` and none of `lacks`.
#[track_caller]
fn check(g: &Graph, has: &[&str], lacks: &[&str]) {
    let t = kiln_compiler::text::print(g).unwrap();
    let ok = has.iter().all(|s| t.contains(s)) && !lacks.iter().any(|s| t.contains(s));
    assert!(ok, "{t}");
}

fn f64s(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

/// Runs `g` on f32 inputs (named and shaped as for `import_one`), returning every output.
fn eval(g: &Graph, ins: &[(&str, &[i64])], data: &[&[f32]]) -> Vec<Vec<f64>> {
    let mut map = BTreeMap::new();
    for ((name, dims), v) in ins.iter().zip(data) {
        // The symbolic dim (`< 0`) takes whatever the data's length leaves.
        let fixed: i64 = dims.iter().filter(|&&d| d >= 0).product();
        let size = |&d: &i64| usize::try_from(d).unwrap_or(v.len() / fixed as usize);
        let t = Tensor::from_f32(dims.iter().map(size).collect(), v.to_vec()).unwrap();
        map.insert(name.to_string(), t);
    }
    let outs = run(g, &map).unwrap();
    outs.into_iter().map(|(_, t)| t.to_f64_vec()).collect()
}

#[track_caller]
fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 + 1e-4 * w.abs(),
            "{i}: {g} vs {w} in {got:?}"
        );
    }
}

#[test]
fn layer_norm_over_last_axis_is_an_ir_layer_norm() {
    let (g, b) = (values(4, 1), values(4, 2));
    let n = node("ln", "LayerNormalization", &["x", "g", "b"], &["y"]);
    let n = with(n, &[("epsilon", A::F(1e-3))]);
    let inits = vec![weight("g", &[4], &g), weight("b", &[4], &b)];
    let graph = import_one(n, inits, &[("x", &[-1, 4])], &["y"], 17).unwrap();
    check(&graph, &["layer_norm(%x"], &["reduce_mean"]);
    let x = values(12, 3);
    let y = &eval(&graph, &[("x", &[3, 4])], &[&x])[0];
    let mut want = Vec::new();
    for row in x.chunks(4) {
        let m = row.iter().map(|&v| f64::from(v)).sum::<f64>() / 4.0;
        let var = row.iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>() / 4.0;
        for j in 0..4 {
            let norm = (f64::from(row[j]) - m) / (var + 1e-3).sqrt();
            want.push(norm * f64::from(g[j]) + f64::from(b[j]));
        }
    }
    close(y, &want);
}

#[test]
fn rms_norm_lowers_to_rms_norm_on_any_axis() {
    let n = node("rms", "RMSNormalization", &["x", "g"], &["y"]);
    let inits = vec![weight("g", &[4], &values(4, 5))];
    let graph = import_one(n.clone(), inits, &[("x", &[2, 4])], &["y"], 23).unwrap();
    check(&graph, &["rms_norm(%x"], &[]);
    // Over axes 1..3 of [2, 2, 3]: flattened to [2, 6], normalised, reshaped back.
    let g6 = values(6, 6);
    let n = with(n, &[("axis", A::I(1))]);
    let inits = vec![weight("g", &[2, 3], &g6)];
    let graph = import_one(n, inits, &[("x", &[2, 2, 3])], &["y"], 23).unwrap();
    check(&graph, &["rms_norm("], &[]);
    let x = values(12, 7);
    let y = &eval(&graph, &[("x", &[2, 2, 3])], &[&x])[0];
    let mut want = Vec::new();
    for run in x.chunks(6) {
        let ms = run.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 6.0;
        let r = 1.0 / (ms + 1e-5).sqrt();
        want.extend(
            run.iter()
                .zip(&g6)
                .map(|(&v, &w)| f64::from(v) * r * f64::from(w)),
        );
    }
    close(y, &want);
}

#[test]
fn conv_same_upper_pads_the_end() {
    let attrs = [
        ("auto_pad", A::S("SAME_UPPER")),
        ("strides", A::Is(&[2, 2])),
    ];
    let n = with(node("c", "Conv", &["x", "w"], &["y"]), &attrs);
    let w = vec![weight("w", &[1, 1, 3, 3], &[1.0; 9])];
    let graph = import_one(n.clone(), w.clone(), &[("x", &[1, 1, 6, 6])], &["y"], 22).unwrap();
    check(&graph, &["pads = [0, 0, 1, 1]", "f32[1, 1, 3, 3]"], &[]);
    let x: Vec<f32> = (0..36).map(|v| v as f32).collect();
    let y = &eval(&graph, &[("x", &[1, 1, 6, 6])], &[&x])[0];
    // Output (0, 0) sums rows 0..3 × cols 0..3 (x = 0 at the origin); output (2, 2) rows 4..6 × cols 4..6.
    assert_eq!(y[0], f64::from(1 + 2 + 6 + 7 + 8 + 12 + 13 + 14));
    assert_eq!(y[8], f64::from(28 + 29 + 34 + 35));
    // SAME padding needs the input size.
    let e = import_one(n, w, &[("x", &[1, 1, -1, 6])], &["y"], 22).unwrap_err();
    expect(e, "Unsupported", "needs known spatial dims");
}

#[test]
fn max_pool_indices_are_refused() {
    let n = node("p", "MaxPool", &["x"], &["y", "i"]);
    let n = with(n, &[("kernel_shape", A::Is(&[2, 2]))]);
    let e = import_one(n, vec![], &[("x", &[1, 1, 4, 4])], &["y", "i"], 22).unwrap_err();
    expect(e, "Unsupported", "Indices");
}

/// Attention written out: q `[1, H, Sq, D]`, k/v `[1, Hkv, Sk, D]`, no mask.
fn attention_ref(q: &[f32], k: &[f32], v: &[f32], [h, hkv, sq, sk, d]: [usize; 5]) -> Vec<f64> {
    let mut out = Vec::new();
    for hi in 0..h {
        let kh = hi / (h / hkv);
        for i in 0..sq {
            let qrow = &q[(hi * sq + i) * d..][..d];
            let scores: Vec<f64> = (0..sk)
                .map(|j| {
                    let krow = &k[(kh * sk + j) * d..][..d];
                    let dot: f64 = qrow.iter().zip(krow).map(|(&a, &c)| f64::from(a * c)).sum();
                    dot / (d as f64).sqrt()
                })
                .collect();
            let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
            let tot: f64 = e.iter().sum();
            for c in 0..d {
                let vcol = (0..sk).map(|j| e[j] / tot * f64::from(v[(kh * sk + j) * d + c]));
                out.push(vcol.sum());
            }
        }
    }
    out
}

#[test]
fn attention_3d_causal_lowers_to_ir_attention() {
    let heads = [
        ("q_num_heads", A::I(2)),
        ("kv_num_heads", A::I(2)),
        ("is_causal", A::I(1)),
    ];
    let n = with(node("a", "Attention", &["q", "k", "v"], &["y"]), &heads);
    let ins: &[(&str, &[i64])] = &[("q", &[-1, 3, 8]), ("k", &[-1, 3, 8]), ("v", &[-1, 3, 8])];
    let graph = import_one(n.clone(), vec![], ins, &["y"], 23).unwrap();
    check(&graph, &["attention(", "causal = true, bias = false"], &[]);
    // Asking for the scores forces the decomposed form (matmul, bias, softmax, matmul).
    let mut n2 = n;
    n2.output.extend(["".into(), "".into(), "qk".into()]);
    let decomposed = import_one(n2, vec![], ins, &["y", "qk"], 23).unwrap();
    check(&decomposed, &["softmax("], &["attention("]);
    let (q, k, v) = (values(48, 1), values(48, 2), values(48, 3));
    let fused = eval(&graph, ins, &[&q, &k, &v]);
    let plain = eval(&decomposed, ins, &[&q, &k, &v]);
    close(&fused[0], &plain[0]);
    // Query 0 of batch 0, head 0 sees key 0 only: its output is v's first row of head 0.
    close(&fused[0][..4], &f64s(&v[..4]));
}

#[test]
fn attention_gqa_with_past_mask_and_softcap() {
    // 4 query heads over 2 kv heads, 2 new keys after 1 past key, bool mask hiding key 0 from
    // query 0 and every key from query 1 (that row must come out zero, not NaN).
    let (i, outs) = (["q", "k", "v", "m", "pk", "pv"], ["y", "pk2", "pv2"]);
    let n = node("a", "Attention", &i, &outs);
    let mask = TensorProto {
        int32_data: vec![0, 1, 1, 0, 0, 0],
        ..tensor("m", DataType::Bool, &[2, 3])
    };
    let (kv, p): (&[i64], &[i64]) = (&[1, 2, 2, 4], &[1, 2, 1, 4]);
    let q4: &[i64] = &[1, 4, 2, 4];
    let ins: &[(&str, &[i64])] = &[("q", q4), ("k", kv), ("v", kv), ("pk", p), ("pv", p)];
    let graph = import_one(n.clone(), vec![mask.clone()], ins, &outs, 23).unwrap();
    check(&graph, &["= attention("], &[]);
    let [q, k, v, pk, pv] = [(32, 1), (16, 2), (16, 3), (8, 4), (8, 5)].map(|(n, s)| values(n, s));
    let feed: &[&[f32]] = &[&q, &k, &v, &pk, &pv];
    let got = eval(&graph, ins, feed);
    let cat = |p: &[f32], x: &[f32]| -> Vec<f32> {
        (0..2)
            .flat_map(|h| [&p[h * 4..h * 4 + 4], &x[h * 8..h * 8 + 8]].concat())
            .collect()
    };
    let (ka, va) = (cat(&pk, &k), cat(&pv, &v));
    close(&got[1], &f64s(&ka));
    // Query 0 sees keys 1 and 2 only: run the reference on those keys.
    let keys12 = |x: &[f32]| -> Vec<f32> {
        (0..2)
            .flat_map(|h| x[h * 12 + 4..h * 12 + 12].to_vec())
            .collect()
    };
    let want = attention_ref(&q, &keys12(&ka), &keys12(&va), [4, 2, 2, 2, 4]);
    for h in 0..4 {
        close(&got[0][h * 8..h * 8 + 4], &want[h * 8..h * 8 + 4]);
        let empty = &got[0][h * 8 + 4..h * 8 + 8];
        assert!(empty.iter().all(|&x| x == 0.0), "{empty:?}");
    }
    // Softcap needs the scores: decomposed into matmul / tanh / softmax, same empty-row rule.
    let capped = with(n, &[("softcap", A::F(50.0))]);
    let graph = import_one(capped, vec![mask], ins, &outs, 23).unwrap();
    check(&graph, &["tanh(", "softmax("], &["attention("]);
    let y = &eval(&graph, ins, feed)[0];
    let near = y.iter().zip(&got[0]).all(|(a, b)| (a - b).abs() < 0.02);
    assert!(near, "{y:?}");
}

#[test]
fn rotary_embedding_rotates_halves() {
    let n = node("r", "RotaryEmbedding", &["x", "cos", "sin", "pos"], &["y"]);
    let (cos, sin) = (values(6, 1), values(6, 2));
    let pos = TensorProto {
        int64_data: vec![2, 0],
        ..tensor("pos", DataType::Int64, &[1, 2])
    };
    let mut inits = vec![pos];
    inits.extend([("cos", &cos), ("sin", &sin)].map(|(n, v)| weight(n, &[3, 2], v)));
    let graph = import_one(n, inits, &[("x", &[1, 1, 2, 4])], &["y"], 23).unwrap();
    let x = values(8, 3);
    let y = &eval(&graph, &[("x", &[1, 1, 2, 4])], &[&x])[0];
    let mut want = Vec::new();
    for (s, p) in [(0, 2), (1, 0)] {
        let r = f64s(&x[s * 4..s * 4 + 4]);
        let (c, sn) = (f64s(&cos[p * 2..]), f64s(&sin[p * 2..]));
        want.extend([c[0] * r[0] - sn[0] * r[2], c[1] * r[1] - sn[1] * r[3]]);
        want.extend([sn[0] * r[0] + c[0] * r[2], sn[1] * r[1] + c[1] * r[3]]);
    }
    close(y, &want);
}

#[test]
fn batch_norm_inference_and_training_mode() {
    let (s, b, m, v) = (values(2, 1), values(2, 2), values(2, 3), [0.5f32, 2.0]);
    let inits = || {
        let names = [("s", &s[..]), ("b", &b[..]), ("m", &m[..]), ("v", &v[..])];
        names
            .iter()
            .map(|(n, x)| weight(n, &[2], x))
            .collect::<Vec<_>>()
    };
    let i = ["x", "s", "b", "m", "v"];
    let n = node("bn", "BatchNormalization", &i, &["y"]);
    let graph = import_one(n.clone(), inits(), &[("x", &[1, 2, 2])], &["y"], 15).unwrap();
    let x = values(4, 4);
    let y = &eval(&graph, &[("x", &[1, 2, 2])], &[&x])[0];
    let (x64, s64, b64, m64, v64) = (f64s(&x), f64s(&s), f64s(&b), f64s(&m), f64s(&v));
    let want: Vec<f64> = (0..4)
        .map(|i| (x64[i] - m64[i / 2]) / (v64[i / 2] + 1e-5).sqrt() * s64[i / 2] + b64[i / 2])
        .collect();
    close(y, &want);
    let mut n = with(n, &[("training_mode", A::I(1))]);
    n.output.extend(["rm".into(), "rv".into()]);
    let graph = import_one(n, inits(), &[("x", &[1, 2, 2])], &["y", "rm", "rv"], 15).unwrap();
    let got = eval(&graph, &[("x", &[1, 2, 2])], &[&x]);
    let running = m64[0] * 0.9 + (x64[0] + x64[1]) / 2.0 * 0.1;
    close(&got[1][..1], &[running]);
}

#[test]
fn resize_nearest_gathers_and_linear_multiplies() {
    // Nearest ×2 along the last axis (asymmetric, floor) is a gather of [0, 0, 1, 1, 2, 2].
    let scales = weight("s", &[3], &[1.0, 1.0, 2.0]);
    let ins: &[(&str, &[i64])] = &[("x", &[-1, 2, 3])];
    let at = [
        ("coordinate_transformation_mode", A::S("asymmetric")),
        ("nearest_mode", A::S("floor")),
    ];
    let n = with(node("r", "Resize", &["x", "", "s"], &["y"]), &at);
    let graph = import_one(n, vec![scales.clone()], ins, &["y"], 19).unwrap();
    check(&graph, &["gather("], &["matmul("]);
    let x: Vec<f32> = (0..6).map(|v| v as f32).collect();
    let want = [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0];
    close(&eval(&graph, ins, &[&x])[0], &want);
    // Linear, half_pixel: y[j] interpolates x at (j + 0.5) / 2 - 0.5, clamped at the edges.
    let n = with(
        node("r", "Resize", &["x", "", "s"], &["y"]),
        &[("mode", A::S("linear"))],
    );
    let graph = import_one(n, vec![scales], ins, &["y"], 19).unwrap();
    check(&graph, &["matmul("], &[]);
    let want = [
        0.0, 0.25, 0.75, 1.25, 1.75, 2.0, 3.0, 3.25, 3.75, 4.25, 4.75, 5.0,
    ];
    close(&eval(&graph, ins, &[&x])[0], &want);
}
