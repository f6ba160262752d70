//! Builders shared by the ONNX frontend tests: tensors, nodes and models made with the proto
//! structs, written to a temp folder; and the error-matching helper of the malformed corpus.

// Not every test crate uses every helper; `Error` is large by design (see the crate root).
#![allow(dead_code, clippy::result_large_err)]

use kiln_frontends::onnx::proto::tensor_proto::{DataLocation, DataType};
use kiln_frontends::onnx::proto::*;
use kiln_frontends::onnx::OnnxModel;
use kiln_frontends::Error;
use prost::Message;
use std::path::{Path, PathBuf};

/// A tensor with no data yet.
pub fn tensor(name: &str, dt: DataType, dims: &[i64]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        data_type: dt as i32,
        dims: dims.to_vec(),
        ..Default::default()
    }
}

/// `t` stored externally, described by `entries` (`location`, `offset`, ...).
pub fn external(mut t: TensorProto, entries: &[(&str, &str)]) -> TensorProto {
    t.data_location = DataLocation::External as i32;
    t.external_data = entries
        .iter()
        .map(|(k, v)| StringStringEntryProto {
            key: k.to_string(),
            value: v.to_string(),
        })
        .collect();
    t
}

/// An untyped value info.
pub fn value(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        ..Default::default()
    }
}

/// A node of the default domain.
pub fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        name: name.to_string(),
        op_type: op.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// An IR-8, opset-17 model.
pub fn model(
    inits: Vec<TensorProto>,
    nodes: Vec<NodeProto>,
    ins: &[&str],
    outs: &[&str],
) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            node: nodes,
            initializer: inits,
            input: ins.iter().map(|n| value(n)).collect(),
            output: outs.iter().map(|n| value(n)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Writes `bytes` as `dir/model.onnx`.
pub fn write_bytes(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("model.onnx");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Writes `m` as `dir/model.onnx`.
pub fn write(dir: &Path, m: &ModelProto) -> PathBuf {
    write_bytes(dir, &m.encode_to_vec())
}

/// Writes and loads `m`.
pub fn load(dir: &Path, m: &ModelProto) -> Result<OnnxModel, Error> {
    OnnxModel::load(&write(dir, m))
}

/// Loads (must succeed) a model with one initializer and decodes it (must fail).
pub fn decode_error(dir: &Path, t: TensorProto) -> Error {
    let name = t.name.clone();
    let m = load(dir, &model(vec![t], vec![], &[], &[&name])).unwrap();
    m.initializers().map(|_| ()).unwrap_err()
}

/// Little-endian bytes of `v`.
pub fn le<T: Copy, const N: usize>(v: &[T], f: fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

/// The variant's name.
pub fn variant(e: &Error) -> &'static str {
    match e {
        Error::Io { .. } => "Io",
        Error::Decode { .. } => "Decode",
        Error::Malformed { .. } => "Malformed",
        Error::Tensor { .. } => "Tensor",
        Error::ExternalData { .. } => "ExternalData",
        Error::Unsupported { .. } => "Unsupported",
        Error::UnsupportedInput { .. } => "UnsupportedInput",
        Error::Config { .. } => "Config",
        Error::UnsupportedArchitecture { .. } => "UnsupportedArchitecture",
        Error::Safetensors { .. } => "Safetensors",
        Error::MissingWeight { .. } => "MissingWeight",
        Error::WeightShape { .. } => "WeightShape",
        Error::Node { .. } => "Node",
        Error::Gguf { .. } => "Gguf",
        Error::Compiler(_) => "Compiler",
    }
}

/// Asserts `e` is variant `kind`, its one-line message names `model.onnx` and holds `fragment`.
#[track_caller]
pub fn expect(e: Error, kind: &str, fragment: &str) {
    let msg = e.to_string();
    assert_eq!(variant(&e), kind, "{msg}");
    assert!(msg.contains(fragment), "`{msg}` lacks `{fragment}`");
    assert!(msg.contains("model.onnx"), "`{msg}` does not name the file");
    assert!(!msg.contains('\n'), "`{msg}` spans lines");
}

/// `$KILN_SHARED`, or `<workspace>/../shared`; `None` (test skipped) when missing, unless
/// `KILN_REQUIRE_SHARED=1`.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("KILN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("KILN_REQUIRE_SHARED").as_deref() != Ok("1"),
        "KILN_REQUIRE_SHARED=1 but {} does not exist",
        dir.display()
    );
    println!("skipped: ../shared not found");
    None
}
