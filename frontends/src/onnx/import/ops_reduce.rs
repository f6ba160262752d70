//! ONNX importers: `Reduce*` for every opset (axes as attribute or input,
//! `noop_with_empty_axes`, `keepdims`) and `ArgMax`/`ArgMin`.

use super::ctx::{unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_util::{binary, cast, dtype, flag, one, unary};
use super::Registry;
use kiln_compiler::ir::{ArgOp, BinaryOp, DType, Op, ReduceOp, UnaryOp};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("ReduceSum", |c, n| reduce(c, n, ReduceOp::Sum));
    r.add("ReduceMean", |c, n| reduce(c, n, ReduceOp::Mean));
    r.add("ReduceMax", |c, n| reduce(c, n, ReduceOp::Max));
    r.add("ReduceMin", |c, n| reduce(c, n, ReduceOp::Min));
    r.add("ReduceProd", |c, n| reduce(c, n, ReduceOp::Prod));
    r.add("ReduceL1", |c, n| reduce(c, n, ReduceOp::L1));
    r.add("ReduceL2", |c, n| reduce(c, n, ReduceOp::L2));
    r.add("ReduceLogSum", |c, n| reduce(c, n, ReduceOp::LogSum));
    r.add("ReduceLogSumExp", |c, n| reduce(c, n, ReduceOp::LogSumExp));
    r.add("ReduceSumSquare", |c, n| reduce(c, n, ReduceOp::SumSquare));
    r.add("ArgMax", |c, n| arg_reduce(c, n, ArgOp::ArgMax));
    r.add("ArgMin", |c, n| arg_reduce(c, n, ArgOp::ArgMin));
}

/// The axes to reduce: the `axes` attribute (ReduceSum < 13, the others < 18) or the optional
/// `axes` input (later opsets), which must be known at import time. Empty when neither is given.
fn reduce_axes(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<i64>> {
    if let Some(axes) = n.ints("axes") {
        return Ok(axes);
    }
    match n.opt_input(1) {
        None => Ok(Vec::new()),
        Some(a) => match ctx.const_i64s(a) {
            Some(v) => Ok(v),
            None => unsupported(format!("{} with axes computed at run time", n.node.op_type)),
        },
    }
}

/// `op(x)` in f64 for integer x (cast back after), as the reference's numpy computes it.
fn float_unary(ctx: &mut Ctx, op: UnaryOp, x: &Operand) -> NResult<Operand> {
    let dt = dtype(ctx, x);
    if dt.is_float() {
        return unary(ctx, op, x);
    }
    let xf = cast(ctx, x, DType::F64)?;
    let y = unary(ctx, op, &xf)?;
    cast(ctx, &y, dt)
}

/// A reduction over the empty set of axes (`noop_with_empty_axes = 1`): no reduction, but the
/// composite ops still apply their elementwise steps (ONNX: ReduceLogSum gives log(x),
/// ReduceSumSquare x², ReduceL1/L2 |x|; log-sum-exp of one element is the element).
fn reduce_nothing(ctx: &mut Ctx, op: ReduceOp, x: &Operand) -> NResult<Operand> {
    match op {
        ReduceOp::L1 | ReduceOp::L2 => unary(ctx, UnaryOp::Abs, x),
        ReduceOp::LogSum => float_unary(ctx, UnaryOp::Log, x),
        ReduceOp::SumSquare => binary(ctx, BinaryOp::Mul, x, x),
        ReduceOp::Sum
        | ReduceOp::Mean
        | ReduceOp::Max
        | ReduceOp::Min
        | ReduceOp::Prod
        | ReduceOp::LogSumExp => Ok(x.clone()),
    }
}

/// `Reduce*`.
fn reduce(ctx: &mut Ctx, n: &NodeView, op: ReduceOp) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let keepdims = flag(n, "keepdims", true);
    let axes = reduce_axes(ctx, n)?;
    if axes.is_empty() && flag(n, "noop_with_empty_axes", false) {
        return one(reduce_nothing(ctx, op, &x)?);
    }
    let dt = dtype(ctx, &x);
    if dt == DType::Bool {
        // ReduceMax/ReduceMin of bool (opset 20) are any/all: reduce 0/1 bytes.
        if !matches!(op, ReduceOp::Max | ReduceOp::Min) {
            return unsupported(format!("{} of a bool tensor", n.node.op_type));
        }
        let x8 = cast(ctx, &x, DType::U8)?;
        let y = ctx.emit1(Op::Reduce { op, axes, keepdims }, &[x8])?;
        return one(cast(ctx, &y, DType::Bool)?);
    }
    one(ctx.emit1(Op::Reduce { op, axes, keepdims }, &[x])?)
}

/// `ArgMax` / `ArgMin` (`select_last_index` from opset 12).
fn arg_reduce(ctx: &mut Ctx, n: &NodeView, op: ArgOp) -> NResult<Vec<Operand>> {
    let mut x = n.input(0)?.clone();
    if dtype(ctx, &x) == DType::Bool {
        x = cast(ctx, &x, DType::U8)?;
    }
    let arg = Op::ArgReduce {
        op,
        axis: n.int("axis", 0),
        keepdims: flag(n, "keepdims", true),
        select_last: flag(n, "select_last_index", false),
    };
    one(ctx.emit1(arg, &[x])?)
}
