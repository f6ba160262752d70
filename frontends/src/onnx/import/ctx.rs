//! The import context: ONNX value names → operands (graph values, known constants, or symbolic
//! integer tensors), and `emit`, which folds constant and shape computations as it goes.

use super::fold;
use crate::onnx::proto::TensorProto;
use crate::onnx::tensor::{decode_tensor_value, TensorSource};
use kiln_compiler::interp::eval_op;
use kiln_compiler::ir::{
    Bindings, DType, Dim, Graph, Op, Shape, TensorType, ValueDef, ValueId, Weight,
};
use kiln_runtime::Tensor;
use std::collections::HashMap;
use std::path::Path;

/// An integer tensor (shape values such as `[batch, seq, 12, 32]`) whose elements are dims.
#[derive(Debug, Clone, PartialEq)]
pub struct SymTensor {
    /// Its shape (rank 0 or 1 in practice).
    pub shape: Vec<usize>,
    /// Row-major elements.
    pub elems: Vec<Dim>,
    /// Its ONNX element type (i64 or i32).
    pub dtype: DType,
}

/// What an ONNX value name stands for during import.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A value of the graph being built (an input, a weight, or a node output).
    Value(ValueId),
    /// A known constant, turned into a weight only when a node needs it.
    Const(usize),
    /// A symbolic integer tensor, folded from shape computations.
    Sym(SymTensor),
}

/// Why a node could not be imported; the driver adds the file, node, op type and opset.
#[derive(Debug)]
pub enum NodeError {
    /// Kiln does not support this op, attribute value or input form.
    Unsupported(String),
    /// The node is invalid (wrong inputs, bad attribute values).
    Invalid(String),
}

/// Shorthand for importer results.
pub type NResult<T> = Result<T, NodeError>;

/// Formats an unsupported-feature error.
pub fn unsupported<T>(msg: impl Into<String>) -> NResult<T> {
    Err(NodeError::Unsupported(msg.into()))
}

/// Formats an invalid-node error.
pub fn invalid<T>(msg: impl Into<String>) -> NResult<T> {
    Err(NodeError::Invalid(msg.into()))
}

impl From<kiln_compiler::Error> for NodeError {
    fn from(e: kiln_compiler::Error) -> Self {
        NodeError::Invalid(e.to_string())
    }
}

impl From<kiln_runtime::Error> for NodeError {
    fn from(e: kiln_runtime::Error) -> Self {
        NodeError::Invalid(e.to_string())
    }
}

#[derive(Debug)]
struct ConstSlot {
    tensor: Tensor,
    value: Option<ValueId>,
}

/// Constant folding gives up when its inputs and outputs together exceed this many bytes (the
/// node is emitted instead, and runs within the run's memory budget).
const FOLD_LIMIT_BYTES: u64 = 64 << 20;

/// State shared by all importers while one graph is imported.
#[derive(Debug)]
pub struct Ctx {
    /// The graph being built.
    pub graph: Graph,
    consts: Vec<ConstSlot>,
    /// Cached data of weights that folding needed.
    weight_cache: HashMap<ValueId, Tensor>,
    next_symbol: usize,
    source: TensorSource,
}

impl Ctx {
    /// An empty context for a model file in folder `dir`.
    pub fn new(path: &Path, dir: &Path) -> Ctx {
        Ctx {
            graph: Graph::new(),
            consts: Vec::new(),
            weight_cache: HashMap::new(),
            next_symbol: 0,
            source: TensorSource::with_dir(path, dir),
        }
    }

    /// Decodes a tensor held in an attribute (`Constant`'s `value`, `ConstantOfShape`'s `value`).
    pub fn decode_tensor(&self, t: &TensorProto) -> NResult<Tensor> {
        decode_tensor_value(t, &self.source).map_err(|e| {
            let m = e.to_string();
            if m.contains("unsupported") || m.contains("not supported") {
                NodeError::Unsupported(m)
            } else {
                NodeError::Invalid(m)
            }
        })
    }

    /// A fresh symbol for an unnamed dynamic dim.
    pub fn fresh_symbol(&mut self) -> Dim {
        self.next_symbol += 1;
        Dim::sym(&format!("unk{}", self.next_symbol))
    }

    /// Registers a constant.
    pub fn constant(&mut self, t: Tensor) -> Operand {
        self.consts.push(ConstSlot {
            tensor: t,
            value: None,
        });
        Operand::Const(self.consts.len() - 1)
    }

    /// A rank-0 constant of `dtype`.
    pub fn scalar(&mut self, v: f64, dtype: DType) -> NResult<Operand> {
        let t = Tensor::from_f64_values(dtype, vec![], &[v])?;
        Ok(self.constant(t))
    }

    /// The type of an operand.
    pub fn ty(&self, o: &Operand) -> TensorType {
        match o {
            Operand::Value(v) => self.graph.value(*v).ty.clone(),
            Operand::Const(i) => {
                let t = &self.consts[*i].tensor;
                TensorType::new(
                    t.dtype(),
                    Shape(t.shape().iter().map(|&d| Dim::known(d as i64)).collect()),
                )
            }
            Operand::Sym(s) => TensorType::new(
                s.dtype,
                Shape(s.shape.iter().map(|&d| Dim::known(d as i64)).collect()),
            ),
        }
    }

