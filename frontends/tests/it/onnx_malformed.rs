//! A corpus of malformed ONNX models: each must yield its specific error variant and message,
//! never a panic; plus property tests over random bytes and mutations of a valid model.

use crate::onnx_common;

use kiln_frontends::onnx::proto::tensor_proto::DataType;
use kiln_frontends::onnx::proto::*;
use kiln_frontends::onnx::OnnxModel;
use kiln_frontends::Error;
use onnx_common::{
    decode_error, expect, external, load, model, node, tensor, variant, write_bytes,
};
use proptest::prelude::*;
use prost::Message;
use std::path::Path;

/// A valid model exercising several storage forms, with its external file `w.bin`.
fn small_model(dir: &Path) -> ModelProto {
    std::fs::write(dir.join("w.bin"), [0u8; 24]).unwrap();
    let mut raw = tensor("raw", DataType::Float, &[2, 2]);
    raw.raw_data = vec![0; 16];
    let mut i8s = tensor("i8", DataType::Int8, &[3]);
    i8s.int32_data = vec![-1, 0, 1];
    let mut i64s = tensor("shape", DataType::Int64, &[2]);
    i64s.int64_data = vec![4, 1];
    let ext = external(
        tensor("ext", DataType::Float, &[4]),
        &[("location", "w.bin"), ("offset", "8"), ("length", "16")],
    );
    let nodes = vec![
        node("add", "Add", &["x", "raw"], &["s"]),
        node("resh", "Reshape", &["s", "shape"], &["y"]),
    ];
    model(
        vec![raw, i8s, i64s, ext],
        nodes,
        &["x"],
        &["y", "i8", "ext"],
    )
}

#[test]
fn truncated_files_are_decode_errors() {
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/bert-tiny.onnx");
    let bytes = std::fs::read(fixture).unwrap_or_else(|_| small_model(dir.path()).encode_to_vec());
    let n = bytes.len();
    for cut in [1, 3, 40, n / 3, n / 2, n - 2, n - 1] {
        let e = OnnxModel::load(&write_bytes(dir.path(), &bytes[..cut])).unwrap_err();
        expect(e, "Decode", "not an ONNX model");
    }
    for cut in (0..n).step_by(n / 97 + 1) {
        let r = OnnxModel::load(&write_bytes(dir.path(), &bytes[..cut]));
        assert!(
            matches!(r, Err(Error::Decode { .. } | Error::Malformed { .. })),
            "cut {cut}"
        );
    }
}

#[test]
fn garbage_bytes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = OnnxModel::load(&write_bytes(dir.path(), &[0xff; 64])).unwrap_err();
    expect(e, "Decode", "not an ONNX model");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20 {
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let r = OnnxModel::load(&write_bytes(dir.path(), &bytes));
        assert!(matches!(
            r,
            Err(Error::Decode { .. } | Error::Malformed { .. })
        ));
    }
    let e = OnnxModel::load(&dir.path().join("missing.onnx")).unwrap_err();
    assert_eq!(variant(&e), "Io");
    assert!(e.to_string().contains("missing.onnx: cannot read"), "{e}");
}

/// A model whose graph nests `levels` `If` subgraphs, each using the outer input `c`.
fn nested(levels: usize) -> ModelProto {
    let mut g = GraphProto::default();
    for _ in 0..levels {
        let mut n = node("if", "If", &["c"], &["y"]);
        n.attribute.push(AttributeProto {
            name: "then_branch".into(),
            g: Some(g),
            ..Default::default()
        });
        g = GraphProto {
            node: vec![n],
            ..Default::default()
        };
    }
    g.input.push(onnx_common::value("c"));
    g.output.push(onnx_common::value("y"));
    let mut m = model(vec![], vec![], &[], &[]);
    m.graph = Some(g);
    m
}

