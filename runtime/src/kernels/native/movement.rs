//! Byte-level data movement: a strided copy (transpose and expand are strided views of their
//! input), concat and split along an axis, and an elementwise select with broadcasting.

use super::numel;

/// Ranks up to this are kept on the stack by [`Dims`].
const INLINE_RANK: usize = 8;

/// A list of per-axis sizes or strides: on the stack up to [`INLINE_RANK`] axes (so that a
/// transpose or expand step allocates nothing), on the heap beyond.
#[derive(Debug, Clone, PartialEq)]
pub enum Dims {
    /// Up to [`INLINE_RANK`] entries: the first `len` of the array.
    Inline([usize; INLINE_RANK], usize),
    /// More entries.
    Heap(Vec<usize>),
}

impl Dims {
    /// `n` entries of `v`.
    fn filled(n: usize, v: usize) -> Dims {
        if n <= INLINE_RANK {
            Dims::Inline([v; INLINE_RANK], n)
        } else {
            Dims::Heap(vec![v; n])
        }
    }
}

impl std::ops::Deref for Dims {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        match self {
            Dims::Inline(a, n) => &a[..*n],
            Dims::Heap(v) => v,
        }
    }
}

impl std::ops::DerefMut for Dims {
    fn deref_mut(&mut self) -> &mut [usize] {
        match self {
            Dims::Inline(a, n) => &mut a[..*n],
            Dims::Heap(v) => v,
        }
    }
}

/// Row-major element strides of `shape`.
fn contiguous_strides(shape: &[usize]) -> Dims {
    let mut s = Dims::filled(shape.len(), 1);
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1].saturating_mul(shape[i + 1]);
    }
    s
}

/// The strides (in elements) that read an input of shape `in_shape` transposed by `perm`, and
/// the output shape.
pub fn transpose_strides(in_shape: &[usize], perm: &[i64]) -> Result<(Dims, Dims), String> {
    let rank = in_shape.len();
    if !perm.is_empty() && perm.len() != rank {
        return Err(format!("perm {perm:?} does not fit rank {rank}"));
    }
    // An empty perm reverses the axes.
    let axis = |i: usize| -> Result<usize, String> {
        match perm.get(i) {
            Some(&p) => super::norm_axis(p, rank),
            None => Ok(rank - 1 - i),
        }
    };
    let cs = contiguous_strides(in_shape);
    let (mut out, mut strides) = (Dims::filled(rank, 0), Dims::filled(rank, 0));
    for i in 0..rank {
        let a = axis(i)?;
        if (0..i).any(|j| axis(j).is_ok_and(|b| b == a)) {
            return Err(format!("perm {perm:?} repeats axis {a}"));
        }
        out[i] = in_shape[a];
        strides[i] = cs[a];
    }
    Ok((strides, out))
}

/// The strides that read `in_shape` broadcast (numpy, right-aligned) to `out_shape`.
pub fn broadcast_strides(in_shape: &[usize], out_shape: &[usize]) -> Result<Dims, String> {
    if in_shape.len() > out_shape.len() {
        return Err(format!("{in_shape:?} does not broadcast to {out_shape:?}"));
    }
    let pad = out_shape.len() - in_shape.len();
    let cs = contiguous_strides(in_shape);
    let mut out = Dims::filled(out_shape.len(), 0);
    for (i, o) in out.iter_mut().enumerate() {
        *o = match i.checked_sub(pad) {
            None => 0,
            Some(j) if in_shape[j] == out_shape[i] => cs[j],
            Some(j) if in_shape[j] == 1 => 0,
            Some(_) => return Err(format!("{in_shape:?} does not broadcast to {out_shape:?}")),
        };
    }
    Ok(out)
}