    /// The operand's value when it is known at import time (constants, weights, and symbolic
    /// tensors whose dims are all known).
    pub fn const_tensor(&mut self, o: &Operand) -> Option<Tensor> {
        match o {
            Operand::Const(i) => Some(self.consts[*i].tensor.clone()),
            Operand::Value(v) => {
                let ValueDef::Weight(w) = self.graph.value(*v).def else {
                    return None;
                };
                if let Some(t) = self.weight_cache.get(v) {
                    return Some(t.clone());
                }
                let t = self.graph.weights().get(w).to_tensor().ok()?;
                self.weight_cache.insert(*v, t.clone());
                Some(t)
            }
            Operand::Sym(s) => {
                let vals: Option<Vec<i64>> = s.elems.iter().map(Dim::as_known).collect();
                Tensor::from_i64_values(s.dtype, s.shape.clone(), &vals?).ok()
            }
        }
    }

    /// The operand's elements as integers, when known.
    pub fn const_i64s(&mut self, o: &Operand) -> Option<Vec<i64>> {
        let t = self.const_tensor(o)?;
        if t.dtype().is_int() {
            Some(t.to_i64_vec())
        } else {
            None
        }
    }

    /// The operand's elements as dims (known or symbolic), when it is an integer tensor known at
    /// import time.
    pub fn dims(&mut self, o: &Operand) -> Option<Vec<Dim>> {
        match o {
            Operand::Sym(s) => Some(s.elems.clone()),
            _ => Some(self.const_i64s(o)?.into_iter().map(Dim::known).collect()),
        }
    }

    /// The graph value of an operand, materialising constants as weights and symbolic tensors as
    /// `dims` nodes.
    pub fn value(&mut self, o: &Operand) -> NResult<ValueId> {
        match o {
            Operand::Value(v) => Ok(*v),
            Operand::Const(i) => {
                if let Some(v) = self.consts[*i].value {
                    return Ok(v);
                }
                let name = format!("const{i}");
                let v = self
                    .graph
                    .add_weight(Weight::from_tensor(name, &self.consts[*i].tensor));
                self.consts[*i].value = Some(v);
                Ok(v)
            }
            Operand::Sym(s) => {
                let n = s.elems.len() as i64;
                let flat = self.graph.add_node(
                    Op::Dims {
                        values: s.elems.clone(),
                    },
                    &[],
                )?[0];
                let mut v = flat;
                if s.dtype != DType::I64 {
                    v = self.graph.add_node(Op::Cast { to: s.dtype }, &[v])?[0];
                }
                if s.shape != [n as usize] {
                    let shape = s.shape.iter().map(|&d| Dim::known(d as i64)).collect();
                    v = self.graph.add_node(Op::Reshape { shape }, &[v])?[0];
                }
                Ok(v)
            }
        }
    }

    /// Adds `op` applied to `inputs`, folding it when every input is known (constants are
    /// evaluated with the reference interpreter; shape computations symbolically).
    pub fn emit(&mut self, op: Op, inputs: &[Operand]) -> NResult<Vec<Operand>> {
        let all_known = inputs.iter().all(|o| match o {
            Operand::Value(v) => matches!(self.graph.value(*v).def, ValueDef::Weight(_)),
            _ => true,
        });
        if all_known {
            if let Some(out) = self.try_fold(&op, inputs)? {
                return Ok(out);
            }
        }
        let ids = inputs
            .iter()
            .map(|o| self.value(o))
            .collect::<NResult<Vec<_>>>()?;
        let outs = self.graph.add_node(op, &ids)?;
        Ok(outs.into_iter().map(Operand::Value).collect())
    }

    /// [`Ctx::emit`] for single-output ops.
    pub fn emit1(&mut self, op: Op, inputs: &[Operand]) -> NResult<Operand> {
        let mut out = self.emit(op, inputs)?;
        out.pop()
            .ok_or_else(|| NodeError::Invalid("op produced no output".to_string()))
    }

    fn try_fold(&mut self, op: &Op, inputs: &[Operand]) -> NResult<Option<Vec<Operand>>> {
        if inputs.iter().any(|o| matches!(o, Operand::Sym(_))) {
            if let Some(out) = fold::fold_symbolic(self, op, inputs)? {
                return Ok(Some(out));
            }
        }
        let mut tensors = Vec::with_capacity(inputs.len());
        let mut total = 0u64;
        for o in inputs {
            let Some(t) = self.const_tensor(o) else {
                return Ok(None);
            };
            total = total.saturating_add((t.len() * t.dtype().size()) as u64);
            tensors.push(t);
        }
        if total > FOLD_LIMIT_BYTES {
            return Ok(None);
        }
        // Type-check first, so that folding never hides an error the graph would report; the
        // outputs' sizes count too (`ConstantOfShape([65536, 65536])` has a 2-element input).
        let tys: Vec<TensorType> = inputs.iter().map(|o| self.ty(o)).collect();
        for ty in kiln_compiler::ir::infer::infer_types(op, &tys)? {
            let bytes = ty.shape.0.iter().try_fold(ty.dtype.size() as u64, |a, d| {
                a.checked_mul(u64::try_from(d.as_known()?).ok()?)
            });
            total = bytes.map_or(u64::MAX, |b| total.saturating_add(b));
        }
        if total > FOLD_LIMIT_BYTES {
            return Ok(None);
        }
        let refs: Vec<&Tensor> = tensors.iter().collect();
        match eval_op(op, &refs, &Bindings::new()) {
            Ok(out) => Ok(Some(out.into_iter().map(|t| self.constant(t)).collect())),
            Err(_) => Ok(None),
        }
    }

    /// Wraps a symbolic tensor, turning it into a constant when every element is known.
    pub fn sym(&mut self, s: SymTensor) -> NResult<Operand> {
        if s.elems.iter().all(|d| d.as_known().is_some()) {
            let vals: Vec<i64> = s.elems.iter().filter_map(Dim::as_known).collect();
            let t = Tensor::from_i64_values(s.dtype, s.shape, &vals)?;
            return Ok(self.constant(t));
        }
        Ok(Operand::Sym(s))
    }
}
