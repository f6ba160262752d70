//! One step's kernel call: operand shapes read from the run's layout, checked against what the
//! kernel needs, then the library, generated or reference kernel runs. Each kernel family has its
//! own file; the reference fallback and the row gather are small enough to live here.

pub(crate) mod attention;
mod gemm;
mod generated;
mod native;
mod recurrent;

use super::frame::Frame;
use crate::code::CodeModule;
use crate::kernels::gemm::Isa;
use crate::plan::{Kernel, Step};
use crate::reference;

/// Runs one step. Errors are messages; the caller adds the step's origin.
pub fn run_step(f: &Frame, step: &Step, isa: Isa, code: Option<&CodeModule>) -> Result<(), String> {
    match &step.kernel {
        Kernel::Reference(op) => reference_step(f, step, op),
        Kernel::Gemm(g) => gemm::gemm_step(f, step, g, isa),
        Kernel::Attention(a) => attention::attention_step(f, step, a, isa),
        Kernel::GatherRows => gather_rows(f, step),
        Kernel::Conv(c) => gemm::conv_step(f, step, c, isa),
        Kernel::Recurrent(r) => recurrent::recurrent_step(f, step, r, isa),
        Kernel::Generated(g) => generated::generated_step(f, step, g, code),
        Kernel::Native(op) => native::native_step(f, step, op),
        Kernel::CacheWrite { axis, at } => native::cache_write_step(f, step, *axis, at),
    }
}

fn reference_step(f: &Frame, step: &Step, op: &crate::ops::Op) -> Result<(), String> {
    let args = step
        .inputs
        .iter()
        .map(|&v| f.tensor(v))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&crate::Tensor> = args.iter().collect();
    let outs = reference::eval_op(op, &refs, &f.layout.bindings)?;
    if outs.len() != step.outputs.len() {
        return Err(format!(
            "produced {} outputs, expected {}",
            outs.len(),
            step.outputs.len()
        ));
    }
    for (t, &v) in outs.iter().zip(&step.outputs) {
        if t.dtype() != f.dtype(v) || t.shape() != f.shape(v) {
            return Err(format!(
                "produced {}{:?}, but the plan says {}{:?}",
                t.dtype(),
                t.shape(),
                f.dtype(v),
                f.shape(v)
            ));
        }
        let bytes = t.to_le_bytes();
        // SAFETY: `v` is an output of this step; the plan validator guarantees no input of the
        // step shares its slot, and no other slice over it is alive.
        unsafe { f.bytes_mut(v) }.copy_from_slice(&bytes);
    }
    Ok(())
}

fn gather_rows(f: &Frame, step: &Step) -> Result<(), String> {
    let (table, idx, out) = (step.inputs[0], step.inputs[1], step.outputs[0]);
    let shape = f.shape(table);
    let Some((&rows, _)) = shape.split_first() else {
        return Err("gather table is a scalar".into());
    };
    let row_bytes = f.byte_len(table) / rows.max(1);
    // The indices read straight from their bytes (i64 or i32, little-endian): no copy.
    let width = match f.dtype(idx) {
        crate::DType::I64 => 8,
        crate::DType::I32 => 4,
        d => return Err(format!("gather indices are {d}, not i64 or i32")),
    };
    let count = f.byte_len(idx) / width;
    if f.byte_len(out) != count * row_bytes {
        return Err(format!(
            "gather output {:?} does not hold {count} rows of the table {shape:?}",
            f.shape(out),
        ));
    }
    let indices = f.bytes(idx).chunks_exact(width).map(|b| match *b {
        [a, b, c, d] => i64::from(i32::from_le_bytes([a, b, c, d])),
        _ => i64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
    });
    let src = f.bytes(table);
    // SAFETY: `out` is this step's only output; no input shares its slot (validated).
    let dst = unsafe { f.bytes_mut(out) };
    for (i, ix) in indices.enumerate() {
        let r = if ix < 0 { ix + rows as i64 } else { ix };
        if r < 0 || r >= rows as i64 {
            return Err(format!("index {ix} is out of range for {rows} rows"));
        }
        let r = r as usize;
        dst[i * row_bytes..(i + 1) * row_bytes]
            .copy_from_slice(&src[r * row_bytes..(r + 1) * row_bytes]);
    }
    Ok(())
}
