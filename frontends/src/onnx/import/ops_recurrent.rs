//! The stateful sequence ops of linear-attention models (Gated DeltaNet, Mamba).
//! `LinearAttention` is its recurrence unrolled over the (import-time known) sequence length:
//! per token, the state `[B, H_kv, d_k, d_v]` is decayed (gated rules), corrected by the delta
//! rule, grown by the outer product `k ⊗ v`, and read by the query with a matmul, in f32.
//! `CausalConvWithState` is its unfused pattern: the past state (zeros when absent) joined
//! before the input, a depthwise `Conv` without padding, the optional SiLU, and the last `k - 1`
//! positions of the joined input as the present state.

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_util::{binary, cast, dims, dtype, reshape, scale, transpose, unary};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op, PadMode, UnaryOp};

/// Sequences longer than this are refused (the unrolled graph grows with the length).
const MAX_STEPS: i64 = 256;

/// Registers the importer.
pub fn register(r: &mut Registry) {
    r.add("LinearAttention", linear_attention);
    r.add("CausalConvWithState", causal_conv);
}

/// `[B, T, H·D] → [B, H, T, D]` (f32).
fn unpack(ctx: &mut Ctx, x: &Operand, heads: i64, what: &str) -> NResult<Operand> {
    let d = dims(ctx, x);
    let Some(hd) = d.get(2).and_then(Dim::as_known) else {
        return unsupported(format!("LinearAttention {what} with an unknown last dim"));
    };
    if d.len() != 3 || hd % heads != 0 {
        return invalid(format!(
            "LinearAttention {what} of shape {} does not split into {heads} heads",
            ctx.ty(x).shape
        ));
    }
    let shape = vec![
        d[0].clone(),
        d[1].clone(),
        Dim::known(heads),
        Dim::known(hd / heads),
    ];
    let x = reshape(ctx, x, shape)?;
    let x = transpose(ctx, &x, vec![0, 2, 1, 3])?;
    cast(ctx, &x, DType::F32)
}

/// Token `i` of a `[B, H, T, D]` tensor, as `[B, H, 1, D]`.
fn token(ctx: &mut Ctx, x: &Operand, i: i64) -> NResult<Operand> {
    ctx.emit1(
        Op::Slice {
            axes: vec![2],
            starts: vec![Dim::known(i)],
            ends: vec![Dim::known(i + 1)],
            steps: vec![1],
        },
        std::slice::from_ref(x),
    )
}

fn bin(ctx: &mut Ctx, op: BinaryOp, a: &Operand, b: &Operand) -> NResult<Operand> {
    binary(ctx, op, a, b)
}

