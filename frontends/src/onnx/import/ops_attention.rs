//! ONNX `Attention` (opsets 23–25) importer.
//!
//! Attention lowers onto the IR `attention` op: the mask, the offset-aware causal frontier,
//! the sliding window and `nonpad_kv_seqlen` all become one additive bias (the IR `causal` flag
//! is used when it is the only restriction and its alignment matches), and rows whose bias is
//! all `-inf` are zeroed as ONNX requires. Softcap and the `qk_matmul_output` output need the
//! intermediate scores, so those nodes are decomposed into matmul / softmax ops instead.

use super::ctx::{invalid, unsupported, Ctx, NResult, NodeError, Operand};
use super::node::NodeView;
use super::ops_nn::{attr_dtype, bin, float_input, reduce, reshape, scalar_like, un};
use super::ops_rotary::{dims, known, repeat_heads, split_heads};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op, PadMode, ReduceOp, UnaryOp};
use kiln_runtime::Tensor;

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("Attention", attention);
}

/// Q, K, V in the `[B, H, S, D]` layout, the past already prepended to K and V.
struct Qkv {
    q: Operand,
    k: Operand,
    v: Operand,
    heads: i64,
    kv_heads: i64,
    /// Sequence length of the new keys (without the past).
    new_keys: Dim,
    past_len: Dim,
}

fn qkv(ctx: &mut Ctx, n: &NodeView, rank: usize) -> NResult<Qkv> {
    let q = float_input(ctx, n, 0)?;
    let (k, v) = (float_input(ctx, n, 1)?, float_input(ctx, n, 2)?);
    if ctx.ty(&k).rank() != rank || ctx.ty(&v).rank() != rank || !(rank == 3 || rank == 4) {
        return invalid("Q, K and V must all be 3-D or all 4-D");
    }
    let has_heads = n.attr("q_num_heads").is_some() || n.attr("kv_num_heads").is_some();
    if rank == 4 && has_heads && n.opset >= 25 {
        return invalid("q_num_heads and kv_num_heads must not be given for 4-D inputs");
    }
    let (q, k, v) = if rank == 3 {
        let (qh, kvh) = (n.req_int("q_num_heads")?, n.req_int("kv_num_heads")?);
        let q = split_heads(ctx, &q, qh, "Q")?;
        (
            q,
            split_heads(ctx, &k, kvh, "K")?,
            split_heads(ctx, &v, kvh, "V")?,
        )
    } else {
        (q, k, v)
    };
    let (qd, kd) = (dims(ctx, &q), dims(ctx, &k));
    let heads = known(&qd[1], "Q's head count")?;
    let kv_heads = known(&kd[1], "K's head count")?;
    if kv_heads < 1 || heads % kv_heads != 0 {
        return invalid(format!(
            "{heads} query heads are not a multiple of {kv_heads} kv heads"
        ));
    }
    let new_keys = kd[2].clone();
    let (k, v, past_len) = match (n.opt_input(4), n.opt_input(5)) {
        (Some(pk), Some(pv)) => {
            let no_rank = || NodeError::Invalid("past_key must be 4-D".into());
            let len = dims(ctx, pk).get(2).cloned().ok_or_else(no_rank)?;
            let k = ctx.emit1(Op::Concat { axis: 2 }, &[pk.clone(), k])?;
            let v = ctx.emit1(Op::Concat { axis: 2 }, &[pv.clone(), v])?;
            (k, v, len)
        }
        (None, None) => (k, v, Dim::known(0)),
        _ => return invalid("past_key and past_value must be given together"),
    };
    Ok(Qkv {
        q,
        k,
        v,
        heads,
        kv_heads,
        new_keys,
        past_len,
    })
}

/// `Range(0, n)` as i64, viewed with `shape`.
fn iota(ctx: &mut Ctx, n: &Dim, shape: Vec<Dim>) -> NResult<Operand> {
    let (start, delta) = (Dim::known(0), Dim::known(1));
    let op = Op::Range {
        start,
        limit: n.clone(),
        delta,
        dtype: DType::I64,
    };
    let r = ctx.emit1(op, &[])?;
    reshape(ctx, &r, shape)
}

