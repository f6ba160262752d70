//! Attention recognition: `Softmax(Q·Kᵀ·scale + bias) · V` in the spellings of the BERT, ViT,
//! DistilBERT, GPT-2, OPT, BLOOM and Llama exports becomes one `attention` op.
//!
//! The root is the `MatMul(P, V)`. From there:
//! - P is `Softmax(S)` over the last axis, optionally behind SDPA's NaN guard
//!   `Where(IsNaN(p), 0, p)` (the fused op gives zeros for a row with every key masked, which
//!   is what the guard produces), or a 3-D `[B·H, Sq, Sk]` reshape of such a 4-D softmax
//!   (BLOOM's `baddbmm`/`bmm`), in which case q, k, v and the result are viewed as 4-D.
//! - S is a sum of the scores and additive terms, in any grouping; the scores are
//!   `MatMul(Q, Kᵀ)` scaled by constants anywhere — after the product (`Mul`/`Div`), or split
//!   onto Q and Kᵀ as `√scale` each (SDPA) — possibly in 3-D behind a reshape.
//!   `Where(c, S, ≤ -1e30)` on the scores masks with condition c.
//! - Kᵀ becomes K (see [`attention_qkv`](super::attention_qkv)); repeated K/V heads become
//!   `kv_heads`; q and k rotated by the same `rotate_half` embedding become `rotary`.
//! - Additive terms that are masks (`Where(c, 0, min)`, `(1 - m)·min`) whose condition splits
//!   into causal and key-padding parts become `causal` and the `[B, Sk]` mask; any other term
//!   (ALiBi, relative position bias, a mask we cannot read) is summed into `bias`.
//!
//! Guards: the softmax is over the last axis; the scores are 4-D `[B, H, Sq, Sk]` with a known
//! head count; every scale factor is a one-element constant; q, k, v have matching head
//! sizes (checked by type inference of the fused op, whose type must equal the root's).
//! Exactness: the fused op equals the unfused graph except in rows where every key is masked
//! out, where an exporter's `finfo.min` fill averages V uniformly and the fused op (like SDPA
//! with its NaN guard) gives zeros.

use super::attention_mask::{additive_condition, classify, key_mask, MASKED};
use super::attention_qkv::{
    dims, repeated_heads, rotary, transposed_source, untranspose3, untranspose4, view,
};
use super::{bin, comm, nodes, push_unique, same, Arg, Diag, Recipe};
use crate::egraph::analysis::scalar;
use crate::egraph::lang::KEGraph;
use crate::ir::{BinaryOp, Dim, Op, UnaryOp};
use egg::Id;

/// How deep the score expression is searched (adds, scales, reshapes).
const MAX_DEPTH: usize = 8;

/// A reading of the score expression.
#[derive(Debug, Clone)]
struct Scores {
    /// The left operand of the score MatMul.
    q: Id,
    /// The right operand (Kᵀ).
    kt: Id,
    /// The MatMul is 3-D (`[B·H, …]`).
    three: bool,
    /// The product of all scale constants.
    scale: f64,
    /// Additive terms, with whether each is 3-D.
    terms: Vec<(Id, bool)>,
    /// Conditions of `Where` masks applied to the scores.
    conds: Vec<Id>,
}

/// The classes of `p` with a scalar-constant factor pulled out: `(x, factor)`.
fn scaled(eg: &KEGraph, p: Id) -> Vec<(Id, f64)> {
    let mut out: Vec<(Id, f64)> = Vec::new();
    for (x, c) in comm(eg, p, BinaryOp::Mul) {
        if let Some(v) = scalar(eg, c) {
            out.push((x, v));
        }
    }
    for (x, c) in bin(eg, p, BinaryOp::Div) {
        if let Some(v) = scalar(eg, c).filter(|v| *v != 0.0) {
            out.push((x, 1.0 / v));
        }
    }
    if out.is_empty() {
        out.push((p, 1.0));
    }
    out
}

