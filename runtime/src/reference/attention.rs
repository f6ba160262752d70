//! Scaled dot-product attention (`Op::Attention`), written out as loops from its definition:
//! optional rotary embedding of q and k, grouped-query head mapping, scaled scores plus bias,
//! key-padding and causal exclusion, softmax over the included keys, weighted sum of values.

use super::elementwise::element_count;
use super::fused::{broadcast_to, check_float, make};
use super::special::max_nan;
use super::util::KResult;
use crate::ops::Op;
use crate::Tensor;

/// A rank-4 shape `[B, H, S, D]`, or an error naming the input.
pub(super) fn dims4(name: &str, t: &Tensor) -> KResult<[usize; 4]> {
    match *t.shape() {
        [b, h, s, d] => Ok([b, h, s, d]),
        ref s => Err(format!("attention {name} must be rank 4, got shape {s:?}")),
    }
}

/// `x·cos + rotate_half(x)·sin` for `x: [B, H, S, D]`, with `cos`/`sin` given broadcast to
/// `[B, 1, S, D]`. `rotate_half(x) = concat(-x[..., D/2..], x[..., ..D/2])`.
pub(super) fn rotary(
    x: &[f64],
    [nb, nh, ns, nd]: [usize; 4],
    cos: &[f64],
    sin: &[f64],
) -> Vec<f64> {
    let half = nd / 2;
    let mut out = Vec::with_capacity(x.len());
    for b in 0..nb {
        for h in 0..nh {
            for s in 0..ns {
                let row = ((b * nh + h) * ns + s) * nd;
                let trig = (b * ns + s) * nd;
                for d in 0..nd {
                    let rotated = if d < half {
                        -x[row + d + half]
                    } else {
                        x[row + d - half]
                    };
                    out.push(x[row + d] * cos[trig + d] + rotated * sin[trig + d]);
                }
            }
        }
    }
    out
}

pub fn attention(op: &Op, x: &[&Tensor]) -> KResult<Tensor> {
    let Op::Attention {
        heads,
        kv_heads,
        scale,
        causal,
        bias,
        mask,
        rotary: use_rotary,
    } = *op
    else {
        return Err(format!("attention kernel given the op {}", op.name()));
    };
    let want = 3 + usize::from(bias) + usize::from(mask) + 2 * usize::from(use_rotary);
    if x.len() != want {
        return Err(format!("attention takes {want} inputs, got {}", x.len()));
    }
    let (q, k, v) = (x[0], x[1], x[2]);
    let mut rest = x[3..].iter().copied();
    let bias_t = if bias { rest.next() } else { None };
    let mask_t = if mask { rest.next() } else { None };
    let trig_t = if use_rotary {
        rest.next().zip(rest.next())
    } else {
        None
    };

    let dt = q.dtype();
    check_float("q", q, None)?;
    check_float("k", k, Some(dt))?;
    check_float("v", v, Some(dt))?;
    let [nb, nh, sq, nd] = dims4("q", q)?;
    let [kb, nkv, sk, kd] = dims4("k", k)?;
    let [vb, vkv, vs, dv] = dims4("v", v)?;
    let (heads, kv_heads) = (heads as usize, kv_heads as usize);
    if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 {
        return Err(format!(
            "attention needs heads ({heads}) to be a positive multiple of kv_heads ({kv_heads})"
        ));
    }
    if nh != heads || nkv != kv_heads || vkv != kv_heads {
        return Err(format!(
            "attention with heads={heads}, kv_heads={kv_heads} got q {:?}, k {:?}, v {:?}",
            q.shape(),
            k.shape(),
            v.shape()
        ));
    }
    if kb != nb || vb != nb || kd != nd || vs != sk {
        return Err(format!(
            "attention q {:?}, k {:?}, v {:?} disagree on batch, head dim or key length",
            q.shape(),
            k.shape(),
            v.shape()
        ));
    }

    let out_shape = vec![nb, heads, sq, dv];
    element_count(&out_shape)?;
    let bias_v = match bias_t {
        Some(t) => {
            check_float("bias", t, Some(dt))?;
            Some(broadcast_to("attention bias", t, &[nb, heads, sq, sk])?)
        }
        None => None,
    };
    // Per batch and key: may this key be attended to? Non-zero mask values attend.
    let keep: Vec<bool> = match mask_t {
        Some(m) if m.dtype().is_float() => {
            return Err(format!(
                "attention mask must be bool or integer, got {}",
                m.dtype()
            ))
        }
        Some(m) if m.shape() != [nb, sk] => {
            return Err(format!(
                "attention mask has shape {:?}, expected [B, Sk] = {:?}",
                m.shape(),
                [nb, sk]
            ))
        }
        Some(m) => m.to_bool_vec(),
        None => vec![true; nb * sk],
    };

    let (mut qv, mut kv) = (q.to_f64_vec(), k.to_f64_vec());
    if let Some((cos, sin)) = trig_t {
        check_float("cos", cos, Some(dt))?;
        check_float("sin", sin, Some(dt))?;
        if sq != sk {
            return Err(format!(
                "rotary attention requires Sq = Sk, got {sq} and {sk}"
            ));
        }
        if nd % 2 != 0 {
            return Err(format!(
                "rotary attention requires an even head dim, got {nd}"
            ));
        }
        let trig_shape = [nb, 1, sq, nd];
        let c = broadcast_to("attention cos", cos, &trig_shape)?;
        let s = broadcast_to("attention sin", sin, &trig_shape)?;
        qv = rotary(&qv, [nb, heads, sq, nd], &c, &s);
        kv = rotary(&kv, [nb, kv_heads, sk, nd], &c, &s);
    }
    let vv = v.to_f64_vec();

    let group = heads / kv_heads;
    let mut out = Vec::new();
    for b in 0..nb {
        for h in 0..heads {
            let kh = h / group;
            for i in 0..sq {
                // Scores of the included keys; None marks an excluded key.
                let scores: Vec<Option<f64>> = (0..sk)
                    .map(|j| {
                        let causal_out =
                            causal && (j as i64) > (i as i64) + (sk as i64) - (sq as i64);
                        if !keep[b * sk + j] || causal_out {
                            return None;
                        }
                        let qrow = ((b * heads + h) * sq + i) * nd;
                        let krow = ((b * kv_heads + kh) * sk + j) * nd;
                        let dot: f64 = (0..nd).map(|d| qv[qrow + d] * kv[krow + d]).sum();
                        let add = bias_v
                            .as_ref()
                            .map_or(0.0, |bv| bv[((b * heads + h) * sq + i) * sk + j]);
                        Some(dot * scale + add)
                    })
                    .collect();
                // Softmax over the included keys (max subtracted); none included gives zeros.
                let m = scores
                    .iter()
                    .flatten()
                    .copied()
                    .fold(f64::NEG_INFINITY, max_nan);
                let exps: Vec<Option<f64>> =
                    scores.iter().map(|s| s.map(|s| (s - m).exp())).collect();
                let total: f64 = exps.iter().flatten().sum();
                for e in 0..dv {
                    let mut acc = 0.0;
                    for (j, w) in exps.iter().enumerate() {
                        if let Some(w) = w {
                            acc += w / total * vv[((b * kv_heads + kh) * sk + j) * dv + e];
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    make(dt, out_shape, &out)
}
