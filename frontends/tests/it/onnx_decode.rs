//! ONNX decoding: models built with the proto structs, encoded with prost and loaded from a temp
//! folder (every storage form of initializers, external data, graph queries), and the shared
//! BERT fixtures from both PyTorch exporters.

use crate::onnx_common;

use kiln_compiler::ir::WeightData;
use kiln_frontends::onnx::proto::tensor_proto::DataType;
use kiln_frontends::onnx::proto::*;
use kiln_frontends::onnx::tensor::{dtype_to_onnx, onnx_dtype, read_tensor_file};
use kiln_frontends::onnx::OnnxModel;
use kiln_runtime::{bf16, f16, DType, Tensor, TensorData};
use onnx_common::{external, le, model, node, shared_dir, tensor, value, write};
use prost::Message;
use std::collections::HashMap;
use std::path::Path;

/// Loads a model whose initializers are all graph outputs and decodes them by name.
fn load_values(dir: &Path, inits: Vec<TensorProto>) -> (OnnxModel, HashMap<String, Tensor>) {
    let names: Vec<String> = inits.iter().map(|t| t.name.clone()).collect();
    let outs: Vec<&str> = names.iter().map(String::as_str).collect();
    let m = OnnxModel::load(&write(dir, &model(inits, vec![], &[], &outs))).unwrap();
    let values = m
        .graph()
        .initializer
        .iter()
        .map(|t| (t.name.clone(), m.decode(t).unwrap().to_tensor().unwrap()))
        .collect();
    (m, values)
}

