//! Kernels that fill or repeat: pad (four modes), tile, trilu, and range.

use super::{checked_count, dim_value, make, source_indices, take, with_fill};
use crate::ops::{Bindings, Dim, PadMode};
use crate::reference::util::{strides, KResult};
use crate::{DType, Tensor};

/// One axis of a pad after cropping: the kept part of x starts at `offset` and has `kept`
/// elements; `begin` / `end` (≥ 0) elements are added around it.
struct PadAxis {
    offset: usize,
    kept: usize,
    begin: usize,
    end: usize,
}

impl PadAxis {
    fn new(axis: usize, dim: usize, pb: i64, pe: i64, mode: PadMode) -> KResult<PadAxis> {
        let size = |v: i128| usize::try_from(v).map_err(|_| format!("pad {v} is too large"));
        let (pb, pe) = (i128::from(pb), i128::from(pe));
        let kept = dim as i128 + pb.min(0) + pe.min(0);
        if kept < 0 {
            return Err(format!(
                "pads ({pb}, {pe}) crop more than the {dim} elements of axis {axis}"
            ));
        }
        let a = PadAxis {
            offset: size(-pb.min(0))?,
            kept: size(kept)?,
            begin: size(pb.max(0))?,
            end: size(pe.max(0))?,
        };
        let padded = a.begin > 0 || a.end > 0;
        match mode {
            PadMode::Reflect if padded && (a.begin >= a.kept || a.end >= a.kept) => Err(format!(
                "reflect pads ({pb}, {pe}) must be smaller than axis {axis}'s size {}",
                a.kept
            )),
            PadMode::Edge | PadMode::Wrap if padded && a.kept == 0 => Err(format!(
                "{mode:?} padding of axis {axis} needs a non-empty axis"
            )),
            _ => Ok(a),
        }
    }

    fn out_size(&self) -> KResult<usize> {
        self.kept
            .checked_add(self.begin)
            .and_then(|s| s.checked_add(self.end))
            .ok_or_else(|| "padded dim overflows".to_string())
    }

    /// The x coordinate that output coordinate `o` copies, or None for the constant fill.
    fn source(&self, o: usize, mode: PadMode) -> Option<usize> {
        // Position relative to the kept part; the kept part is non-empty whenever a mode other
        // than constant has to map a position outside it (checked in `new`).
        let c = o as i128 - self.begin as i128;
        let k = self.kept as i128;
        let mapped = if (0..k).contains(&c) {
            c
        } else {
            match mode {
                PadMode::Constant => return None,
                PadMode::Edge => c.clamp(0, k - 1),
                // numpy 'reflect': mirror about the edge element without repeating it.
                PadMode::Reflect if c < 0 => -c,
                PadMode::Reflect => 2 * (k - 1) - c,
                PadMode::Wrap => c.rem_euclid(k),
            }
        };
        Some(self.offset + mapped as usize)
    }
}

/// Pads with `pads` = rank begin pads then rank end pads. Negative pads crop first; the mode
/// then sees the cropped tensor. Constant mode fills with `value` cast to x's dtype.
pub fn pad(x: &Tensor, pads: &[i64], mode: PadMode, value: f64) -> KResult<Tensor> {
    let rank = x.rank();
    if pads.len() != 2 * rank {
        return Err(format!(
            "pads {pads:?} has {} entries, expected 2 × rank {rank}",
            pads.len()
        ));
    }
    let axes: Vec<PadAxis> = x
        .shape()
        .iter()
        .enumerate()
        .map(|(a, &d)| PadAxis::new(a, d, pads[a], pads[rank + a], mode))
        .collect::<KResult<_>>()?;
    let out_shape: Vec<usize> = axes.iter().map(PadAxis::out_size).collect::<KResult<_>>()?;
    let xs = strides(x.shape());
    let fill = x.len();
    let idx = source_indices(&out_shape, |o| {
        o.iter()
            .zip(&axes)
            .zip(&xs)
            .try_fold(0, |acc, ((&i, a), &s)| Some(acc + a.source(i, mode)? * s))
            .unwrap_or(fill)
    })?;
    make(out_shape, take(&with_fill(x, value)?, &idx)?)
}

/// Repeats x `repeats[i]` times along each axis.
pub fn tile(x: &Tensor, repeats: &[i64]) -> KResult<Tensor> {
    if repeats.len() != x.rank() {
        return Err(format!(
            "repeats {repeats:?} has {} entries, expected rank {}",
            repeats.len(),
            x.rank()
        ));
    }
    let out_shape: Vec<usize> = x
        .shape()
        .iter()
        .zip(repeats)
        .map(|(&d, &r)| {
            usize::try_from(r)
                .ok()
                .and_then(|r| d.checked_mul(r))
                .ok_or_else(|| format!("repeat {r} must be ≥ 0 and keep the dim in range"))
        })
        .collect::<KResult<_>>()?;
    let xs = strides(x.shape());
    let idx = source_indices(&out_shape, |o| {
        o.iter()
            .zip(x.shape())
            .zip(&xs)
            // An output element exists only when every x dim is non-zero.
            .map(|((&i, &d), &s)| i.checked_rem(d).unwrap_or(0) * s)
            .sum()
    })?;
    make(out_shape, take(x.data(), &idx)?)
}

/// Keeps the upper (`j - i ≥ k`) or lower (`j - i ≤ k`) triangle of the last two dims; other
/// elements become zero (false for bool).
pub fn trilu(x: &Tensor, upper: bool, k: i64) -> KResult<Tensor> {
    let rank = x.rank();
    if rank < 2 {
        return Err(format!("trilu needs rank ≥ 2, got shape {:?}", x.shape()));
    }
    let (rows, cols) = (x.shape()[rank - 2], x.shape()[rank - 1]);
    let n = x.len();
    let k = i128::from(k);
    // Elements exist only when rows and cols are non-zero, so the divisions are safe.
    let idx: Vec<usize> = (0..n)
        .map(|l| {
            let (i, j) = ((l / cols) % rows, l % cols);
            let diff = j as i128 - i as i128;
            let keep = if upper { diff >= k } else { diff <= k };
            if keep {
                l
            } else {
                n
            }
        })
        .collect();
    make(x.shape().to_vec(), take(&with_fill(x, 0.0)?, &idx)?)
}

/// `start, start + delta, ...` below `limit` (above it for negative delta):
/// `max(0, ceil((limit - start) / delta))` values of `dtype`.
pub fn range(start: &Dim, limit: &Dim, delta: &Dim, dtype: DType, b: &Bindings) -> KResult<Tensor> {
    let s = i128::from(dim_value(start, b, "range start")?);
    let l = i128::from(dim_value(limit, b, "range limit")?);
    let d = i128::from(dim_value(delta, b, "range delta")?);
    if d == 0 {
        return Err("range delta is 0".to_string());
    }
    if dtype == DType::Bool {
        return Err("range cannot produce bool".to_string());
    }
    let span = l - s;
    // Ceiling division: truncation rounds toward zero, so round up when the exact quotient is
    // positive and inexact.
    let q = span / d;
    let n = if span % d != 0 && (span > 0) == (d > 0) {
        q + 1
    } else {
        q
    };
    let n = usize::try_from(n.max(0)).map_err(|_| format!("range of {n} values is too long"))?;
    checked_count(&[n])?;
    // Every value lies between start and limit, so it fits in i64.
    let vals: Vec<i64> = (0..n).map(|i| (s + i as i128 * d) as i64).collect();
    Tensor::from_i64_values(dtype, vec![n], &vals).map_err(|e| e.to_string())
}
