//! Shape and index importers: symbolic folding of shape computations (batch and seq stay
//! symbolic and the graph runs at several sizes) and opset variants. (The ONNX node
//! conformance cases with pinned shape inputs run in the root package's `onnx_pinned` test.)

// `Error` is large by design (see the crate root); protos are built field by field.
#![allow(clippy::result_large_err, clippy::field_reassign_with_default)]

use kiln_compiler::ir::Graph;
use kiln_frontends::onnx::import::import_file;
use kiln_frontends::onnx::proto::attribute_proto::AttributeType as A;
use kiln_frontends::onnx::proto::tensor_proto::DataType;
use kiln_frontends::onnx::proto::tensor_shape_proto::{dimension, Dimension};
use kiln_frontends::onnx::proto::*;
use kiln_frontends::Error;
use kiln_runtime::Tensor;
use prost::Message;
use std::collections::BTreeMap;

/// `key=value`: `[1,2]` ints, `1` int, `1.5` float, `t1.5` a one-f32 tensor, else a string.
fn attribute(kv: &str) -> AttributeProto {
    let (name, v) = kv.split_once('=').unwrap();
    let mut a = AttributeProto::default();
    a.name = name.to_string();
    let ty = if let Some(list) = v.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        a.ints = list.split(',').map(|x| x.parse().unwrap()).collect();
        A::Ints
    } else if let Ok(i) = v.parse() {
        a.i = i;
        A::Int
    } else if let Ok(f) = v.parse() {
        a.f = f;
        A::Float
    } else if let Some(f) = v.strip_prefix('t') {
        a.t = Some(tensor("", DataType::Float, vec![1], &[f]));
        A::Tensor
    } else {
        a.s = v.as_bytes().to_vec();
        A::String
    };
    a.r#type = ty as i32;
    a
}

/// An i64 or f32 tensor proto holding `words`.
fn tensor(name: &str, dt: DataType, dims: Vec<i64>, words: &[&str]) -> TensorProto {
    let mut t = TensorProto::default();
    (t.name, t.data_type, t.dims) = (name.to_string(), dt as i32, dims);
    match dt {
        DataType::Int64 => t.int64_data = words.iter().map(|w| w.parse().unwrap()).collect(),
        _ => t.float_data = words.iter().map(|w| w.parse().unwrap()).collect(),
    }
    t
}

/// A value info with an optional type.
fn info(name: &str, ty: Option<TypeProto>) -> ValueInfoProto {
    let mut v = ValueInfoProto::default();
    (v.name, v.r#type) = (name.to_string(), ty);
    v
}

/// Imports a model written one item a line: `in NAME f32|i64 DIMS..` (a graph input; words
/// that are not numbers are `dim_param`s), `i64 NAME V..` / `f32 NAME V..` (a 1-D
/// initializer), `scalar NAME V` (a rank-0 i64), `out NAMES..`, or a node
/// `Op IN.. -> OUT.. ; ATTRS..` (an input `_` is omitted).
fn model(opset: i64, spec: &str) -> Result<Graph, Error> {
    let mut g = GraphProto::default();
    for line in spec.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (body, attrs) = line.split_once(';').unwrap_or((line, ""));
        let w: Vec<&str> = body.split_whitespace().collect();
        let dtype = |w: &str| [DataType::Int64, DataType::Float][usize::from(w == "f32")];
        match w[0] {
            "in" => {
                let dim = w[3..].iter().map(|d| {
                    use dimension::Value::{DimParam, DimValue};
                    let mut dim = Dimension::default();
                    dim.value = Some(d.parse().map_or_else(|_| DimParam(d.to_string()), DimValue));
                    dim
                });
                let (mut tt, mut ty) = (type_proto::Tensor::default(), TypeProto::default());
                tt.elem_type = dtype(w[2]) as i32;
                tt.shape = Some(TensorShapeProto { dim: dim.collect() });
                ty.value = Some(type_proto::Value::TensorType(tt));
                g.input.push(info(w[1], Some(ty)));
            }
            "i64" | "f32" | "scalar" => {
                let dims = vec![w.len() as i64 - 2];
                let dims = if w[0] == "scalar" { vec![] } else { dims };
                g.initializer.push(tensor(w[1], dtype(w[0]), dims, &w[2..]));
            }
            "out" => g.output = w[1..].iter().map(|n| info(n, None)).collect(),
            op => {
                let arrow = w.iter().position(|&x| x == "->").unwrap();
                let names = |ws: &[&str]| ws.iter().map(|s| s.replace('_', "")).collect();
                let mut n = NodeProto::default();
                (n.op_type, n.input, n.output) =
                    (op.to_string(), names(&w[1..arrow]), names(&w[arrow + 1..]));
                n.attribute = attrs.split_whitespace().map(attribute).collect();
                g.node.push(n);
            }
        }
    }
    let (mut m, mut set) = (ModelProto::default(), OperatorSetIdProto::default());
    set.version = opset;
    (m.ir_version, m.graph, m.opset_import) = (8, Some(g), vec![set]);
    import(&m)
}

