//! ONNX Runtime's `Attention` (packed QKV projection) and `MultiHeadAttention` (`com.microsoft`)
//! onto the IR `attention` op. Masks become additive biases as ONNX Runtime applies them (see
//! `contrib_common.rs`); `unidirectional` excludes future keys outright (the IR `causal` flag,
//! aligned so that query `i` sees the `past + i + 1` first keys). Past and present K/V are
//! concatenated along the sequence.

use super::contrib_common::{
    attend, heads_attr, last_slice, mask_bias, mask_kept, refuse_input, require_int, scale, shape,
    wants,
};
use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_nn::{bin, float_input, reshape};
use super::ops_rotary::{dims, known, split_heads};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, Dim, Op};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add_in("com.microsoft", "Attention", attention);
    r.add_in("com.microsoft", "MultiHeadAttention", multi_head_attention);
}

/// `x[start..start+len]` along the last axis (for weights and biases, folded when constant).
fn part(ctx: &mut Ctx, x: &Operand, start: i64, len: i64) -> NResult<Operand> {
    last_slice(ctx, x, start, start + len)
}

fn attention(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    require_int(
        n,
        "do_rotary",
        0,
        "rotary inside Attention is not supported",
    )?;
    require_int(n, "past_present_share_buffer", 0, "a shared KV buffer")?;
    refuse_input(n, 6, "past_sequence_length")?;
    let heads = heads_attr(n, "num_heads")?;
    let x = float_input(ctx, n, 0)?;
    let xd = dims(ctx, &x);
    if xd.len() != 3 {
        return invalid(format!(
            "Attention input must be [B, S, D], got {}",
            shape(&xd)
        ));
    }
    let w = float_input(ctx, n, 1)?;
    let wd = dims(ctx, &w);
    let total = match wd.as_slice() {
        [_, t] => known(t, "the packed QKV width")?,
        _ => return invalid(format!("Attention weights must be 2-D, got {}", shape(&wd))),
    };
    let sizes = match n.ints("qkv_hidden_sizes") {
        Some(s) if s.len() == 3 && s[0] == s[1] && s.iter().all(|&v| v > 0) => s,
        Some(s) => {
            return invalid(format!(
                "qkv_hidden_sizes must be 3 positive sizes with Q and K equal, got {s:?}"
            ))
        }
        None if total % 3 == 0 => vec![total / 3; 3],
        None => return invalid(format!("packed QKV width {total} is not divisible by 3")),
    };
    let sum = sizes.iter().try_fold(0i64, |a, &b| a.checked_add(b));
    if sum != Some(total) || sizes[0] % heads != 0 || sizes[2] % heads != 0 {
        return invalid(format!(
            "qkv sizes {sizes:?} do not fill the width {total} or split into {heads} heads"
        ));
    }
    let bias = n.opt_input(2).cloned();
    let mut proj = Vec::with_capacity(3);
    for (i, start) in [0, sizes[0], sizes[0] + sizes[1]].into_iter().enumerate() {
        let wi = part(ctx, &w, start, sizes[i])?;
        let mut y = ctx.emit1(Op::MatMul, &[x.clone(), wi])?;
        if let Some(b) = &bias {
            let bi = part(ctx, b, start, sizes[i])?;
            y = bin(ctx, BinaryOp::Add, &y, &bi)?;
        }
        proj.push(split_heads(ctx, &y, heads, ["Q", "K", "V"][i])?);
    }
    let (q, mut k, mut v) = (proj[0].clone(), proj[1].clone(), proj[2].clone());
    if let Some(past) = n.opt_input(4) {
        let pd = dims(ctx, past);
        if pd.len() != 5 || pd[0].as_known() != Some(2) {
            return invalid(format!("past must be [2, B, N, P, H], got {}", shape(&pd)));
        }
        let kv: Vec<Operand> = (0..2)
            .map(|i| {
                let op = Op::Slice {
                    axes: vec![0],
                    starts: vec![Dim::known(i)],
                    ends: vec![Dim::known(i + 1)],
                    steps: vec![1],
                };
                let p = ctx.emit1(op, std::slice::from_ref(past))?;
                reshape(ctx, &p, pd[1..].to_vec())
            })
            .collect::<NResult<_>>()?;
        k = ctx.emit1(Op::Concat { axis: 2 }, &[kv[0].clone(), k])?;
        v = ctx.emit1(Op::Concat { axis: 2 }, &[kv[1].clone(), v])?;
    }
    let present = if wants(n, 1) {
        let mut both = Vec::with_capacity(2);
        for t in [&k, &v] {
            let mut d = dims(ctx, t);
            d.insert(0, Dim::known(1));
            both.push(reshape(ctx, t, d)?);
        }
        Some(ctx.emit1(Op::Concat { axis: 0 }, &both)?)
    } else {
        None
    };
    let (b, s, t) = (&xd[0], &xd[1], &dims(ctx, &k)[2]);
    let kept = match n.opt_input(3) {
        Some(m) => mask_kept(ctx, m, (b, s, t), "mask_index")?,
        None => None,
    };
    let dt = ctx.ty(&x).dtype;
    let filter = f64::from(n.float("mask_filter_value", -10000.0));
    let bias = mask_bias(ctx, kept, filter, n.opt_input(5), dt)?;
    let causal = n.int("unidirectional", 0) != 0;
    let sc = scale(n, sizes[0] / heads)?;
    let y = attend(ctx, [q, k, v], (heads, heads), sc, causal, bias, None)?;
    let mut outs = vec![y];
    outs.extend(present);
    Ok(outs)
}

