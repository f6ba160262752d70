//! Reduction kernels: reduce over axes, argmax/argmin, softmax, cumulative sum.

use super::util::KResult;
use crate::ir::{ArgOp, ReduceOp};
use kiln_runtime::Tensor;

pub fn reduce(op: ReduceOp, axes: &[i64], keepdims: bool, x: &Tensor) -> KResult<Tensor> {
    let _ = (op, axes, keepdims, x);
    Err("not written yet".to_string())
}

pub fn arg_reduce(
    op: ArgOp,
    axis: i64,
    keepdims: bool,
    select_last: bool,
    x: &Tensor,
) -> KResult<Tensor> {
    let _ = (op, axis, keepdims, select_last, x);
    Err("not written yet".to_string())
}

pub fn softmax(x: &Tensor, axis: i64, log: bool) -> KResult<Tensor> {
    let _ = (x, axis, log);
    Err("not written yet".to_string())
}

pub fn cumsum(x: &Tensor, axis: i64, exclusive: bool, reverse: bool) -> KResult<Tensor> {
    let _ = (x, axis, exclusive, reverse);
    Err("not written yet".to_string())
}