/// Writes a model to a temp folder and imports it.
fn import(m: &ModelProto) -> Result<Graph, Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    import_file(&path)
}

/// The printed types of the outputs.
fn types(g: &Graph) -> Vec<String> {
    let ty = |v| g.value(v).ty.to_string();
    g.outputs().iter().map(|o| ty(o.1)).collect()
}

fn run(g: &Graph, feeds: Vec<(&str, Tensor)>) -> Vec<Tensor> {
    let inputs: BTreeMap<_, _> = feeds.into_iter().map(|(k, v)| (k.into(), v)).collect();
    let outs = kiln_compiler::interp::run(g, &inputs).unwrap();
    outs.into_iter().map(|o| o.1).collect()
}

/// The values of output `i` as f64.
fn values(g: &Graph, feeds: Vec<(&str, Tensor)>, i: usize) -> Vec<f64> {
    run(g, feeds)[i].to_f64_vec()
}

/// Imports a model that must import.
fn ok(opset: i64, spec: &str) -> Graph {
    model(opset, spec).unwrap()
}

/// The error of a model that must not import.
fn err(opset: i64, spec: &str) -> String {
    model(opset, spec).unwrap_err().to_string()
}

/// An i64 tensor.
fn i64s(shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_i64(shape.to_vec(), v.to_vec()).unwrap()
}

/// An f32 tensor holding `0, 1, 2, ...`.
fn iota(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_f32(shape.to_vec(), (0..n).map(|i| i as f32).collect()).unwrap()
}

const X: &str = "in x f32 batch seq 8\n";

#[test]
fn shape_computations_fold_to_symbolic_dims() {
    let spec = "scalar i0 0\nscalar i1 1\ni64 ax 0\ni64 tail 2 4
        Shape x -> s
        Gather s i0 -> b
        Unsqueeze b ax -> b1
        Gather s i1 -> q
        Unsqueeze q ax -> q1
        Concat b1 q1 tail -> shape ; axis=0
        Reshape x shape -> y
        out y";
    let g = ok(13, &format!("{X}{spec}"));
    assert_eq!(types(&g), ["f32[batch, seq, 2, 4]"]);
    assert_eq!(g.num_nodes(), 1, "only the reshape remains");
    for (b, s) in [(2, 3), (1, 5)] {
        let x = iota(&[b, s, 8]);
        let y = run(&g, vec![("x", x.clone())]).remove(0);
        assert_eq!(y.shape(), &[b, s, 2, 4]);
        assert_eq!(y.to_f64_vec(), x.to_f64_vec());
    }
    // Tile by a repeat count taken from the shape, and Expand to a shape.
    let spec = "in x f32 batch 3\nin w f32 1 3\ni64 b0 0\ni64 b1 1\ni64 two 2
        Shape x -> s
        Slice s b0 b1 -> n
        Concat n two -> reps ; axis=0
        Tile w reps -> t
        Expand w s -> e
        out t e";
    let g = ok(13, spec);
    assert_eq!(types(&g), ["f32[batch, 6]", "f32[batch, 3]"]);
    let w = Tensor::from_f32(vec![1, 3], vec![1.0, 2.0, 3.0]).unwrap();
    let out = run(&g, vec![("x", iota(&[2, 3])), ("w", w)]);
    assert_eq!(out[0].to_f64_vec(), [1.0, 2.0, 3.0].repeat(4));
    assert_eq!(out[1].to_f64_vec(), [1.0, 2.0, 3.0].repeat(2));
}

