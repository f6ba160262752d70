//! The bodies of row kernels: LayerNorm (with optional residual, beta and sum output), RmsNorm
//! and (log-)softmax. Each row is processed in passes, each a 4-lane vector loop plus a scalar
//! tail, with f32x4 accumulators reduced horizontally at the end of a pass:
//!
//! - LayerNorm: `s = x + skip` (stored to `sum`, or to `y` as scratch) and the sum of `s - s₀`
//!   (shifted by the row's first element, so a large common offset costs no precision); the sum
//!   of squared deviations from the mean (two-pass variance, no cancellation); the normalisation.
//! - RmsNorm: the sum of squares; the normalisation.
//! - Softmax: the row maximum; `e^(x-max)` (stored) and its sum; the scaling by `1/sum`.
//!   Log-softmax: the maximum; the sum of `e^(x-max)`; `y = x - max - ln(sum)`.

use cranelift_codegen::ir::types::{F32, F32X4, I64};
use cranelift_codegen::ir::{InstBuilder, Type, Value};

use super::elementwise::{load_pointers, skip_if_empty};
use super::emit::{Emit, RtFn};
use super::kernel::{Access, RowKernel, RowOp};

/// The runtime functions a row kernel calls.
pub(crate) fn runtime_functions(k: &RowKernel) -> Vec<RtFn> {
    match k.op {
        RowOp::Softmax { log: true } => vec![RtFn::Log],
        _ => Vec::new(),
    }
}

/// Emits the kernel body; the current block is the entry block, with the three ABI parameters.
pub(crate) fn build(e: &mut Emit, k: &RowKernel, args: Value, rows: Value, cols: Value) {
    let ptrs = load_pointers(e, args, k.op.num_args());
    skip_if_empty(e, rows, cols);
    let n = e.b.ins().fcvt_from_uint(F32, cols);
    let zero = e.b.ins().iconst(I64, 0);
    e.counted_loop(zero, rows, 1, |e, r| {
        let first = e.b.ins().imul(r, cols);
        let row = e.f32_offset(first);
        let r = Row {
            offset: row,
            cols,
            n,
        };
        match k.op {
            RowOp::LayerNorm {
                eps,
                skip,
                beta,
                sum_out,
            } => layer_norm(e, &ptrs, &r, eps, skip, beta, sum_out),
            RowOp::RmsNorm { eps } => rms_norm(e, &ptrs, &r, eps),
            RowOp::Softmax { log } => softmax(e, &ptrs, row, cols, log),
        }
    });
    e.b.ins().return_(&[]);
}

/// The row a normalisation works on.
#[derive(Debug, Clone, Copy)]
struct Row {
    /// Byte offset of the row's first element.
    offset: Value,
    /// Elements in the row.
    cols: Value,
    /// `cols` as an f32.
    n: Value,
}

/// A pass over one row accumulating `f(ty, c)` into an f32x4 and an f32 accumulator with `op`,
/// starting from `init`; returns the combined total (`hsum`/`hmax`).
fn reduce(
    e: &mut Emit,
    cols: Value,
    init: f32,
    max: bool,
    mut f: impl FnMut(&mut Emit, Type, Value) -> Value,
) -> Value {
    let vacc = e.b.declare_var(F32X4);
    let sacc = e.b.declare_var(F32);
    let v0 = e.fconst(F32X4, init);
    let s0 = e.fconst(F32, init);
    e.b.def_var(vacc, v0);
    e.b.def_var(sacc, s0);
    e.vector_then_scalar(cols, |e, ty, c| {
        let x = f(e, ty, c);
        let acc = if ty.is_vector() { vacc } else { sacc };
        let old = e.b.use_var(acc);
        let new = if max {
            // NaN elements are dropped from the maximum; they still make the row NaN through
            // the later passes, as `e^(NaN - max)` is NaN.
            e.select_lt(ty, old, x, x, old)
        } else {
            e.b.ins().fadd(old, x)
        };
        e.b.def_var(acc, new);
    });
    let v = e.b.use_var(vacc);
    let s = e.b.use_var(sacc);
    if max {
        let h = e.hmax(v);
        e.b.ins().fmax(h, s)
    } else {
        let h = e.hsum(v);
        e.b.ins().fadd(h, s)
    }
}

/// `1 / sqrt(total / n + eps)`.
fn inv_std(e: &mut Emit, total: Value, n: Value, eps: f32) -> Value {
    let mean = e.b.ins().fdiv(total, n);
    let eps = e.b.ins().f32const(eps);
    let v = e.b.ins().fadd(mean, eps);
    let s = e.b.ins().sqrt(v);
    let one = e.b.ins().f32const(1.0);
    e.b.ins().fdiv(one, s)
}