fn linear_attention(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let rule = n.string("update_rule", "gated_delta");
    let (gating, delta) = match rule.as_str() {
        "linear" => (false, false),
        "gated" => (true, false),
        "delta" => (false, true),
        "gated_delta" => (true, true),
        r => return unsupported(format!("LinearAttention update_rule `{r}`")),
    };
    let hq = n.req_int("q_num_heads")?;
    let hkv = n.req_int("kv_num_heads")?;
    if hq <= 0 || hkv <= 0 || hq % hkv != 0 {
        return invalid(format!(
            "q_num_heads {hq} must be a positive multiple of kv_num_heads {hkv}"
        ));
    }
    let (decay, beta) = (n.opt_input(4).cloned(), n.opt_input(5).cloned());
    if gating != decay.is_some() || delta != beta.is_some() {
        return invalid(format!(
            "LinearAttention update_rule `{rule}` needs decay iff gated and beta iff delta"
        ));
    }
    let query = n.input(0)?.clone();
    let out_dt = dtype(ctx, &query);
    if !out_dt.is_float() {
        return invalid(format!("LinearAttention takes float tensors, got {out_dt}"));
    }
    let qd = dims(ctx, &query);
    let Some(t) = qd.get(1).and_then(Dim::as_known) else {
        return unsupported("LinearAttention with a sequence length unknown at import");
    };
    if t > MAX_STEPS {
        return unsupported(format!(
            "LinearAttention over {t} tokens (at most {MAX_STEPS} are unrolled)"
        ));
    }
    let q = unpack(ctx, &query, hq, "query")?;
    let k = unpack(ctx, n.input(1)?, hkv, "key")?;
    let v = unpack(ctx, n.input(2)?, hkv, "value")?;
    let b = qd[0].clone();
    let (dk, dv) = (dims(ctx, &q)[3].clone(), dims(ctx, &v)[3].clone());
    let Some(dkn) = dk.as_known() else {
        return unsupported("LinearAttention with unknown head size");
    };
    if dims(ctx, &k)[3] != dk {
        return invalid("LinearAttention query and key head sizes differ");
    }
    let state_shape = vec![b.clone(), Dim::known(hkv), dk.clone(), dv.clone()];
    let (mut state, state_dt) = match n.opt_input(3) {
        Some(p) => {
            if dims(ctx, p) != state_shape {
                return invalid(format!(
                    "LinearAttention past_state {} does not match {state_shape:?}",
                    ctx.ty(p).shape
                ));
            }
            (cast(ctx, p, DType::F32)?, dtype(ctx, p))
        }
        None => {
            let z = ctx.scalar(0.0, DType::F32)?;
            let s = ctx.emit1(
                Op::Expand {
                    shape: state_shape.clone(),
                },
                &[z],
            )?;
            (s, out_dt)
        }
    };
    // Decay as exp(g) `[B, H_kv, T, 1 | d_k]`; beta `[B, H_kv | 1, T, 1]`.
    let gate = match &decay {
        Some(g) => {
            let last = dims(ctx, g).get(2).and_then(Dim::as_known);
            let g4 = if last == Some(hkv) {
                let gd = dims(ctx, g);
                let g = reshape(
                    ctx,
                    g,
                    vec![gd[0].clone(), gd[1].clone(), Dim::known(hkv), Dim::known(1)],
                )?;
                let g = transpose(ctx, &g, vec![0, 2, 1, 3])?;
                cast(ctx, &g, DType::F32)?
            } else if last == Some(hkv * dkn) {
                unpack(ctx, g, hkv, "decay")?
            } else {
                return unsupported(format!(
                    "LinearAttention decay of shape {}",
                    ctx.ty(g).shape
                ));
            };
            Some(unary(ctx, UnaryOp::Exp, &g4)?)
        }
        None => None,
    };
    let beta4 = match &beta {
        Some(be) => {
            let bd = dims(ctx, be);
            let last = bd.get(2).and_then(Dim::as_known);
            if bd.len() != 3 || !(last == Some(hkv) || last == Some(1)) {
                return unsupported(format!(
                    "LinearAttention beta of shape {}",
                    ctx.ty(be).shape
                ));
            }
            let shape = vec![bd[0].clone(), bd[1].clone(), bd[2].clone(), Dim::known(1)];
            let be = reshape(ctx, be, shape)?;
            let be = transpose(ctx, &be, vec![0, 2, 1, 3])?;
            Some(cast(ctx, &be, DType::F32)?)
        }
        None => None,
    };
    let sc = match n.float("scale", 0.0) {
        0.0 => 1.0 / (dkn as f64).sqrt(),
        s => f64::from(s),
    };
    let group = hq / hkv;
    let mut outs = Vec::new();
    for i in 0..t {
        let k_t = token(ctx, &k, i)?;
        let mut v_t = token(ctx, &v, i)?;
        if let Some(g) = &gate {
            let g_t = token(ctx, g, i)?;
            let g_t = transpose(ctx, &g_t, vec![0, 1, 3, 2])?;
            state = bin(ctx, BinaryOp::Mul, &state, &g_t)?;
        }
        if let Some(be) = &beta4 {
            let got = ctx.emit1(Op::MatMul, &[k_t.clone(), state.clone()])?;
            let diff = bin(ctx, BinaryOp::Sub, &v_t, &got)?;
            let b_t = token(ctx, be, i)?;
            v_t = bin(ctx, BinaryOp::Mul, &b_t, &diff)?;
        }
        let kc = transpose(ctx, &k_t, vec![0, 1, 3, 2])?;
        let outer = ctx.emit1(Op::MatMul, &[kc, v_t])?;
        state = bin(ctx, BinaryOp::Add, &state, &outer)?;
        let read = if group == 1 {
            state.clone()
        } else {
            let s5 = vec![
                b.clone(),
                Dim::known(hkv),
                Dim::known(1),
                dk.clone(),
                dv.clone(),
            ];
            let s = reshape(ctx, &state, s5.clone())?;
            let mut e5 = s5;
            e5[2] = Dim::known(group);
            let s = ctx.emit1(Op::Expand { shape: e5 }, &[s])?;
            let hq_shape = vec![b.clone(), Dim::known(hq), dk.clone(), dv.clone()];
            reshape(ctx, &s, hq_shape)?
        };
        let q_t = token(ctx, &q, i)?;
        let o = ctx.emit1(Op::MatMul, &[q_t, read])?;
        outs.push(scale(ctx, &o, sc)?);
    }
    let o = if outs.len() == 1 {
        outs.remove(0)
    } else {
        ctx.emit1(Op::Concat { axis: 2 }, &outs)?
    };
    let o = transpose(ctx, &o, vec![0, 2, 1, 3])?;
    let o = reshape(ctx, &o, vec![b, Dim::known(t), Dim::known(hq).mul(&dv)])?;
    let o = cast(ctx, &o, out_dt)?;
    let present = cast(ctx, &state, state_dt)?;
    Ok(vec![o, present])
}

