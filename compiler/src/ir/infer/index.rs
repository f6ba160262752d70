//! Inference for indexing ops: slice (ONNX clamping, exact for known dims and symbolic
//! otherwise), gather, gather_elements and range.

use super::super::dim::Dim;
use super::super::types::{DType, Shape, TensorType};
use super::{ceil_div_dim, k, Ctx};
use crate::error::Result;

/// Known starts/ends at or beyond ±(2^31 - 1) are "to the end" sentinels (`i64::MAX`, `INT_MAX`, ...).
const HUGE: i64 = i32::MAX as i64;

/// `ceil(a / b)` for `b != 0`.
fn ceil_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && ((a < 0) == (b < 0)) {
        q + 1
    } else {
        q
    }
}

/// The exact ONNX slice length along a known dim with known start and end.
fn known_len(dim: i64, start: i64, end: i64, step: i64) -> i64 {
    let (d, st) = (i128::from(dim), i128::from(step));
    let resolve = |v: i64| {
        let v = i128::from(v);
        let v = if v < 0 { v + d } else { v };
        if st > 0 {
            v.max(0).min(d)
        } else {
            v.max(-1).min(d - 1)
        }
    };
    let (s, e) = (resolve(start), resolve(end));
    let n = ceil_div(e - s, st).max(0);
    i64::try_from(n).unwrap_or(0)
}

/// Known starts/ends of at least this magnitude on a symbolic axis are clamped to it with
/// `min`/`max` (ONNX's rule), since they are "far past the end" values (`10^9`, ...) rather
/// than positions within the axis.
const LARGE: i64 = 1 << 20;

/// A start or end against a symbolic dim: sentinels mean "to the end" (or the beginning);
/// large known values are clamped to the axis (`min(10^9, h)`, which is `h` once `h` is
/// bound); smaller known negatives count from the end, and smaller known values and symbolic
/// ones are taken as positions within the axis, as exporters write them (`x[:, :4]`,
/// `x[:, -1:]`) — which keeps their dims simple (`4`, `1`) for the ops that follow.
fn resolve_symbolic(v: &Dim, dim: &Dim, forward: bool) -> Dim {
    let (lo, hi) = if forward {
        (k(0), dim.clone())
    } else {
        (k(-1), dim.sub(&k(1)))
    };
    match v.as_known() {
        Some(x) if x >= HUGE => hi,
        Some(x) if x <= -HUGE => lo,
        Some(x) if x >= LARGE => v.minimum(&hi),
        Some(x) if x <= -LARGE => dim.add(&k(x)).maximum(&lo),
        Some(x) if x < 0 => dim.add(&k(x)),
        _ => v.clone(),
    }
}

/// The length of one sliced axis.
fn slice_len(dim: &Dim, start: &Dim, end: &Dim, step: i64) -> Dim {
    if let (Some(d), Some(s), Some(e)) = (dim.as_known(), start.as_known(), end.as_known()) {
        return k(known_len(d, s, e, step));
    }
    let forward = step > 0;
    let (s, e) = (
        resolve_symbolic(start, dim, forward),
        resolve_symbolic(end, dim, forward),
    );
    let len = if forward {
        ceil_div_dim(&e.sub(&s), &k(step))
    } else {
        ceil_div_dim(&s.sub(&e), &k(step.saturating_neg()))
    };
    match len.as_known() {
        Some(n) if n < 0 => k(0),
        _ => len,
    }
}

pub(super) fn slice(
    cx: &Ctx,
    axes: &[i64],
    starts: &[Dim],
    ends: &[Dim],
    steps: &[i64],
) -> Result<TensorType> {
    let x = cx.input(0)?;
    let rank = x.rank();
    let n = axes.len();
    if starts.len() != n || ends.len() != n || steps.len() != n {
        return cx.err(format!(
            "axes, starts, ends and steps have {n}, {}, {} and {} entries; they must agree",
            starts.len(),
            ends.len(),
            steps.len()
        ));
    }
    let mut dims = x.shape.0.clone();
    let mut seen = vec![false; rank];
    for (((&a, start), end), &step) in axes.iter().zip(starts).zip(ends).zip(steps) {
        let ax = cx.axis(a, rank)?;
        if step == 0 {
            return cx.err(format!("the step for axis {ax} is zero"));
        }
        match (seen.get_mut(ax), dims.get_mut(ax)) {
            (Some(s), Some(d)) if !*s => {
                *s = true;
                *d = slice_len(d, start, end, step);
            }
            _ => return cx.err(format!("axes {axes:?} list axis {ax} more than once")),
        }
    }
    Ok(TensorType::new(x.dtype, Shape(dims)))
}

/// Checks that input 1 holds i64 or i32 indices.
fn indices<'a>(cx: &Ctx<'a>) -> Result<&'a TensorType> {
    cx.dtype(
        1,
        |d| matches!(d, DType::I64 | DType::I32),
        "i64 or i32 indices",
    )
}

