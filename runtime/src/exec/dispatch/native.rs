//! Calls of the runtime's native kernels (`Kernel::Native`): operand shapes and dtypes read from
//! the run's layout, checked, then the byte-movement or f32 kernel of `kernels::native` runs.

use crate::exec::frame::Frame;
use crate::kernels::native as nk;
use crate::ops::{Op, PoolKind};
use crate::plan::Step;
use crate::DType;

pub(super) fn native_step(f: &Frame, step: &Step, op: &Op) -> Result<(), String> {
    let input = |i: usize| {
        step.inputs
            .get(i)
            .copied()
            .ok_or_else(|| format!("missing input {i}"))
    };
    let out = *step.outputs.first().ok_or("no output")?;
    let es = f.dtype(out).size();
    let same_dtype = |i: usize| -> Result<(), String> {
        let v = input(i)?;
        if f.dtype(v) != f.dtype(out) {
            return Err(format!(
                "input {i} is {}, the output {}",
                f.dtype(v),
                f.dtype(out)
            ));
        }
        Ok(())
    };
    match op {
        Op::Transpose { perm } => {
            let x = input(0)?;
            same_dtype(0)?;
            let (strides, shape) = nk::transpose_strides(f.shape(x), perm)?;
            if *shape != *f.shape(out) {
                return Err(format!(
                    "transpose gives {shape:?}, the plan says {:?}",
                    f.shape(out)
                ));
            }
            // SAFETY: `out` is this step's only output; no input shares its slot (validated).
            nk::strided_copy(f.bytes(x), &strides, &shape, es, unsafe {
                f.bytes_mut(out)
            })
        }
        Op::Expand { .. } => {
            let x = input(0)?;
            same_dtype(0)?;
            let strides = nk::broadcast_strides(f.shape(x), f.shape(out))?;
            // SAFETY: as for transpose.
            nk::strided_copy(f.bytes(x), &strides, f.shape(out), es, unsafe {
                f.bytes_mut(out)
            })
        }
        Op::Concat { axis } => {
            let axis = nk::norm_axis(*axis, f.shape(out).len())?;
            let mut parts = Vec::with_capacity(step.inputs.len());
            for (i, &v) in step.inputs.iter().enumerate() {
                same_dtype(i)?;
                parts.push((f.bytes(v), f.shape(v)));
            }
            // SAFETY: as for transpose.
            nk::concat(&parts, axis, es, unsafe { f.bytes_mut(out) })
        }
        Op::Split { axis, .. } => {
            let x = input(0)?;
            let axis = nk::norm_axis(*axis, f.shape(x).len())?;
            let mut outs = Vec::with_capacity(step.outputs.len());
            for &o in &step.outputs {
                if f.dtype(o) != f.dtype(x) {
                    return Err(format!(
                        "a split output is {}, the input {}",
                        f.dtype(o),
                        f.dtype(x)
                    ));
                }
                // SAFETY: outputs occupy distinct slots no input occupies (validated), and each
                // is taken once.
                outs.push((unsafe { f.bytes_mut(o) }, f.shape(o)));
            }
            nk::split(f.bytes(x), &mut outs, axis, f.dtype(x).size())
        }
        Op::Where => {
            let (c, x, y) = (input(0)?, input(1)?, input(2)?);
            if f.dtype(c) != DType::Bool {
                return Err(format!("the condition is {}, not bool", f.dtype(c)));
            }
            same_dtype(1)?;
            same_dtype(2)?;
            let arg = |v| (f.bytes(v), f.shape(v));
            // SAFETY: as for transpose.
            nk::where_select(arg(c), arg(x), arg(y), f.shape(out), es, unsafe {
                f.bytes_mut(out)
            })
        }
        Op::Pool {
            kind,
            kernel,
            strides,
            pads,
            dilations,
            count_include_pad,
            ..
        } => {
            let x = input(0)?;
            let u = |v: &[i64], n: usize, default: usize| -> Result<Vec<usize>, String> {
                if v.is_empty() {
                    return Ok(vec![default; n]);
                }
                let r: Option<Vec<usize>> = v.iter().map(|&a| usize::try_from(a).ok()).collect();
                r.filter(|r| r.len() == n)
                    .ok_or_else(|| format!("pool attribute {v:?} needs {n} entries ≥ 0"))
            };
            let (k, s, p, d) = (
                u(kernel, 2, 1)?,
                u(strides, 2, 1)?,
                u(pads, 4, 0)?,
                u(dilations, 2, 1)?,
            );
            let params = nk::Pool2d {
                kind: *kind,
                kernel: [k[0], k[1]],
                strides: [s[0], s[1]],
                pads: [p[0], p[1], p[2], p[3]],
                dilations: [d[0], d[1]],
                count_include_pad: *count_include_pad && *kind == PoolKind::Avg,
            };
            let xs = f.f32s(x, "the pool input")?;
            // SAFETY: as for transpose.
            let ys = unsafe { f.f32s_mut(out, "the pool output") }?;
            nk::pool2d(&params, xs, f.shape(x), ys, f.shape(out))
        }
        Op::Reduce { op, axes, .. } => {
            let x = input(0)?;
            let block = nk::reduce_block(f.shape(x), axes)?;
            let xs = f.f32s(x, "the reduce input")?;
            // SAFETY: as for transpose.
            let ys = unsafe { f.f32s_mut(out, "the reduce output") }?;
            nk::reduce(*op, xs, block, ys)
        }
        Op::Softmax { axis } | Op::LogSoftmax { axis } => {
            let x = input(0)?;
            let shape = f.shape(x);
            let a = nk::norm_axis(*axis, shape.len())?;
            let block = if shape.is_empty() {
                (1, 1, 1)
            } else {
                (
                    nk::numel(&shape[..a])?,
                    shape[a],
                    nk::numel(&shape[a + 1..])?,
                )
            };
            let xs = f.f32s(x, "the softmax input")?;
            // SAFETY: as for transpose.
            let ys = unsafe { f.f32s_mut(out, "the softmax output") }?;
            nk::softmax_axis(xs, block, matches!(op, Op::LogSoftmax { .. }), ys)
        }
        Op::Rotary => {
            let (x, c, sn) = (input(0)?, input(1)?, input(2)?);
            let &[b, h, sq, d] = f.shape(x) else {
                return Err(format!("rotary x is {:?}, not rank 4", f.shape(x)));
            };
            if f.shape(c) != f.shape(sn) || f.shape(out) != f.shape(x) {
                return Err(format!(
                    "rotary cos {:?}, sin {:?}, x {:?} and the output {:?} disagree",
                    f.shape(c),
                    f.shape(sn),
                    f.shape(x),
                    f.shape(out)
                ));
            }
            let st = nk::broadcast_strides(f.shape(c), &[b, 1, sq, d])?;
            let strides = [st[0], st[1], st[2], st[3]];
            let xs = f.f32s(x, "rotary x")?;
            let (cs, ss) = (f.f32s(c, "rotary cos")?, f.f32s(sn, "rotary sin")?);
            // SAFETY: as for transpose.
            let ys = unsafe { f.f32s_mut(out, "the rotary output") }?;
            nk::rotary(xs, [b, h, sq, d], cs, ss, strides, ys)
        }
        Op::Slice {
            axes,
            starts,
            ends,
            steps,
        } => {
            let x = input(0)?;
            same_dtype(0)?;
            let shape = f.shape(x);
            if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() {
                return Err("slice axes, starts, ends and steps differ in length".into());
            }
            const MAX_AXES: usize = 8;
            if axes.len() > MAX_AXES {
                return Err(format!("a native slice takes at most {MAX_AXES} axes"));
            }
            let mut listed = [(0usize, 0usize, 1usize, 0usize); MAX_AXES];
            let b = &f.layout.bindings;
            for (k, &a) in axes.iter().enumerate() {
                let ax = nk::norm_axis(a, shape.len())?;
                let eval = |d: &crate::ops::Dim| d.eval(b).map_err(|e| format!("slice `{d}`: {e}"));
                let (start, end, step) = (eval(&starts[k])?, eval(&ends[k])?, steps[k]);
                let (first, count) = crate::reference::slice_axis(start, end, step, shape[ax]);
                let first = usize::try_from(first).map_err(|_| "a negative slice start")?;
                let step = usize::try_from(step).map_err(|_| "a native slice step is positive")?;
                listed[k] = (ax, first, step, count);
            }
            let (first, strides, out_shape) = nk::slice_strides(shape, &listed[..axes.len()])?;
            if *out_shape != *f.shape(out) {
                return Err(format!(
                    "slice gives {:?}, the plan says {:?}",
                    &*out_shape,
                    f.shape(out)
                ));
            }
            let src = f.bytes(x).get(first * es..).unwrap_or(&[]);
            // SAFETY: as for transpose.
            nk::strided_copy(src, &strides, &out_shape, es, unsafe { f.bytes_mut(out) })
        }
        Op::Cast { .. } => {
            let x = input(0)?;
            // SAFETY: as for transpose.
            let ys = unsafe { f.f32s_mut(out, "the cast output") }?;
            nk::cast_int_to_f32(f.dtype(x), f.bytes(x), ys)
        }
        _ => Err(format!("no native kernel for `{}`", op.name())),
    }
}