/// The byte offset of the first element and the element strides that read `in_shape` sliced
/// with, per listed axis, `(first index, step ≥ 1, count)` (ONNX `Slice` after its starts and
/// ends are resolved and clamped), and the output shape.
pub fn slice_strides(
    in_shape: &[usize],
    axes: &[(usize, usize, usize, usize)],
) -> Result<(usize, Dims, Dims), String> {
    let cs = contiguous_strides(in_shape);
    let mut strides = cs.clone();
    let mut out = Dims::filled(in_shape.len(), 0);
    out.copy_from_slice(in_shape);
    let mut first = 0usize;
    for &(axis, start, step, count) in axes {
        if axis >= in_shape.len() || step == 0 {
            return Err(format!(
                "slice axis {axis} / step {step} do not fit {in_shape:?}"
            ));
        }
        if count > 0 && start + (count - 1) * step >= in_shape[axis] {
            return Err(format!(
                "slice of {count} from {start} by {step} leaves axis {axis} of {in_shape:?}"
            ));
        }
        first += start * cs[axis];
        strides[axis] = cs[axis] * step;
        out[axis] = count;
    }
    Ok((first, strides, out))
}

/// Checks that reading `src` (elements of `es` bytes) with `strides` over `shape` stays inside.
fn check_reach(src: &[u8], strides: &[usize], shape: &[usize], es: usize) -> Result<(), String> {
    if shape.contains(&0) {
        return Ok(());
    }
    let last = shape
        .iter()
        .zip(strides)
        .try_fold(0usize, |a, (&d, &s)| a.checked_add((d - 1).checked_mul(s)?))
        .ok_or("strides overflow")?;
    if (last + 1).saturating_mul(es) > src.len() {
        return Err(format!(
            "a {}-byte operand cannot be read with strides {strides:?} over {shape:?}",
            src.len()
        ));
    }
    Ok(())
}

/// Calls `f(out_index, src_offsets)` for every output element in row-major order, where the
/// offsets are element offsets into each source read with its strides.
fn for_each<const K: usize>(
    shape: &[usize],
    strides: [&[usize]; K],
    mut f: impl FnMut([usize; K]),
) {
    if shape.contains(&0) {
        return;
    }
    let rank = shape.len();
    let mut idx = Dims::filled(rank, 0);
    let mut off = [0usize; K];
    loop {
        f(off);
        let mut a = rank;
        loop {
            if a == 0 {
                return;
            }
            a -= 1;
            idx[a] += 1;
            for k in 0..K {
                off[k] += strides[k][a];
            }
            if idx[a] < shape[a] {
                break;
            }
            for k in 0..K {
                off[k] -= strides[k][a] * shape[a];
            }
            idx[a] = 0;
        }
    }
}

/// `dst[i] = src[offset(i)]` for `shape` read with `strides` (elements of `es` bytes): the
/// transpose and expand kernels. Runs along the last axis are copied whole when contiguous.
pub fn strided_copy(
    src: &[u8],
    strides: &[usize],
    shape: &[usize],
    es: usize,
    dst: &mut [u8],
) -> Result<(), String> {
    let n = numel(shape)?;
    if dst.len() != n.saturating_mul(es) || strides.len() != shape.len() {
        return Err(format!(
            "output of {} bytes is not {shape:?}×{es}",
            dst.len()
        ));
    }
    check_reach(src, strides, shape, es)?;
    let Some((&inner, outer)) = shape.split_last() else {
        dst.copy_from_slice(&src[..es]);
        return Ok(());
    };
    let s = strides[shape.len() - 1];
    let run = inner * es;
    let mut o = 0usize;
    for_each(outer, [&strides[..outer.len()]], |[base]| {
        let out = &mut dst[o..o + run];
        if s == 1 {
            out.copy_from_slice(&src[base * es..base * es + run]);
        } else if es == 4 {
            for (j, d) in out.chunks_exact_mut(4).enumerate() {
                let p = (base + j * s) * 4;
                d.copy_from_slice(&src[p..p + 4]);
            }
        } else {
            for (j, d) in out.chunks_exact_mut(es).enumerate() {
                let p = (base + j * s) * es;
                d.copy_from_slice(&src[p..p + es]);
            }
        }
        o += run;
    });
    Ok(())
}

