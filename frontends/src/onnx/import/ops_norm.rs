//! ONNX importers for normalisations: `LayerNormalization` and `RMSNormalization` (onto the IR
//! `layer_norm` / `rms_norm`), `GroupNormalization`, `InstanceNormalization` (via `layer_norm`),
//! inference-form `BatchNormalization`, `LRN`, `MeanVarianceNormalization`, `LpNormalization`.

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_nn::{
    attr_dtype, bin, bin_c, float_input, norm_axis, reduce, reshape, scalar_like, un,
};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, Dim, Op, PoolKind, ReduceOp, UnaryOp};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("LayerNormalization", layer_norm);
    r.add("RMSNormalization", rms_norm);
    r.add("GroupNormalization", group_norm);
    r.add("InstanceNormalization", instance_norm);
    r.add("BatchNormalization", batch_norm);
    r.add("LRN", lrn);
    r.add("MeanVarianceNormalization", mvn);
    r.add("LpNormalization", lp_norm);
}

fn wants(n: &NodeView, i: usize) -> bool {
    n.node.output.get(i).is_some_and(|s| !s.is_empty())
}

/// `(x - mean) / sqrt(var + eps)` over the axes `axis..` (IR `layer_norm` with gamma 1), then
/// `* gamma + beta` as separate ops when they do not broadcast to the normalised dims.
fn normalize(
    ctx: &mut Ctx,
    x: &Operand,
    axis: usize,
    eps: f64,
    gamma: Option<&Operand>,
    beta: Option<&Operand>,
) -> NResult<Operand> {
    let rank = ctx.ty(x).rank();
    let fits = |ctx: &Ctx, p: Option<&Operand>| p.is_none_or(|p| ctx.ty(p).rank() <= rank - axis);
    let op = Op::LayerNorm {
        axis: axis as i64,
        eps,
    };
    if fits(ctx, gamma) && fits(ctx, beta) {
        let mut ins = vec![
            x.clone(),
            match gamma {
                Some(g) => g.clone(),
                None => scalar_like(ctx, 1.0, x)?,
            },
        ];
        ins.extend(beta.cloned());
        return ctx.emit1(op, &ins);
    }
    let one = scalar_like(ctx, 1.0, x)?;
    let mut y = ctx.emit1(op, &[x.clone(), one])?;
    if let Some(g) = gamma {
        y = bin(ctx, BinaryOp::Mul, &y, g)?;
    }
    if let Some(b) = beta {
        y = bin(ctx, BinaryOp::Add, &y, b)?;
    }
    Ok(y)
}

fn layer_norm(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = float_input(ctx, n, 0)?;
    let rank = ctx.ty(&x).rank();
    let axis = norm_axis(n.int("axis", -1), rank)?;
    let eps = f64::from(n.float("epsilon", 1e-5));
    let y = normalize(ctx, &x, axis, eps, Some(n.input(1)?), n.opt_input(2))?;
    if !wants(n, 1) && !wants(n, 2) {
        return Ok(vec![y]);
    }
    // Mean and InvStdDev, in the stash type.
    let stash = attr_dtype(n.int("stash_type", 1))?;
    let xs = if ctx.ty(&x).dtype == stash {
        x
    } else {
        ctx.emit1(Op::Cast { to: stash }, &[x])?
    };
    let axes: Vec<i64> = (axis as i64..rank as i64).collect();
    let mean = reduce(ctx, ReduceOp::Mean, &xs, axes.clone())?;
    let d = bin(ctx, BinaryOp::Sub, &xs, &mean)?;
    let sq = bin(ctx, BinaryOp::Mul, &d, &d)?;
    let var = reduce(ctx, ReduceOp::Mean, &sq, axes)?;
    let e = scalar_like(ctx, eps, &xs)?;
    let ve = bin(ctx, BinaryOp::Add, &var, &e)?;
    let inv = un(ctx, UnaryOp::Rsqrt, &ve)?;
    Ok(vec![y, mean, inv])
}

