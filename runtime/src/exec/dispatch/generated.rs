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
    let cols = out_shape.last().copied().unwrap_or(1);
    let rows = out_shape
        .iter()
        .product::<usize>()
        .checked_div(cols)
        .unwrap_or(0);
    let mut args: Vec<*mut f32> = Vec::with_capacity(step.inputs.len() + step.outputs.len());
    for (i, (&v, access)) in step.inputs.iter().zip(&g.access).enumerate() {
        let want = match access {
            Access::Full => rows * cols,
            Access::Row => cols,
            Access::Col => rows,
            Access::Scalar => 1,
        };
        let have = f.f32s(v, &format!("input {i}"))?.len();
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
    // `r0·cols` for full operands and outputs and by `r0` for per-row operands.
    let threads = rayon::current_num_threads();
    let blocks = if rows * cols >= PARALLEL_ELEMENTS && threads > 1 {
        threads.min(rows)
    } else {
        1
    };
    let per = rows.div_ceil(blocks);
    // Addresses as integers so the closure is Send; they are turned back into pointers below.
    let base: Vec<usize> = args.iter().map(|&p| p as usize).collect();
    let call = |r0: usize| {
        if r0 >= rows {
            return;
        }
        let r1 = (r0 + per).min(rows);
        let ptrs: Vec<*mut f32> = base
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let step = match g.access.get(i) {
                    Some(Access::Full) | None => r0 * cols,
                    Some(Access::Col) => r0,
                    Some(Access::Row | Access::Scalar) => 0,
                };
                (a as *mut f32).wrapping_add(step)
            })
            .collect();
        // SAFETY: `func` comes from the loaded code module (validated object, relocated, mapped
        // read+execute) and has the generated-kernel ABI. Every pointer in `args` addresses as
        // many f32 elements as its access pattern reads or writes over rows × cols (checked
        // above), so rows r0..r1 of it lie inside those elements. Outputs occupy slots no input
        // occupies, except a `Full` input the kernel reads element by element before writing it
        // (in-place steps); row blocks are disjoint, and no Rust reference to them is alive.
        unsafe { func(ptrs.as_ptr(), (r1 - r0) as u64, cols as u64) };
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
