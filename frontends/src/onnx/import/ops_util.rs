//! Helpers shared by the op importers: emission shortcuts, scalars, shapes, axes and the legacy
//! (opset < 7) broadcasting attributes.

use super::ctx::{invalid, Ctx, NResult, Operand};
use super::node::NodeView;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op, UnaryOp};

/// Wraps one output.
pub fn one(o: Operand) -> NResult<Vec<Operand>> {
    Ok(vec![o])
}

/// The operand's dtype.
pub fn dtype(ctx: &Ctx, x: &Operand) -> DType {
    ctx.ty(x).dtype
}

/// The operand's dims.
pub fn dims(ctx: &Ctx, x: &Operand) -> Vec<Dim> {
    ctx.ty(x).shape.0
}

/// The operand's rank.
pub fn rank(ctx: &Ctx, x: &Operand) -> usize {
    ctx.ty(x).shape.rank()
}

/// `op(x)`.
pub fn unary(ctx: &mut Ctx, op: UnaryOp, x: &Operand) -> NResult<Operand> {
    ctx.emit1(Op::Unary(op), std::slice::from_ref(x))
}

/// `op(a, b)`.
pub fn binary(ctx: &mut Ctx, op: BinaryOp, a: &Operand, b: &Operand) -> NResult<Operand> {
    ctx.emit1(Op::Binary(op), &[a.clone(), b.clone()])
}

/// `op(x, v)` with `v` a scalar of x's dtype.
pub fn binary_scalar(ctx: &mut Ctx, op: BinaryOp, x: &Operand, v: f64) -> NResult<Operand> {
    let s = ctx.scalar(v, dtype(ctx, x))?;
    binary(ctx, op, x, &s)
}

/// `x * v`, or x itself when `v` is 1.
pub fn scale(ctx: &mut Ctx, x: &Operand, v: f64) -> NResult<Operand> {
    if v == 1.0 {
        return Ok(x.clone());
    }
    binary_scalar(ctx, BinaryOp::Mul, x, v)
}

/// `cond ? a : b`.
pub fn select(ctx: &mut Ctx, cond: &Operand, a: &Operand, b: &Operand) -> NResult<Operand> {
    ctx.emit1(Op::Where, &[cond.clone(), a.clone(), b.clone()])
}

/// x cast to `to` (x itself when it already has that dtype).
pub fn cast(ctx: &mut Ctx, x: &Operand, to: DType) -> NResult<Operand> {
    if dtype(ctx, x) == to {
        return Ok(x.clone());
    }
    ctx.emit1(Op::Cast { to }, std::slice::from_ref(x))
}

/// x viewed with `shape` (x itself when the shape is unchanged).
pub fn reshape(ctx: &mut Ctx, x: &Operand, shape: Vec<Dim>) -> NResult<Operand> {
    if dims(ctx, x) == shape {
        return Ok(x.clone());
    }
    ctx.emit1(Op::Reshape { shape }, std::slice::from_ref(x))
}

/// x transposed by `perm` (x itself for the identity permutation).
pub fn transpose(ctx: &mut Ctx, x: &Operand, perm: Vec<i64>) -> NResult<Operand> {
    if perm.iter().enumerate().all(|(i, &p)| p == i as i64) {
        return Ok(x.clone());
    }
    ctx.emit1(Op::Transpose { perm }, std::slice::from_ref(x))
}

/// A tensor of x's shape filled with `v` of `dtype`.
pub fn full_like(ctx: &mut Ctx, x: &Operand, v: f64, dtype: DType) -> NResult<Operand> {
    let s = ctx.scalar(v, dtype)?;
    let shape = dims(ctx, x);
    if shape.is_empty() {
        return Ok(s);
    }
    ctx.emit1(Op::Expand { shape }, &[s])
}

/// The product of dims.
pub fn product(d: &[Dim]) -> Dim {
    d.iter().fold(Dim::known(1), |a, b| a.mul(b))
}

/// Normalises `axis` against `rank` (`-rank <= axis < rank`).
pub fn norm_axis(axis: i64, rank: usize) -> NResult<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        return invalid(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(if axis < 0 { axis + r } else { axis } as usize)
}

/// A boolean (0/1 integer) attribute.
pub fn flag(n: &NodeView, name: &str, default: bool) -> bool {
    n.int(name, i64::from(default)) != 0
}

/// A scalar-valued operand (shape `[]` or `[1]`) reshaped to rank 0 so that it broadcasts
/// without raising the rank of the other operand.
pub fn as_scalar(ctx: &mut Ctx, x: &Operand, what: &str) -> NResult<Operand> {
    let d = dims(ctx, x);
    if d.is_empty() {
        return Ok(x.clone());
    }
    if product(&d).as_known() != Some(1) {
        return invalid(format!(
            "{what} must be a scalar, got shape {}",
            ctx.ty(x).shape
        ));
    }
    reshape(ctx, x, vec![])
}

/// Input 1 of a binary op, reshaped for the legacy `broadcast`/`axis` attributes of opset < 7
/// (B's dims align with A's starting at `axis`; without `axis`, suffix matching = numpy).
pub fn legacy_rhs(ctx: &mut Ctx, n: &NodeView, a: &Operand, b: &Operand) -> NResult<Operand> {
    if n.opset >= 7 || n.int("broadcast", 0) == 0 {
        return Ok(b.clone());
    }
    let Some(axis) = n.attr("axis").map(|a| a.i) else {
        return Ok(b.clone());
    };
    let (ra, rb) = (rank(ctx, a), rank(ctx, b));
    let axis = norm_axis(axis, ra.max(1))?;
    let Some(trailing) = ra.checked_sub(axis + rb) else {
        return invalid(format!(
            "legacy broadcast: rank {rb} at axis {axis} does not fit in rank {ra}"
        ));
    };
    let mut shape = dims(ctx, b);
    shape.extend(std::iter::repeat_n(Dim::known(1), trailing));
    reshape(ctx, b, shape)
}

/// The two inputs of a binary op, with legacy broadcasting applied.
pub fn binary_inputs(ctx: &mut Ctx, n: &NodeView) -> NResult<(Operand, Operand)> {
    let a = n.input(0)?.clone();
    let b = legacy_rhs(ctx, n, &a, n.input(1)?)?;
    Ok((a, b))
}

/// Importer body for a plain binary op (with legacy broadcasting).
pub fn binary_node(ctx: &mut Ctx, n: &NodeView, op: BinaryOp) -> NResult<Vec<Operand>> {
    let (a, b) = binary_inputs(ctx, n)?;
    one(binary(ctx, op, &a, &b)?)
}

/// Importer body for a plain unary op.
pub fn unary_node(ctx: &mut Ctx, n: &NodeView, op: UnaryOp) -> NResult<Vec<Operand>> {
    one(unary(ctx, op, n.input(0)?)?)
}

/// The float dtype an op needs, or an error naming the op.
pub fn require_float(ctx: &Ctx, x: &Operand, op: &str) -> NResult<DType> {
    let dt = dtype(ctx, x);
    if !dt.is_float() {
        return invalid(format!("{op} takes a float tensor, got {dt}"));
    }
    Ok(dt)
}