/// `where(allowed, 0, -inf)` in dtype `dt`.
fn to_bias(ctx: &mut Ctx, allowed: &Operand, dt: DType) -> NResult<Operand> {
    let zero = ctx.scalar(0.0, dt)?;
    let ninf = ctx.scalar(f64::NEG_INFINITY, dt)?;
    ctx.emit1(Op::Where, &[allowed.clone(), zero, ninf])
}

/// `a op b`, or just `b` when there is no `a` yet.
fn combine(
    ctx: &mut Ctx,
    op: BinaryOp,
    a: Option<Operand>,
    b: Operand,
) -> NResult<Option<Operand>> {
    Ok(Some(match a {
        Some(a) => bin(ctx, op, &a, &b)?,
        None => b,
    }))
}

/// The structural restrictions as a bool `allowed` tensor broadcastable to `[B, 1, Sq, Sk]`:
/// query `i` sits at absolute position `p = i + offset` (offset = the past length, or with an
/// external cache `nonpad_kv_seqlen - Sq` per batch); causal keeps keys `j ≤ p`, the window
/// `p - left ≤ j ≤ p + right`, and `nonpad_kv_seqlen` keys `j < nonpad`.
fn structural(
    ctx: &mut Ctx,
    n: &NodeView,
    a: &Qkv,
    causal: bool,
    (left, right): (i64, i64),
) -> NResult<Option<Operand>> {
    let (qd, sk) = (dims(ctx, &a.q), dims(ctx, &a.k)[2].clone());
    let (b, sq, one) = (&qd[0], &qd[2], Dim::known(1));
    let nonpad = match n.opt_input(6) {
        Some(np) => {
            let np = ctx.emit1(Op::Cast { to: DType::I64 }, std::slice::from_ref(np))?;
            Some(reshape(
                ctx,
                &np,
                vec![b.clone(), one.clone(), one.clone()],
            )?)
        }
        None => None,
    };
    let mut allowed = None;
    if causal || left >= 0 || right >= 0 {
        let i = iota(ctx, sq, vec![sq.clone(), one.clone()])?;
        let pos = match &nonpad {
            Some(np) => {
                let s = ctx.emit1(
                    Op::Dims {
                        values: vec![sq.clone()],
                    },
                    &[],
                )?;
                let o = bin(ctx, BinaryOp::Sub, np, &s)?;
                bin(ctx, BinaryOp::Add, &i, &o)?
            }
            None if a.past_len.as_known() == Some(0) => i,
            None => {
                let o = ctx.emit1(
                    Op::Dims {
                        values: vec![a.past_len.clone()],
                    },
                    &[],
                )?;
                bin(ctx, BinaryOp::Add, &i, &o)?
            }
        };
        let j = iota(ctx, &sk, vec![one.clone(), sk.clone()])?;
        let diff = bin(ctx, BinaryOp::Sub, &pos, &j)?;
        let bounds = [
            (causal, BinaryOp::Ge, 0),
            (left >= 0, BinaryOp::Le, left),
            (right >= 0, BinaryOp::Ge, -right),
        ];
        for (on, cmp, v) in bounds {
            if on {
                let c = ctx.scalar(v as f64, DType::I64)?;
                let ok = bin(ctx, cmp, &diff, &c)?;
                allowed = combine(ctx, BinaryOp::And, allowed, ok)?;
            }
        }
    }
    if let Some(np) = &nonpad {
        let j = iota(ctx, &sk, vec![one.clone(), sk.clone()])?;
        let ok = bin(ctx, BinaryOp::Lt, &j, np)?;
        allowed = combine(ctx, BinaryOp::And, allowed, ok)?;
    }
    let Some(al) = allowed else { return Ok(None) };
    let d = dims(ctx, &al);
    if d.len() == 3 {
        return Ok(Some(reshape(
            ctx,
            &al,
            vec![d[0].clone(), one, d[1].clone(), d[2].clone()],
        )?));
    }
    Ok(Some(al))
}

