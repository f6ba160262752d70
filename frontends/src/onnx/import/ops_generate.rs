//! ONNX importers for ops that generate tensors from sizes: ConstantOfShape, Range, EyeLike and
//! OneHot. Sizes may be symbolic (`ConstantOfShape(Shape(x))`, `Range(0, seq, 1)`); generated
//! values are folded into constants whenever everything is known at import time.

use super::ctx::{invalid, unsupported, Ctx, NResult, NodeError, Operand};
use super::node::NodeView;
use super::ops_shape::{
    cast, dims_of, dims_tensor, int_scalar, known_dims, norm_axis, op1, reshape,
};
use super::Registry;
use crate::onnx::tensor::onnx_dtype;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op};
use kiln_runtime::Tensor;

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("ConstantOfShape", constant_of_shape);
    r.add("Range", range);
    r.add("EyeLike", eye_like);
    r.add("OneHot", one_hot);
}

/// Largest generated float range (elements).
const MAX_RANGE: f64 = (1u64 << 31) as f64;

fn constant_of_shape(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let value = match n.tensor("value") {
        Some(t) => ctx.decode_tensor(t)?,
        None => Tensor::scalar_f32(0.0),
    };
    if value.len() != 1 {
        return invalid(format!(
            "value must hold one element, got shape {:?}",
            value.shape()
        ));
    }
    let value = value.reshaped(vec![])?;
    let dims = known_dims(ctx, n.input(0)?, "ConstantOfShape shape")?;
    if let Some(d) = dims.iter().find(|d| d.as_known().is_some_and(|v| v < 0)) {
        return invalid(format!("shape entry {d} is negative"));
    }
    let v = ctx.constant(value);
    Ok(vec![op1(ctx, Op::Expand { shape: dims }, &[&v])?])
}

/// One scalar input of Range as a dim.
fn range_dim(ctx: &mut Ctx, o: &Operand, what: &str) -> NResult<Dim> {
    match known_dims(ctx, o, what)?.as_slice() {
        [d] => Ok(d.clone()),
        v => invalid(format!("{what} must be a scalar, got {} values", v.len())),
    }
}

fn range(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (s, l, d) = (n.input(0)?, n.input(1)?, n.input(2)?);
    let dtype = ctx.ty(s).dtype;
    if dtype.is_int() {
        let start = range_dim(ctx, s, "Range start")?;
        let limit = range_dim(ctx, l, "Range limit")?;
        let delta = range_dim(ctx, d, "Range delta")?;
        match delta.as_known() {
            Some(0) => return invalid("Range delta is 0"),
            Some(_) => {}
            None => return unsupported(format!("Range with a symbolic delta `{delta}`")),
        }
        return Ok(vec![ctx.emit1(
            Op::Range {
                start,
                limit,
                delta,
                dtype,
            },
            &[],
        )?]);
    }
    if !dtype.is_float() {
        return invalid(format!("Range of {dtype} values"));
    }
    let mut vals = [0.0; 3];
    for (slot, o) in vals.iter_mut().zip([s, l, d]) {
        let Some(t) = ctx.const_tensor(o) else {
            return unsupported(
                "a floating-point Range whose bounds are computed from tensor data",
            );
        };
        match t.to_f64_vec().as_slice() {
            [v] => *slot = *v,
            v => {
                return invalid(format!(
                    "Range inputs must be scalars, got {} values",
                    v.len()
                ))
            }
        }
    }
    let [start, limit, delta] = vals;
    if delta == 0.0 || !delta.is_finite() || !start.is_finite() || !limit.is_finite() {
        return invalid(format!(
            "Range({start}, {limit}, {delta}) is not a finite range"
        ));
    }
    let count = ((limit - start) / delta).ceil().max(0.0);
    if count > MAX_RANGE {
        return unsupported(format!("a Range of {count} elements"));
    }
    let values: Vec<f64> = (0..count as usize)
        .map(|i| start + i as f64 * delta)
        .collect();
    let t = Tensor::from_f64_values(dtype, vec![values.len()], &values)?;
    Ok(vec![ctx.constant(t)])
}

