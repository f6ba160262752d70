//! ONNX importers for convolutions and pooling (`Conv`, `ConvTranspose`, `MaxPool`,
//! `AveragePool`, `LpPool`, the global pools), plus the small emit helpers that the
//! normalisation and attention importers share.

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op, PoolKind, ReduceOp, UnaryOp};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("Conv", conv);
    r.add("ConvTranspose", conv_transpose);
    r.add("MaxPool", |c, n| pool(c, n, PoolKind::Max));
    r.add("AveragePool", |c, n| pool(c, n, PoolKind::Avg));
    r.add("LpPool", lp_pool);
    r.add("GlobalAveragePool", |c, n| {
        global_pool(c, n, ReduceOp::Mean)
    });
    r.add("GlobalMaxPool", |c, n| global_pool(c, n, ReduceOp::Max));
    r.add("GlobalLpPool", global_lp_pool);
}

/// `op(a, b)` for a binary op.
pub(super) fn bin(ctx: &mut Ctx, op: BinaryOp, a: &Operand, b: &Operand) -> NResult<Operand> {
    ctx.emit1(Op::Binary(op), &[a.clone(), b.clone()])
}

/// `op(a, v)` with `v` a scalar of a's dtype.
pub(super) fn bin_c(ctx: &mut Ctx, op: BinaryOp, a: &Operand, v: f64) -> NResult<Operand> {
    let c = scalar_like(ctx, v, a)?;
    bin(ctx, op, a, &c)
}

/// `op(a)` for a unary op.
pub(super) fn un(ctx: &mut Ctx, op: UnaryOp, a: &Operand) -> NResult<Operand> {
    ctx.emit1(Op::Unary(op), std::slice::from_ref(a))
}

/// A rank-0 constant with the dtype of `like`.
pub(super) fn scalar_like(ctx: &mut Ctx, v: f64, like: &Operand) -> NResult<Operand> {
    let dt = ctx.ty(like).dtype;
    ctx.scalar(v, dt)
}

/// `x` viewed with `shape`.
pub(super) fn reshape(ctx: &mut Ctx, x: &Operand, shape: Vec<Dim>) -> NResult<Operand> {
    ctx.emit1(Op::Reshape { shape }, std::slice::from_ref(x))
}

/// A reduction over `axes` (never empty: an empty list would mean every axis).
pub(super) fn reduce(ctx: &mut Ctx, op: ReduceOp, x: &Operand, axes: Vec<i64>) -> NResult<Operand> {
    ctx.emit1(
        Op::Reduce {
            op,
            axes,
            keepdims: true,
        },
        std::slice::from_ref(x),
    )
}

/// `axis` normalised against `rank`.
pub(super) fn norm_axis(axis: i64, rank: usize) -> NResult<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        invalid(format!("axis {axis} is out of range for rank {rank}"))
    }
}

/// Input `i`, which must be a float tensor.
pub(super) fn float_input(ctx: &Ctx, n: &NodeView, i: usize) -> NResult<Operand> {
    let x = n.input(i)?.clone();
    let dt = ctx.ty(&x).dtype;
    if !dt.is_float() {
        return unsupported(format!(
            "{} input {i} has dtype {dt}; only float tensors are supported",
            n.node.op_type
        ));
    }
    Ok(x)
}

/// An integer-list attribute of `k` entries, or `k` copies of `default`.
fn per_dim(n: &NodeView, name: &str, k: usize, default: i64) -> NResult<Vec<i64>> {
    match n.ints(name) {
        Some(v) if v.len() == k => Ok(v),
        Some(v) => invalid(format!("`{name}` has {} entries, expected {k}", v.len())),
        None => Ok(vec![default; k]),
    }
}