/// `Kernel::CacheWrite`: `new` copied into the state's buffer at positions `at..at + n` along
/// `axis` (the output value is the state's update, the same buffer).
pub(super) fn cache_write_step(
    f: &Frame,
    step: &Step,
    axis: u32,
    at: &crate::ops::Dim,
) -> Result<(), String> {
    let (new, out) = (step.inputs[0], step.outputs[0]);
    if f.dtype(new) != f.dtype(out) {
        return Err(format!(
            "new is {}, the cache {}",
            f.dtype(new),
            f.dtype(out)
        ));
    }
    let pos = at
        .eval(&f.layout.bindings)
        .map_err(|e| format!("the write position {at}: {e}"))?;
    let (outer, cap, n, inner) = crate::reference::cache::cache_write_extent(
        f.shape(out),
        f.shape(new),
        axis as usize,
        pos,
    )?;
    let es = f.dtype(out).size();
    let (row, chunk) = (cap * inner * es, n * inner * es);
    let at = pos as usize * inner * es;
    let src = f.bytes(new);
    // SAFETY: `out` is this step's only output, a state buffer no input of the step lives in
    // (validated); `src` is in the arena.
    let dst = unsafe { f.bytes_mut(out) };
    if src.len() != outer * chunk || dst.len() != outer * row {
        return Err(format!(
            "cache write buffers of {} and {} bytes do not fit {outer}×{n} and {outer}×{cap} rows",
            src.len(),
            dst.len()
        ));
    }
    for o in 0..outer {
        dst[o * row + at..o * row + at + chunk].copy_from_slice(&src[o * chunk..(o + 1) * chunk]);
    }
    Ok(())
}
