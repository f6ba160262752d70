//! ONNX importers: ops along one axis: `Softmax`, `LogSoftmax`, `Hardmax` (with the 2-D
//! coercion semantics of opset < 13), `CumSum` and `CumProd`.

use super::ctx::{invalid, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_util::{
    as_scalar, binary, binary_scalar, cast, dims, dtype, flag, norm_axis, one, product,
    require_float, reshape, select,
};
use super::Registry;
use kiln_compiler::ir::{ArgOp, BinaryOp, DType, Dim, Op};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("Softmax", |c, n| coerced(c, n, softmax));
    r.add("LogSoftmax", |c, n| coerced(c, n, log_softmax));
    r.add("Hardmax", |c, n| coerced(c, n, hardmax));
    r.add("CumSum", cumsum);
    r.add("CumProd", cumprod);
}

/// An op along one (normalised) axis.
type AxisFn = fn(&mut Ctx, &Operand, usize) -> NResult<Operand>;

fn softmax(ctx: &mut Ctx, x: &Operand, axis: usize) -> NResult<Operand> {
    ctx.emit1(Op::Softmax { axis: axis as i64 }, std::slice::from_ref(x))
}

fn log_softmax(ctx: &mut Ctx, x: &Operand, axis: usize) -> NResult<Operand> {
    ctx.emit1(
        Op::LogSoftmax { axis: axis as i64 },
        std::slice::from_ref(x),
    )
}

/// One-hot of the first maximum along `axis`: `argmax(x, axis) == range(n)`, as x's dtype.
fn hardmax(ctx: &mut Ctx, x: &Operand, axis: usize) -> NResult<Operand> {
    let d = dims(ctx, x);
    let dt = dtype(ctx, x);
    let arg = Op::ArgReduce {
        op: ArgOp::ArgMax,
        axis: axis as i64,
        keepdims: true,
        select_last: false,
    };
    let idx = ctx.emit1(arg, std::slice::from_ref(x))?;
    let size = d[axis].clone();
    let range = match size.as_known() {
        Some(k) => {
            let t = kiln_runtime::Tensor::from_i64(vec![k as usize], (0..k).collect())?;
            ctx.constant(t)
        }
        None => {
            let r = Op::Range {
                start: Dim::known(0),
                limit: size.clone(),
                delta: Dim::known(1),
                dtype: DType::I64,
            };
            ctx.emit1(r, &[])?
        }
    };
    // [n, 1, ..., 1] aligns the range with `axis` when broadcast against x's rank.
    let mut shape = vec![size];
    shape.extend(std::iter::repeat_n(Dim::known(1), d.len() - axis - 1));
    let range = reshape(ctx, &range, shape)?;
    let hot = binary(ctx, BinaryOp::Eq, &idx, &range)?;
    cast(ctx, &hot, dt)
}

/// Softmax-like ops. Opset ≥ 13: along `axis` (default -1). Before: x is coerced to 2-D
/// `[prod(dims[..axis]), prod(dims[axis..])]` (axis default 1), the op runs along axis 1 and the
/// result is reshaped back; when `axis` is the last axis this is the same as a single-axis op.
fn coerced(ctx: &mut Ctx, n: &NodeView, f: AxisFn) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    require_float(ctx, &x, &n.node.op_type)?;
    let d = dims(ctx, &x);
    if n.opset >= 13 {
        let axis = norm_axis(n.int("axis", -1), d.len())?;
        return one(f(ctx, &x, axis)?);
    }
    if d.is_empty() {
        return invalid(format!(
            "{}-{} needs a tensor of rank ≥ 1",
            n.node.op_type, n.opset
        ));
    }
    let axis = norm_axis(n.int("axis", 1), d.len())?;
    if d[axis + 1..].iter().all(|x| x.as_known() == Some(1)) {
        return one(f(ctx, &x, axis)?);
    }
    let flat = vec![product(&d[..axis]), product(&d[axis..])];
    let x2 = reshape(ctx, &x, flat)?;
    let y2 = f(ctx, &x2, 1)?;
    one(reshape(ctx, &y2, d)?)
}

/// `CumSum(x, axis)`. The axis is a scalar input, normally a constant. A rank-1 x has one
/// valid axis; otherwise a run-time axis selects among the cumulative sums along every axis
/// (the output shape does not depend on it).
fn cumsum(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    cumulative(ctx, n, "CumSum", |axis, exclusive, reverse| Op::CumSum {
        axis,
        exclusive,
        reverse,
    })
}

/// `CumProd(x, axis)`, with the same axis handling as [`cumsum`].
fn cumprod(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    cumulative(ctx, n, "CumProd", |axis, exclusive, reverse| Op::CumProd {
        axis,
        exclusive,
        reverse,
    })
}

/// A cumulative op along the axis given by input 1: a constant axis, or a run-time axis
/// choosing (with `where`) among the results along every axis.
fn cumulative(
    ctx: &mut Ctx,
    n: &NodeView,
    name: &str,
    make: fn(i64, bool, bool) -> Op,
) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let (exclusive, reverse) = (flag(n, "exclusive", false), flag(n, "reverse", false));
    let along = |ctx: &mut Ctx, axis: i64| {
        ctx.emit1(make(axis, exclusive, reverse), std::slice::from_ref(&x))
    };
    let r = dims(ctx, &x).len() as i64;
    let a = n.input(1)?;
    if let Some(v) = ctx.const_i64s(a) {
        let [axis] = v[..] else {
            return invalid(format!("{name}: axis must hold one value, got {v:?}"));
        };
        return one(along(ctx, axis)?);
    }
    if r <= 1 {
        return one(along(ctx, 0)?);
    }
    let a = as_scalar(ctx, a, &format!("{name} axis"))?;
    let a = cast(ctx, &a, DType::I64)?;
    let negative = binary_scalar(ctx, BinaryOp::Lt, &a, 0.0)?;
    let wrapped = binary_scalar(ctx, BinaryOp::Add, &a, r as f64)?;
    let a = select(ctx, &negative, &wrapped, &a)?;
    let mut y = along(ctx, r - 1)?;
    for axis in (0..r - 1).rev() {
        let c = along(ctx, axis)?;
        let is = binary_scalar(ctx, BinaryOp::Eq, &a, axis as f64)?;
        y = select(ctx, &is, &c, &y)?;
    }
    one(y)
}
