//! Attention masks: reading the exporters' additive and `Where` masks as the fused op's
//! `causal` flag and `[B, Sk]` key mask, or keeping them as an additive bias.
//!
//! A masking condition is split at `And` into conjuncts, each of which must be one of
//! - always true: a constant of non-zeros, or `x ≥ 0` on an ascending `Range` from ≥ 0;
//! - causal: `k_idx ≤ q_idx` / `q_idx ≥ k_idx` with `k_idx = range(Sk)` along the last axis and
//!   `q_idx = range(Sq)` along the one before (Sq = Sk), a constant lower triangle, or
//!   `Trilu(lower, k = 0)` of ones cast to bool;
//! - a key mask: a bool value shaped `[B or 1, 1, 1, Sk]`.
//!
//! When every conjunct is classified the condition becomes flags; otherwise an additive term
//! stays a bias (exact), and a `Where` on the scores cannot be fused.

use super::attention_qkv::dims;
use super::{bin, casts, dtype, nodes, same, Arg, Recipe};
use crate::egraph::analysis::{scalar, weight_values};
use crate::egraph::lang::KEGraph;
use crate::ir::{BinaryOp, DType, Dim, Op};
use egg::Id;

/// A fill value counts as "masked out" at or below this.
pub const MASKED: f64 = -1e30;

/// What a mask condition says.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Flags {
    /// A causal conjunct was found.
    pub causal: bool,
    /// Key-mask conjuncts (bool, `[B|1, 1, 1, Sk]`).
    pub keys: Vec<Id>,
}

/// The conjuncts of a bool class (split at `And`, a few levels deep).
fn conjuncts(eg: &KEGraph, c: Id, depth: usize, out: &mut Vec<Id>) {
    let ands = bin(eg, c, BinaryOp::And);
    match ands.first() {
        Some(&(a, b)) if depth < 8 => {
            conjuncts(eg, a, depth + 1, out);
            conjuncts(eg, b, depth + 1, out);
        }
        _ => out.push(c),
    }
}

/// True when class `x` holds an ascending integer range from ≥ 0 (possibly reshaped).
fn nonneg_range(eg: &KEGraph, x: Id, depth: usize) -> bool {
    nodes(eg, x, |o| {
        matches!(o, Op::Range { .. } | Op::Reshape { .. })
    })
    .into_iter()
    .any(|(op, c)| match op {
        Op::Range { start, delta, .. } => {
            start.as_known().is_some_and(|s| s >= 0) && delta.as_known().is_some_and(|d| d > 0)
        }
        _ => depth < 4 && nonneg_range(eg, c[0], depth + 1),
    })
}

/// `0..n` with step 1 (possibly reshaped) in class `x`: returns `n`.
fn arange(eg: &KEGraph, x: Id, depth: usize) -> Option<Dim> {
    nodes(eg, x, |o| {
        matches!(o, Op::Range { .. } | Op::Reshape { .. })
    })
    .into_iter()
    .find_map(|(op, c)| match op {
        Op::Range {
            start,
            limit,
            delta,
            ..
        } if start.as_known() == Some(0) && delta.as_known() == Some(1) => Some(limit),
        Op::Reshape { .. } if depth < 4 => arange(eg, c[0], depth + 1),
        _ => None,
    })
}

/// The position of the only non-1 dim of class `x` (counted from the end), and that dim.
fn along(eg: &KEGraph, x: Id) -> Option<(usize, Dim)> {
    let d = dims(eg, x)?;
    let big: Vec<(usize, &Dim)> = d
        .iter()
        .rev()
        .enumerate()
        .filter(|(_, v)| v.as_known() != Some(1))
        .collect();
    match big.as_slice() {
        [(i, v)] => Some((*i, (*v).clone())),
        _ => None,
    }
}

/// True when class `c` is the causal condition `key ≤ query` over `[Sq, Sk]` scores.
fn is_causal(eg: &KEGraph, c: Id, sq: &Dim, sk: &Dim) -> bool {
    let idx_pair = |k: Id, q: Id| {
        let (Some((ka, kn)), Some((qa, qn))) = (along(eg, k), along(eg, q)) else {
            return false;
        };
        ka == 0
            && qa == 1
            && sq == sk
            && kn == *sk
            && qn == *sq
            && arange(eg, k, 0).as_ref() == Some(sk)
            && arange(eg, q, 0).as_ref() == Some(sq)
    };
    if bin(eg, c, BinaryOp::Le)
        .into_iter()
        .any(|(k, q)| idx_pair(k, q))
        || bin(eg, c, BinaryOp::Ge)
            .into_iter()
            .any(|(q, k)| idx_pair(k, q))
    {
        return true;
    }
    let lower = |vals: &[f64], d: &[Dim]| -> bool {
        let (Some(r), Some(k)) = (sq.as_known(), sk.as_known()) else {
            return false;
        };
        let n = d.len();
        let lead_ones = d[..n.saturating_sub(2)]
            .iter()
            .all(|x| x.as_known() == Some(1));
        n >= 2
            && lead_ones
            && d[n - 2].as_known() == Some(r)
            && d[n - 1].as_known() == Some(k)
            && vals.len() as i64 == r * k
            && (0..r)
                .all(|i| (0..k).all(|j| (vals[(i * k + j) as usize] != 0.0) == (j <= i + k - r)))
    };
    if let (Some(v), Some(d)) = (weight_values(eg, c), dims(eg, c)) {
        if lower(v, &d) {
            return true;
        }
    }
    // cast(trilu(ones, lower, k = Sk - Sq)) to bool.
    casts(eg, c).into_iter().any(|(t, to)| {
        to == DType::Bool
            && nodes(eg, t, |o| matches!(o, Op::Trilu { upper: false, .. }))
                .into_iter()
                .any(|(op, tc)| {
                    let Op::Trilu { k, .. } = op else {
                        return false;
                    };
                    let offset = sk.sub(sq).as_known();
                    offset == Some(k)
                        && weight_values(eg, tc[0]).is_some_and(|v| v.iter().all(|&x| x == 1.0))
                })
    })
}

