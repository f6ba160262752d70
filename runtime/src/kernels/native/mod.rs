//! Native kernels for ops that are not arithmetic-bound: data movement over raw bytes (transpose,
//! expand, concat, split, where; any dtype) and f32 pooling, reductions over a contiguous block of
//! axes and softmax over any axis. They replace the f64 reference kernels on the CPU backend.
//!
//! Every function takes the shapes the executor evaluated and checks that the buffers hold what
//! those shapes say, so a bad plan is an error, never an out-of-bounds access.

mod movement;
mod pool;
mod rotary;
#[cfg(test)]
mod tests;

pub use movement::{
    broadcast_strides, concat, slice_strides, split, strided_copy, transpose_strides, where_select,
    Dims,
};
pub use pool::{pool2d, reduce, reduce_block, softmax_axis, Pool2d};
pub use rotary::rotary;

use crate::ops::{Op, ReduceOp};

/// Whether [`crate::plan::Kernel::Native`] runs `op` (its dtype and rank conditions are the
/// compiler's to check; the kernels refuse other operands with an error).
pub fn supports(op: &Op) -> bool {
    match op {
        Op::Transpose { .. }
        | Op::Expand { .. }
        | Op::Concat { .. }
        | Op::Split { .. }
        | Op::Where
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Rotary => true,
        Op::Slice { steps, .. } => steps.iter().all(|&s| s > 0),
        Op::Cast { to } => *to == crate::DType::F32,
        Op::Pool { kernel, .. } => kernel.len() == 2,
        Op::Reduce { op, .. } => matches!(
            op,
            ReduceOp::Sum | ReduceOp::Mean | ReduceOp::Max | ReduceOp::Min
        ),
        _ => false,
    }
}

/// `Cast` of integer elements (`from`: i64 or i32, little-endian bytes) to f32, rounding as
/// the reference cast does (through i64, then to nearest).
pub fn cast_int_to_f32(from: crate::DType, src: &[u8], dst: &mut [f32]) -> Result<(), String> {
    let width = match from {
        crate::DType::I64 => 8,
        crate::DType::I32 => 4,
        d => return Err(format!("no native cast from {d} to f32")),
    };
    if src.len() != dst.len() * width {
        return Err(format!(
            "cast of {} bytes of {from} into {} f32 elements",
            src.len(),
            dst.len()
        ));
    }
    for (x, y) in src.chunks_exact(width).zip(dst) {
        let v = match *x {
            [a, b, c, d] => i64::from(i32::from_le_bytes([a, b, c, d])),
            _ => i64::from_le_bytes(x.try_into().map_err(|_| "a short element")?),
        };
        *y = v as f32;
    }
    Ok(())
}

/// Normalises `axis` against `rank` (negative counts from the end).
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r.max(1)).contains(&a) {
        Ok(a as usize)
    } else {
        Err(format!("axis {axis} is out of range for rank {rank}"))
    }
}

/// The product of `dims`, or an error when it overflows.
pub fn numel(dims: &[usize]) -> Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("shape {dims:?} has too many elements"))
}
