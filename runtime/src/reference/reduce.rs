//! Reduction kernels: reduce over axes, argmax/argmin, softmax, cumulative sum and product.
//!
//! All of them first split the input into groups: the elements that map to one output element
//! (reduce, arg_reduce) or one line along the axis (softmax, cumsum), each group listing linear
//! input indices in row-major order. Floats are reduced in f64, integers in i64 (wrapping).

use super::elementwise::element_count;
use super::special::{max_nan, min_nan};
use super::util::{normalize_axis, strides, unravel, KResult};
use crate::ops::{ArgOp, ReduceOp};
use crate::{DType, Tensor};
use std::cmp::Ordering;

/// Splits the elements of a tensor of `shape` into groups that differ only along the axes marked
/// in `reduced`. Groups are ordered like the row-major output with the reduced dims set to 1;
/// a group is empty when a reduced dim is 0.
fn groups(shape: &[usize], reduced: &[bool]) -> KResult<Vec<Vec<usize>>> {
    let kept: Vec<usize> = shape
        .iter()
        .zip(reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    // Checked first: with a zero-sized reduced dim, the kept dims alone may overflow.
    let mut out = vec![Vec::new(); element_count(&kept)?];
    let kept_strides = strides(&kept);
    for lin in 0..shape.iter().product() {
        let idx = unravel(lin, shape);
        let g: usize = (0..shape.len())
            .filter(|&a| !reduced[a])
            .map(|a| idx[a] * kept_strides[a])
            .sum();
        out[g].push(lin);
    }
    Ok(out)
}

/// The output shape after reducing the marked axes.
fn reduced_shape(shape: &[usize], reduced: &[bool], keepdims: bool) -> Vec<usize> {
    let dims = shape.iter().zip(reduced);
    if keepdims {
        dims.map(|(&d, &r)| if r { 1 } else { d }).collect()
    } else {
        dims.filter(|(_, &r)| !r).map(|(&d, _)| d).collect()
    }
}

/// Marks the axes to reduce: `axes` normalised, empty meaning all; duplicates are an error.
fn axis_mask(axes: &[i64], rank: usize) -> KResult<Vec<bool>> {
    if axes.is_empty() {
        return Ok(vec![true; rank]);
    }
    let mut mask = vec![false; rank];
    for &a in axes {
        let n = normalize_axis(a, rank)?;
        if mask[n] {
            return Err(format!("axis {a} is listed twice in {axes:?}"));
        }
        mask[n] = true;
    }
    Ok(mask)
}

/// Reduces a group of floats. Non-empty groups fold from their first element (as numpy does);
/// empty ones give the identity.
fn reduce_f(op: ReduceOp, v: &[f64]) -> f64 {
    let sum = |f: fn(f64) -> f64| v.iter().map(|&x| f(x)).reduce(|a, b| a + b).unwrap_or(0.0);
    let max = v
        .iter()
        .copied()
        .reduce(max_nan)
        .unwrap_or(f64::NEG_INFINITY);
    match op {
        ReduceOp::Sum => sum(|x| x),
        ReduceOp::Mean => sum(|x| x) / v.len() as f64,
        ReduceOp::Max => max,
        ReduceOp::Min => v.iter().copied().reduce(min_nan).unwrap_or(f64::INFINITY),
        ReduceOp::Prod => v.iter().copied().reduce(|a, b| a * b).unwrap_or(1.0),
        ReduceOp::L1 => sum(f64::abs),
        ReduceOp::L2 => sum(|x| x * x).sqrt(),
        ReduceOp::LogSum => sum(|x| x).ln(),
        // NaN, +inf and -inf (all -inf, or empty) maxima are the answer as they stand.
        ReduceOp::LogSumExp if !max.is_finite() => max,
        ReduceOp::LogSumExp => max + v.iter().map(|&x| (x - max).exp()).sum::<f64>().ln(),
        ReduceOp::SumSquare => sum(|x| x * x),
    }
}

/// The smallest and largest value of an integer dtype.
fn int_range(dt: DType) -> (i64, i64) {
    dt.int_range().unwrap_or((i64::MIN, i64::MAX))
}

/// Reduces a group of integers of dtype `dt` (wrapping; float-valued ops truncate toward zero).
fn reduce_i(op: ReduceOp, dt: DType, v: &[i64]) -> i64 {
    let (lo, hi) = int_range(dt);
    let sum = |f: fn(i64) -> i64| v.iter().fold(0i64, |a, &x| a.wrapping_add(f(x)));
    let via_f64 = || {
        let f: Vec<f64> = v.iter().map(|&x| x as f64).collect();
        reduce_f(op, &f) as i64
    };
    match op {
        ReduceOp::Sum => sum(|x| x),
        // Exact mean truncated toward zero; an empty mean is NaN, which casts to 0.
        ReduceOp::Mean if v.is_empty() => 0,
        ReduceOp::Mean => {
            let s: i128 = v.iter().map(|&x| i128::from(x)).sum();
            (s / v.len() as i128) as i64
        }
        ReduceOp::Max => v.iter().copied().max().unwrap_or(lo),
        ReduceOp::Min => v.iter().copied().min().unwrap_or(hi),
        ReduceOp::Prod => v.iter().fold(1i64, |a, &x| a.wrapping_mul(x)),
        ReduceOp::L1 => sum(i64::wrapping_abs),
        ReduceOp::SumSquare => sum(|x| x.wrapping_mul(x)),
        ReduceOp::L2 | ReduceOp::LogSum | ReduceOp::LogSumExp => via_f64(),
    }
}

fn build(dt: DType, shape: Vec<usize>, f: &[f64], i: &[i64]) -> KResult<Tensor> {
    let t = if dt.is_float() {
        Tensor::from_f64_values(dt, shape, f)
    } else {
        Tensor::from_i64_values(dt, shape, i)
    };
    t.map_err(|e| e.to_string())
}

pub fn reduce(op: ReduceOp, axes: &[i64], keepdims: bool, x: &Tensor) -> KResult<Tensor> {
    let dt = x.dtype();
    if dt == DType::Bool {
        return Err(format!("reduce {op:?} takes numbers, got bool"));
    }
    let mask = axis_mask(axes, x.rank())?;
    let groups = groups(x.shape(), &mask)?;
    let shape = reduced_shape(x.shape(), &mask, keepdims);
    if dt.is_float() {
        let v = x.to_f64_vec();
        let out: Vec<f64> = groups
            .iter()
            .map(|g| reduce_f(op, &g.iter().map(|&i| v[i]).collect::<Vec<_>>()))
            .collect();
        build(dt, shape, &out, &[])
    } else {
        let v = x.to_i64_vec();
        let out: Vec<i64> = groups
            .iter()
            .map(|g| reduce_i(op, dt, &g.iter().map(|&i| v[i]).collect::<Vec<_>>()))
            .collect();
        build(dt, shape, &[], &out)
    }
}

/// The position in `v` of its first (or last) most extreme element; `more(a, b)` is `Greater`
/// when `a` is more extreme than `b`. `v` is not empty.
/// The position of the extreme element of each group of `v` (see [`arg_of`]).
fn arg_per_group<T: Copy>(
    groups: &[Vec<usize>],
    v: &[T],
    more: impl Fn(T, T) -> Ordering + Copy,
    select_last: bool,
) -> Vec<i64> {
    groups
        .iter()
        .map(|g| {
            let vals: Vec<T> = g.iter().map(|&i| v[i]).collect();
            arg_of(&vals, more, select_last) as i64
        })
        .collect()
}

fn arg_of<T: Copy>(v: &[T], more: impl Fn(T, T) -> Ordering, select_last: bool) -> usize {
    let mut best = 0;
    for k in 1..v.len() {
        match more(v[k], v[best]) {
            Ordering::Greater => best = k,
            Ordering::Equal if select_last => best = k,
            _ => {}
        }
    }
    best
}

pub fn arg_reduce(
    op: ArgOp,
    axis: i64,
    keepdims: bool,
    select_last: bool,
    x: &Tensor,
) -> KResult<Tensor> {
    if x.dtype() == DType::Bool {
        return Err(format!("{op:?} takes numbers, got bool"));
    }
    let ax = normalize_axis(axis, x.rank())?;
    if x.shape()[ax] == 0 {
        return Err(format!("{op:?} over the empty axis {axis}"));
    }
    let mut mask = vec![false; x.rank()];
    mask[ax] = true;
    let groups = groups(x.shape(), &mask)?;
    let shape = reduced_shape(x.shape(), &mask, keepdims);
    let flip = |o: Ordering| if op == ArgOp::ArgMax { o } else { o.reverse() };
    let out: Vec<i64> = if x.dtype().is_float() {
        let v = x.to_f64_vec();
        // NaN is the most extreme value for both argmax and argmin (numpy returns the first NaN).
        let more = |a: f64, b: f64| match (a.is_nan(), b.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => flip(a.partial_cmp(&b).unwrap_or(Ordering::Equal)),
        };
        arg_per_group(&groups, &v, more, select_last)
    } else {
        let v = x.to_i64_vec();
        let more = |a: i64, b: i64| flip(a.cmp(&b));
        arg_per_group(&groups, &v, more, select_last)
    };
    Tensor::from_i64(shape, out).map_err(|e| e.to_string())
}

/// The groups of a tensor's lines along one axis.
fn lines(x: &Tensor, axis: i64) -> KResult<Vec<Vec<usize>>> {
    let ax = normalize_axis(axis, x.rank())?;
    let mut mask = vec![false; x.rank()];
    mask[ax] = true;
    groups(x.shape(), &mask)
}

pub fn softmax(x: &Tensor, axis: i64, log: bool) -> KResult<Tensor> {
    let dt = x.dtype();
    if !dt.is_float() {
        return Err(format!("softmax takes floats, got {dt}"));
    }
    let v = x.to_f64_vec();
    let mut out = vec![0.0; v.len()];
    for line in lines(x, axis)? {
        // numpy's formula: a NaN, or a line of all -inf, makes the whole line NaN.
        let m = line.iter().map(|&i| v[i]).fold(f64::NEG_INFINITY, max_nan);
        let sum: f64 = line.iter().map(|&i| (v[i] - m).exp()).sum();
        for &i in &line {
            out[i] = if log {
                (v[i] - m) - sum.ln()
            } else {
                (v[i] - m).exp() / sum
            };
        }
    }
    build(dt, x.shape().to_vec(), &out, &[])
}

pub fn cumsum(x: &Tensor, axis: i64, exclusive: bool, reverse: bool) -> KResult<Tensor> {
    scan(x, axis, exclusive, reverse, false)
}

pub fn cumprod(x: &Tensor, axis: i64, exclusive: bool, reverse: bool) -> KResult<Tensor> {
    scan(x, axis, exclusive, reverse, true)
}

/// Cumulative sum (or, with `prod`, product) along `axis`.
fn scan(x: &Tensor, axis: i64, exclusive: bool, reverse: bool, prod: bool) -> KResult<Tensor> {
    let dt = x.dtype();
    let name = if prod { "cumprod" } else { "cumsum" };
    if dt == DType::Bool {
        return Err(format!("{name} does not take bool"));
    }
    let fop: fn(f64, f64) -> f64 = if prod { |a, b| a * b } else { |a, b| a + b };
    let iop: fn(i64, i64) -> i64 = if prod {
        i64::wrapping_mul
    } else {
        i64::wrapping_add
    };
    let (fid, iid) = if prod { (1.0, 1) } else { (0.0, 0) };
    let mut fo = x.to_f64_vec();
    let mut io = x.to_i64_vec();
    let (fv, iv) = (fo.clone(), io.clone());
    for mut line in lines(x, axis)? {
        if reverse {
            line.reverse();
        }
        // The running total of the elements before the current one (None before the first, so
        // an inclusive float total starts from the first element itself, as numpy does).
        let mut facc: Option<f64> = None;
        let mut iacc: i64 = iid;
        for &i in &line {
            let fnext = facc.map_or(fv[i], |a| fop(a, fv[i]));
            let inext = iop(iacc, iv[i]);
            fo[i] = if exclusive {
                facc.unwrap_or(fid)
            } else {
                fnext
            };
            io[i] = if exclusive { iacc } else { inext };
            facc = Some(fnext);
            iacc = inext;
        }
    }
    build(dt, x.shape().to_vec(), &fo, &io)
}
