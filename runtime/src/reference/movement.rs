//! Data movement: reshape, transpose, expand, slice, concat, split and shape_of, plus the
//! dtype-generic element picking that every movement kernel is written with.
//!
//! Each kernel computes, for every output element in row-major order, the linear index of the
//! source element it copies, then [`take`]s those elements. Values are never converted, so every
//! dtype (i64 beyond 2^53 included) moves bit-exactly. Gathers live in `movement/gather.rs`;
//! pad, tile, trilu and range in `movement/pad_tile.rs`.

mod gather;
mod pad_tile;

pub use gather::{gather, gather_elements};
pub use pad_tile::{pad, range, tile, trilu};

use super::util::{
    broadcast_indices, broadcast_shapes, normalize_axis, strides, take, unravel, KResult,
};
use crate::ops::{Bindings, Dim};
use crate::{DType, Tensor, TensorData};

/// Largest element count a kernel will materialise (keeps `Vec` allocation from panicking).
const MAX_ELEMENTS: usize = isize::MAX as usize / 16;

/// The elements of `a` followed by those of `b` (same dtype).
fn join(a: &TensorData, b: &TensorData) -> KResult<TensorData> {
    use TensorData as D;
    Ok(match (a, b) {
        (D::F32(x), D::F32(y)) => D::F32([x.as_slice(), y].concat()),
        (D::F16(x), D::F16(y)) => D::F16([x.as_slice(), y].concat()),
        (D::BF16(x), D::BF16(y)) => D::BF16([x.as_slice(), y].concat()),
        (D::F64(x), D::F64(y)) => D::F64([x.as_slice(), y].concat()),
        (D::I64(x), D::I64(y)) => D::I64([x.as_slice(), y].concat()),
        (D::I32(x), D::I32(y)) => D::I32([x.as_slice(), y].concat()),
        (D::I8(x), D::I8(y)) => D::I8([x.as_slice(), y].concat()),
        (D::U8(x), D::U8(y)) => D::U8([x.as_slice(), y].concat()),
        (D::I16(x), D::I16(y)) => D::I16([x.as_slice(), y].concat()),
        (D::U16(x), D::U16(y)) => D::U16([x.as_slice(), y].concat()),
        (D::U32(x), D::U32(y)) => D::U32([x.as_slice(), y].concat()),
        (D::U64(x), D::U64(y)) => D::U64([x.as_slice(), y].concat()),
        (D::Bool(x), D::Bool(y)) => D::Bool([x.as_slice(), y].concat()),
        _ => return Err(format!("dtypes differ: {} and {}", a.dtype(), b.dtype())),
    })
}

/// `x`'s elements followed by one extra element, `value` cast to x's dtype; the extra element's
/// index is `x.len()`. Used by kernels that fill positions not copied from x.
fn with_fill(x: &Tensor, value: f64) -> KResult<TensorData> {
    let fill = Tensor::from_f64_values(x.dtype(), vec![1], &[value]).map_err(|e| e.to_string())?;
    join(x.data(), fill.data())
}

/// `product(shape)`, or an error when it overflows or is too large to allocate.
fn checked_count(shape: &[usize]) -> KResult<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| format!("shape {shape:?} has too many elements"))
}

/// For every element of `out_shape` (row-major), `src(multi_index)`.
fn source_indices(out_shape: &[usize], src: impl Fn(&[usize]) -> usize) -> KResult<Vec<usize>> {
    let n = checked_count(out_shape)?;
    Ok((0..n).map(|l| src(&unravel(l, out_shape))).collect())
}

fn make(shape: Vec<usize>, data: TensorData) -> KResult<Tensor> {
    Tensor::new(shape, data).map_err(|e| e.to_string())
}

/// Evaluates a dim, naming `what` in the error.
fn dim_value(d: &Dim, b: &Bindings, what: &str) -> KResult<i64> {
    d.eval(b).map_err(|e| format!("{what} `{d}`: {e}"))
}

/// Evaluates a dim that must be a size (≥ 0).
fn dim_size(d: &Dim, b: &Bindings, what: &str) -> KResult<usize> {
    let v = dim_value(d, b, what)?;
    usize::try_from(v).map_err(|_| format!("{what} `{d}` is {v}, expected a size ≥ 0"))
}

fn dim_sizes(ds: &[Dim], b: &Bindings, what: &str) -> KResult<Vec<usize>> {
    ds.iter()
        .enumerate()
        .map(|(i, d)| dim_size(d, b, &format!("{what} {i}")))
        .collect()
}