#[test]
fn every_inline_storage_form_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let halfs = [f16::from_f32(1.0), f16::from_f32(-2.5)];
    let bhalfs = [bf16::from_f32(1.0), bf16::from_f32(3.0)];
    let mut inits = vec![];
    let mut t = tensor("raw_f32", DataType::Float, &[2, 2]);
    t.raw_data = le(&[1.0f32, 2.0, 3.0, 4.0], f32::to_le_bytes);
    inits.push(t);
    let mut t = tensor("raw_i64", DataType::Int64, &[2]);
    t.raw_data = le(&[-1i64, 1 << 40], i64::to_le_bytes);
    inits.push(t);
    let mut t = tensor("raw_bool", DataType::Bool, &[3]);
    t.raw_data = vec![0, 1, 2];
    inits.push(t);
    let mut t = tensor("floats", DataType::Float, &[3]);
    t.float_data = vec![0.5, -1.5, f32::MAX];
    inits.push(t);
    let mut t = tensor("i32", DataType::Int32, &[2]);
    t.int32_data = vec![i32::MIN, 7];
    inits.push(t);
    let mut t = tensor("i8", DataType::Int8, &[3]);
    t.int32_data = vec![-128, 0, 127];
    inits.push(t);
    let mut t = tensor("u8", DataType::Uint8, &[1, 2]);
    t.int32_data = vec![0, 255];
    inits.push(t);
    let mut t = tensor("bool", DataType::Bool, &[3]);
    t.int32_data = vec![1, 0, 1];
    inits.push(t);
    let mut t = tensor("f16", DataType::Float16, &[2]);
    t.int32_data = halfs.iter().map(|h| i32::from(h.to_bits())).collect();
    inits.push(t);
    let mut t = tensor("bf16", DataType::Bfloat16, &[2]);
    t.int32_data = bhalfs.iter().map(|h| i32::from(h.to_bits())).collect();
    inits.push(t);
    let mut t = tensor("i64", DataType::Int64, &[2]);
    t.int64_data = vec![i64::MIN, 42];
    inits.push(t);
    let mut t = tensor("f64", DataType::Double, &[2]);
    t.double_data = vec![0.25, -1e300];
    inits.push(t);
    let mut t = tensor("scalar", DataType::Float, &[]);
    t.float_data = vec![7.0];
    inits.push(t);
    inits.push(tensor("empty", DataType::Float, &[0, 3]));

    let (_, v) = load_values(dir.path(), inits);
    let f32s = |s: Vec<usize>, d: Vec<f32>| Tensor::from_f32(s, d).unwrap();
    let of = |s: Vec<usize>, d: TensorData| Tensor::new(s, d).unwrap();
    assert_eq!(v["raw_f32"], f32s(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
    assert_eq!(
        v["raw_i64"],
        Tensor::from_i64(vec![2], vec![-1, 1 << 40]).unwrap()
    );
    assert_eq!(
        v["raw_bool"],
        Tensor::from_bools(vec![3], vec![false, true, true]).unwrap()
    );
    assert_eq!(v["floats"], f32s(vec![3], vec![0.5, -1.5, f32::MAX]));
    assert_eq!(v["i32"], of(vec![2], TensorData::I32(vec![i32::MIN, 7])));
    assert_eq!(v["i8"], of(vec![3], TensorData::I8(vec![-128, 0, 127])));
    assert_eq!(v["u8"], of(vec![1, 2], TensorData::U8(vec![0, 255])));
    assert_eq!(
        v["bool"],
        Tensor::from_bools(vec![3], vec![true, false, true]).unwrap()
    );
    assert_eq!(v["f16"], of(vec![2], TensorData::F16(halfs.to_vec())));
    assert_eq!(v["bf16"], of(vec![2], TensorData::BF16(bhalfs.to_vec())));
    assert_eq!(
        v["i64"],
        Tensor::from_i64(vec![2], vec![i64::MIN, 42]).unwrap()
    );
    assert_eq!(v["f64"], of(vec![2], TensorData::F64(vec![0.25, -1e300])));
    assert_eq!(v["scalar"], Tensor::scalar_f32(7.0));
    assert_eq!(v["empty"], f32s(vec![0, 3], vec![]));
}

#[test]
fn external_data_is_mapped_once_per_file_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = vec![0xAAu8; 16];
    bytes.extend(le(&[1.0f32, 2.0, 3.0, 4.0], f32::to_le_bytes));
    bytes.extend(le(&[5i64, -6], i64::to_le_bytes));
    std::fs::write(dir.path().join("weights.bin"), &bytes).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(
        dir.path().join("sub/more.bin"),
        le(&[9.5f64], f64::to_le_bytes),
    )
    .unwrap();
    let mut inits = vec![
        external(
            tensor("a", DataType::Float, &[2, 2]),
            &[
                ("location", "weights.bin"),
                ("offset", "16"),
                ("length", "16"),
            ],
        ),
        // No length: the tensor's own size; a checksum entry is ignored.
        external(
            tensor("b", DataType::Int64, &[2]),
            &[
                ("location", "./weights.bin"),
                ("offset", "32"),
                ("checksum", "x"),
            ],
        ),
        external(
            tensor("c", DataType::Double, &[]),
            &[("location", "sub/more.bin")],
        ),
    ];
    std::fs::write(dir.path().join("empty.bin"), b"").unwrap();
    inits.push(external(
        tensor("none", DataType::Float, &[0, 4]),
        &[("location", "empty.bin")],
    ));
    let (m, v) = load_values(dir.path(), inits);
    assert_eq!(v["none"], Tensor::from_f32(vec![0, 4], vec![]).unwrap());
    assert_eq!(
        v["a"],
        Tensor::from_f32(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap()
    );
    assert_eq!(v["b"], Tensor::from_i64(vec![2], vec![5, -6]).unwrap());
    assert_eq!(
        v["c"],
        Tensor::new(vec![], TensorData::F64(vec![9.5])).unwrap()
    );
    for w in m.initializers().unwrap() {
        assert!(
            matches!(w.data(), WeightData::Mapped { .. }),
            "{} is copied",
            w.name
        );
    }
    assert_eq!(
        m.source.mapped_files(),
        3,
        "weights.bin, sub/more.bin, empty.bin: once each"
    );
}

#[cfg(unix)]
#[test]
fn symlinks_that_stay_inside_the_folder_are_fine() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    std::fs::write(
        dir.path().join("real/data.bin"),
        le(&[3i32, 4], i32::to_le_bytes),
    )
    .unwrap();
    std::os::unix::fs::symlink("real/data.bin", dir.path().join("link.bin")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("linkdir")).unwrap();
    let inits = vec![
        external(
            tensor("x", DataType::Int32, &[2]),
            &[("location", "link.bin")],
        ),
        external(
            tensor("y", DataType::Int32, &[1]),
            &[("location", "linkdir/data.bin"), ("offset", "4")],
        ),
    ];
    let (m, v) = load_values(dir.path(), inits);
    assert_eq!(
        v["x"],
        Tensor::new(vec![2], TensorData::I32(vec![3, 4])).unwrap()
    );
    assert_eq!(
        v["y"],
        Tensor::new(vec![1], TensorData::I32(vec![4])).unwrap()
    );
    assert_eq!(m.source.mapped_files(), 1, "both links resolve to one file");
}

#[test]
fn graph_queries_inputs_opsets_and_topological_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = tensor("w", DataType::Float, &[1]);
    w.float_data = vec![2.0];
    // Stored out of order: `c` consumes `b`, which a later node produces.
    let nodes = vec![
        node("c", "Mul", &["b", "w"], &["y"]),
        node("b", "Relu", &["a"], &["b"]),
        node("a", "Neg", &["x", ""], &["a", ""]),
    ];
    let mut m = model(vec![w], nodes, &["x", "w"], &["y"]);
    m.opset_import.push(OperatorSetIdProto {
        domain: "com.microsoft".into(),
        version: 1,
    });
    let m = OnnxModel::load(&write(dir.path(), &m)).unwrap();
    assert_eq!(m.topo_nodes().unwrap(), vec![2, 1, 0]);
    let inputs: Vec<&str> = m.graph_inputs().iter().map(|v| v.name.as_str()).collect();
    assert_eq!(inputs, ["x"], "`w` is an initializer listed as an input");
    assert_eq!((m.opset(""), m.opset("ai.onnx")), (Some(17), Some(17)));
    assert_eq!(m.opset("com.microsoft"), Some(1));
    assert_eq!(m.node_name(1), "b");
    assert_eq!(m.dir, dir.path());

    // A sorted graph keeps its order; a subgraph's use of an outer value orders its owner.
    let mut branch = GraphProto {
        node: vec![node("inner", "Identity", &["late"], &["z"])],
        output: vec![value("z")],
        ..Default::default()
    };
    branch.name = "then".into();
    let mut owner = node("if", "If", &["x"], &["y"]);
    owner.attribute.push(AttributeProto {
        name: "then_branch".into(),
        g: Some(branch),
        ..Default::default()
    });
    let nodes = vec![owner, node("late", "Neg", &["x"], &["late"])];
    let m = OnnxModel::load(&write(dir.path(), &model(vec![], nodes, &["x"], &["y"]))).unwrap();
    assert_eq!(m.topo_nodes().unwrap(), vec![1, 0]);
}