#[test]
fn nesting_is_bounded_by_the_protobuf_depth_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Graph level k sits at message depth 3k + 1: 33 levels fit prost's limit of 100.
    let m = load(dir.path(), &nested(33)).unwrap();
    assert_eq!(m.topo_nodes().unwrap(), vec![0]);
    expect(
        load(dir.path(), &nested(34)).unwrap_err(),
        "Decode",
        "recursion limit",
    );
    expect(
        load(dir.path(), &nested(200)).unwrap_err(),
        "Decode",
        "recursion limit",
    );
    // A hostile file far deeper than any struct we could build and drop: bytes made by hand.
    let mut g: Vec<u8> = vec![];
    for _ in 0..5_000 {
        for field in [6u8, 5, 1] {
            // attribute.g = 6, node.attribute = 5, graph.node = 1 (length-delimited).
            let mut wrapped = vec![field << 3 | 2];
            prost::encoding::encode_varint(g.len() as u64, &mut wrapped);
            wrapped.extend(&g);
            g = wrapped;
        }
    }
    let mut bytes = model(vec![], vec![], &[], &[]).encode_to_vec();
    bytes.push(7 << 3 | 2);
    prost::encoding::encode_varint(g.len() as u64, &mut bytes);
    bytes.extend(&g);
    let e = OnnxModel::load(&write_bytes(dir.path(), &bytes)).unwrap_err();
    expect(e, "Decode", "recursion limit");
}

#[test]
fn inline_data_of_the_wrong_size_is_a_tensor_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let with = |f: &dyn Fn(&mut TensorProto), dt: DataType, dims: &[i64]| {
        let mut t = tensor("w", dt, dims);
        f(&mut t);
        decode_error(d, t)
    };
    let short = with(&|t| t.raw_data = vec![0; 15], DataType::Float, &[2, 2]);
    expect(
        short,
        "Tensor",
        "tensor `w`: raw_data has 15 bytes, but f32 [2, 2] needs 16",
    );
    let long = with(&|t| t.raw_data = vec![0; 17], DataType::Float, &[2, 2]);
    expect(
        long,
        "Tensor",
        "raw_data has 17 bytes, but f32 [2, 2] needs 16",
    );
    let e = with(&|t| t.float_data = vec![1.0; 3], DataType::Float, &[2, 2]);
    expect(
        e,
        "Tensor",
        "float_data has 3 values, but f32 [2, 2] needs 4",
    );
    let e = with(&|t| t.int64_data = vec![1; 5], DataType::Int64, &[4]);
    expect(e, "Tensor", "int64_data has 5 values, but i64 [4] needs 4");
    let e = with(&|t| t.int32_data = vec![1], DataType::Int8, &[2]);
    expect(e, "Tensor", "int32_data has 1 values, but i8 [2] needs 2");
    let e = with(&|t| t.int64_data = vec![1, 2], DataType::Float, &[2]);
    expect(e, "Tensor", "float_data has 0 values, but f32 [2] needs 2");
    let e = with(&|_| {}, DataType::Float, &[]);
    expect(e, "Tensor", "has no data (f32 [] needs 1 elements)");
    let e = with(&|t| t.int32_data = vec![256], DataType::Uint8, &[1]);
    expect(
        e,
        "Tensor",
        "int32_data value 256 is out of range for UINT8",
    );
    let e = with(&|t| t.int32_data = vec![2], DataType::Bool, &[1]);
    expect(e, "Tensor", "out of range for BOOL");
    let e = with(&|t| t.int32_data = vec![70000], DataType::Float16, &[1]);
    expect(e, "Tensor", "out of range for 16-bit float bits");
    let both = |t: &mut TensorProto| {
        t.raw_data = vec![0; 4];
        t.float_data = vec![0.0];
    };
    expect(
        with(&both, DataType::Float, &[1]),
        "Tensor",
        "has both raw_data and float_data",
    );
    let seg = |t: &mut TensorProto| t.segment = Some(Default::default());
    expect(
        with(&seg, DataType::Float, &[0]),
        "Tensor",
        "segmented tensors are not supported",
    );
    let loc = |t: &mut TensorProto| t.data_location = 7;
    expect(
        with(&loc, DataType::Float, &[0]),
        "Tensor",
        "unknown data_location 7",
    );
}

#[test]
fn bad_dims_and_data_types_are_tensor_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = decode_error(d, tensor("neg", DataType::Float, &[2, -1]));
    expect(
        e,
        "Tensor",
        "dimension -1 in dims [2, -1] is not a valid size",
    );
    let e = decode_error(d, tensor("big", DataType::Float, &[1 << 62, 1 << 62, 0]));
    expect(e, "Tensor", "is too large (size overflows)");
    let e = decode_error(d, tensor("huge", DataType::Double, &[1 << 61]));
    expect(e, "Tensor", "size overflows");
    let mut s = tensor("names", DataType::String, &[1]);
    s.string_data = vec![b"hello".to_vec()];
    expect(
        decode_error(d, s),
        "Tensor",
        "tensor `names`: unsupported data type STRING (8)",
    );
    let e = decode_error(d, tensor("c64", DataType::Complex64, &[0]));
    expect(e, "Tensor", "unsupported data type COMPLEX64");
    let mut u = tensor("odd", DataType::Float, &[0]);
    u.data_type = 77;
    expect(decode_error(d, u), "Tensor", "unknown data type 77");
}