/// `x` viewed with the evaluated `shape` (same element count).
pub fn reshape(x: &Tensor, shape: &[Dim], b: &Bindings) -> KResult<Tensor> {
    let dims = dim_sizes(shape, b, "reshape dim")?;
    let n = checked_count(&dims)?;
    if n != x.len() {
        return Err(format!(
            "cannot reshape {:?} ({} elements) to {dims:?} ({n} elements)",
            x.shape(),
            x.len()
        ));
    }
    make(dims, x.data().clone())
}

/// `y.shape[i] = x.shape[perm[i]]`.
pub fn transpose(x: &Tensor, perm: &[i64]) -> KResult<Tensor> {
    let rank = x.rank();
    if perm.len() != rank {
        return Err(format!(
            "perm {perm:?} has {} entries, expected rank {rank}",
            perm.len()
        ));
    }
    let p: Vec<usize> = perm
        .iter()
        .map(|&a| normalize_axis(a, rank))
        .collect::<KResult<_>>()?;
    for (i, a) in p.iter().enumerate() {
        if p[..i].contains(a) {
            return Err(format!("perm {perm:?} is not a permutation"));
        }
    }
    let out_shape: Vec<usize> = p.iter().map(|&a| x.shape()[a]).collect();
    let xs = strides(x.shape());
    let idx = source_indices(&out_shape, |o| {
        o.iter().zip(&p).map(|(&i, &a)| i * xs[a]).sum()
    })?;
    make(out_shape, take(x.data(), &idx)?)
}

/// Bidirectional numpy broadcast of x to the evaluated `shape`.
pub fn expand(x: &Tensor, shape: &[Dim], b: &Bindings) -> KResult<Tensor> {
    let target = dim_sizes(shape, b, "expand dim")?;
    let out_shape = broadcast_shapes(&[x.shape(), &target])
        .map_err(|_| format!("cannot expand {:?} to {target:?}", x.shape()))?;
    checked_count(&out_shape)?;
    let idx = broadcast_indices(x.shape(), &out_shape);
    make(out_shape, take(x.data(), &idx)?)
}

/// ONNX Slice's resolution of one axis of size `dim`: `(first index, element count)`.
/// Negative start/end count from the end, then clamp to `[0, dim]` (step > 0) or `[-1, dim-1]`
/// (step < 0). `step` must be non-zero.
pub(crate) fn slice_axis(start: i64, end: i64, step: i64, dim: usize) -> (i128, usize) {
    let (step, dim) = (i128::from(step), dim as i128);
    let resolve = |v: i64| {
        if v < 0 {
            i128::from(v) + dim
        } else {
            i128::from(v)
        }
    };
    let (lo, hi) = if step > 0 { (0, dim) } else { (-1, dim - 1) };
    let (s, e) = (resolve(start).clamp(lo, hi), resolve(end).clamp(lo, hi));
    let (span, mag) = if step > 0 {
        (e - s, step)
    } else {
        (s - e, -step)
    };
    let count = if span <= 0 { 0 } else { (span + mag - 1) / mag };
    // count ≤ dim, so it fits.
    (s, count as usize)
}

/// ONNX Slice over the listed axes; unlisted axes are taken whole.
pub fn slice(
    x: &Tensor,
    axes: &[i64],
    starts: &[Dim],
    ends: &[Dim],
    steps: &[i64],
    b: &Bindings,
) -> KResult<Tensor> {
    let rank = x.rank();
    if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() {
        return Err(format!(
            "slice has {} axes, {} starts, {} ends and {} steps; they must match",
            axes.len(),
            starts.len(),
            ends.len(),
            steps.len()
        ));
    }
    // Per axis: (first index, step, count); unlisted axes are whole.
    let mut plan: Vec<(i128, i128, usize)> = x.shape().iter().map(|&d| (0, 1, d)).collect();
    let mut listed = vec![false; rank];
    for (k, &a) in axes.iter().enumerate() {
        let ax = normalize_axis(a, rank)?;
        if std::mem::replace(&mut listed[ax], true) {
            return Err(format!("axis {a} is listed twice in slice axes {axes:?}"));
        }
        if steps[k] == 0 {
            return Err(format!("slice step for axis {a} is 0"));
        }
        let start = dim_value(&starts[k], b, "slice start")?;
        let end = dim_value(&ends[k], b, "slice end")?;
        let (first, count) = slice_axis(start, end, steps[k], x.shape()[ax]);
        plan[ax] = (first, i128::from(steps[k]), count);
    }
    let out_shape: Vec<usize> = plan.iter().map(|p| p.2).collect();
    let xs = strides(x.shape());
    let idx = source_indices(&out_shape, |o| {
        o.iter()
            .zip(&plan)
            .zip(&xs)
            // Every selected position lies in [0, dim), so the cast is exact.
            .map(|((&i, &(first, step, _)), &s)| (first + i as i128 * step) as usize * s)
            .sum()
    })?;
    make(out_shape, take(x.data(), &idx)?)
}

