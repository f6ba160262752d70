//! Importers of TopK, ScatterElements / ScatterND and CumProd: hand-built models run through the
//! reference interpreter and the refusal of a run-time k. (The ONNX TopK conformance cases
//! with k pinned run in the root package's `onnx_pinned` test.)

// `Error` is large by design (see the crate root); protos are built field by field.
#![allow(clippy::result_large_err, clippy::field_reassign_with_default)]

use kiln_compiler::ir::Graph;
use kiln_frontends::onnx::import::import_file;
use kiln_frontends::onnx::proto::attribute_proto::AttributeType as A;
use kiln_frontends::onnx::proto::tensor_proto::DataType;
use kiln_frontends::onnx::proto::*;
use kiln_frontends::Error;
use kiln_runtime::Tensor;
use prost::Message;
use std::collections::BTreeMap;

fn import(m: &ModelProto) -> Result<Graph, Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    import_file(&path)
}

/// A graph input with a known shape.
fn input(name: &str, dt: DataType, dims: &[i64]) -> ValueInfoProto {
    use kiln_frontends::onnx::proto::tensor_shape_proto::{dimension, Dimension};
    let dim = |&d: &i64| Dimension {
        value: Some(dimension::Value::DimValue(d)),
        ..Default::default()
    };
    let tt = type_proto::Tensor {
        elem_type: dt as i32,
        shape: Some(TensorShapeProto {
            dim: dims.iter().map(dim).collect(),
        }),
    };
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(tt)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An i64 initializer.
fn i64_init(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    let mut t = TensorProto::default();
    t.name = name.to_string();
    t.data_type = DataType::Int64 as i32;
    t.dims = dims.to_vec();
    t.int64_data = v.to_vec();
    t
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    let mut a = AttributeProto::default();
    a.name = name.to_string();
    a.r#type = A::Int as i32;
    a.i = v;
    a
}

fn str_attr(name: &str, v: &str) -> AttributeProto {
    let mut a = AttributeProto::default();
    a.name = name.to_string();
    a.r#type = A::String as i32;
    a.s = v.as_bytes().to_vec();
    a
}

/// A one-node model at `opset`; `ins` are typed graph inputs, `inits` initializers.
fn one_node(
    opset: i64,
    op: &str,
    ins: Vec<ValueInfoProto>,
    inits: Vec<TensorProto>,
    node_ins: &[&str],
    outs: &[&str],
    attrs: Vec<AttributeProto>,
) -> ModelProto {
    let mut node = NodeProto::default();
    node.op_type = op.to_string();
    node.input = node_ins.iter().map(|s| s.to_string()).collect();
    node.output = outs.iter().map(|s| s.to_string()).collect();
    node.attribute = attrs;
    let mut g = GraphProto::default();
    g.node = vec![node];
    g.input = ins;
    g.initializer = inits;
    g.output = outs
        .iter()
        .map(|n| ValueInfoProto {
            name: n.to_string(),
            ..Default::default()
        })
        .collect();
    let mut m = ModelProto::default();
    m.ir_version = 8;
    m.opset_import = vec![OperatorSetIdProto {
        domain: String::new(),
        version: opset,
    }];
    m.graph = Some(g);
    m
}

fn run(g: &Graph, feeds: Vec<(&str, Tensor)>) -> Vec<Tensor> {
    let feeds: BTreeMap<String, Tensor> = feeds.into_iter().map(|(n, t)| (n.into(), t)).collect();
    let outs = kiln_compiler::interp::run(g, &feeds).unwrap();
    outs.into_iter().map(|(_, t)| t).collect()
}

#[test]
fn topk_with_a_constant_k_imports_and_runs() {
    let x = input("x", DataType::Float, &[2, 3]);
    let k = i64_init("k", &[1], &[2]);
    let attrs = vec![int_attr("largest", 0)];
    let m = one_node(
        11,
        "TopK",
        vec![x],
        vec![k],
        &["x", "k"],
        &["v", "i"],
        attrs,
    );
    let g = import(&m).unwrap();
    let xs = Tensor::from_f32(vec![2, 3], vec![3.0, 1.0, 2.0, 0.0, 0.0, -1.0]).unwrap();
    let out = run(&g, vec![("x", xs)]);
    assert_eq!(out[0].to_f64_vec(), [1.0, 2.0, -1.0, 0.0]);
    assert_eq!(out[1].to_i64_vec(), [1, 2, 2, 0]);

    // Opset 1 holds k in an attribute.
    let x = input("x", DataType::Float, &[4]);
    let m = one_node(
        1,
        "TopK",
        vec![x],
        vec![],
        &["x"],
        &["v", "i"],
        vec![int_attr("k", 1)],
    );
    let g = import(&m).unwrap();
    let xs = Tensor::from_f32(vec![4], vec![1.0, 5.0, 5.0, 2.0]).unwrap();
    let out = run(&g, vec![("x", xs)]);
    assert_eq!(
        (out[0].to_f64_vec(), out[1].to_i64_vec()),
        (vec![5.0], vec![1])
    );
}

#[test]
fn topk_with_a_run_time_k_is_unsupported() {
    let x = input("x", DataType::Float, &[4]);
    let k = input("k", DataType::Int64, &[1]);
    let m = one_node(
        11,
        "TopK",
        vec![x, k],
        vec![],
        &["x", "k"],
        &["v", "i"],
        vec![],
    );
    let e = import(&m).unwrap_err().to_string();
    assert!(e.contains("run time"), "{e}");
}

#[test]
fn scatters_and_cumprod_import_with_their_attributes() {
    // `op(d: f32[2, 3], i, u)` run on d = [[1, 2, 3], [4, 5, 6]] and the given updates.
    let d = Tensor::from_f32(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let scatter = |op: &str, idx: TensorProto, attrs: Vec<AttributeProto>, u: Tensor| {
        let upd_dims: Vec<i64> = u.shape().iter().map(|&n| n as i64).collect();
        let data = input("d", DataType::Float, &[2, 3]);
        let upd = input("u", DataType::Float, &upd_dims);
        let ins = vec![data, upd];
        let m = one_node(18, op, ins, vec![idx], &["d", "i", "u"], &["y"], attrs);
        let g = import(&m).unwrap();
        run(&g, vec![("d", d.clone()), ("u", u)])[0].to_f64_vec()
    };
    let u = Tensor::from_f32(vec![2, 1], vec![10.0, -1.0]).unwrap();
    let attrs = vec![int_attr("axis", 1), str_attr("reduction", "mul")];
    let out = scatter(
        "ScatterElements",
        i64_init("i", &[2, 1], &[-1, 0]),
        attrs,
        u,
    );
    assert_eq!(out, [1.0, 2.0, 30.0, -4.0, 5.0, 6.0]);
    let u = Tensor::from_f32(vec![1, 3], vec![9.0, 0.0, 6.5]).unwrap();
    let attrs = vec![str_attr("reduction", "max")];
    let out = scatter("ScatterND", i64_init("i", &[1, 1], &[1]), attrs, u);
    assert_eq!(out, [1.0, 2.0, 3.0, 9.0, 5.0, 6.5]);

    let data = input("d", DataType::Float, &[2, 3]);
    let axis = i64_init("a", &[], &[1]);
    let attrs = vec![int_attr("exclusive", 1)];
    let m = one_node(
        24,
        "CumProd",
        vec![data],
        vec![axis],
        &["d", "a"],
        &["y"],
        attrs,
    );
    let g = import(&m).unwrap();
    let out = run(&g, vec![("d", d)]);
    assert_eq!(out[0].to_f64_vec(), [1.0, 1.0, 2.0, 1.0, 4.0, 20.0]);
}