pub(super) fn rms_norm(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = float_input(ctx, n, 0)?;
    let t = ctx.ty(&x);
    let axis = norm_axis(n.int("axis", -1), t.rank())?;
    let eps = f64::from(n.float("epsilon", 1e-5));
    let gamma = n.input(1)?.clone();
    let g_rank = ctx.ty(&gamma).rank();
    let norm_dims = t.shape.0[axis..].to_vec();
    if axis + 1 == t.rank() && g_rank <= 1 {
        return Ok(vec![ctx.emit1(Op::RmsNorm { eps }, &[x, gamma])?]);
    }
    // Flatten the normalised dims into one, run rms_norm over it, and restore the shape.
    let inner = norm_dims.iter().fold(Dim::known(1), |a, d| a.mul(d));
    let mut flat: Vec<Dim> = t.shape.0[..axis].to_vec();
    flat.push(inner.clone());
    let xf = reshape(ctx, &x, flat)?;
    let y = if g_rank <= norm_dims.len() {
        let ge = ctx.emit1(Op::Expand { shape: norm_dims }, &[gamma])?;
        let gf = reshape(ctx, &ge, vec![inner])?;
        let yf = ctx.emit1(Op::RmsNorm { eps }, &[xf, gf])?;
        reshape(ctx, &yf, t.shape.0.clone())?
    } else {
        let one = scalar_like(ctx, 1.0, &x)?;
        let yf = ctx.emit1(Op::RmsNorm { eps }, &[xf, one])?;
        let y = reshape(ctx, &yf, t.shape.0.clone())?;
        bin(ctx, BinaryOp::Mul, &y, &gamma)?
    };
    Ok(vec![y])
}

/// Per-channel parameter `p` of shape `[C]` viewed as `[C, 1, ..., 1]` for an input of `rank`.
fn per_channel(ctx: &mut Ctx, p: &Operand, rank: usize) -> NResult<Operand> {
    let t = ctx.ty(p);
    if t.rank() != 1 {
        return Ok(p.clone());
    }
    let mut shape = vec![t.shape.0[0].clone()];
    shape.resize(rank - 1, Dim::known(1));
    reshape(ctx, p, shape)
}

fn spatial_input(ctx: &Ctx, n: &NodeView) -> NResult<(Operand, Vec<Dim>)> {
    let x = float_input(ctx, n, 0)?;
    let t = ctx.ty(&x);
    if t.rank() < 3 {
        return invalid(format!(
            "input 0 has shape {}, expected [N, C, D1, ...]",
            t.shape
        ));
    }
    Ok((x, t.shape.0))
}

fn instance_norm(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (x, shape) = spatial_input(ctx, n)?;
    let eps = f64::from(n.float("epsilon", 1e-5));
    let y = normalize(ctx, &x, 2, eps, None, None)?;
    let s = per_channel(ctx, n.input(1)?, shape.len())?;
    let b = per_channel(ctx, n.input(2)?, shape.len())?;
    let y = bin(ctx, BinaryOp::Mul, &y, &s)?;
    Ok(vec![bin(ctx, BinaryOp::Add, &y, &b)?])
}

fn group_norm(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (x, shape) = spatial_input(ctx, n)?;
    let eps = f64::from(n.float("epsilon", 1e-5));
    let groups = n.req_int("num_groups")?;
    if groups < 1 || shape[1].as_known().is_some_and(|c| c % groups != 0) {
        return invalid(format!(
            "{} channels do not split into num_groups = {groups}",
            shape[1]
        ));
    }
    let g = Dim::known(groups);
    let rest = shape[2..]
        .iter()
        .fold(shape[1].floor_div(&g), |a, d| a.mul(d));
    let xg = reshape(ctx, &x, vec![shape[0].clone(), g.clone(), rest])?;
    let mut y = normalize(ctx, &xg, 2, eps, None, None)?;
    let (scale, bias) = (n.input(1)?.clone(), n.input(2)?.clone());
    if n.opset < 21 {
        // Opset 18: one scale and bias per group.
        let s = reshape(ctx, &scale, vec![g.clone(), Dim::known(1)])?;
        let b = reshape(ctx, &bias, vec![g, Dim::known(1)])?;
        y = bin(ctx, BinaryOp::Mul, &y, &s)?;
        y = bin(ctx, BinaryOp::Add, &y, &b)?;
        return Ok(vec![reshape(ctx, &y, shape)?]);
    }
    let y = reshape(ctx, &y, shape.clone())?;
    let s = per_channel(ctx, &scale, shape.len())?;
    let b = per_channel(ctx, &bias, shape.len())?;
    let y = bin(ctx, BinaryOp::Mul, &y, &s)?;
    Ok(vec![bin(ctx, BinaryOp::Add, &y, &b)?])
}

