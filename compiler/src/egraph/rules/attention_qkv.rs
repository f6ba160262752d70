//! Attention operands: bringing q, k and v to the `[B, heads, S, D]` layout the fused op takes,
//! and seeing through the exporters' head handling — Kᵀ spelled as a transpose (or as
//! reshape-transpose-reshape over `[B·H, S, D]`), 3-D `[B·H, S, D]` operands (BLOOM), grouped
//! query heads repeated with reshape-expand-reshape (Llama, Mistral) and the rotary embedding
//! in `rotate_half` form.
//!
//! Each helper returns an [`Arg`]: an existing class when the layout is already there (or an
//! exporter computed it and we can read through), else a node pushed onto the recipe.

use super::{nodes, same, ty, Arg, Recipe};
use crate::egraph::lang::KEGraph;
use crate::ir::{Dim, Op, UnaryOp};
use egg::Id;

/// The dims of a class, when its type is known.
pub(super) fn dims(eg: &KEGraph, id: Id) -> Option<Vec<Dim>> {
    ty(eg, id).map(|t| t.shape.0.clone())
}

/// The classes in `id` that are reshapes of a class whose dims are `want`.
fn reshaped_from(eg: &KEGraph, id: Id, want: &[Dim]) -> Option<Id> {
    nodes(eg, id, |o| matches!(o, Op::Reshape { .. }))
        .into_iter()
        .find_map(|(_, c)| match c.as_slice() {
            [x] if dims(eg, *x).as_deref() == Some(want) => Some(*x),
            _ => None,
        })
}

/// Class `id` viewed with dims `want` (same element count): itself when it has them, the
/// source of a reshape that made it from such a value, else a reshape pushed onto `rec`.
pub(super) fn view(eg: &KEGraph, rec: &mut Recipe, id: Id, want: &[Dim]) -> Arg {
    if dims(eg, id).as_deref() == Some(want) {
        return Arg::Class(id);
    }
    if let Some(x) = reshaped_from(eg, id, want) {
        return Arg::Class(x);
    }
    rec.push(
        Op::Reshape {
            shape: want.to_vec(),
        },
        vec![Arg::Class(id)],
    )
}

/// K (`[B, H, Sk, D]`) from Kᵀ (`[B, H, D, Sk]`): the source of a transpose that produced
/// Kᵀ composed with the last-two swap, the source of a `[B·H, …]` reshape-transpose-reshape,
/// or a transpose pushed onto `rec`.
pub(super) fn untranspose4(eg: &KEGraph, rec: &mut Recipe, kt: Id) -> Arg {
    let swap = [0usize, 1, 3, 2];
    for (op, c) in nodes(eg, kt, |o| matches!(o, Op::Transpose { .. })) {
        let Op::Transpose { perm } = op else { continue };
        if perm.len() != 4 || perm.iter().any(|&p| !(0..4).contains(&p)) {
            continue;
        }
        let composed: Vec<i64> = swap.iter().map(|&j| perm[j]).collect();
        if composed == [0, 1, 2, 3] {
            return Arg::Class(c[0]);
        }
        return rec.push(Op::Transpose { perm: composed }, vec![Arg::Class(c[0])]);
    }
    // reshape([B, H, D, S]) ∘ transpose([0, 2, 1]) ∘ reshape([B·H, S, D]) of a [B, H, S, D].
    if let Some(kd) = dims(eg, kt) {
        if let [b, h, d, s] = kd.as_slice() {
            let merged = [b.mul(h), d.clone(), s.clone()];
            if let Some(t3) = reshaped_from(eg, kt, &merged) {
                for (op, c) in nodes(eg, t3, |o| matches!(o, Op::Transpose { .. })) {
                    if op
                        == (Op::Transpose {
                            perm: vec![0, 2, 1],
                        })
                    {
                        let want = [b.clone(), h.clone(), s.clone(), d.clone()];
                        if let Some(k4) = reshaped_from(eg, c[0], &want) {
                            return Arg::Class(k4);
                        }
                    }
                }
            }
        }
    }
    rec.push(
        Op::Transpose {
            perm: vec![0, 1, 3, 2],
        },
        vec![Arg::Class(kt)],
    )
}

/// K as `[B, H, Sk, D]` from a 3-D Kᵀ `[B·H, D, Sk]`.
pub(super) fn untranspose3(eg: &KEGraph, rec: &mut Recipe, kt: Id, want: &[Dim]) -> Arg {
    for (op, c) in nodes(eg, kt, |o| matches!(o, Op::Transpose { .. })) {
        if op
            == (Op::Transpose {
                perm: vec![0, 2, 1],
            })
        {
            return view(eg, rec, c[0], want);
        }
    }
    let t = rec.push(
        Op::Transpose {
            perm: vec![0, 2, 1],
        },
        vec![Arg::Class(kt)],
    );
    rec.push(
        Op::Reshape {
            shape: want.to_vec(),
        },
        vec![t],
    )
}

