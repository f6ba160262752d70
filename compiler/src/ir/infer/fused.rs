//! Inference for the fused ops the optimizer introduces: layer_norm, skip_layer_norm,
//! rms_norm, matmul_bias, gelu and scaled dot-product attention.

use super::super::dim::Dim;
use super::super::op::Op;
use super::super::types::{DType, Shape, TensorType};
use super::elementwise::broadcasts_to;
use super::{k, Ctx};
use crate::error::Result;

/// Checks that input `i` (`name`) has x's dtype and broadcasts to `target` (`what`).
pub(super) fn check_param(
    cx: &Ctx,
    i: usize,
    name: &str,
    target: &Shape,
    what: &str,
) -> Result<()> {
    let t = cx.same_dtype(i, 0)?;
    if t.rank() > target.rank() {
        return cx.err(format!(
            "input {i} ({name}) {} has more dims than {what} {target}",
            t.shape
        ));
    }
    if !broadcasts_to(&t.shape, target) {
        return cx.err(format!(
            "input {i} ({name}) {} does not broadcast to {what} {target}",
            t.shape
        ));
    }
    Ok(())
}

/// Checks gamma (input `first`) and the optional beta after it against `x`'s normalised dims
/// `x.shape[axis..]`.
fn check_affine(cx: &Ctx, x: &TensorType, axis: i64, first: usize) -> Result<()> {
    let ax = cx.axis(axis, x.rank())?;
    let norm = Shape(x.shape.0.get(ax..).unwrap_or_default().to_vec());
    let what = "the normalized dims";
    check_param(cx, first, "gamma", &norm, what)?;
    if cx.count() > first + 1 {
        check_param(cx, first + 1, "beta", &norm, what)?;
    }
    Ok(())
}

/// `(x, gamma, [beta])`: gamma and beta broadcast to x's normalised dims `x.shape[axis..]`.
pub(super) fn layer_norm(cx: &Ctx, axis: i64) -> Result<TensorType> {
    let x = cx.float(0)?;
    check_affine(cx, x, axis, 1)?;
    Ok(x.clone())
}

/// `(x, skip, gamma, [beta]) -> (y, sum)`: skip broadcasts to x's shape, gamma and beta to
/// x's normalised dims; both outputs have x's type.
pub(super) fn skip_layer_norm(cx: &Ctx, axis: i64) -> Result<Vec<TensorType>> {
    let x = cx.float(0)?;
    check_param(cx, 1, "skip", &x.shape, "the shape of x")?;
    check_affine(cx, x, axis, 2)?;
    Ok(vec![x.clone(), x.clone()])
}

/// `(a, b, bias)`: the type of `matmul(a, b)`; bias has its dtype and broadcasts to its shape
/// without changing it.
pub(super) fn matmul_bias(cx: &Ctx) -> Result<TensorType> {
    let y = super::linalg::matmul(cx)?;
    check_param(cx, 2, "bias", &y.shape, "the product")?;
    Ok(y)
}

/// `(x, gamma)`: gamma broadcasts to x's last dim.
pub(super) fn rms_norm(cx: &Ctx) -> Result<TensorType> {
    let x = cx.float(0)?;
    let Some(last) = x.shape.0.last() else {
        return cx.err("input 0 is a scalar; rms_norm needs rank ≥ 1");
    };
    check_param(cx, 1, "gamma", &Shape(vec![last.clone()]), "the last dim")?;
    Ok(x.clone())
}

/// Floats in, same type out.
pub(super) fn gelu(cx: &Ctx) -> Result<TensorType> {
    Ok(cx.float(0)?.clone())
}

/// Dim 1 of input `i` must be the known head count `want`.
fn check_heads(cx: &Ctx, i: usize, name: &str, dim: &Dim, want: u32) -> Result<()> {
    match dim.as_known() {
        Some(h) if h == i64::from(want) => Ok(()),
        Some(h) => cx.err(format!(
            "input {i} ({name}) has {h} heads in dim 1, expected {want}"
        )),
        None => cx.err(format!(
            "input {i} ({name}) has a symbolic head count {dim} in dim 1, expected {want}"
        )),
    }
}

/// Two dims that must be the same (`what` says which, `a` and `b` name their inputs).
fn check_same(cx: &Ctx, what: &str, (a, da): (&str, &Dim), (b, db): (&str, &Dim)) -> Result<()> {
    if da == db {
        Ok(())
    } else {
        cx.err(format!("{what} of {a} ({da}) and {b} ({db}) differ"))
    }
}

/// The four dims of a rank-4 input.
fn four(cx: &Ctx, i: usize, layout: &str) -> Result<[Dim; 4]> {
    let t = cx.rank(i, 4, layout)?;
    match t.shape.0.as_slice() {
        [a, b, c, d] => Ok([a.clone(), b.clone(), c.clone(), d.clone()]),
        _ => cx.err(format!("input {i} must have rank 4 ({layout})")),
    }
}

