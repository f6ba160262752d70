//! Importers of LSTM, GRU, RNN and `com.microsoft::DynamicQuantizeLSTM`: symbolic sequence and
//! batch dims kept (one op, nothing unrolled), attributes per opset (hidden_size from R,
//! activations with alpha/beta), the dequantized weights of DynamicQuantizeLSTM, and the
//! refusals, each naming its attribute or input. (Numerics against ONNX Runtime are the root
//! package's `rnn_models` test; the ONNX node tests cover every cell.)

// `Error` is large by design (see the crate root); protos are built field by field.
#![allow(clippy::result_large_err, clippy::field_reassign_with_default)]

use crate::onnx_common::expect;
use kiln_compiler::ir::{Graph, Op, RnnActivation, RnnDirection};
use kiln_frontends::onnx::import::import_file;
use kiln_frontends::onnx::proto::attribute_proto::AttributeType as A;
use kiln_frontends::onnx::proto::tensor_proto::DataType;
use kiln_frontends::onnx::proto::tensor_shape_proto::{dimension, Dimension};
use kiln_frontends::onnx::proto::*;
use kiln_frontends::Error;
use prost::Message;

fn import(m: &ModelProto) -> Result<Graph, Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    import_file(&path)
}

/// A graph input; a negative dim is the symbol `s{-d}`.
fn input(name: &str, dt: DataType, dims: &[i64]) -> ValueInfoProto {
    let dim = |&d: &i64| Dimension {
        value: Some(if d < 0 {
            dimension::Value::DimParam(format!("s{}", -d))
        } else {
            dimension::Value::DimValue(d)
        }),
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

fn init(name: &str, dt: DataType, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    let mut t = TensorProto::default();
    t.name = name.to_string();
    t.data_type = dt as i32;
    t.dims = dims.to_vec();
    t.raw_data = raw;
    t
}

fn f32s(name: &str, dims: &[i64], v: f32) -> TensorProto {
    let n: i64 = dims.iter().product();
    init(
        name,
        DataType::Float,
        dims,
        v.to_le_bytes().repeat(n as usize),
    )
}

fn attr(name: &str, f: impl FnOnce(&mut AttributeProto)) -> AttributeProto {
    let mut a = AttributeProto::default();
    a.name = name.to_string();
    f(&mut a);
    a
}

fn int(name: &str, v: i64) -> AttributeProto {
    attr(name, |a| (a.r#type, a.i) = (A::Int as i32, v))
}

fn string(name: &str, v: &str) -> AttributeProto {
    attr(name, |a| {
        (a.r#type, a.s) = (A::String as i32, v.as_bytes().to_vec())
    })
}

fn strings(name: &str, v: &[&str]) -> AttributeProto {
    let s = v.iter().map(|s| s.as_bytes().to_vec()).collect();
    attr(name, |a| (a.r#type, a.strings) = (A::Strings as i32, s))
}

fn floats(name: &str, v: &[f32]) -> AttributeProto {
    attr(name, |a| {
        (a.r#type, a.floats) = (A::Floats as i32, v.to_vec())
    })
}

/// A one-node model: X `[s1, s2, 3]` input, W/R initializers of `gates·4` rows (hidden 4).
fn layer(op: &str, domain: &str, opset: i64, gates: i64, attrs: Vec<AttributeProto>) -> ModelProto {
    let mut node = NodeProto::default();
    node.op_type = op.to_string();
    node.domain = domain.to_string();
    node.input = ["x", "w", "r"].map(String::from).to_vec();
    node.output = ["y", "y_h"].map(String::from).to_vec();
    node.attribute = attrs;
    let mut g = GraphProto::default();
    g.input = vec![input("x", DataType::Float, &[-1, -2, 3])];
    g.initializer = vec![
        f32s("w", &[1, gates * 4, 3], 0.1),
        f32s("r", &[1, gates * 4, 4], 0.1),
    ];
    g.node = vec![node];
    g.output = ["y", "y_h"]
        .map(|n| ValueInfoProto {
            name: n.to_string(),
            ..Default::default()
        })
        .to_vec();
    let mut m = ModelProto::default();
    m.ir_version = 8;
    m.opset_import = vec![OperatorSetIdProto {
        domain: domain.to_string(),
        version: opset,
    }];
    m.graph = Some(g);
    m
}

/// The one recurrent op of `g`.
fn the_layer(g: &Graph) -> Op {
    let ops: Vec<Op> = g.node_ids().map(|n| g.node(n).op.clone()).collect();
    assert_eq!(ops.len(), 1, "{ops:?}");
    ops[0].clone()
}

#[test]
fn layers_keep_symbolic_dims_and_read_their_attributes() {
    let attrs = vec![
        string("direction", "reverse"),
        strings("activations", &["HardSigmoid", "leakyrelu", "ScaledTanh"]),
        floats("activation_alpha", &[0.3, 0.05, 0.9]),
        floats("activation_beta", &[0.4]),
    ];
    let g = import(&layer("LSTM", "", 14, 4, attrs)).unwrap();
    let y = g.outputs()[0].1;
    assert_eq!(g.value(y).ty.to_string(), "f32[s1, 1, s2, 4]");
    let Op::Recurrent {
        direction,
        hidden_size,
        activations,
        activation_alpha,
        activation_beta,
        ..
    } = the_layer(&g)
    else {
        panic!("not a recurrent layer");
    };
    assert_eq!((direction, hidden_size), (RnnDirection::Reverse, 4));
    use RnnActivation::*;
    assert_eq!(activations, [HardSigmoid, LeakyRelu, ScaledTanh]);
    // Consumed in order by the functions that take them; defaults for the rest (ScaledTanh's
    // beta: 0, as ONNX Runtime).
    let round = |v: Vec<f64>| {
        v.iter()
            .map(|x| (x * 1e6).round() / 1e6)
            .collect::<Vec<_>>()
    };
    assert_eq!(round(activation_alpha), [0.3, 0.05, 0.9]);
    assert_eq!(round(activation_beta), [0.4, 0.0, 0.0]);

    // GRU-7 has no layout; hidden_size comes from R when absent; one direction's activations
    // serve both directions.
    let attrs = vec![
        string("direction", "bidirectional"),
        strings("activations", &["Sigmoid", "Relu"]),
    ];
    let mut m = layer("GRU", "", 7, 3, attrs);
    let g = m.graph.as_mut().unwrap();
    g.initializer = vec![f32s("w", &[2, 12, 3], 0.1), f32s("r", &[2, 12, 4], 0.1)];
    let g = import(&m).unwrap();
    let Op::Recurrent { activations, .. } = the_layer(&g) else {
        panic!("not a recurrent layer");
    };
    assert_eq!(activations, [Sigmoid, Relu, Sigmoid, Relu]);
}

#[test]
fn unsupported_attribute_values_name_the_attribute() {
    let cases = [
        ("RNN", 1, vec![string("direction", "sideways")], "direction"),
        (
            "RNN",
            1,
            vec![strings("activations", &["Swish"])],
            "activations",
        ),
        ("RNN", 1, vec![int("layout", 2)], "layout"),
        ("LSTM", 4, vec![int("input_forget", 3)], "input_forget"),
        (
            "GRU",
            3,
            vec![int("linear_before_reset", 2)],
            "linear_before_reset",
        ),
    ];
    for (op, gates, attrs, name) in cases {
        let e = import(&layer(op, "", 14, gates, attrs)).unwrap_err();
        expect(e, "Unsupported", name);
    }
    let attrs = vec![strings("activations", &["Tanh", "Tanh"])];
    let e = import(&layer("RNN", "", 14, 1, attrs)).unwrap_err();
    expect(e, "Node", "activations has 2 entries, expected 1");
}

#[test]
fn dynamic_quantize_lstm_dequantizes_its_weights() {
    let mut m = layer("DynamicQuantizeLSTM", "com.microsoft", 1, 4, vec![]);
    let g = m.graph.as_mut().unwrap();
    // W: [1, 3, 16] int8, all 4 with zero point 2 and per-row scales 0.5 (rows 0..8) and 0.25.
    let scales: Vec<f32> = (0..16).map(|j| if j < 8 { 0.5 } else { 0.25 }).collect();
    g.initializer = vec![
        init("w", DataType::Int8, &[1, 3, 16], vec![4; 48]),
        init("r", DataType::Int8, &[1, 4, 16], vec![0; 64]),
        init(
            "ws",
            DataType::Float,
            &[1, 16],
            scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
        ),
        init("wz", DataType::Int8, &[1, 16], vec![2; 16]),
        init("rs", DataType::Float, &[1], 1f32.to_le_bytes().to_vec()),
    ];
    let node = &mut g.node[0];
    node.input = ["x", "w", "r", "", "", "", "", "", "ws", "wz", "rs"]
        .map(String::from)
        .to_vec();
    let g = import(&m).unwrap();
    let w = g.node(g.node_ids().next().unwrap()).inputs[1];
    let kiln_compiler::ir::ValueDef::Weight(id) = g.value(w).def else {
        panic!("W is not a weight");
    };
    let t = g.weights().get(id).to_tensor().unwrap();
    assert_eq!(t.shape(), [1, 16, 3]);
    let v = t.to_f64_vec();
    assert_eq!((v[0], v[8 * 3]), (1.0, 0.5), "(4 − 2)·0.5 and (4 − 2)·0.25");

    // Weights computed at run time cannot be dequantized at import.
    let mut m2 = m.clone();
    let g2 = m2.graph.as_mut().unwrap();
    g2.initializer.retain(|t| t.name != "w");
    g2.input.push(input("w", DataType::Int8, &[1, 3, 16]));
    let e = import(&m2).unwrap_err();
    expect(
        e,
        "Unsupported",
        "DynamicQuantizeLSTM W computed at run time",
    );
}