#[test]
fn reshape_resolves_zero_and_minus_one() {
    let spec = "i64 s1 0 -1 2\ni64 s2 -1 8\nReshape x s1 -> y1\nReshape x s2 -> y2\nout y1 y2";
    let g = ok(13, &format!("{X}{spec}"));
    assert_eq!(types(&g), ["f32[batch, 4*seq, 2]", "f32[batch*seq, 8]"]);
    let out = run(&g, vec![("x", iota(&[3, 2, 8]))]);
    assert_eq!([out[0].shape(), out[1].shape()], [&[3, 8, 2][..], &[6, 8]]);
    // allowzero (opset 14) keeps a literal 0; opset 1 reads the shape attribute.
    let zero = "in x f32 0 4\ni64 s 4 0\nReshape x s -> y ; allowzero=1\nout y";
    let g = ok(14, zero);
    assert_eq!(types(&g), ["f32[4, 0]"]);
    let g = ok(1, &format!("{X}Reshape x -> y ; shape=[0,-1]\nout y"));
    assert_eq!(types(&g), ["f32[batch, 8*seq]"]);
    let e = err(13, &format!("{X}in s i64 2\nReshape x s -> y\nout y"));
    assert!(
        e.contains("Reshape with a shape computed from tensor"),
        "{e}"
    );
}

#[test]
fn constant_of_shape_range_size_and_slice_stay_symbolic() {
    let spec = "scalar zero 0\nscalar one 1
        Shape x -> s
        ConstantOfShape s -> c ; value=t1.5
        Gather s one -> seq
        Range zero seq one -> r
        Size x -> n
        out c r n";
    let g = ok(13, &format!("{X}{spec}"));
    assert_eq!(types(&g), ["f32[batch, seq, 8]", "i64[seq]", "i64[]"]);
    let out = run(&g, vec![("x", iota(&[2, 5, 8]))]);
    assert_eq!(out[0].shape(), &[2, 5, 8]);
    assert!(out[0].to_f64_vec().iter().all(|&v| v == 1.5));
    assert_eq!(out[1].to_i64_vec(), vec![0, 1, 2, 3, 4]);
    assert_eq!(out[2].to_i64_vec(), vec![80]);
    // Slice to INT64_MAX (or INT32_MAX) on a symbolic axis.
    let (max, int_max) = (i64::MAX, i32::MAX);
    let spec = format!(
        "{X}i64 st 1\ni64 en {max}\ni64 ax 1\ni64 big {int_max}
        Slice x st en ax -> y\nSlice x st big ax -> z\nout y z"
    );
    let g = ok(13, &spec);
    assert_eq!(types(&g), ["f32[batch, seq-1, 8]", "f32[batch, seq-1, 8]"]);
    let x = iota(&[1, 3, 8]);
    let out = run(&g, vec![("x", x.clone())]);
    assert_eq!(out[0].shape(), &[1, 2, 8]);
    assert_eq!(out[0].to_f64_vec(), x.to_f64_vec()[8..]);
}

#[test]
fn axes_and_split_sizes_by_opset() {
    let x = "in x f32 batch 1 6\n";
    let attrs = "Squeeze x -> a ; axes=[1]
        Unsqueeze a -> b ; axes=[-1]
        Split a -> c d ; axis=1 split=[2,4]
        out b c d";
    let want = ["f32[batch, 6, 1]", "f32[batch, 2]", "f32[batch, 4]"];
    for opset in [1, 11] {
        assert_eq!(types(&ok(opset, &format!("{x}{attrs}"))), want);
    }
    let inputs = "i64 one 1\ni64 minus -1\ni64 sizes 2 4
        Squeeze x one -> a
        Unsqueeze a minus -> b
        Split a sizes -> c d ; axis=1
        Split a -> e f h ; axis=-1
        out b c d h";
    let want4 = [&want[..], &["f32[batch, 2]"]].concat();
    assert_eq!(types(&ok(13, &format!("{x}{inputs}"))), want4);
    let g = ok(13, "in x f32 1 3 1\nSqueeze x -> y\nout y");
    assert_eq!(types(&g), ["f32[3]"]);
    // Squeeze without axes would drop `batch` if it were 1: refused rather than guessed.
    let e = err(13, &format!("{x}Squeeze x -> y\nout y"));
    assert!(e.contains("symbolic dim `batch`"), "{e}");
    // Opset 18: num_outputs, with a smaller last chunk (7 = 3 + 3 + 1).
    let spec = "in x f32 7\nSplit x -> p q r ; num_outputs=3\nout p q r";
    let g = ok(18, spec);
    let out = run(&g, vec![("x", iota(&[7]))]);
    let lens: Vec<usize> = out.iter().map(Tensor::len).collect();
    assert_eq!(lens, [3, 3, 1]);
    let e = err(13, "in x f32 7\nSplit x -> p q r\nout p q r");
    assert!(e.contains("not divisible"), "{e}");
}

