//! Helpers the `com.microsoft` attention importers share: refusing attribute values and inputs,
//! `mask_index` / `key_padding_mask` forms as additive biases, and the IR `attention` call with
//! the head merge.
//!
//! Masks follow ONNX Runtime's CPU kernels: a masked key gets `mask_filter_value` (default
//! -10000) added to its score, so a row whose keys are all masked averages them as ONNX Runtime
//! does. Forms: `[B]` (key lengths: key `j` kept when `j < len[b]`), `[2·B]` (ends then starts:
//! `start ≤ j < end`), `[B, T]` and `[B, S, T]` (kept where the value is > 0), and the dummy
//! `[B, 1]` / `[1, 1]` (no mask, when the key length is known not to be 1). `[3·B + 2]` and the
//! 4-D Megatron mask are refused.

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_nn::{bin, reshape};
use super::ops_rotary::{dims, known};
use super::ops_util::cast;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op};

/// Dims as a shape in messages: `[batch, 12, seq, 64]`.
pub(super) fn shape(d: &[Dim]) -> String {
    kiln_compiler::ir::Shape(d.to_vec()).to_string()
}

/// Whether output `i` is requested.
pub(super) fn wants(n: &NodeView, i: usize) -> bool {
    n.node.output.get(i).is_some_and(|s| !s.is_empty())
}

/// Refuses a node whose integer attribute `name` is set to something other than `ok`.
pub(super) fn require_int(n: &NodeView, name: &str, ok: i64, what: &str) -> NResult<()> {
    match n.int(name, ok) {
        v if v == ok => Ok(()),
        v => unsupported(format!("{} {name} = {v} ({what})", n.node.op_type)),
    }
}

/// Refuses optional input `i` (named `name`) when it is present.
pub(super) fn refuse_input(n: &NodeView, i: usize, name: &str) -> NResult<()> {
    match n.opt_input(i) {
        Some(_) => unsupported(format!("{} input `{name}`", n.node.op_type)),
        None => Ok(()),
    }
}

/// `Range(0, len)` as i64 viewed with `shape`.
pub(super) fn iota(ctx: &mut Ctx, len: &Dim, shape: Vec<Dim>) -> NResult<Operand> {
    let op = Op::Range {
        start: Dim::known(0),
        limit: len.clone(),
        delta: Dim::known(1),
        dtype: DType::I64,
    };
    let r = ctx.emit1(op, &[])?;
    reshape(ctx, &r, shape)
}

/// `x[..., start..end]` along the last axis of a rank-`rank` operand.
pub(super) fn last_slice(ctx: &mut Ctx, x: &Operand, start: i64, end: i64) -> NResult<Operand> {
    let op = Op::Slice {
        axes: vec![-1],
        starts: vec![Dim::known(start)],
        ends: vec![Dim::known(end)],
        steps: vec![1],
    };
    ctx.emit1(op, std::slice::from_ref(x))
}

/// The `scale` attribute, or `1/√head_size`.
pub(super) fn scale(n: &NodeView, head: i64) -> NResult<f64> {
    match n.attr("scale").map(|a| f64::from(a.f)) {
        Some(s) if s != 0.0 => match s.is_finite() {
            true => Ok(s),
            false => invalid(format!("scale must be finite, got {s}")),
        },
        _ => Ok(1.0 / (head as f64).sqrt()),
    }
}

