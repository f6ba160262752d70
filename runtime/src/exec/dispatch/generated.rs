//! Calls of Cranelift-generated kernels: operand sizes checked against each access pattern, then
//! one call, or row blocks across the pool for large iteration spaces.

use crate::code::CodeModule;
use crate::exec::frame::Frame;
use crate::plan::{Access, GeneratedStep, Step};

/// Generated kernels over at least this many elements run in row blocks across the pool.
const PARALLEL_ELEMENTS: usize = 16 * 1024;

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
    let mut args: Vec<*mut f32> = Vec::with_capacity(step.inputs.len() + step.outputs.len());
    for (i, (&v, access)) in step.inputs.iter().zip(&g.access).enumerate() {
        let have = f.f32s(v, &format!("input {i}"))?.len();
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
        args.push(f.addr(v).cast());
    }
    for (i, &v) in step.outputs.iter().enumerate() {
        let have = f.f32s(v, &format!("output {i}"))?.len();
        if have != rows * cols {
            return Err(format!(
                "output {i} has {have} elements, expected {rows}×{cols}"
            ));
        }
        args.push(f.addr(v).cast());
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
    // Addresses as integers so the closure is Send; they are turned back into pointers below.
    let base: Vec<usize> = args.iter().map(|&p| p as usize).collect();
    let col_len: Vec<usize> = step
        .inputs
        .iter()
        .map(|&v| f.shape(v).iter().product::<usize>().max(1))
        .collect();
    let call_chunk = |r0: usize, r1: usize| {
        let ptrs: Vec<*mut f32> = base
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let step = match g.access.get(i) {
                    Some(Access::Full) | None => r0 * cols,
                    Some(Access::Col) => r0 % col_len[i],
                    Some(Access::Row | Access::Scalar) => 0,
                };
                (a as *mut f32).wrapping_add(step)
            })
            .collect();
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
        rayon::scope(|s| {
            for b in 1..blocks {
                let call = &call;
                s.spawn(move |_| call(b * per));
            }
            call(0);
        });
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