/// The user mask as an additive bias of dtype `dt`, padded with `-inf` up to `sk` keys.
fn mask_bias(ctx: &mut Ctx, m: &Operand, dt: DType, sk: &Dim) -> NResult<Operand> {
    let t = ctx.ty(m);
    let bias = match t.dtype {
        DType::Bool => to_bias(ctx, m, dt)?,
        d if d == dt => m.clone(),
        d if d.is_float() => ctx.emit1(Op::Cast { to: dt }, std::slice::from_ref(m))?,
        d => return unsupported(format!("attn_mask of dtype {d} (only bool or float masks)")),
    };
    let Some(last) = t.shape.0.last() else {
        return invalid("attn_mask is a scalar");
    };
    if last == sk {
        return Ok(bias);
    }
    let (Some(l), Some(s)) = (last.as_known(), sk.as_known()) else {
        return unsupported(format!(
            "attn_mask has {last} keys and the keys are {sk}: cannot tell how much to pad"
        ));
    };
    if l > s {
        return invalid(format!("attn_mask has {l} keys, more than the {s} keys"));
    }
    let mut pads = vec![0; 2 * t.rank()];
    pads[2 * t.rank() - 1] = s - l;
    ctx.emit1(
        Op::Pad {
            pads,
            mode: PadMode::Constant,
            value: f64::NEG_INFINITY,
        },
        &[bias],
    )
}

/// Rows of the bias that are `-inf` everywhere (bool `[..., Sq, 1]`), unless provably none.
fn empty_rows(ctx: &mut Ctx, bias: &Operand, dt: DType) -> NResult<Option<Operand>> {
    let m = reduce(ctx, ReduceOp::Max, bias, vec![-1])?;
    let ninf = ctx.scalar(f64::NEG_INFINITY, dt)?;
    let e = bin(ctx, BinaryOp::Eq, &m, &ninf)?;
    let never = ctx
        .const_tensor(&e)
        .is_some_and(|t| t.to_bool_vec().iter().all(|x| !x));
    Ok((!never).then_some(e))
}

/// `where(rows, 0, x)`: zeroes the rows that attend to nothing.
fn zero_rows(ctx: &mut Ctx, rows: Option<&Operand>, x: Operand) -> NResult<Operand> {
    match rows {
        Some(e) => {
            let z = scalar_like(ctx, 0.0, &x)?;
            ctx.emit1(Op::Where, &[e.clone(), z, x])
        }
        None => Ok(x),
    }
}

/// Softcap and `qk_matmul_output` as explicit ops: `(Q·r)(K·r)ᵀ`, softcap, `+ bias`, softmax
/// (in `softmax_precision`), empty rows zeroed, `· V`. Returns `Y` and the requested scores.
fn decomposed(
    ctx: &mut Ctx,
    n: &NodeView,
    a: &Qkv,
    root: &Operand,
    bias: Option<&Operand>,
    rows: Option<&Operand>,
) -> NResult<(Operand, Operand)> {
    let dt = ctx.ty(&a.q).dtype;
    let (softcap, mode) = (
        f64::from(n.float("softcap", 0.0)),
        n.int("qk_matmul_output_mode", 0),
    );
    if !(0..=3).contains(&mode) {
        return invalid(format!("qk_matmul_output_mode must be 0..3, got {mode}"));
    }
    if mode == 0 && softcap > 0.0 && n.node.output.get(3).is_some_and(|s| !s.is_empty()) {
        return unsupported(
            "qk_matmul_output_mode 0 with softcap (raw vs softcapped scores is ambiguous)",
        );
    }
    let qs = bin(ctx, BinaryOp::Mul, &a.q, root)?;
    let ks = bin(ctx, BinaryOp::Mul, &a.k, root)?;
    let ks = repeat_heads(ctx, &ks, a.heads / a.kv_heads)?;
    let vr = repeat_heads(ctx, &a.v, a.heads / a.kv_heads)?;
    let kt = ctx.emit1(
        Op::Transpose {
            perm: vec![0, 1, 3, 2],
        },
        &[ks],
    )?;
    let mut qk = ctx.emit1(Op::MatMul, &[qs, kt])?;
    if softcap > 0.0 {
        let c = ctx.scalar(softcap, dt)?;
        let t = bin(ctx, BinaryOp::Div, &qk, &c)?;
        let t = un(ctx, UnaryOp::Tanh, &t)?;
        qk = bin(ctx, BinaryOp::Mul, &t, &c)?;
    }
    let raw = qk.clone();
    if let Some(bb) = bias {
        qk = bin(ctx, BinaryOp::Add, &qk, bb)?;
    }
    let with_bias = qk.clone();
    let sm_dt = match n.attr("softmax_precision") {
        Some(at) => attr_dtype(at.i)?,
        None => dt,
    };
    if sm_dt != dt {
        qk = ctx.emit1(Op::Cast { to: sm_dt }, &[qk])?;
    }
    let mut p = ctx.emit1(Op::Softmax { axis: -1 }, &[qk])?;
    p = zero_rows(ctx, rows, p)?;
    if sm_dt != dt {
        p = ctx.emit1(Op::Cast { to: dt }, &[p])?;
    }
    let y = ctx.emit1(Op::MatMul, &[p.clone(), vr])?;
    Ok((y, [raw.clone(), raw, with_bias, p][mode as usize].clone()))
}

