//! ONNX Runtime's `GroupQueryAttention` (the prefill form: no past, or a zero-length one) onto
//! the IR `attention` op with `kv_heads`, and its `RotaryEmbedding` (`com.microsoft`: inputs
//! `input, position_ids, cos_cache, sin_cache`) onto the rotation the ONNX `RotaryEmbedding`
//! importer emits.
//!
//! In the prefill form, query `i` of batch `b` attends to the keys `j ≤ seqlens_k[b]` (and, when
//! `causal`, `j ≤ i`); rotary positions are `0..S`. Decode steps (a non-empty past, whose
//! per-batch append positions come from `seqlens_k`), sliding windows, softcap, smooth softmax,
//! quantized caches and the extra inputs (`position_ids`, `head_sink`, KV scales, QK norms) are
//! refused.

use super::contrib_common::{
    attend, heads_attr, iota, last_slice, refuse_input, require_int, scale, shape, wants,
};
use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_nn::{bin, float_input, reshape};
use super::ops_rotary::{dims, known, rotate, split_heads};
use super::ops_util::cast;
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add_in(
        "com.microsoft",
        "GroupQueryAttention",
        group_query_attention,
    );
    r.add_in("com.microsoft", "RotaryEmbedding", rotary_embedding);
}

/// Rows `[0, len)` of a `[max, r/2]` cos/sin cache viewed as `[1, len, r/2]`, or gathered at
/// `positions` (`[B, S]` → `[B, S, r/2]`).
fn table(
    ctx: &mut Ctx,
    cache: &Operand,
    len: &Dim,
    positions: Option<&Operand>,
) -> NResult<Operand> {
    let cd = dims(ctx, cache);
    if cd.len() != 2 {
        return invalid(format!(
            "cos/sin caches must be 2-D [max, rotary_dim/2], got {}",
            shape(&cd)
        ));
    }
    if let Some(p) = positions {
        return ctx.emit1(Op::Gather { axis: 0 }, &[cache.clone(), p.clone()]);
    }
    let op = Op::Slice {
        axes: vec![0],
        starts: vec![Dim::known(0)],
        ends: vec![len.clone()],
        steps: vec![1],
    };
    let rows = ctx.emit1(op, std::slice::from_ref(cache))?;
    reshape(ctx, &rows, vec![Dim::known(1), len.clone(), cd[1].clone()])
}

/// The width of a `[max, rotary_dim/2]` cos cache.
fn cache_half(ctx: &Ctx, cos: &Operand) -> NResult<i64> {
    match dims(ctx, cos).as_slice() {
        [_, h] => known(h, "the cos cache width"),
        d => invalid(format!(
            "cos_cache must be 2-D [max, rotary_dim/2], got {}",
            shape(d)
        )),
    }
}

/// The GQA attributes and inputs that have no IR counterpart, refused when used.
fn refusals(n: &NodeView) -> NResult<()> {
    let window = n.int("local_window_size", -1);
    if window != -1 {
        return unsupported(format!(
            "GroupQueryAttention local_window_size = {window} (sliding-window attention)"
        ));
    }
    let softcap = n.float("softcap", 0.0);
    if softcap != 0.0 {
        return unsupported(format!("GroupQueryAttention softcap = {softcap}"));
    }
    require_int(n, "smooth_softmax", 0, "a smooth softmax")?;
    require_int(n, "qk_output", 0, "the QK output")?;
    require_int(n, "sliding_window_cache", 0, "a window-sized KV cache")?;
    for name in ["k_quant_type", "v_quant_type"] {
        let v = n.string(name, "NONE");
        if v != "NONE" {
            return unsupported(format!(
                "GroupQueryAttention {name} = {v} (a quantized KV cache)"
            ));
        }
    }
    let extra = [
        (9, "position_ids"),
        (11, "head_sink"),
        (12, "k_scale"),
        (13, "v_scale"),
        (14, "q_norm_weight"),
        (15, "k_norm_weight"),
    ];
    for (i, name) in extra {
        refuse_input(n, i, name)?;
    }
    if wants(n, 3) {
        return unsupported("GroupQueryAttention output `output_qk`");
    }
    Ok(())
}

