//! TopK: the `k` largest (or smallest) elements along an axis, with their i64 indices.
//!
//! Each line along the axis is ordered by a stable sort of its positions, so equal values keep
//! the lower index first (ONNX). NaN sorts above every number (numpy's order), so it comes first
//! for `largest` and last otherwise. Values are compared in f64 (floats) or i64 (integers) but
//! copied from the input bit-exactly.

use super::util::{normalize_axis, take, KResult};
use crate::Tensor;
use std::cmp::Ordering;

/// The ascending order of floats with NaN above everything (NaNs equal to each other).
fn float_order(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Sorts `line` (positions along the axis) stably by `cmp` of their values, descending when
/// `largest`, so ties keep their original (lower index first) order.
fn order(line: &mut [usize], largest: bool, cmp: impl Fn(usize, usize) -> Ordering) {
    if largest {
        line.sort_by(|&a, &b| cmp(b, a));
    } else {
        line.sort_by(|&a, &b| cmp(a, b));
    }
}

/// `product(shape)`, or an error when it overflows.
pub(super) fn count(shape: &[usize]) -> KResult<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} has too many elements"))
}

/// `(values, indices)` of the top `k` along `axis`; the axis of both outputs becomes `k`.
pub fn topk(x: &Tensor, k: i64, axis: i64, largest: bool) -> KResult<Vec<Tensor>> {
    let dt = x.dtype();
    if !(dt.is_float() || dt.is_int()) {
        return Err(format!("topk takes numbers, got {dt}"));
    }
    let ax = normalize_axis(axis, x.rank())?;
    let d = x.shape()[ax];
    let kk = usize::try_from(k)
        .ok()
        .filter(|&kk| kk <= d)
        .ok_or_else(|| {
            format!(
                "k is {k}, expected 0 ≤ k ≤ {d} (dim {ax} of {:?})",
                x.shape()
            )
        })?;
    let mut out_shape = x.shape().to_vec();
    out_shape[ax] = kk;
    let n = count(&out_shape)?;
    if n == 0 {
        let values = Tensor::new(out_shape.clone(), take(x.data(), &[])?);
        let indices = Tensor::from_i64(out_shape, Vec::new());
        return Ok(vec![
            values.map_err(|e| e.to_string())?,
            indices.map_err(|e| e.to_string())?,
        ]);
    }
    // n > 0, so neither product overflows (both divide n).
    let outer: usize = x.shape()[..ax].iter().product();
    let inner: usize = x.shape()[ax + 1..].iter().product();
    let floats = if dt.is_float() {
        x.to_f64_vec()
    } else {
        Vec::new()
    };
    let ints = if dt.is_float() {
        Vec::new()
    } else {
        x.to_i64_vec()
    };
    let (mut src, mut pos) = (vec![0usize; n], vec![0i64; n]);
    let mut line: Vec<usize> = Vec::with_capacity(d);
    for o in 0..outer {
        for j in 0..inner {
            let at = |t: usize| (o * d + t) * inner + j;
            line.clear();
            line.extend(0..d);
            if dt.is_float() {
                order(&mut line, largest, |a, b| {
                    float_order(floats[at(a)], floats[at(b)])
                });
            } else {
                order(&mut line, largest, |a, b| ints[at(a)].cmp(&ints[at(b)]));
            }
            for (r, &t) in line.iter().take(kk).enumerate() {
                let dst = (o * kk + r) * inner + j;
                src[dst] = at(t);
                pos[dst] = t as i64;
            }
        }
    }
    let values = Tensor::new(out_shape.clone(), take(x.data(), &src)?);
    let indices = Tensor::from_i64(out_shape, pos);
    Ok(vec![
        values.map_err(|e| e.to_string())?,
        indices.map_err(|e| e.to_string())?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(x: Tensor, k: i64, axis: i64, largest: bool) -> (Vec<f64>, Vec<i64>) {
        let out = topk(&x, k, axis, largest).unwrap();
        (out[0].to_f64_vec(), out[1].to_i64_vec())
    }

    #[test]
    fn nan_is_the_largest_and_ties_keep_the_lower_index() {
        let x = Tensor::from_f32(vec![5], vec![1.0, f32::NAN, 3.0, 3.0, f32::NAN]).unwrap();
        let (v, i) = run(x.clone(), 3, 0, true);
        assert!(v[0].is_nan() && v[1].is_nan() && v[2] == 3.0);
        assert_eq!(i, vec![1, 4, 2]);
        let (v, i) = run(x, 3, 0, false);
        assert_eq!(v, vec![1.0, 3.0, 3.0]);
        assert_eq!(i, vec![0, 2, 3]);
    }

    #[test]
    fn bad_k_and_bool_are_errors() {
        let x = Tensor::from_i64(vec![2], vec![1, 2]).unwrap();
        assert!(topk(&x, 3, 0, true).is_err());
        assert!(topk(&x, -1, 0, true).is_err());
        assert!(topk(&x, 1, 1, true).is_err());
        let b = Tensor::from_bools(vec![1], vec![true]).unwrap();
        assert!(topk(&b, 1, 0, true).is_err());
        let (v, i) = run(x, 0, 0, true);
        assert!(v.is_empty() && i.is_empty());
    }

    #[test]
    fn large_i64_values_move_exactly() {
        let big = (1i64 << 60) + 1;
        let x = Tensor::from_i64(vec![3], vec![big, big - 1, 5]).unwrap();
        let out = topk(&x, 2, 0, true).unwrap();
        assert_eq!(out[0].to_i64_vec(), vec![big, big - 1]);
    }
}
