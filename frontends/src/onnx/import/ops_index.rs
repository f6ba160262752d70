//! ONNX importers for indexing ops: Slice, Gather, GatherElements, GatherND (decomposed into a
//! linear-index Gather) and Pad. Slice bounds may be symbolic; ONNX clamping is the IR's.

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_shape::{
    cast, dims_of, dims_tensor, int_scalar, known_dims, known_ints, norm_axis, op1, product,
    reshape,
};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op, PadMode, ReduceOp};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("Slice", slice);
    r.add("Gather", gather);
    r.add("GatherElements", gather_elements);
    r.add("GatherND", gather_nd);
    r.add("Pad", pad);
}

/// Known bounds at or beyond ±(2^31 - 1) mean "to the end": on a symbolic axis they become
/// `i64::MAX` / `i64::MIN`, which the IR's type inference treats as such.
fn sentinel(d: Dim) -> Dim {
    match d.as_known() {
        Some(v) if v >= i64::from(i32::MAX) => Dim::known(i64::MAX),
        Some(v) if v <= i64::from(i32::MIN) => Dim::known(i64::MIN),
        _ => d,
    }
}

fn slice(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?;
    let (mut starts, mut ends, axes, steps) = if n.opset < 10 {
        let attr = |name: &str| -> NResult<Vec<Dim>> {
            Ok(n.ints(name)
                .ok_or_else(|| n.missing(name))?
                .into_iter()
                .map(Dim::known)
                .collect())
        };
        (attr("starts")?, attr("ends")?, n.ints("axes"), None)
    } else {
        let starts = known_dims(ctx, n.input(1)?, "Slice starts")?;
        let ends = known_dims(ctx, n.input(2)?, "Slice ends")?;
        let axes = match n.opt_input(3) {
            Some(a) => Some(known_ints(ctx, a, "Slice axes")?),
            None => None,
        };
        let steps = match n.opt_input(4) {
            Some(s) => Some(known_ints(ctx, s, "Slice steps")?),
            None => None,
        };
        (starts, ends, axes, steps)
    };
    let count = starts.len();
    let axes = axes.unwrap_or_else(|| (0..count as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; count]);
    if ends.len() != count || axes.len() != count || steps.len() != count {
        return invalid(format!(
            "Slice has {count} starts, {} ends, {} axes and {} steps; they must agree",
            ends.len(),
            axes.len(),
            steps.len()
        ));
    }
    let dims = dims_of(ctx, x);
    for (k, &a) in axes.iter().enumerate() {
        if dims[norm_axis(a, dims.len())?].as_known().is_none() {
            starts[k] = sentinel(starts[k].clone());
            ends[k] = sentinel(ends[k].clone());
        }
    }
    Ok(vec![op1(
        ctx,
        Op::Slice {
            axes,
            starts,
            ends,
            steps,
        },
        &[x],
    )?])
}

/// `Gather`; constant indices outside a known axis are refused here, since the compiled model
/// could only fail on them.
fn gather(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let axis = n.int("axis", 0);
    let (data, indices) = (n.input(0)?, n.input(1)?);
    let dims = dims_of(ctx, data);
    let size = norm_axis(axis, dims.len())
        .ok()
        .and_then(|a| dims[a].as_known());
    if let (Some(size), Some(ids)) = (size, ctx.const_i64s(indices)) {
        if let Some(bad) = ids.iter().find(|&&i| i < -size || i >= size) {
            return invalid(format!(
                "constant index {bad} is out of range for axis {axis} of size {size} \
                 (valid: {} to {})",
                -size,
                size - 1
            ));
        }
    }
    Ok(vec![op1(ctx, Op::Gather { axis }, &[data, indices])?])
}

fn gather_elements(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let op = Op::GatherElements {
        axis: n.int("axis", 0),
    };
    Ok(vec![op1(ctx, op, &[n.input(0)?, n.input(1)?])?])
}

/// `a <op> b`.
fn bin(ctx: &mut Ctx, op: BinaryOp, a: &Operand, b: &Operand) -> NResult<Operand> {
    op1(ctx, Op::Binary(op), &[a, b])
}

