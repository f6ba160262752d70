//! Inference for the data-dependent selection ops: `topk` (values and i64 indices with the axis
//! cut to k), `scatter_elements` and `scatter_nd` (data's type out), and `cumprod`.

use super::super::dim::Dim;
use super::super::op::ScatterReduction;
use super::super::types::{DType, Shape, TensorType};
use super::{k, Ctx};
use crate::error::Result;

/// CumProd: floats or integers, the axis must exist, same type out.
pub(super) fn cumprod(cx: &Ctx, axis: i64) -> Result<TensorType> {
    let x = cx.numeric(0)?;
    cx.axis(axis, x.rank())?;
    Ok(x.clone())
}

/// TopK: numeric input, `0 ≤ k ≤ dim` (when the dim is known); the axis becomes `k`.
pub(super) fn topk(cx: &Ctx, kk: i64, axis: i64) -> Result<Vec<TensorType>> {
    let x = cx.numeric(0)?;
    let ax = cx.axis(axis, x.rank())?;
    if kk < 0 {
        return cx.err(format!("k is {kk}, expected k ≥ 0"));
    }
    let mut dims = x.shape.0.clone();
    if let Some(d) = dims[ax].as_known() {
        if kk > d {
            return cx.err(format!(
                "k is {kk}, larger than dim {ax} of {} ({d})",
                x.shape
            ));
        }
    }
    dims[ax] = k(kk);
    Ok(vec![
        TensorType::new(x.dtype, Shape(dims.clone())),
        TensorType::new(DType::I64, Shape(dims)),
    ])
}

/// Bool data only scatters without a reduction; updates must have data's dtype.
fn data_and_updates<'a>(cx: &Ctx<'a>, reduction: ScatterReduction) -> Result<&'a TensorType> {
    let data = if reduction == ScatterReduction::None {
        cx.input(0)?
    } else {
        cx.numeric(0)?
    };
    cx.same_dtype(2, 0)?;
    Ok(data)
}

/// True when both dims are known and `a > b`.
fn known_gt(a: &Dim, b: &Dim) -> bool {
    matches!((a.as_known(), b.as_known()), (Some(x), Some(y)) if x > y)
}

/// True when both dims are known and differ.
fn known_ne(a: &Dim, b: &Dim) -> bool {
    matches!((a.as_known(), b.as_known()), (Some(x), Some(y)) if x != y)
}

/// ScatterElements: indices (i64/i32) and updates share a shape of data's rank, no larger
/// than data off the axis (when known).
pub(super) fn scatter_elements(
    cx: &Ctx,
    axis: i64,
    reduction: ScatterReduction,
) -> Result<TensorType> {
    let data = data_and_updates(cx, reduction)?;
    let idx = cx.dtype(
        1,
        |d| matches!(d, DType::I64 | DType::I32),
        "i64 or i32 indices",
    )?;
    let upd = cx.input(2)?;
    let ax = cx.axis(axis, data.rank())?;
    if idx.rank() != data.rank() || upd.rank() != idx.rank() {
        return cx.err(format!(
            "data {}, indices {} and updates {} must have the same rank",
            data.shape, idx.shape, upd.shape
        ));
    }
    for (j, ((i, u), d)) in idx
        .shape
        .0
        .iter()
        .zip(&upd.shape.0)
        .zip(&data.shape.0)
        .enumerate()
    {
        if known_ne(i, u) {
            return cx.err(format!(
                "updates {} differ from indices {} in dim {j}",
                upd.shape, idx.shape
            ));
        }
        if j != ax && known_gt(i, d) {
            return cx.err(format!(
                "indices {} exceed data {} in dim {j}, which is not the scatter axis {ax}",
                idx.shape, data.shape
            ));
        }
    }
    Ok(data.clone())
}