#[test]
fn structurally_invalid_graphs_are_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let err = |m: ModelProto| load(dir.path(), &m).map(|_| ()).unwrap_err();
    let m = model(
        vec![],
        vec![node("n1", "Add", &["x", "nope"], &["y"])],
        &["x"],
        &["y"],
    );
    expect(
        err(m),
        "Malformed",
        "node `n1` (Add) input #1 `nope` is not a graph input",
    );
    let nodes = vec![
        node("a", "Neg", &["x"], &["y"]),
        node("b", "Relu", &["x"], &["y"]),
    ];
    let m = model(vec![], nodes, &["x"], &["y"]);
    expect(
        err(m),
        "Malformed",
        "value `y` is defined twice (node `a` (Neg) and node `b` (Relu))",
    );
    let m = model(
        vec![],
        vec![node("", "Neg", &["x"], &["x"])],
        &["x"],
        &["x"],
    );
    expect(
        err(m),
        "Malformed",
        "value `x` is defined twice (graph input and node `#0` (Neg))",
    );
    let mut w = tensor("w", DataType::Float, &[0]);
    w.raw_data.clear();
    let m = model(vec![w.clone(), w], vec![], &[], &["w"]);
    expect(
        err(m),
        "Malformed",
        "value `w` is defined twice (initializer and initializer)",
    );
    let nodes = vec![
        node("a", "Add", &["x", "c"], &["b"]),
        node("b", "Relu", &["b"], &["c"]),
    ];
    let m = model(vec![], nodes, &["x"], &["c"]);
    expect(
        err(m),
        "Malformed",
        "the nodes form a cycle: node `a` (Add) -> node `b` (Relu) -> node `a` (Add)",
    );
    let m = model(vec![], vec![node("s", "Neg", &["s"], &["s"])], &[], &["s"]);
    expect(
        err(m),
        "Malformed",
        "cycle: node `s` (Neg) -> node `s` (Neg)",
    );
    let m = model(vec![], vec![], &["x"], &["y"]);
    expect(err(m), "Malformed", "graph output `y` is not a graph input");
    let m = model(vec![], vec![], &["x", "x"], &["x"]);
    expect(err(m), "Malformed", "graph input `x` is listed twice");
    let mut m = model(vec![], vec![], &["x"], &["x"]);
    m.graph = None;
    expect(err(m), "Malformed", "the model has no graph");
    let mut m = model(
        vec![],
        vec![node("n1", "Relu", &["x"], &["y"])],
        &["x"],
        &["y"],
    );
    m.opset_import[0].domain = "com.microsoft".into();
    expect(
        err(m),
        "Malformed",
        "no opset import for the default domain",
    );
    let mut inner = node("if", "If", &["x"], &["y"]);
    inner.attribute.push(AttributeProto {
        name: "then_branch".into(),
        g: Some(GraphProto {
            node: vec![node("i", "Neg", &["ghost"], &["z"])],
            ..Default::default()
        }),
        ..Default::default()
    });
    let m = model(vec![], vec![inner], &["x"], &["y"]);
    expect(
        err(m),
        "Malformed",
        "node `if` (If) uses `ghost` in a subgraph",
    );
}

/// Loads `bytes` as `dir/model.onnx` and decodes every initializer; any outcome but a panic.
fn load_and_decode(dir: &Path, bytes: &[u8]) {
    if let Ok(m) = OnnxModel::load(&write_bytes(dir, bytes)) {
        for t in &m.graph().initializer {
            if let Ok(w) = m.decode(t) {
                let _ = w.to_tensor();
            }
        }
        let _ = m.topo_nodes();
        let _ = m.graph_inputs();
    }
}

proptest! {
    // 256 cases each by default; set PROPTEST_CASES for a longer run.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let dir = tempfile::tempdir().unwrap();
        load_and_decode(dir.path(), &bytes);
    }

    #[test]
    fn mutated_models_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = small_model(dir.path()).encode_to_vec();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        load_and_decode(dir.path(), &bytes);
    }
}

#[test]
fn the_small_model_used_for_mutations_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let m = load(dir.path(), &small_model(dir.path())).unwrap();
    assert_eq!(m.initializers().unwrap().len(), 4);
}
