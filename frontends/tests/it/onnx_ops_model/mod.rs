//! A small builder of one-op ONNX models for the op-importer tests: graph inputs with known or
//! symbolic dims, initializers, nodes with attributes; import through a temp file and run on
//! the reference interpreter.

// Not every test crate uses every helper; `Error` is large by design (see the crate root).
#![allow(dead_code, clippy::result_large_err)]

use kiln_compiler::ir::Graph;
use kiln_frontends::onnx::import::import_file;
use kiln_frontends::onnx::proto::attribute_proto::AttributeType;
use kiln_frontends::onnx::proto::tensor_proto::DataType;
use kiln_frontends::onnx::proto::tensor_shape_proto::{dimension, Dimension};
use kiln_frontends::onnx::proto::*;
use kiln_frontends::Error;
use kiln_runtime::Tensor;
use prost::Message;
use std::collections::BTreeMap;

/// A one-node-at-a-time model under construction.
pub struct Model {
    pub opset: i64,
    pub graph: GraphProto,
}

pub fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: ty as i32,
        ..Default::default()
    }
}

pub fn ai(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        i,
        ..attr(name, AttributeType::Int)
    }
}

pub fn ais(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}

pub fn af(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        f,
        ..attr(name, AttributeType::Float)
    }
}

pub fn as_(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        s: s.as_bytes().to_vec(),
        ..attr(name, AttributeType::String)
    }
}

impl Model {
    pub fn new(opset: i64) -> Model {
        Model {
            opset,
            graph: GraphProto::default(),
        }
    }

    /// A graph input; numeric dims are known, others are `dim_param`s.
    pub fn input(mut self, name: &str, dt: DataType, dims: &[&str]) -> Model {
        let dim = dims
            .iter()
            .map(|d| Dimension {
                value: Some(match d.parse::<i64>() {
                    Ok(v) => dimension::Value::DimValue(v),
                    Err(_) => dimension::Value::DimParam(d.to_string()),
                }),
                ..Default::default()
            })
            .collect();
        let tt = type_proto::Tensor {
            elem_type: dt as i32,
            shape: Some(TensorShapeProto { dim }),
        };
        let ty = TypeProto {
            value: Some(type_proto::Value::TensorType(tt)),
            ..Default::default()
        };
        self.graph.input.push(ValueInfoProto {
            name: name.to_string(),
            r#type: Some(ty),
            ..Default::default()
        });
        self
    }

    pub fn init(mut self, name: &str, t: TensorProto) -> Model {
        self.graph.initializer.push(TensorProto {
            name: name.to_string(),
            ..t
        });
        self
    }

    pub fn ints(self, name: &str, dims: &[i64], v: &[i64]) -> Model {
        let t = TensorProto {
            data_type: DataType::Int64 as i32,
            dims: dims.to_vec(),
            int64_data: v.to_vec(),
            ..Default::default()
        };
        self.init(name, t)
    }

    pub fn floats(self, name: &str, dims: &[i64], v: &[f32]) -> Model {
        let t = TensorProto {
            data_type: DataType::Float as i32,
            dims: dims.to_vec(),
            float_data: v.to_vec(),
            ..Default::default()
        };
        self.init(name, t)
    }

    pub fn node(
        mut self,
        op: &str,
        ins: &[&str],
        outs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> Model {
        self.graph.node.push(NodeProto {
            op_type: op.to_string(),
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: outs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs,
            ..Default::default()
        });
        self
    }

    /// A node of ONNX Runtime's `com.microsoft` domain (imported at opset 1).
    pub fn ms(self, op: &str, ins: &[&str], outs: &[&str], attrs: Vec<AttributeProto>) -> Model {
        let mut m = self.node(op, ins, outs, attrs);
        if let Some(n) = m.graph.node.last_mut() {
            n.domain = "com.microsoft".to_string();
        }
        m
    }

    pub fn import(&self, outs: &[&str]) -> Result<Graph, Error> {
        let mut graph = self.graph.clone();
        graph.output = outs
            .iter()
            .map(|n| ValueInfoProto {
                name: n.to_string(),
                ..Default::default()
            })
            .collect();
        let opset = OperatorSetIdProto {
            domain: String::new(),
            version: self.opset,
        };
        let mut opset_import = vec![opset];
        if graph.node.iter().any(|n| n.domain == "com.microsoft") {
            opset_import.push(OperatorSetIdProto {
                domain: "com.microsoft".to_string(),
                version: 1,
            });
        }
        let m = ModelProto {
            ir_version: 8,
            opset_import,
            graph: Some(graph),
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        std::fs::write(&path, m.encode_to_vec()).unwrap();
        import_file(&path)
    }

    /// Imports (must succeed) and runs on `x` fed to input `x`; the outputs' f64 values.
    pub fn eval(&self, outs: &[&str], x: Tensor) -> Vec<Tensor> {
        let g = self.import(outs).unwrap_or_else(|e| panic!("{e}"));
        run(&g, x)
    }
}

pub fn run(g: &Graph, x: Tensor) -> Vec<Tensor> {
    let inputs: BTreeMap<String, Tensor> = [("x".to_string(), x)].into();
    kiln_compiler::interp::run(g, &inputs)
        .unwrap()
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

pub fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
}

/// `0, 1, 2, ...` scaled by 0.25 and shifted to straddle zero.
pub fn ramp(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    f32s(
        shape,
        &(0..n).map(|i| i as f32 * 0.25 - 1.0).collect::<Vec<_>>(),
    )
}

#[track_caller]
pub fn close(got: &Tensor, want: &[f64]) {
    let g = got.to_f64_vec();
    assert_eq!(g.len(), want.len(), "{g:?} vs {want:?}");
    for (a, b) in g.iter().zip(want) {
        assert!((a - b).abs() <= 1e-5 + 1e-4 * b.abs(), "{g:?} vs {want:?}");
    }
}

#[track_caller]
pub fn unsupported(r: Result<Graph, Error>, fragment: &str) {
    let e = r.unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains(fragment), "`{e}` lacks `{fragment}`");
}