fn layer_norm(
    e: &mut Emit,
    ptrs: &[Value],
    r: &Row,
    eps: f32,
    skip: Option<Access>,
    beta: bool,
    sum_out: bool,
) {
    let Row {
        offset: row,
        cols,
        n,
    } = *r;
    let mut next = ptrs.iter().copied();
    let mut arg = || {
        next.next()
            .unwrap_or_else(|| unreachable!("num_args pointers"))
    };
    let x = arg();
    let x = e.b.ins().iadd(x, row);
    let skip = skip.map(|access| {
        let p = arg();
        if access == Access::Full {
            e.b.ins().iadd(p, row)
        } else {
            p
        }
    });
    let gamma = arg();
    let beta = beta.then(&mut arg);
    let y = arg();
    let y = e.b.ins().iadd(y, row);
    let sum = sum_out.then(&mut arg).map(|p| e.b.ins().iadd(p, row));
    // Where the passes after the first read `s = x + skip` from.
    let s_row = match (skip, sum) {
        (None, _) => x,
        (Some(_), Some(sum)) => sum,
        (Some(_), None) => y,
    };
    // The row's first element, subtracted before summing so the mean stays exact for rows with
    // a large common offset.
    let zero = e.b.ins().iconst(I64, 0);
    let mut shift = e.load(F32, x, zero);
    if let Some(skip) = skip {
        let k = e.load(F32, skip, zero);
        shift = e.b.ins().fadd(shift, k);
    }
    // Pass 1: s, stored where later passes read it, and the sum of s - shift.
    let total = reduce(e, cols, 0.0, false, |e, ty, c| {
        let off = e.f32_offset(c);
        let mut s = e.load(ty, x, off);
        if let Some(skip) = skip {
            let k = e.load(ty, skip, off);
            s = e.b.ins().fadd(s, k);
            if sum.is_none() {
                e.store(s, y, off);
            }
        }
        if let Some(sum) = sum {
            e.store(s, sum, off);
        }
        let k = e.splat(ty, shift);
        e.b.ins().fsub(s, k)
    });
    let mean = e.b.ins().fdiv(total, n);
    let mean = e.b.ins().fadd(mean, shift);
    // Pass 2: the sum of squared deviations.
    let squares = reduce(e, cols, 0.0, false, |e, ty, c| {
        let off = e.f32_offset(c);
        let s = e.load(ty, s_row, off);
        let m = e.splat(ty, mean);
        let d = e.b.ins().fsub(s, m);
        e.b.ins().fmul(d, d)
    });
    let rstd = inv_std(e, squares, n, eps);
    // Pass 3: normalise, scale, shift.
    e.vector_then_scalar(cols, |e, ty, c| {
        let off = e.f32_offset(c);
        let s = e.load(ty, s_row, off);
        let m = e.splat(ty, mean);
        let d = e.b.ins().fsub(s, m);
        let r = e.splat(ty, rstd);
        let d = e.b.ins().fmul(d, r);
        let g = e.load(ty, gamma, off);
        let out = match beta {
            Some(beta) => {
                let b = e.load(ty, beta, off);
                e.mul_add(d, g, b)
            }
            None => e.b.ins().fmul(d, g),
        };
        e.store(out, y, off);
    });
}

fn rms_norm(e: &mut Emit, ptrs: &[Value], r: &Row, eps: f32) {
    let Row {
        offset: row,
        cols,
        n,
    } = *r;
    let x = e.b.ins().iadd(ptrs[0], row);
    let gamma = ptrs[1];
    let y = e.b.ins().iadd(ptrs[2], row);
    let squares = reduce(e, cols, 0.0, false, |e, ty, c| {
        let off = e.f32_offset(c);
        let v = e.load(ty, x, off);
        e.b.ins().fmul(v, v)
    });
    let rstd = inv_std(e, squares, n, eps);
    e.vector_then_scalar(cols, |e, ty, c| {
        let off = e.f32_offset(c);
        let v = e.load(ty, x, off);
        let r = e.splat(ty, rstd);
        let v = e.b.ins().fmul(v, r);
        let g = e.load(ty, gamma, off);
        let out = e.b.ins().fmul(v, g);
        e.store(out, y, off);
    });
}

fn softmax(e: &mut Emit, ptrs: &[Value], row: Value, cols: Value, log: bool) {
    let x = e.b.ins().iadd(ptrs[0], row);
    let y = e.b.ins().iadd(ptrs[1], row);
    let max = reduce(e, cols, f32::NEG_INFINITY, true, |e, ty, c| {
        let off = e.f32_offset(c);
        e.load(ty, x, off)
    });
    let total = reduce(e, cols, 0.0, false, |e, ty, c| {
        let off = e.f32_offset(c);
        let v = e.load(ty, x, off);
        let m = e.splat(ty, max);
        let d = e.b.ins().fsub(v, m);
        let p = e.exp(ty, d);
        if !log {
            e.store(p, y, off);
        }
        p
    });
    let scale = if log {
        e.call(F32, RtFn::Log, &[total])
    } else {
        let one = e.b.ins().f32const(1.0);
        e.b.ins().fdiv(one, total)
    };
    e.vector_then_scalar(cols, |e, ty, c| {
        let off = e.f32_offset(c);
        let s = e.splat(ty, scale);
        let out = if log {
            let v = e.load(ty, x, off);
            let m = e.splat(ty, max);
            let d = e.b.ins().fsub(v, m);
            e.b.ins().fsub(d, s)
        } else {
            let p = e.load(ty, y, off);
            e.b.ins().fmul(p, s)
        };
        e.store(out, y, off);
    });
}