#[test]
fn slice_and_pad_opset_variants_agree() {
    let x = "in x f32 2 3\n";
    let feed = || vec![("x", iota(&[2, 3]))];
    let v1 = format!("{x}Slice x -> y ; starts=[1] ends=[3] axes=[1]\nout y");
    let v10 = format!("{x}i64 s 1\ni64 e 3\ni64 a -1\nSlice x s e a -> y\nout y");
    let (v1, v10) = (ok(1, &v1), ok(10, &v10));
    assert_eq!(values(&v1, feed(), 0), [1.0, 2.0, 4.0, 5.0]);
    assert_eq!(values(&v10, feed(), 0), [1.0, 2.0, 4.0, 5.0]);
    let min = i64::MIN;
    let back = format!(
        "{x}i64 s -1\ni64 e {min}\ni64 a 1\ni64 k -2
        Slice x s e a k -> y\nSlice x s e _ k -> z\nout y z"
    );
    let back = ok(13, &back);
    assert_eq!(values(&back, feed(), 0), [2.0, 0.0, 5.0, 3.0]);
    assert_eq!(values(&back, feed(), 1), [3.0, 4.0, 5.0]);

    let want = [9.0, 0.0, 1.0, 2.0, 9.0, 9.0, 3.0, 4.0, 5.0, 9.0];
    let specs = [
        (1, "Pad x -> y ; paddings=[0,1,0,1] value=9.0"),
        (2, "Pad x -> y ; pads=[0,1,0,1] value=9.0"),
        (11, "i64 p 0 1 0 1\nf32 v 9\nPad x p v -> y"),
        (18, "i64 p 1 1\nf32 v 9\ni64 a -1\nPad x p v a -> y"),
    ];
    for (opset, spec) in specs {
        let g = ok(opset, &format!("{x}{spec}\nout y"));
        assert_eq!(values(&g, feed(), 0), want, "{spec}");
    }
    let spec = format!("{x}i64 p 0 1 0 0\nPad x p -> y ; mode=edge\nout y");
    let edge = ok(11, &spec);
    let want = [0.0, 0.0, 1.0, 2.0, 3.0, 3.0, 4.0, 5.0];
    assert_eq!(values(&edge, feed(), 0), want);
}

#[test]
fn one_hot_gather_nd_and_reverse_sequence_decompose() {
    let spec = "in i i64 n\nscalar d 3\nf32 v -1 5\nOneHot i d v -> y ; axis=0\nout y";
    let g = ok(11, spec);
    assert_eq!(types(&g), ["f32[3, n]"]);
    let feed = vec![("i", i64s(&[3], &[0, -1, 7]))];
    let (on, off) = (5.0, -1.0);
    let want = [on, off, off, off, off, off, off, on, off];
    assert_eq!(values(&g, feed, 0), want);

    let spec = "in x f32 2 3 2\nin i i64 2 1 1\nGatherND x i -> y ; batch_dims=1\nout y";
    let g = ok(12, spec);
    assert_eq!(types(&g), ["f32[2, 1, 2]"]);
    let feed = vec![("x", iota(&[2, 3, 2])), ("i", i64s(&[2, 1, 1], &[2, -3]))];
    assert_eq!(values(&g, feed, 0), [4.0, 5.0, 6.0, 7.0]);

    let spec = "in x f32 seq 2\nin l i64 2\nReverseSequence x l -> y\nout y";
    let g = ok(10, spec);
    let feed = vec![("x", iota(&[3, 2])), ("l", i64s(&[2], &[3, 1]))];
    assert_eq!(values(&g, feed, 0), [4.0, 1.0, 2.0, 3.0, 0.0, 5.0]);
}