fn causal_conv(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?.clone();
    let w = n.input(1)?.clone();
    let silu = match n.string("activation", "none").as_str() {
        "none" => false,
        "silu" | "swish" => true,
        a => return unsupported(format!("CausalConvWithState activation `{a}`")),
    };
    let (xd, wd) = (dims(ctx, &x), dims(ctx, &w));
    if xd.len() != 3 || wd.len() != 3 {
        return invalid("CausalConvWithState takes rank-3 input and weight");
    }
    let dt = dtype(ctx, &x);
    if !dt.is_float() {
        return unsupported(format!("CausalConvWithState on {dt} data"));
    }
    let (Some(c), Some(k)) = (xd[1].as_known(), wd[2].as_known()) else {
        return unsupported("CausalConvWithState with channels or kernel size unknown at import");
    };
    if k < 1 || wd[1].as_known() != Some(1) || wd[0].as_known() != Some(c) {
        return invalid(format!(
            "CausalConvWithState weight {} does not match {c} channels",
            ctx.ty(&w).shape
        ));
    }
    let padded = match n.opt_input(3) {
        Some(past) => {
            let pd = dims(ctx, past);
            if pd.len() != 3 || pd[2].as_known() != Some(k - 1) {
                return invalid(format!(
                    "CausalConvWithState past_state {} must hold k - 1 = {} positions",
                    ctx.ty(past).shape,
                    k - 1
                ));
            }
            ctx.emit1(Op::Concat { axis: 2 }, &[past.clone(), x.clone()])?
        }
        None => ctx.emit1(
            Op::Pad {
                pads: vec![0, 0, k - 1, 0, 0, 0],
                mode: PadMode::Constant,
                value: 0.0,
            },
            std::slice::from_ref(&x),
        )?,
    };
    let mut ins = vec![padded.clone(), w];
    if let Some(b) = n.opt_input(2) {
        ins.push(b.clone());
    }
    let mut y = ctx.emit1(
        Op::Conv {
            strides: vec![1],
            pads: vec![0, 0],
            dilations: vec![1],
            group: c,
        },
        &ins,
    )?;
    if silu {
        // The reference applies the activation in f32 for half-precision data.
        let wide = if matches!(dt, DType::F16 | DType::BF16) {
            DType::F32
        } else {
            dt
        };
        let yw = cast(ctx, &y, wide)?;
        let s = unary(ctx, UnaryOp::Sigmoid, &yw)?;
        let yw = binary(ctx, BinaryOp::Mul, &yw, &s)?;
        y = cast(ctx, &yw, dt)?;
    }
    let len = dims(ctx, &padded)[2].clone();
    let start = len.sub(&Dim::known(k - 1));
    let present = ctx.emit1(
        Op::Slice {
            axes: vec![2],
            starts: vec![start],
            ends: vec![len],
            steps: vec![1],
        },
        &[padded],
    )?;
    Ok(vec![y, present])
}