/// `(x - mean) * (scale / sqrt(var + eps)) + B`, parameters broadcast over the channel axis 1
/// (or, with opset-7..9 `spatial = 0`, over the channel and spatial dims). In training mode
/// (`training_mode = 1`, or opset ≤ 6 without `is_test`) mean and var are the batch statistics
/// and the running statistics outputs are `mean·momentum + batch·(1 - momentum)`.
fn batch_norm(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let training = if n.opset <= 6 {
        n.int("is_test", 0) == 0
    } else {
        n.int("training_mode", 0) != 0
    };
    if (n.opset < 14 && (1..n.num_outputs()).any(|i| wants(n, i)))
        || (3..n.num_outputs()).any(|i| wants(n, i))
    {
        return unsupported("BatchNormalization's saved mean/variance outputs (opset < 14 training) are not supported");
    }
    let x = float_input(ctx, n, 0)?;
    let shape = ctx.ty(&x).shape.0;
    if shape.len() < 2 {
        return invalid("BatchNormalization needs an input of rank ≥ 2");
    }
    let eps = f64::from(n.float("epsilon", 1e-5));
    let mut p = Vec::with_capacity(4);
    for i in 1..5 {
        let o = n.input(i)?.clone();
        p.push(per_channel(ctx, &o, shape.len())?);
    }
    let (mean, var, stats) = if training {
        if ctx.ty(n.input(1)?).rank() != 1 {
            return unsupported(
                "training-mode BatchNormalization with per-activation (spatial = 0) statistics",
            );
        }
        let axes: Vec<i64> = std::iter::once(0).chain(2..shape.len() as i64).collect();
        let bm = reduce(ctx, ReduceOp::Mean, &x, axes.clone())?;
        let d = bin(ctx, BinaryOp::Sub, &x, &bm)?;
        let sq = bin(ctx, BinaryOp::Mul, &d, &d)?;
        let bv = reduce(ctx, ReduceOp::Mean, &sq, axes)?;
        let momentum = f64::from(n.float("momentum", 0.9));
        let mut stats = Vec::with_capacity(2);
        for (running, batch) in [(n.input(3)?.clone(), &bm), (n.input(4)?.clone(), &bv)] {
            let b = reshape(ctx, batch, vec![shape[1].clone()])?;
            let r = bin_c(ctx, BinaryOp::Mul, &running, momentum)?;
            let b = bin_c(ctx, BinaryOp::Mul, &b, 1.0 - momentum)?;
            stats.push(bin(ctx, BinaryOp::Add, &r, &b)?);
        }
        (bm, bv, stats)
    } else {
        (p[2].clone(), p[3].clone(), Vec::new())
    };
    let ve = bin_c(ctx, BinaryOp::Add, &var, eps)?;
    let inv = un(ctx, UnaryOp::Rsqrt, &ve)?;
    let a = bin(ctx, BinaryOp::Mul, &p[0], &inv)?;
    let d = bin(ctx, BinaryOp::Sub, &x, &mean)?;
    let y = bin(ctx, BinaryOp::Mul, &d, &a)?;
    let mut outs = vec![bin(ctx, BinaryOp::Add, &y, &p[1])?];
    outs.extend(stats);
    Ok(outs)
}