/// `Range(0, d, 1)` as i64, reshaped to rank `rank` with `d` at axis `at`.
pub(super) fn iota(ctx: &mut Ctx, d: &Dim, rank: usize, at: usize) -> NResult<Operand> {
    let (start, delta) = (Dim::known(0), Dim::known(1));
    let r = ctx.emit1(
        Op::Range {
            start,
            limit: d.clone(),
            delta,
            dtype: DType::I64,
        },
        &[],
    )?;
    let shape = (0..rank)
        .map(|i| if i == at { d.clone() } else { Dim::known(1) })
        .collect();
    reshape(ctx, &r, shape)
}

fn eye_like(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?;
    let [rows, cols] = <[Dim; 2]>::try_from(dims_of(ctx, x)).or_else(|d| {
        invalid(format!(
            "EyeLike needs a rank-2 input, got rank {}",
            d.len()
        ))
    })?;
    let dtype = match n.attr("dtype") {
        Some(a) => onnx_dtype(a.i as i32).map_err(NodeError::Unsupported)?,
        None => ctx.ty(x).dtype,
    };
    let k = int_scalar(ctx, n.int("k", 0))?;
    let i = iota(ctx, &rows, 2, 0)?;
    let j = iota(ctx, &cols, 2, 1)?;
    let diff = op1(ctx, Op::Binary(BinaryOp::Sub), &[&j, &i])?;
    let on = op1(ctx, Op::Binary(BinaryOp::Eq), &[&diff, &k])?;
    Ok(vec![op1(ctx, Op::Cast { to: dtype }, &[&on])?])
}

fn one_hot(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (indices, depth, values) = (n.input(0)?, n.input(1)?, n.input(2)?);
    let rank = ctx.ty(indices).rank() + 1;
    let ax = norm_axis(n.int("axis", -1), rank)?;
    let depth = if ctx.ty(depth).dtype.is_int() {
        range_dim(ctx, depth, "OneHot depth")?
    } else {
        match ctx.const_tensor(depth).map(|t| t.to_f64_vec()).as_deref() {
            Some([v]) if v.fract() == 0.0 => Dim::known(*v as i64),
            Some(_) => return invalid("OneHot depth must be one whole number"),
            None => return unsupported("OneHot with a depth computed from tensor data"),
        }
    };
    if depth.as_known().is_some_and(|d| d < 1) {
        return invalid(format!("OneHot depth {depth} must be positive"));
    }
    if ctx.ty(values).shape.numel().as_known() != Some(2) {
        return invalid(format!(
            "OneHot values must hold [off, on], got {}",
            ctx.ty(values)
        ));
    }
    // Compared in the indices' own dtype, like the ONNX reference (float 1.5 matches nothing).
    let dt = ctx.ty(indices).dtype;
    let mut idx = indices.clone();
    if n.opset >= 11 {
        // Negative indices count from the end: idx < 0 ? idx + depth : idx.
        let zero = ctx.scalar(0.0, dt)?;
        let d = dims_tensor(ctx, vec![depth.clone()], vec![])?;
        let d = cast(ctx, &d, dt)?;
        let neg = op1(ctx, Op::Binary(BinaryOp::Lt), &[&idx, &zero])?;
        let wrapped = op1(ctx, Op::Binary(BinaryOp::Add), &[&idx, &d])?;
        idx = op1(ctx, Op::Where, &[&neg, &wrapped, &idx])?;
    }
    let mut shape = dims_of(ctx, &idx);
    shape.insert(ax, Dim::known(1));
    let idx = reshape(ctx, &idx, shape)?;
    let positions = iota(ctx, &depth, rank, ax)?;
    let positions = cast(ctx, &positions, dt)?;
    let hot = op1(ctx, Op::Binary(BinaryOp::Eq), &[&idx, &positions])?;
    let flat = reshape(ctx, values, vec![Dim::known(2)])?;
    let (i0, i1) = (int_scalar(ctx, 0)?, int_scalar(ctx, 1)?);
    let off = op1(ctx, Op::Gather { axis: 0 }, &[&flat, &i0])?;
    let on = op1(ctx, Op::Gather { axis: 0 }, &[&flat, &i1])?;
    Ok(vec![op1(ctx, Op::Where, &[&hot, &on, &off])?])
}