/// Readings of class `s` (dims `shape4`, or `[B·H, Sq, Sk]` when `three`) as scores.
fn parse(eg: &KEGraph, s: Id, shape4: &[Dim; 4], three: bool, depth: usize) -> Vec<Scores> {
    let mut out = Vec::new();
    if depth > MAX_DEPTH {
        return out;
    }
    for (a, t) in comm(eg, s, BinaryOp::Add) {
        for mut sc in parse(eg, a, shape4, three, depth + 1) {
            sc.terms.push((t, three));
            out.push(sc);
        }
    }
    for (x, f) in scaled(eg, s) {
        if x == s {
            continue;
        }
        for mut sc in parse(eg, x, shape4, three, depth + 1) {
            sc.scale *= f;
            out.push(sc);
        }
    }
    if !three {
        for (_, c) in nodes(eg, s, |o| *o == Op::Where) {
            if scalar(eg, c[2]).is_some_and(|m| m <= MASKED) {
                for mut sc in parse(eg, c[1], shape4, three, depth + 1) {
                    sc.conds.push(c[0]);
                    out.push(sc);
                }
            }
        }
        let [b, h, sq, sk] = shape4;
        let flat = [b.mul(h), sq.clone(), sk.clone()];
        for (_, c) in nodes(eg, s, |o| matches!(o, Op::Reshape { .. })) {
            if dims(eg, c[0]).as_deref() == Some(&flat[..]) {
                out.extend(parse(eg, c[0], shape4, true, depth + 1));
            }
        }
    }
    for (_, c) in nodes(eg, s, |o| *o == Op::MatMul) {
        for (q, fq) in scaled(eg, c[0]) {
            for (kt, fk) in scaled(eg, c[1]) {
                out.push(Scores {
                    q,
                    kt,
                    three,
                    scale: fq * fk,
                    terms: Vec::new(),
                    conds: Vec::new(),
                });
            }
        }
    }
    out
}

/// The softmax inputs behind probabilities `p` (through the NaN guard).
fn softmax_inputs(eg: &KEGraph, p: Id) -> Vec<(Id, i64)> {
    let mut probs = vec![p];
    for (_, c) in nodes(eg, p, |o| *o == Op::Where) {
        let guard = nodes(eg, c[0], |o| *o == Op::Unary(UnaryOp::IsNan))
            .into_iter()
            .any(|(_, n)| same(eg, n[0], c[2]));
        if guard && scalar(eg, c[1]) == Some(0.0) {
            probs.push(c[2]);
        }
    }
    let mut out = Vec::new();
    for p in probs {
        for (op, c) in nodes(eg, p, |o| matches!(o, Op::Softmax { .. })) {
            if let Op::Softmax { axis } = op {
                out.push((c[0], axis));
            }
        }
    }
    out
}

/// The matcher of rule `attention-fuse`.
pub fn attention_fuse(eg: &KEGraph, root: Id, diag: &mut Diag) -> Vec<Recipe> {
    let mut out = Vec::new();
    let Some(root_dims) = dims(eg, root) else {
        return out;
    };
    for (_, c) in nodes(eg, root, |o| *o == Op::MatMul) {
        let (p, v) = (c[0], c[1]);
        // The 4-D probabilities: p itself, or the source of a reshape to 3-D.
        let mut cands: Vec<(Id, bool)> = vec![(p, false)];
        if root_dims.len() == 3 {
            for (_, r) in nodes(eg, p, |o| matches!(o, Op::Reshape { .. })) {
                cands.push((r[0], true));
            }
        }
        for (p4, three) in cands {
            for (s, axis) in softmax_inputs(eg, p4) {
                let Some(sd) = dims(eg, s) else { continue };
                let Ok(shape4) = <[Dim; 4]>::try_from(sd) else {
                    continue;
                };
                if !(axis == -1 || axis == 3) {
                    diag.miss(root, || {
                        format!("the softmax is over axis {axis}, not the key axis")
                    });
                    continue;
                }
                let site = Site {
                    root,
                    root_dims: &root_dims,
                    v,
                    three,
                };
                for sc in parse(eg, s, &shape4, false, 0) {
                    if let Some(r) = build(eg, &sc, &site, &shape4, diag) {
                        push_unique(&mut out, r);
                    }
                }
            }
        }
    }
    out
}

/// Where a match was found: the root `MatMul(P, V)` and how P was reached.
#[derive(Debug, Clone, Copy)]
struct Site<'a> {
    /// The root class.
    root: Id,
    /// The root's dims.
    root_dims: &'a [Dim],
    /// The values `V`.
    v: Id,
    /// P is a 3-D reshape of the 4-D probabilities.
    three: bool,
}