/// Concatenates `parts` (bytes and shapes) along `axis` into `dst`.
pub fn concat(
    parts: &[(&[u8], &[usize])],
    axis: usize,
    es: usize,
    dst: &mut [u8],
) -> Result<(), String> {
    let chunks = axis_chunks(parts.iter().map(|p| p.1), axis, es, dst.len())?;
    let mut o = 0;
    let outer = chunks.outer;
    for r in 0..outer {
        for ((src, _), &c) in parts.iter().zip(&chunks.sizes) {
            if src.len() != c * outer {
                return Err(format!(
                    "a concat input holds {} bytes, not {}",
                    src.len(),
                    c * outer
                ));
            }
            dst[o..o + c].copy_from_slice(&src[r * c..(r + 1) * c]);
            o += c;
        }
    }
    Ok(())
}

/// Splits `src` of shape `shape` along `axis` into `outs` (byte buffers with their shapes).
pub fn split(
    src: &[u8],
    outs: &mut [(&mut [u8], &[usize])],
    axis: usize,
    es: usize,
) -> Result<(), String> {
    let chunks = axis_chunks(outs.iter().map(|p| p.1), axis, es, src.len())?;
    let mut o = 0;
    for r in 0..chunks.outer {
        for ((dst, _), &c) in outs.iter_mut().zip(&chunks.sizes) {
            if dst.len() != c * chunks.outer {
                return Err(format!(
                    "a split output holds {} bytes, not {}",
                    dst.len(),
                    c * chunks.outer
                ));
            }
            dst[r * c..(r + 1) * c].copy_from_slice(&src[o..o + c]);
            o += c;
        }
    }
    Ok(())
}

struct Chunks {
    outer: usize,
    sizes: Vec<usize>,
}

/// Per-part byte chunk sizes for joining along `axis`; the parts must agree off the axis and fill
/// `total` bytes.
fn axis_chunks<'a>(
    shapes: impl Iterator<Item = &'a [usize]>,
    axis: usize,
    es: usize,
    total: usize,
) -> Result<Chunks, String> {
    let shapes: Vec<&[usize]> = shapes.collect();
    let first = shapes.first().ok_or("no parts")?;
    if axis >= first.len() {
        return Err(format!("axis {axis} is out of range for {first:?}"));
    }
    let outer = numel(&first[..axis])?;
    let mut sizes = Vec::with_capacity(shapes.len());
    for s in &shapes {
        if s.len() != first.len()
            || s[..axis] != first[..axis]
            || s[axis + 1..] != first[axis + 1..]
        {
            return Err(format!("parts {first:?} and {s:?} differ off axis {axis}"));
        }
        sizes.push(numel(&s[axis..])?.checked_mul(es).ok_or("too many bytes")?);
    }
    let sum: usize = sizes.iter().sum();
    if sum.checked_mul(outer) != Some(total) {
        return Err(format!("the parts do not fill {total} bytes"));
    }
    Ok(Chunks { outer, sizes })
}

/// `dst = cond ? x : y` broadcast to `shape` (`cond` one byte per element, nonzero = true).
pub fn where_select(
    cond: (&[u8], &[usize]),
    x: (&[u8], &[usize]),
    y: (&[u8], &[usize]),
    shape: &[usize],
    es: usize,
    dst: &mut [u8],
) -> Result<(), String> {
    let n = numel(shape)?;
    if dst.len() != n.saturating_mul(es) {
        return Err(format!(
            "output of {} bytes is not {shape:?}×{es}",
            dst.len()
        ));
    }
    let (cs, xs, ys) = (
        broadcast_strides(cond.1, shape)?,
        broadcast_strides(x.1, shape)?,
        broadcast_strides(y.1, shape)?,
    );
    check_reach(cond.0, &cs, shape, 1)?;
    check_reach(x.0, &xs, shape, es)?;
    check_reach(y.0, &ys, shape, es)?;
    let mut o = 0;
    for_each(shape, [&cs[..], &xs[..], &ys[..]], |[c, a, b]| {
        let (src, p) = if cond.0[c] != 0 { (x.0, a) } else { (y.0, b) };
        dst[o..o + es].copy_from_slice(&src[p * es..(p + 1) * es]);
        o += es;
    });
    Ok(())
}