/// ScatterND: i64 indices `[.., q]` with `1 ≤ q ≤ rank` (q known); updates have shape
/// `indices.shape[..-1] ++ data.shape[q..]`.
pub(super) fn scatter_nd(cx: &Ctx, reduction: ScatterReduction) -> Result<TensorType> {
    let data = data_and_updates(cx, reduction)?;
    let idx = cx.dtype(1, |d| d == DType::I64, "i64 indices")?;
    let upd = cx.input(2)?;
    let Some(last) = idx.shape.0.last() else {
        return cx.err("indices are rank 0, expected rank ≥ 1");
    };
    let q = match last.as_known().map(usize::try_from) {
        Some(Ok(q)) if (1..=data.rank()).contains(&q) => q,
        _ => {
            return cx.err(format!(
                "the last dim of indices {} must be known and in 1..={} (data {})",
                idx.shape,
                data.rank(),
                data.shape
            ))
        }
    };
    let lead = &idx.shape.0[..idx.rank() - 1];
    let want: Vec<Dim> = lead.iter().chain(&data.shape.0[q..]).cloned().collect();
    if upd.rank() != want.len() || upd.shape.0.iter().zip(&want).any(|(a, b)| known_ne(a, b)) {
        return cx.err(format!(
            "updates {} must have shape {} (indices {}, data {})",
            upd.shape,
            Shape(want),
            idx.shape,
            data.shape
        ));
    }
    Ok(data.clone())
}

#[cfg(test)]
mod tests {
    use super::super::super::op::{Op, ScatterReduction as R};
    use super::super::testing::{err, ok};

    fn topk(k: i64, axis: i64) -> Op {
        Op::TopK {
            k,
            axis,
            largest: true,
            sorted: true,
        }
    }

    #[test]
    fn topk_cuts_the_axis_to_k() {
        assert_eq!(ok(&topk(2, -1), &["f32[b, 5]"]), "f32[b, 2]; i64[b, 2]");
        assert_eq!(ok(&topk(3, 0), &["i32[n, 4]"]), "i32[3, 4]; i64[3, 4]");
        assert!(err(&topk(6, 1), &["f32[2, 5]"]).contains("larger than dim 1"));
        assert!(err(&topk(-1, 1), &["f32[2, 5]"]).contains("k ≥ 0"));
        assert!(err(&topk(1, 2), &["f32[2, 5]"]).contains("out of range"));
        assert!(err(&topk(1, 0), &["bool[2]"]).contains("dtype"));
    }

    #[test]
    fn scatter_elements_types() {
        let op = Op::ScatterElements {
            axis: 1,
            reduction: R::Add,
        };
        assert_eq!(
            ok(&op, &["f32[3, 4]", "i64[2, 7]", "f32[2, 7]"]),
            "f32[3, 4]"
        );
        assert!(err(&op, &["f32[3, 4]", "i64[4, 1]", "f32[4, 1]"]).contains("exceed"));
        assert!(err(&op, &["f32[3, 4]", "i64[2, 2]", "f32[2, 3]"]).contains("differ"));
        assert!(err(&op, &["f32[3, 4]", "f32[2, 2]", "f32[2, 2]"]).contains("indices"));
        assert!(err(&op, &["bool[3]", "i64[1]", "bool[1]"]).contains("dtype"));
        let none = Op::ScatterElements {
            axis: 0,
            reduction: R::None,
        };
        assert_eq!(ok(&none, &["bool[3]", "i32[1]", "bool[1]"]), "bool[3]");
    }

    #[test]
    fn scatter_nd_types() {
        let op = Op::ScatterND { reduction: R::None };
        let ok3 = |i: &str, u: &str| ok(&op, &["f32[4, 5, 6]", i, u]);
        assert_eq!(ok3("i64[2, 1]", "f32[2, 5, 6]"), "f32[4, 5, 6]");
        assert_eq!(ok3("i64[n, 3]", "f32[n]"), "f32[4, 5, 6]");
        assert!(err(&op, &["f32[4, 5]", "i64[2, 3]", "f32[2]"]).contains("last dim"));
        assert!(err(&op, &["f32[4, 5]", "i64[2, 1]", "f32[2, 4]"]).contains("must have shape"));
        assert!(err(&op, &["f32[4]", "i64[]", "f32[]"]).contains("rank 0"));
    }
}
