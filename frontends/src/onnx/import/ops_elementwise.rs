//! ONNX importers: elementwise arithmetic: binary ops, variadic chains and unary math.

use super::ctx::{invalid, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_util::{
    binary, binary_inputs, binary_node, binary_scalar, cast, dtype, one, unary_node,
};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, UnaryOp};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("Add", |c, n| binary_node(c, n, BinaryOp::Add));
    r.add("Sub", |c, n| binary_node(c, n, BinaryOp::Sub));
    r.add("Mul", |c, n| binary_node(c, n, BinaryOp::Mul));
    r.add("Div", |c, n| binary_node(c, n, BinaryOp::Div));
    r.add("Pow", pow);
    r.add("Mod", modulo);
    r.add("Max", |c, n| variadic(c, n, BinaryOp::Max));
    r.add("Min", |c, n| variadic(c, n, BinaryOp::Min));
    r.add("Sum", |c, n| variadic(c, n, BinaryOp::Add));
    r.add("Mean", mean);
    r.add("Abs", |c, n| unary_node(c, n, UnaryOp::Abs));
    r.add("Neg", |c, n| unary_node(c, n, UnaryOp::Neg));
    r.add("Sign", |c, n| unary_node(c, n, UnaryOp::Sign));
    r.add("Exp", |c, n| unary_node(c, n, UnaryOp::Exp));
    r.add("Log", |c, n| unary_node(c, n, UnaryOp::Log));
    r.add("Sqrt", |c, n| unary_node(c, n, UnaryOp::Sqrt));
    r.add("Reciprocal", |c, n| unary_node(c, n, UnaryOp::Reciprocal));
    r.add("Floor", |c, n| unary_node(c, n, UnaryOp::Floor));
    r.add("Ceil", |c, n| unary_node(c, n, UnaryOp::Ceil));
    r.add("Round", |c, n| unary_node(c, n, UnaryOp::Round));
    r.add("Sin", |c, n| unary_node(c, n, UnaryOp::Sin));
    r.add("Cos", |c, n| unary_node(c, n, UnaryOp::Cos));
    r.add("Tan", |c, n| unary_node(c, n, UnaryOp::Tan));
    r.add("Asin", |c, n| unary_node(c, n, UnaryOp::Asin));
    r.add("Acos", |c, n| unary_node(c, n, UnaryOp::Acos));
    r.add("Atan", |c, n| unary_node(c, n, UnaryOp::Atan));
    r.add("Sinh", |c, n| unary_node(c, n, UnaryOp::Sinh));
    r.add("Cosh", |c, n| unary_node(c, n, UnaryOp::Cosh));
    r.add("Asinh", |c, n| unary_node(c, n, UnaryOp::Asinh));
    r.add("Acosh", |c, n| unary_node(c, n, UnaryOp::Acosh));
    r.add("Atanh", |c, n| unary_node(c, n, UnaryOp::Atanh));
    r.add("Tanh", |c, n| unary_node(c, n, UnaryOp::Tanh));
    r.add("Erf", |c, n| unary_node(c, n, UnaryOp::Erf));
}

/// `Pow`: since opset 12 the exponent may have another dtype. The result has the base's dtype
/// (`np.power(a, b).astype(a.dtype)`): float bases take the exponent cast to their dtype;
/// integer bases compute in i64 with an integer exponent, in f64 (then truncate) with a float
/// one.
fn pow(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (a, b) = binary_inputs(ctx, n)?;
    let (da, db) = (dtype(ctx, &a), dtype(ctx, &b));
    if da == DType::Bool || db == DType::Bool {
        return invalid("Pow does not take bool tensors");
    }
    if da.is_float() || da == db {
        let b = cast(ctx, &b, da)?;
        return one(binary(ctx, BinaryOp::Pow, &a, &b)?);
    }
    let wide = if db.is_float() {
        DType::F64
    } else {
        DType::I64
    };
    let (a, b) = (cast(ctx, &a, wide)?, cast(ctx, &b, wide)?);
    let y = binary(ctx, BinaryOp::Pow, &a, &b)?;
    one(cast(ctx, &y, da)?)
}

/// `Mod`: `fmod = 0` is floor modulo (sign of the divisor), `fmod = 1` C `fmod`.
fn modulo(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    match n.int("fmod", 0) {
        0 => binary_node(ctx, n, BinaryOp::Mod),
        1 => binary_node(ctx, n, BinaryOp::FMod),
        v => invalid(format!("Mod: fmod must be 0 or 1, got {v}")),
    }
}

/// Folds `op` over the present inputs, left to right.
fn fold_inputs(ctx: &mut Ctx, n: &NodeView, op: BinaryOp) -> NResult<(Operand, usize)> {
    let inputs = n.present_inputs();
    let Some((first, rest)) = inputs.split_first() else {
        return invalid(format!("{} needs at least one input", n.node.op_type));
    };
    let mut acc = first.clone();
    for x in rest {
        acc = binary(ctx, op, &acc, x)?;
    }
    Ok((acc, inputs.len()))
}

/// `Max`, `Min`, `Sum`: a chain of binary ops (one input: identity).
fn variadic(ctx: &mut Ctx, n: &NodeView, op: BinaryOp) -> NResult<Vec<Operand>> {
    one(fold_inputs(ctx, n, op)?.0)
}

/// `Mean`: the sum divided by the input count.
fn mean(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (sum, count) = fold_inputs(ctx, n, BinaryOp::Add)?;
    if count == 1 {
        return one(sum);
    }
    one(binary_scalar(ctx, BinaryOp::Div, &sum, count as f64)?)
}