/// True when class `c` is always true.
fn is_true(eg: &KEGraph, c: Id) -> bool {
    if weight_values(eg, c).is_some_and(|v| v.iter().all(|&x| x != 0.0)) {
        return true;
    }
    bin(eg, c, BinaryOp::Ge)
        .into_iter()
        .any(|(x, z)| scalar(eg, z) == Some(0.0) && nonneg_range(eg, x, 0))
}

/// True when class `c` is a bool key mask `[B|1, 1, 1, Sk]`.
fn is_key_mask(eg: &KEGraph, c: Id, b: &Dim, sk: &Dim) -> bool {
    let Some(d) = dims(eg, c) else { return false };
    dtype(eg, c) == Some(DType::Bool)
        && matches!(d.as_slice(), [db, one1, one2, dk]
            if (db == b || db.as_known() == Some(1))
                && one1.as_known() == Some(1) && one2.as_known() == Some(1) && dk == sk)
}

/// Classifies condition `c` for scores `[B, H, Sq, Sk]`; None when a conjunct is unknown.
pub(super) fn classify(eg: &KEGraph, c: Id, shape: &[Dim; 4]) -> Option<Flags> {
    let [b, _, sq, sk] = shape;
    let mut parts = Vec::new();
    conjuncts(eg, c, 0, &mut parts);
    let mut flags = Flags::default();
    for p in parts {
        if is_true(eg, p) {
            continue;
        }
        if is_causal(eg, p, sq, sk) {
            flags.causal = true;
        } else if is_key_mask(eg, p, b, sk) {
            if !flags.keys.iter().any(|&k| same(eg, k, p)) {
                flags.keys.push(p);
            }
        } else {
            return None;
        }
    }
    Some(flags)
}

/// The condition of an additive mask term: `c` for `where(c, 0, ≤ MASKED)`, and `m` (as
/// `m ≠ 0`, m bool) for `(1 - cast(m)) · ≤ MASKED`.
pub(super) fn additive_condition(eg: &KEGraph, t: Id) -> Vec<Id> {
    let mut out = Vec::new();
    for (_, c) in nodes(eg, t, |o| *o == Op::Where) {
        if scalar(eg, c[1]) == Some(0.0) && scalar(eg, c[2]).is_some_and(|m| m <= MASKED) {
            out.push(c[0]);
        }
    }
    for (s, m) in super::comm(eg, t, BinaryOp::Mul) {
        if !scalar(eg, m).is_some_and(|m| m <= MASKED) {
            continue;
        }
        for (one, f) in bin(eg, s, BinaryOp::Sub) {
            if scalar(eg, one) != Some(1.0) {
                continue;
            }
            for (k, _) in casts(eg, f) {
                if dtype(eg, k) == Some(DType::Bool) {
                    out.push(k);
                }
            }
        }
    }
    out
}

/// The `[B, Sk]` key mask for the fused op: the conjunction of `keys` reshaped (and broadcast
/// over the batch when it has size 1).
pub(super) fn key_mask(eg: &KEGraph, rec: &mut Recipe, keys: &[Id], b: &Dim, sk: &Dim) -> Arg {
    let mut acc: Option<Arg> = None;
    for &k in keys {
        acc = Some(match acc {
            None => Arg::Class(k),
            Some(a) => rec.push(Op::Binary(BinaryOp::And), vec![a, Arg::Class(k)]),
        });
    }
    let Some(acc) = acc else {
        return Arg::Class(keys[0]);
    };
    let batch_one = keys.iter().all(|&k| {
        dims(eg, k).is_some_and(|d| d[0].as_known() == Some(1)) && b.as_known() != Some(1)
    });
    if batch_one {
        let r = rec.push(
            Op::Reshape {
                shape: vec![Dim::known(1), sk.clone()],
            },
            vec![acc],
        );
        return rec.push(
            Op::Expand {
                shape: vec![b.clone(), sk.clone()],
            },
            vec![r],
        );
    }
    rec.push(
        Op::Reshape {
            shape: vec![b.clone(), sk.clone()],
        },
        vec![acc],
    )
}
