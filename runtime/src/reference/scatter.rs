//! Scatters: `scatter_elements` and `scatter_nd` (ONNX), as a list of writes applied in order.
//!
//! Each kernel first turns its indices into `(target, source)` pairs: the linear index of the
//! element of `data` written and the linear index of the update written there, in the row-major
//! order of the indices. Without a reduction the updates are copied bit-exactly for any dtype, so
//! the last of several writes to one element wins. With a reduction, every written element is
//! combined in the dtype's domain (f64 for floats, rounded once at the end; wrapping i64 for
//! integers), in write order; untouched elements are never converted.

use super::special::{max_nan, min_nan};
use super::topk::count;
use super::util::{normalize_axis, strides, unravel, KResult};
use crate::ops::ScatterReduction;
use crate::{Tensor, TensorData};

/// The index tensor's values; only i64 and i32 are accepted.
fn index_values(indices: &Tensor) -> KResult<Vec<i64>> {
    match indices.data() {
        TensorData::I64(v) => Ok(v.clone()),
        TensorData::I32(v) => Ok(v.iter().map(|&i| i64::from(i)).collect()),
        other => Err(format!("indices must be i64 or i32, got {}", other.dtype())),
    }
}

/// Resolves a possibly negative index against axis `axis` of size `dim`.
fn resolve(i: i64, dim: usize, axis: usize) -> KResult<usize> {
    let d = i128::try_from(dim).unwrap_or(i128::MAX);
    let r = if i < 0 {
        i128::from(i) + d
    } else {
        i128::from(i)
    };
    if r < 0 || r >= d {
        return Err(format!(
            "index {i} is out of range for axis {axis} of size {dim}"
        ));
    }
    usize::try_from(r).map_err(|_| format!("index {i} is out of range"))
}

/// `data` with `data[t] = updates[s]` for every `(t, s)` in order, for any dtype, bit-exactly.
fn assign(
    data: &TensorData,
    updates: &TensorData,
    writes: &[(usize, usize)],
) -> KResult<TensorData> {
    fn go<T: Copy>(d: &[T], u: &[T], writes: &[(usize, usize)]) -> KResult<Vec<T>> {
        let mut out = d.to_vec();
        for &(t, s) in writes {
            let v = u.get(s).copied();
            match (out.get_mut(t), v) {
                (Some(o), Some(v)) => *o = v,
                _ => return Err(format!("internal: write {s} -> {t} is out of range")),
            }
        }
        Ok(out)
    }
    use TensorData as D;
    Ok(match (data, updates) {
        (D::F32(d), D::F32(u)) => D::F32(go(d, u, writes)?),
        (D::F16(d), D::F16(u)) => D::F16(go(d, u, writes)?),
        (D::BF16(d), D::BF16(u)) => D::BF16(go(d, u, writes)?),
        (D::F64(d), D::F64(u)) => D::F64(go(d, u, writes)?),
        (D::I64(d), D::I64(u)) => D::I64(go(d, u, writes)?),
        (D::I32(d), D::I32(u)) => D::I32(go(d, u, writes)?),
        (D::I8(d), D::I8(u)) => D::I8(go(d, u, writes)?),
        (D::U8(d), D::U8(u)) => D::U8(go(d, u, writes)?),
        (D::I16(d), D::I16(u)) => D::I16(go(d, u, writes)?),
        (D::U16(d), D::U16(u)) => D::U16(go(d, u, writes)?),
        (D::U32(d), D::U32(u)) => D::U32(go(d, u, writes)?),
        (D::U64(d), D::U64(u)) => D::U64(go(d, u, writes)?),
        (D::Bool(d), D::Bool(u)) => D::Bool(go(d, u, writes)?),
        _ => {
            return Err(format!(
                "updates have dtype {}, expected data's {}",
                updates.dtype(),
                data.dtype()
            ))
        }
    })
}

/// A write list: `(target, source)` linear indices.
type Writes = Vec<(usize, usize)>;

/// Folds the writes with `f`: one accumulator per distinct target, starting from data's
/// value; returns the accumulators and the `(target, accumulator)` writes that store them.
fn fold<T: Copy>(
    d: &[T],
    u: &[T],
    writes: &[(usize, usize)],
    f: impl Fn(T, T) -> T,
) -> KResult<(Vec<T>, Writes)> {
    let mut slot = vec![usize::MAX; d.len()];
    let (mut acc, mut out) = (Vec::new(), Vec::new());
    for &(t, s) in writes {
        let (Some(&dv), Some(&uv)) = (d.get(t), u.get(s)) else {
            return Err(format!("internal: write {s} -> {t} is out of range"));
        };
        if slot[t] == usize::MAX {
            slot[t] = acc.len();
            out.push((t, acc.len()));
            acc.push(dv);
        }
        acc[slot[t]] = f(acc[slot[t]], uv);
    }
    Ok((acc, out))
}

