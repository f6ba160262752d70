//! The ops of cached decoding: `Op::Rotary` (the rotary embedding of one operand, as
//! `Op::Attention` applies it to q and k) and `Op::CacheWrite` (new keys or values written
//! into a preallocated cache at a position).

use super::attention::{dims4, rotary};
use super::fused::{broadcast_to, check_float, make};
use super::util::{normalize_axis, KResult};
use crate::ops::{Bindings, Dim};
use crate::Tensor;

/// `x·cos + rotate_half(x)·sin` for `x: [B, H, S, D]` with `cos`, `sin` broadcast to
/// `[B, 1, S, D]`.
pub fn rotary_op(x: &Tensor, cos: &Tensor, sin: &Tensor) -> KResult<Tensor> {
    let dt = x.dtype();
    check_float("rotary x", x, None)?;
    check_float("rotary cos", cos, Some(dt))?;
    check_float("rotary sin", sin, Some(dt))?;
    let [nb, nh, ns, nd] = dims4("x", x)?;
    if nd % 2 != 0 {
        return Err(format!("rotary requires an even head dim, got {nd}"));
    }
    let trig_shape = [nb, 1, ns, nd];
    let c = broadcast_to("rotary cos", cos, &trig_shape)?;
    let s = broadcast_to("rotary sin", sin, &trig_shape)?;
    let out = rotary(&x.to_f64_vec(), [nb, nh, ns, nd], &c, &s);
    make(dt, x.shape().to_vec(), &out)
}

/// Where `new` goes in `cache` along `axis` at position `at`: `(outer, cache_len, new_len,
/// inner)` element counts, checked (shapes agree off the axis; `at + n` fits).
pub fn cache_write_extent(
    cache: &[usize],
    new: &[usize],
    axis: usize,
    at: i64,
) -> KResult<(usize, usize, usize, usize)> {
    if cache.len() != new.len() || axis >= cache.len() {
        return Err(format!(
            "cache_write: cache {cache:?} and new {new:?} must have the same rank, above axis {axis}"
        ));
    }
    for (i, (c, n)) in cache.iter().zip(new).enumerate() {
        if i != axis && c != n {
            return Err(format!(
                "cache_write: new {new:?} differs from the cache {cache:?} in dim {i}"
            ));
        }
    }
    let (cap, n) = (cache[axis], new[axis]);
    let at = usize::try_from(at).map_err(|_| format!("cache_write: negative position {at}"))?;
    match at.checked_add(n) {
        Some(end) if end <= cap => {}
        _ => {
            return Err(format!(
                "the cache is full: {at} positions are filled and {n} more do not fit in its \
                 capacity of {cap}"
            ))
        }
    }
    let outer: usize = cache[..axis].iter().product();
    let inner: usize = cache[axis + 1..].iter().product();
    Ok((outer, cap, n, inner))
}

/// `cache` with `new` written at `at..at + n` along `axis`.
pub fn cache_write(
    cache: &Tensor,
    new: &Tensor,
    axis: i64,
    at: &Dim,
    b: &Bindings,
) -> KResult<Tensor> {
    if cache.dtype() != new.dtype() {
        return Err(format!(
            "cache_write: new has dtype {}, the cache {}",
            new.dtype(),
            cache.dtype()
        ));
    }
    let ax = normalize_axis(axis, cache.rank())?;
    let pos = at
        .eval(b)
        .map_err(|e| format!("cache_write position {at}: {e}"))?;
    let (outer, cap, n, inner) = cache_write_extent(cache.shape(), new.shape(), ax, pos)?;
    let at = pos as usize;
    let size = cache.dtype().size();
    let mut bytes = cache.to_le_bytes();
    let src = new.to_le_bytes();
    let (row, new_row) = (cap * inner * size, n * inner * size);
    for o in 0..outer {
        let dst = o * row + at * inner * size;
        bytes[dst..dst + new_row].copy_from_slice(&src[o * new_row..(o + 1) * new_row]);
    }
    Tensor::from_le_bytes(cache.dtype(), cache.shape().to_vec(), &bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    fn t(shape: &[usize], v: &[f64]) -> Tensor {
        Tensor::from_f64_values(DType::F32, shape.to_vec(), v).unwrap()
    }

    #[test]
    fn cache_write_places_rows_and_refuses_overflow() {
        // cache [2, 4, 2] (two rows of a 4-position cache), new [2, 2, 2] at position 1.
        let cache = t(&[2, 4, 2], &[0.0; 16]);
        let new = t(&[2, 2, 2], &[1., 2., 3., 4., 5., 6., 7., 8.]);
        let mut b = Bindings::new();
        b.insert("past".into(), 1);
        let out = cache_write(&cache, &new, 1, &Dim::sym("past"), &b).unwrap();
        #[rustfmt::skip]
        let want = [0., 0., 1., 2., 3., 4., 0., 0.,
                    0., 0., 5., 6., 7., 8., 0., 0.];
        assert_eq!(out.to_f64_vec(), want);
        b.insert("past".into(), 3);
        let err = cache_write(&cache, &new, 1, &Dim::sym("past"), &b).unwrap_err();
        assert!(err.contains("the cache is full"), "{err}");
        assert!(cache_write(&cache, &t(&[2, 2, 3], &[0.0; 12]), 1, &Dim::known(0), &b).is_err());
        assert!(cache_write(&cache, &new, 1, &Dim::known(-1), &b).is_err());
    }

    #[test]
    fn rotary_rotates_halves() {
        // x [1, 1, 1, 4] = [1, 2, 3, 4]; cos = 0.5, sin = 2: x·c + [-3, -4, 1, 2]·s.
        let x = t(&[1, 1, 1, 4], &[1., 2., 3., 4.]);
        let c = t(&[1, 4], &[0.5; 4]);
        let s = t(&[1, 4], &[2.0; 4]);
        let y = rotary_op(&x, &c, &s).unwrap().to_f64_vec();
        assert_eq!(y, [0.5 - 6.0, 1.0 - 8.0, 1.5 + 2.0, 2.0 + 4.0]);
        assert!(rotary_op(&t(&[1, 1, 1, 3], &[0.; 3]), &c, &s).is_err());
    }
}
