//! ONNX Runtime's fused normalisations (`com.microsoft`): `SkipLayerNormalization` (onto the IR
//! `skip_layer_norm`), `SkipSimplifiedLayerNormalization` and `SimplifiedLayerNormalization`
//! (onto `rms_norm`), and `EmbedLayerNormalization` (gathers, adds and `layer_norm`).

use super::contrib_common::shape;
use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_nn::{bin, bin_c, float_input, reduce, reshape, un};
use super::ops_norm::rms_norm;
use super::ops_util::{cast, dims};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op, ReduceOp, UnaryOp};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    const MS: &str = "com.microsoft";
    r.add_in(MS, "SkipLayerNormalization", skip_layer_norm);
    r.add_in(MS, "SkipSimplifiedLayerNormalization", skip_simplified);
    r.add_in(MS, "EmbedLayerNormalization", embed_layer_norm);
    // ONNX Runtime registers SimplifiedLayerNormalization in the default domain (its optimizer
    // writes it there); some exporters write it under com.microsoft.
    r.add("SimplifiedLayerNormalization", simplified);
    r.add_in(MS, "SimplifiedLayerNormalization", simplified);
}

/// Whether output `i` is requested.
fn wants(n: &NodeView, i: usize) -> bool {
    n.node.output.get(i).is_some_and(|s| !s.is_empty())
}

/// The `epsilon` attribute (ONNX Runtime's default for the skip and embed norms is 1e-12).
fn epsilon(n: &NodeView, default: f32) -> NResult<f64> {
    let eps = f64::from(n.float("epsilon", default));
    if !(eps >= 0.0 && eps.is_finite()) {
        return invalid(format!("epsilon must be a non-negative number, got {eps}"));
    }
    Ok(eps)
}

/// A 1-D per-feature parameter (gamma, beta, bias) of the last dim `h`.
fn feature_param(ctx: &Ctx, n: &NodeView, i: usize, h: &Dim, what: &str) -> NResult<Operand> {
    let p = float_input(ctx, n, i)?;
    let d = dims(ctx, &p);
    let fits = d.len() == 1 && (d[0] == *h || h.as_known().is_none() || d[0].as_known().is_none());
    if !fits {
        return invalid(format!("{what} has shape {}, expected [{h}]", shape(&d)));
    }
    Ok(p)
}

/// `x` (rank ≥ 1) and its last dim.
fn hidden(ctx: &Ctx, n: &NodeView) -> NResult<(Operand, Dim)> {
    let x = float_input(ctx, n, 0)?;
    match dims(ctx, &x).last() {
        Some(h) => Ok((x.clone(), h.clone())),
        None => invalid(format!("{} input is a scalar", n.node.op_type)),
    }
}

/// `1 / sqrt(mean(d², last axis) + eps)` with the last axis kept (ONNX Runtime's `inv_std_var`).
fn inv_std(ctx: &mut Ctx, d: &Operand, eps: f64) -> NResult<Operand> {
    let sq = bin(ctx, BinaryOp::Mul, d, d)?;
    let ms = reduce(ctx, ReduceOp::Mean, &sq, vec![-1])?;
    let ve = bin_c(ctx, BinaryOp::Add, &ms, eps)?;
    un(ctx, UnaryOp::Rsqrt, &ve)
}

/// `x + skip (+ bias)` for the skip norms: the bias goes onto x (skip may broadcast).
fn with_bias(ctx: &mut Ctx, n: &NodeView, x: Operand, bias: usize, h: &Dim) -> NResult<Operand> {
    match n.opt_input(bias) {
        Some(_) => {
            let b = feature_param(ctx, n, bias, h, "bias")?;
            bin(ctx, BinaryOp::Add, &x, &b)
        }
        None => Ok(x),
    }
}

