//! ONNX importers for data-dependent selection ops: ReverseSequence (a GatherElements with
//! computed indices), Compress and NonZero (only with conditions known at import time), TopK
//! (with k known at import time), ScatterElements / Scatter / ScatterND, and a precise
//! refusal for Unique (its output shape depends on the data).

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_shape::{cast, dims_of, int_scalar, norm_axis, op1, product, reshape};
use super::Registry;
use kiln_compiler::interp::util::unravel;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op, ScatterReduction};
use kiln_runtime::Tensor;

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("ReverseSequence", reverse_sequence);
    r.add("Compress", compress);
    r.add("NonZero", non_zero);
    r.add("TopK", topk);
    r.add("Unique", |_, _| {
        unsupported("Unique's output shape depends on tensor data")
    });
    r.add("ScatterND", scatter_nd);
    r.add("ScatterElements", scatter_elements);
    r.add("Scatter", scatter_elements);
}

/// TopK: k is the attribute (opset < 10) or a constant input; `sorted = 0` still sorts.
fn topk(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let k = if n.opset < 10 {
        n.req_int("k")?
    } else {
        let Some(v) = ctx.const_i64s(n.input(1)?) else {
            return unsupported(
                "TopK with a k computed at run time (the output shape depends on it)",
            );
        };
        let [k] = v[..] else {
            return invalid(format!("TopK: k must hold one value, got {v:?}"));
        };
        k
    };
    let rank = dims_of(ctx, &x).len();
    let op = Op::TopK {
        k,
        axis: norm_axis(n.int("axis", -1), rank)? as i64,
        largest: n.int("largest", 1) != 0,
        sorted: n.int("sorted", 1) != 0,
    };
    ctx.emit(op, &[x])
}

/// The `reduction` attribute of the scatters (default `none`).
fn reduction(n: &NodeView) -> NResult<ScatterReduction> {
    let r = n.string("reduction", "none");
    match ScatterReduction::from_name(&r) {
        Some(v) => Ok(v),
        None => invalid(format!(
            "{}: unknown reduction `{r}` (expected none, add, mul, max or min)",
            n.node.op_type
        )),
    }
}

fn scatter_elements(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (data, idx, upd) = (n.input(0)?, n.input(1)?, n.input(2)?);
    let rank = dims_of(ctx, data).len();
    let op = Op::ScatterElements {
        axis: norm_axis(n.int("axis", 0), rank)? as i64,
        reduction: reduction(n)?,
    };
    Ok(vec![op1(ctx, op, &[data, idx, upd])?])
}

fn scatter_nd(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (data, idx, upd) = (n.input(0)?, n.input(1)?, n.input(2)?);
    let idx = cast(ctx, idx, DType::I64)?;
    let op = Op::ScatterND {
        reduction: reduction(n)?,
    };
    Ok(vec![op1(ctx, op, &[data, &idx, upd])?])
}

fn bin(ctx: &mut Ctx, op: BinaryOp, a: &Operand, b: &Operand) -> NResult<Operand> {
    op1(ctx, Op::Binary(op), &[a, b])
}

/// ReverseSequence: along the time axis, position `t` of batch entry `i` reads
/// `t < len[i] ? len[i] - 1 - t : t`, gathered with GatherElements.
fn reverse_sequence(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (x, lens) = (n.input(0)?, n.input(1)?);
    let dims = dims_of(ctx, x);
    let rank = dims.len();
    let t_ax = norm_axis(n.int("time_axis", 0), rank)?;
    let b_ax = norm_axis(n.int("batch_axis", 1), rank)?;
    if t_ax == b_ax || rank < 2 {
        return invalid(format!(
            "time_axis {t_ax} and batch_axis {b_ax} must differ in a rank ≥ 2 tensor"
        ));
    }
    let along = |ax: usize| -> Vec<Dim> {
        (0..rank)
            .map(|i| {
                if i == ax {
                    dims[ax].clone()
                } else {
                    Dim::known(1)
                }
            })
            .collect()
    };
    let limit = dims[t_ax].clone();
    let range = Op::Range {
        start: Dim::known(0),
        limit,
        delta: Dim::known(1),
        dtype: DType::I64,
    };
    let t = ctx.emit1(range, &[])?;
    let t = reshape(ctx, &t, along(t_ax))?;
    let len = cast(ctx, lens, DType::I64)?;
    let len = reshape(ctx, &len, along(b_ax))?;
    let one = int_scalar(ctx, 1)?;
    let last = bin(ctx, BinaryOp::Sub, &len, &one)?;
    let reversed = bin(ctx, BinaryOp::Sub, &last, &t)?;
    let inside = bin(ctx, BinaryOp::Lt, &t, &len)?;
    let idx = op1(ctx, Op::Where, &[&inside, &reversed, &t])?;
    let idx = op1(ctx, Op::Expand { shape: dims }, &[&idx])?;
    let op = Op::GatherElements { axis: t_ax as i64 };
    Ok(vec![op1(ctx, op, &[x, &idx])?])
}

fn compress(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (x, cond) = (n.input(0)?, n.input(1)?);
    let Some(c) = ctx.const_tensor(cond) else {
        return unsupported(
            "Compress with a condition computed from tensor data (the output shape depends on it)",
        );
    };
    if c.rank() != 1 {
        return invalid(format!(
            "the condition must be 1-D, got shape {:?}",
            c.shape()
        ));
    }
    let dims = dims_of(ctx, x);
    let (data, axis) = match n.attr("axis") {
        Some(a) => (x.clone(), norm_axis(a.i, dims.len())?),
        None => (reshape(ctx, x, vec![product(&dims)])?, 0),
    };
    let axis_dim = dims_of(ctx, &data)[axis].clone();
    if let Some(d) = axis_dim.as_known() {
        if c.len() as i64 > d {
            return invalid(format!(
                "the condition has {} entries for an axis of size {d}",
                c.len()
            ));
        }
    }
    let keep: Vec<i64> = c
        .to_bool_vec()
        .iter()
        .enumerate()
        .filter(|(_, &b)| b)
        .map(|(i, _)| i as i64)
        .collect();
    let idx = ctx.constant(Tensor::from_i64(vec![keep.len()], keep)?);
    Ok(vec![op1(
        ctx,
        Op::Gather { axis: axis as i64 },
        &[&data, &idx],
    )?])
}

fn non_zero(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let Some(t) = ctx.const_tensor(n.input(0)?) else {
        return unsupported("NonZero's output shape depends on tensor data");
    };
    if t.rank() == 0 {
        return unsupported("NonZero of a rank-0 tensor");
    }
    let hits: Vec<usize> = if t.dtype() == DType::Bool {
        t.to_bool_vec()
            .iter()
            .enumerate()
            .filter(|(_, &b)| b)
            .map(|(i, _)| i)
            .collect()
    } else {
        t.to_f64_vec()
            .iter()
            .enumerate()
            .filter(|(_, &v)| v != 0.0)
            .map(|(i, _)| i)
            .collect()
    };
    let rank = t.rank();
    let mut out = vec![0i64; rank * hits.len()];
    for (j, &l) in hits.iter().enumerate() {
        for (a, &c) in unravel(l, t.shape()).iter().enumerate() {
            out[a * hits.len() + j] = c as i64;
        }
    }
    Ok(vec![
        ctx.constant(Tensor::from_i64(vec![rank, hits.len()], out)?)
    ])
}
