//! Shorthands of the reference-interpreter tests: tensors from literal values and one op
//! evaluated with no symbolic bindings.

use kiln_compiler::interp::eval_op;
use kiln_compiler::ir::{Bindings, Op};
use kiln_runtime::{DType, Tensor};

/// A tensor of `dt` and `shape` from float values.
pub fn t(dt: DType, shape: &[usize], v: &[f64]) -> Tensor {
    Tensor::from_f64_values(dt, shape.to_vec(), v).unwrap()
}

/// A tensor of `dt` and `shape` from integer values.
pub fn ti(dt: DType, shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_i64_values(dt, shape.to_vec(), v).unwrap()
}

/// The first result of `op(xs)` on the interpreter, or its error as text.
pub fn eval(op: Op, xs: &[&Tensor]) -> Result<Tensor, String> {
    eval_op(&op, xs, &Bindings::new()).map(|mut v| v.remove(0))
}