/// numpy `take`: `data[..axis] ++ indices.shape ++ data[axis+1..]`.
pub(super) fn gather(cx: &Ctx, axis: i64) -> Result<TensorType> {
    let data = cx.input(0)?;
    let idx = indices(cx)?;
    let ax = cx.axis(axis, data.rank())?;
    let mut dims = data.shape.0[..ax].to_vec();
    dims.extend(idx.shape.0.iter().cloned());
    dims.extend(data.shape.0[ax + 1..].iter().cloned());
    Ok(TensorType::new(data.dtype, Shape(dims)))
}

/// ONNX `GatherElements`: indices of data's rank, no larger than data off the axis (when
/// known); the output has the indices' shape and data's dtype.
pub(super) fn gather_elements(cx: &Ctx, axis: i64) -> Result<TensorType> {
    let data = cx.input(0)?;
    let idx = indices(cx)?;
    if idx.rank() != data.rank() {
        return cx.err(format!(
            "indices {} have rank {}, expected {} (the rank of data {})",
            idx.shape,
            idx.rank(),
            data.rank(),
            data.shape
        ));
    }
    let ax = cx.axis(axis, data.rank())?;
    for (j, (i, d)) in idx.shape.0.iter().zip(&data.shape.0).enumerate() {
        if let (false, Some(iv), Some(dv)) = (j == ax, i.as_known(), d.as_known()) {
            if iv > dv {
                return cx.err(format!(
                    "indices {} exceed data {} in dim {j}, which is not the gather axis {ax}",
                    idx.shape, data.shape
                ));
            }
        }
    }
    Ok(TensorType::new(data.dtype, idx.shape.clone()))
}

/// `[max(0, ceil((limit - start) / delta))]`, exact when everything is known; symbolic
/// bounds assume a non-negative count; the sign of delta must be known.
pub(super) fn range(
    cx: &Ctx,
    start: &Dim,
    limit: &Dim,
    delta: &Dim,
    dtype: DType,
) -> Result<TensorType> {
    if !(dtype.is_int() || dtype.is_float()) {
        return cx.err(format!("dtype {dtype} is not an integer or float dtype"));
    }
    let len = match (start.as_known(), limit.as_known(), delta.as_known()) {
        (_, _, None) => {
            return cx.err(format!(
                "delta {delta} is symbolic; range needs a known non-zero delta"
            ))
        }
        (_, _, Some(0)) => return cx.err("delta is zero"),
        (Some(s), Some(l), Some(d)) => {
            let n = ceil_div(i128::from(l) - i128::from(s), i128::from(d)).max(0);
            match i64::try_from(n) {
                Ok(n) => k(n),
                Err(_) => return cx.err(format!("range from {s} to {l} is too long")),
            }
        }
        (_, _, Some(d)) if d > 0 => ceil_div_dim(&limit.sub(start), delta),
        (_, _, Some(d)) => ceil_div_dim(&start.sub(limit), &k(d.saturating_neg())),
    };
    let len = match len.as_known() {
        Some(n) if n < 0 => k(0),
        _ => len,
    };
    Ok(TensorType::new(dtype, Shape(vec![len])))
}

#[cfg(test)]
mod tests {
    use super::super::super::op::Op;
    use super::super::testing::{dims, err, ok};
    use super::*;

    fn slice(axes: &[i64], starts: &str, ends: &str, steps: &[i64]) -> Op {
        Op::Slice {
            axes: axes.to_vec(),
            starts: dims(starts),
            ends: dims(ends),
            steps: steps.to_vec(),
        }
    }

    #[test]
    fn known_slices_clamp_like_onnx() {
        let x = "f32[10, 8]";
        assert_eq!(ok(&slice(&[0], "2", "5", &[1]), &[x]), "f32[3, 8]");
        assert_eq!(ok(&slice(&[0], "-3", "100", &[1]), &[x]), "f32[3, 8]");
        assert_eq!(ok(&slice(&[1], "0", "8", &[3]), &[x]), "f32[10, 3]");
        assert_eq!(ok(&slice(&[0], "5", "2", &[1]), &[x]), "f32[0, 8]");
        assert_eq!(ok(&slice(&[0], "-1", "-11", &[-1]), &[x]), "f32[10, 8]");
        assert_eq!(ok(&slice(&[0], "7", "2", &[-2]), &[x]), "f32[3, 8]");
        assert_eq!(known_len(10, i64::MAX, i64::MIN, -1), 10);
        assert_eq!(known_len(10, 0, i64::MAX, 1), 10);
        assert_eq!(known_len(10, 0, 10, i64::MIN), 0);
        assert_eq!(known_len(10, 9, 0, i64::MIN), 1);
    }