/// `(kv, kv_heads)` when class `x` — `[b, h, S, D]`, or `[b·h, S, D]` — repeats the heads of
/// `kv` (`[b, kvH, S, D]`): `reshape(expand(reshape(kv, [b, kvH, 1, S, D]), [b, kvH, n, S, D]))`.
pub(super) fn repeated_heads(eg: &KEGraph, x: Id, b: &Dim, h: &Dim) -> Option<(Id, Dim)> {
    let xd = dims(eg, x)?;
    let (s, d) = match xd.as_slice() {
        [xb, xh, s, d] if xb == b && xh == h => (s, d),
        [bh, s, d] if *bh == b.mul(h) => (s, d),
        _ => return None,
    };
    for (_, c) in nodes(eg, x, |o| matches!(o, Op::Reshape { .. })) {
        let Some(ed) = dims(eg, c[0]) else { continue };
        let [eb, kvh, n, es, edd] = ed.as_slice() else {
            continue;
        };
        if eb != b || (es, edd) != (s, d) || kvh.mul(n) != *h {
            continue;
        }
        let one = [b.clone(), kvh.clone(), Dim::known(1), s.clone(), d.clone()];
        let kv_want = [b.clone(), kvh.clone(), s.clone(), d.clone()];
        for (_, c2) in nodes(eg, c[0], |o| matches!(o, Op::Expand { .. })) {
            if dims(eg, c2[0]).as_deref() != Some(&one[..]) {
                continue;
            }
            if let Some(kv) = reshaped_from(eg, c2[0], &kv_want) {
                return Some((kv, kvh.clone()));
            }
        }
    }
    None
}

/// The class Kᵀ (`[B, H, D, Sk]`) transposes without any other change: `x` for
/// `transpose(x)` swapping the last two axes, `x3` (`[B·H, Sk, D]`) for
/// `reshape(transpose(x3, [0, 2, 1]))`.
pub(super) fn transposed_source(eg: &KEGraph, kt: Id, b: &Dim, h: &Dim) -> Option<Id> {
    for (op, c) in nodes(eg, kt, |o| matches!(o, Op::Transpose { .. })) {
        if op
            == (Op::Transpose {
                perm: vec![0, 1, 3, 2],
            })
        {
            return Some(c[0]);
        }
    }
    let kd = dims(eg, kt)?;
    let [_, _, d, s] = kd.as_slice() else {
        return None;
    };
    let merged = [b.mul(h), d.clone(), s.clone()];
    let t3 = reshaped_from(eg, kt, &merged)?;
    nodes(eg, t3, |o| matches!(o, Op::Transpose { .. }))
        .into_iter()
        .find_map(|(op, c)| {
            (op == Op::Transpose {
                perm: vec![0, 2, 1],
            })
            .then_some(c[0])
        })
}

/// True when class `r` is `rotate_half(x)`: `concat(-x[..., D/2..], x[..., ..D/2])` on the
/// last axis.
fn is_rotate_half(eg: &KEGraph, r: Id, x: Id) -> bool {
    let Some(d) = dims(eg, x).and_then(|d| d.last().and_then(Dim::as_known)) else {
        return false;
    };
    if d % 2 != 0 {
        return false;
    }
    let rank = dims(eg, x).map_or(0, |d| d.len()) as i64;
    let half = d / 2;
    let is_slice = |s: Id, lo: i64, hi_min: i64| {
        nodes(eg, s, |o| matches!(o, Op::Slice { .. }))
            .into_iter()
            .any(|(op, c)| {
                let Op::Slice {
                    axes,
                    starts,
                    ends,
                    steps,
                } = op
                else {
                    return false;
                };
                same(eg, c[0], x)
                    && matches!(axes.as_slice(), [a] if *a == -1 || *a == rank - 1)
                    && steps.as_slice() == [1]
                    && starts[0].as_known() == Some(lo)
                    && ends[0].as_known().is_some_and(|e| e >= hi_min)
                    && (hi_min == d || ends[0].as_known() == Some(hi_min))
            })
    };
    nodes(eg, r, |o| matches!(o, Op::Concat { .. }))
        .into_iter()
        .any(|(op, c)| {
            let Op::Concat { axis } = op else {
                return false;
            };
            let last = axis == -1 || axis == rank - 1;
            last && c.len() == 2
                && nodes(eg, c[0], |o| *o == Op::Unary(UnaryOp::Neg))
                    .into_iter()
                    .any(|(_, n)| is_slice(n[0], half, d))
                && is_slice(c[1], 0, half)
        })
}

/// `(x, cos, sin)` when class `q` is `x·cos + rotate_half(x)·sin` (either operand orders).
pub(super) fn rotary(eg: &KEGraph, q: Id) -> Vec<(Id, Id, Id)> {
    use super::comm;
    use crate::ir::BinaryOp::{Add, Mul};
    let mut out = Vec::new();
    for (a, b) in comm(eg, q, Add) {
        for (x, cos) in comm(eg, a, Mul) {
            for (rot, sin) in comm(eg, b, Mul) {
                if is_rotate_half(eg, rot, x) && !out.contains(&(x, cos, sin)) {
                    out.push((x, cos, sin));
                }
            }
        }
    }
    out
}