/// The x input of a windowed op and its spatial dims.
fn spatial(ctx: &Ctx, n: &NodeView) -> NResult<(Operand, Vec<Dim>)> {
    let x = n.input(0)?.clone();
    let t = ctx.ty(&x);
    if t.rank() < 3 {
        return invalid(format!(
            "input 0 has shape {}, expected [N, C, D1, ...]",
            t.shape
        ));
    }
    Ok((x, t.shape.0[2..].to_vec()))
}

/// Begin-then-end pads from `pads` / `auto_pad`. SAME_* pads make the output `ceil(D / s)`
/// long and need known input sizes.
fn window_pads(
    n: &NodeView,
    dims: &[Dim],
    kernel: &[i64],
    strides: &[i64],
    dil: &[i64],
) -> NResult<Vec<i64>> {
    let k = dims.len();
    if let Some(v) = strides.iter().chain(dil).find(|&&v| v <= 0) {
        return invalid(format!("strides and dilations must be positive, got {v}"));
    }
    let auto = n.string("auto_pad", "NOTSET");
    match auto.as_str() {
        "NOTSET" | "" => per_dim(n, "pads", 2 * k, 0),
        "VALID" => Ok(vec![0; 2 * k]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut pads = vec![0; 2 * k];
            for i in 0..k {
                let Some(d) = dims[i].as_known() else {
                    return unsupported(format!(
                        "auto_pad {auto} needs known spatial dims, dim {i} is {}",
                        dims[i]
                    ));
                };
                let out = (d + strides[i] - 1) / strides[i];
                let total = ((out - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - d).max(0);
                let (small, big) = (total / 2, total - total / 2);
                (pads[i], pads[i + k]) = if auto == "SAME_UPPER" {
                    (small, big)
                } else {
                    (big, small)
                };
            }
            Ok(pads)
        }
        other => invalid(format!("unknown auto_pad `{other}`")),
    }
}

/// The kernel sizes of weights `w` (dims 2..), checked against `kernel_shape`.
fn kernel_of(ctx: &Ctx, n: &NodeView, w: &Operand, k: usize) -> NResult<Vec<Dim>> {
    let wt = ctx.ty(w);
    if wt.rank() != k + 2 {
        return invalid(format!(
            "weights have shape {}, expected rank {}",
            wt.shape,
            k + 2
        ));
    }
    let kernel = wt.shape.0[2..].to_vec();
    if let Some(ks) = n.ints("kernel_shape") {
        let agrees = ks.len() == k
            && ks
                .iter()
                .zip(&kernel)
                .all(|(&a, d)| d.as_known().is_none_or(|b| a == b));
        if !agrees {
            return invalid(format!(
                "kernel_shape {ks:?} disagrees with the weights {}",
                wt.shape
            ));
        }
    }
    Ok(kernel)
}

fn known(kernel: &[Dim], what: &str) -> NResult<Vec<i64>> {
    kernel
        .iter()
        .map(|d| d.as_known().ok_or(()))
        .collect::<Result<_, _>>()
        .or_else(|_| {
            unsupported(format!(
                "{what} needs a known kernel size, the weights have {kernel:?}"
            ))
        })
}

fn conv_inputs(n: &NodeView, x: Operand, w: Operand) -> Vec<Operand> {
    let mut ins = vec![x, w];
    ins.extend(n.opt_input(2).cloned());
    ins
}

fn conv(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (x, dims) = spatial(ctx, n)?;
    let k = dims.len();
    let w = n.input(1)?.clone();
    let kernel = kernel_of(ctx, n, &w, k)?;
    let strides = per_dim(n, "strides", k, 1)?;
    let dilations = per_dim(n, "dilations", k, 1)?;
    let pads = match n.string("auto_pad", "NOTSET").as_str() {
        "SAME_UPPER" | "SAME_LOWER" => window_pads(
            n,
            &dims,
            &known(&kernel, "auto_pad SAME")?,
            &strides,
            &dilations,
        )?,
        _ => window_pads(n, &dims, &vec![1; k], &strides, &dilations)?,
    };
    let op = Op::Conv {
        strides,
        pads,
        dilations,
        group: n.int("group", 1),
    };
    Ok(vec![ctx.emit1(op, &conv_inputs(n, x, w))?])
}

fn conv_transpose(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (x, dims) = spatial(ctx, n)?;
    let k = dims.len();
    let w = n.input(1)?.clone();
    let kernel = kernel_of(ctx, n, &w, k)?;
    let strides = per_dim(n, "strides", k, 1)?;
    let dilations = per_dim(n, "dilations", k, 1)?;
    let mut out_pad = per_dim(n, "output_padding", k, 0)?;
    let auto = n.string("auto_pad", "NOTSET");
    let same = matches!(auto.as_str(), "SAME_UPPER" | "SAME_LOWER");
    let mut pads = if same || auto == "VALID" {
        vec![0; 2 * k]
    } else {
        window_pads(n, &dims, &vec![1; k], &strides, &dilations)?
    };
    let output_shape = match n.ints("output_shape") {
        Some(v) if v.len() == k => Some(v),
        Some(v) if v.len() == k + 2 => Some(v[2..].to_vec()),
        Some(v) => {
            return invalid(format!(
                "output_shape {v:?} does not match {k} spatial dims"
            ))
        }
        None => None,
    };
    if same || output_shape.is_some() {
        let kv = known(&kernel, "ConvTranspose with output_shape or auto_pad SAME")?;
        for i in 0..k {
            let Some(d) = dims[i].as_known() else {
                return unsupported(format!(
                    "output_shape / auto_pad SAME need known spatial dims, dim {i} is {}",
                    dims[i]
                ));
            };
            let out = output_shape.as_ref().map_or(d * strides[i], |o| o[i]);
            let natural = strides[i] * (d - 1) + out_pad[i] + (kv[i] - 1) * dilations[i] + 1;
            if same {
                let total = natural - out;
                let (small, big) = (total.div_euclid(2), total - total.div_euclid(2));
                (pads[i], pads[i + k]) = if auto == "SAME_UPPER" {
                    (small, big)
                } else {
                    (big, small)
                };
            } else {
                // The reference keeps the explicit pads and grows or crops the end.
                pads[i + k] += natural - pads[i] - pads[i + k] - out;
            }
            if pads[i + k] < 0 {
                out_pad[i] -= pads[i + k];
                pads[i + k] = 0;
            }
            if pads[i] < 0 {
                return unsupported(format!(
                    "output_shape {out} of spatial dim {i} needs a negative begin pad"
                ));
            }
            if out_pad[i] >= strides[i] && out_pad[i] >= dilations[i] {
                return unsupported(format!(
                    "output size {out} of spatial dim {i} needs output_padding {}, not below the stride or dilation",
                    out_pad[i]
                ));
            }
        }
    }
    let op = Op::ConvTranspose {
        strides,
        pads,
        dilations,
        group: n.int("group", 1),
        output_padding: out_pad,
    };
    Ok(vec![ctx.emit1(op, &conv_inputs(n, x, w))?])
}

/// The `Pool` op of a MaxPool / AveragePool / LpPool node.
fn pool_op(n: &NodeView, dims: &[Dim], kind: PoolKind, count_include_pad: bool) -> NResult<Op> {
    let k = dims.len();
    let kernel = n
        .ints("kernel_shape")
        .ok_or_else(|| n.missing("kernel_shape"))?;
    if kernel.len() != k {
        return invalid(format!(
            "kernel_shape {kernel:?} does not match {k} spatial dims"
        ));
    }
    let strides = per_dim(n, "strides", k, 1)?;
    let dilations = per_dim(n, "dilations", k, 1)?;
    let pads = window_pads(n, dims, &kernel, &strides, &dilations)?;
    let ceil_mode = n.int("ceil_mode", 0) != 0;
    Ok(Op::Pool {
        kind,
        kernel,
        strides,
        pads,
        dilations,
        ceil_mode,
        count_include_pad,
    })
}

fn pool(ctx: &mut Ctx, n: &NodeView, kind: PoolKind) -> NResult<Vec<Operand>> {
    if n.node.output.get(1).is_some_and(|s| !s.is_empty()) {
        return unsupported("MaxPool's Indices output is not supported");
    }
    let (x, dims) = spatial(ctx, n)?;
    let include = kind == PoolKind::Avg && n.int("count_include_pad", 0) != 0;
    let op = pool_op(n, &dims, kind, include)?;
    Ok(vec![ctx.emit1(op, &[x])?])
}

/// `(sum over the window of |x|^p)^(1/p)`: an average pool that counts the (zero) padding,
/// times the window size.
fn lp_pool(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (_, dims) = spatial(ctx, n)?;
    let x = float_input(ctx, n, 0)?;
    if n.int("ceil_mode", 0) != 0 {
        return unsupported("LpPool with ceil_mode=1 (partial windows) is not supported");
    }
    let op = pool_op(n, &dims, PoolKind::Avg, true)?;
    let Op::Pool { kernel, .. } = &op else {
        return invalid("not a pool");
    };
    let taps: i64 = kernel.iter().product();
    let p = lp_order(n)?;
    let powed = pow_abs(ctx, &x, p)?;
    let avg = ctx.emit1(op, &[powed])?;
    let sum = bin_c(ctx, BinaryOp::Mul, &avg, taps as f64)?;
    let inv = scalar_like(ctx, 1.0 / p, &x)?;
    Ok(vec![bin(ctx, BinaryOp::Pow, &sum, &inv)?])
}

/// The `p` attribute of the Lp pools (positive, default 2).
fn lp_order(n: &NodeView) -> NResult<f64> {
    match n.int("p", 2) {
        p if p > 0 => Ok(p as f64),
        p => invalid(format!("p must be positive, got {p}")),
    }
}

/// `|x|^p` (`x·x` for p = 2).
fn pow_abs(ctx: &mut Ctx, x: &Operand, p: f64) -> NResult<Operand> {
    if p == 2.0 {
        return bin(ctx, BinaryOp::Mul, x, x);
    }
    let a = un(ctx, UnaryOp::Abs, x)?;
    if p == 1.0 {
        return Ok(a);
    }
    let e = scalar_like(ctx, p, x)?;
    bin(ctx, BinaryOp::Pow, &a, &e)
}

fn spatial_axes(ctx: &Ctx, n: &NodeView) -> NResult<(Operand, Vec<i64>)> {
    let (x, dims) = spatial(ctx, n)?;
    Ok((x, (2..2 + dims.len() as i64).collect()))
}

fn global_pool(ctx: &mut Ctx, n: &NodeView, op: ReduceOp) -> NResult<Vec<Operand>> {
    let (x, axes) = spatial_axes(ctx, n)?;
    Ok(vec![reduce(ctx, op, &x, axes)?])
}

fn global_lp_pool(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (_, axes) = spatial_axes(ctx, n)?;
    let x = float_input(ctx, n, 0)?;
    let p = lp_order(n)?;
    if p == 2.0 {
        return Ok(vec![reduce(ctx, ReduceOp::L2, &x, axes)?]);
    }
    let powed = pow_abs(ctx, &x, p)?;
    let sum = reduce(ctx, ReduceOp::Sum, &powed, axes)?;
    let inv = scalar_like(ctx, 1.0 / p, &x)?;
    Ok(vec![bin(ctx, BinaryOp::Pow, &sum, &inv)?])
}

/// The dtype named by an ONNX `TensorProto.DataType` attribute value.
pub(super) fn attr_dtype(v: i64) -> NResult<DType> {
    crate::onnx::tensor::onnx_dtype(v as i32).map_err(super::ctx::NodeError::Unsupported)
}