    #[test]
    fn symbolic_slices() {
        let x = "f32[batch, seq, 384]";
        let big = i64::MAX.to_string();
        let tail = slice(&[1], "1", &big, &[1]);
        assert_eq!(ok(&tail, &[x]), "f32[batch, seq-1, 384]");
        let last = slice(&[-2], "-1", &big, &[1]);
        assert_eq!(ok(&last, &[x]), "f32[batch, 1, 384]");
        let head = slice(&[1, 2], "0, 0", "4, 128", &[1, 1]);
        assert_eq!(ok(&head, &[x]), "f32[batch, 4, 128]");
        let rev = Op::Slice {
            axes: vec![1],
            starts: vec![k(-1)],
            ends: vec![k(i64::MIN)],
            steps: vec![-1],
        };
        assert_eq!(ok(&rev, &[x]), "f32[batch, seq, 384]");
        let rev2 = slice(&[1], "-2", "0", &[-2]);
        assert_eq!(ok(&rev2, &[x]), "f32[batch, (seq-1)/2, 384]");
        let upto = slice(&[0], "0", "n", &[1]);
        assert_eq!(ok(&upto, &[x]), "f32[n, seq, 384]");
        let drop_last = slice(&[1], "0", "-1", &[1]);
        assert_eq!(ok(&drop_last, &["f32[2, seq+1]"]), "f32[2, seq]");
        // An end far past any axis is clamped to the axis, not taken as a length.
        let far = slice(&[1], "1", "1000000000", &[1]);
        assert_eq!(ok(&far, &["f32[2, h]"]), "f32[2, min(1000000000,h)-1]");
        let far_back = slice(&[1], "-1000000000", "2", &[1]);
        assert_eq!(
            ok(&far_back, &["f32[2, h]"]),
            "f32[2, -max(0,h-1000000000)+2]"
        );
    }

    #[test]
    fn slice_errors() {
        let x = "f32[batch, 4]";
        assert_eq!(
            err(&slice(&[0, 1], "0", "1", &[1]), &[x]),
            "slice: axes, starts, ends and steps have 2, 1, 1 and 1 entries; they must agree"
        );
        assert_eq!(
            err(&slice(&[1], "0", "1", &[0]), &[x]),
            "slice: the step for axis 1 is zero"
        );
        assert_eq!(
            err(&slice(&[1, -1], "0, 0", "1, 1", &[1, 1]), &[x]),
            "slice: axes [1, -1] list axis 1 more than once"
        );
        assert!(err(&slice(&[2], "0", "1", &[1]), &[x]).contains("out of range for rank 2"));
    }

    #[test]
    fn gather_and_gather_elements() {
        let g = |axis| Op::Gather { axis };
        assert_eq!(
            ok(&g(0), &["f32[vocab, 384]", "i64[batch, seq]"]),
            "f32[batch, seq, 384]"
        );
        assert_eq!(ok(&g(-1), &["f32[a, b, c]", "i32[]"]), "f32[a, b]");
        assert_eq!(ok(&g(1), &["u8[a, b, c]", "i32[n]"]), "u8[a, n, c]");
        assert_eq!(
            err(&g(0), &["f32[10]", "f32[2]"]),
            "gather: input 1 has dtype f32, expected i64 or i32 indices"
        );
        assert!(err(&g(1), &["f32[10]", "i64[2]"]).contains("axis 1 is out of range for rank 1"));
        let ge = |axis| Op::GatherElements { axis };
        assert_eq!(
            ok(&ge(1), &["f32[batch, seq]", "i64[batch, k]"]),
            "f32[batch, k]"
        );
        assert_eq!(
            err(&ge(0), &["f32[4, 4]", "i64[4]"]),
            "gather_elements: indices [4] have rank 1, expected 2 (the rank of data [4, 4])"
        );
        assert_eq!(
            err(&ge(0), &["f32[4, 4]", "i64[9, 5]"]),
            "gather_elements: indices [9, 5] exceed data [4, 4] in dim 1, which is not the \
             gather axis 0"
        );
        assert!(err(&ge(0), &["f32[4]", "u8[4]"]).contains("expected i64 or i32"));
    }

    #[test]
    fn range_lengths() {
        let r = |s: &str, l: &str, d: &str, dtype| Op::Range {
            start: Dim::parse(s).unwrap(),
            limit: Dim::parse(l).unwrap(),
            delta: Dim::parse(d).unwrap(),
            dtype,
        };
        assert_eq!(ok(&r("0", "10", "3", DType::I64), &[]), "i64[4]");
        assert_eq!(ok(&r("10", "0", "-3", DType::F32), &[]), "f32[4]");
        assert_eq!(ok(&r("5", "0", "1", DType::I32), &[]), "i32[0]");
        assert_eq!(ok(&r("0", "seq", "1", DType::I64), &[]), "i64[seq]");
        assert_eq!(ok(&r("past", "past+seq", "1", DType::I64), &[]), "i64[seq]");
        assert_eq!(ok(&r("seq", "0", "-1", DType::I64), &[]), "i64[seq]");
        assert_eq!(ok(&r("0", "2*seq", "2", DType::I64), &[]), "i64[seq]");
        assert_eq!(
            err(&r("0", "4", "0", DType::I64), &[]),
            "range: delta is zero"
        );
        assert!(err(&r("0", "4", "d", DType::I64), &[]).contains("delta d is symbolic"));
        assert_eq!(
            err(&r("0", "4", "1", DType::Bool), &[]),
            "range: dtype bool is not an integer or float dtype"
        );
        assert!(err(&r("0", "4", "1", DType::I64), &["f32[1]"]).contains("takes 0 inputs"));
    }
}