/// GatherND as one Gather on data with its batch and indexed dims flattened: the linear index
/// is `Σ idx[i]·stride[i]` (negative entries wrapped) plus the batch offset.
fn gather_nd(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (data, indices) = (n.input(0)?, n.input(1)?);
    let b = if n.opset >= 12 {
        n.int("batch_dims", 0)
    } else {
        0
    };
    let (dd, id) = (dims_of(ctx, data), dims_of(ctx, indices));
    let (q, r) = (id.len(), dd.len());
    let b = match usize::try_from(b) {
        Ok(b) if b < q.min(r) => b,
        _ => {
            return invalid(format!(
                "batch_dims {b} must be below the ranks {r} (data) and {q} (indices)"
            ))
        }
    };
    let Some(k) = id[q - 1].as_known() else {
        return unsupported(format!(
            "GatherND with a symbolic index depth `{}`",
            id[q - 1]
        ));
    };
    let k = k as usize;
    if b + k > r {
        return invalid(format!(
            "index depth {k} with {b} batch dims exceeds the data rank {r}"
        ));
    }
    for (i, (x, y)) in dd[..b].iter().zip(&id[..b]).enumerate() {
        if x != y {
            if x.as_known().is_some() && y.as_known().is_some() {
                return invalid(format!("batch dim {i} differs: data {x}, indices {y}"));
            }
            return unsupported(format!(
                "GatherND batch dim {i}: cannot prove `{x}` equals `{y}`"
            ));
        }
    }
    let (picked, rest) = (&dd[b..b + k], &dd[b + k..]);
    let (batch, inner, mid) = (product(&dd[..b]), product(picked), product(&id[b..q - 1]));
    let idx = cast(ctx, indices, DType::I64)?;
    let zero = int_scalar(ctx, 0)?;
    let sizes = dims_tensor(ctx, picked.to_vec(), vec![k])?;
    let neg = bin(ctx, BinaryOp::Lt, &idx, &zero)?;
    let wrapped = bin(ctx, BinaryOp::Add, &idx, &sizes)?;
    let idx = op1(ctx, Op::Where, &[&neg, &wrapped, &idx])?;
    let strides = (0..k).map(|i| product(&picked[i + 1..])).collect();
    let strides = dims_tensor(ctx, strides, vec![k])?;
    let terms = bin(ctx, BinaryOp::Mul, &idx, &strides)?;
    let sum = Op::Reduce {
        op: ReduceOp::Sum,
        axes: vec![-1],
        keepdims: false,
    };
    let lin = op1(ctx, sum, &[&terms])?;
    let mut lin = reshape(ctx, &lin, vec![batch.clone(), mid.clone()])?;
    if b > 0 {
        let rows = ctx.emit1(
            Op::Range {
                start: Dim::known(0),
                limit: batch.clone(),
                delta: Dim::known(1),
                dtype: DType::I64,
            },
            &[],
        )?;
        let rows = reshape(ctx, &rows, vec![batch.clone(), Dim::known(1)])?;
        let inner_t = dims_tensor(ctx, vec![inner.clone()], vec![])?;
        let offset = bin(ctx, BinaryOp::Mul, &rows, &inner_t)?;
        lin = bin(ctx, BinaryOp::Add, &lin, &offset)?;
    }
    let lin = reshape(ctx, &lin, vec![batch.mul(&mid)])?;
    let flat_dims = std::iter::once(batch.mul(&inner))
        .chain(rest.iter().cloned())
        .collect();
    let flat = reshape(ctx, data, flat_dims)?;
    let picked_rows = op1(ctx, Op::Gather { axis: 0 }, &[&flat, &lin])?;
    let out = id[..q - 1].iter().chain(rest).cloned().collect();
    Ok(vec![reshape(ctx, &picked_rows, out)?])
}

fn pad_mode(n: &NodeView) -> NResult<PadMode> {
    match n.string("mode", "constant").as_str() {
        "constant" => Ok(PadMode::Constant),
        "reflect" => Ok(PadMode::Reflect),
        "edge" => Ok(PadMode::Edge),
        "wrap" => Ok(PadMode::Wrap),
        m => invalid(format!("unknown Pad mode `{m}`")),
    }
}

fn pad(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?;
    let rank = ctx.ty(x).rank();
    let mode = pad_mode(n)?;
    let (pads, value) = if n.opset < 11 {
        let name = if n.opset < 2 { "paddings" } else { "pads" };
        (
            n.ints(name).ok_or_else(|| n.missing(name))?,
            f64::from(n.float("value", 0.0)),
        )
    } else {
        let mut pads = known_ints(ctx, n.input(1)?, "Pad pads")?;
        let value = match n.opt_input(2) {
            Some(v) => match ctx.const_tensor(v) {
                Some(t) => t.to_f64_vec().first().copied().unwrap_or(0.0),
                None => return unsupported("Pad with a constant_value computed from tensor data"),
            },
            None => 0.0,
        };
        let axes = match n.opt_input(3) {
            Some(a) if n.opset >= 18 => Some(known_ints(ctx, a, "Pad axes")?),
            _ => None,
        };
        if let Some(axes) = axes {
            if pads.len() != 2 * axes.len() {
                return invalid(format!("{} pads for {} axes", pads.len(), axes.len()));
            }
            let mut full = vec![0; 2 * rank];
            for (i, &a) in axes.iter().enumerate() {
                let ax = norm_axis(a, rank)?;
                full[ax] = pads[i];
                full[rank + ax] = pads[axes.len() + i];
            }
            pads = full;
        }
        (pads, value)
    };
    if pads.len() != 2 * rank {
        return invalid(format!("{} pads for a tensor of rank {rank}", pads.len()));
    }
    Ok(vec![op1(ctx, Op::Pad { pads, mode, value }, &[x])?])
}
