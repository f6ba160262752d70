//! Calls of Cranelift-generated kernels: operand sizes checked against each access pattern, then
//! one call, or row blocks across the pool for large iteration spaces.

use crate::code::CodeModule;
use crate::exec::frame::Frame;
use crate::plan::{Access, GeneratedStep, Step};

/// Generated kernels over at least this many elements run in row blocks across the pool.
const PARALLEL_ELEMENTS: usize = 16 * 1024;

/// Operand lists up to this long live on the stack: a step allocates nothing.
const INLINE: usize = 16;

/// `n` zeroed `usize`s: `inline`'s first `n` when they fit, else `heap` grown to `n`.
fn operand_buf<'a>(
    n: usize,
    inline: &'a mut [usize; INLINE],
    heap: &'a mut Vec<usize>,
) -> &'a mut [usize] {
    if n <= INLINE {
        &mut inline[..n]
    } else {
        heap.resize(n, 0);
        heap
    }
}

/// The element count of f32 value `v`, or an error naming operand `what` `i`.
fn f32_len(f: &Frame, v: crate::plan::ValueId, what: &str, i: usize) -> Result<usize, String> {
    match f.dtype(v) {
        crate::DType::F32 => Ok(f.byte_len(v) / 4),
        d => Err(format!("{what} {i} has dtype {d}; this kernel takes f32")),
    }
}

pub(super) fn generated_step(
    f: &Frame,
    step: &Step,
    g: &GeneratedStep,
    code: Option<&CodeModule>,
) -> Result<(), String> {
    let func = code
        .and_then(|c| c.function(&g.symbol))
        .ok_or_else(|| format!("the code section has no `{}`", g.symbol))?;
    let out_shape = f.shape(step.outputs[0]);
    let split = (g.split as usize).min(out_shape.len());
    let rows: usize = out_shape[..split].iter().product();
    let cols: usize = out_shape[split..].iter().product();
    // Col operands repeat with their length as period; calls never cross a multiple of `period`
    // (the gcd of those lengths, which divides `rows`), so a call reads element `r - r0` of a Col
    // operand advanced to `r0 % len`.
    let mut period = rows.max(1);
    // Addresses as integers so that the row-block closure is Send; they are turned back into
    // pointers at the call.
    let n_args = step.inputs.len() + step.outputs.len();
    let (mut inline_args, mut heap_args) = ([0usize; INLINE], Vec::new());
    let base = operand_buf(n_args, &mut inline_args, &mut heap_args);
    for (i, (&v, access)) in step.inputs.iter().zip(&g.access).enumerate() {
        let have = f32_len(f, v, "input", i)?;
        let want = match access {
            Access::Full => rows * cols,
            Access::Row => cols,
            Access::Col if have > 0 && rows.is_multiple_of(have) => {
                period = gcd(period, have);
                have
            }
            Access::Col => rows,
            Access::Scalar => 1,
        };
        if have != want && rows * cols != 0 {
            return Err(format!(
                "input {i} has {have} elements; {access:?} access over {rows}×{cols} needs {want}"
            ));
        }
        base[i] = f.addr(v) as usize;
    }
    for (i, &v) in step.outputs.iter().enumerate() {
        let have = f32_len(f, v, "output", i)?;
        if have != rows * cols {
            return Err(format!(
                "output {i} has {have} elements, expected {rows}×{cols}"
            ));
        }
        base[step.inputs.len() + i] = f.addr(v) as usize;
    }
    if rows * cols == 0 {
        return Ok(());
    }
    // Rows are independent for every generated kernel (elementwise or row-wise), so large calls
    // are split into row blocks across the pool: a block's pointers are the call's, advanced by
    // `r0·cols` for full operands and outputs and by `r0 % len` for per-row operands.
    let threads = rayon::current_num_threads();
    let blocks = if rows * cols >= PARALLEL_ELEMENTS && threads > 1 {
        threads.min(rows)
    } else {
        1
    };
    let per = rows.div_ceil(blocks);
    let base: &[usize] = base;
    let (mut inline_len, mut heap_len) = ([0usize; INLINE], Vec::new());
    let col_len = operand_buf(step.inputs.len(), &mut inline_len, &mut heap_len);
    for (c, &v) in col_len.iter_mut().zip(&step.inputs) {
        *c = f.shape(v).iter().product::<usize>().max(1);
    }
    let col_len: &[usize] = col_len;
    let call_chunk = |r0: usize, r1: usize| {
        let mut inline_ptrs = [std::ptr::null_mut::<f32>(); INLINE];
        let mut heap_ptrs = Vec::new();
        let ptrs: &mut [*mut f32] = if base.len() <= INLINE {
            &mut inline_ptrs[..base.len()]
        } else {
            heap_ptrs.resize(base.len(), std::ptr::null_mut());
            &mut heap_ptrs
        };
        for (i, (p, &a)) in ptrs.iter_mut().zip(base).enumerate() {
            let step = match g.access.get(i) {
                Some(Access::Full) | None => r0 * cols,
                Some(Access::Col) => r0 % col_len[i],
                Some(Access::Row | Access::Scalar) => 0,
            };
            *p = (a as *mut f32).wrapping_add(step);
        }
        // SAFETY: `func` comes from the loaded code module (validated object, relocated, mapped
        // read+execute) and has the generated-kernel ABI. Every pointer in `args` addresses as
        // many f32 elements as its access pattern reads or writes over rows × cols (checked
        // above), so rows r0..r1 of it lie inside those elements; a Col operand's `len` divides
        // `rows` and is a multiple of `period`, and r0..r1 stays within one period, so its reads
        // `r0 % len + (r - r0)` stay below `len`. Outputs occupy slots no input
        // occupies, except a `Full` input the kernel reads element by element before writing it
        // (in-place steps); row blocks are disjoint, and no Rust reference to them is alive.
        unsafe { func(ptrs.as_ptr(), (r1 - r0) as u64, cols as u64) };
    };
    // A block's rows, in calls that do not cross a multiple of `period`.
    let call = |r0: usize| {
        let end = (r0 + per).min(rows);
        let mut r = r0;
        while r < end {
            let next = ((r / period + 1) * period).min(end);
            call_chunk(r, next);
            r = next;
        }
    };
    if blocks == 1 {
        call(0);
    } else {
        // A parallel range splits by `join` (stack-allocated jobs): no allocation per step.
        use rayon::prelude::*;
        (0..blocks).into_par_iter().for_each(|b| call(b * per));
    }
    Ok(())
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