/// `(input, skip, gamma, [beta], [bias]) -> (y, [mean], [inv_std_var], [input_skip_bias_sum])`:
/// `s = input + skip + bias`, `y = layer_norm(s) · gamma + beta` over the last axis.
fn skip_layer_norm(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let (x, h) = hidden(ctx, n)?;
    let skip = float_input(ctx, n, 1)?;
    let eps = epsilon(n, 1e-12)?;
    let mut ins = vec![
        with_bias(ctx, n, x, 4, &h)?,
        skip,
        feature_param(ctx, n, 2, &h, "gamma")?,
    ];
    if n.opt_input(3).is_some() {
        ins.push(feature_param(ctx, n, 3, &h, "beta")?);
    }
    let outs = ctx.emit(Op::SkipLayerNorm { axis: -1, eps }, &ins)?;
    let [y, sum] = [outs[0].clone(), outs[1].clone()];
    let mut res = vec![y];
    if wants(n, 1) || wants(n, 2) {
        let s32 = cast(ctx, &sum, DType::F32)?;
        let mean = reduce(ctx, ReduceOp::Mean, &s32, vec![-1])?;
        let d = bin(ctx, BinaryOp::Sub, &s32, &mean)?;
        let inv = inv_std(ctx, &d, eps)?;
        res.extend([mean, inv]);
    }
    if wants(n, 3) {
        res.resize(3, sum.clone());
        res.push(sum);
    }
    Ok(res)
}

/// `(input, skip, gamma, [bias]) -> (y, [mean], [inv_std_var], [input_skip_bias_sum])`:
/// `s = input + skip + bias`, `y = rms_norm(s) · gamma` over the last axis. The `mean` output
/// (which an RMS norm does not compute) is refused.
fn skip_simplified(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    if wants(n, 1) {
        return unsupported(
            "the `mean` output of SkipSimplifiedLayerNormalization (an RMS norm has no mean)",
        );
    }
    let (x, h) = hidden(ctx, n)?;
    let skip = float_input(ctx, n, 1)?;
    let eps = epsilon(n, 1e-12)?;
    let gamma = feature_param(ctx, n, 2, &h, "gamma")?;
    let x = with_bias(ctx, n, x, 3, &h)?;
    let sum = bin(ctx, BinaryOp::Add, &x, &skip)?;
    let y = ctx.emit1(Op::RmsNorm { eps }, &[sum.clone(), gamma])?;
    let mut res = vec![y];
    if wants(n, 2) {
        let s32 = cast(ctx, &sum, DType::F32)?;
        let inv = inv_std(ctx, &s32, eps)?;
        res.extend([inv.clone(), inv]);
    }
    if wants(n, 3) {
        res.resize(3, sum.clone());
        res.push(sum);
    }
    Ok(res)
}

/// `(X, scale) -> (Y, [inv_std_var])`: an RMS norm over the axes `axis..` (as ONNX
/// `RMSNormalization`; `stash_type` 1, computing in f32, is the only one ONNX Runtime has).
fn simplified(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let stash = n.int("stash_type", 1);
    if stash != 1 {
        return unsupported(format!("stash_type = {stash} (only 1, f32)"));
    }
    let mut res = rms_norm(ctx, n)?;
    if wants(n, 1) {
        let x = float_input(ctx, n, 0)?;
        let rank = dims(ctx, &x).len();
        let axis = super::ops_util::norm_axis(n.int("axis", -1), rank)?;
        let eps = f64::from(n.float("epsilon", 1e-5));
        let x32 = cast(ctx, &x, DType::F32)?;
        let sq = bin(ctx, BinaryOp::Mul, &x32, &x32)?;
        let ms = reduce(
            ctx,
            ReduceOp::Mean,
            &sq,
            (axis as i64..rank as i64).collect(),
        )?;
        let ve = bin_c(ctx, BinaryOp::Add, &ms, eps)?;
        res.push(un(ctx, UnaryOp::Rsqrt, &ve)?);
    }
    Ok(res)
}