fn attention(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let rank = ctx.ty(n.input(0)?).rank();
    let a = qkv(ctx, n, rank)?;
    if n.opt_input(6).is_some() && n.opt_input(4).is_some() {
        return invalid("nonpad_kv_seqlen cannot be combined with past_key / past_value");
    }
    let (qd, sk) = (dims(ctx, &a.q), dims(ctx, &a.k)[2].clone());
    let dt = ctx.ty(&a.q).dtype;
    // Scores are (Q·√s)(K·√s)ᵀ with √s rounded to the input dtype, as the reference does.
    let scale = match n.attr("scale") {
        Some(at) => f64::from(at.f),
        None => 1.0 / (known(&qd[3], "the head size (for the default scale)")? as f64).sqrt(),
    };
    let root = Tensor::from_f64_values(dt, vec![], &[scale.sqrt()])?.to_f64_vec()[0];
    let causal = n.int("is_causal", 0) != 0;
    let window = (
        n.int("left_window_size", -1),
        n.int("right_window_size", -1),
    );
    let mask = n.opt_input(3);
    let want_qk = n.node.output.get(3).is_some_and(|s| !s.is_empty());
    let fused = n.float("softcap", 0.0) <= 0.0 && !want_qk;
    // The IR's causal flag is bottom-right aligned (offset Sk - Sq): it fits when the new keys
    // are as many as the queries and nothing else restricts the keys.
    let simple = fused && mask.is_none() && n.opt_input(6).is_none() && window == (-1, -1);
    let ir_causal = causal && simple && a.new_keys == qd[2];
    let mut bias = match mask {
        Some(m) => Some(mask_bias(ctx, m, dt, &sk)?),
        None => None,
    };
    if let Some(al) = structural(ctx, n, &a, causal && !ir_causal, window)? {
        let sb = to_bias(ctx, &al, dt)?;
        bias = combine(ctx, BinaryOp::Add, bias, sb)?;
    }
    let rows = match &bias {
        Some(bb) => empty_rows(ctx, bb, dt)?,
        None => None,
    };
    let (y, qk) = if fused {
        let mut ins = vec![a.q.clone(), a.k.clone(), a.v.clone()];
        ins.extend(bias.clone());
        let op = Op::Attention {
            heads: a.heads as u32,
            kv_heads: a.kv_heads as u32,
            scale: root * root,
            causal: ir_causal,
            bias: bias.is_some(),
            mask: false,
            rotary: false,
        };
        let y = ctx.emit1(op, &ins)?;
        (zero_rows(ctx, rows.as_ref(), y)?, None)
    } else {
        let r = ctx.scalar(root, dt)?;
        let (y, qk) = decomposed(ctx, n, &a, &r, bias.as_ref(), rows.as_ref())?;
        (y, Some(qk))
    };
    let y = if rank == 3 {
        let t = ctx.emit1(
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            &[y],
        )?;
        let dv = dims(ctx, &t)[3].mul(&Dim::known(a.heads));
        reshape(ctx, &t, vec![qd[0].clone(), qd[2].clone(), dv])?
    } else {
        y
    };
    let mut outs = vec![y, a.k, a.v];
    outs.extend(qk);
    Ok(outs)
}