/// The shape of a mask: `[B, 1, S or 1, T]` as a bool `kept` tensor, or `None` for no mask.
/// `b`, `s`, `t` are the batch, query length and total key length.
pub(super) fn mask_kept(
    ctx: &mut Ctx,
    m: &Operand,
    (b, s, t): (&Dim, &Dim, &Dim),
    what: &str,
) -> NResult<Option<Operand>> {
    let md = dims(ctx, m);
    let dt = ctx.ty(m).dtype;
    if !dt.is_int() {
        return invalid(format!("{what} must be an integer tensor, got {dt}"));
    }
    let one = Dim::known(1);
    let m64 = cast(ctx, m, DType::I64)?;
    let kept = match md.as_slice() {
        [len] if len == b => {
            let end = reshape(ctx, &m64, vec![b.clone(), one.clone()])?;
            let j = iota(ctx, t, vec![one.clone(), t.clone()])?;
            bin(ctx, BinaryOp::Lt, &j, &end)?
        }
        [len] if *len == b.mul(&Dim::known(2)) => {
            let bb = known(b, "the batch size (for a [2·B] mask_index)")?;
            let half = |ctx: &mut Ctx, lo: i64| -> NResult<Operand> {
                let op = Op::Slice {
                    axes: vec![0],
                    starts: vec![Dim::known(lo)],
                    ends: vec![Dim::known(lo + bb)],
                    steps: vec![1],
                };
                let x = ctx.emit1(op, std::slice::from_ref(&m64))?;
                reshape(ctx, &x, vec![b.clone(), Dim::known(1)])
            };
            let (end, start) = (half(ctx, 0)?, half(ctx, bb)?);
            let j = iota(ctx, t, vec![one.clone(), t.clone()])?;
            let below = bin(ctx, BinaryOp::Lt, &j, &end)?;
            let above = bin(ctx, BinaryOp::Ge, &j, &start)?;
            bin(ctx, BinaryOp::And, &below, &above)?
        }
        [_] => {
            return unsupported(format!(
                "{what} of shape {} (only [B] key lengths or [2·B] ends and starts; the \
                 [3·B + 2] cumulative form is not supported)",
                shape(&md)
            ))
        }
        [_, last] if last == t => {
            let zero = ctx.scalar(0.0, DType::I64)?;
            bin(ctx, BinaryOp::Gt, &m64, &zero)?
        }
        [_, last] if last.as_known() == Some(1) => {
            return match t.as_known() {
                Some(_) => Ok(None),
                None => unsupported(format!(
                    "{what} of shape {} with a symbolic key length {t}: a dummy mask or a \
                     one-key padding mask depending on it",
                    shape(&md)
                )),
            };
        }
        [_, _, last] if last == t => {
            let zero = ctx.scalar(0.0, DType::I64)?;
            let k = bin(ctx, BinaryOp::Gt, &m64, &zero)?;
            return Ok(Some(reshape(
                ctx,
                &k,
                vec![b.clone(), one, s.clone(), t.clone()],
            )?));
        }
        _ if md.len() == 4 => {
            return unsupported(format!("4-D {what} (Megatron-style causal masks)"))
        }
        _ => {
            return invalid(format!(
                "{what} has shape {}; expected [B], [2·B], [B, {t}] or [B, {s}, {t}]",
                shape(&md)
            ))
        }
    };
    Ok(Some(reshape(
        ctx,
        &kept,
        vec![b.clone(), one.clone(), one, t.clone()],
    )?))
}

/// `where(kept, 0, filter)` in dtype `dt`, plus the optional `attention_bias`.
pub(super) fn mask_bias(
    ctx: &mut Ctx,
    kept: Option<Operand>,
    filter: f64,
    extra: Option<&Operand>,
    dt: DType,
) -> NResult<Option<Operand>> {
    let bias = match kept {
        Some(k) => {
            let (z, f) = (ctx.scalar(0.0, dt)?, ctx.scalar(filter, dt)?);
            Some(ctx.emit1(Op::Where, &[k, z, f])?)
        }
        None => None,
    };
    Ok(match (bias, extra) {
        (Some(a), Some(e)) => Some(bin(ctx, BinaryOp::Add, &a, e)?),
        (None, Some(e)) => Some(e.clone()),
        (a, None) => a,
    })
}

/// Q `[B, N, S, H]`, K and V `[B, Nkv, T, H]` through the IR attention op, back to
/// `[B, S, N·Hv]`.
pub(super) fn attend(
    ctx: &mut Ctx,
    [q, k, v]: [Operand; 3],
    (heads, kv_heads): (i64, i64),
    scale: f64,
    causal: bool,
    bias: Option<Operand>,
    mask: Option<Operand>,
) -> NResult<Operand> {
    let qd = dims(ctx, &q);
    let count = |h: i64| match u32::try_from(h) {
        Ok(h) if h > 0 => Ok(h),
        _ => invalid(format!("head count {h} is out of range")),
    };
    let op = Op::Attention {
        heads: count(heads)?,
        kv_heads: count(kv_heads)?,
        scale,
        causal,
        bias: bias.is_some(),
        mask: mask.is_some(),
        rotary: false,
    };
    let mut ins = vec![q, k, v];
    ins.extend(bias);
    ins.extend(mask);
    let y = ctx.emit1(op, &ins)?;
    let t = ctx.emit1(
        Op::Transpose {
            perm: vec![0, 2, 1, 3],
        },
        &[y],
    )?;
    let hv = dims(ctx, &t)[3].mul(&Dim::known(heads));
    reshape(ctx, &t, vec![qd[0].clone(), qd[2].clone(), hv])
}

/// `num_heads` (≥ 1).
pub(super) fn heads_attr(n: &NodeView, name: &str) -> NResult<i64> {
    match n.req_int(name)? {
        h if (1..=4096).contains(&h) => Ok(h),
        h => invalid(format!("{name} must be in 1..=4096, got {h}")),
    }
}