/// The recipe for one reading of the scores, or None (with a miss) when a part is unknown.
fn build(
    eg: &KEGraph,
    sc: &Scores,
    site: &Site<'_>,
    shape4: &[Dim; 4],
    diag: &mut Diag,
) -> Option<Recipe> {
    let Site {
        root,
        root_dims,
        v,
        three,
    } = *site;
    let [b, h, sq, sk] = shape4;
    let Some(heads) = h.as_known().and_then(|x| u32::try_from(x).ok()) else {
        diag.miss(root, || format!("the head count {h} is not a constant"));
        return None;
    };
    let qd = dims(eg, sc.q)?;
    let d = qd.last()?.clone();
    let vd = dims(eg, v)?;
    let dv = vd.last()?.clone();
    let mut rec = Recipe::default();
    let q4 = [b.clone(), h.clone(), sq.clone(), d.clone()];
    let k4 = [b.clone(), h.clone(), sk.clone(), d.clone()];
    let v4 = [b.clone(), h.clone(), sk.clone(), dv.clone()];
    let (q, k) = if sc.three {
        (
            view(eg, &mut rec, sc.q, &q4),
            untranspose3(eg, &mut rec, sc.kt, &k4),
        )
    } else {
        (Arg::Class(sc.q), untranspose4(eg, &mut rec, sc.kt))
    };
    let v = if three {
        view(eg, &mut rec, v, &v4)
    } else {
        Arg::Class(v)
    };
    // Grouped-query heads: both K and V repeat the same kv heads.
    let (mut k, mut v, mut kv_heads) = (k, v, heads);
    let k_src = if sc.three {
        None
    } else {
        transposed_source(eg, sc.kt, b, h)
    };
    if let (Some(kc), Arg::Class(vc)) = (k_src, v) {
        if let (Some((kk, kh)), Some((vv, vh))) =
            (repeated_heads(eg, kc, b, h), repeated_heads(eg, vc, b, h))
        {
            if let Some(n) = kh.as_known().filter(|_| kh == vh) {
                (k, v, kv_heads) = (Arg::Class(kk), Arg::Class(vv), n as u32);
            }
        }
    }
    // Rotary embedding on both q and k with the same tables.
    let mut rope = None;
    if let (Arg::Class(qc), Arg::Class(kc)) = (q, k) {
        if sq == sk {
            for (xq, cq, sq_) in rotary(eg, qc) {
                for (xk, ck, sk_) in rotary(eg, kc) {
                    if same(eg, cq, ck) && same(eg, sq_, sk_) && rope.is_none() {
                        rope = Some((xq, xk, cq, sq_));
                    }
                }
            }
        }
    }
    let (q, k) = match rope {
        Some((xq, xk, _, _)) => (Arg::Class(xq), Arg::Class(xk)),
        None => (q, k),
    };
    // Masks and bias.
    let mut causal = false;
    let mut keys: Vec<Id> = Vec::new();
    for &c in &sc.conds {
        let Some(f) = classify(eg, c, shape4) else {
            diag.miss(root, || {
                "the scores are masked by a condition that is neither causal nor a key mask"
                    .to_string()
            });
            return None;
        };
        causal |= f.causal;
        keys.extend(f.keys);
    }
    let mut bias: Option<Arg> = None;
    for &(t, t3) in &sc.terms {
        if !t3 {
            let read = additive_condition(eg, t)
                .into_iter()
                .find_map(|c| classify(eg, c, shape4));
            if let Some(f) = read {
                causal |= f.causal;
                for k in f.keys {
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
                continue;
            }
        }
        let t = if t3 {
            let td = dims(eg, t)?;
            let [n, x, y] = td.as_slice() else {
                return None;
            };
            let lead = if *n == b.mul(h) {
                [b.clone(), h.clone()]
            } else if n.as_known() == Some(1) {
                [Dim::known(1), Dim::known(1)]
            } else {
                diag.miss(root, || format!("a 3-D score term has leading dim {n}"));
                return None;
            };
            let [l0, l1] = lead;
            view(eg, &mut rec, t, &[l0, l1, x.clone(), y.clone()])
        } else {
            Arg::Class(t)
        };
        bias = Some(match bias {
            None => t,
            Some(acc) => rec.push(Op::Binary(BinaryOp::Add), vec![acc, t]),
        });
    }
    let mut args = vec![q, k, v];
    args.extend(bias);
    let mask = !keys.is_empty();
    if mask {
        args.push(key_mask(eg, &mut rec, &keys, b, sk));
    }
    if let Some((_, _, cos, sin)) = rope {
        args.extend([Arg::Class(cos), Arg::Class(sin)]);
    }
    let op = Op::Attention {
        heads,
        kv_heads,
        scale: sc.scale,
        causal,
        bias: bias.is_some(),
        mask,
        rotary: rope.is_some(),
    };
    let a = rec.push(op, args);
    if three {
        rec.push(
            Op::Reshape {
                shape: root_dims.to_vec(),
            },
            vec![a],
        );
    }
    Some(rec)
}