/// Applies the writes to `data` with `reduction`; the output has data's shape and dtype.
fn apply(
    data: &Tensor,
    updates: &Tensor,
    writes: &[(usize, usize)],
    reduction: ScatterReduction,
) -> KResult<Tensor> {
    use ScatterReduction as R;
    let dt = data.dtype();
    if updates.dtype() != dt {
        return Err(format!(
            "updates have dtype {}, expected {dt}",
            updates.dtype()
        ));
    }
    let (vals, stores) = match reduction {
        R::None => {
            let out = assign(data.data(), updates.data(), writes)?;
            return Tensor::new(data.shape().to_vec(), out).map_err(|e| e.to_string());
        }
        _ if dt.is_float() => {
            let f: fn(f64, f64) -> f64 = match reduction {
                R::Add => |a, b| a + b,
                R::Mul => |a, b| a * b,
                R::Max => max_nan,
                _ => min_nan,
            };
            let (acc, out) = fold(&data.to_f64_vec(), &updates.to_f64_vec(), writes, f)?;
            (Tensor::from_f64_values(dt, vec![acc.len()], &acc), out)
        }
        _ if dt.is_int() => {
            let f: fn(i64, i64) -> i64 = match reduction {
                R::Add => i64::wrapping_add,
                R::Mul => i64::wrapping_mul,
                R::Max => std::cmp::max,
                _ => std::cmp::min,
            };
            let (acc, out) = fold(&data.to_i64_vec(), &updates.to_i64_vec(), writes, f)?;
            (Tensor::from_i64_values(dt, vec![acc.len()], &acc), out)
        }
        _ => {
            return Err(format!(
                "reduction {} takes numbers, got {dt}",
                reduction.name()
            ))
        }
    };
    let vals = vals.map_err(|e| e.to_string())?;
    let out = assign(data.data(), vals.data(), &stores)?;
    Tensor::new(data.shape().to_vec(), out).map_err(|e| e.to_string())
}

/// ONNX ScatterElements: indices and updates share a shape of data's rank, no larger than
/// data on the axes other than `axis`.
pub fn scatter_elements(
    data: &Tensor,
    indices: &Tensor,
    updates: &Tensor,
    axis: i64,
    reduction: ScatterReduction,
) -> KResult<Tensor> {
    let rank = data.rank();
    let ax = normalize_axis(axis, rank)?;
    let (ds, is) = (data.shape(), indices.shape());
    if indices.rank() != rank || updates.shape() != is {
        return Err(format!(
            "indices {is:?} and updates {:?} must share a shape of data {ds:?}'s rank",
            updates.shape()
        ));
    }
    if let Some(a) = (0..rank).find(|&a| a != ax && is[a] > ds[a]) {
        return Err(format!(
            "indices {is:?} are larger than data {ds:?} on axis {a}"
        ));
    }
    let st = strides(ds);
    let writes = index_values(indices)?
        .into_iter()
        .enumerate()
        .map(|(l, i)| {
            let mut pos = unravel(l, is);
            pos[ax] = resolve(i, ds[ax], ax)?;
            Ok((pos.iter().zip(&st).map(|(p, s)| p * s).sum(), l))
        })
        .collect::<KResult<Vec<_>>>()?;
    apply(data, updates, &writes, reduction)
}

/// ONNX ScatterND: indices `[.., q]` address slices `data[i0, .., iq-1]` of shape
/// `data.shape[q..]`; updates have shape `indices.shape[..-1] ++ data.shape[q..]`.
pub fn scatter_nd(
    data: &Tensor,
    indices: &Tensor,
    updates: &Tensor,
    reduction: ScatterReduction,
) -> KResult<Tensor> {
    let (ds, is) = (data.shape(), indices.shape());
    let q = match is.last() {
        Some(&q) if (1..=data.rank()).contains(&q) => q,
        _ => {
            return Err(format!(
                "indices {is:?} must end in a dim 1..={} (data {ds:?})",
                data.rank()
            ))
        }
    };
    let lead = &is[..is.len() - 1];
    let want: Vec<usize> = lead.iter().chain(&ds[q..]).copied().collect();
    if updates.shape() != want.as_slice() {
        return Err(format!(
            "updates {:?} must have shape {want:?} (indices {is:?}, data {ds:?})",
            updates.shape()
        ));
    }
    let slice = count(&ds[q..])?;
    let tuples = count(lead)?;
    let st = strides(ds);
    let idx = index_values(indices)?;
    let mut writes = Vec::new();
    for (t, tuple) in idx.chunks_exact(q).take(tuples).enumerate() {
        let mut base = 0usize;
        for (a, &i) in tuple.iter().enumerate() {
            base += resolve(i, ds[a], a)? * st[a];
        }
        writes.extend((0..slice).map(|s| (base + s, t * slice + s)));
    }
    apply(data, updates, &writes, reduction)
}
