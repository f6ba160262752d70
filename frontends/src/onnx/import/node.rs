//! A node being imported: its resolved inputs and typed access to its attributes.

use super::ctx::{invalid, NResult, NodeError, Operand};
use crate::onnx::proto::{AttributeProto, NodeProto, TensorProto};

/// One ONNX node with its inputs resolved to operands (`None` for omitted optional inputs).
#[derive(Debug)]
pub struct NodeView<'a> {
    /// The node.
    pub node: &'a NodeProto,
    /// Its inputs, in order; `None` where the input name is empty.
    pub inputs: Vec<Option<Operand>>,
    /// The opset version of the node's domain.
    pub opset: i64,
}

impl NodeView<'_> {
    /// Required input `i`.
    pub fn input(&self, i: usize) -> NResult<&Operand> {
        match self.inputs.get(i) {
            Some(Some(o)) => Ok(o),
            _ => invalid(format!(
                "{} needs input {i}, which is missing",
                self.node.op_type
            )),
        }
    }

    /// Optional input `i`.
    pub fn opt_input(&self, i: usize) -> Option<&Operand> {
        self.inputs.get(i).and_then(Option::as_ref)
    }

    /// Every present input, in order.
    pub fn present_inputs(&self) -> Vec<Operand> {
        self.inputs.iter().flatten().cloned().collect()
    }

    /// Number of outputs the node declares.
    pub fn num_outputs(&self) -> usize {
        self.node.output.len()
    }

    /// The attribute with this name.
    pub fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    /// An integer attribute, or `default`.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).map_or(default, |a| a.i)
    }

    /// A required integer attribute.
    pub fn req_int(&self, name: &str) -> NResult<i64> {
        self.attr(name)
            .map(|a| a.i)
            .ok_or_else(|| self.missing(name))
    }

    /// A float attribute, or `default`.
    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.attr(name).map_or(default, |a| a.f)
    }

    /// An integer list attribute, if present.
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attr(name).map(|a| a.ints.clone())
    }

    /// A float list attribute, if present.
    pub fn floats(&self, name: &str) -> Option<Vec<f32>> {
        self.attr(name).map(|a| a.floats.clone())
    }

    /// A string attribute, or `default`.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.attr(name).map_or(default.to_string(), |a| {
            String::from_utf8_lossy(&a.s).into_owned()
        })
    }

    /// A tensor attribute, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorProto> {
        self.attr(name).and_then(|a| a.t.as_ref())
    }

    /// The error for a missing required attribute.
    pub fn missing(&self, name: &str) -> NodeError {
        NodeError::Invalid(format!("{} needs attribute `{name}`", self.node.op_type))
    }
}
