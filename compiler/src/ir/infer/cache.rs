//! Inference for the ops of cached decoding: `Op::Rotary` (x's type; cos/sin broadcast to
//! `[B, 1, S, D]`) and `Op::CacheWrite` (the cache's type; new agrees off the axis).

use super::super::dim::Dim;
use super::super::types::{Shape, TensorType};
use super::ctx::{k, Ctx};
use super::fused::check_param;
use crate::error::Result;

/// `(x: [B, H, S, D], cos, sin) -> x's type`.
pub(super) fn rotary(cx: &Ctx) -> Result<TensorType> {
    let x = cx.float(0)?;
    let t = cx.rank(0, 4, "x: [B, H, S, D]")?;
    let [b, _, s, d] = match t.shape.0.as_slice() {
        [b, h, s, d] => [b.clone(), h.clone(), s.clone(), d.clone()],
        _ => return cx.err("input 0 must have rank 4 ([B, H, S, D])"),
    };
    if d.as_known().is_some_and(|v| v % 2 != 0) {
        return cx.err(format!("rotary needs an even head size, got {d}"));
    }
    let target = Shape(vec![b, k(1), s, d]);
    check_param(cx, 1, "cos", &target, "[B, 1, S, D] =")?;
    check_param(cx, 2, "sin", &target, "[B, 1, S, D] =")?;
    Ok(x.clone())
}

/// `(cache, new) -> cache's type`; new has the cache's dtype and rank and its dims off the axis.
pub(super) fn cache_write(cx: &Ctx, axis: i64, at: &Dim) -> Result<TensorType> {
    let cache = cx.input(0)?;
    let new = cx.same_dtype(1, 0)?;
    let ax = cx.axis(axis, cache.rank())?;
    if new.rank() != cache.rank() {
        return cx.err(format!(
            "new {} must have the cache's rank ({})",
            new.shape, cache.shape
        ));
    }
    for (i, (c, n)) in cache.shape.0.iter().zip(&new.shape.0).enumerate() {
        if i != ax && c != n {
            return cx.err(format!(
                "new {} differs from the cache {} in dim {i}",
                new.shape, cache.shape
            ));
        }
    }
    if at.as_known().is_some_and(|v| v < 0) {
        return cx.err(format!("the write position {at} is negative"));
    }
    Ok(cache.clone())
}