/// `(q, k, v, [bias], [mask], [cos, sin]) -> [B, heads, Sq, Dv]` (see [`Op::Attention`]).
pub(super) fn attention(cx: &Ctx) -> Result<TensorType> {
    let &Op::Attention {
        heads,
        kv_heads,
        bias,
        mask,
        rotary,
        ..
    } = cx.op()
    else {
        return cx.err("not an attention op");
    };
    if heads == 0 || kv_heads == 0 {
        return cx.err(format!(
            "heads ({heads}) and kv_heads ({kv_heads}) must be at least 1"
        ));
    }
    if heads % kv_heads != 0 {
        return cx.err(format!(
            "heads ({heads}) is not divisible by kv_heads ({kv_heads})"
        ));
    }
    let q = cx.float(0)?;
    cx.same_dtype(1, 0)?;
    cx.same_dtype(2, 0)?;
    let [b, qh, sq, d] = four(cx, 0, "q: [B, heads, Sq, D]")?;
    let [kb, kh, sk, kd] = four(cx, 1, "k: [B, kv_heads, Sk, D]")?;
    let [vb, vh, vsk, dv] = four(cx, 2, "v: [B, kv_heads, Sk, Dv]")?;
    check_heads(cx, 0, "q", &qh, heads)?;
    check_heads(cx, 1, "k", &kh, kv_heads)?;
    check_heads(cx, 2, "v", &vh, kv_heads)?;
    check_same(cx, "the batch sizes", ("q", &b), ("k", &kb))?;
    check_same(cx, "the batch sizes", ("q", &b), ("v", &vb))?;
    check_same(cx, "the head sizes", ("q", &d), ("k", &kd))?;
    check_same(cx, "the sequence lengths", ("k", &sk), ("v", &vsk))?;
    let mut next = 3;
    if bias {
        let target = Shape(vec![b.clone(), k(i64::from(heads)), sq.clone(), sk.clone()]);
        check_param(cx, next, "bias", &target, "[B, heads, Sq, Sk] =")?;
        next += 1;
    }
    if mask {
        let m = cx.dtype(
            next,
            |t| t == DType::Bool || t.is_int(),
            "a bool or integer mask",
        )?;
        if m.shape.0 != [b.clone(), sk.clone()] {
            return cx.err(format!(
                "input {next} (mask) has shape {}, expected [B, Sk] = [{b}, {sk}]",
                m.shape
            ));
        }
        next += 1;
    }
    if rotary {
        check_same(
            cx,
            "the sequence lengths (rotary needs Sq = Sk)",
            ("q", &sq),
            ("k", &sk),
        )?;
        if d.as_known().is_some_and(|v| v % 2 != 0) {
            return cx.err(format!("rotary needs an even head size, got {d}"));
        }
        let target = Shape(vec![b.clone(), k(1), sq.clone(), d.clone()]);
        check_param(cx, next, "cos", &target, "[B, 1, S, D] =")?;
        check_param(cx, next + 1, "sin", &target, "[B, 1, S, D] =")?;
    }
    Ok(TensorType::new(
        q.dtype,
        Shape(vec![b, k(i64::from(heads)), sq, dv]),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::super::op::GeluApprox;
    use super::super::testing::{err, ok};
    use super::*;

    fn ln(axis: i64) -> Op {
        Op::LayerNorm { axis, eps: 1e-5 }
    }

    #[test]
    fn layer_norm_types() {
        let x = "f32[batch, seq, 384]";
        assert_eq!(
            ok(&ln(-1), &[x, "f32[384]", "f32[384]"]),
            "f32[batch, seq, 384]"
        );
        assert_eq!(ok(&ln(1), &[x, "f32[1, 384]"]), "f32[batch, seq, 384]");
        assert_eq!(ok(&ln(1), &[x, "f32[seq, 384]"]), "f32[batch, seq, 384]");
        assert_eq!(
            err(&ln(-1), &[x, "f32[seq, 384]"]),
            "layer_norm: input 1 (gamma) [seq, 384] has more dims than the normalized dims \
             [384]"
        );
        assert_eq!(
            err(&ln(-1), &[x, "f32[384]", "f32[256]"]),
            "layer_norm: input 2 (beta) [256] does not broadcast to the normalized dims [384]"
        );
        assert_eq!(
            err(&ln(-1), &[x, "f16[384]"]),
            "layer_norm: input 1 has dtype f16, expected the dtype of input 0 (f32)"
        );
        assert!(err(&ln(3), &[x, "f32[384]"]).contains("axis 3 is out of range for rank 3"));
        assert!(err(&ln(0), &["i32[4]", "i32[4]"]).contains("expected a float dtype"));
    }

    #[test]
    fn rms_norm_and_gelu() {
        let rms = Op::RmsNorm { eps: 1e-6 };
        assert_eq!(
            ok(&rms, &["bf16[batch, seq, d]", "bf16[d]"]),
            "bf16[batch, seq, d]"
        );
        assert_eq!(ok(&rms, &["f32[batch, 8]", "f32[]"]), "f32[batch, 8]");
        assert_eq!(
            err(&rms, &["f32[batch, 8]", "f32[4]"]),
            "rms_norm: input 1 (gamma) [4] does not broadcast to the last dim [8]"
        );
        assert!(err(&rms, &["f32[batch, 8]", "f32[1, 8]"]).contains("more dims"));
        assert!(err(&rms, &["f32[]", "f32[]"]).contains("scalar"));
        let gelu = Op::Gelu {
            approx: GeluApprox::Tanh,
        };
        assert_eq!(
            ok(&gelu, &["f16[batch, seq+1, 1536]"]),
            "f16[batch, seq+1, 1536]"
        );
        assert_eq!(
            err(&gelu, &["i64[2]"]),
            "gelu: input 0 has dtype i64, expected a float dtype"
        );
    }
}
