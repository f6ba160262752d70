//! Shape and dtype inference for every op, split by op category.

use super::op::Op;
use super::types::TensorType;
use crate::error::{Error, Result};

/// The output types of `op` applied to inputs of types `inputs`, or why they do not type-check.
pub fn infer_types(op: &Op, inputs: &[TensorType]) -> Result<Vec<TensorType>> {
    let _ = inputs;
    Err(Error::Type {
        op: op.name(),
        message: "shape inference is not written yet".to_string(),
    })
}
