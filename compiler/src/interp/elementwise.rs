//! Elementwise kernels: unary functions, binary ops with broadcasting, where.

use super::util::KResult;
use crate::ir::{BinaryOp, UnaryOp};
use kiln_runtime::Tensor;

pub fn unary(op: UnaryOp, x: &Tensor) -> KResult<Tensor> {
    let _ = (op, x);
    Err("not written yet".to_string())
}

pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> KResult<Tensor> {
    let _ = (op, a, b);
    Err("not written yet".to_string())
}

pub fn where_(cond: &Tensor, x: &Tensor, y: &Tensor) -> KResult<Tensor> {
    let _ = (cond, x, y);
    Err("not written yet".to_string())
}