fn group_query_attention(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    refusals(n)?;
    let heads = heads_attr(n, "num_heads")?;
    let kv_heads = heads_attr(n, "kv_num_heads")?;
    if heads % kv_heads != 0 {
        return invalid(format!(
            "num_heads {heads} is not a multiple of kv_num_heads {kv_heads}"
        ));
    }
    let q = float_input(ctx, n, 0)?;
    let qd = dims(ctx, &q);
    if qd.len() != 3 {
        return invalid(format!(
            "GroupQueryAttention query must be 3-D, got {}",
            shape(&qd)
        ));
    }
    let width = known(&qd[2], "the query width")?;
    let (q, k, v, head) = match (n.opt_input(1), n.opt_input(2)) {
        (None, None) => {
            // Packed QKV: [B, S, (N + 2·Nkv)·H].
            let parts = heads + 2 * kv_heads;
            if width % parts != 0 {
                return invalid(format!(
                    "packed QKV width {width} does not split into {parts} heads"
                ));
            }
            let h = width / parts;
            let (qw, kw) = (heads * h, kv_heads * h);
            let pq = last_slice(ctx, &q, 0, qw)?;
            let pk = last_slice(ctx, &q, qw, qw + kw)?;
            let pv = last_slice(ctx, &q, qw + kw, width)?;
            (pq, pk, pv, h)
        }
        (Some(_), Some(_)) => {
            let (k, v) = (float_input(ctx, n, 1)?, float_input(ctx, n, 2)?);
            if width % heads != 0 {
                return invalid(format!(
                    "query width {width} does not split into {heads} heads"
                ));
            }
            (q, k, v, width / heads)
        }
        _ => return invalid("GroupQueryAttention key and value must be given together"),
    };
    for i in [3, 4] {
        if let Some(p) = n.opt_input(i) {
            let pd = dims(ctx, p);
            if pd.len() != 4 || pd[2].as_known() != Some(0) {
                return unsupported(format!(
                    "GroupQueryAttention with a past of shape {}: only the prefill form \
                     (no past, or a past of length 0) is supported, not decode steps",
                    shape(&pd)
                ));
            }
        }
    }
    let (b, s) = (qd[0].clone(), qd[1].clone());
    let (q, k) = if n.int("do_rotary", 0) != 0 {
        let cos = n.input(7)?.clone();
        let sin = n.input(8)?.clone();
        let half = cache_half(ctx, &cos)?;
        let trig = [table(ctx, &cos, &s, None)?, table(ctx, &sin, &s, None)?];
        let interleaved = n.int("rotary_interleaved", 0) != 0;
        let q = rotate(ctx, &q, trig.clone(), heads, 2 * half, interleaved)?;
        let k = rotate(ctx, &k, trig, kv_heads, 2 * half, interleaved)?;
        (q, k)
    } else {
        (q, k)
    };
    let q = split_heads(ctx, &q, heads, "query")?;
    let k = split_heads(ctx, &k, kv_heads, "key")?;
    let v = split_heads(ctx, &v, kv_heads, "value")?;
    // Keys j ≤ seqlens_k[b] are valid (`seqlens_k` is the total length minus one).
    let seqlens = n.input(5)?.clone();
    n.input(6)?;
    let sd = dims(ctx, &seqlens);
    if sd.len() != 1 || !ctx.ty(&seqlens).dtype.is_int() {
        return invalid(format!(
            "seqlens_k must be a 1-D integer tensor [B], got {}",
            shape(&sd)
        ));
    }
    let last = cast(ctx, &seqlens, DType::I64)?;
    let last = reshape(ctx, &last, vec![b.clone(), Dim::known(1)])?;
    let j = iota(ctx, &s, vec![Dim::known(1), s.clone()])?;
    let mask = bin(ctx, BinaryOp::Le, &j, &last)?;
    let causal = n.int("causal", 1) != 0;
    let sc = scale(n, head)?;
    let bias = n.opt_input(10).cloned();
    let y = attend(
        ctx,
        [q, k.clone(), v.clone()],
        (heads, kv_heads),
        sc,
        causal,
        bias,
        Some(mask),
    )?;
    Ok(vec![y, k, v])
}

/// `(input, position_ids, cos_cache, sin_cache) -> output`: position ids `[B, S]`, or `[1]` for
/// positions `p, p+1, ..`; caches `[max, rotary_dim/2]`.
fn rotary_embedding(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    require_int(n, "is_packed_batching", 0, "ragged packed batches")?;
    let sc = n.float("scale", 1.0);
    if sc != 1.0 {
        return unsupported(format!("RotaryEmbedding scale = {sc} (only 1)"));
    }
    let x = float_input(ctx, n, 0)?;
    let xd = dims(ctx, &x);
    let seq = match xd.len() {
        3 => xd[1].clone(),
        4 => xd[2].clone(),
        r => {
            return invalid(format!(
                "RotaryEmbedding input must be 3-D or 4-D, got rank {r}"
            ))
        }
    };
    let (cos, sin) = (n.input(2)?.clone(), n.input(3)?.clone());
    let half = cache_half(ctx, &cos)?;
    let pos = n.input(1)?.clone();
    let positions = match dims(ctx, &pos).as_slice() {
        [_, _] => pos,
        [one] if one.as_known() == Some(1) => {
            let start = cast(ctx, &pos, DType::I64)?;
            let i = iota(ctx, &seq, vec![seq.clone()])?;
            let p = bin(ctx, BinaryOp::Add, &i, &start)?;
            reshape(ctx, &p, vec![Dim::known(1), seq.clone()])?
        }
        d => {
            return invalid(format!(
                "position_ids must be [B, S] or [1], got {}",
                shape(d)
            ))
        }
    };
    let trig = [
        table(ctx, &cos, &seq, Some(&positions))?,
        table(ctx, &sin, &seq, Some(&positions))?,
    ];
    let rot = n.int("rotary_embedding_dim", 0);
    let mut heads = n.int("num_heads", 0);
    if xd.len() == 3 && heads == 0 {
        if rot != 0 {
            return invalid("RotaryEmbedding rotary_embedding_dim needs num_heads");
        }
        let hidden = known(&xd[2], "the hidden size")?;
        if hidden % (2 * half) != 0 {
            return invalid(format!(
                "hidden size {hidden} is not a multiple of the head size {}",
                2 * half
            ));
        }
        heads = hidden / (2 * half);
    }
    let interleaved = n.int("interleaved", 0) != 0;
    Ok(vec![rotate(ctx, &x, trig, heads, rot, interleaved)?])
}