#[test]
fn dtype_codes_map_both_ways() {
    for d in DType::ALL {
        assert_eq!(onnx_dtype(dtype_to_onnx(d)), Ok(d));
    }
    for (code, name) in [(8, "STRING"), (14, "COMPLEX64"), (15, "COMPLEX128")] {
        assert!(onnx_dtype(code).unwrap_err().contains(name));
    }
    for (code, name) in [(17, "FLOAT8E4M3FN"), (22, "INT4"), (23, "FLOAT4E2M1")] {
        assert!(onnx_dtype(code).unwrap_err().contains(name));
    }
    assert!(onnx_dtype(0).unwrap_err().contains("UNDEFINED"));
    assert!(onnx_dtype(999)
        .unwrap_err()
        .contains("unknown data type 999"));
}

#[test]
fn tensor_files_decode_to_name_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tensor("input", DataType::Int64, &[3]);
    t.int64_data = vec![1, 2, 3];
    let path = dir.path().join("input_0.pb");
    std::fs::write(&path, t.encode_to_vec()).unwrap();
    let (name, value) = read_tensor_file(&path).unwrap();
    assert_eq!(name, "input");
    assert_eq!(value, Tensor::from_i64(vec![3], vec![1, 2, 3]).unwrap());

    let Some(shared) = shared_dir() else { return };
    let case = shared.join("onnx-node-tests/node/test_abs/test_data_set_0");
    if case.is_dir() {
        let (_, x) = read_tensor_file(case.join("input_0.pb")).unwrap();
        let (_, y) = read_tensor_file(case.join("output_0.pb")).unwrap();
        assert_eq!(x.dtype(), DType::F32);
        let abs: Vec<f64> = x.to_f64_vec().iter().map(|v| v.abs()).collect();
        assert_eq!(y.to_f64_vec(), abs);
    }
}

#[test]
fn bert_fixtures_from_both_exporters_decode() {
    let Some(shared) = shared_dir() else { return };
    let word = "m.embeddings.word_embeddings.weight";
    let mut embeddings = vec![];
    for (file, opset, n_inits, n_external) in [
        ("bert-tiny.onnx", 14, 18, 0),
        ("bert-tiny-dynamo.onnx", 18, 30, 17),
    ] {
        let m = OnnxModel::load(&shared.join("fixtures").join(file)).unwrap();
        assert_eq!(m.opset(""), Some(opset), "{file}");
        let inputs: Vec<&str> = m.graph_inputs().iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            inputs,
            ["input_ids", "attention_mask", "token_type_ids"],
            "{file}"
        );
        assert_eq!(m.topo_nodes().unwrap().len(), m.graph().node.len());
        let weights = m.initializers().unwrap();
        assert_eq!(weights.len(), n_inits, "{file}");
        let mapped = weights
            .iter()
            .filter(|w| matches!(w.data(), WeightData::Mapped { .. }))
            .count();
        assert_eq!(mapped, n_external, "{file}");
        assert_eq!(m.source.mapped_files(), usize::from(n_external > 0));
        for w in &weights {
            let t = w.to_tensor().unwrap();
            if t.dtype().is_float() {
                assert!(t.to_f64_vec().iter().all(|x| x.is_finite()), "{}", w.name);
            }
        }
        let emb = weights.iter().find(|w| w.name == word).unwrap();
        let ln = weights
            .iter()
            .find(|w| w.name == "m.embeddings.LayerNorm.weight")
            .unwrap();
        let hidden = ln.shape[0];
        assert_eq!(
            (emb.dtype, emb.shape.len(), emb.shape[1]),
            (DType::F32, 2, hidden)
        );
        assert!(
            emb.shape[0] > hidden,
            "vocab {} <= hidden {hidden}",
            emb.shape[0]
        );
        let dtypes: Vec<DType> = weights.iter().map(|w| w.dtype).collect();
        assert!(dtypes
            .iter()
            .all(|d| [DType::F32, DType::I64, DType::Bool].contains(d)));
        embeddings.push(emb.to_tensor().unwrap());
    }
    assert_eq!(
        embeddings[0], embeddings[1],
        "both exports hold the same weights"
    );
}