/// `x / (bias + alpha/size · sum of x² over the channel window)^beta`; the window sum is an
/// average pool over channels (padding counted) of x² viewed as `[N, 1, C, rest]`.
fn lrn(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = float_input(ctx, n, 0)?;
    let shape = ctx.ty(&x).shape.0;
    if shape.len() < 2 {
        return invalid("LRN needs an input of rank ≥ 2");
    }
    let size = n.req_int("size")?;
    if size < 1 {
        return invalid(format!("LRN size must be positive, got {size}"));
    }
    let (alpha, beta, bias) = (
        f64::from(n.float("alpha", 1e-4)),
        f64::from(n.float("beta", 0.75)),
        f64::from(n.float("bias", 1.0)),
    );
    let rest = shape[2..].iter().fold(Dim::known(1), |a, d| a.mul(d));
    let sq = bin(ctx, BinaryOp::Mul, &x, &x)?;
    let view = vec![shape[0].clone(), Dim::known(1), shape[1].clone(), rest];
    let sq = reshape(ctx, &sq, view)?;
    let (lo, hi) = ((size - 1) / 2, size - 1 - (size - 1) / 2);
    let op = Op::Pool {
        kind: PoolKind::Avg,
        kernel: vec![size, 1],
        strides: vec![1, 1],
        pads: vec![lo, 0, hi, 0],
        dilations: vec![1, 1],
        ceil_mode: false,
        count_include_pad: true,
    };
    let avg = ctx.emit1(op, &[sq])?;
    let avg = reshape(ctx, &avg, shape)?;
    let scaled = bin_c(ctx, BinaryOp::Mul, &avg, alpha)?;
    let base = bin_c(ctx, BinaryOp::Add, &scaled, bias)?;
    let den = bin_c(ctx, BinaryOp::Pow, &base, beta)?;
    Ok(vec![bin(ctx, BinaryOp::Div, &x, &den)?])
}

/// `(x - mean) / (sqrt(var) + 1e-9)` over `axes` (default `[0, 2, 3]`).
fn mvn(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = float_input(ctx, n, 0)?;
    let rank = ctx.ty(&x).rank();
    let axes = n.ints("axes").unwrap_or_else(|| vec![0, 2, 3]);
    let axes = axes
        .iter()
        .map(|&a| norm_axis(a, rank).map(|a| a as i64))
        .collect::<NResult<Vec<_>>>()?;
    if axes.is_empty() {
        return invalid("MeanVarianceNormalization needs at least one axis");
    }
    let mean = reduce(ctx, ReduceOp::Mean, &x, axes.clone())?;
    let d = bin(ctx, BinaryOp::Sub, &x, &mean)?;
    let sq = bin(ctx, BinaryOp::Mul, &d, &d)?;
    let var = reduce(ctx, ReduceOp::Mean, &sq, axes)?;
    let std = un(ctx, UnaryOp::Sqrt, &var)?;
    let den = bin_c(ctx, BinaryOp::Add, &std, 1e-9)?;
    Ok(vec![bin(ctx, BinaryOp::Div, &d, &den)?])
}

/// `x / ‖x‖_p` along `axis` (p = 1 or 2); a zero norm gives 0.
fn lp_norm(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = float_input(ctx, n, 0)?;
    let axis = norm_axis(n.int("axis", -1), ctx.ty(&x).rank())? as i64;
    let op = match n.int("p", 2) {
        1 => ReduceOp::L1,
        2 => ReduceOp::L2,
        p => return invalid(format!("LpNormalization p must be 1 or 2, got {p}")),
    };
    let norm = reduce(ctx, op, &x, vec![axis])?;
    let zero = scalar_like(ctx, 0.0, &x)?;
    let is_zero = bin(ctx, BinaryOp::Eq, &norm, &zero)?;
    let q = bin(ctx, BinaryOp::Div, &x, &norm)?;
    Ok(vec![ctx.emit1(Op::Where, &[is_zero, zero, q])?])
}