/// Joins the inputs along `axis`; all other dims and the dtypes must match.
pub fn concat(xs: &[&Tensor], axis: i64) -> KResult<Tensor> {
    let first = xs.first().ok_or("concat needs at least one input")?;
    let rank = first.rank();
    let ax = normalize_axis(axis, rank)?;
    let mut out_shape = first.shape().to_vec();
    out_shape[ax] = 0;
    for (i, t) in xs.iter().enumerate() {
        let same_dims =
            t.rank() == rank && (0..rank).all(|a| a == ax || t.shape()[a] == first.shape()[a]);
        if t.dtype() != first.dtype() || !same_dims {
            return Err(format!(
                "concat input {i} is {}{:?}, which does not match input 0 ({}{:?}) on axis {ax}",
                t.dtype(),
                t.shape(),
                first.dtype(),
                first.shape()
            ));
        }
        out_shape[ax] = out_shape[ax]
            .checked_add(t.shape()[ax])
            .ok_or("concat output dim overflows")?;
    }
    checked_count(&out_shape)?;
    let outer: usize = first.shape()[..ax].iter().product();
    let inner: usize = first.shape()[ax + 1..].iter().product();
    // The inputs back to back; input t starts at `base`.
    let mut joined = first.data().clone();
    for t in &xs[1..] {
        joined = join(&joined, t.data())?;
    }
    let mut idx = Vec::new();
    for o in 0..outer {
        let mut base = 0;
        for t in xs {
            let block = t.shape()[ax] * inner;
            idx.extend((0..block).map(|j| base + o * block + j));
            base += t.len();
        }
    }
    make(out_shape, take(&joined, &idx)?)
}

/// Splits along `axis` into pieces of the evaluated `sizes`, which must sum to the dim.
pub fn split(x: &Tensor, axis: i64, sizes: &[Dim], b: &Bindings) -> KResult<Vec<Tensor>> {
    let ax = normalize_axis(axis, x.rank())?;
    let sizes = dim_sizes(sizes, b, "split size")?;
    let d = x.shape()[ax];
    let total = sizes.iter().try_fold(0usize, |acc, &s| acc.checked_add(s));
    if total != Some(d) {
        return Err(format!(
            "split sizes {sizes:?} do not sum to dim {ax} of {:?}",
            x.shape()
        ));
    }
    let outer: usize = x.shape()[..ax].iter().product();
    let inner: usize = x.shape()[ax + 1..].iter().product();
    let mut out = Vec::with_capacity(sizes.len());
    let mut offset = 0;
    for &size in &sizes {
        let idx: Vec<usize> = (0..outer)
            .flat_map(|o| (0..size * inner).map(move |j| (o * d + offset) * inner + j))
            .collect();
        let mut shape = x.shape().to_vec();
        shape[ax] = size;
        out.push(make(shape, take(x.data(), &idx)?)?);
        offset += size;
    }
    Ok(out)
}

/// The dims `start..end` of x's shape as i64 `[n]` (negative bounds count from the end, then
/// clamp to `[0, rank]`; an empty range gives `[0]`).
pub fn shape_of(x: &Tensor, start: i64, end: Option<i64>) -> KResult<Tensor> {
    let r = x.rank() as i64;
    let norm = |v: i64| (if v < 0 { v.saturating_add(r) } else { v }).clamp(0, r) as usize;
    let (s, e) = (norm(start), norm(end.unwrap_or(r)));
    let dims: Vec<i64> = x.shape()[s..e.max(s)]
        .iter()
        .map(|&d| i64::try_from(d).map_err(|_| format!("dim {d} does not fit in i64")))
        .collect::<KResult<_>>()?;
    Tensor::from_i64_values(DType::I64, vec![dims.len()], &dims).map_err(|e| e.to_string())
}
