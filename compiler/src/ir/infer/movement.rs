//! Inference for data-movement ops that rearrange whole dims: reshape, transpose, expand,
//! concat, split, pad, tile, trilu and shape_of.

use super::super::dim::Dim;
use super::super::types::{DType, Shape, TensorType};
use super::elementwise::broadcast_shapes;
use super::{k, known_negative, Ctx};
use crate::error::Result;

/// Rejects target dims that are known negative (`what` names the attribute).
fn non_negative_dims(cx: &Ctx, what: &str, dims: &[Dim]) -> Result<()> {
    match dims.iter().position(known_negative) {
        Some(i) => cx.err(format!(
            "dim {i} of {what} {} is negative",
            Shape(dims.to_vec())
        )),
        None => Ok(()),
    }
}

/// Same element count, compared as canonical polynomials.
pub(super) fn reshape(cx: &Ctx, shape: &[Dim]) -> Result<TensorType> {
    let x = cx.input(0)?;
    non_negative_dims(cx, "the target shape", shape)?;
    let target = Shape(shape.to_vec());
    let (have, want) = (x.shape.numel(), target.numel());
    if have != want {
        return cx.err(format!(
            "reshape from {} ({have} elements) to {target} ({want} elements)",
            x.shape
        ));
    }
    Ok(TensorType::new(x.dtype, target))
}

/// `perm` must be a permutation of `0..rank` (negative entries count from the end).
pub(super) fn transpose(cx: &Ctx, perm: &[i64]) -> Result<TensorType> {
    let x = cx.input(0)?;
    let rank = x.rank();
    if perm.len() != rank {
        return cx.err(format!(
            "perm {perm:?} has {} entries, expected {rank} (the rank of {})",
            perm.len(),
            x.shape
        ));
    }
    let mut used = vec![false; rank];
    let mut dims = Vec::with_capacity(rank);
    for &p in perm {
        let ax = cx.axis(p, rank)?;
        match (used.get_mut(ax), x.shape.0.get(ax)) {
            (Some(u), Some(d)) if !*u => {
                *u = true;
                dims.push(d.clone());
            }
            _ => return cx.err(format!("perm {perm:?} lists axis {ax} more than once")),
        }
    }
    Ok(TensorType::new(x.dtype, Shape(dims)))
}

/// Bidirectional broadcast of the input shape with `shape`.
pub(super) fn expand(cx: &Ctx, shape: &[Dim]) -> Result<TensorType> {
    let x = cx.input(0)?;
    non_negative_dims(cx, "the target shape", shape)?;
    let target = Shape(shape.to_vec());
    let out = broadcast_shapes(&x.shape, &target)
        .ok_or_else(|| cx.error(format!("cannot broadcast {} with {target}", x.shape)))?;
    Ok(TensorType::new(x.dtype, out))
}

/// Same rank and dtype; dims other than `axis` must be equal; the axis dim is the sum.
pub(super) fn concat(cx: &Ctx, axis: i64) -> Result<TensorType> {
    let first = cx.input(0)?;
    let rank = first.rank();
    let ax = cx.axis(axis, rank)?;
    let mut dims = first.shape.0.clone();
    for i in 1..cx.count() {
        let t = cx.same_dtype(i, 0)?;
        if t.rank() != rank {
            return cx.err(format!(
                "input {i} has rank {} ({}), expected {rank} (the rank of input 0, {})",
                t.rank(),
                t.shape,
                first.shape
            ));
        }
        for (j, (have, want)) in t.shape.0.iter().zip(&first.shape.0).enumerate() {
            if j == ax {
                dims[ax] = dims[ax].add(have);
            } else if have != want {
                return cx.err(format!(
                    "input {i} has shape {} but input 0 has {}: dim {j} differs ({have} vs \
                     {want}) outside the concat axis {ax}",
                    t.shape, first.shape
                ));
            }
        }
    }
    Ok(TensorType::new(first.dtype, Shape(dims)))
}

/// One output per size; the sizes must sum to the axis dim (as canonical dims).
pub(super) fn split(cx: &Ctx, axis: i64, sizes: &[Dim]) -> Result<Vec<TensorType>> {
    let x = cx.input(0)?;
    let ax = cx.axis(axis, x.rank())?;
    if sizes.is_empty() {
        return cx.err("sizes is empty; split needs at least one output");
    }
    non_negative_dims(cx, "sizes", sizes)?;
    let total = sizes.iter().fold(k(0), |acc, s| acc.add(s));
    let dim = &x.shape.0[ax];
    if &total != dim {
        return cx.err(format!(
            "sizes {} sum to {total}, but axis {ax} of {} has size {dim}",
            Shape(sizes.to_vec()),
            x.shape
        ));
    }
    Ok(sizes
        .iter()
        .map(|s| {
            let mut dims = x.shape.0.clone();
            dims[ax] = s.clone();
            TensorType::new(x.dtype, Shape(dims))
        })
        .collect())
}

/// `pads` holds rank begins then rank ends; negative pads crop, but not below zero.
pub(super) fn pad(cx: &Ctx, pads: &[i64]) -> Result<TensorType> {
    let x = cx.input(0)?;
    let rank = x.rank();
    cx.attr_len("pads", pads, 2 * rank)?;
    let (begins, ends) = pads.split_at(rank);
    let mut dims = Vec::with_capacity(rank);
    for (i, ((d, &b), &e)) in x.shape.0.iter().zip(begins).zip(ends).enumerate() {
        let out = d.add(&k(b)).add(&k(e));
        if known_negative(&out) {
            return cx.err(format!(
                "pads {b} and {e} crop dim {i} ({d}) of {} below zero",
                x.shape
            ));
        }
        dims.push(out);
    }
    Ok(TensorType::new(x.dtype, Shape(dims)))
}

/// One non-negative repeat count per dim; each dim is multiplied by its count.
pub(super) fn tile(cx: &Ctx, repeats: &[i64]) -> Result<TensorType> {
    let x = cx.input(0)?;
    cx.attr_len("repeats", repeats, x.rank())?;
    if let Some(r) = repeats.iter().find(|&&r| r < 0) {
        return cx.err(format!(
            "repeats must be non-negative, got {r} in {repeats:?}"
        ));
    }
    let dims = x.shape.0.iter().zip(repeats).map(|(d, &r)| d.mul(&k(r)));
    Ok(TensorType::new(x.dtype, Shape(dims.collect())))
}

/// Rank ≥ 2, type unchanged.
pub(super) fn trilu(cx: &Ctx) -> Result<TensorType> {
    let x = cx.input(0)?;
    if x.rank() < 2 {
        return cx.err(format!(
            "input 0 has rank {} ({}), expected at least 2",
            x.rank(),
            x.shape
        ));
    }
    Ok(x.clone())
}

/// ONNX `Shape`: negative start/end count from the end, both clamp to `[0, rank]`.
pub(super) fn shape_of(cx: &Ctx, start: i64, end: Option<i64>) -> Result<TensorType> {
    let x = cx.input(0)?;
    let rank = i64::try_from(x.rank()).unwrap_or(i64::MAX);
    let clamp = |v: i64| {
        let v = if v < 0 { v.saturating_add(rank) } else { v };
        v.clamp(0, rank)
    };
    let (s, e) = (clamp(start), clamp(end.unwrap_or(rank)));
    let n = e.saturating_sub(s).max(0);
    Ok(TensorType::new(DType::I64, Shape(vec![k(n)])))
}