/// Key or value of `MultiHeadAttention`: 3-D `[B, L, D]` (split into heads, after its part of
/// the bias) or 4-D `[B, N, L, H]` (already split; then there must be no bias).
fn mha_kv(
    ctx: &mut Ctx,
    n: &NodeView,
    i: usize,
    heads: i64,
    bias: Option<(Operand, i64, i64)>,
) -> NResult<Operand> {
    let x = float_input(ctx, n, i)?;
    let what = ["query", "key", "value"][i];
    match dims(ctx, &x).len() {
        3 => {
            let x = match bias {
                Some((b, start, len)) => {
                    let bi = part(ctx, &b, start, len)?;
                    bin(ctx, BinaryOp::Add, &x, &bi)?
                }
                None => x,
            };
            split_heads(ctx, &x, heads, what)
        }
        4 if bias.is_none() => Ok(x),
        4 => unsupported(format!(
            "MultiHeadAttention bias with the {what} already in [B, N, L, H]"
        )),
        5 => unsupported(format!("MultiHeadAttention packed {what} layouts")),
        r => invalid(format!("MultiHeadAttention {what} of rank {r}")),
    }
}

fn multi_head_attention(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    for (i, name) in [(8, "past_sequence_length"), (9, "cache_indirection")] {
        refuse_input(n, i, name)?;
    }
    if wants(n, 3) {
        return unsupported("MultiHeadAttention output `qk`");
    }
    let heads = heads_attr(n, "num_heads")?;
    let q = float_input(ctx, n, 0)?;
    let qd = dims(ctx, &q);
    if qd.len() != 3 || n.opt_input(1).is_none() || n.opt_input(2).is_none() {
        return unsupported(
            "MultiHeadAttention without separate query [B, S, D], key and value (packed QKV)",
        );
    }
    let d = known(&qd[2], "the query hidden size")?;
    if !(1..=1 << 40).contains(&d) {
        return invalid(format!(
            "MultiHeadAttention query hidden size {d} is out of range"
        ));
    }
    let bias = n.opt_input(3).cloned();
    let dv_total = match bias.as_ref().map(|b| dims(ctx, b)).as_deref() {
        Some([len]) => match known(len, "the bias size")? - 2 * d {
            dv if dv > 0 => dv,
            _ => {
                return invalid(format!(
                    "MultiHeadAttention bias {len} is not longer than 2·{d}"
                ))
            }
        },
        Some(bd) => {
            return invalid(format!(
                "MultiHeadAttention bias must be 1-D, got {}",
                shape(bd)
            ))
        }
        None => 0,
    };
    let q = match &bias {
        Some(b) => {
            let bq = part(ctx, b, 0, d)?;
            bin(ctx, BinaryOp::Add, &q, &bq)?
        }
        None => q,
    };
    let q = split_heads(ctx, &q, heads, "query")?;
    let kb = bias.clone().map(|b| (b, d, d));
    let mut k = mha_kv(ctx, n, 1, heads, kb)?;
    let vb = bias.map(|b| (b, 2 * d, dv_total));
    let mut v = mha_kv(ctx, n, 2, heads, vb)?;
    let new_keys = dims(ctx, &k)[2].clone();
    let kv_split = dims(ctx, n.input(1)?).len() == 4;
    if kv_split && n.opt_input(6).is_some() {
        return unsupported("MultiHeadAttention past_key with a key already in [B, N, L, H]");
    }
    match (n.opt_input(6), n.opt_input(7)) {
        (Some(pk), Some(pv)) => {
            k = ctx.emit1(Op::Concat { axis: 2 }, &[pk.clone(), k])?;
            v = ctx.emit1(Op::Concat { axis: 2 }, &[pv.clone(), v])?;
        }
        (None, None) => {}
        _ => return invalid("past_key and past_value must be given together"),
    }
    let (b, s, t) = (&qd[0], &qd[1], &dims(ctx, &k)[2]);
    let causal = n.int("unidirectional", 0) != 0;
    if causal && new_keys != *s {
        return unsupported(format!(
            "MultiHeadAttention unidirectional with {new_keys} new keys for {s} queries"
        ));
    }
    let kept = match n.opt_input(4) {
        Some(m) => mask_kept(ctx, m, (b, s, t), "key_padding_mask")?,
        None => None,
    };
    let dt = ctx.ty(&q).dtype;
    let filter = f64::from(n.float("mask_filter_value", -10000.0));
    let bias = mask_bias(ctx, kept, filter, n.opt_input(5), dt)?;
    let sc = scale(n, d / heads)?;
    let y = attend(
        ctx,
        [q, k.clone(), v.clone()],
        (heads, heads),
        sc,
        causal,
        bias,
        None,
    )?;
    Ok(vec![y, k, v])
}