/// An int32 or int64 id tensor of shape `[B, S]` (or `[1, S]` for position ids).
fn ids(ctx: &Ctx, n: &NodeView, i: usize, what: &str) -> NResult<Operand> {
    let t = n.input(i)?.clone();
    let ty = ctx.ty(&t);
    if !matches!(ty.dtype, DType::I32 | DType::I64) || ty.rank() != 2 {
        return invalid(format!(
            "{what} must be a 2-D int32 tensor, got {} {}",
            ty.dtype, ty.shape
        ));
    }
    Ok(t)
}

/// `(input_ids, [segment_ids], word_embedding, position_embedding, [segment_embedding], gamma,
/// beta, [mask], [position_ids]) -> (output, [mask_index], [embedding_sum])`: the sum of the
/// word, position (ids, or `0..S`) and segment embeddings, layer-normalised over the last axis;
/// `mask_index[b]` is the number of entries of `mask[b]` equal to 1 (all zeros without a mask).
fn embed_layer_norm(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let input_ids = ids(ctx, n, 0, "input_ids")?;
    let id_dims = dims(ctx, &input_ids);
    let (batch, seq) = (id_dims[0].clone(), id_dims[1].clone());
    let word = float_input(ctx, n, 2)?;
    let h = match dims(ctx, &word).as_slice() {
        [_, h] => h.clone(),
        d => {
            return invalid(format!(
                "word_embedding has shape {}, expected [V, H]",
                shape(d)
            ))
        }
    };
    let gather = |ctx: &mut Ctx, table: Operand, idx: Operand| {
        ctx.emit1(Op::Gather { axis: 0 }, &[table, idx])
    };
    let mut sum = gather(ctx, word, input_ids)?;
    let pos_table = float_input(ctx, n, 3)?;
    let pos = match n.opt_input(8) {
        Some(_) => {
            let p = ids(ctx, n, 8, "position_ids")?;
            gather(ctx, pos_table, p)?
        }
        None => {
            let op = Op::Slice {
                axes: vec![0],
                starts: vec![Dim::known(0)],
                ends: vec![seq.clone()],
                steps: vec![1],
            };
            let p = ctx.emit1(op, &[pos_table])?;
            reshape(ctx, &p, vec![Dim::known(1), seq.clone(), h.clone()])?
        }
    };
    sum = bin(ctx, BinaryOp::Add, &sum, &pos)?;
    match (n.opt_input(1).is_some(), n.opt_input(4).is_some()) {
        (true, true) => {
            let seg = ids(ctx, n, 1, "segment_ids")?;
            let table = float_input(ctx, n, 4)?;
            let s = gather(ctx, table, seg)?;
            sum = bin(ctx, BinaryOp::Add, &sum, &s)?;
        }
        (false, false) => {}
        _ => return invalid("segment_ids and segment_embedding must be given together"),
    }
    let eps = epsilon(n, 1e-12)?;
    let gamma = feature_param(ctx, n, 5, &h, "gamma")?;
    let beta = feature_param(ctx, n, 6, &h, "beta")?;
    let y = ctx.emit1(Op::LayerNorm { axis: -1, eps }, &[sum.clone(), gamma, beta])?;
    let mut res = vec![y];
    if wants(n, 1) || wants(n, 2) {
        let mask_index = match n.opt_input(7) {
            Some(m) => {
                let one = ctx.scalar(1.0, ctx.ty(m).dtype)?;
                let is_one = bin(ctx, BinaryOp::Eq, m, &one)?;
                let c = cast(ctx, &is_one, DType::I32)?;
                let op = Op::Reduce {
                    op: ReduceOp::Sum,
                    axes: vec![1],
                    keepdims: false,
                };
                ctx.emit1(op, &[c])?
            }
            None => {
                let z = ctx.scalar(0.0, DType::I32)?;
                ctx.emit1(Op::Expand { shape: vec![batch] }, &[z])?
            }
        };
        res.push(mask_index);
    }
    if wants(n, 2) {
        res.push(sum);
    }
    Ok(res)
}
